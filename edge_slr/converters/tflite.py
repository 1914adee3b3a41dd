"""TFLite (LiteRT) FP32 and INT8 from the Keras rebuild of the student, with T kept dynamic.

- ``tflite``: FP32.
- ``tflite-int8``: dynamic-range INT8 by default (INT8 weights, float activations quantised on
  the fly; no calibration statistics needed), or ``full_integer=True`` for integer-only
  accelerators: INT8 weights and activations calibrated on variable-length sequences, float
  input and output tensors.

Two Keras flavours (docs/engines.md): Keras 3 turns the LSTMs into WHILE loops (converts in
seconds, exact in FP32), tf-keras gives fused UNIDIRECTIONAL_SEQUENCE_LSTM ops (converts about
10x slower). Full-integer conversion crashes the converter on WHILE-loop LSTMs, so it always uses
tf-keras; ``fused_lstm`` chooses explicitly. The op list lands in the sidecar.
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

    tf = tensorflow()
    dims = StudentDims.from_dict(job.source.dims)
    state = job.source.model.model.state_dict()  # the export wrapper holds the student
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
    if mode == "full-integer":
        converter.representative_dataset = representative_data(job)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32
    # The Keras 3 export path prints its SavedModel signature to stdout.
    with contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()


def interpreter(path_or_bytes: Any, threads: int | None = None) -> Any:
    litert = require("ai_edge_litert.interpreter", "running TFLite models")
    if isinstance(path_or_bytes, bytes):
        return litert.Interpreter(model_content=path_or_bytes, num_threads=threads)
    return litert.Interpreter(model_path=str(path_or_bytes), num_threads=threads)


def interpreter_runner(interp: Any) -> Any:
    """A Runner that resizes the input to each sequence's length (batch 1)."""
    state = {"frames": None}
    input_detail = interp.get_input_details()[0]
    output_index = interp.get_output_details()[0]["index"]

    def run(features: np.ndarray) -> np.ndarray:
        frames = features.shape[0]
        if state["frames"] != frames:
            interp.resize_tensor_input(input_detail["index"], [1, frames, features.shape[1]])
            interp.allocate_tensors()
            state["frames"] = frames
        interp.set_tensor(input_detail["index"], features[None].astype(np.float32, copy=False))
        interp.invoke()
        return interp.get_tensor(output_index)[0].copy()

    return run


def op_names(interp: Any) -> list[str]:
    try:
        return sorted({op["op_name"] for op in interp._get_ops_details()})
    except AttributeError:  # the op listing is not public API; absent in some LiteRT builds
        return []


def export(job: Job) -> Artifact:
    if job.source.kind == "corrector":
        from edge_slr.converters import corrector_export

        return corrector_export.export_tflite(job)
    tf = tensorflow()
    int8, full = job.spec.int8, job.options.full_integer
    fused = use_fused(job)
    mode = "full-integer" if full else "dynamic-range" if int8 else "fp32"
    model = keras_model(job, fused)
    logger.info("TFLite %s via %s", mode, "tf-keras (fused LSTM)" if fused else "Keras 3")
    flatbuffer = to_tflite(job, model, mode)
    stem = "-int8-full" if full else "-int8" if int8 else ""
    path = job.model_path(stem)
    path.write_bytes(flatbuffer)
    interp = interpreter(path)
    ops = op_names(interp)
    litert = require("ai_edge_litert", "running TFLite models")
    version = getattr(litert, "__version__", "unknown")
    if mode == "fp32":
        precision = PrecisionSpec("fp32", "fp32")
    elif mode == "dynamic-range":
        precision = PrecisionSpec(
            "int8",
            "fp32",
            kept_fp32=("activations (quantised on the fly per op)",),
            notes="dynamic-range quantisation: INT8 weights, float activations",
        )
    else:
        precision = PrecisionSpec(
            "int8",
            "int8",
            kept_fp32=("input and output tensors (float32 I/O)",),
            notes="full-integer quantisation, calibrated on variable-length sequences",
        )
    return Artifact(
        model_path=path,
        precision=precision,
        engine={"name": "litert", "version": version, "config": {"batch": 1}},
        details={
            "quantization": mode,
            "keras": "tf-keras" if fused else "keras3",
            "fused_lstm": FUSED_LSTM_OP in ops,
            "ops": ops,
            "calibration_method": "representative_dataset" if full else "",
        },
        versions={"tensorflow": tf.__version__, "ai_edge_litert": version},
        runner=interpreter_runner(interp),
    )
