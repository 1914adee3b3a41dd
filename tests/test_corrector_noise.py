"""The corrector's self-supervised noise model (numpy only, no torch)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from edge_slr.errors import FormatError, InputError
from edge_slr.training.corrector.noise import GlossNoise, NoiseConfig, load_confusion_table

VOCAB = 60  # ids 1..59 are glosses, 0 is padding


def edit_distance(a: list[int], b: list[int]) -> int:
    """Plain Levenshtein distance (unit costs), written out here as the test's own yardstick."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def sentences(n: int, seed: int = 1) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(1, VOCAB, rng.integers(4, 25)).tolist() for _ in range(n)]


def frequencies() -> np.ndarray:
    freq = np.arange(VOCAB, dtype=float)  # id i occurs i times; id 0 never
    return freq


@pytest.mark.parametrize("target", [0.1, 0.2, 0.3, 0.4])
def test_achieved_wer_is_close_to_target(target: float) -> None:
    noise = GlossNoise(NoiseConfig(), frequencies())
    rng = np.random.default_rng(0)
    clean = sentences(600)
    errors = sum(edit_distance(s, noise.corrupt(s, rng, wer=target)) for s in clean)
    achieved = errors / sum(len(s) for s in clean)
    assert abs(achieved - target) < 0.02, achieved


def test_per_sentence_rates_cover_the_range_and_keep_a_clean_share() -> None:
    config = NoiseConfig(wer_min=0.1, wer_max=0.5, clean_share=0.3)
    noise = GlossNoise(config, frequencies())
    rng = np.random.default_rng(3)
    rates = np.array([noise.sample_wer(rng) for _ in range(4000)])
    assert abs(np.mean(rates == 0.0) - 0.3) < 0.03
    drawn = rates[rates > 0]
    assert drawn.min() >= 0.1 and drawn.max() <= 0.5
    assert abs(drawn.mean() - 0.3) < 0.01
    clean = sentences(1000, seed=5)
    unchanged = np.mean([noise.corrupt(s, rng) == s for s in clean])
    assert 0.3 <= unchanged < 0.45  # clean share, plus short sentences that drew zero errors


def test_noise_is_seeded() -> None:
    noise = GlossNoise(NoiseConfig(), frequencies())
    clean = sentences(50)
    first = [noise.corrupt(s, np.random.default_rng(7)) for s in clean]
    again = [noise.corrupt(s, np.random.default_rng(7)) for s in clean]
    other = [noise.corrupt(s, np.random.default_rng(8)) for s in clean]
    assert first == again
    assert first != other


def only(op: str) -> NoiseConfig:
    weights = dict.fromkeys(("deletion", "insertion", "substitution", "swap", "repetition"), 0.0)
    return NoiseConfig(**{**weights, op: 1.0})


def test_deletion_removes_exactly_the_drawn_errors() -> None:
    noise = GlossNoise(only("deletion"), frequencies())
    rng = np.random.default_rng(0)
    for s in sentences(100):
        out = noise.corrupt(s, rng, wer=0.3)
        assert edit_distance(s, out) == len(s) - len(out)


def test_insertion_draws_by_frequency_and_never_unseen_ids() -> None:
    freq = np.zeros(VOCAB)
    freq[[5, 6]] = [1.0, 9.0]  # id 6 nine times as frequent as id 5; all others unseen
    noise = GlossNoise(only("insertion"), freq)
    rng = np.random.default_rng(0)
    inserted: Counter[int] = Counter()
    for s in sentences(400):
        s = [t for t in s if t not in (5, 6)]
        out = noise.corrupt(s, rng, wer=0.3)
        assert len(out) - len(s) == edit_distance(s, out)
        inserted.update(t for t in out if t in (5, 6))
    assert set(inserted) == {5, 6}
    assert 6 < inserted[6] / inserted[5] < 14


def test_swap_and_repetition_keep_the_glosses() -> None:
    rng = np.random.default_rng(0)
    swap = GlossNoise(only("swap"), frequencies())
    repeat = GlossNoise(only("repetition"), frequencies())
    reordered = 0
    for s in sentences(100):
        swapped = swap.corrupt(s, rng, wer=0.4)
        # a swap needs a free partner; without one it falls back to a deletion
        assert Counter(swapped) <= Counter(s)
        reordered += sorted(swapped) == sorted(s) and swapped != s
        repeated = repeat.corrupt(s, rng, wer=0.4)
        merged = [t for i, t in enumerate(repeated) if i == 0 or repeated[i - 1] != t]
        original = [t for i, t in enumerate(s) if i == 0 or s[i - 1] != t]
        assert merged == original and len(repeated) >= len(s)
    assert reordered > 30  # an odd error budget ends with a one-error fallback


def test_substitution_uses_the_confusion_table(tmp_path) -> None:
    gloss_to_id = {f"G{i}": i for i in range(1, VOCAB)}
    table_file = tmp_path / "confusion.json"
    table_file.write_text(json.dumps({"G10": {"G11": 3, "G12": 1, "G10": 50, "UNSEEN": 4}}))
    table = load_confusion_table(table_file, gloss_to_id)
    ids, probs = table[10]
    assert ids.tolist() == [11, 12] and np.allclose(probs, [0.75, 0.25])
    config = NoiseConfig(**{**only("substitution").__dict__, "confusion_share": 1.0})
    noise = GlossNoise(config, frequencies(), table)
    rng = np.random.default_rng(0)
    seen: Counter[int] = Counter()
    for _ in range(300):
        out = noise.corrupt([10, 30], rng, wer=1.0)
        seen[out[0]] += 1
        assert out[1] != 30
    assert set(seen) == {11, 12}
    assert seen[11] > seen[12]


def test_bad_confusion_table_and_config_are_clear_errors(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(FormatError, match="bad.json"):
        load_confusion_table(bad, {"A": 1})
    with pytest.raises(FormatError, match="count"):
        load_confusion_table({"A": {"B": -1}}, {"A": 1, "B": 2})
    with pytest.raises(InputError, match="wer_min"):
        NoiseConfig(wer_min=0.5, wer_max=0.2)
    with pytest.raises(InputError, match="unknown noise option"):
        NoiseConfig.from_dict({"drop": 0.1})
    with pytest.raises(InputError, match="frequencies"):
        GlossNoise(NoiseConfig(), np.zeros(10))
    with pytest.raises(InputError, match="wer"):
        GlossNoise(NoiseConfig(), frequencies()).corrupt([1, 2], np.random.default_rng(0), 1.5)
