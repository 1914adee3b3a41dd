"""CTC decoding checked against brute-force enumeration of every alignment."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from edge_slr.decoding import (
    DecodeResult,
    beam_search,
    beam_search_nbest,
    ctc_log_likelihood,
    decode_batch,
    forced_align,
    greedy_decode,
    log_softmax,
    validate_log_probs,
)
from edge_slr.decoding.search import MAX_BEAM_WIDTH
from edge_slr.errors import InputError

EXACT = {"token_top_k": None, "token_min_prob": 0.0, "beam_width": MAX_BEAM_WIDTH}


def collapse(path: tuple[int, ...], blank: int = 0) -> tuple[int, ...]:
    out, previous = [], None
    for label in path:
        if label != previous and label != blank:
            out.append(label)
        previous = label
    return tuple(out)


def brute_force(lp: np.ndarray, blank: int = 0) -> tuple[dict[tuple[int, ...], float], np.ndarray]:
    """log P(labelling) for every labelling (logsumexp over all V^T paths) and every path score."""
    frames, vocab = lp.shape
    paths = np.array(list(itertools.product(range(vocab), repeat=frames)))
    path_scores = lp[np.arange(frames), paths].sum(axis=1)
    labellings: dict[tuple[int, ...], float] = {}
    for path, value in zip(map(tuple, paths), path_scores, strict=True):
        key = collapse(path, blank)
        labellings[key] = float(np.logaddexp(labellings.get(key, -np.inf), value))
    return labellings, path_scores


def random_log_probs(rng: np.random.Generator, frames: int, vocab: int) -> np.ndarray:
    return log_softmax(rng.normal(size=(frames, vocab)) * rng.uniform(0.5, 3.0))


def tiny_cases(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        random_log_probs(rng, int(rng.integers(1, 7)), int(rng.integers(3, 5)))
        for _ in range(count)
    ]


# ---------------------------------------------------------------- against brute force


@pytest.mark.parametrize("case", range(30))
def test_exact_beam_search_finds_most_probable_labelling(case: int) -> None:
    lp = tiny_cases(30, seed=11)[case]
    labellings, _ = brute_force(lp)
    best = max(labellings, key=labellings.get)
    result = beam_search(lp, **EXACT)
    assert result.tokens == best
    assert result.log_prob == pytest.approx(labellings[best], abs=1e-9)


@pytest.mark.parametrize("case", range(30))
def test_greedy_is_the_best_path(case: int) -> None:
    lp = tiny_cases(30, seed=12)[case]
    labellings, path_scores = brute_force(lp)
    result = greedy_decode(lp)
    assert result.path_log_prob == pytest.approx(path_scores.max(), abs=1e-9)
    assert result.tokens == collapse(tuple(np.argmax(lp, axis=1)))
    assert result.log_prob == pytest.approx(labellings[result.tokens], abs=1e-9)


def test_forward_and_forced_alignment_match_brute_force() -> None:
    rng = np.random.default_rng(5)
    for _ in range(15):
        lp = random_log_probs(rng, int(rng.integers(2, 7)), 4)
        labellings, _ = brute_force(lp)
        frames = lp.shape[0]
        paths = list(itertools.product(range(4), repeat=frames))
        for tokens, expected in labellings.items():
            assert ctc_log_likelihood(lp, tokens) == pytest.approx(expected, abs=1e-9)
            path, path_lp = forced_align(lp, tokens)
            assert collapse(tuple(path)) == tokens
            best = max(lp[np.arange(frames), p].sum() for p in paths if collapse(p) == tokens)
            assert path_lp == pytest.approx(best, abs=1e-9)
            assert lp[np.arange(frames), path].sum() == pytest.approx(path_lp, abs=1e-9)
        # a labelling no path produces has probability 0
        assert ctc_log_likelihood(lp, [1] * (frames + 1)) == -math.inf


def test_unpruned_search_keeps_exact_prefix_probabilities() -> None:
    # Results report the exact forward log-prob, which would hide a wrong recursion inside the
    # search; so check the search's own per-prefix probabilities against brute force.
    from edge_slr.decoding.search import _candidates, _Fusion, _search

    for lp in tiny_cases(15, seed=15):
        labellings, _ = brute_force(lp)
        candidates = _candidates(lp, 0, None, 0.0)
        tree, final = _search(lp, 5000, 0, _Fusion(None, 1.0, 0.0), candidates)
        found = {tree.tokens(node): value for value, node in final}
        reachable = {k: v for k, v in labellings.items() if v > -math.inf}
        assert found.keys() == reachable.keys()
        for tokens, value in reachable.items():
            assert found[tokens] == pytest.approx(value, abs=1e-9)


def test_nbest_are_the_most_probable_labellings_in_order() -> None:
    for lp in tiny_cases(10, seed=13):
        labellings, _ = brute_force(lp)
        ranked = sorted(labellings.items(), key=lambda item: -item[1])[:3]
        results = beam_search_nbest(lp, nbest=3, **EXACT)
        assert [r.tokens for r in results] == [tokens for tokens, _ in ranked][: len(results)]
        for result, (_, value) in zip(results, ranked, strict=False):
            assert result.log_prob == pytest.approx(value, abs=1e-9)


def test_forward_survives_probabilities_below_float_range() -> None:
    # token 1 is e^-800 less likely than blank: the rescaled forward pass underflows and falls
    # back to log space, which still gives the exact value
    row = log_softmax(np.array([0.0, -800.0, -800.0]))
    lp = np.stack([row, row])
    labellings, _ = brute_force(lp)
    assert ctc_log_likelihood(lp, [1]) == pytest.approx(labellings[(1,)], abs=1e-9)
    assert labellings[(1,)] < -790


# ---------------------------------------------------------------- spans and scores


def peaked(frames: list[int], vocab: int = 4, peak: float = 0.9) -> np.ndarray:
    """Frame t puts ``peak`` on label frames[t], the rest spread evenly."""
    probs = np.full((len(frames), vocab), (1 - peak) / (vocab - 1))
    probs[np.arange(len(frames)), frames] = peak
    return np.log(probs)


def test_spans_cover_the_emitting_frames() -> None:
    lp = peaked([0, 1, 1, 1, 0, 2, 2, 0, 1, 0])
    for result in (greedy_decode(lp), beam_search(lp)):
        assert result.tokens == (1, 2, 1)
        assert [(g.token, g.start, g.end) for g in result.glosses] == [
            (1, 1, 4),
            (2, 5, 7),
            (1, 8, 9),
        ]
        assert [g.score for g in result.glosses] == pytest.approx([0.9, 0.9, 0.9])


def test_repeated_token_needs_a_blank_between() -> None:
    merged = beam_search(peaked([1, 1, 1]))
    assert merged.tokens == (1,) and (merged.glosses[0].start, merged.glosses[0].end) == (0, 3)
    split = beam_search(peaked([1, 0, 1]))
    assert split.tokens == (1, 1)
    assert [(g.start, g.end) for g in split.glosses] == [(0, 1), (2, 3)]


def test_spans_are_ordered_and_agree_with_the_viterbi_alignment() -> None:
    rng = np.random.default_rng(21)
    for _ in range(20):
        logits = rng.normal(size=(40, 12)) * 2
        logits[:, 0] += 2
        lp = log_softmax(logits)
        result = beam_search(lp, beam_width=8)
        path, path_lp = forced_align(lp, result.tokens)
        assert result.path_log_prob == pytest.approx(path_lp)
        previous_end = 0
        for gloss in result.glosses:
            assert previous_end <= gloss.start < gloss.end <= 40
            assert (path[gloss.start : gloss.end] == gloss.token).all()
            expected = np.exp(lp[gloss.start : gloss.end, gloss.token]).mean()
            assert gloss.score == pytest.approx(expected)
            previous_end = gloss.end
        assert tuple(g.token for g in result.glosses) == result.tokens


def test_labels_name_the_glosses() -> None:
    result = greedy_decode(peaked([0, 1, 0, 2]), labels=["<blank>", "REGEN", "SONNE", "WIND"])
    assert result.labels == ("REGEN", "SONNE")
    assert beam_search(peaked([0, 3]), labels=["<blank>", "A", "B", "C"]).labels == ("C",)


def test_empty_labelling() -> None:
    lp = peaked([0, 0, 0])
    for result in (greedy_decode(lp), beam_search(lp)):
        assert result.tokens == () and result.glosses == ()
        assert result.log_prob == pytest.approx(np.logaddexp.reduce([3 * math.log(0.9)]))


def test_blank_need_not_be_zero() -> None:
    lp = peaked([3, 1, 3, 2], vocab=4)
    assert greedy_decode(lp, blank=3).tokens == (1, 2)
    assert beam_search(lp, blank=3).tokens == (1, 2)


# ---------------------------------------------------------------- properties of the search


def test_pruning_shortcut_changes_nothing() -> None:
    # Without an LM the search skips prefixes that cannot survive the frame; a neutral LM turns
    # that shortcut off, so both must return the same n-best lists.
    rng = np.random.default_rng(8)
    for _ in range(20):
        logits = rng.normal(size=(30, 25)) * 3
        logits[:, 0] += rng.uniform(0, 4)
        lp = log_softmax(logits)
        plain = beam_search_nbest(lp, nbest=4, beam_width=6)
        neutral = beam_search_nbest(lp, nbest=4, beam_width=6, lm=lambda prefix, token: 0.0)
        assert plain == neutral


def test_wide_beam_is_never_worse_than_greedy() -> None:
    rng = np.random.default_rng(9)
    for _ in range(20):
        lp = log_softmax(rng.normal(size=(25, 30)) * 2.5)
        greedy = greedy_decode(lp)
        # with top-1 candidates the greedy labelling is reachable; a wide beam keeps it
        beam = beam_search(lp, beam_width=2000, token_top_k=1)
        assert beam.log_prob >= greedy.log_prob - 1e-9
        assert beam_search(lp, beam_width=10).log_prob >= greedy.log_prob - 1e-9


def test_float32_input_and_minus_infinity_are_accepted() -> None:
    lp = peaked([0, 1, 0, 2]).astype(np.float32)
    assert beam_search(lp).tokens == (1, 2)
    with np.errstate(divide="ignore"):
        hard = np.log(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    result = beam_search(hard)
    assert result.tokens == (1, 2) and result.log_prob == 0.0


# ---------------------------------------------------------------- language-model hook


def test_lm_hook_matches_brute_force_rescoring() -> None:
    bigram = {(None, 1): -0.1, (None, 2): -2.0, (1, 2): -0.2, (2, 1): -3.0, (1, 1): -4.0}
    calls: list[tuple[tuple[int, ...], int]] = []

    def lm(prefix: tuple[int, ...], token: int) -> float:
        calls.append((prefix, token))
        return bigram.get((prefix[-1] if prefix else None, token), -5.0)

    def lm_total(tokens: tuple[int, ...]) -> float:
        return sum(lm(tokens[:i], t) for i, t in enumerate(tokens))

    for weight in (0.5, 2.0):
        for lp in tiny_cases(8, seed=14):
            labellings, _ = brute_force(lp)
            target = max(labellings, key=lambda lab: labellings[lab] + weight * lm_total(lab))
            result = beam_search(lp, lm=lm, lm_weight=weight, **EXACT)
            assert result.tokens == target
            assert result.lm_log_prob == pytest.approx(lm_total(target))
            assert result.log_prob == pytest.approx(labellings[target], abs=1e-9)
    assert calls and all(isinstance(p, tuple) for p, _ in calls)


def test_lm_can_forbid_a_token() -> None:
    lp = peaked([0, 1, 0, 2, 0, 1], vocab=3)
    assert beam_search(lp).tokens == (1, 2, 1)
    result = beam_search(lp, lm=lambda prefix, token: -math.inf if token == 2 else 0.0)
    labellings, _ = brute_force(lp)
    allowed = {tokens: value for tokens, value in labellings.items() if 2 not in tokens}
    assert result.tokens == max(allowed, key=allowed.get)
    assert result.lm_log_prob == 0.0


def test_bad_lm() -> None:
    lp = peaked([0, 1])
    with pytest.raises(InputError, match="language model returned nan"):
        beam_search(lp, lm=lambda prefix, token: math.nan)
    with pytest.raises(InputError, match="language model returned 'high'"):
        beam_search(lp, lm=lambda prefix, token: "high")  # type: ignore[arg-type,return-value]
    with pytest.raises(InputError, match="lm must be callable"):
        beam_search(lp, lm="bigram.arpa")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="lm_weight must be finite and >= 0"):
        beam_search(lp, lm=lambda p, t: 0.0, lm_weight=-1.0)


class BigramLM:
    """A normalised bigram over tokens 1..V-1 and the end (token -1), with the decoder's hooks."""

    max_log_prob = 0.0

    def __init__(self, vocab: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        # row: previous token (0 = sentence start); column: next token, the last is the end
        self.table = np.log(rng.dirichlet(np.full(vocab, 0.5), size=vocab))

    def __call__(self, prefix: tuple[int, ...], token: int) -> float:
        return float(self.table[prefix[-1] if prefix else 0, token - 1])

    def final(self, prefix: tuple[int, ...]) -> float:
        return float(self.table[prefix[-1] if prefix else 0, -1])

    def total(self, tokens: tuple[int, ...]) -> float:
        return sum(self(tokens[:i], t) for i, t in enumerate(tokens)) + self.final(tokens)


class Unbounded:
    """The same LM without ``max_log_prob``: the search may not skip any prefix."""

    def __init__(self, lm: BigramLM) -> None:
        self.lm = lm

    def __call__(self, prefix: tuple[int, ...], token: int) -> float:
        return self.lm(prefix, token)

    def final(self, prefix: tuple[int, ...]) -> float:
        return self.lm.final(prefix)


def test_fusion_with_insertion_bonus_matches_brute_force() -> None:
    for case, lp in enumerate(tiny_cases(12, seed=16)):
        lm = BigramLM(lp.shape[1], seed=case)
        labellings, _ = brute_force(lp)
        for weight, bonus in ((0.0, 1.5), (0.7, 0.0), (0.7, 2.0), (1.5, -0.5)):
            scores = {
                tokens: value + weight * lm.total(tokens) + bonus * len(tokens)
                for tokens, value in labellings.items()
            }
            target = max(scores, key=scores.__getitem__)
            result = beam_search(lp, lm=lm, lm_weight=weight, insertion_bonus=bonus, **EXACT)
            assert result.tokens == target
            assert result.lm_log_prob == pytest.approx(lm.total(target))  # with the end score
            assert result.log_prob == pytest.approx(labellings[target], abs=1e-9)


def test_bounded_lm_pruning_changes_nothing() -> None:
    # An LM that declares max_log_prob = 0 lets the search skip prefixes that cannot enter the
    # beam; the same LM without the declaration searches everything: same n-best lists.
    rng = np.random.default_rng(18)
    for case in range(15):
        logits = rng.normal(size=(30, 25)) * 3
        logits[:, 0] += rng.uniform(0, 4)
        lp = log_softmax(logits)
        lm = BigramLM(25, seed=case)
        for weight, bonus in ((0.5, 0.0), (1.0, 2.0), (0.3, -1.0)):
            options = {"nbest": 4, "beam_width": 6, "lm_weight": weight, "insertion_bonus": bonus}
            bounded = beam_search_nbest(lp, lm=lm, **options)
            assert bounded == beam_search_nbest(lp, lm=Unbounded(lm), **options)


def test_insertion_bonus_alone_favours_longer_labellings() -> None:
    lp = peaked([0, 1, 0, 2, 0, 1], vocab=3, peak=0.5)
    plain = beam_search(lp)
    longer = beam_search(lp, insertion_bonus=3.0)
    assert len(longer.tokens) > len(plain.tokens)
    assert beam_search(lp, insertion_bonus=0.0) == plain


def test_bad_insertion_bonus_and_end_score() -> None:
    lp = peaked([0, 1])
    with pytest.raises(InputError, match="insertion_bonus must be a finite number, got nan"):
        beam_search(lp, insertion_bonus=math.nan)

    class BadEnd(BigramLM):
        def final(self, prefix: tuple[int, ...]) -> float:
            return math.nan

    with pytest.raises(InputError, match="language model returned nan for the end"):
        beam_search(lp, lm=BadEnd(4, seed=0))


# ---------------------------------------------------------------- batches


def test_batch_matches_single_decodes_and_ignores_padding() -> None:
    rng = np.random.default_rng(4)
    items = [random_log_probs(rng, n, 6) for n in (7, 3, 5)]
    batch = np.full((3, 7, 6), np.nan)  # padding is never read
    for b, item in enumerate(items):
        batch[b, : len(item)] = item
    lengths = np.array([7, 3, 5])
    for method, single in (("greedy", greedy_decode), ("beam", beam_search)):
        decoded = decode_batch(batch, lengths, method=method)
        assert decoded == [single(item) for item in items]
    assert all(isinstance(r, DecodeResult) for r in decoded)
    assert decode_batch(batch, [7, 3, 5], beam_width=3)[0] == beam_search(items[0], beam_width=3)


def test_bad_batches() -> None:
    batch = log_softmax(np.zeros((2, 4, 3)))
    with pytest.raises(InputError, match="3-D"):
        decode_batch(batch[0], [4])
    with pytest.raises(InputError, match="one per batch item"):
        decode_batch(batch, [4])
    with pytest.raises(InputError, match="one per batch item"):
        decode_batch(batch, [4.0, 2.0])
    with pytest.raises(InputError, match=r"lie in \[1, T=4\]"):
        decode_batch(batch, [4, 0])
    with pytest.raises(InputError, match="method must be 'greedy' or 'beam'"):
        decode_batch(batch, [4, 4], method="viterbi")


# ---------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.zeros(5), r"2-D array \(T, V\), got shape \(5,\)"),
        (np.zeros((1, 2, 3)), "2-D array"),
        (np.zeros((0, 4)), "at least one frame"),
        (np.zeros((2, 3), dtype=np.int64), "floating point, got dtype int64"),
        (np.array([[0.0, np.nan, -1.0]]), r"NaN/\+inf values \(first at frame 0, token 1"),
        (np.array([[0.0, np.inf, -1.0]]), "NaN/"),
        (np.array([[2.0, 1.0, 0.5]]), "not a log-probability distribution.*log_softmax"),
        (np.array([[0.5, 0.3, 0.2]]), "not a log-probability distribution"),
    ],
)
def test_bad_log_probs(value: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message):
        validate_log_probs(value)
    with pytest.raises(InputError, match=message):
        beam_search(value)
    with pytest.raises(InputError, match=message):
        greedy_decode(value)


def test_bad_options() -> None:
    lp = peaked([0, 1, 2])
    with pytest.raises(InputError, match=r"blank index must be an int in \[0, V=4\), got 4"):
        greedy_decode(lp, blank=4)
    with pytest.raises(InputError, match="blank index"):
        beam_search(lp, blank=-1)
    with pytest.raises(InputError, match="beam_width must be an int >= 1, got 0"):
        beam_search(lp, beam_width=0)
    # an unbounded width would run for minutes (issue 13): a clear error instead
    with pytest.raises(InputError, match=r"beam_width must be at most 4096 .*got 1000000"):
        beam_search(lp, beam_width=1_000_000)
    with pytest.raises(InputError, match="beam_width must be an int >= 1, got True"):
        beam_search(lp, beam_width=True)
    with pytest.raises(InputError, match=r"nbest \(5\) cannot exceed beam_width \(2\)"):
        beam_search_nbest(lp, nbest=5, beam_width=2)
    with pytest.raises(InputError, match="token_top_k"):
        beam_search(lp, token_top_k=0)
    with pytest.raises(InputError, match="token_min_prob must be in"):
        beam_search(lp, token_min_prob=1.5)
    with pytest.raises(InputError, match="labels must name all V=4 tokens, got 2"):
        greedy_decode(lp, labels=["a", "b"])
    with pytest.raises(InputError, match="non-blank ids"):
        ctc_log_likelihood(lp, [0, 1])
    with pytest.raises(InputError, match="no CTC alignment of 2 tokens"):
        forced_align(peaked([1, 1]), [1, 1])  # a repeat needs a blank: 3 frames
