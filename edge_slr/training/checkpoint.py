"""Self-describing student checkpoints (the layout: edge_slr.training.checkpoint_io).

    format, version        "edge-slr-student", 1
    dims                   StudentDims.to_dict()
    vocabulary             Vocabulary.to_dict() (blank = 0; its sha256 pins the ids)
    preset                 the landmark feature preset's to_dict(), normalisation included
    config                 the training config (StudentConfig.to_dict())
    versions               edge-slr, torch, numpy, python
    model                  the state_dict
    epoch, step, metrics   where training was and what it measured
    training               optional: optimizer/scheduler/RNG state and history (for resume)

Everything needed to rebuild the recogniser and its input pipeline is in the file; it loads
with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_slr.errors import FormatError
from edge_slr.training.checkpoint_io import (
    CheckpointFormat,
    SavedModel,
    check_vocabulary,
    common_fields,
    plain,
    read_checkpoint,
    versions,
    write_checkpoint,
)
from edge_slr.training.models import StudentDims, build_student

__all__ = ["Checkpoint", "load_checkpoint", "load_student", "save_checkpoint", "versions"]

FORMAT_NAME = "edge-slr-student"
FORMAT_VERSION = 1
FORMAT = CheckpointFormat(
    FORMAT_NAME,
    FORMAT_VERSION,
    "student",
    StudentDims,
    required=("dims", "vocabulary", "preset", "model"),
)


@dataclass(frozen=True, kw_only=True)
class Checkpoint(SavedModel):
    dims: StudentDims
    preset: dict[str, Any]
    quantization: dict[str, Any] | None = None  # QAT scheme and ranges (edge_slr.training.qat)

    def feature_preset(self) -> Any:
        from edge_slr.landmarks.presets import preset_from_dict

        return preset_from_dict(self.preset)

    def build_model(self) -> Any:
        """The student with these weights, in eval mode."""
        model = build_student(self.dims)
        model.load_state_dict(self.state_dict)
        return model.eval()


def save_checkpoint(
    path: str | Path,
    model: Any,
    *,
    vocabulary: Any,
    preset: Any,
    config: dict[str, Any],
    **progress: Any,
) -> Path:
    """Write ``model`` and everything describing it to ``path`` (atomically).

    ``progress``: ``epoch``, ``step``, ``metrics`` and ``training`` (see write_checkpoint).
    """
    description = {"dims": model.dims.to_dict(), "vocabulary": vocabulary.to_dict()}
    description["preset"] = preset.to_dict()
    if hasattr(model, "quantization"):  # a QatStudent: its ranges travel with the weights
        description["quantization"] = plain(model.quantization())
    return write_checkpoint(path, FORMAT, model, description, config, **progress)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint with ``weights_only=True``; FormatError when it is not one of ours."""
    payload, dims = read_checkpoint(path, FORMAT)
    return Checkpoint(
        dims=dims,
        preset=payload["preset"],
        quantization=payload.get("quantization"),
        **common_fields(payload, Path(path)),
    )


def load_student(path: str | Path) -> tuple[Any, Checkpoint]:
    """The model (eval mode) and its checkpoint description; checks the vocabulary matches."""
    checkpoint = load_checkpoint(path)
    check_vocabulary(path, len(checkpoint.vocab()), checkpoint.dims.num_classes)
    try:
        model = checkpoint.build_model()
    except RuntimeError as err:  # state_dict does not fit the dims
        raise FormatError(path, f"weights do not match the stored dims ({err})") from None
    return model, checkpoint
