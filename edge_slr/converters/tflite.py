"""TFLite (LiteRT) FP32 and INT8 from the Keras rebuild of the student, with T kept dynamic.

- ``tflite``: FP32.
- ``tflite-int8``: dynamic-range INT8 by default (INT8 weights, float activations quantised on
  the fly; no calibration statistics needed), or ``full_integer=True`` for integer-only
  accelerators: INT8 weights and activations calibrated on variable-length sequences, float
  input and output tensors.

Two Keras flavours (docs/engines.md): Keras 3 turns the LSTMs into WHILE loops (converts in
seconds, exact in FP32), tf-keras gives fused UNIDIRECTIONAL_SEQUENCE_LSTM ops (converts about
10x slower). Full-integer conversion crashes the converter on WHILE-loop LSTMs, so it always uses
tf-keras; ``fused_lstm`` chooses explicitly.

Interpreters (docs: edge_slr.runtimes.tflite_ops): the sidecar records every builtin op with its
version and the first TensorFlow release that runs it (``details["tflite_ops"]``) and the oldest
release for the whole model (``details["min_runtime"]``). TensorFlow 2.19's dynamic-range INT8
quantises Dense weights per channel, which makes FULLY_CONNECTED version 12 ("hybrid, per-channel
weights", TFLite 2.17+): tflite-runtime 2.14 cannot load it. ``compat="tflite-runtime-2.14"``
quantises Dense weights per tensor instead (``_experimental_disable_per_channel_quantization_
for_dense_layers``: FULLY_CONNECTED version 3/9, TFLite 2.3), keeping per-channel convolutions
(CONV_2D version 5, TFLite 2.4), and fails the conversion if any op still needs a newer release.
TensorFlow is imported here only (it costs seconds).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from typing import Any

import numpy as np

from edge_slr._optional import require
from edge_slr.converters.job import Artifact, Job
from edge_slr.converters.source import StudentSource
from edge_slr.converters.verify import ConversionError
from edge_slr.errors import InputError
from edge_slr.runtimes import tflite_ops
from edge_slr.runtimes.litert_rt import load_interpreter
from edge_slr.sidecar import PrecisionSpec

logger = logging.getLogger(__name__)

FUSED_LSTM_OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"


def tensorflow() -> Any:
    # Keep TensorFlow's C++ start-up chatter (CUDA probing) out of the user's terminal.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return require("tensorflow", "TFLite conversion")


def keras_flavour(fused: bool) -> Any:
    if fused:
        return require("tf_keras", "fused LSTM ops in TFLite")
    return require("keras", "TFLite conversion")


def use_fused(job: Job) -> bool:
    if job.options.fused_lstm is not None:
        return job.options.fused_lstm
    return job.options.full_integer


def keras_model(job: Job, fused: bool) -> Any:
    from edge_slr.converters.keras_student import build_keras_student
    from edge_slr.training.models import StudentDims

    tf, source = tensorflow(), StudentSource.of(job)
    dims = StudentDims.from_dict(source.dims)
    state = source.model.model.state_dict()  # the export wrapper holds the student
    return build_keras_student(
        keras_flavour(fused), tf, dims, state, log_probs=job.options.log_probs
    )


def representative_data(job: Job) -> Any:
    def generate() -> Any:
        for seq in job.calibration.sequences:
            yield [seq.features[None].astype(np.float32)]

    return generate


def to_tflite(job: Job, model: Any, mode: str) -> bytes:
    """``mode``: "fp32", "dynamic-range" or "full-integer"."""
    tf = tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "dynamic-range" and job.options.compat:
        # Per-channel Dense weights make FULLY_CONNECTED v12 (TFLite 2.17+); per-tensor: v3/v9.
        flag = "_experimental_disable_per_channel_quantization_for_dense_layers"
        if not hasattr(converter, flag):
            raise InputError(
                f"--compat {job.options.compat} needs a TFLiteConverter with {flag} "
                f"(TensorFlow 2.16 or newer), got TensorFlow {tf.__version__}"
            )
        setattr(converter, flag, True)
    if mode == "full-integer":
        converter.representative_dataset = representative_data(job)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32
    # The Keras 3 export path prints its SavedModel signature to stdout.
    with contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()


STUDENT_NEAREST = "the full-integer model (--full-integer) needs TFLite 2.5"
CORRECTOR_NEAREST = (
    "the corrector's dynamic-range INT8 keeps per-channel Dense weights; its FP32 conversion "
    "(--target tflite) needs TFLite 2.9"
)


def op_details(
    model: Any, compat: str = "", compat_release: str | None = None, nearest: str = STUDENT_NEAREST
) -> dict[str, Any]:
    """Sidecar details of a ``.tflite`` file (path or bytes): its builtin ops with versions and
    first releases, and the oldest release that runs them all (the converter's own
    ``min_runtime_version`` metadata where that is newer). With ``compat_release``, an op that
    needs a newer release fails the conversion, naming it and ``nearest`` (what does run)."""
    ops = tflite_ops.read_op_codes(model)
    known = [r for r in (tflite_ops.min_runtime(ops), tflite_ops.converter_min_runtime(model)) if r]
    if compat_release is not None:
        newer = tflite_ops.newer_ops(ops, compat_release)
        if newer:
            listed = ", ".join(f"{op.name} v{op.version} (TFLite {op.min_runtime})" for op in newer)
            raise ConversionError(
                f"--compat {compat}: the converted model still needs {listed}; no converter "
                f"setting here avoids it ({nearest})"
            )
    return {
        "tflite_ops": [op.to_dict() for op in ops],
        "min_runtime": max(known, key=tflite_ops.release_key) if known else None,
        "compat": compat,
    }


def with_graph_ops(job: Job, artifact: Artifact) -> Artifact:
    """A corrector's TFLite graphs: the ops of each (by role) and the oldest release for all;
    ``compat`` is checked on every graph."""
    per_graph = {
        graph.role: op_details(
            job.out_dir / graph.file.name,
            job.options.compat,
            job.options.compat_release,
            CORRECTOR_NEAREST,
        )
        for graph in artifact.graphs
    }
    releases = [d["min_runtime"] for d in per_graph.values() if d["min_runtime"]]
    artifact.details.update(
        tflite_ops={role: d["tflite_ops"] for role, d in per_graph.items()},
        min_runtime=max(releases, key=tflite_ops.release_key) if releases else None,
        compat=job.options.compat,
    )
    return artifact


def quantization_mode(job: Job) -> str:
    return (
        "full-integer" if job.options.full_integer else "dynamic-range" if job.spec.int8 else "fp32"
    )


PRECISIONS = {
    "fp32": PrecisionSpec("fp32", "fp32"),
    "dynamic-range": PrecisionSpec(
        "int8",
        "fp32",
        kept_fp32=("activations (quantised on the fly per op)",),
        notes="dynamic-range quantisation: INT8 weights, float activations",
    ),
    "full-integer": PrecisionSpec(
        "int8",
        "int8",
        kept_fp32=("input and output tensors (float32 I/O)",),
        notes="full-integer quantisation, calibrated on variable-length sequences",
    ),
}


def export(job: Job) -> Artifact:
    """The student as TFLite (FP32, dynamic-range or full-integer INT8), from a Keras rebuild."""
    from edge_slr.converters.describe import output_name, student_graph

    tf = tensorflow()
    mode, fused = quantization_mode(job), use_fused(job)
    model = keras_model(job, fused)
    logger.info("TFLite %s via %s", mode, "tf-keras (fused LSTM)" if fused else "Keras 3")
    flatbuffer = to_tflite(job, model, mode)
    stem = {"fp32": "", "dynamic-range": "-int8", "full-integer": "-int8-full"}[mode]
    if mode == "dynamic-range" and job.options.compat:
        stem += "-compat"  # per-tensor Dense weights: a different model from the default INT8
    path = job.model_path(stem)
    path.write_bytes(flatbuffer)
    compat = op_details(path, job.options.compat, job.options.compat_release)
    ops = sorted({op["op"] for op in compat["tflite_ops"]})
    engine = load_interpreter()
    return Artifact(
        model_path=path,
        precision=PRECISIONS[mode],
        engine={"name": "litert", "version": engine.version, "config": {"batch": 1}},
        graphs=(student_graph(job, path),),
        sequence_output=output_name(job),
        output_kind=output_name(job),
        details={
            "quantization": mode,
            "keras": "tf-keras" if fused else "keras3",
            "fused_lstm": FUSED_LSTM_OP in ops,
            "ops": ops,
            "calibration_method": "representative_dataset" if mode == "full-integer" else "",
            **compat,
        },
        versions={"tensorflow": tf.__version__, engine.module: engine.version},
    )
