"""Tuning the "do no harm" gates on held-out train sentences (never on dev/test).

Every stage proposes a correction with a confidence and a margin (see ``decode``). Here the
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

from edge_slr.metrics import align, normalize_hypothesis
from edge_slr.training.corrector.decode import GateConfig, run_stage
from edge_slr.training.corrector.vocabulary import CorrectorVocabulary

if TYPE_CHECKING:
    import torch


def run_gated(
    model: torch.nn.Module,
    gate: GateConfig,
    sources: Sequence[list[int]],
    vocab: CorrectorVocabulary,
    batch_size: int = 256,
) -> list[list[int]]:
    """A stage's gated outputs (its input where the gate rejects) for many sentences."""
    outputs: list[list[int]] = []
    for start in range(0, len(sources), batch_size):
        chunk = sources[start : start + batch_size]
        proposals, confidence, margin = run_stage(model, chunk, vocab)
        outputs += [
            p if gate.accepts(float(c), float(m)) else list(s)
            for p, s, c, m in zip(proposals, chunk, confidence, margin, strict=True)
        ]
    return outputs


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
    outputs: list[list[int]]  # gated outputs, per level in order, for the next stage


# Candidate margins in nats; confidence candidates are quantiles of the observed confidences.
MARGIN_GRID = (float("-inf"), -2.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0)


def tune_gate(
    model: torch.nn.Module,
    vocab: CorrectorVocabulary,
    references: Sequence[tuple[str, ...]],
    inputs: dict[float, list[list[int]]],
    corpus: str,
    max_harm: float,
) -> GateTuning:
    """The gate minimising the mean held-out WER over the levels, harming none by > ``max_harm``.

    ``inputs[level]`` are the stage's inputs for ``references`` at each noise level. Rejecting
    everything (the stage switched off) is always allowed, so a feasible gate always exists.
    """
    levels = sorted(inputs)
    flat = [s for level in levels for s in inputs[level]]
    proposals, confidence, margin = [], [], []
    for start in range(0, len(flat), 256):
        p, c, m = run_stage(model, flat[start : start + 256], vocab)
        proposals += p
        confidence.append(c)
        margin.append(m)
    conf, marg = np.concatenate(confidence), np.concatenate(margin)
    refs = [r for _ in levels for r in references]
    e_in = np.array(
        [sentence_errors(r, vocab.decode(s), corpus) for r, s in zip(refs, flat, strict=True)]
    )
    e_out = np.array(
        [sentence_errors(r, vocab.decode(p), corpus) for r, p in zip(refs, proposals, strict=True)]
    )
    level_of = np.repeat(np.arange(len(levels)), len(references))
    words = sum(len(normalize_hypothesis(list(r), corpus)) for r in references)

    def wer(errors: np.ndarray) -> np.ndarray:
        return np.bincount(level_of, weights=errors, minlength=len(levels)) / words

    before = wer(e_in)
    best_gate, best_after = GateConfig(min_margin=float("inf")), before
    conf_grid = np.unique(np.concatenate([[0.0], np.quantile(conf, np.linspace(0.0, 0.99, 34))]))
    for c in conf_grid:
        for m in MARGIN_GRID:
            after = wer(np.where((conf >= c) & (marg >= m), e_out, e_in))
            if (
                np.all(after <= before + max_harm + 1e-12)
                and after.mean() < best_after.mean() - 1e-12
            ):
                best_gate, best_after = GateConfig(float(c), float(m)), after
    accept = (conf >= best_gate.min_confidence) & (marg >= best_gate.min_margin)
    outputs = [p if a else s for p, s, a in zip(proposals, flat, accept, strict=True)]
    per_level = len(references)
    return GateTuning(
        gate=best_gate,
        before=dict(zip(levels, before.tolist(), strict=True)),
        ungated=dict(zip(levels, wer(e_out).tolist(), strict=True)),
        after=dict(zip(levels, best_after.tolist(), strict=True)),
        outputs=[outputs[i : i + per_level] for i in range(0, len(outputs), per_level)],  # type: ignore[misc]
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
