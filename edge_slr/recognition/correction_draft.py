"""Batch-1 greedy correction with the input as a draft: the greedy output in few decoder calls.

A corrector mostly copies its input. Greedy decoding one token per decoder call therefore spends
most calls confirming glosses it keeps. Here the decoder is run on ``<bos> + output so far +
draft`` (the draft is the rest of the input): thanks to the causal mask, one call gives the model's
next-token distribution at every draft position, and the greedy output follows the draft for as
long as the draft is the argmax ("speculative decoding" with the input as the draft model). At
the first disagreement the model's token is taken and a new call continues with the rest of the
input (skipping the input gloss it replaced, or two when the model dropped one; when the next
token shows that the model inserted a gloss rather than replaced one, the skipped gloss is
drafted again). The result is the greedy output of :func:`correction.greedy`, token for token (up
to floating-point ties); a sentence the corrector keeps costs one encoder and one decoder call,
each edit one decoder call more.

The first call also scores the input itself (``log P(input | input)``), and the accepted tokens'
log-probabilities sum to ``log P(output | input)``: the do-no-harm gate's confidence and margin
come without the two teacher-forced passes of :func:`correction.run_stage`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge_slr.errors import InputError
from edge_slr.recognition.correction import StageGraphs, encode, output_limit
from edge_slr.recognition.correction_vocabulary import CorrectorVocabulary


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
