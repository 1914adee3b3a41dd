"""ONNX (FP32) with dynamic batch and time axes, run by ONNX Runtime.

The student goes through the TorchScript exporter (``dynamo=False``, opset 17): the dynamo
exporter silently specialises ``MaxPool1d`` and ``nn.LSTM`` to the example length, so the file
loads and then rejects any other T (docs/engines.md). Verification runs the exported file at
several lengths, which catches exactly that.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from edge_slr._optional import require
from edge_slr.converters.describe import output_name, student_graph
from edge_slr.converters.job import Artifact, Job
from edge_slr.converters.source import StudentSource
from edge_slr.sidecar import PrecisionSpec

logger = logging.getLogger(__name__)

OPSET = 17
INPUT_NAME = "features"
EXAMPLE_FRAMES = 100


def export_student_onnx(model: Any, path: Path, feature_dim: int, output_name: str) -> Path:
    """Write ``model`` (features (B, T, F) -> (B, T', V)) as ONNX with dynamic B and T."""
    torch = require("torch", "ONNX export")
    example = torch.zeros(1, EXAMPLE_FRAMES, feature_dim)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript exporter warns about batch_first LSTMs and its own deprecation.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[output_name],
            dynamic_axes={
                INPUT_NAME: {0: "batch", 1: "frames"},
                output_name: {0: "batch", 1: "steps"},
            },
        )
    return path


def export(job: Job) -> Artifact:
    """The student as ONNX FP32 (verified afterwards on ONNX Runtime, as it will run)."""
    onnx = require("onnx", "checking the exported ONNX model")
    ort = require("onnxruntime", "verifying the ONNX model")
    source = StudentSource.of(job)
    path = export_student_onnx(source.model, job.model_path(), source.feature_dim, output_name(job))
    onnx.checker.check_model(str(path))
    ops = sorted({node.op_type for node in onnx.load(str(path)).graph.node})
    return Artifact(
        model_path=path,
        precision=PrecisionSpec("fp32", "fp32"),
        engine={"name": "onnxruntime", "version": ort.__version__, "config": {}},
        graphs=(student_graph(job, path),),
        sequence_output=output_name(job),
        output_kind=output_name(job),
        details={"opset": OPSET, "exporter": "torchscript", "ops": ops},
        versions={"onnx": onnx.__version__, "onnxruntime": ort.__version__},
    )
