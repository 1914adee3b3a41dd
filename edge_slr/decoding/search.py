"""Greedy and prefix beam search CTC decoders, and a batch helper."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_slr.decoding.ctc import (
    NEG_INF,
    DecodeResult,
    LanguageModel,
    check_labels,
    forward_log_prob,
    result_for,
    spans_from_path,
    validate_log_probs,
)
from edge_slr.errors import InputError

# Prefix beam search costs about beam_width x token_top_k Python steps per output step (0.1 s a
# step at 4096 on the dev machine), so an unbounded width (``--beam 1000000``) runs for minutes.
# 4096 still lets a search over a few short frames hold every prefix (exact search, as the tests
# do); a recogniser needs far less (RecognizerOptions allows 256; KD-MSLRT decodes with 10).
MAX_BEAM_WIDTH = 4096


def greedy_decode(
    log_probs: np.ndarray, blank: int = 0, labels: Sequence[str] | None = None
) -> DecodeResult:
    """Best path decoding: argmax every frame, merge repeats, drop blanks.

    The spans are the runs of the best path itself; ``path_log_prob`` is that path's log-prob.
    """
    lp = validate_log_probs(log_probs, blank)
    check_labels(labels, lp.shape[1])
    path = np.argmax(lp, axis=1)
    glosses = spans_from_path(lp, path, blank, labels)
    tokens = [g.token for g in glosses]
    path_log_prob = float(lp[np.arange(len(path)), path].sum())
    return DecodeResult(tuple(tokens), glosses, forward_log_prob(lp, tokens, blank), path_log_prob)


def _logadd(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


def _candidates(
    lp: np.ndarray, blank: int, top_k: int | None, min_prob: float
) -> list[list[tuple[int, float]]]:
    """Per frame, the non-blank tokens a prefix may be extended with, most probable first.

    A token is kept when it is among the ``top_k`` most probable non-blank tokens of the frame
    and its posterior is at least ``min_prob``; the most probable non-blank token is always
    kept, so the greedy labelling stays reachable. ``top_k=None, min_prob=0`` prunes nothing.
    """
    frames, vocab = lp.shape
    k = vocab - 1 if top_k is None else min(top_k, vocab - 1)
    masked = lp.copy()
    masked[:, blank] = NEG_INF
    frame_ids = np.arange(frames)
    keep = masked >= math.log(min_prob) if min_prob > 0 else np.ones(lp.shape, dtype=bool)
    keep[:, blank] = False
    keep[frame_ids, masked.argmax(axis=1)] = True
    crowded = np.flatnonzero(keep.sum(axis=1) > k)
    if crowded.size:  # more than k tokens pass the threshold: keep the k most probable
        top = np.argpartition(-masked[crowded], k - 1, axis=1)[:, :k]
        keep[crowded] = False
        keep[crowded[:, None], top] = True
    rows, cols = np.nonzero(keep)
    values = masked[rows, cols]
    order = np.lexsort((cols, -values, rows))  # per frame: most probable first
    rows, cols, values = rows[order], cols[order].tolist(), values[order].tolist()
    bounds = np.searchsorted(rows, np.arange(frames + 1)).tolist()
    return [
        [(c, v) for c, v in zip(cols[lo:hi], values[lo:hi], strict=True) if v > NEG_INF]
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
    ]


class _PrefixTree:
    """Prefixes as nodes of a trie: integer keys instead of hashing growing tuples."""

    def __init__(self, lm: LanguageModel | None) -> None:
        self.parent, self.last, self.lm_score, self.length = [-1], [-1], [0.0], [0]
        self.children: dict[tuple[int, int], int] = {}
        self.lm = lm

    def tokens(self, node: int, limit: int | None = None) -> tuple[int, ...]:
        """The prefix of ``node``; with ``limit``, only its last ``limit`` tokens."""
        out: list[int] = []
        while node > 0 and (limit is None or len(out) < limit):
            out.append(self.last[node])
            node = self.parent[node]
        return tuple(reversed(out))

    def _lm_context(self, node: int) -> tuple[int, ...]:
        # An LM with a ``context_size`` reads only that many last tokens (an n-gram: n - 1; a
        # shorter tuple is the whole prefix): walk no further up the tree.
        size = getattr(self.lm, "context_size", None)
        return self.tokens(node, None if size is None else int(size))

    def child(self, node: int, token: int) -> int:
        key = (node, token)
        found = self.children.get(key)
        if found is not None:
            return found
        new = len(self.parent)
        self.children[key] = new
        self.parent.append(node)
        self.last.append(token)
        self.lm_score.append(self.lm_score[node] + self._lm(node, token))
        self.length.append(self.length[node] + 1)
        return new

    def final_lm_score(self, node: int) -> float:
        """The LM score of a whole labelling: its tokens plus the LM's end-of-sentence score."""
        final = getattr(self.lm, "final", None)
        if final is None:
            return self.lm_score[node]
        context = self._lm_context(node)
        return self.lm_score[node] + _checked_lm_value(final(context), "the end")

    def _lm(self, node: int, token: int) -> float:
        if self.lm is None:
            return 0.0
        return _checked_lm_value(self.lm(self._lm_context(node), token), f"token {token}")


def _checked_lm_value(returned: Any, what: str) -> float:
    try:
        value = float(returned)
    except (TypeError, ValueError):
        value = math.nan
    if math.isnan(value) or value == math.inf:
        raise InputError(
            f"the language model returned {returned!r} for {what}; "
            "expected a log-probability (a float, -inf allowed)"
        )
    return value


@dataclass(frozen=True)
class _Fusion:
    """How prefixes are ranked: log P_ctc + ``weight`` * LM score + ``bonus`` * glosses."""

    lm: LanguageModel | None
    weight: float
    bonus: float

    def bound(self) -> float | None:
        """The most a token can add to the weighted LM score; None when unknown."""
        if self.lm is None:
            return 0.0
        top = getattr(self.lm, "max_log_prob", None)
        return None if top is None else self.weight * float(top)


def _search(
    lp: np.ndarray,
    beam_width: int,
    blank: int,
    fusion: _Fusion,
    candidates: list[list[tuple[int, float]]],
) -> tuple[_PrefixTree, list[tuple[float, int]]]:
    """Prefix beam search; returns the tree and the final beams as (score, node), best first.

    Each beam holds log p_b (prefix ending in blank) and log p_nb (ending in its last token).
    """
    tree = _PrefixTree(fusion.lm)
    parent, last, lm_score, children = tree.parent, tree.last, tree.lm_score, tree.children
    length, weight, bonus, bound = tree.length, fusion.weight, fusion.bonus, fusion.bound()

    def fused(node: int, value: float) -> float:
        return value + weight * lm_score[node] + bonus * length[node]

    beams: dict[int, tuple[float, float]] = {0: (0.0, NEG_INF)}  # the empty prefix
    for t, frame_candidates in enumerate(candidates):
        row, blank_lp = lp[t], float(lp[t, blank])
        totals = {node: _logadd(pb, pnb) for node, (pb, pnb) in beams.items()}
        # Each beam's prefix stays alive through a blank, so a new prefix whose best possible
        # ranking score is below the beam_width-th of those cannot survive this frame: skip it.
        # The LM part of that bound needs the LM's largest score (0 for a normalised LM).
        floor = NEG_INF
        if bound is not None and len(beams) >= beam_width:
            alive = (fused(node, total) for node, total in totals.items())
            floor = heapq.nlargest(beam_width, alive)[-1] + blank_lp
        next_b = {node: total + blank_lp for node, total in totals.items()}
        next_nb: dict[int, float] = {}
        for node, (_, pnb) in beams.items():
            end = last[node]
            if end >= 0:  # the last token goes on, the prefix is unchanged
                next_nb[node] = pnb + float(row[end])
        for node in beams:  # a beam that extends another beam gets its full share
            up = parent[node]
            if up in beams:
                token = last[node]
                base = beams[up][0] if token == last[up] else totals[up]
                next_nb[node] = _logadd(next_nb.get(node, NEG_INF), base + float(row[token]))
        for node, (pb, _) in beams.items():
            total, end = totals[node], last[node]
            # the CTC score a child of this node needs to reach the floor, at the LM's best
            cut = floor - fused(node, bonus) - (bound or 0.0)
            for token, token_lp in frame_candidates:
                if total + token_lp < cut:
                    break  # candidates come most probable first
                # the same token again only starts a new gloss after a blank
                score = (pb if token == end else total) + token_lp
                child = children.get((node, token))
                if score < cut or score == NEG_INF or child in beams:
                    continue
                if child is None:
                    child = tree.child(node, token)
                next_nb[child] = score  # a new prefix has one parent: a single contribution
        scored = [(fused(n, _logadd(next_b.get(n, NEG_INF), nb)), -n) for n, nb in next_nb.items()]
        scored += [(fused(n, b), -n) for n, b in next_b.items() if n not in next_nb]
        kept = heapq.nlargest(beam_width, scored)  # ties: the older prefix (smaller id) wins
        beams = {-m: (next_b.get(-m, NEG_INF), next_nb.get(-m, NEG_INF)) for _, m in kept}
    final = sorted(
        (
            (_logadd(pb, pnb) + weight * tree.final_lm_score(n) + bonus * length[n], -n)
            for n, (pb, pnb) in beams.items()
        ),
        reverse=True,
    )
    return tree, [(s, -m) for s, m in final]


def beam_search_nbest(
    log_probs: np.ndarray,
    nbest: int = 5,
    beam_width: int = 10,
    blank: int = 0,
    lm: LanguageModel | None = None,
    lm_weight: float = 1.0,
    token_top_k: int | None = 16,
    token_min_prob: float = 1e-4,
    labels: Sequence[str] | None = None,
    insertion_bonus: float = 0.0,
) -> list[DecodeResult]:
    """The ``nbest`` best labellings of a CTC prefix beam search, best first.

    ``lm(prefix_tokens, next_token) -> log-prob`` is an optional token-level language model,
    called once per new prefix (shallow fusion); prefixes are ranked by log P(prefix) +
    ``lm_weight`` * LM score + ``insertion_bonus`` * number of glosses (the bonus offsets the
    LM's cost per gloss, which otherwise favours short labellings). An ``lm`` with a
    ``final(prefix_tokens)`` method (the end-of-sentence score) has it added to the finished
    labellings, and one with a ``max_log_prob`` attribute (the largest value it ever returns,
    0 for a normalised LM such as :class:`~edge_slr.decoding.lm.GlossLMScorer`) lets the search
    skip prefixes that cannot enter the beam, as it does without an LM; with a ``context_size``
    attribute k it is handed only the last k tokens of a prefix (all of a shorter one).
    Per frame only the ``token_top_k`` most probable non-blank tokens with a posterior of at
    least ``token_min_prob`` (and always the best one) extend a prefix; ``token_top_k=None,
    token_min_prob=0`` searches exactly (with a wide enough beam). Results carry the exact
    CTC log-prob of their labelling and the spans of its Viterbi alignment, and are ordered by
    that exact score (plus the weighted LM score, with the end-of-sentence score, and bonus).
    """
    lp = validate_log_probs(log_probs, blank)
    check_labels(labels, lp.shape[1])
    _check_search_options(nbest, beam_width, lm, lm_weight, token_top_k, token_min_prob)
    if not math.isfinite(insertion_bonus):
        raise InputError(f"insertion_bonus must be a finite number, got {insertion_bonus!r}")
    candidates = _candidates(lp, blank, token_top_k, token_min_prob)
    tree, final = _search(
        lp, beam_width, blank, _Fusion(lm, lm_weight, insertion_bonus), candidates
    )
    results = [
        result_for(lp, tree.tokens(node), blank, labels, tree.final_lm_score(node))
        for score, node in final[:nbest]
        if score > NEG_INF
    ]
    results.sort(
        key=lambda r: r.log_prob + lm_weight * r.lm_log_prob + insertion_bonus * len(r.tokens),
        reverse=True,
    )
    return results


def beam_search(
    log_probs: np.ndarray,
    beam_width: int = 10,
    blank: int = 0,
    lm: LanguageModel | None = None,
    lm_weight: float = 1.0,
    token_top_k: int | None = 16,
    token_min_prob: float = 1e-4,
    labels: Sequence[str] | None = None,
    insertion_bonus: float = 0.0,
) -> DecodeResult:
    """The best labelling of a CTC prefix beam search (see :func:`beam_search_nbest`)."""
    results = beam_search_nbest(
        log_probs,
        1,
        beam_width,
        blank,
        lm,
        lm_weight,
        token_top_k,
        token_min_prob,
        labels,
        insertion_bonus,
    )
    if not results:
        raise InputError("every prefix has probability 0 (the language model excluded them all)")
    return results[0]


def _check_search_options(
    nbest: int,
    beam_width: int,
    lm: LanguageModel | None,
    lm_weight: float,
    token_top_k: int | None,
    token_min_prob: float,
) -> None:
    for name, value in (("nbest", nbest), ("beam_width", beam_width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{name} must be an int >= 1, got {value!r}")
    if beam_width > MAX_BEAM_WIDTH:
        raise InputError(
            f"beam_width must be at most {MAX_BEAM_WIDTH} (wider beams cost time and do not "
            f"change the result), got {beam_width!r}"
        )
    if nbest > beam_width:
        raise InputError(f"nbest ({nbest}) cannot exceed beam_width ({beam_width})")
    if token_top_k is not None and (not isinstance(token_top_k, int) or token_top_k < 1):
        raise InputError(f"token_top_k must be None or an int >= 1, got {token_top_k!r}")
    if not 0.0 <= token_min_prob <= 1.0:
        raise InputError(f"token_min_prob must be in [0, 1], got {token_min_prob!r}")
    if lm is not None and not callable(lm):
        raise InputError(f"lm must be callable (prefix_tokens, next_token) -> float, got {lm!r}")
    if not (math.isfinite(lm_weight) and lm_weight >= 0):
        raise InputError(f"lm_weight must be finite and >= 0, got {lm_weight!r}")


def decode_batch(
    log_probs: np.ndarray,
    lengths: Sequence[int] | np.ndarray,
    method: str = "beam",
    **options: Any,
) -> list[DecodeResult]:
    """Decode a padded batch ``(B, T, V)``; item b uses its first ``lengths[b]`` frames.

    ``method`` is "greedy" or "beam"; ``options`` go to :func:`greedy_decode` or
    :func:`beam_search`. Padding frames are never read, so they may hold anything.
    """
    arr = np.asarray(log_probs)
    if arr.ndim != 3:
        raise InputError(f"batched log_probs must be 3-D (B, T, V), got shape {arr.shape}")
    lens = np.asarray(lengths)
    if lens.shape != (arr.shape[0],) or not np.issubdtype(lens.dtype, np.integer):
        raise InputError(
            f"lengths must be {arr.shape[0]} integers (one per batch item), got {lengths!r}"
        )
    if lens.size and (lens.min() < 1 or lens.max() > arr.shape[1]):
        raise InputError(f"lengths must lie in [1, T={arr.shape[1]}], got {lens.tolist()}")
    if method not in ("greedy", "beam"):
        raise InputError(f"method must be 'greedy' or 'beam', got {method!r}")
    decode: Callable[..., DecodeResult] = greedy_decode if method == "greedy" else beam_search
    return [decode(arr[b, : int(n)], **options) for b, n in enumerate(lens)]
