"""Self-describing teacher checkpoints (weights-only loadable, like the student's).

format, version      "edge-slr-teacher", 1
dims                 TeacherDims.to_dict()
vocabulary           Vocabulary.to_dict() (the student distilled from it must share it)
config, versions     the training config; edge-slr/torch/numpy/python versions
model                the state_dict
epoch, step, metrics
training             optional optimiser/scheduler/RNG state and history (resume)
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_slr._optional import require
from edge_slr.errors import FormatError, InputError
from edge_slr.training.checkpoint import _plain, versions
from edge_slr.training.teacher.corrnet import TeacherDims, build_teacher

FORMAT_NAME = "edge-slr-teacher"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class TeacherCheckpoint:
    dims: TeacherDims
    vocabulary: dict[str, Any]
    config: dict[str, Any]
    state_dict: dict[str, Any]
    epoch: int = 0
    step: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    training: dict[str, Any] | None = None
    path: Path | None = None

    def vocab(self) -> Any:
        from edge_slr.data.vocab import Vocabulary

        return Vocabulary.from_dict(self.vocabulary)

    def build_model(self) -> Any:
        model = build_teacher(self.dims)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as err:
            raise FormatError(
                self.path or Path("<teacher>"), f"weights do not fit the dims ({err})"
            ) from None
        return model.eval()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_teacher(
    path: str | Path,
    model: Any,
    *,
    vocabulary: Any,
    config: dict[str, Any],
    epoch: int = 0,
    step: int = 0,
    metrics: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
) -> Path:
    """Write the teacher and its description atomically."""
    torch = require("torch", "saving teacher checkpoints")
    path = Path(path)
    payload = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "dims": model.dims.to_dict(),
        "vocabulary": vocabulary.to_dict(),
        "config": _plain(config),
        "versions": versions(),
        "model": model.state_dict(),
        "epoch": int(epoch),
        "step": int(step),
        "metrics": _plain(metrics or {}),
    }
    if training is not None:
        payload["training"] = training
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_teacher_checkpoint(path: str | Path) -> TeacherCheckpoint:
    """Read a teacher checkpoint with ``weights_only=True``; FormatError if it is not one."""
    torch = require("torch", "loading teacher checkpoints")
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "teacher checkpoint does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise FormatError(path, f"cannot be read as a weights-only torch file ({err})") from None
    found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
    if found != FORMAT_NAME:
        raise FormatError(path, f"not an edge-slr teacher checkpoint (format {found!r})")
    if payload.get("version") != FORMAT_VERSION:
        raise FormatError(path, f"teacher checkpoint version {payload.get('version')!r}")
    missing = [k for k in ("dims", "vocabulary", "model") if k not in payload]
    if missing:
        raise FormatError(path, f"teacher checkpoint lacks {missing}")
    try:
        dims = TeacherDims.from_dict(payload["dims"])
    except InputError as err:
        raise FormatError(path, f"bad dims: {err}") from None
    return TeacherCheckpoint(
        dims=dims,
        vocabulary=payload["vocabulary"],
        config=payload.get("config", {}),
        state_dict=payload["model"],
        epoch=int(payload.get("epoch", 0)),
        step=int(payload.get("step", 0)),
        metrics=payload.get("metrics", {}),
        versions=payload.get("versions", {}),
        training=payload.get("training"),
        path=path,
    )


def load_teacher(path: str | Path) -> tuple[Any, TeacherCheckpoint]:
    """The teacher in eval mode and its checkpoint."""
    checkpoint = load_teacher_checkpoint(path)
    if len(checkpoint.vocab()) != checkpoint.dims.num_classes:
        raise FormatError(
            path,
            f"vocabulary has {len(checkpoint.vocab())} entries, the model "
            f"{checkpoint.dims.num_classes} classes",
        )
    return checkpoint.build_model(), checkpoint
