"""OpenVINO IR (FP32, optionally with FP16-compressed weights), dynamic batch and time.

The IR is converted from the TorchScript-exported ONNX file (so input and output carry the same
names as the ONNX target). On CPUs with AVX512_BF16 the OpenVINO CPU plugin runs FP32 models in
bf16 by default, which moves logits by about 1e-3; the sidecar therefore records
``INFERENCE_PRECISION_HINT: f32`` in ``engine.config`` and runtimes compile with it.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from edge_slr._optional import require
from edge_slr.converters.describe import output_name, student_graph
from edge_slr.converters.job import Artifact, Job
from edge_slr.converters.source import StudentSource
from edge_slr.runtimes.openvino_rt import EXACT_FP32
from edge_slr.sidecar import PrecisionSpec

logger = logging.getLogger(__name__)

# Compile settings for exact FP32 results (bf16 is the default on AVX512_BF16 CPUs): the runtime's.
FP32_CONFIG = EXACT_FP32


def openvino() -> Any:
    return require("openvino", "OpenVINO conversion")


def student_to_ov(job: Job) -> Any:
    """The student as an ``ov.Model`` with dynamic batch and frames, via a temporary ONNX file."""
    from edge_slr.converters.onnx_export import export_student_onnx

    ov, source = openvino(), StudentSource.of(job)
    with tempfile.TemporaryDirectory(prefix="edge-slr-ov-") as tmp:
        onnx_path = export_student_onnx(
            source.model, Path(tmp) / "student.onnx", source.feature_dim, output_name(job)
        )
        model = ov.convert_model(str(onnx_path))
    return model


def save_ir(model: Any, path: Path, compress_to_fp16: bool) -> tuple[Path, Path]:
    ov = openvino()
    path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(path), compress_to_fp16=compress_to_fp16)
    return path, path.with_suffix(".bin")


def op_types(model: Any) -> list[str]:
    return sorted({op.get_type_name() for op in model.get_ops()})


def export(job: Job) -> Artifact:
    """The student as OpenVINO IR FP32 (``fp16``: FP16-compressed weights)."""
    ov = openvino()
    fp16 = job.options.fp16
    model = student_to_ov(job)
    xml, weights = save_ir(model, job.model_path("-fp16" if fp16 else ""), compress_to_fp16=fp16)
    precision = PrecisionSpec(
        "fp16" if fp16 else "fp32",
        "fp32",
        notes="FP16-compressed weights, decompressed to FP32 at load" if fp16 else "",
    )
    return Artifact(
        model_path=xml,
        precision=precision,
        engine={"name": "openvino", "version": ov.get_version(), "config": dict(FP32_CONFIG)},
        graphs=(student_graph(job, xml, weights),),
        sequence_output=output_name(job),
        output_kind=output_name(job),
        details={"ops": op_types(model), "compressed_to_fp16": fp16},
        versions={"openvino": ov.get_version()},
    )
