"""The gloss corrector rebuilt in TensorFlow with copied weights, for TFLite with dynamic lengths.

Neither onnx2tf nor litert-torch keeps a transformer's sequence lengths dynamic here, so each
corrector stage is written again as two small TensorFlow programs over the PyTorch weights
(the way :mod:`edge_slr.converters.keras_student` rebuilds the student, but with plain TF ops:
a transformer needs no Keras layer whose weight layout would have to be matched):

- encoder: ``src (1, S) int64 -> memory (1, S, d)``;
- decoder: ``tgt (1, T) int64, memory (1, S, d), src (1, S) int64 -> log_probs (1, T, V)``.

The batch is fixed to 1 (as for the TFLite student; runtimes run a batch row by row) and S, T
stay dynamic (``resize_tensor_input``). The computation follows ``GlossSeq2Seq`` exactly:
pre-norm layers (LayerNorm eps 1e-5, exact erf GELU), PyTorch's packed ``in_proj`` split into
q/k/v, query scaling by 1/sqrt(d_head), the causal mask as a large negative bias, the tied
vocabulary head mixed with the copy-attention distribution. Linear layers become TFLite
FULLY_CONNECTED ops with constant weights, which dynamic-range INT8 quantises.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr.converters.corrector_source import CorrectorSource
from edge_slr.converters.job import Artifact, Job
from edge_slr.errors import InputError
from edge_slr.sidecar import PrecisionSpec

NEG = -1e9  # additive causal mask: exp() of it is exactly 0 in float32, like PyTorch's -inf
LN_EPS = 1e-5


def stage_weights(stage: Any) -> dict[str, np.ndarray]:
    """The float32 numpy weights of one PyTorch stage, the positional table included."""
    state = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in stage.state_dict().items()}
    state["positions"] = stage.positions.detach().cpu().numpy().astype(np.float32)
    return state


class TFStage:
    """One corrector stage as TensorFlow functions over constant weights (batch 1)."""

    def __init__(self, tf: Any, weights: dict[str, np.ndarray], dims: dict[str, Any]) -> None:
        self.tf = tf
        self.w = {k: tf.constant(v) for k, v in weights.items()}
        self.d = int(dims["d_model"])
        self.heads = int(dims["n_heads"])
        self.vocab_size = int(dims["vocab_size"])
        self.encoder_layers = int(dims["encoder_layers"])
        self.decoder_layers = int(dims["decoder_layers"])
        self.copy = bool(dims.get("copy_attention", False))
        self.np = weights

    # -- building blocks (2-D activations: positions x features) ---------------------------------
    def linear(self, x: Any, prefix: str, rows: slice | None = None) -> Any:
        """``x @ W.T + b`` of a torch Linear (weight ``[out, in]``); ``rows`` picks output rows."""
        tf = self.tf
        weight = self.np[f"{prefix}weight"]
        bias = self.np.get(f"{prefix}bias")
        if rows is not None:
            weight = weight[rows]
            bias = bias[rows] if bias is not None else None
        y = tf.matmul(x, tf.constant(np.ascontiguousarray(weight.T)))
        return y if bias is None else y + tf.constant(bias)

    def norm(self, x: Any, prefix: str) -> Any:
        tf = self.tf
        mean = tf.reduce_mean(x, -1, keepdims=True)
        centred = x - mean
        var = tf.reduce_mean(tf.square(centred), -1, keepdims=True)
        return (
            centred * tf.math.rsqrt(var + LN_EPS) * self.w[f"{prefix}weight"]
            + self.w[f"{prefix}bias"]
        )

    def attention(self, prefix: str, query: Any, keys: Any, mask: Any = None) -> Any:
        """nn.MultiheadAttention (batch_first, packed in_proj), queries (T, d), keys (S, d)."""
        tf = self.tf
        d, h = self.d, self.heads
        dh = d // h

        def heads(x: Any, part: int) -> Any:
            y = self.linear(x, f"{prefix}in_proj_", slice(part * d, (part + 1) * d))
            return tf.transpose(tf.reshape(y, [-1, h, dh]), [1, 0, 2])  # (h, L, dh)

        q = heads(query, 0) * (1.0 / math.sqrt(dh))
        k, v = heads(keys, 1), heads(keys, 2)
        scores = tf.matmul(q, k, transpose_b=True)  # (h, T, S)
        if mask is not None:
            scores = scores + mask
        out = tf.matmul(tf.nn.softmax(scores, -1), v)  # (h, T, dh)
        out = tf.reshape(tf.transpose(out, [1, 0, 2]), [-1, d])
        return self.linear(out, f"{prefix}out_proj.")

    def feed_forward(self, x: Any, prefix: str) -> Any:
        hidden = self.tf.nn.gelu(self.linear(x, f"{prefix}linear1."), approximate=False)
        return self.linear(hidden, f"{prefix}linear2.")

    def embed(self, ids: Any) -> Any:
        tf = self.tf
        length = tf.shape(ids)[0]
        table = tf.gather(self.w["embed.weight"], ids) * math.sqrt(self.d)
        return table + self.w["positions"][:length]

    # -- the two graphs ------------------------------------------------------------------------
    def encode(self, src: Any) -> Any:
        """(S,) int32 ids -> (S, d) memory."""
        x = self.embed(src)
        for i in range(self.encoder_layers):
            p = f"encoder.layers.{i}."
            y = self.norm(x, f"{p}norm1.")
            x = x + self.attention(f"{p}self_attn.", y, y)
            x = x + self.feed_forward(self.norm(x, f"{p}norm2."), p)
        return self.norm(x, "encoder.norm.")

    def decode(self, tgt: Any, memory: Any, src: Any) -> Any:
        """(T,) ids, (S, d) memory, (S,) source ids -> (T, V) next-token log-probabilities."""
        tf = self.tf
        length = tf.shape(tgt)[0]
        lower = tf.linalg.band_part(tf.ones(tf.stack([length, length])), -1, 0)
        causal = (1.0 - lower) * NEG
        x = self.embed(tgt)
        for i in range(self.decoder_layers):
            p = f"decoder.layers.{i}."
            y = self.norm(x, f"{p}norm1.")
            x = x + self.attention(f"{p}self_attn.", y, y, causal)
            x = x + self.attention(f"{p}multihead_attn.", self.norm(x, f"{p}norm2."), memory)
            x = x + self.feed_forward(self.norm(x, f"{p}norm3."), p)
        return self.head(self.norm(x, "decoder.norm."), memory, src)

    def head(self, hidden: Any, memory: Any, src: Any) -> Any:
        tf = self.tf
        vocab_logp = tf.nn.log_softmax(tf.matmul(hidden, self.w["embed.weight"], transpose_b=True))
        if not self.copy:
            return vocab_logp
        scores = tf.matmul(
            self.linear(hidden, "copy_query."), self.linear(memory, "copy_key."), transpose_b=True
        ) * (1.0 / math.sqrt(self.d))
        copy_p = tf.matmul(tf.nn.softmax(scores, -1), tf.one_hot(src, self.vocab_size))
        gate = tf.sigmoid(self.linear(hidden, "copy_gate."))
        return tf.math.log(gate * tf.exp(vocab_logp) + (1.0 - gate) * copy_p + 1e-9)


def tf_functions(tf: Any, stage: TFStage) -> tuple[Any, Any, Any]:
    """A module holding both programs and their concrete functions (named signatures):
    encoder(src), decoder(tgt, memory, src)."""
    d = stage.d
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([1, None], tf.int64, name="src")])
    def encoder(src: Any) -> dict[str, Any]:
        memory = stage.encode(tf.cast(src[0], tf.int32))
        return {"memory": memory[None]}

    @tf.function(
        input_signature=[
            tf.TensorSpec([1, None], tf.int64, name="tgt"),
            tf.TensorSpec([1, None, d], tf.float32, name="memory"),
            tf.TensorSpec([1, None], tf.int64, name="src"),
        ]
    )
    def decoder(tgt: Any, memory: Any, src: Any) -> dict[str, Any]:
        out = stage.decode(tf.cast(tgt[0], tf.int32), memory[0], tf.cast(src[0], tf.int32))
        return {"log_probs": out[None]}

    module.encoder, module.decoder = encoder, decoder
    return module, encoder.get_concrete_function(), decoder.get_concrete_function()


def to_flatbuffer(tf: Any, module: Any, function: Any, int8: bool) -> bytes:
    """TFLite FP32, or dynamic-range INT8 (INT8 weights, float activations)."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def stage_flatbuffers(stage: Any, dims: dict[str, Any], int8: bool) -> tuple[bytes, bytes]:
    """(encoder, decoder) TFLite flatbuffers of one PyTorch corrector stage."""
    from edge_slr.converters.tflite import tensorflow

    tf = tensorflow()
    tf_stage = TFStage(tf, stage_weights(stage), dims)
    module, encoder, decoder = tf_functions(tf, tf_stage)
    return to_flatbuffer(tf, module, encoder, int8), to_flatbuffer(tf, module, decoder, int8)


def op_names(path: Path) -> list[str]:
    """The builtin ops of a ``.tflite`` file, read from the flatbuffer."""
    from edge_slr.runtimes.tflite_ops import read_op_codes

    return sorted({op.name for op in read_op_codes(path)})


def export_tflite(job: Job) -> Artifact:
    """``tflite`` (FP32) or ``tflite-int8`` (dynamic-range) graphs of every stage."""
    from edge_slr.converters import corrector_export as ce
    from edge_slr.converters.tflite import load_interpreter, tensorflow, with_graph_ops

    if job.options.full_integer or job.options.fused_lstm is not None:
        raise InputError(
            "--full-integer and --fused-lstm apply to the student; the corrector's TFLite "
            "INT8 is dynamic-range (INT8 weights, float activations)"
        )
    tf, engine = tensorflow(), load_interpreter()
    int8, stem = job.spec.int8, ce.artifact_stem(job)
    dims = job.source.dims
    files, ops = [], {}
    for index, stage in enumerate(CorrectorSource.of(job).corrector.stages):
        buffers = stage_flatbuffers(stage, dims, int8)
        for role, flatbuffer in zip(("encoder", "decoder"), buffers, strict=True):
            path = job.out_dir / f"{stem}-stage{index}-{role}.tflite"
            path.write_bytes(flatbuffer)
            ops[f"stage{index}.{role}"] = op_names(path)
            files.append((f"stage{index}.{role}", path, None))
    if int8:
        precision = PrecisionSpec(
            "int8",
            "fp32",
            kept_fp32=("activations (quantised on the fly per op)", "attention BATCH_MATMULs",
                       "embedding GATHER", "LayerNorm", "Softmax", "GELU"),
            notes="dynamic-range quantisation: INT8 FULLY_CONNECTED weights, float activations",
        )  # fmt: skip
    else:
        precision = PrecisionSpec("fp32", "fp32")
    artifact = ce.make_artifact(
        job,
        files,
        precision,
        {"name": "litert", "version": engine.version, "config": {"batch": 1}},
        {"tensorflow": tf.__version__, engine.module: engine.version},
    )
    artifact.details.update(
        quantization="dynamic-range" if int8 else "fp32",
        rebuild="TensorFlow functions with copied weights (edge_slr.converters.tf_corrector)",
        ops=ops,
        signature="serving_default",
    )
    return with_graph_ops(job, artifact)
