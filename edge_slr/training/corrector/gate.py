"""Tuning the "do no harm" gates on held-out train sentences (never on dev/test).

Every stage proposes a correction with a confidence and a margin (see ``edge_slr.recognition.correction_chain``). Here the
held-out train sentences, corrupted at fixed WER levels, are corrected by a stage, and the pair of
thresholds is chosen that gives the lowest mean WER over the levels while making no level worse
than the stage's input (by more than ``max_harm``). Rejecting everything is always allowed, so a
stage that cannot help is switched off rather than trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_slr.decoding.vocab import CorrectorVocabulary
from edge_slr.metrics import align, normalize_hypothesis
from edge_slr.recognition.correction import StageOutput, run_stage
from edge_slr.recognition.correction_chain import GateConfig
from edge_slr.training.corrector.decode import torch_graphs

if TYPE_CHECKING:
    import torch


def run_batched(
    model: torch.nn.Module, sources: Sequence[list[int]], vocab: CorrectorVocabulary
) -> StageOutput:
    """One torch stage's proposals and gate measures for many sentences, in input order
    (greedy, 256 length-sorted sentences per decoder call; see ``correction.run_stage``)."""
    return run_stage(torch_graphs(model), sources, vocab, batch_size=256)


def run_gated(
    model: torch.nn.Module,
    gate: GateConfig,
    sources: Sequence[list[int]],
    vocab: CorrectorVocabulary,
) -> list[list[int]]:
    """A stage's gated outputs (its input where the gate rejects) for many sentences."""
    out = run_batched(model, sources, vocab)
    return [
        p if a else list(s)
        for p, s, a in zip(out.proposals, sources, out.accepted(gate), strict=True)
    ]


def sentence_errors(reference: Sequence[str], hypothesis: Sequence[str], corpus: str) -> int:
    """Errors of one sentence with both sides normalised by the corpus's scoring rules."""
    ref = normalize_hypothesis(list(reference), corpus)
    return align(ref, normalize_hypothesis(list(hypothesis), corpus)).errors


@dataclass(frozen=True)
class GateTuning:
    gate: GateConfig
    before: dict[float, float]  # level -> WER of the stage's inputs
    ungated: dict[float, float]  # level -> WER if every proposal were accepted
    after: dict[float, float]  # level -> WER with the chosen gate
    outputs: list[list[list[int]]]  # gated outputs per level, in order, for the next stage


# Candidates, most conservative first (ties go to the more conservative gate). Margins are in
# nats; confidence candidates are quantiles of the observed confidences.
MARGIN_GRID = (24.0, 16.0, 12.0, 8.0, 6.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.0, -1.0, -2.0, float("-inf"))
EDIT_RATE_GRID = (0.15, 0.25, 0.35, 0.5, 0.75, float("inf"))


def tune_gate(
    model: torch.nn.Module,
    vocab: CorrectorVocabulary,
    references: Sequence[tuple[str, ...]],
    inputs: dict[float, list[list[int]]],
    corpus: str,
    max_harm: float,
    min_gain: float = 0.0,
) -> GateTuning:
    """The gate minimising the mean held-out WER over the levels, harming none by > ``max_harm``.

    ``inputs[level][i]`` is the stage's input for ``references[i]`` at that noise level.
    Rejecting everything (the stage switched off) is always allowed, so a feasible gate exists;
    it is also chosen when the best gate lowers the mean WER by less than ``min_gain`` (gains
    that small do not carry over from held-out train to other sentences).
    """
    levels = sorted(inputs)
    flat = [s for level in levels for s in inputs[level]]
    out = run_batched(model, flat, vocab)
    refs = [r for _ in levels for r in references]
    e_in = np.array(
        [sentence_errors(r, vocab.decode(s), corpus) for r, s in zip(refs, flat, strict=True)]
    )
    e_out = np.array(
        [
            sentence_errors(r, vocab.decode(p), corpus)
            for r, p in zip(refs, out.proposals, strict=True)
        ]
    )
    level_of = np.repeat(np.arange(len(levels)), len(references))
    words = sum(len(normalize_hypothesis(list(r), corpus)) for r in references)

    def wer(errors: np.ndarray) -> np.ndarray:
        return np.bincount(level_of, weights=errors, minlength=len(levels)) / words

    before = wer(e_in)
    best_gate, best_after = GateConfig(min_margin=float("inf")), before
    quantiles = np.quantile(out.confidence, np.linspace(0.0, 0.99, 34))
    conf_grid = np.unique(np.concatenate([[0.0], quantiles]))[::-1]
    for c in conf_grid:
        for m in MARGIN_GRID:
            for r in EDIT_RATE_GRID:
                gate = GateConfig(float(c), float(m), max_edit_rate=r)
                after = wer(np.where(out.accepted(gate), e_out, e_in))
                if (
                    np.all(after <= before + max_harm + 1e-12)
                    and after.mean() < best_after.mean() - 1e-12
                ):
                    best_gate, best_after = gate, after
    if best_after.mean() > before.mean() - min_gain:
        best_gate, best_after = GateConfig(min_margin=float("inf")), before
    accept = out.accepted(best_gate)
    outputs = [p if a else s for p, s, a in zip(out.proposals, flat, accept, strict=True)]
    n = len(references)
    return GateTuning(
        gate=best_gate,
        before=dict(zip(levels, before.tolist(), strict=True)),
        ungated=dict(zip(levels, wer(e_out).tolist(), strict=True)),
        after=dict(zip(levels, best_after.tolist(), strict=True)),
        outputs=[outputs[i : i + n] for i in range(0, len(outputs), n)],
    )


def tuning_report(t: GateTuning) -> dict[str, Any]:
    return {
        "gate": t.gate.to_dict(),
        "levels": {
            f"{level:.2f}": {
                "before": t.before[level],
                "ungated": t.ungated[level],
                "after": t.after[level],
            }
            for level in t.before
        },
    }
