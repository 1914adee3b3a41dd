"""Landmark files: ``load_landmarks`` / ``save_landmarks`` and the project's own ``.npz``.

Dispatch is on the suffix (case-insensitive):

- ``.npz``: edge-slr's own format (below), lossless, keeps the metadata;
- ``.pose``: pose-format's binary format (:mod:`edge_slr.landmarks.pose_file`);
- ``.parquet``: Kaggle GISLR landmark tables (:mod:`edge_slr.landmarks.parquet`).

``.npz`` layout (format version ``NPZ_FORMAT_VERSION``), a compressed numpy archive of:
``format_version`` int64 scalar, ``data`` float32 (T, 543, 4), ``fps`` float64 scalar and
``metadata`` a JSON string. It is read with ``allow_pickle=False``.

Every malformed file raises :class:`FormatError` naming the file and the field; a missing file
raises ``FileNotFoundError``.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr.errors import FormatError, InputError
from edge_slr.landmarks.parquet import read_parquet, write_parquet
from edge_slr.landmarks.pose_file import read_pose, write_pose
from edge_slr.landmarks.sequence import LandmarkSequence

NPZ_FORMAT_VERSION = 1
SUFFIXES: tuple[str, ...] = (".npz", ".pose", ".parquet")
_NPZ_FIELDS = ("format_version", "data", "fps", "metadata")


def write_npz(path: str | os.PathLike[str], seq: LandmarkSequence) -> None:
    """Write ``seq`` losslessly (data, fps, metadata) as an edge-slr ``.npz`` file."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    fields = {
        "format_version": np.int64(NPZ_FORMAT_VERSION),
        "data": seq.data,
        "fps": np.float64(seq.fps),
        "metadata": np.str_(json.dumps(seq.metadata, sort_keys=True)),
    }
    # A standard .npz (np.load reads it), deflated at level 1: np.savez_compressed uses zlib's
    # default level, which made writing datasets 5x slower for files only ~10% smaller.
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, value in fields.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
    partial.replace(path)


def _npz_field(path: Path, archive: Any, name: str) -> np.ndarray:
    try:
        return archive[name]
    except KeyError:
        raise FormatError(
            path, f"field {name!r} is missing; found {sorted(archive.files)}, expected "
            f"{list(_NPZ_FIELDS)} (an edge-slr landmark .npz)"
        ) from None  # fmt: skip
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise FormatError(
            path, f"field {name!r} is unreadable ({type(exc).__name__}: {exc})"
        ) from exc


def _npz_scalar(path: Path, value: np.ndarray, name: str, kind: str) -> Any:
    if value.shape != () or value.dtype.kind not in kind:
        raise FormatError(
            path, f"field {name!r} is {value.dtype} with shape {value.shape}; expected a scalar"
        )
    return value.item()


def read_npz(path: str | os.PathLike[str]) -> LandmarkSequence:
    """Read an edge-slr ``.npz`` landmark file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such landmark file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise FormatError(
            path, f"not a readable .npz archive ({type(exc).__name__}: {exc}); the file is "
            f"truncated or of another format"
        ) from exc  # fmt: skip
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise FormatError(path, "holds a single .npy array; expected an .npz archive")
    with archive:
        version = _npz_scalar(
            path, _npz_field(path, archive, "format_version"), "format_version", "iu"
        )
        if version != NPZ_FORMAT_VERSION:
            raise FormatError(
                path, f"field 'format_version' is {version}; this edge-slr reads version "
                f"{NPZ_FORMAT_VERSION}"
            )  # fmt: skip
        data = _npz_field(path, archive, "data")
        fps = _npz_scalar(path, _npz_field(path, archive, "fps"), "fps", "iuf")
        text = _npz_scalar(path, _npz_field(path, archive, "metadata"), "metadata", "U")
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"field 'metadata' is not valid JSON ({exc})") from exc
    try:
        return LandmarkSequence(data, fps, metadata)
    except InputError as exc:
        raise FormatError(path, f"field 'data'/'fps'/'metadata': {exc}") from exc


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise FormatError(
            path, f"unknown landmark file suffix {path.suffix!r}; expected one of {list(SUFFIXES)}"
        )
    return suffix


def load_landmarks(path: str | os.PathLike[str], fps: float | None = None) -> LandmarkSequence:
    """Read a landmark file into the 543-point layout, by suffix (see module docstring).

    ``fps`` is used only by formats that do not store a frame rate (``.parquet``).
    """
    path = Path(path)
    suffix = _suffix(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such landmark file")
    if suffix == ".npz":
        return read_npz(path)
    if suffix == ".pose":
        return read_pose(path)
    return read_parquet(path, fps=fps)


def save_landmarks(path: str | os.PathLike[str], seq: LandmarkSequence) -> None:
    """Write ``seq`` to ``path`` in the format its suffix names (.npz, .pose or .parquet)."""
    if not isinstance(seq, LandmarkSequence):
        raise InputError(f"save_landmarks got a {type(seq).__name__}; expected LandmarkSequence")
    path = Path(path)
    suffix = _suffix(path)
    if suffix == ".npz":
        write_npz(path, seq)
    elif suffix == ".pose":
        write_pose(path, seq)
    else:
        write_parquet(path, seq)
