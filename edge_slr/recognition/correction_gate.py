"""The corrector's "do no harm" gate and what it decided, stage by stage.

Correction hurts when the recognised sentence is far from anything the corrector knows (the paper
notes this for poor recognition). Every stage therefore passes a gate: its output replaces its
input only when the stage is confident about it, measured two ways on the stage's own model:

- ``confidence``: exp of the mean log-probability per token of the output (1 = certain);
- ``margin``: log P(output | input) - log P(input | input), how much more likely the model finds
  its correction than leaving the sentence as it is (in nats);

and the size of the change is bounded (``edit_rate``: edits per input gloss), so a confident but
wholesale rewrite (an early ``<eos>``, a loop) never passes.

All three limits are tuned on held-out train sentences (``training.corrector.gate.tune_gate``),
never on dev/test. A stage whose output is rejected passes its input through unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_slr.errors import InputError
from edge_slr.metrics import align


@dataclass(frozen=True)
class GateConfig:
    """A stage's output is accepted when all three limits are met (``enabled`` False: always).

    ``max_edit_rate`` bounds the edits (insertions, deletions, substitutions) relative to the
    input length: the corrector may fix glosses but not rewrite a sentence (an early ``<eos>``
    that drops half of it can come with a confident score). ``min_margin = inf`` rejects every
    change: the stage is switched off.
    """

    min_confidence: float = 0.0
    min_margin: float = float("-inf")
    enabled: bool = True
    max_edit_rate: float = float("inf")

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise InputError(f"gate min_confidence must be in [0, 1], got {self.min_confidence}")
        if np.isnan(self.min_margin):
            raise InputError("gate min_margin must be a number or -inf, got NaN")
        if not self.max_edit_rate >= 0.0:
            raise InputError(f"gate max_edit_rate must be >= 0, got {self.max_edit_rate}")

    def accepts(self, confidence: float, margin: float, edit_rate: float = 0.0) -> bool:
        return not self.enabled or (
            confidence >= self.min_confidence
            and margin >= self.min_margin
            and edit_rate <= self.max_edit_rate
        )

    def to_dict(self) -> dict[str, Any]:
        # Infinite limits are kept as strings so that the description stays valid JSON.
        def number(x: float) -> float | str:
            return str(x) if np.isinf(x) else x

        return {
            "min_confidence": self.min_confidence,
            "min_margin": number(self.min_margin),
            "max_edit_rate": number(self.max_edit_rate),
            "enabled": self.enabled,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateConfig:
        return cls(
            float(data["min_confidence"]),
            float(data["min_margin"]),
            bool(data["enabled"]),
            float(data.get("max_edit_rate", "inf")),
        )


OPEN_GATE = GateConfig(enabled=False)  # accepts every proposal (``gate=False``)


def edit_rate(source: Sequence[int], proposal: Sequence[int]) -> float:
    """Edits turning ``source`` into ``proposal``, per source gloss."""
    if not source or not proposal:  # all insertions or all deletions
        return max(len(source), len(proposal)) / max(1, len(source))
    alignment = align([str(t) for t in source], [str(t) for t in proposal])
    return alignment.errors / max(1, len(source))


@dataclass(frozen=True)
class StageResult:
    """What one stage proposed and whether its gate let the proposal through."""

    input: tuple[str, ...]
    proposal: tuple[str, ...]
    accepted: bool
    confidence: float
    margin: float
    edit_rate: float

    @property
    def output(self) -> tuple[str, ...]:
        return self.proposal if self.accepted else self.input


@dataclass(frozen=True)
class Correction:
    """The corrected sentence and how every stage got there."""

    input: tuple[str, ...]
    glosses: tuple[str, ...]
    stages: tuple[StageResult, ...] = field(default=())

    @property
    def changed(self) -> bool:
        return self.glosses != self.input

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": list(self.input),
            "glosses": list(self.glosses),
            "changed": self.changed,
            "stages": [
                {
                    "proposal": list(s.proposal),
                    "accepted": s.accepted,
                    "confidence": round(s.confidence, 6),
                    "margin": round(s.margin, 6),
                    "edit_rate": round(s.edit_rate, 6),
                }
                for s in self.stages
            ],
        }
