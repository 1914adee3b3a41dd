"""The FP32 PyTorch reference: a student checkpoint (``.pt``) run in eager mode.

This is what every converted model is compared with. It needs torch (the ``train`` extra), so
device installs do not have it. A checkpoint has no sidecar; its description (vocabulary, preset,
temporal spec) is built from the checkpoint itself, so a Recognizer can run it like any other
model. ``threads`` calls ``torch.set_num_threads``, which applies to the whole process.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_slr._optional import require
from edge_slr.runtimes.base import Runtime
from edge_slr.runtimes.registry import register_runtime
from edge_slr.sidecar import FileInfo, GraphSpec, ModelDescription, PrecisionSpec, TensorSpec

INPUT, OUTPUT = "features", "logits"


@register_runtime
class TorchRuntime(Runtime):
    name = "torch"
    engine = "torch"
    requires = "torch"
    suffixes = (".pt",)
    description_text = "PyTorch eager FP32 (the reference; needs the train extra)"

    def _load(self) -> None:
        from edge_slr.training.checkpoint import load_student

        self._torch = require("torch", "the PyTorch reference runtime")
        if self.threads is not None:
            self._torch.set_num_threads(self.threads)
        model, checkpoint = load_student(self.model_path)
        self._model = model.for_export(log_probs=False)
        self._dims = checkpoint.dims
        if self.description is None:
            self.description = describe_checkpoint(checkpoint, self.model_path)

    def _engine_inputs(self) -> tuple[TensorSpec, ...]:
        return (TensorSpec(INPUT, ("batch", "frames", self._dims.input_dim)),)

    def _engine_outputs(self) -> tuple[TensorSpec, ...]:
        return (TensorSpec(OUTPUT, ("batch", "steps", self._dims.num_classes)),)

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._torch.no_grad():
            logits = self._model(self._torch.from_numpy(feeds[INPUT]))
        return {OUTPUT: logits.numpy()}

    def _close(self) -> None:
        self._model = None


def describe_checkpoint(checkpoint: Any, path: Any) -> ModelDescription:
    """A sidecar-equivalent description of a student checkpoint (nothing written to disk)."""
    from edge_slr.converters.source import student_temporal, training_fps

    dims = checkpoint.dims
    graph = GraphSpec(
        role="recognizer",
        file=FileInfo.of(path),
        inputs=(TensorSpec(INPUT, ("batch", "frames", dims.input_dim)),),
        outputs=(TensorSpec(OUTPUT, ("batch", "steps", dims.num_classes)),),
    )
    return ModelDescription(
        kind="student",
        target="torch",
        engine={"name": "torch", "version": str(require("torch").__version__), "config": {}},
        graphs=(graph,),
        sequence_output=OUTPUT,
        output_kind="logits",
        vocabulary=checkpoint.vocabulary,
        precision=PrecisionSpec("fp32", "fp32"),
        source={"checkpoint": path.name, "epoch": checkpoint.epoch, "metrics": checkpoint.metrics},
        preset=checkpoint.preset,
        temporal=student_temporal(dims),
        fps=training_fps(checkpoint),
    )
