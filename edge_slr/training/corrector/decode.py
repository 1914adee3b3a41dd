"""The torch corrector: its stages as numpy graphs for the one decoder of the device side.

Decoding, scoring and the "do no harm" gates live in :mod:`edge_slr.recognition.correction`
and ``correction_chain``, which every engine uses; here the torch stages are wrapped
as :class:`~edge_slr.recognition.correction.StageGraphs` (:func:`torch_graphs`) and fed to it.
The torch graphs mask source padding (derived from ``src == pad_id``: the pad id is the CTC
blank, which no corrector input or output contains), so sentences are decoded in batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_slr._optional import require
from edge_slr.decoding.vocab import CorrectorVocabulary
from edge_slr.errors import InputError
from edge_slr.recognition.correction import StageGraphs, beam, greedy, pad_ids
from edge_slr.recognition.correction_chain import Correction, GateConfig, GraphCorrector

if TYPE_CHECKING:
    import torch


def _torch() -> Any:
    return require("torch", "the gloss corrector")


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) int64 ids and the (B, L) bool mask that is True at padding (for training)."""
    ids = _torch().from_numpy(pad_ids(seqs, pad_id))
    return ids, ids == pad_id


def torch_graphs(model: torch.nn.Module) -> StageGraphs:
    """A torch corrector stage (:mod:`.model`) as the numpy graphs the decoder runs."""
    torch = _torch()
    model.eval()

    def padding(src: np.ndarray) -> torch.Tensor | None:
        mask = src == model.pad_id
        return torch.from_numpy(mask) if mask.any() else None  # None: the batch-1 fast path

    def encode(src: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model.encode(torch.from_numpy(src), padding(src)).numpy()

    def decoder(method: Any) -> Any:  # model.decode (all positions) or model.decode_last
        def decode(tgt: np.ndarray, memory: np.ndarray, src: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                tensors = (torch.from_numpy(tgt), torch.from_numpy(memory), torch.from_numpy(src))
                return method(*tensors, padding(src)).numpy()

        return decode

    return StageGraphs(
        encode,
        decoder(model.decode),
        model.dims.max_len,
        padded=True,
        decode_last=decoder(model.decode_last),
    )


def greedy_decode(
    model: torch.nn.Module, sources: Sequence[Sequence[int]], vocab: CorrectorVocabulary
) -> list[list[int]]:
    """Greedy decoding of a batch of id sentences (no <eos> in them) by one torch stage."""
    return greedy(torch_graphs(model), sources, vocab)


def beam_decode(
    model: torch.nn.Module,
    source: Sequence[int],
    vocab: CorrectorVocabulary,
    beam_size: int = 4,
    length_penalty: float = 1.0,
) -> list[int]:
    """Beam search for one id sentence by one torch stage (see ``correction.beam``)."""
    return beam(torch_graphs(model), source, vocab, beam_size, length_penalty)


class Corrector:
    """Chained torch corrector stages with their vocabulary and gates: glosses in, glosses out.

    Corrects through :class:`~edge_slr.recognition.correction_chain.GraphCorrector`:
    :meth:`correct` greedily with draft decoding (the fewest decoder calls, sentence by
    sentence), :meth:`correct_batch` stepwise in batches; both give the same corrections up to
    floating-point ties. ``stages`` and ``gates`` may be replaced (gate tuning does).
    """

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
        self._graphs: tuple[tuple[int, ...], list[StageGraphs]] | None = None

    def graphs(self) -> list[StageGraphs]:
        """The stages as numpy graphs (rebuilt when ``stages`` was replaced)."""
        key = tuple(id(m) for m in self.stages)
        if self._graphs is None or self._graphs[0] != key:
            self._graphs = (key, [torch_graphs(m) for m in self.stages])
        return self._graphs[1]

    def graph_corrector(self, decoding: str = "draft") -> GraphCorrector:
        """The chain of this corrector's current stages and gates, as every engine runs it."""
        return GraphCorrector(self.graphs(), self.vocab, self.gates, decoding, early_exit=False)

    def correct(
        self, glosses: Sequence[str], *, beam_size: int = 1, gate: bool = True
    ) -> Correction:
        """Correct one recognised sentence (a sequence of gloss strings)."""
        chain = self.graph_corrector("draft")
        return chain.correct(glosses, beam_size=beam_size, gate=gate)

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
        return self.graph_corrector("step").correct_batch(
            sentences, beam_size=beam_size, gate=gate, num_stages=num_stages,
            batch_size=batch_size,
        )  # fmt: skip
