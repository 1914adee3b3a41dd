"""The one gloss-corrector decoder: greedy, draft-verified greedy and beam search, in numpy.

A corrector stage is two graphs on any engine (:class:`StageGraphs`): ``encode(src (B, S)
int64) -> memory (B, S, d)`` and ``decode(tgt (B, T) int64, memory, src) -> log_probs (B, T,
V)``. The converted graphs (:class:`edge_slr.runtimes.RuntimeCorrector`) and the torch stages of
the training code (``training.corrector.decode.torch_graphs``) both come in this shape, so every
engine decodes and scores with this module:

- :func:`greedy`: the most likely next token at every step, ``<pad>``/``<bos>`` banned and the
  output capped by :func:`output_limit`;
- :func:`draft_greedy`: the same output for one sentence in far fewer decoder calls, with the
  input as a draft (see its docstring);
- :func:`beam`: beam search in which a finished hypothesis leaves the beam;
- :func:`run_stage`: a stage's proposals with the gate's three measures (confidence, margin,
  :func:`edit_rate`) from teacher-forced scores of the proposal and of the unchanged input.

The gates that judge these measures and the chain of stages are
:mod:`edge_slr.recognition.correction_chain`; the token ids are
:class:`edge_slr.decoding.vocab.CorrectorVocabulary`.

Graphs that mask source padding themselves (``padded=True``: torch, which derives the mask from
``src == pad_id``) decode a batch of sentences per call; exported graphs take no padding mask
and decode one sentence at a time, which is what the batched decoding equals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edge_slr.decoding.ctc import log_softmax
from edge_slr.decoding.vocab import CorrectorVocabulary
from edge_slr.errors import InputError
from edge_slr.scoring.align import align

if TYPE_CHECKING:  # the chain imports this module
    from edge_slr.recognition.correction_chain import GateConfig

Encode = Callable[[np.ndarray], np.ndarray]
Decode = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class StageGraphs:
    """One stage as two numpy callables, its position limit (``dims.max_len``) and whether the
    graphs mask source padding (then sentences of different lengths share a call).

    ``decode_last`` (optional) gives only the last position's (B, V) log-probabilities, what a
    decoding step needs: a torch stage skips the output head of the other positions.
    """

    encode: Encode
    decode: Decode
    max_len: int
    padded: bool = False
    decode_last: Decode | None = None

    def __post_init__(self) -> None:
        if not (callable(self.encode) and callable(self.decode)):
            raise InputError("StageGraphs takes two callables, encode(src) and decode(tgt, ...)")
        if isinstance(self.max_len, bool) or not isinstance(self.max_len, int) or self.max_len < 3:
            raise InputError(
                f"StageGraphs max_len must be an integer >= 3 (<bos>, a gloss, <eos>), "
                f"got {self.max_len!r}"
            )


def output_limit(source_len: int, max_len: int) -> int:
    """Most glosses a stage may write for a source of ``source_len`` glosses."""
    return min(max_len - 1, 2 * source_len + 4)


def pad_ids(seqs: Sequence[Sequence[int]], pad_id: int) -> np.ndarray:
    """(B, L) int64 ids, shorter rows filled with ``pad_id`` at the end."""
    out = np.full((len(seqs), max(1, max(len(s) for s in seqs))), pad_id, dtype=np.int64)
    for row, seq in enumerate(seqs):
        out[row, : len(seq)] = seq
    return out


def encode(
    graphs: StageGraphs, sources: Sequence[Sequence[int]], vocab: CorrectorVocabulary
) -> tuple[np.ndarray, np.ndarray]:
    """(src, memory) of id sentences (no ``<eos>`` in them), padded into one batch."""
    src = pad_ids([[*s, vocab.eos_id] for s in sources], vocab.pad_id)
    return src, graphs.encode(src)


def _next_logp(
    graphs: StageGraphs,
    ys: np.ndarray,
    memory: np.ndarray,
    src: np.ndarray,
    vocab: CorrectorVocabulary,
) -> np.ndarray:
    """(rows, V) float32 log-probabilities of the token after each row of ``ys``."""
    if graphs.decode_last is not None:
        logp = np.array(graphs.decode_last(ys, memory, src), dtype=np.float32)
    else:
        logp = np.asarray(graphs.decode(ys, memory, src), dtype=np.float32)[:, -1].copy()
    logp[:, [vocab.pad_id, vocab.bos_id]] = -np.inf
    return logp


def _greedy_rows(
    graphs: StageGraphs,
    src: np.ndarray,
    memory: np.ndarray,
    lengths: Sequence[int],
    vocab: CorrectorVocabulary,
) -> list[list[int]]:
    eos = vocab.eos_id
    limits = np.array([output_limit(n, graphs.max_len) for n in lengths])
    ys = np.full((len(lengths), 1), vocab.bos_id, dtype=np.int64)
    done = np.zeros(len(lengths), dtype=bool)
    for step in range(int(limits.max()) + 1):
        if step < limits.max():
            nxt = _next_logp(graphs, ys, memory, src, vocab).argmax(-1)
        else:  # every row is out of room: no call needed to know that <eos> follows
            nxt = np.full(len(lengths), eos)
        nxt = np.where(limits <= step, eos, nxt)
        nxt = np.where(done, vocab.pad_id, nxt)
        ys = np.concatenate([ys, nxt[:, None].astype(np.int64)], axis=1)
        done |= nxt == eos
        if done.all():
            break
    return [_strip(row, vocab) for row in ys.tolist()]


def _strip(row: list[int], vocab: CorrectorVocabulary) -> list[int]:
    out = []
    for token in row[1:]:
        if token in (vocab.eos_id, vocab.pad_id):
            break
        out.append(token)
    return out


def greedy(
    graphs: StageGraphs, sources: Sequence[Sequence[int]], vocab: CorrectorVocabulary
) -> list[list[int]]:
    """Greedy decoding of id sentences (no ``<eos>`` in them), one output per sentence."""
    batches = [list(sources)] if graphs.padded else [[s] for s in sources]
    out: list[list[int]] = []
    for batch in batches:
        if batch:
            src, memory = encode(graphs, batch, vocab)
            out += _greedy_rows(graphs, src, memory, [len(s) for s in batch], vocab)
    return out


def beam(
    graphs: StageGraphs,
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
    check_beam_size(beam_size)
    src, memory = encode(graphs, [source], vocab)
    return _beam(graphs, src, memory, len(source), vocab, beam_size, length_penalty)


def check_beam_size(beam_size: object) -> None:
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise InputError(f"beam_size must be an integer >= 1, got {beam_size!r}")


def _beam(
    graphs: StageGraphs,
    src: np.ndarray,
    memory: np.ndarray,
    length: int,
    vocab: CorrectorVocabulary,
    beam_size: int,
    length_penalty: float = 1.0,
) -> list[int]:
    limit, eos = output_limit(length, graphs.max_len), vocab.eos_id
    finished: list[tuple[float, list[int]]] = []
    ys, scores, alive = [[vocab.bos_id]], np.zeros(1, np.float32), beam_size
    for step in range(limit + 1):
        rows = len(ys)
        logp = _next_logp(
            graphs,
            np.array(ys, dtype=np.int64),
            np.repeat(memory, rows, axis=0),
            np.repeat(src, rows, axis=0),
            vocab,
        )
        if step == limit:  # out of room: only <eos> may follow
            keep = logp[:, eos].copy()
            logp[:] = -np.inf
            logp[:, eos] = keep
        total = (scores[:, None] + logp).ravel()
        k = min(alive, int(np.isfinite(total).sum()))
        kept, new_scores = [], []
        for flat in np.argsort(-total, kind="stable")[:k]:
            row, token = divmod(int(flat), logp.shape[1])
            value = float(total[flat])
            tokens = ys[row][1:] + [token]
            if token == eos:
                finished.append((value / (len(tokens) ** length_penalty), tokens[:-1]))
            else:
                kept.append(ys[row] + [token])
                new_scores.append(value)
        alive = len(kept)
        if not alive:
            break
        ys, scores = kept, np.array(new_scores, np.float32)
    return max(finished, key=lambda f: f[0])[1] if finished else []


def _score_rows(
    graphs: StageGraphs,
    src: np.ndarray,
    memory: np.ndarray,
    targets: Sequence[Sequence[int]],
    vocab: CorrectorVocabulary,
) -> tuple[np.ndarray, np.ndarray]:
    """Teacher-forced log P(target + <eos> | source) per row, and its number of tokens."""
    tgt_in = pad_ids([[vocab.bos_id, *t] for t in targets], vocab.pad_id)
    tgt_out = pad_ids([[*t, vocab.eos_id] for t in targets], vocab.pad_id)
    lengths = np.array([len(t) + 1 for t in targets])
    # renormalised: the copy head's mixture sums to 1 only up to its 1e-9 floor
    logp = log_softmax(np.asarray(graphs.decode(tgt_in, memory, src)))
    picked = np.take_along_axis(logp, tgt_out[..., None], axis=-1)[..., 0]
    picked[np.arange(tgt_out.shape[1])[None, :] >= lengths[:, None]] = 0.0
    return picked.sum(axis=1), lengths


def score_targets(
    graphs: StageGraphs,
    sources: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    vocab: CorrectorVocabulary,
) -> tuple[np.ndarray, np.ndarray]:
    """Teacher-forced log P(target + <eos> | source) per pair, and its number of tokens."""
    if len(sources) != len(targets):
        raise InputError(f"{len(sources)} sources need as many targets, got {len(targets)}")
    pairs = list(zip(sources, targets, strict=True))
    batches = [pairs] if graphs.padded else [[p] for p in pairs]
    parts = []
    for batch in batches:
        src, memory = encode(graphs, [s for s, _ in batch], vocab)
        parts.append(_score_rows(graphs, src, memory, [t for _, t in batch], vocab))
    if not parts:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def edit_rate(source: Sequence[int], proposal: Sequence[int]) -> float:
    """Edits turning ``source`` into ``proposal``, per source gloss."""
    if not source or not proposal:  # all insertions or all deletions
        return max(len(source), len(proposal)) / max(1, len(source))
    alignment = align([str(t) for t in source], [str(t) for t in proposal])
    return alignment.errors / max(1, len(source))


@dataclass(frozen=True)
class StageOutput:
    """One stage's proposals for a batch with the gate's three measures, one entry each;
    ``stopped`` marks a proposal whose decoding gave up early (draft decoding's early exit)."""

    proposals: list[list[int]]
    confidence: np.ndarray
    margin: np.ndarray
    edit_rate: np.ndarray
    stopped: np.ndarray | None = None

    def accepted(self, gate: GateConfig) -> np.ndarray:
        if not gate.enabled:
            return np.ones(len(self.proposals), dtype=bool)
        ok = (
            (self.confidence >= gate.min_confidence)
            & (self.margin >= gate.min_margin)
            & (self.edit_rate <= gate.max_edit_rate)
        )
        return ok if self.stopped is None else ok & ~self.stopped

    @classmethod
    def join(cls, parts: Sequence[StageOutput], order: Sequence[int]) -> StageOutput:
        """The parts' entries concatenated, entry ``i`` moved to position ``order[i]``."""
        back = np.argsort(np.asarray(order, dtype=np.int64), kind="stable")
        proposals = [p for part in parts for p in part.proposals]

        def joined(name: str) -> np.ndarray:
            values = [getattr(part, name) for part in parts]
            return np.concatenate(values)[back] if values else np.zeros(0)

        return cls(
            [proposals[i] for i in back],
            joined("confidence"),
            joined("margin"),
            joined("edit_rate"),
        )


def run_stage(
    graphs: StageGraphs,
    sources: Sequence[Sequence[int]],
    vocab: CorrectorVocabulary,
    beam_size: int = 1,
    batch_size: int = 256,
) -> StageOutput:
    """Proposals of one stage for many sentences, with their confidence, margin and edit rate.

    Padded graphs decode greedily ``batch_size`` sentences per call, cut from the length-sorted
    sentences (a batch decodes as many steps as its longest sentence needs); beam search and
    unpadded graphs take one sentence at a time. The output is in input order.
    """
    check_beam_size(beam_size)
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    size = batch_size if graphs.padded and beam_size == 1 else 1
    parts = [
        _run_batch(graphs, [list(sources[i]) for i in order[k : k + size]], vocab, beam_size)
        for k in range(0, len(order), size)
    ]
    return StageOutput.join(parts, order)


def _run_batch(
    graphs: StageGraphs, sources: list[list[int]], vocab: CorrectorVocabulary, beam_size: int
) -> StageOutput:
    src, memory = encode(graphs, sources, vocab)
    if beam_size == 1:
        proposals = _greedy_rows(graphs, src, memory, [len(s) for s in sources], vocab)
    else:  # one sentence (see run_stage)
        proposals = [_beam(graphs, src, memory, len(sources[0]), vocab, beam_size)]
    logp_prop, length = _score_rows(graphs, src, memory, proposals, vocab)
    logp_src, _ = _score_rows(graphs, src, memory, sources, vocab)
    rates = np.array([edit_rate(s, p) for s, p in zip(sources, proposals, strict=True)])
    margin = np.where(rates == 0, 0.0, logp_prop - logp_src)  # unchanged: nothing to decide
    return StageOutput(proposals, np.exp(logp_prop / length), margin, rates)


# -- draft-verified greedy decoding -------------------------------------------------------------
# A corrector mostly copies its input, so greedy decoding one token per decoder call spends most
# calls confirming glosses it keeps. draft_greedy gives the same output in one decoder call per
# edit ("speculative decoding" with the input as the draft model).


@dataclass(frozen=True)
class DraftResult:
    """A stage's greedy proposal with the log-probabilities the gate's measures come from."""

    proposal: list[int]
    logp_proposal: float  # log P(proposal + <eos> | source)
    logp_source: float  # log P(source + <eos> | source)
    stopped: bool = False  # given up early: the margin could no longer reach ``min_margin``

    @property
    def confidence(self) -> float:
        return float(np.exp(self.logp_proposal / (len(self.proposal) + 1)))


def draft_greedy(
    graphs: StageGraphs,
    source: Sequence[int],
    vocab: CorrectorVocabulary,
    min_margin: float = float("-inf"),
) -> DraftResult:
    """Greedy decoding of one id sentence (no ``<eos>``), verified against the input as draft.

    The decoder runs on ``<bos> + output so far + draft`` (the draft is the rest of the input):
    thanks to the causal mask, one call gives the next-token distribution at every draft
    position, and the output follows the draft for as long as the draft is the argmax. At the
    first disagreement the model's token is taken and a new call continues with the rest of the
    input (skipping the input gloss it replaced, or two when the model dropped one; when the
    next token shows that the model inserted a gloss rather than replaced one, the skipped gloss
    is drafted again). The result is :func:`greedy`'s, token for token (up to floating-point
    ties); a sentence the corrector keeps costs one encoder and one decoder call. The first call
    also scores the input itself, and the accepted tokens' log-probabilities sum to
    ``log P(output | input)``: the gate's measures come without :func:`run_stage`'s two
    teacher-forced passes.

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
    limit = output_limit(len(source), graphs.max_len)
    src, memory = encode(graphs, [source], vocab)
    out: list[int] = []
    at, skipped = 0, -1  # next input gloss the output is aligned to; the last one guessed away
    logp_sum, logp_source = 0.0, None
    while True:
        draft = source[at : at + limit - len(out)]
        tgt = np.asarray([[bos, *out, *draft]], dtype=np.int64)
        logp = np.asarray(graphs.decode(tgt, memory, src))[0]
        if logp_source is None:  # the first call's target is the input itself
            rows = np.arange(len(source))
            logp_source = float(logp[rows, source].sum() + logp[len(source), eos])
        if logp_sum - logp_source < min_margin:  # ruled out before any work on this call
            return DraftResult(out, logp_sum, logp_source, stopped=True)
        start = len(out)
        masked = logp[start:].copy()
        masked[:, [vocab.pad_id, bos]] = -np.inf
        best = masked.argmax(-1).tolist()
        for pos in range(start, tgt.shape[1]):
            if logp_sum - logp_source < min_margin:
                return DraftResult(out, logp_sum, logp_source, stopped=True)
            token = eos if pos >= limit else best[pos - start]  # out of room: only <eos>
            logp_sum += float(logp[pos, token])
            if token == eos:
                return DraftResult(out, logp_sum, logp_source)
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
