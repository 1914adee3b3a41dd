"""The gloss corrector: encoder-decoder transformers, "high encoding, low decoding".

A deep encoder reads the whole recognised sentence; a shallow decoder (one layer by default) writes
the corrected one token by token, which keeps the autoregressive part cheap on an edge CPU. Two
such models are chained: the first restores the sentence's meaning from heavy noise, the second
makes fine corrections to the first one's output.

Export notes (the converters use ``torch.onnx.export(..., dynamo=True)``): ``encode`` and
``decode`` are plain tensor programs without data-dependent Python control flow; the positional
table is sliced by the input length; the decoder's self-attention is called with an explicit
causal mask and ``tgt_is_causal=True``; padding masks are optional (batch 1 needs none).
With copy attention (the default) the decoder also takes the source ids, ``decode(tgt, memory,
src)``, and returns log-probabilities; the source one-hot is an ``==`` against ``arange(V)``.
Export dynamic shapes with an example batch of 2 or more: torch.export specialises a size-1 dim.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from edge_slr._optional import require
from edge_slr.errors import InputError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class CorrectorDims:
    """Sizes of one corrector stage; stored in every checkpoint."""

    vocab_size: int
    d_model: int = 256
    n_heads: int = 4
    encoder_layers: int = 4
    decoder_layers: int = 1
    ff_dim: int = 1024
    max_len: int = 64  # positions, including <bos>/<eos>
    dropout: float = 0.1
    stages: int = 2  # chained models: 1 = the single-transformer baseline
    copy_attention: bool = True  # pointer head: copy source glosses (see GlossSeq2Seq.head)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "dropout":
                if not 0.0 <= value < 1.0:
                    raise InputError(f"dims.dropout must be in [0, 1), got {value}")
            elif f.name == "copy_attention":
                if not isinstance(value, bool):
                    raise InputError(f"dims.copy_attention must be true or false, got {value!r}")
            elif not isinstance(value, int) or value < 1:
                raise InputError(f"dims.{f.name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise InputError(
                f"dims.d_model ({self.d_model}) must be divisible by dims.n_heads ({self.n_heads})"
            )
        if self.max_len < 3:
            raise InputError(
                f"dims.max_len must be >= 3 (<bos>, a gloss, <eos>), got {self.max_len}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CorrectorDims:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"unknown model option(s) {unknown}; expected some of {sorted(known)}")
        return cls(**values)


def build_model(dims: CorrectorDims, pad_id: int = 0) -> torch.nn.Module:
    """One corrector stage (a :class:`GlossSeq2Seq` module) with freshly initialised weights."""
    return _seq2seq_class()(dims, pad_id)


def build_stages(dims: CorrectorDims, pad_id: int = 0) -> list[torch.nn.Module]:
    """``dims.stages`` independent stages, first to last."""
    return [build_model(dims, pad_id) for _ in range(dims.stages)]


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """The fixed sine/cosine position table of "Attention is all you need", shape (length, dim)."""
    torch = require("torch", "the gloss corrector")
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    scale = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * scale)
    table[:, 1::2] = torch.cos(position * scale)
    return table


@functools.cache
def _seq2seq_class() -> type:
    # The class is defined on first use so that importing this module needs no torch.
    torch = require("torch", "the gloss corrector")
    nn = torch.nn

    class GlossSeq2Seq(nn.Module):
        """Token ids in, next-token log-probabilities out; one embedding for encoder, decoder, head."""

        def __init__(self, dims: CorrectorDims, pad_id: int) -> None:
            super().__init__()
            self.dims = dims
            self.pad_id = pad_id
            d = dims.d_model
            self.embed = nn.Embedding(dims.vocab_size, d, padding_idx=pad_id)
            self.register_buffer(
                "positions", sinusoidal_positions(dims.max_len, d), persistent=False
            )
            self.drop = nn.Dropout(dims.dropout)
            layer = (d, dims.n_heads, dims.ff_dim, dims.dropout, "gelu")  # pre-norm, batch first
            enc_layer = nn.TransformerEncoderLayer(*layer, batch_first=True, norm_first=True)
            # No nested tensors: their conversion depends on the mask's values (not exportable).
            self.encoder = nn.TransformerEncoder(
                enc_layer, dims.encoder_layers, nn.LayerNorm(d), enable_nested_tensor=False
            )
            dec_layer = nn.TransformerDecoderLayer(*layer, batch_first=True, norm_first=True)
            self.decoder = nn.TransformerDecoder(dec_layer, dims.decoder_layers, nn.LayerNorm(d))
            if dims.copy_attention:
                self.copy_query = nn.Linear(d, d, bias=False)
                self.copy_key = nn.Linear(d, d, bias=False)
                self.copy_gate = nn.Linear(d, 1)
            self.embed_scale = math.sqrt(d)
            nn.init.normal_(self.embed.weight, std=d**-0.5)
            with torch.no_grad():
                self.embed.weight[pad_id].zero_()

        def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
            length = tokens.shape[1]
            return self.drop(self.embed(tokens) * self.embed_scale + self.positions[:length])

        def encode(self, src: torch.Tensor, src_pad: torch.Tensor | None = None) -> torch.Tensor:
            """(B, S) ids -> (B, S, d) memory; ``src_pad`` (B, S) is True at padding."""
            return self.encoder(self._embed(src), src_key_padding_mask=src_pad)

        def decode_hidden(
            self,
            tgt: torch.Tensor,
            memory: torch.Tensor,
            src_pad: torch.Tensor | None = None,
        ) -> torch.Tensor:
            """(B, T) ids starting with <bos> -> (B, T, d) decoder states."""
            length = tgt.shape[1]
            causal = nn.Transformer.generate_square_subsequent_mask(length, device=tgt.device)
            return self.decoder(
                self._embed(tgt),
                memory,
                tgt_mask=causal,
                tgt_is_causal=True,
                memory_key_padding_mask=src_pad,
            )

        def head(
            self,
            hidden: torch.Tensor,
            memory: torch.Tensor,
            src: torch.Tensor,
            src_pad: torch.Tensor | None = None,
        ) -> torch.Tensor:
            """Decoder states (B, T, d) -> log-probabilities (B, T, V) of the next token.

            Without copy attention: a softmax over the vocabulary (tied to the embedding). With
            it (a pointer-generator): a learnt gate mixes that softmax with an attention
            distribution over the source positions, scattered onto the source's token ids. Most
            of a correction is copying, and copying through attention works from the first
            steps and for rare glosses whose embeddings are still poorly trained.
            """
            vocab_logp = (hidden @ self.embed.weight.T).log_softmax(-1)
            if not self.dims.copy_attention:
                return vocab_logp
            scores = self.copy_query(hidden) @ self.copy_key(memory).transpose(1, 2)
            scores = scores / math.sqrt(self.dims.d_model)
            if src_pad is not None:
                scores = scores.masked_fill(src_pad[:, None, :], float("-inf"))
            ids = torch.arange(self.dims.vocab_size, device=src.device)
            one_hot = (src[..., None] == ids).to(scores.dtype)  # (B, S, V); exports as Equal
            copy_p = scores.softmax(-1) @ one_hot
            gate = torch.sigmoid(self.copy_gate(hidden))
            return torch.log(gate * vocab_logp.exp() + (1 - gate) * copy_p + 1e-9)

        def decode(
            self,
            tgt: torch.Tensor,
            memory: torch.Tensor,
            src: torch.Tensor,
            src_pad: torch.Tensor | None = None,
        ) -> torch.Tensor:
            """(B, T) ids starting with <bos> -> (B, T, V) log-probabilities of the next token."""
            return self.head(self.decode_hidden(tgt, memory, src_pad), memory, src, src_pad)

        def decode_last(
            self,
            tgt: torch.Tensor,
            memory: torch.Tensor,
            src: torch.Tensor,
            src_pad: torch.Tensor | None = None,
        ) -> torch.Tensor:
            """(B, V) log-probabilities of the token after ``tgt``: one decoding step."""
            hidden = self.decode_hidden(tgt, memory, src_pad)[:, -1:]
            return self.head(hidden, memory, src, src_pad)[:, 0]

        def forward(
            self, src: torch.Tensor, tgt: torch.Tensor, src_pad: torch.Tensor | None = None
        ) -> torch.Tensor:
            """Teacher-forced log-probabilities (B, T, V) for training and scoring."""
            return self.decode(tgt, self.encode(src, src_pad), src, src_pad)

    return GlossSeq2Seq
