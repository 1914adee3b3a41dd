"""The checkpoint file format shared by the student and the video teacher.

A checkpoint is a plain dict of tensors and JSON-like values, so it loads with
``torch.load(weights_only=True)`` (no pickled classes, no code execution)::

    format, version        which model and which layout, e.g. "edge-slr-student", 1
    dims                   the model's dims dataclass (to_dict())
    vocabulary             Vocabulary.to_dict() (blank = 0; its sha256 pins the ids)
    ...                    model-specific description (the student's feature preset)
    config                 the training config (to_dict())
    versions               edge-slr, torch, numpy, python
    model                  the state_dict
    epoch, step, metrics   where training was and what it measured
    training               optional: optimizer/scheduler/RNG state and history (for resume)

Each model module declares a :class:`CheckpointFormat` and a :class:`SavedModel` subclass built
from :func:`read_checkpoint`'s payload (:func:`common_fields` holds what they share).
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


@dataclass(frozen=True)
class CheckpointFormat:
    name: str  # the "format" entry, e.g. "edge-slr-student"
    version: int  # the layout this edge-slr reads and writes
    label: str  # "student", "teacher": for messages
    dims: type  # the dims dataclass (from_dict raises InputError)
    required: tuple[str, ...] = ("dims", "vocabulary", "model")


@dataclass(frozen=True, kw_only=True)
class SavedModel:
    """What every checkpoint holds; the student's and the teacher's add their dims (and more)."""

    dims: Any
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
        from edge_slr.decoding.vocab import Vocabulary

        return Vocabulary.from_dict(self.vocabulary)


def versions() -> dict[str, str]:
    torch = require("torch", "model checkpoints")
    return {
        "edge_slr": __version__,
        "torch": str(torch.__version__),  # TorchVersion is a class weights_only refuses
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def plain(value: dict[str, Any]) -> dict[str, Any]:
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


def write_checkpoint(
    path: str | Path,
    fmt: CheckpointFormat,
    model: Any,
    description: dict[str, Any],
    config: dict[str, Any],
    *,
    epoch: int = 0,
    step: int = 0,
    metrics: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` with ``description`` (dims, vocabulary, ...) to ``path``, atomically.

    ``epoch``, ``step`` and ``metrics`` say where training was; ``training`` (optional) is the
    optimizer/scheduler/RNG state and history that resuming needs.
    """
    torch = require("torch", f"saving {fmt.label} checkpoints")
    path = Path(path)
    payload = {
        "format": fmt.name,
        "version": fmt.version,
        **description,
        "config": plain(config),
        "versions": versions(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},  # any device
        "epoch": int(epoch),
        "step": int(step),
        "metrics": plain(metrics or {}),
    }
    if training is not None:
        payload["training"] = training
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # a crash mid-write never leaves a half checkpoint behind
    return path


def read_checkpoint(path: str | Path, fmt: CheckpointFormat) -> tuple[dict[str, Any], Any]:
    """(payload, dims) of a ``fmt`` checkpoint read with ``weights_only=True``; else FormatError."""
    torch = require("torch", f"loading {fmt.label} checkpoints")
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, f"{fmt.label} checkpoint file does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated file, foreign pickle, not a torch file
        raise FormatError(
            path, f"cannot be read as a weights-only torch checkpoint ({err})"
        ) from None
    found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
    if found != fmt.name:
        raise FormatError(path, f"not an edge-slr {fmt.label} checkpoint (format {found!r})")
    if payload.get("version") != fmt.version:
        raise FormatError(
            path,
            f"{fmt.label} checkpoint version {payload.get('version')!r}; "
            f"this edge-slr reads {fmt.version}",
        )
    missing = [k for k in fmt.required if k not in payload]
    if missing:
        raise FormatError(path, f"{fmt.label} checkpoint lacks {missing}")
    try:
        dims = fmt.dims.from_dict(payload["dims"])  # type: ignore[attr-defined]
    except InputError as err:
        raise FormatError(path, f"bad dims: {err}") from None
    return payload, dims


def common_fields(payload: dict[str, Any], path: Path) -> dict[str, Any]:
    """The checkpoint dataclass fields every model shares, from a :func:`read_checkpoint` payload."""
    return {
        "vocabulary": payload["vocabulary"],
        "config": payload.get("config", {}),
        "state_dict": payload["model"],
        "epoch": int(payload.get("epoch", 0)),
        "step": int(payload.get("step", 0)),
        "metrics": payload.get("metrics", {}),
        "versions": payload.get("versions", {}),
        "training": payload.get("training"),
        "path": Path(path),
    }


def check_vocabulary(path: str | Path, vocab_size: int, num_classes: int) -> None:
    """FormatError when a checkpoint's vocabulary and its model's class count disagree."""
    if vocab_size != num_classes:
        raise FormatError(
            path,
            f"vocabulary has {vocab_size} entries but the model predicts {num_classes} classes",
        )
