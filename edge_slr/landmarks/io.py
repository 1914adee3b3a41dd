"""Landmark files: ``load_landmarks`` / ``save_landmarks`` and the project's own ``.npz``.

Dispatch is on the suffix (case-insensitive):

- ``.npz``: edge-slr's own format (below), lossless, keeps the metadata;
- ``.pose``: pose-format's binary format (:mod:`edge_slr.landmarks.pose_file`);
- ``.parquet``: Kaggle GISLR landmark tables (:mod:`edge_slr.landmarks.parquet`).

``.npz`` layout (format version ``NPZ_FORMAT_VERSION``), a compressed numpy archive of:
``format_version`` int64 scalar, ``data`` float32 (T, 543, 4), ``fps`` float64 scalar and
``metadata`` a JSON string. It is read with ``allow_pickle=False``.

Before anything is unpacked, each field's declared shape is read from its ``.npy`` header and
bounded: ``data`` must declare ``(T, 543, 4)`` with ``T <= MAX_NPZ_FRAMES`` (108,000 frames: an
hour at 30 fps, 0.94 GB as float32), above 16 MiB at most ``MAX_NPZ_RATIO`` (500) bytes per
compressed byte (deflate cannot exceed about 1030:1; a file of edge-slr's own in which nothing was
detected is about 230:1, real landmarks under 20:1, so more is a zip bomb), and the other fields
at most ``MAX_NPZ_FIELD_BYTES`` (16 MiB).

Every malformed file raises :class:`FormatError` naming the file and the field; a missing file
raises ``FileNotFoundError``.

Points with NaN/inf coordinates (other tools write a part that was not found that way) are
marked missing with one warning by every reader (``load_landmarks(path, strict=True)`` raises a
FormatError naming the first such point instead); the result's ``metadata`` then holds
``nonfinite_marked_missing``, the count per part.
"""

from __future__ import annotations

import json
import logging
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr.errors import FormatError, InputError
from edge_slr.landmarks.layout import NUM_POINTS
from edge_slr.landmarks.parquet import read_parquet, write_parquet
from edge_slr.landmarks.pose_file import read_pose, write_pose
from edge_slr.landmarks.sequence import LandmarkSequence, check_fps, mark_nonfinite_missing

logger = logging.getLogger(__name__)

NPZ_FORMAT_VERSION = 1
SUFFIXES: tuple[str, ...] = (".npz", ".pose", ".parquet")
_NPZ_FIELDS = ("format_version", "data", "fps", "metadata")
MAX_NPZ_FRAMES = 108_000  # an hour at 30 fps
MAX_NPZ_RATIO = 500  # declared bytes per compressed byte, checked above _RATIO_FLOOR
MAX_NPZ_FIELD_BYTES = 16 * 2**20  # fps, format_version, metadata
_RATIO_FLOOR = 16 * 2**20
_NPY_MAGIC = b"\x93NUMPY"


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


def _npy_header(path: Path, name: str, member: Any) -> tuple[tuple[int, ...], np.dtype]:
    """The (shape, dtype) that an .npy member declares, read without unpacking its data."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = fmt.read_array_header_2_0(member)
        else:
            raise ValueError(f"npy format version {version}; expected (1, 0) or (2, 0)")
    except (ValueError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise FormatError(
            path, f"field {name!r} has an unreadable .npy header ({type(exc).__name__}: {exc})"
        ) from exc
    return tuple(int(n) for n in shape), dtype


def _check_npz_sizes(path: Path, archive: Any) -> None:
    """Refuse fields whose declared size is out of bounds (see module docstring) unread."""
    for name in _NPZ_FIELDS:
        try:
            info = archive.zip.getinfo(f"{name}.npy")
        except KeyError:
            continue  # reported as a missing field when it is read
        with archive.zip.open(info) as member:
            shape, dtype = _npy_header(path, name, member)
        declared = math.prod(shape) * dtype.itemsize
        if name != "data":
            if declared > MAX_NPZ_FIELD_BYTES:
                raise FormatError(
                    path, f"field {name!r} declares shape {shape} of {dtype} ({declared:,} "
                    f"bytes); expected a scalar of at most {MAX_NPZ_FIELD_BYTES:,} bytes"
                )  # fmt: skip
            continue
        if len(shape) != 3 or shape[1:] != (NUM_POINTS, 4):
            raise FormatError(
                path, f"field 'data' has shape {shape}; expected (T, {NUM_POINTS}, 4) = frames "
                f"x MediaPipe Holistic points x (x, y, z, confidence)"
            )  # fmt: skip
        if shape[0] > MAX_NPZ_FRAMES:
            raise FormatError(
                path, f"field 'data' declares shape {shape} ({declared / 1e9:.2f} GB of "
                f"{dtype}); this reader takes at most {MAX_NPZ_FRAMES:,} frames (an hour at "
                f"30 fps): split longer recordings"
            )  # fmt: skip
        ratio = declared / max(info.compress_size, 1)
        if declared > _RATIO_FLOOR and ratio > MAX_NPZ_RATIO:
            raise FormatError(
                path, f"field 'data' declares shape {shape} ({declared / 1e6:,.0f} MB of "
                f"{dtype}) from {info.compress_size / 1e6:,.1f} MB compressed (ratio "
                f"{ratio:,.0f}:1); refusing to unpack more than {MAX_NPZ_RATIO}:1 (a zip bomb "
                f"or a corrupt file)"
            )  # fmt: skip


def _override_fps(path: Path, seq: LandmarkSequence, fps: float | None) -> LandmarkSequence:
    """``seq`` at the caller's frame rate ``fps`` when one was given (see ``load_landmarks``)."""
    if fps is None:
        return seq
    if fps != seq.fps:
        logger.info("%s: stored frame rate %g replaced by the given %g", path, seq.fps, fps)
    metadata = {**seq.metadata, "fps_source": "argument"}
    return LandmarkSequence(seq.data, fps, metadata)


def read_npz(
    path: str | os.PathLike[str], *, fps: float | None = None, strict: bool = False
) -> LandmarkSequence:
    """Read an edge-slr ``.npz`` landmark file (``fps``, ``strict``: see ``load_landmarks``)."""
    path = Path(path)
    if fps is not None:
        fps = check_fps(fps)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such landmark file")
    with open(path, "rb") as handle:
        if handle.read(len(_NPY_MAGIC)) == _NPY_MAGIC:  # np.load would unpack it at once
            raise FormatError(path, "holds a single .npy array; expected an .npz archive")
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
        _check_npz_sizes(path, archive)
        version = _npz_scalar(
            path, _npz_field(path, archive, "format_version"), "format_version", "iu"
        )
        if version != NPZ_FORMAT_VERSION:
            raise FormatError(
                path, f"field 'format_version' is {version}; this edge-slr reads version "
                f"{NPZ_FORMAT_VERSION}"
            )  # fmt: skip
        data = _npz_field(path, archive, "data")
        stored_fps = _npz_scalar(path, _npz_field(path, archive, "fps"), "fps", "iuf")
        text = _npz_scalar(path, _npz_field(path, archive, "metadata"), "metadata", "U")
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"field 'metadata' is not valid JSON ({exc})") from exc
    if not strict:
        data, counts = mark_nonfinite_missing(data, str(path))
        if counts and isinstance(metadata, dict):
            metadata["nonfinite_marked_missing"] = counts
    try:
        seq = LandmarkSequence(data, stored_fps, metadata)
    except InputError as exc:
        raise FormatError(path, f"field 'data'/'fps'/'metadata': {exc}") from exc
    return _override_fps(path, seq, fps)


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise FormatError(
            path, f"unknown landmark file suffix {path.suffix!r}; expected one of {list(SUFFIXES)}"
        )
    return suffix


def load_landmarks(
    path: str | os.PathLike[str], fps: float | None = None, *, strict: bool = False
) -> LandmarkSequence:
    """Read a landmark file into the 543-point layout, by suffix (see module docstring).

    ``fps``: the recording's frame rate. A Kaggle GISLR ``.parquet`` stores none (one written by
    edge-slr does): without ``fps`` it is read at ``parquet.DEFAULT_FPS`` with a warning. For
    ``.pose`` and ``.npz`` (and a parquet that stores its rate) a given ``fps`` replaces the
    stored one. ``metadata["fps_source"]`` says where the rate came from for ``.pose`` and
    ``.parquet`` (``"file"``, ``"argument"`` or ``"default"``) and for ``.npz`` when given.

    ``strict``: raise FormatError at the first point with a NaN/inf coordinate (and confidence
    > 0) instead of marking such points missing with one warning.
    """
    path = Path(path)
    suffix = _suffix(path)
    if fps is not None:
        fps = check_fps(fps)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such landmark file")
    if suffix == ".npz":
        return read_npz(path, fps=fps, strict=strict)
    if suffix == ".pose":
        return read_pose(path, fps=fps, strict=strict)
    return read_parquet(path, fps=fps, strict=strict)


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
