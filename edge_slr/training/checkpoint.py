"""Self-describing student checkpoints.

A checkpoint is a plain dict of tensors and JSON-like values, so it loads with
``torch.load(weights_only=True)`` (no pickled classes, no code execution)::

    format, version        "edge-slr-student", 1
    dims                   StudentDims.to_dict()
    vocabulary             Vocabulary.to_dict() (blank = 0; its sha256 pins the ids)
    preset                 the landmark feature preset's to_dict(), normalisation included
    config                 the training config (StudentConfig.to_dict())
    versions               edge-slr, torch, numpy, python
    model                  the state_dict
    epoch, step, metrics   where training was and what it measured
    training               optional: optimizer/scheduler/RNG state and history (for resume)

Everything needed to rebuild the recogniser and its input pipeline is in the file.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr import __version__
from edge_slr._optional import require
from edge_slr.errors import FormatError, InputError
from edge_slr.training.models import StudentDims, build_student

FORMAT_NAME = "edge-slr-student"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    dims: StudentDims
    vocabulary: dict[str, Any]
    preset: dict[str, Any]
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

    def feature_preset(self) -> Any:
        from edge_slr.landmarks.presets import preset_from_dict

        return preset_from_dict(self.preset)

    def build_model(self) -> Any:
        """The student with these weights, in eval mode."""
        model = build_student(self.dims)
        model.load_state_dict(self.state_dict)
        return model.eval()


def versions() -> dict[str, str]:
    torch = require("torch", "student checkpoints")
    return {
        "edge_slr": __version__,
        "torch": str(torch.__version__),  # TorchVersion is a class weights_only refuses
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def save_checkpoint(
    path: str | Path,
    model: Any,
    *,
    vocabulary: Any,
    preset: Any,
    config: dict[str, Any],
    epoch: int = 0,
    step: int = 0,
    metrics: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` and everything describing it to ``path`` (atomically)."""
    torch = require("torch", "saving student checkpoints")
    path = Path(path)
    payload = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "dims": model.dims.to_dict(),
        "vocabulary": vocabulary.to_dict(),
        "preset": preset.to_dict(),
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
    os.replace(tmp, path)  # a crash mid-write never leaves a half checkpoint behind
    return path


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """JSON-like copy (numpy scalars become Python numbers) so weights_only loading accepts it."""
    return json.loads(json.dumps(value, default=_to_python))


def _to_python(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint description")


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint with ``weights_only=True``; FormatError when it is not one of ours."""
    torch = require("torch", "loading student checkpoints")
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "checkpoint file does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated file, foreign pickle, not a torch file
        raise FormatError(
            path, f"cannot be read as a weights-only torch checkpoint ({err})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise FormatError(path, f"not an edge-slr student checkpoint (format {found!r})")
    if payload.get("version") != FORMAT_VERSION:
        raise FormatError(
            path,
            f"checkpoint version {payload.get('version')!r}; this edge-slr reads {FORMAT_VERSION}",
        )
    missing = [k for k in ("dims", "vocabulary", "preset", "model") if k not in payload]
    if missing:
        raise FormatError(path, f"checkpoint lacks {missing}")
    try:
        dims = StudentDims.from_dict(payload["dims"])
    except InputError as err:
        raise FormatError(path, f"bad dims: {err}") from None
    return Checkpoint(
        dims=dims,
        vocabulary=payload["vocabulary"],
        preset=payload["preset"],
        config=payload.get("config", {}),
        state_dict=payload["model"],
        epoch=int(payload.get("epoch", 0)),
        step=int(payload.get("step", 0)),
        metrics=payload.get("metrics", {}),
        versions=payload.get("versions", {}),
        training=payload.get("training"),
        path=path,
    )


def load_student(path: str | Path) -> tuple[Any, Checkpoint]:
    """The model (eval mode) and its checkpoint description; checks the vocabulary matches."""
    checkpoint = load_checkpoint(path)
    vocab = checkpoint.vocab()
    if len(vocab) != checkpoint.dims.num_classes:
        raise FormatError(
            path,
            f"vocabulary has {len(vocab)} entries but the model predicts "
            f"{checkpoint.dims.num_classes} classes",
        )
    try:
        model = checkpoint.build_model()
    except RuntimeError as err:  # state_dict does not fit the dims
        raise FormatError(path, f"weights do not match the stored dims ({err})") from None
    return model, checkpoint
