"""The FP32 PyTorch reference: a student checkpoint (``.pt``) run in eager mode.

This is what every converted model is compared with. It needs torch (the ``train`` extra), so
device installs do not have it. A checkpoint has no sidecar; its description (vocabulary, preset,
temporal spec) is built from the checkpoint itself, so a Recognizer can run it like any other
model. ``threads`` calls ``torch.set_num_threads``, which applies to the whole process.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr._optional import require
from edge_slr.runtimes.base import Runtime
from edge_slr.runtimes.registry import register_runtime
from edge_slr.sidecar import (
    FileInfo,
    GraphSpec,
    ModelDescription,
    PrecisionSpec,
    TemporalSpec,
    TensorSpec,
)

logger = logging.getLogger(__name__)

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


def load_torch_corrector(folder: Path) -> Any:
    """The torch gloss corrector of a checkpoint folder (``corrector.pt``), the reference the
    converted correctors are verified against; MissingDependencyError without torch."""
    from edge_slr.training.corrector.checkpoint import load_corrector

    return load_corrector(folder)


def describe_checkpoint(checkpoint: Any, path: Path) -> ModelDescription:
    """A sidecar-equivalent description of a student checkpoint (nothing written to disk)."""
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
        fps=training_fps(checkpoint.config),
    )


def student_temporal(dims: Any) -> TemporalSpec:
    """Stride, receptive field and output-length rule of a student's dims (StudentDims)."""
    return TemporalSpec.two_blocks(dims.kernel_size, dims.padding, dims.min_input_length)


def training_fps(config: dict[str, Any] | None) -> float | None:
    """The frame rate of a checkpoint's training data (its first training sample, the training
    config names the dataset), or None when that dataset is not here (the description then
    reads as ``sidecar.DEFAULT_FPS``)."""
    from edge_slr.data.dataset import LandmarkDataset

    data = (config or {}).get("data") or {}
    root, split = data.get("root"), data.get("train_split") or "train"
    try:
        dataset = LandmarkDataset(root, split)
        return float(dataset[0].landmarks.fps) if len(dataset) else None
    except Exception as err:  # moved, deleted or unreadable: the frame rate stays unknown
        logger.info("training frame rate unknown (dataset %r: %s)", root, err)
        return None
