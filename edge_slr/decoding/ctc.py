"""CTC building blocks in numpy: input checks, forward algorithm, Viterbi alignment, spans.

Frame spans are half-open ``[start, end)`` on the model's output time axis (after any temporal
downsampling of the network); multiply by the output frame period to get seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from edge_slr.errors import InputError

NEG_INF = float("-inf")
# Rows whose logsumexp is further than this from 0 are not log-probabilities (e.g. raw logits).
_NORMALISATION_TOLERANCE = 1e-2

LanguageModel = Callable[[tuple[int, ...], int], float]


@dataclass(frozen=True)
class DecodedGloss:
    """One emitted token: frames ``[start, end)``, ``score`` = its mean posterior there."""

    token: int
    start: int
    end: int
    score: float
    gloss: str | None = None


@dataclass(frozen=True)
class DecodeResult:
    """A decoded labelling.

    ``log_prob``: exact log P(tokens | input), summed over all CTC alignments.
    ``path_log_prob``: log-probability of the one alignment the spans were read from.
    ``lm_log_prob``: sum of the language-model hook's scores over the tokens (0 without one).
    """

    tokens: tuple[int, ...]
    glosses: tuple[DecodedGloss, ...]
    log_prob: float
    path_log_prob: float
    lm_log_prob: float = 0.0

    @property
    def labels(self) -> tuple[str | None, ...]:
        return tuple(g.gloss for g in self.glosses)


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable log-softmax (turns a model's logits into decoder input)."""
    x = np.asarray(logits, dtype=np.float64)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def validate_log_probs(log_probs: np.ndarray, blank: int = 0) -> np.ndarray:
    """Check a ``(T, V)`` log-probability matrix and return it as float64.

    ``-inf`` (probability 0) is allowed; NaN and ``+inf`` are not. Each row must be normalised.
    """
    arr = np.asarray(log_probs)
    if arr.ndim != 2:
        raise InputError(f"log_probs must be a 2-D array (T, V), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"log_probs must be floating point, got dtype {arr.dtype}")
    frames, vocab = arr.shape
    if frames < 1:
        raise InputError(f"log_probs need at least one frame, got shape {arr.shape}")
    if not isinstance(blank, (int, np.integer)) or not 0 <= blank < vocab:
        raise InputError(f"blank index must be an int in [0, V={vocab}), got {blank!r}")
    arr = arr.astype(np.float64, copy=False)
    bad = np.isnan(arr) | (arr == np.inf)
    if bad.any():
        t, v = (int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"log_probs hold {int(bad.sum())} NaN/+inf values (first at frame {t}, token {v}: "
            f"{arr[t, v]}); expected finite log-probabilities"
        )
    row_max = arr.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        norms = (row_max + np.log(np.exp(arr - row_max).sum(axis=1, keepdims=True)))[:, 0]
    off = ~(np.abs(norms) <= _NORMALISATION_TOLERANCE)
    if off.any():
        t = int(np.flatnonzero(off)[0])
        raise InputError(
            f"log_probs row {t} is not a log-probability distribution (logsumexp {norms[t]:.4g}, "
            "expected 0); pass log_softmax(logits), e.g. edge_slr.decoding.log_softmax"
        )
    return arr


def check_labels(labels: Sequence[str] | None, vocab: int) -> None:
    if labels is not None and len(labels) != vocab:
        raise InputError(f"labels must name all V={vocab} tokens, got {len(labels)} names")


def _extended(tokens: Sequence[int], blank: int) -> tuple[np.ndarray, np.ndarray]:
    """CTC states blank, t1, blank, t2, ..., blank and where a state may skip the one before."""
    ext = np.full(2 * len(tokens) + 1, blank, dtype=np.int64)
    ext[1::2] = tokens
    skip = np.zeros(len(ext), dtype=bool)
    skip[3::2] = ext[3::2] != ext[1:-2:2]  # a repeated token needs the blank between
    return ext, skip


def _check_tokens(tokens: Sequence[int], vocab: int, blank: int) -> list[int]:
    out = [int(t) for t in tokens]
    if any(t == blank or not 0 <= t < vocab for t in out):
        raise InputError(f"tokens must be non-blank ids in [0, {vocab}), got {out}")
    return out


def ctc_log_likelihood(log_probs: np.ndarray, tokens: Sequence[int], blank: int = 0) -> float:
    """Exact log P(tokens | input): CTC forward algorithm over all alignments (-inf if none)."""
    lp = validate_log_probs(log_probs, blank)
    return forward_log_prob(lp, _check_tokens(tokens, lp.shape[1], blank), blank)


def forward_log_prob(lp: np.ndarray, tokens: list[int], blank: int) -> float:
    """CTC forward algorithm on checked input.

    Runs in probability space with per-frame rescaling (a few numpy ops a frame); when that
    underflows to zero it reruns in log space, so the result is exact either way.
    """
    ext, skip = _extended(tokens, blank)
    emit_log = lp[:, ext]
    shift = emit_log.max(axis=1)
    if not np.isfinite(shift).all():
        return NEG_INF  # a frame where every state of the labelling has probability 0
    emit = np.exp(emit_log - shift[:, None])
    skip_weight = skip.astype(np.float64)
    alpha = np.zeros(len(ext))
    alpha[:2] = emit[0, :2]
    log_scale = float(shift.sum())
    for t in range(1, lp.shape[0]):
        total = alpha.sum()
        if not total > 1e-250:
            return _forward_log_space(emit_log, skip, bool(tokens))
        log_scale += math.log(total)
        prev = alpha / total
        alpha = prev.copy()
        alpha[1:] += prev[:-1]
        alpha[2:] += prev[:-2] * skip_weight[2:]
        alpha *= emit[t]
    end = alpha[-2:].sum() if tokens else alpha[0]
    if not end > 1e-250:
        return _forward_log_space(emit_log, skip, bool(tokens))
    return log_scale + math.log(end)


def _forward_log_space(emit: np.ndarray, skip: np.ndarray, has_tokens: bool) -> float:
    skip_add = np.where(skip, 0.0, NEG_INF)
    alpha = np.full(emit.shape[1], NEG_INF)
    alpha[:2] = emit[0, :2]
    prev = np.full((3, emit.shape[1]), NEG_INF)
    for t in range(1, emit.shape[0]):
        prev[0] = alpha
        prev[1, 1:] = alpha[:-1]
        prev[2, 2:] = alpha[:-2] + skip_add[2:]
        alpha = np.logaddexp.reduce(prev, axis=0) + emit[t]
    return float(np.logaddexp.reduce(alpha[-2:])) if has_tokens else float(alpha[0])


def forced_align(
    log_probs: np.ndarray, tokens: Sequence[int], blank: int = 0
) -> tuple[np.ndarray, float]:
    """Most probable CTC alignment of ``tokens``: the label of every frame and its log-prob.

    Raises InputError when the input has too few frames for the labelling.
    """
    lp = validate_log_probs(log_probs, blank)
    tokens = _check_tokens(tokens, lp.shape[1], blank)
    return viterbi_path(lp, tokens, blank)


def viterbi_path(lp: np.ndarray, tokens: list[int], blank: int) -> tuple[np.ndarray, float]:
    ext, skip = _extended(tokens, blank)
    frames, states = lp.shape[0], len(ext)
    emit = lp[:, ext]
    delta = np.full(states, NEG_INF)
    delta[:2] = emit[0, :2]
    skip_add = np.where(skip, 0.0, NEG_INF)
    cols = np.arange(states)
    prev = np.full((3, states), NEG_INF)  # rows: stay, from s-1, from s-2
    back = np.zeros((frames, states), dtype=np.int64)
    for t in range(1, frames):
        prev[0] = delta
        prev[1, 1:] = delta[:-1]
        prev[2, 2:] = delta[:-2] + skip_add[2:]
        back[t] = choice = prev.argmax(axis=0)  # ties: stay, then the nearer state
        delta = prev[choice, cols] + emit[t]
    ends = [states - 1, states - 2] if tokens else [0]
    state = max(ends, key=lambda s: delta[s])
    best = float(delta[state])
    if best == NEG_INF:
        raise InputError(
            f"no CTC alignment of {len(tokens)} tokens {tokens} fits {frames} frames "
            "(repeated tokens need a blank between them) or every path has probability 0"
        )
    path = np.empty(frames, dtype=np.int64)
    for t in range(frames - 1, -1, -1):
        path[t] = ext[state]
        state -= int(back[t, state])
    return path, best


def spans_from_path(
    lp: np.ndarray, path: np.ndarray, blank: int, labels: Sequence[str] | None
) -> tuple[DecodedGloss, ...]:
    """One gloss per run of equal non-blank frame labels (blank separates repeats)."""
    glosses = []
    t, frames = 0, len(path)
    while t < frames:
        token = int(path[t])
        end = t + 1
        while end < frames and path[end] == token:
            end += 1
        if token != blank:
            score = float(np.exp(lp[t:end, token]).mean())
            name = labels[token] if labels is not None else None
            glosses.append(DecodedGloss(token, t, end, score, name))
        t = end
    return tuple(glosses)


def result_for(
    lp: np.ndarray,
    tokens: Sequence[int],
    blank: int,
    labels: Sequence[str] | None,
    lm_log_prob: float = 0.0,
) -> DecodeResult:
    """A DecodeResult for ``tokens`` on checked input: exact log-prob, Viterbi spans."""
    tokens = list(tokens)
    path, path_log_prob = viterbi_path(lp, tokens, blank)
    glosses = spans_from_path(lp, path, blank, labels)
    log_prob = forward_log_prob(lp, tokens, blank)
    return DecodeResult(tuple(tokens), glosses, log_prob, path_log_prob, lm_log_prob)
