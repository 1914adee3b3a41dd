"""Confidence-aware correction: the recogniser's per-gloss confidence decides which edits stay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_slr.decoding import beam_search
from edge_slr.errors import InputError
from edge_slr.recognition.confidence import (
    ConfidenceFilter,
    correct_with_confidence,
    gloss_confidences,
)

SURE, UNSURE = 0.95, 0.3


def posteriors(frames: list[dict[int, float]], vocab: int = 5) -> np.ndarray:
    """Log-posteriors: per frame the listed token probabilities, the rest spread evenly."""
    probs = np.zeros((len(frames), vocab))
    for t, given in enumerate(frames):
        rest = (1.0 - sum(given.values())) / (vocab - len(given))
        probs[t] = rest
        for token, p in given.items():
            probs[t, token] = p
    return np.log(probs)


def test_confidence_is_the_mean_posterior_over_the_gloss_frames() -> None:
    lp = posteriors([{0: 0.9}, {1: 0.9}, {1: 0.8}, {0: 0.9}, {2: 0.4, 3: 0.35}, {0: 0.9}])
    result = beam_search(lp, 8)
    assert result.tokens == (1, 2)
    confidences = gloss_confidences(lp, result.tokens)
    np.testing.assert_allclose(confidences, [0.85, 0.4])
    np.testing.assert_allclose(confidences, [g.score for g in result.glosses])
    with pytest.raises(InputError, match="alignment"):
        gloss_confidences(lp[:1], (1, 2))


def test_a_confident_gloss_is_never_edited_an_unsure_one_can_be() -> None:
    keep = ConfidenceFilter(0.5)
    source = ("A", "B", "C")
    # substitution and deletion: only where the recogniser was unsure
    assert keep.apply(source, ("A", "X", "C"), [SURE, UNSURE, SURE]) == ("A", "X", "C")
    assert keep.apply(source, ("A", "X", "C"), [SURE, SURE, UNSURE]) == source
    assert keep.apply(source, ("A", "C"), [SURE, UNSURE, SURE]) == ("A", "C")
    assert keep.apply(source, ("A", "C"), [UNSURE, SURE, UNSURE]) == source
    # insertion: only next to an unsure gloss
    assert keep.apply(source, ("A", "B", "X", "C"), [SURE, SURE, UNSURE]) == ("A", "B", "X", "C")
    assert keep.apply(source, ("A", "B", "X", "C"), [UNSURE, SURE, SURE]) == source
    assert keep.apply(source, ("X", "A", "B", "C"), [UNSURE, SURE, SURE])[0] == "X"
    # mixed: the unsure half of a two-gloss edit is kept, the sure half is not
    assert keep.apply(source, ("X", "Y", "C"), [UNSURE, SURE, SURE]) == ("X", "B", "C")
    # the two ends of the threshold: nothing is unsure / everything is
    assert ConfidenceFilter(0.0).apply(source, ("X",), [UNSURE] * 3) == source
    assert ConfidenceFilter(1.0).apply(source, ("X",), [SURE] * 3) == ("X",)


def test_confident_glosses_survive_any_proposal_in_order() -> None:
    rng = np.random.default_rng(0)
    alphabet = list("ABCDEFG")
    keep = ConfidenceFilter(0.6)
    for _ in range(300):
        source = tuple(rng.choice(alphabet, rng.integers(1, 9)))
        proposal = tuple(rng.choice(alphabet, rng.integers(0, 10)))
        confidences = rng.uniform(0, 1, len(source))
        out = keep.apply(source, proposal, confidences)
        sure = [g for g, c in zip(source, confidences, strict=True) if c >= 0.6]
        it = iter(out)
        assert all(g in it for g in sure), (source, proposal, confidences, out)  # subsequence
        assert set(out) <= set(source) | set(proposal)
        if sure == list(source):
            assert out == source


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(InputError, match=r"threshold must be in \[0, 1\], got 1.5"):
        ConfidenceFilter(1.5)
    with pytest.raises(InputError, match="2 glosses, confidences of shape"):
        ConfidenceFilter(0.5).apply(("A", "B"), ("A",), [0.9])
    with pytest.raises(InputError, match="must be in"):
        ConfidenceFilter(0.5).apply(("A",), ("B",), [float("nan")])
    with pytest.raises(InputError, match="2 sentences, 1 confidence lists"):
        correct_with_confidence(None, [["A"], ["B"]], [[0.5]], 0.5)


@pytest.fixture(scope="module")
def corrector(shared_data: Path, tmp_path_factory):  # type: ignore[no-untyped-def]
    from edge_slr.data.corpora import load_corpus
    from edge_slr.training.corrector import load_config, train_corrector

    root = shared_data / "phoenix2014t"
    sentences = [s.glosses for s in load_corpus("phoenix2014t", root, "train") if s.glosses]
    overrides = [
        "model.d_model=32", "model.n_heads=2", "model.ff_dim=64", "model.encoder_layers=1",
        "model.dropout=0.0", "train.max_steps=40", "train.batch_size=32", "train.threads=1",
        "train.learning_rate=3e-3", "train.warmup_steps=5", "train.eval_every=20",
        "train.log_every=20", "train.holdout=0.1", "train.gate_levels=[0.0, 0.2]",
    ]  # fmt: skip
    trained, _ = train_corrector(
        load_config(None, overrides), tmp_path_factory.mktemp("corrector"),
        sentences=sentences[:200],
    )  # fmt: skip
    return trained, sentences[:20]


def test_the_real_corrector_edits_only_unsure_glosses(corrector) -> None:  # type: ignore[no-untyped-def]
    model, sentences = corrector
    noisy = [list(s[1:]) + [s[0]] for s in sentences]  # rotated: the model will change them
    ungated = [c.glosses for c in model.correct_batch(noisy, gate=False)]
    assert any(u != tuple(n) for u, n in zip(ungated, noisy, strict=True))
    sure = [[SURE] * len(s) for s in noisy]
    assert correct_with_confidence(model, noisy, sure, 0.5, gate=False) == [tuple(s) for s in noisy]
    unsure = [[UNSURE] * len(s) for s in noisy]
    assert correct_with_confidence(model, noisy, unsure, 0.5, gate=False) == ungated
    # only the first gloss unsure: every other gloss comes back where it was
    first = [[UNSURE] + [SURE] * (len(s) - 1) for s in noisy]
    for out, source in zip(correct_with_confidence(model, noisy, first, 0.5, gate=False), noisy,
                           strict=True):  # fmt: skip
        it = iter(out)
        assert all(g in it for g in source[1:])
