"""Kaggle GISLR / ASL-fingerspelling landmark parquet files <-> ``LandmarkSequence``.

One row per frame and point: ``frame, row_id, type, landmark_index, x, y, z`` with ``type`` in
face / left_hand / pose / right_hand and ``row_id = "{frame}-{type}-{landmark_index}"``. A part
that was not detected has its rows with x, y, z all NaN; such rows (and rows that are absent)
become confidence 0, every other row confidence 1. A row with only some of x, y, z NaN, or an
infinite one, is marked missing too, with one warning for the file (``strict=True``: a
FormatError naming the row).

Frame rate: GISLR files carry none. Reading takes ``fps`` when given, else the rate a file
written by edge-slr stores in the parquet schema metadata (key ``FPS_KEY``), else
``DEFAULT_FPS`` (30, GISLR's rate) with a warning; ``metadata["fps_source"]`` says which
(``"argument"``, ``"file"`` or ``"default"``). Writing stores the rate under ``FPS_KEY``, so a
round trip keeps it. The format has no pose visibility: writing stores only whether a point is
present. Frames are numbered from ``metadata["first_frame"]``; frame numbers missing between the
first and the last become frames with nothing present.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr._optional import require
from edge_slr.errors import FormatError, InputError
from edge_slr.landmarks.layout import NUM_POINTS, PART_SIZES, PART_SLICES
from edge_slr.landmarks.sequence import LandmarkSequence, check_fps, mark_nonfinite_missing

logger = logging.getLogger(__name__)

DEFAULT_FPS = 30.0  # GISLR clips come from phone cameras at about 30 fps
FPS_KEY = b"edge_slr.fps"  # parquet schema metadata key of the frame rate (edge-slr's files)
COLUMNS = ("frame", "row_id", "type", "landmark_index", "x", "y", "z")
KAGGLE_PART_ORDER = ("face", "left_hand", "pose", "right_hand")  # row order within a frame


def _integer_column(path: Path, table: object, name: str) -> np.ndarray:
    pa = require("pyarrow", "reading parquet files")
    column = table.column(name)  # type: ignore[attr-defined]
    if not pa.types.is_integer(column.type):
        raise FormatError(path, f"column {name!r} has type {column.type}; expected integers")
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise FormatError(path, f"column {name!r} is empty (null) in row {row}")
    return column.to_numpy().astype(np.int64)


def _float_column(path: Path, table: object, name: str) -> np.ndarray:
    pa = require("pyarrow", "reading parquet files")
    column = table.column(name)  # type: ignore[attr-defined]
    if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
        raise FormatError(path, f"column {name!r} has type {column.type}; expected floats")
    return column.to_numpy(zero_copy_only=False).astype(np.float64)  # nulls become NaN


def _row_label(table: Any, row: int) -> str:
    # row_id is only informative (frame, type and landmark_index carry the data): used for messages.
    if "row_id" not in table.column_names:
        return f"row {row}"
    return f"row {row} (row_id {table.column('row_id')[row].as_py()!r})"


def _part_offsets(path: Path, table: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the layout offset of its part (-1 for an unknown type) and the part's size."""
    pa = require("pyarrow", "reading parquet files")
    column = table.column("type").combine_chunks()
    encoded = column if pa.types.is_dictionary(column.type) else column.dictionary_encode()
    value_type = encoded.type.value_type
    if not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type)):
        raise FormatError(path, f"column 'type' has type {column.type}; expected strings")
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise FormatError(path, f"{_row_label(table, row)}: type is empty (null)")
    names = encoded.dictionary.to_pylist()
    offset_of = np.array([PART_SLICES[n].start if n in PART_SLICES else -1 for n in names])
    size_of = np.array([PART_SIZES.get(n, 0) for n in names])
    codes = encoded.indices.to_numpy().astype(np.int64)
    return offset_of[codes], size_of[codes]


def _stored_fps(path: Path, table: Any) -> float | None:
    """The frame rate an edge-slr parquet file stores in its schema metadata, else None."""
    raw = (table.schema.metadata or {}).get(FPS_KEY)
    if raw is None:
        return None
    try:
        return check_fps(float(raw.decode("ascii")))
    except (UnicodeDecodeError, ValueError) as exc:  # InputError is a ValueError
        raise FormatError(
            path, f"schema metadata {FPS_KEY.decode()} is {raw[:40]!r}; expected a frame rate "
            f"> 0 ({exc})"
        ) from None  # fmt: skip


def _frame_rate(path: Path, table: Any, fps: float | None) -> tuple[float, str]:
    """(frame rate, where it came from: argument, file or default)."""
    stored = _stored_fps(path, table)
    if fps is not None:
        if stored is not None and stored != fps:
            logger.info("%s: stored frame rate %g replaced by the given %g", path, stored, fps)
        return fps, "argument"
    if stored is not None:
        return stored, "file"
    logger.warning(
        "%s: a GISLR parquet file stores no frame rate; assuming %g fps (pass fps=..., or "
        "--fps on the command line, if it was recorded at another rate)",
        path,
        DEFAULT_FPS,
    )
    return DEFAULT_FPS, "default"


def _listed_rows(path: Path, table: Any, xyz: np.ndarray, strict: bool) -> np.ndarray:
    """Rows that are not GISLR's "missing" (all NaN); strict: FormatError at a partly non-finite
    row (otherwise such rows are marked missing with a warning by the caller)."""
    finite = np.isfinite(xyz)
    listed = ~np.isnan(xyz).all(axis=1)
    bad = ~finite.all(axis=1) & listed
    if strict and bad.any():
        row = int(np.flatnonzero(bad)[0])
        channel = int(np.flatnonzero(~finite[row])[0])
        raise FormatError(
            path, f"{_row_label(table, row)}: {'xyz'[channel]} is {xyz[row, channel]!r} while "
            f"x, y, z = {xyz[row].tolist()}; expected all three finite, or all NaN for a missing "
            f"point"
        )  # fmt: skip
    return listed


def read_parquet(
    path: str | os.PathLike[str], fps: float | None = None, *, strict: bool = False
) -> LandmarkSequence:
    """Read a GISLR landmark parquet file into the 543-point layout (frame rate: module doc).

    ``strict``: a row with some but not all of x, y, z NaN, or an infinite one, raises
    FormatError instead of being marked missing with a warning.
    """
    pq = require("pyarrow.parquet", "reading parquet files")
    path = Path(path)
    if fps is not None:
        fps = check_fps(fps)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such landmark file")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError on corrupt or short files
        raise FormatError(
            path, f"not a readable parquet file ({type(exc).__name__}: {exc})"
        ) from exc
    missing = [name for name in COLUMNS if name != "row_id" and name not in table.column_names]
    if missing:
        raise FormatError(
            path, f"missing columns {missing}; found {table.column_names}, expected {list(COLUMNS)}"
        )
    if table.num_rows == 0:
        raise FormatError(path, "the table has no rows; expected at least one frame")
    frames = _integer_column(path, table, "frame")
    local = _integer_column(path, table, "landmark_index")
    offsets, sizes = _part_offsets(path, table)
    if (offsets < 0).any():
        row = int(np.flatnonzero(offsets < 0)[0])
        raise FormatError(
            path, f"{_row_label(table, row)}: type {table.column('type')[row].as_py()!r}; "
            f"expected one of {list(KAGGLE_PART_ORDER)}"
        )  # fmt: skip
    bad = (local < 0) | (local >= sizes)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise FormatError(
            path, f"{_row_label(table, row)}: landmark_index {local[row]} is outside "
            f"0..{sizes[row] - 1} for type {table.column('type')[row].as_py()!r}"
        )  # fmt: skip
    xyz = np.stack([_float_column(path, table, name) for name in "xyz"], axis=1)
    listed = _listed_rows(path, table, xyz, strict)
    rate, source = _frame_rate(path, table, fps)
    first_frame = int(frames.min())
    t = frames - first_frame
    point = offsets + local
    flat = t * NUM_POINTS + point
    unique, counts = np.unique(flat, return_counts=True)
    if (counts > 1).any():
        dup = unique[counts > 1][0]
        row = int(np.flatnonzero(flat == dup)[1])
        raise FormatError(path, f"{_row_label(table, row)}: frame/point appears twice")
    data = np.zeros((int(t.max()) + 1, NUM_POINTS, 4), dtype=np.float64)
    data[t[listed], point[listed], :3] = xyz[listed]
    data[t[listed], point[listed], 3] = 1.0
    metadata: dict[str, Any] = {
        "source_format": "parquet",
        "first_frame": first_frame,
        "fps_source": source,
    }
    data, nonfinite = mark_nonfinite_missing(data, str(path))
    if nonfinite:
        metadata["nonfinite_marked_missing"] = nonfinite
    try:
        return LandmarkSequence(data, rate, metadata)
    except InputError as exc:
        raise FormatError(path, str(exc)) from exc


def write_parquet(path: str | os.PathLike[str], seq: LandmarkSequence) -> None:
    """Write ``seq`` as a GISLR parquet file (543 rows a frame, NaN rows for missing points)."""
    pa = require("pyarrow", "writing parquet files")
    pq = require("pyarrow.parquet", "writing parquet files")
    pc = require("pyarrow.compute", "writing parquet files")
    path = Path(path)
    order = np.concatenate(
        [np.arange(PART_SLICES[p].start, PART_SLICES[p].stop) for p in KAGGLE_PART_ORDER]
    )
    part_of_row = np.concatenate([[p] * PART_SIZES[p] for p in KAGGLE_PART_ORDER]).astype(object)
    local = np.concatenate([np.arange(PART_SIZES[p]) for p in KAGGLE_PART_ORDER])
    first = int(seq.metadata.get("first_frame", 0))
    frames = np.repeat(np.arange(seq.num_frames) + first, NUM_POINTS)
    xyz = seq.data[:, order, :3].astype(np.float64)
    xyz[seq.data[:, order, 3] == 0] = np.nan
    xyz = xyz.reshape(-1, 3)
    frame_column = pa.array(frames, pa.int32())
    type_column = pa.array(np.tile(part_of_row, seq.num_frames).tolist(), pa.string())
    index_column = pa.array(np.tile(local, seq.num_frames), pa.int32())
    row_ids = pc.binary_join_element_wise(
        pc.cast(frame_column, pa.string()), type_column, pc.cast(index_column, pa.string()), "-"
    )
    table = pa.table(
        {
            "frame": frame_column,
            "row_id": row_ids,
            "type": type_column,
            "landmark_index": index_column,
            "x": pa.array(xyz[:, 0], pa.float64()),
            "y": pa.array(xyz[:, 1], pa.float64()),
            "z": pa.array(xyz[:, 2], pa.float64()),
        }
    )
    table = table.replace_schema_metadata({FPS_KEY: repr(float(seq.fps)).encode("ascii")})
    partial = path.with_name(path.name + ".partial")
    pq.write_table(table, partial)
    partial.replace(path)
