"""Confidence-aware correction: the corrector may change only glosses the recogniser was unsure of.

A corrector that sees only the 1-best gloss string cannot tell a gloss the recogniser was sure
of from a guess, so most edits it could make are guesses too. Here the recogniser's per-gloss
confidence (:func:`gloss_confidences`: the gloss's mean posterior over its frames of the best
CTC alignment, the ``score`` of :class:`~edge_slr.decoding.ctc.DecodedGloss`) decides which of
the corrector's edits are kept (:class:`ConfidenceFilter`): a gloss whose confidence is at or
above the threshold is never substituted or deleted, and a gloss is inserted only next to an
unsure one (a recogniser that missed a gloss is rarely sure of the frames around the gap).
The threshold is tuned on dev data only. Numpy only; no model of its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_slr.decoding.ctc import forced_align, spans_from_path, validate_log_probs
from edge_slr.errors import InputError
from edge_slr.scoring.align import CORRECT, DELETION, INSERTION, SUBSTITUTION, align


def gloss_confidences(log_probs: np.ndarray, tokens: Sequence[int], blank: int = 0) -> np.ndarray:
    """Per token of ``tokens``: its mean posterior over its frames of the best CTC alignment.

    ``log_probs`` are one sentence's (frames, vocabulary) CTC log-posteriors and ``tokens`` the
    decoded labelling (any decoder's); values in [0, 1]. A beam search result carries the same
    numbers already: ``[g.score for g in result.glosses]``.
    """
    lp = validate_log_probs(log_probs, blank)
    path, _ = forced_align(lp, tokens, blank)
    return np.array([g.score for g in spans_from_path(lp, path, blank, None)], dtype=np.float64)


@dataclass(frozen=True)
class ConfidenceFilter:
    """Keeps a corrector's edits only where the recogniser's confidence is below ``threshold``.

    ``threshold`` 0 keeps no edit (every gloss counts as sure); 1 keeps almost every edit
    (only glosses with posterior exactly 1 are protected).
    """

    threshold: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise InputError(f"confidence threshold must be in [0, 1], got {self.threshold!r}")

    def apply(
        self, source: Sequence[str], proposal: Sequence[str], confidences: Sequence[float]
    ) -> tuple[str, ...]:
        """``source`` with those edits towards ``proposal`` that touch only unsure glosses."""
        source, proposal = tuple(source), tuple(proposal)
        unsure = self._unsure(source, confidences)
        kept: list[str] = []
        i = 0  # the next source gloss
        for op, (old, new) in zip(*_ops(source, proposal), strict=True):
            if op == INSERTION:
                beside = unsure[max(i - 1, 0) : i + 1]
                if beside.any():
                    kept.append(str(new))
                continue
            edit = op in (SUBSTITUTION, DELETION) and unsure[i]
            if not edit:
                kept.append(str(old))
            elif op == SUBSTITUTION:
                kept.append(str(new))
            i += 1
        return tuple(kept)

    def _unsure(self, source: tuple[str, ...], confidences: Sequence[float]) -> np.ndarray:
        values = np.asarray(confidences, dtype=np.float64)
        if values.shape != (len(source),):
            raise InputError(
                f"need one confidence per gloss: {len(source)} glosses, confidences of shape "
                f"{values.shape}"
            )
        if not np.all((values >= 0.0) & (values <= 1.0)):
            raise InputError(f"confidences must be in [0, 1], got {values.tolist()}")
        return values < self.threshold


def _ops(
    source: tuple[str, ...], proposal: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[tuple[str | None, str | None], ...]]:
    if source == proposal:  # the common case: nothing to align
        return (CORRECT,) * len(source), tuple((g, g) for g in source)
    alignment = align(source, proposal)
    return alignment.ops, alignment.pairs


def correct_with_confidence(
    corrector: Any,
    sentences: Sequence[Sequence[str]],
    confidences: Sequence[Sequence[float]],
    threshold: float,
    *,
    gate: bool = True,
) -> list[tuple[str, ...]]:
    """Correct ``sentences`` with ``corrector`` (``correct_batch``), then keep only unsure edits.

    ``gate`` False lets every proposal of the corrector's stages through to the filter (the
    recogniser's confidence then is the only gate).
    """
    if len(sentences) != len(confidences):
        raise InputError(
            f"need confidences for every sentence: {len(sentences)} sentences, "
            f"{len(confidences)} confidence lists"
        )
    check = ConfidenceFilter(threshold)
    if math.isclose(threshold, 0.0):  # every gloss is sure: nothing to ask the corrector
        return [check.apply(s, s, c) for s, c in zip(sentences, confidences, strict=True)]
    corrections = corrector.correct_batch([list(s) for s in sentences], gate=gate)
    return [
        check.apply(c.input, c.glosses, conf)
        for c, conf in zip(corrections, confidences, strict=True)
    ]
