"""Self-describing teacher checkpoints (weights-only loadable; layout: training.checkpoint_io).

format, version      "edge-slr-teacher", 1
dims                 TeacherDims.to_dict()
vocabulary           Vocabulary.to_dict() (the student distilled from it must share it)
config, versions     the training config; edge-slr/torch/numpy/python versions
model                the state_dict
epoch, step, metrics
training             optional optimiser/scheduler/RNG state and history (resume)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_slr.errors import FormatError
from edge_slr.sidecar import file_sha256
from edge_slr.training.checkpoint_io import (
    CheckpointFormat,
    SavedModel,
    check_vocabulary,
    common_fields,
    read_checkpoint,
    write_checkpoint,
)
from edge_slr.training.teacher.corrnet import TeacherDims, build_teacher

__all__ = [
    "TeacherCheckpoint",
    "file_sha256",
    "load_teacher",
    "load_teacher_checkpoint",
    "save_teacher",
]

FORMAT_NAME = "edge-slr-teacher"
FORMAT_VERSION = 1
FORMAT = CheckpointFormat(FORMAT_NAME, FORMAT_VERSION, "teacher", TeacherDims)


@dataclass(frozen=True, kw_only=True)
class TeacherCheckpoint(SavedModel):
    dims: TeacherDims

    def build_model(self) -> Any:
        model = build_teacher(self.dims)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as err:
            raise FormatError(
                self.path or Path("<teacher>"), f"weights do not fit the dims ({err})"
            ) from None
        return model.eval()


def save_teacher(
    path: str | Path,
    model: Any,
    *,
    vocabulary: Any,
    config: dict[str, Any],
    **progress: Any,
) -> Path:
    """Write the teacher and its description atomically (``progress``: as save_checkpoint's)."""
    description = {"dims": model.dims.to_dict(), "vocabulary": vocabulary.to_dict()}
    return write_checkpoint(path, FORMAT, model, description, config, **progress)


def load_teacher_checkpoint(path: str | Path) -> TeacherCheckpoint:
    """Read a teacher checkpoint with ``weights_only=True``; FormatError if it is not one."""
    payload, dims = read_checkpoint(path, FORMAT)
    return TeacherCheckpoint(dims=dims, **common_fields(payload, Path(path)))


def load_teacher(path: str | Path) -> tuple[Any, TeacherCheckpoint]:
    """The teacher in eval mode and its checkpoint."""
    checkpoint = load_teacher_checkpoint(path)
    check_vocabulary(path, len(checkpoint.vocab()), checkpoint.dims.num_classes)
    return checkpoint.build_model(), checkpoint
