"""Decoding with the corrector: batched greedy, beam search, and the "do no harm" gate.

Correction hurts when the recognised sentence is far from anything the corrector knows (the paper
notes this for poor recognition). Every stage therefore passes a gate: its output replaces its
input only when the stage is confident about it, measured two ways on the stage's own model:

- ``confidence``: exp of the mean log-probability per token of the output (1 = certain);
- ``margin``: log P(output | input) - log P(input | input), how much more likely the model finds
  its correction than leaving the sentence as it is (in nats);

and the size of the change is bounded (``edit_rate``: edits per input gloss), so a confident but
wholesale rewrite (an early ``<eos>``, a loop) never passes.

All three limits are tuned on held-out train sentences (``gate.tune_gate``), never on
dev/test. A stage whose output is rejected passes its input through unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_slr._optional import require
from edge_slr.errors import InputError
from edge_slr.metrics import align
from edge_slr.training.corrector.model import CorrectorDims
from edge_slr.training.corrector.vocabulary import CorrectorVocabulary

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


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


def _torch() -> Any:
    return require("torch", "the gloss corrector")


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) int64 ids and the (B, L) bool mask that is True at padding."""
    torch = _torch()
    width = max(1, max(len(s) for s in seqs))
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.as_tensor(list(seq), dtype=torch.long)
    return ids, ids == pad_id


def output_limit(source_len: int, dims: CorrectorDims) -> int:
    """Most glosses a stage may write for a source of ``source_len`` glosses."""
    return min(dims.max_len - 1, 2 * source_len + 4)


def _banned(vocab: CorrectorVocabulary) -> list[int]:
    return [vocab.pad_id, vocab.bos_id]


def greedy_decode(
    model: torch.nn.Module, sources: Sequence[Sequence[int]], vocab: CorrectorVocabulary
) -> list[list[int]]:
    """Most likely next token at every step, for a batch of id sentences (no <eos> in them)."""
    torch = _torch()
    dims: CorrectorDims = model.dims
    src, src_pad = pad_batch([list(s) + [vocab.eos_id] for s in sources], vocab.pad_id)
    limits = torch.tensor([output_limit(len(s), dims) for s in sources])
    with torch.no_grad():
        memory = model.encode(src, src_pad)
        ys = torch.full((len(sources), 1), vocab.bos_id, dtype=torch.long)
        done = torch.zeros(len(sources), dtype=torch.bool)
        for step in range(int(limits.max()) + 1):
            logp = model.decode_last(ys, memory, src, src_pad)
            logp[:, _banned(vocab)] = float("-inf")
            nxt = logp.argmax(-1)
            nxt = torch.where(limits <= step, vocab.eos_id, nxt)  # out of room: finish
            nxt = torch.where(done, vocab.pad_id, nxt)
            ys = torch.cat([ys, nxt[:, None]], dim=1)
            done |= nxt == vocab.eos_id
            if bool(done.all()):
                break
    return [_strip(row.tolist(), vocab) for row in ys]


def _strip(row: list[int], vocab: CorrectorVocabulary) -> list[int]:
    out = []
    for token in row[1:]:
        if token in (vocab.eos_id, vocab.pad_id):
            break
        out.append(token)
    return out


def beam_decode(
    model: torch.nn.Module,
    source: Sequence[int],
    vocab: CorrectorVocabulary,
    beam_size: int = 4,
    length_penalty: float = 1.0,
) -> list[int]:
    """Beam search for one sentence; finished hypotheses rank by logprob / (len + 1) ** penalty.

    Every step keeps the best ``alive`` extensions of the alive hypotheses; one that ends in
    ``<eos>`` is finished and leaves the beam, so the beam shrinks until none is alive. With
    ``beam_size=1`` this is exactly greedy decoding.
    """
    if beam_size < 1:
        raise InputError(f"beam_size must be >= 1, got {beam_size}")
    torch = _torch()
    limit = output_limit(len(source), model.dims)
    src, _ = pad_batch([list(source) + [vocab.eos_id]], vocab.pad_id)
    finished: list[tuple[float, list[int]]] = []
    with torch.no_grad():
        memory = model.encode(src)
        ys = torch.full((1, 1), vocab.bos_id, dtype=torch.long)
        scores = torch.zeros(1)
        alive = beam_size
        for step in range(limit + 1):
            logp = model.decode_last(ys, memory.expand(len(ys), -1, -1), src.expand(len(ys), -1))
            logp[:, _banned(vocab)] = float("-inf")
            if step == limit:  # out of room: only <eos> may follow
                keep = logp[:, vocab.eos_id].clone()
                logp.fill_(float("-inf"))
                logp[:, vocab.eos_id] = keep
            total = (scores[:, None] + logp).flatten()
            top = total.topk(min(alive, int(torch.isfinite(total).sum())))
            rows, new_scores = [], []
            for value, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                row, token = divmod(flat, logp.shape[1])
                tokens = ys[row, 1:].tolist() + [token]
                if token == vocab.eos_id:
                    finished.append((value / (len(tokens) ** length_penalty), tokens[:-1]))
                else:
                    rows.append(ys[row].tolist() + [token])
                    new_scores.append(value)
            alive = len(rows)
            if not alive:
                break
            ys = torch.tensor(rows, dtype=torch.long)
            scores = torch.tensor(new_scores)
    return max(finished, key=lambda f: f[0])[1] if finished else []


def score_targets(
    model: torch.nn.Module,
    sources: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    vocab: CorrectorVocabulary,
) -> tuple[np.ndarray, np.ndarray]:
    """Teacher-forced log P(target + <eos> | source) per pair, and its number of tokens."""
    torch = _torch()
    src, src_pad = pad_batch([list(s) + [vocab.eos_id] for s in sources], vocab.pad_id)
    tgt_in, _ = pad_batch([[vocab.bos_id] + list(t) for t in targets], vocab.pad_id)
    tgt_out, out_pad = pad_batch([list(t) + [vocab.eos_id] for t in targets], vocab.pad_id)
    with torch.no_grad():
        logp = model(src, tgt_in, src_pad).log_softmax(-1)
        picked = logp.gather(-1, tgt_out[..., None])[..., 0].masked_fill(out_pad, 0.0)
    return picked.sum(1).numpy().astype(np.float64), (~out_pad).sum(1).numpy()


@dataclass(frozen=True)
class StageOutput:
    """One stage's proposals for a batch with the gate's three measures, one entry each."""

    proposals: list[list[int]]
    confidence: np.ndarray
    margin: np.ndarray
    edit_rate: np.ndarray

    def accepted(self, gate: GateConfig) -> np.ndarray:
        if not gate.enabled:
            return np.ones(len(self.proposals), dtype=bool)
        return (
            (self.confidence >= gate.min_confidence)
            & (self.margin >= gate.min_margin)
            & (self.edit_rate <= gate.max_edit_rate)
        )


def edit_rate(source: Sequence[int], proposal: Sequence[int]) -> float:
    """Edits turning ``source`` into ``proposal``, per source gloss."""
    if not source or not proposal:  # all insertions or all deletions
        return max(len(source), len(proposal)) / max(1, len(source))
    alignment = align([str(t) for t in source], [str(t) for t in proposal])
    return alignment.errors / max(1, len(source))


def batch_stage_count(sentences: Any, num_stages: int | None, total: int) -> int:
    """How many of ``total`` stages ``correct_batch`` runs; InputError for a string or a bad count."""
    if isinstance(sentences, str):
        raise InputError("correct_batch takes a list of sentences (lists of glosses), got a string")
    count = total if num_stages is None else num_stages
    if not 1 <= count <= total:
        raise InputError(f"num_stages must be in 1..{total}, got {num_stages}")
    return count


def run_stage(
    model: torch.nn.Module,
    sources: Sequence[Sequence[int]],
    vocab: CorrectorVocabulary,
    beam_size: int = 1,
) -> StageOutput:
    """Proposals of one stage for a batch, with their confidence, margin and edit rate."""
    if beam_size == 1:
        proposals = greedy_decode(model, sources, vocab)
    else:
        proposals = [beam_decode(model, s, vocab, beam_size) for s in sources]
    both_logp, both_len = score_targets(model, list(sources) * 2, proposals + list(sources), vocab)
    n = len(sources)
    confidence = np.exp(both_logp[:n] / both_len[:n])
    margin = both_logp[:n] - both_logp[n:]
    rates = np.array([edit_rate(s, p) for s, p in zip(sources, proposals, strict=True)])
    margin[rates == 0] = 0.0  # unchanged: nothing to decide
    return StageOutput(proposals, confidence, margin, rates)


class Corrector:
    """Chained corrector stages with their vocabulary and gates: glosses in, glosses out."""

    def __init__(
        self,
        stages: Sequence[torch.nn.Module],
        vocab: CorrectorVocabulary,
        gates: Sequence[GateConfig] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if not stages:
            raise InputError("a Corrector needs at least one stage")
        self.stages = [m.eval() for m in stages]
        self.vocab = vocab
        self.gates = list(gates) if gates is not None else [GateConfig() for _ in stages]
        if len(self.gates) != len(self.stages):
            raise InputError(f"{len(self.stages)} stages need as many gates, got {len(self.gates)}")
        self.metadata = dict(metadata or {})
        self.max_glosses = self.stages[0].dims.max_len - 1
        self._draft: tuple[Any, Any] | None = None  # (stages and gates, their DraftCorrector)

    def correct(
        self, glosses: Sequence[str], *, beam_size: int = 1, gate: bool = True
    ) -> Correction:
        """Correct one recognised sentence (a sequence of gloss strings).

        Greedy (``beam_size=1``) runs the input-as-draft decoding of :mod:`.draft`: the same
        result as :meth:`correct_batch` in a fraction of the decoder calls.
        """
        if beam_size == 1:
            from edge_slr.training.corrector.draft import DraftCorrector

            key = (tuple(id(m) for m in self.stages), tuple(self.gates))
            if self._draft is None or self._draft[0] != key:  # stages or gates were replaced
                self._draft = (key, DraftCorrector.from_corrector(self, early_exit=False))
            return self._draft[1].correct(glosses, gate=gate)
        return self.correct_batch([glosses], beam_size=beam_size, gate=gate)[0]

    def correct_batch(
        self,
        sentences: Sequence[Sequence[str]],
        *,
        beam_size: int = 1,
        gate: bool = True,
        batch_size: int = 128,
        num_stages: int | None = None,
    ) -> list[Correction]:
        """Correct many sentences; ``num_stages`` uses only the first stages (1 = single model)."""
        count = batch_stage_count(sentences, num_stages, len(self.stages))
        stages = list(zip(self.stages[:count], self.gates[:count], strict=True))
        results: list[Correction] = []
        for start in range(0, len(sentences), batch_size):
            chunk = sentences[start : start + batch_size]
            results += self._correct_chunk(chunk, stages, beam_size, gate)
        return results

    def _correct_chunk(
        self,
        chunk: Sequence[Sequence[str]],
        stages: list[tuple[torch.nn.Module, GateConfig]],
        beam_size: int,
        gate: bool,
    ) -> list[Correction]:
        encoded = [self.vocab.encode(list(s)) for s in chunk]
        current = [ids for ids, _ in encoded]
        history: list[list[StageResult]] = [[] for _ in chunk]
        # Empty or over-long sentences pass through untouched: nothing to do, or outside what
        # the model was built for (do no harm rather than truncate).
        todo = [i for i, ids in enumerate(current) if 0 < len(ids) <= self.max_glosses]
        if len(todo) < len(current):
            logger.debug(
                "%d sentences empty or over %d glosses: left unchanged",
                len(current) - len(todo),
                self.max_glosses,
            )
        for model, gate_cfg in stages:
            if not todo:
                break
            sources = [current[i] for i in todo]
            out = run_stage(model, sources, self.vocab, beam_size)
            accepted = out.accepted(gate_cfg if gate else GateConfig(enabled=False))
            for k, i in enumerate(todo):
                unknown = encoded[i][1]
                history[i].append(
                    StageResult(
                        tuple(self.vocab.decode(sources[k], unknown)),
                        tuple(self.vocab.decode(out.proposals[k], unknown)),
                        bool(accepted[k]),
                        float(out.confidence[k]),
                        float(out.margin[k]),
                        float(out.edit_rate[k]),
                    )
                )
                if accepted[k]:
                    current[i] = out.proposals[k]
        return [
            Correction(
                input=tuple(chunk[i]),
                glosses=tuple(self.vocab.decode(current[i], encoded[i][1]))
                if history[i]
                else tuple(chunk[i]),
                stages=tuple(history[i]),
            )
            for i in range(len(chunk))
        ]
