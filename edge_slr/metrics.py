"""Gloss error rate as the PHOENIX evaluation computes it, and the STM/CTM files it reads.

The implementation lives in :mod:`edge_slr.scoring` (normalize, align, wer, formats); this
module is the stable public entry point::

    from edge_slr.metrics import load_hypotheses, load_references, score
    result = score(load_hypotheses("dev.ctm"), load_references("dev.stm"), corpus="phoenix2014")
    print(result.summary())
"""

from __future__ import annotations

from edge_slr.scoring.align import SCLITE_COSTS, Alignment, AlignmentCosts, align
from edge_slr.scoring.formats import (
    CtmEntry,
    StmSegment,
    ctm_hypotheses,
    detect_format,
    hypotheses_to_ctm,
    load_hypotheses,
    load_references,
    read_ctm,
    read_stm,
    write_ctm,
    write_stm,
)
from edge_slr.scoring.normalize import (
    CORPORA,
    EMPTY,
    merge_repetitions,
    normalize_gloss,
    normalize_hypothesis,
)
from edge_slr.scoring.wer import (
    ErrorBreakdown,
    SentenceResult,
    WERResult,
    error_breakdown,
    score,
)

__all__ = [
    "CORPORA",
    "EMPTY",
    "SCLITE_COSTS",
    "Alignment",
    "AlignmentCosts",
    "CtmEntry",
    "ErrorBreakdown",
    "SentenceResult",
    "StmSegment",
    "WERResult",
    "align",
    "ctm_hypotheses",
    "detect_format",
    "error_breakdown",
    "hypotheses_to_ctm",
    "load_hypotheses",
    "load_references",
    "merge_repetitions",
    "normalize_gloss",
    "normalize_hypothesis",
    "read_ctm",
    "read_stm",
    "score",
    "write_ctm",
    "write_stm",
]
