"""Batch-1 greedy correction with the input as a draft: few decoder calls, any engine.

A corrector mostly copies its input. Greedy decoding one token per decoder call therefore spends
most calls confirming glosses it keeps. Here the decoder is run on ``<bos> + output so far +
draft`` (the draft is the rest of the input): thanks to the causal mask, one call gives the model's
next-token distribution at every draft position, and the greedy output follows the draft for as
long as the draft is the argmax ("speculative decoding" with the input as the draft model). At
the first disagreement the model's token is taken and a new call continues with the rest of the
input (skipping the input gloss it replaced, or two when the model dropped one; when the next
token shows that the model inserted a gloss rather than replaced one, the skipped gloss is
drafted again). The result is
the greedy output, token for token (up to floating-point ties); a sentence the corrector keeps
costs one encoder and one decoder call, each edit one decoder call more.

The first call also scores the input itself (``log P(input | input)``), and the accepted tokens'
log-probabilities sum to ``log P(output | input)``: the do-no-harm gate's confidence and margin
come without the two teacher-forced passes of :func:`decode.run_stage`.

The graphs are plain numpy callables, so the same code drives torch (:func:`torch_graphs`) and the
exported ONNX / OpenVINO encoder and decoder graphs (``converters.corrector_export``): ``encode(src
(1, S) int64) -> memory (1, S, d)`` and ``decode(tgt (1, T) int64, memory, src) -> log_probs
(1, T, V)``. This module needs numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_slr.errors import InputError
from edge_slr.training.corrector.decode import (
    Correction,
    GateConfig,
    StageResult,
    edit_rate,
)
from edge_slr.training.corrector.vocabulary import CorrectorVocabulary

Encode = Callable[[np.ndarray], np.ndarray]
Decode = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class StageGraphs:
    """One stage as two numpy callables and its position limit (``dims.max_len``)."""

    encode: Encode
    decode: Decode
    max_len: int


@dataclass(frozen=True)
class DraftResult:
    """A stage's greedy proposal with the gate's measures and the work it took."""

    proposal: list[int]
    logp_proposal: float  # log P(proposal + <eos> | source)
    logp_source: float  # log P(source + <eos> | source)
    decoder_calls: int
    stopped: bool = False  # given up early: the margin could no longer reach ``min_margin``

    @property
    def confidence(self) -> float:
        return float(np.exp(self.logp_proposal / (len(self.proposal) + 1)))


def torch_graphs(model: Any) -> StageGraphs:
    """A torch :class:`~edge_slr.training.corrector.model` stage as numpy callables."""
    from edge_slr._optional import require

    torch = require("torch", "the gloss corrector")
    model.eval()

    def encode(src: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model.encode(torch.from_numpy(src)).numpy()

    def decode(tgt: np.ndarray, memory: np.ndarray, src: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = model.decode(
                torch.from_numpy(tgt), torch.from_numpy(memory), torch.from_numpy(src)
            )
        return out.numpy()

    return StageGraphs(encode, decode, model.dims.max_len)


def draft_greedy(
    graphs: StageGraphs,
    source: Sequence[int],
    vocab: CorrectorVocabulary,
    min_margin: float = float("-inf"),
) -> DraftResult:
    """Greedy decoding of one id sentence (no ``<eos>``), verified against the input as draft.

    Every token's log-probability is <= 0, so ``log P(output so far) - log P(input)`` bounds the
    final margin from above: once it is below ``min_margin`` the gate is sure to keep the input
    and decoding stops (``stopped``; the proposal is then the output so far).
    """
    source = [int(t) for t in source]
    if not len(source) < graphs.max_len:
        raise InputError(
            f"draft_greedy takes at most {graphs.max_len - 1} glosses, got {len(source)}"
        )
    eos, bos = vocab.eos_id, vocab.bos_id
    banned = [vocab.pad_id, bos]
    limit = min(graphs.max_len - 1, 2 * len(source) + 4)  # decode.output_limit
    src = np.asarray([source + [eos]], dtype=np.int64)
    memory = graphs.encode(src)
    out: list[int] = []
    at, skipped = 0, -1  # next input gloss the output is aligned to; the last one guessed away
    logp_sum, logp_source, calls = 0.0, None, 0
    while True:
        draft = source[at : at + limit - len(out)]
        tgt = np.asarray([[bos] + out + draft], dtype=np.int64)
        logp = np.asarray(graphs.decode(tgt, memory, src))[0]
        calls += 1
        if logp_source is None:  # the first call's target is the input itself
            rows = np.arange(len(source))
            logp_source = float(logp[rows, source].sum() + logp[len(source), eos])
        if logp_sum - logp_source < min_margin:  # ruled out before any work on this call
            return DraftResult(out, logp_sum, logp_source, calls, stopped=True)
        start = len(out)
        masked = logp[start:].copy()
        masked[:, banned] = -np.inf
        best = masked.argmax(-1).tolist()
        for pos in range(start, tgt.shape[1]):
            if logp_sum - logp_source < min_margin:
                return DraftResult(out, logp_sum, logp_source, calls, stopped=True)
            token = eos if pos >= limit else best[pos - start]  # out of room: only <eos>
            logp_sum += float(logp[pos, token])
            if token == eos:
                return DraftResult(out, logp_sum, logp_source, calls)
            out.append(token)
            if pos - start < len(draft) and token == draft[pos - start]:
                at += 1
                continue
            at, skipped = _realign(source, at, skipped, token)
            break


def _realign(source: list[int], at: int, skipped: int, token: int) -> tuple[int, int]:
    """Where the input continues after the model wrote ``token`` instead of ``source[at]``."""
    if at >= len(source):  # past the input's end: the model is adding glosses
        return at, -1
    if at + 1 < len(source) and token == source[at + 1]:  # it dropped source[at]
        return at + 2, -1
    if skipped >= 0 and token == source[skipped]:  # its previous token was an insertion
        return skipped + 1, -1
    return at + 1, at  # a guess: it replaced source[at] (remembered in case it inserted)


def stepwise_greedy(
    graphs: StageGraphs, source: Sequence[int], vocab: CorrectorVocabulary
) -> DraftResult:
    """The plain way (as :func:`decode.run_stage`): one decoder call per output token, then
    teacher-forced calls scoring the proposal and the input for the gate. For comparisons."""
    source = [int(t) for t in source]
    if not len(source) < graphs.max_len:
        raise InputError(
            f"stepwise_greedy takes at most {graphs.max_len - 1} glosses, got {len(source)}"
        )
    eos, bos = vocab.eos_id, vocab.bos_id
    limit = min(graphs.max_len - 1, 2 * len(source) + 4)
    src = np.asarray([source + [eos]], dtype=np.int64)
    memory = graphs.encode(src)
    out: list[int] = []
    for step in range(limit + 1):
        tgt = np.asarray([[bos] + out], dtype=np.int64)
        row = np.asarray(graphs.decode(tgt, memory, src))[0, -1].copy()
        row[[vocab.pad_id, bos]] = -np.inf
        token = eos if step >= limit else int(row.argmax())
        if token == eos:
            break
        out.append(token)

    def score(target: list[int]) -> float:
        tgt = np.asarray([[bos] + target], dtype=np.int64)
        logp = np.asarray(graphs.decode(tgt, memory, src))[0]
        return float(logp[np.arange(len(target) + 1), target + [eos]].sum())

    return DraftResult(out, score(out), score(source), len(out) + 3)


DECODERS = {"draft": draft_greedy, "step": stepwise_greedy}


def sidecar_graphs(sidecar: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(encoder file, decoder file) names of every stage, first to last, from a sidecar."""
    files = {g["role"]: g["file"]["name"] for g in sidecar.get("graphs", ())}
    pairs = []
    while f"stage{len(pairs)}.encoder" in files and f"stage{len(pairs)}.decoder" in files:
        index = len(pairs)
        pairs.append((files[f"stage{index}.encoder"], files[f"stage{index}.decoder"]))
    if not pairs:
        raise InputError(
            f"the sidecar lists no corrector graphs (stage0.encoder/decoder); roles: {sorted(files)}"
        )
    return pairs


class DraftCorrector:
    """Chained stages on any engine, batch 1, greedy, with the do-no-harm gates.

    Behaves as :meth:`Corrector.correct` with ``beam_size=1`` (same proposals and gate decisions
    up to floating-point ties) and builds the same :class:`Correction`. ``method`` "draft"
    (:func:`draft_greedy`) or "step" (:func:`stepwise_greedy`, the plain way, for comparison).

    With ``early_exit`` (draft only) a stage stops decoding as soon as its gate's margin limit
    can no longer be met: the output is the same, but a rejected stage's recorded proposal is
    then unfinished (its ``margin`` the bound that ruled it out).
    """

    def __init__(
        self,
        stages: Sequence[StageGraphs],
        vocab: CorrectorVocabulary,
        gates: Sequence[GateConfig],
        method: str = "draft",
        early_exit: bool = True,
    ) -> None:
        if method not in DECODERS:
            raise InputError(f"method must be one of {sorted(DECODERS)}, got {method!r}")
        self.method, self.early_exit = method, early_exit and method == "draft"
        if not stages or len(stages) != len(gates):
            raise InputError(
                f"a DraftCorrector needs one gate per stage, got {len(stages)} stages and "
                f"{len(gates)} gates"
            )
        self.stages, self.vocab, self.gates = list(stages), vocab, list(gates)
        self.max_glosses = self.stages[0].max_len - 1
        self.decoder_calls = 0  # running total, for benchmarks

    @classmethod
    def from_corrector(
        cls, corrector: Any, method: str = "draft", early_exit: bool = True
    ) -> DraftCorrector:
        """The torch stages of a :class:`~edge_slr.training.corrector.decode.Corrector`."""
        stages = [torch_graphs(m) for m in corrector.stages]
        return cls(stages, corrector.vocab, corrector.gates, method, early_exit)

    @classmethod
    def from_sidecar(
        cls, sidecar: Mapping[str, Any], stages: Sequence[StageGraphs], early_exit: bool = True
    ) -> DraftCorrector:
        """Vocabulary and gates from a converted corrector's sidecar (``converters``), with the
        stages built from its graphs in :func:`sidecar_graphs` order."""
        try:
            vocab = CorrectorVocabulary.from_dict(sidecar["vocabulary"])
            gates = [GateConfig.from_dict(g) for g in sidecar["source"]["gates"]]
        except (KeyError, TypeError) as exc:
            raise InputError(
                f"not a corrector sidecar: {exc!r} missing (expected 'vocabulary' and "
                "'source.gates')"
            ) from None
        return cls(stages, vocab, gates, early_exit=early_exit)

    def correct(
        self, glosses: Sequence[str], *, gate: bool = True, num_stages: int | None = None
    ) -> Correction:
        """Correct one sentence; ``num_stages`` runs only the first stages (1 = single model)."""
        count = len(self.stages) if num_stages is None else num_stages
        if not 1 <= count <= len(self.stages):
            raise InputError(f"num_stages must be in 1..{len(self.stages)}, got {num_stages}")
        ids, unknown = self.vocab.encode(list(glosses))
        if not 0 < len(ids) <= self.max_glosses:  # as Corrector: leave it unchanged
            return Correction(tuple(glosses), tuple(glosses), ())
        history = []
        for graphs, gate_cfg in zip(self.stages[:count], self.gates[:count], strict=True):
            if self.early_exit and gate and gate_cfg.enabled:
                result = draft_greedy(graphs, ids, self.vocab, gate_cfg.min_margin)
            else:
                result = DECODERS[self.method](graphs, ids, self.vocab)
            self.decoder_calls += result.decoder_calls
            changed = result.stopped or result.proposal != ids
            margin = result.logp_proposal - result.logp_source if changed else 0.0
            rate = edit_rate(ids, result.proposal) if changed else 0.0
            confidence = result.confidence
            accepted = not result.stopped and (
                gate_cfg if gate else GateConfig(enabled=False)
            ).accepts(confidence, margin, rate)
            history.append(
                StageResult(
                    tuple(self.vocab.decode(ids, unknown)),
                    tuple(self.vocab.decode(result.proposal, unknown)),
                    accepted,
                    confidence,
                    margin,
                    rate,
                )
            )
            if accepted:
                ids = result.proposal
        return Correction(tuple(glosses), tuple(self.vocab.decode(ids, unknown)), tuple(history))
