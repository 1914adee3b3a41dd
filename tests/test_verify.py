"""INT8 verification's gloss agreement (edge_slr.converters.verify), unit level: numpy only.

Identical decodes agree, including sequences that both models decode to no gloss at all (a
held-out sequence the student leaves blank must not count as a disagreement).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_slr.converters.calibration import LabelledSequence, SequenceSet
from edge_slr.converters.verify import (
    Reference,
    VerifyConfig,
    compare_decodes,
    decode_glosses,
    gloss_agreement,
)

LABELS = ("<blank>", "A", "B", "C")


def logits_for(tokens: list[int], steps: int = 12) -> np.ndarray:
    """``(steps, V)`` logits whose greedy decode is ``tokens`` (blank between them)."""
    out = np.full((steps, len(LABELS)), -5.0, dtype=np.float32)
    out[:, 0] = 5.0
    for i, token in enumerate(tokens):
        out[2 * i + 1] = -5.0
        out[2 * i + 1, token] = 5.0
    return out


def test_gloss_agreement_counts_identical_decodes_as_agreement() -> None:
    assert gloss_agreement([((), ())]) == 1.0
    assert gloss_agreement([((), ()), ((), ())]) == 1.0
    assert gloss_agreement([(("A", "B"), ("A", "B")), ((), ())]) == 1.0
    assert gloss_agreement([(("A", "B"), ("A", "C")), ((), ())]) == 0.5
    # an insertion where the reference decodes nothing is an error, not agreement
    assert gloss_agreement([((), ("A",))]) == 0.0
    assert gloss_agreement([(("A", "B"), ("A", "B")), ((), ("C",))]) == 0.5


def test_compare_decodes_with_empty_decodes_on_both_sides() -> None:
    logits = [logits_for([]), logits_for([1, 2]), logits_for([])]
    assert [decode_glosses(x, LABELS) for x in logits] == [(), ("A", "B"), ()]
    sequences = tuple(
        LabelledSequence(f"s{i}", np.zeros((24, 3), np.float32), ("A", "B"))
        for i in range(len(logits))
    )
    heldout = SequenceSet(Path("."), "dev", sequences, corpus="plain")
    reference = Reference(model=None, min_length=1, feature_dim=3, heldout=heldout)
    reference._heldout_logits = logits  # the FP32 outputs, as if torch had run
    # the "converted" model: the same decodes, slightly different logits
    outputs = iter(x + 0.01 for x in logits)

    report = compare_decodes(lambda features: next(outputs), reference, LABELS, VerifyConfig())

    assert report.passed, report.reason
    assert report.agreement == 1.0
    assert report.sentence_agreement == 1.0
    assert report.wer_drop == 0.0
