"""The gloss corrector: chained stages, each behind a "do no harm" gate; glosses in, glosses out.

:class:`GraphCorrector` is what both the converted corrector (``runtimes.RuntimeCorrector``) and
the torch corrector of the training code (``training.corrector.Corrector``) correct with. Per
stage it decodes the current sentences (:mod:`edge_slr.recognition.correction`), measures the
proposals and keeps a proposal only where the stage's gate accepts it. Empty and over-long
sentences pass through untouched (nothing to do, or outside what the model was built for: do no
harm rather than truncate); unknown glosses come back in order.

The gate: correction hurts when the recognised sentence is far from anything the corrector knows
(the paper notes this for poor recognition), so a stage's output replaces its input only when
the stage is confident about it, measured two ways on the stage's own model:

- ``confidence``: exp of the mean log-probability per token of the output (1 = certain);
- ``margin``: log P(output | input) - log P(input | input), how much more likely the model finds
  its correction than leaving the sentence as it is (in nats);

and the size of the change is bounded (``edit_rate``: edits per input gloss), so a confident but
wholesale rewrite (an early ``<eos>``, a loop) never passes. All three limits are tuned on
held-out train sentences (``training.corrector.gate.tune_gate``), never on dev/test. A stage
whose output is rejected passes its input through unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edge_slr.decoding.vocab import CorrectorVocabulary
from edge_slr.errors import InputError
from edge_slr.recognition.correction import (
    Decode,
    StageGraphs,
    StageOutput,
    check_beam_size,
    draft_greedy,
    edit_rate,
    run_stage,
)

logger = logging.getLogger(__name__)

DECODINGS = ("draft", "step")


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


def batch_stage_count(sentences: Any, num_stages: int | None, total: int) -> int:
    """How many of ``total`` stages ``correct_batch`` runs; InputError for a string or a bad count."""
    if isinstance(sentences, str):
        raise InputError("correct_batch takes a list of sentences (lists of glosses), got a string")
    count = total if num_stages is None else num_stages
    if not 1 <= count <= total:
        raise InputError(f"num_stages must be in 1..{total}, got {num_stages}")
    return count


class GraphCorrector:
    """Chained stages (:class:`StageGraphs`) with one gate each, on any engine.

    Greedy decoding (``beam_size=1``) is ``decoding="draft"`` (:func:`draft_greedy`, one
    sentence at a time, the fewest decoder calls) or ``"step"`` (one decoder call per token and
    two teacher-forced scoring calls; padded graphs decode ``batch_size`` sentences per call);
    beam search is always stepwise. Both greedy decodings give the same proposals and gate
    decisions up to floating-point ties. With ``early_exit`` a draft-decoded stage stops as soon
    as its gate's margin limit can no longer be met: the output is the same, but a rejected
    stage's recorded proposal is then unfinished (its ``margin`` the bound that ruled it out).
    ``graphs`` are the stages as given, with ``decoder_calls`` counting their decoder calls
    (for benchmarks).
    """

    def __init__(
        self,
        stages: Sequence[StageGraphs],
        vocab: CorrectorVocabulary,
        gates: Sequence[GateConfig],
        decoding: str = "draft",
        early_exit: bool = True,
    ) -> None:
        if decoding not in DECODINGS:
            raise InputError(f"decoding must be one of {DECODINGS}, got {decoding!r}")
        if not stages or len(stages) != len(gates):
            raise InputError(
                f"a corrector needs one gate per stage, got {len(stages)} stages and "
                f"{len(gates)} gates"
            )
        self.decoding, self.early_exit = decoding, early_exit
        self.graphs = [
            replace(
                g,
                decode=self._counted(g.decode),
                decode_last=None if g.decode_last is None else self._counted(g.decode_last),
            )
            for g in stages
        ]
        self.vocab, self.gates = vocab, list(gates)
        self.max_glosses = self.graphs[0].max_len - 1
        self.decoder_calls = 0

    def _counted(self, decode: Decode) -> Decode:
        def counted(*args: np.ndarray) -> np.ndarray:
            self.decoder_calls += 1
            return decode(*args)

        return counted

    def correct(
        self,
        glosses: Sequence[str],
        *,
        beam_size: int = 1,
        gate: bool = True,
        num_stages: int | None = None,
    ) -> Correction:
        """Correct one recognised sentence (a sequence of gloss strings)."""
        return self.correct_batch([glosses], beam_size=beam_size, gate=gate,
                                  num_stages=num_stages)[0]  # fmt: skip

    def correct_batch(
        self,
        sentences: Sequence[Sequence[str]],
        *,
        beam_size: int = 1,
        gate: bool = True,
        num_stages: int | None = None,
        batch_size: int = 128,
    ) -> list[Correction]:
        """Correct many sentences; ``num_stages`` uses only the first stages (1 = single model)."""
        check_beam_size(beam_size)
        count = batch_stage_count(sentences, num_stages, len(self.graphs))
        encoded = [self.vocab.encode(list(s)) for s in sentences]
        current = [ids for ids, _ in encoded]
        history: list[list[StageResult]] = [[] for _ in sentences]
        todo = [i for i, ids in enumerate(current) if 0 < len(ids) <= self.max_glosses]
        if len(todo) < len(current):
            logger.debug("%d sentences empty or over %d glosses: left unchanged",
                         len(current) - len(todo), self.max_glosses)  # fmt: skip
        for graphs, stage_gate in zip(self.graphs[:count], self.gates[:count], strict=True):
            if not todo:
                break
            check = stage_gate if gate else OPEN_GATE
            sources = [current[i] for i in todo]
            out = self._propose(graphs, check, sources, beam_size, batch_size)
            accepted = out.accepted(check)
            for k, i in enumerate(todo):
                unknown = encoded[i][1]
                history[i].append(StageResult(
                    tuple(self.vocab.decode(sources[k], unknown)),
                    tuple(self.vocab.decode(out.proposals[k], unknown)),
                    bool(accepted[k]),
                    float(out.confidence[k]),
                    float(out.margin[k]),
                    float(out.edit_rate[k]),
                ))  # fmt: skip
                if accepted[k]:
                    current[i] = out.proposals[k]
        return [
            Correction(
                tuple(sentence),
                tuple(self.vocab.decode(ids, unknown)) if steps else tuple(sentence),
                tuple(steps),
            )
            for sentence, ids, (_, unknown), steps in zip(
                sentences, current, encoded, history, strict=True
            )
        ]

    def _propose(
        self,
        graphs: StageGraphs,
        check: GateConfig,
        sources: list[list[int]],
        beam_size: int,
        batch_size: int,
    ) -> StageOutput:
        if beam_size > 1 or self.decoding == "step":
            return run_stage(graphs, sources, self.vocab, beam_size, batch_size)
        exit_below = check.min_margin if self.early_exit and check.enabled else float("-inf")
        results = [draft_greedy(graphs, ids, self.vocab, exit_below) for ids in sources]
        changed = [r.stopped or r.proposal != ids for r, ids in zip(results, sources, strict=True)]
        return StageOutput(
            [r.proposal for r in results],
            np.array([r.confidence for r in results]),
            np.array(
                [
                    r.logp_proposal - r.logp_source if c else 0.0
                    for r, c in zip(results, changed, strict=True)
                ]
            ),  # fmt: skip
            np.array(
                [
                    edit_rate(ids, r.proposal) if c else 0.0
                    for r, c, ids in zip(results, changed, sources, strict=True)
                ]
            ),  # fmt: skip
            np.array([r.stopped for r in results], dtype=bool),
        )


def sidecar_graphs(sidecar: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(encoder file, decoder file) names of every stage, first to last, from a sidecar dict."""
    files = {g["role"]: g["file"]["name"] for g in sidecar.get("graphs", ())}
    pairs: list[tuple[str, str]] = []
    while f"stage{len(pairs)}.encoder" in files and f"stage{len(pairs)}.decoder" in files:
        index = len(pairs)
        pairs.append((files[f"stage{index}.encoder"], files[f"stage{index}.decoder"]))
    if not pairs:
        raise InputError(
            f"the sidecar lists no corrector graphs (stage0.encoder/decoder); roles: {sorted(files)}"
        )
    return pairs
