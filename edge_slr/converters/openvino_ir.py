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

import numpy as np

from edge_slr._optional import require
from edge_slr.converters.job import Artifact, Job
from edge_slr.sidecar import PrecisionSpec

logger = logging.getLogger(__name__)

# Compile settings for exact FP32 results (bf16 is the default on AVX512_BF16 CPUs).
FP32_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


def openvino() -> Any:
    return require("openvino", "OpenVINO conversion")


def student_to_ov(job: Job) -> Any:
    """The student as an ``ov.Model`` with dynamic batch and frames, via a temporary ONNX file."""
    from edge_slr.converters.onnx_export import export_student_onnx, output_name

    ov = openvino()
    with tempfile.TemporaryDirectory(prefix="edge-slr-ov-") as tmp:
        onnx_path = export_student_onnx(
            job.source.model, Path(tmp) / "student.onnx", job.source.feature_dim, output_name(job)
        )
        model = ov.convert_model(str(onnx_path))
    return model


def save_ir(model: Any, path: Path, compress_to_fp16: bool) -> tuple[Path, Path]:
    ov = openvino()
    path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(path), compress_to_fp16=compress_to_fp16)
    return path, path.with_suffix(".bin")


def compiled_runner(path_or_model: Any, config: dict[str, str] | None = None) -> Any:
    """A Runner over an IR file or ov.Model compiled for CPU with ``config``."""
    ov = openvino()
    core = ov.Core()
    compiled = core.compile_model(path_or_model, "CPU", dict(config or {}))
    request = compiled.create_infer_request()

    def run(features: np.ndarray) -> np.ndarray:
        result = request.infer({0: features[None].astype(np.float32, copy=False)})
        return np.array(result[compiled.outputs[0]][0])

    # What the plugin really uses for floating-point layers (a bf16 hint falls back to f32 on
    # CPUs without bf16 support): the precision the verification ran with.
    run.inference_precision = effective_precision(compiled)  # type: ignore[attr-defined]
    return run


def effective_precision(compiled: Any) -> str:
    """The compiled model's floating-point inference precision, as "f32" or "bf16"."""
    value = str(compiled.get_property("INFERENCE_PRECISION_HINT")).lower()
    return "bf16" if "bf16" in value else "f16" if "f16" in value else "f32"


def op_types(model: Any) -> list[str]:
    return sorted({op.get_type_name() for op in model.get_ops()})


def export(job: Job) -> Artifact:
    if job.source.kind == "corrector":
        from edge_slr.converters import corrector_export

        return corrector_export.export_openvino(job)
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
        weights_path=weights,
        precision=precision,
        engine={"name": "openvino", "version": ov.get_version(), "config": dict(FP32_CONFIG)},
        details={"ops": op_types(model), "compressed_to_fp16": fp16},
        versions={"openvino": ov.get_version()},
        runner=compiled_runner(str(xml), FP32_CONFIG),
    )
