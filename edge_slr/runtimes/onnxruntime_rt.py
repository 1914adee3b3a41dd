"""ONNX Runtime on the CPU execution provider, with intra-/inter-op thread options.

``threads`` sets the intra-op pool (the one that matters for one sequence at a time);
``inter_op_threads`` only helps graphs with parallel branches and turns on the parallel
execution mode. All graph optimisations are on. Idle pool threads do not spin (``spinning=True``
lets them): spinning made 2 threads twice as slow as 1 on a busy 2-core machine.
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

    def _load(
        self, inter_op_threads: int | None = None, log_level: int = 3, spinning: bool = False
    ) -> None:
        if inter_op_threads is not None and (
            not isinstance(inter_op_threads, int) or inter_op_threads < 1
        ):
            raise InputError(f"inter_op_threads must be a positive int, got {inter_op_threads!r}")
        if not isinstance(spinning, bool):
            raise InputError(f"spinning must be True or False, got {spinning!r}")
        ort = require("onnxruntime", "running ONNX models")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = log_level
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
        if inter_op_threads is not None:
            options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
            options.inter_op_num_threads = inter_op_threads
        if not spinning:
            # Idle pool threads spin by default: on 2 cores shared with other workers they take
            # the core the work needs (pose landmark, busy 2-core EPYC: 26.7 ms at 1 thread, 56.1
            # at 2 spinning, 19.6 at 2 not spinning).
            for entry in ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning"):
                options.add_session_config_entry(entry, "0")
        self._session = ort.InferenceSession(
            str(self.model_path), options, providers=["CPUExecutionProvider"]
        )
        self._output_names = [o.name for o in self._session.get_outputs()]
        self._inter_op_threads = inter_op_threads
        self._spinning = spinning

    def _engine_settings(self) -> dict[str, Any]:
        return {
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "inter_op_threads": self._inter_op_threads,
            "spinning": self._spinning,
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
