"""ONNX INT8 for ONNX Runtime: static INT8 convolutions and matmuls, dynamic INT8 LSTMs.

ONNX Runtime has no static INT8 LSTM (``quantize_static`` leaves it in FP32) and quantising
everything dynamically is slower than FP32 (ConvInteger is slow). What worked (docs/engines.md):
static QOperator quantisation of Conv/MatMul/Gemm calibrated on real variable-length sequences,
then ``quantize_dynamic`` on the LSTMs only (DynamicQuantizeLSTM: INT8 weights, activations
quantised per call).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge_slr._optional import require
from edge_slr.converters.describe import output_name, student_graph
from edge_slr.converters.job import Artifact, Job
from edge_slr.converters.onnx_export import INPUT_NAME, export_student_onnx
from edge_slr.converters.source import StudentSource
from edge_slr.sidecar import PrecisionSpec

logger = logging.getLogger(__name__)

STATIC_OPS = ["Conv", "MatMul", "Gemm"]


def _reader(quantization: Any, job: Job) -> Any:
    class Sequences(quantization.CalibrationDataReader):
        """Feeds one whole calibration sequence (1, T, F) per call; lengths vary."""

        def __init__(self) -> None:
            self._items = iter(job.calibration.sequences)

        def get_next(self) -> dict[str, Any] | None:
            seq = next(self._items, None)
            return None if seq is None else {INPUT_NAME: seq.features[None]}

    return Sequences()


@contextlib.contextmanager
def _quiet_root_warning(fragment: str) -> Iterator[None]:
    """Drop one expected warning that ONNX Runtime logs on the root logger."""

    def keep(record: logging.LogRecord) -> bool:
        return fragment not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def export(job: Job) -> Artifact:
    """The student as ONNX INT8 (static Conv/MatMul, dynamic LSTM)."""
    source = StudentSource.of(job)
    onnx = require("onnx", "ONNX INT8 quantisation")
    ort = require("onnxruntime", "ONNX INT8 quantisation")
    quantization = require("onnxruntime.quantization", "ONNX INT8 quantisation")
    path = job.model_path("-int8")
    with tempfile.TemporaryDirectory(prefix="edge-slr-ort-") as tmp:
        fp32 = export_student_onnx(
            source.model, Path(tmp) / "fp32.onnx", source.feature_dim, output_name(job)
        )
        static, prepared = Path(tmp) / "static.onnx", Path(tmp) / "prepared.onnx"
        # Shape inference and graph optimisation first, as ONNX Runtime recommends.
        quantization.shape_inference.quant_pre_process(str(fp32), str(prepared))
        quantization.quantize_static(
            str(prepared),
            str(static),
            _reader(quantization, job),
            quant_format=quantization.QuantFormat.QOperator,
            op_types_to_quantize=STATIC_OPS,
            per_channel=True,
            activation_type=quantization.QuantType.QUInt8,
            weight_type=quantization.QuantType.QInt8,
            calibrate_method=quantization.CalibrationMethod.MinMax,
        )
        with _quiet_root_warning("already quantized"):  # it is, on purpose: Conv/MatMul
            quantization.quantize_dynamic(
                str(static),
                str(path),
                op_types_to_quantize=["LSTM"],
                weight_type=quantization.QuantType.QInt8,
            )
    ops = sorted({node.op_type for node in onnx.load(str(path)).graph.node})
    floating = sorted({"LSTM", "Conv", "MatMul", "Gemm"} & set(ops))
    return Artifact(
        model_path=path,
        precision=PrecisionSpec(
            "int8",
            "int8",
            kept_fp32=tuple(floating),
            notes="static QOperator INT8 Conv/MatMul (per-channel weights, MinMax calibration); "
            "LSTM: DynamicQuantizeLSTM (INT8 weights, activations quantised per call)",
        ),
        engine={"name": "onnxruntime", "version": ort.__version__, "config": {}},
        graphs=(student_graph(job, path),),
        sequence_output=output_name(job),
        output_kind=output_name(job),
        details={"ops": ops, "calibration_method": "onnxruntime quantize_static (MinMax)"},
        versions={"onnx": onnx.__version__, "onnxruntime": ort.__version__},
    )
