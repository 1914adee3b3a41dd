"""CTC decoding in numpy: greedy (best path) and prefix beam search, with frame spans.

Inputs are per-frame log-probabilities ``(T, V)`` of a CTC model (a log_softmax output; apply
:func:`log_softmax` to logits). Every decoder returns a :class:`DecodeResult`: token ids, one
:class:`DecodedGloss` per token with its frame span ``[start, end)`` on the model's output time
axis and a confidence (mean posterior over those frames), the exact log-probability of the
labelling and that of the alignment the spans come from.

A gloss n-gram language model (:class:`NgramLM`, read from an ARPA file) fuses into the beam
search through :meth:`NgramLM.scorer` or, with tuned weights, :class:`FusedLM`.

The ids become glosses through :mod:`edge_slr.decoding.vocab` (the recogniser's
:class:`~edge_slr.decoding.vocab.Vocabulary` and the corrector's, which extends it), imported
from there: the training side reads it as ``edge_slr.data.Vocabulary`` too.
"""

from __future__ import annotations

from edge_slr.decoding.ctc import (
    DecodedGloss,
    DecodeResult,
    LanguageModel,
    ctc_log_likelihood,
    forced_align,
    log_softmax,
    validate_log_probs,
)
from edge_slr.decoding.lm import (
    FusedLM,
    FusionSettings,
    GlossLMScorer,
    NgramLM,
    load_fused_lm,
    read_arpa,
)
from edge_slr.decoding.search import beam_search, beam_search_nbest, decode_batch, greedy_decode

__all__ = [
    "DecodeResult",
    "DecodedGloss",
    "FusedLM",
    "FusionSettings",
    "GlossLMScorer",
    "LanguageModel",
    "NgramLM",
    "beam_search",
    "beam_search_nbest",
    "ctc_log_likelihood",
    "decode_batch",
    "forced_align",
    "greedy_decode",
    "load_fused_lm",
    "log_softmax",
    "read_arpa",
    "validate_log_probs",
]
