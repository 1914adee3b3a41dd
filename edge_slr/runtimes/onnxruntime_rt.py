"""ONNX Runtime on the CPU execution provider, with intra-/inter-op thread options.

``threads`` sets the intra-op pool (the one that matters for one sequence at a time);
``inter_op_threads`` only helps graphs with parallel branches and turns on the parallel
execution mode. All graph optimisations are on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_slr._optional import require
from edge_slr.errors import InputError
from edge_slr.runtimes.base import Runtime, spec_from_dims
from edge_slr.runtimes.registry import register_runtime
from edge_slr.sidecar import TensorSpec

# ONNX Runtime reports element types as strings
_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


@register_runtime
class OnnxRuntimeRuntime(Runtime):
    name = "onnxruntime"
    engine = "onnxruntime"
    requires = "onnxruntime"
    suffixes = (".onnx",)
    description_text = "ONNX Runtime (CPU execution provider)"

    def _load(self, inter_op_threads: int | None = None, log_level: int = 3) -> None:
        if inter_op_threads is not None and (
            not isinstance(inter_op_threads, int) or inter_op_threads < 1
        ):
            raise InputError(f"inter_op_threads must be a positive int, got {inter_op_threads!r}")
        ort = require("onnxruntime", "running ONNX models")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = log_level
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
        if inter_op_threads is not None:
            options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
            options.inter_op_num_threads = inter_op_threads
        self._session = ort.InferenceSession(
            str(self.model_path), options, providers=["CPUExecutionProvider"]
        )
        self._output_names = [o.name for o in self._session.get_outputs()]
        self._inter_op_threads = inter_op_threads

    def _engine_settings(self) -> dict[str, Any]:
        return {
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "inter_op_threads": self._inter_op_threads,
            "providers": ["CPUExecutionProvider"],
        }

    def _engine_inputs(self) -> tuple[TensorSpec, ...]:
        return tuple(_spec(node) for node in self._session.get_inputs())

    def _engine_outputs(self) -> tuple[TensorSpec, ...]:
        return tuple(_spec(node) for node in self._session.get_outputs())

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self._session.run(self._output_names, feeds)
        return dict(zip(self._output_names, values, strict=True))

    def _close(self) -> None:
        self._session = None


def _spec(node: Any) -> TensorSpec:
    if node.type not in _DTYPES:
        raise InputError(f"tensor {node.name!r} has unsupported type {node.type}")
    return spec_from_dims(node.name, node.shape, _DTYPES[node.type])
