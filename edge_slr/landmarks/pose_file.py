"""``.pose`` files (the pose-format library's binary format) <-> ``LandmarkSequence``.

Reading maps every MediaPipe layout that pose-format files hold into the 543-point layout by
component and point *names* (case-insensitive): POSE_LANDMARKS / LEFT_HAND_LANDMARKS /
RIGHT_HAND_LANDMARKS by landmark name, FACE_LANDMARKS by face-mesh index. Layouts:

- 543: Holistic, pose 33, face 468, hands 21 + 21; nothing dropped;
- 576: Holistic + POSE_WORLD_LANDMARKS 33; the world landmarks dropped;
- 586: Holistic with the refined face (478) + world; iris 468-477 and world dropped;
- 178: reduced Holistic, pose 8, face 128 (contours and lips), hands; the absent points missing;
- 553: MediaPipe Tasks, pose 33, face 478, hands 21 + 21; iris 468-477 dropped;
- 586 and more: Tasks with world landmarks (any ``*WORLD*`` component); iris and world dropped.

Layout points absent from the file get confidence 0 (the reduced face keeps its face-mesh
indices and so every lip point). Dropped, with a note in the metadata (``dropped_components``,
``dropped_iris_points``): world landmarks (metric 3-D, not image coordinates), the 10 refined iris
points 468-477 of a 478-point face (the 543 layout has none; no preset uses them) and any other
component. pose-format stores x and y in pixels; they are divided by the header's width and
height to get MediaPipe's normalised coordinates, and z is kept as stored. Only the first person
of a multi-person file is read.

Points stored with NaN/inf coordinates and a confidence above 0 (MediaPipe Tasks recordings
store a hand that was not found that way, with confidence 1) are marked missing with one
warning, or raise FormatError with ``strict=True``.

Writing produces a 543-point Holistic file (format XYZC, pixel x/y from ``metadata`` image size or
``DEFAULT_IMAGE_SIZE``) that pose-format reads back; ``metadata`` other than the image size is not
stored by the format.
"""

from __future__ import annotations

import logging
import math
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_slr._optional import require
from edge_slr.errors import FormatError, InputError
from edge_slr.landmarks.layout import (
    HAND_CONNECTIONS,
    HAND_LANDMARK_NAMES,
    LIP_CONNECTIONS,
    NUM_POINTS,
    PART_SIZES,
    PART_SLICES,
    POSE_CONNECTIONS,
    POSE_LANDMARK_NAMES,
)
from edge_slr.landmarks.sequence import LandmarkSequence, check_fps, mark_nonfinite_missing

if TYPE_CHECKING:
    from pose_format import Pose

logger = logging.getLogger(__name__)

COMPONENT_PARTS: dict[str, str] = {
    "POSE_LANDMARKS": "pose",
    "FACE_LANDMARKS": "face",
    "LEFT_HAND_LANDMARKS": "left_hand",
    "RIGHT_HAND_LANDMARKS": "right_hand",
}
DEFAULT_IMAGE_SIZE = 1000  # pixels, when a sequence does not say which image it came from
_IRIS_POINTS = range(468, 478)


def _local_index(path: Path, component: str, point: str) -> int | None:
    """Part-local index of a point name, None for a known point outside the layout (iris)."""
    part = COMPONENT_PARTS[component.upper()]
    name = point.strip().upper()
    if part == "pose" and name in POSE_LANDMARK_NAMES:
        return POSE_LANDMARK_NAMES.index(name)
    if part in ("left_hand", "right_hand") and name in HAND_LANDMARK_NAMES:
        return HAND_LANDMARK_NAMES.index(name)
    point = name
    if part == "face" and point.isdigit():
        index = int(point)
        if index < PART_SIZES["face"]:
            return index
        if index in _IRIS_POINTS:
            return None
    raise FormatError(
        path, f"component {component} has point {point!r}, which is not a MediaPipe Holistic "
        f"{part} landmark; this point set cannot be mapped to the 543-point layout"
    )  # fmt: skip


def _point_mapping(path: Path, header: Any) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """(file point indices, layout indices, dropped component names, dropped iris points)."""
    sources: list[int] = []
    targets: list[int] = []
    dropped: list[str] = []
    iris = 0
    offset = 0
    for component in header.components:
        if component.name.upper() not in COMPONENT_PARTS:
            dropped.append(component.name)
            offset += len(component.points)
            continue
        start = PART_SLICES[COMPONENT_PARTS[component.name.upper()]].start
        seen: set[int] = set()
        for i, point in enumerate(component.points):
            local = _local_index(path, component.name, point)
            if local is None:
                iris += 1
                continue
            if local in seen:
                raise FormatError(path, f"component {component.name} repeats point {point!r}")
            seen.add(local)
            sources.append(offset + i)
            targets.append(start + local)
        offset += len(component.points)
    if not sources:
        names = [c.name for c in header.components]
        raise FormatError(
            path, f"no MediaPipe Holistic component in this file (components: {names}); "
            f"expected some of {list(COMPONENT_PARTS)}: this point set cannot be mapped"
        )  # fmt: skip
    return np.asarray(sources), np.asarray(targets), dropped, iris


def _check_body_size(path: Path, header: Any, raw: bytes, offset: int) -> None:
    """pose-format reads a short body without complaint; check the byte count it implies."""
    points = sum(len(c.points) for c in header.components)
    floats_per_person_frame = points * (header.num_dims() + 1)  # coordinates + confidence
    version = round(header.version, 3)
    try:
        if version == 0.2:
            _, frames, people = struct.unpack_from("<fIH", raw, offset)
            body = len(raw) - offset - 10
            whole = body == frames * people * floats_per_person_frame * 4
        else:  # 0.1: ushort frame count (it wraps for long files), the rest is implied by size
            _, frames, people = struct.unpack_from("<HHH", raw, offset)
            body = len(raw) - offset - 6
            unit = people * floats_per_person_frame * 4
            whole = unit > 0 and body % unit == 0 and (body // unit) % 65536 == frames
    except struct.error:
        raise FormatError(path, "the file ends inside the body header (truncated)") from None
    if people < 1 or frames < 1:
        raise FormatError(path, f"body holds {frames} frames of {people} people; expected >= 1")
    if not whole:
        raise FormatError(
            path, f"body is {body} bytes, which does not match {frames} frames x {people} people "
            f"x {points} points x {header.num_dims()} dims + confidence (the file is truncated "
            f"or corrupt)"
        )  # fmt: skip


def read_pose_file(path: str | os.PathLike[str]) -> Any:
    """The ``pose_format.Pose`` in ``path``, with truncation and corruption as FormatError."""
    require("pose_format", "reading .pose files")
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader
    from pose_format.utils.reader import BufferReader

    path = Path(path)
    raw = path.read_bytes()
    reader = BufferReader(raw)
    try:
        header = PoseHeader.read(reader)
    except Exception as exc:  # pose-format raises struct/Unicode/Index errors on bad bytes
        raise FormatError(
            path, f"unreadable .pose header ({type(exc).__name__}: {exc}); the file is "
            f"truncated or not a .pose file"
        ) from exc  # fmt: skip
    if round(header.version, 3) not in (0.1, 0.2):
        raise FormatError(path, f"header version {header.version:g}; expected 0.1 or 0.2")
    _check_body_size(path, header, raw, reader.read_offset)
    try:
        body = NumPyPoseBody.read(header, reader)
    except Exception as exc:
        raise FormatError(path, f"unreadable .pose body ({type(exc).__name__}: {exc})") from exc
    return Pose(header, body)


def sequence_from_pose(
    pose: Pose,
    path: str | os.PathLike[str] = "<memory>",
    *,
    fps: float | None = None,
    strict: bool = False,
) -> LandmarkSequence:
    """Map a pose-format ``Pose`` into the 543-point layout (see module docstring).

    ``fps`` replaces the stored frame rate; ``strict`` raises FormatError at a NaN/inf
    coordinate instead of marking the point missing.
    """
    path = Path(path)
    header, body = pose.header, pose.body
    sources, targets, dropped, iris = _point_mapping(path, header)
    fmt = [c.format for c in header.components if c.name.upper() in COMPONENT_PARTS][0]
    dims = fmt.upper().replace("C", "")
    if "X" not in dims or "Y" not in dims:
        raise FormatError(path, f"point format {fmt!r} has no X and Y; expected e.g. 'XYZC'")
    width, height = header.dimensions.width, header.dimensions.height
    if width <= 0 or height <= 0:
        raise FormatError(
            path, f"header dimensions width={width} height={height}; expected positive image "
            f"size to turn pixel coordinates into normalised ones"
        )  # fmt: skip
    stored_fps = float(body.fps)
    if fps is None and (not math.isfinite(stored_fps) or stored_fps <= 0):
        raise FormatError(path, f"header fps is {stored_fps!r}; expected a number > 0")
    people = body.data.shape[1]
    if people > 1:
        logger.warning("%s holds %d people; reading only the first", path, people)
    values = np.asarray(np.ma.getdata(body.data))[:, 0][:, sources].astype(np.float64)
    masked = np.ma.getmaskarray(body.data)[:, 0][:, sources].any(axis=-1)
    confidence = np.asarray(body.confidence)[:, 0][:, sources].astype(np.float64)
    confidence[masked] = 0.0

    data = np.zeros((values.shape[0], NUM_POINTS, 4), dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf: handled below
        data[:, targets, 0] = values[..., dims.index("X")] / width
        data[:, targets, 1] = values[..., dims.index("Y")] / height
    if "Z" in dims:
        data[:, targets, 2] = values[..., dims.index("Z")]
    data[:, targets, 3] = confidence
    metadata: dict[str, Any] = {
        "source_format": "pose",
        "image_width": int(width),
        "image_height": int(height),
        "source_points": int(sum(len(c.points) for c in header.components)),
        "mapped_points": len(targets),
        "dropped_components": dropped,
        "fps_source": "file" if fps is None else "argument",
    }
    if iris:
        metadata["dropped_iris_points"] = iris
    if people > 1:
        metadata["people_in_file"] = int(people)
    if not strict:
        data, counts = mark_nonfinite_missing(data, str(path))
        if counts:
            metadata["nonfinite_marked_missing"] = counts
    try:
        seq = LandmarkSequence(data, stored_fps if fps is None else check_fps(fps), metadata)
    except InputError as exc:
        raise FormatError(path, str(exc)) from exc
    _warn_on_odd_depth(path, seq.data)
    return seq


def _warn_on_odd_depth(path: Path, data: np.ndarray) -> None:
    # MediaPipe's z is about as large as a normalised x (|z| < 1 for the face); some converters
    # store it shifted or in pixels, which the reader cannot undo but should not hide.
    face = data[:, PART_SLICES["face"]]
    z = face[..., 2][face[..., 3] > 0]
    if len(z) and float(np.median(np.abs(z))) > 10:
        logger.warning(
            "%s: face z has median magnitude %.1f; expected MediaPipe's normalised depth (< 1). "
            "z was probably stored in another unit by the converter that wrote this file",
            path,
            float(np.median(np.abs(z))),
        )


def read_pose(
    path: str | os.PathLike[str], *, fps: float | None = None, strict: bool = False
) -> LandmarkSequence:
    """Read a MediaPipe ``.pose`` file (any layout of the module docstring) into the layout.

    ``fps`` replaces the stored frame rate; ``strict``: see ``sequence_from_pose``.
    """
    return sequence_from_pose(read_pose_file(path), path, fps=fps, strict=strict)


def _components(point_format: str = "XYZC") -> list[Any]:
    from pose_format.pose_header import PoseHeaderComponent

    hand_colors = [(0, 255, 0)]
    return [
        PoseHeaderComponent(
            "POSE_LANDMARKS", list(POSE_LANDMARK_NAMES), list(POSE_CONNECTIONS),
            [(255, 0, 0)], point_format,
        ),
        PoseHeaderComponent(
            "FACE_LANDMARKS", [str(i) for i in range(PART_SIZES["face"])],
            list(LIP_CONNECTIONS), [(128, 0, 0)], point_format,
        ),
        PoseHeaderComponent(
            "LEFT_HAND_LANDMARKS", list(HAND_LANDMARK_NAMES), list(HAND_CONNECTIONS),
            hand_colors, point_format,
        ),
        PoseHeaderComponent(
            "RIGHT_HAND_LANDMARKS", list(HAND_LANDMARK_NAMES), list(HAND_CONNECTIONS),
            hand_colors, point_format,
        ),
    ]  # fmt: skip


def sequence_to_pose(
    seq: LandmarkSequence, width: int | None = None, height: int | None = None
) -> Pose:
    """A 543-point Holistic ``pose_format.Pose`` of ``seq`` (pixel x/y, raw z, XYZC)."""
    require("pose_format", "writing .pose files")
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import VERSION, PoseHeader, PoseHeaderDimensions

    width = int(width or seq.metadata.get("image_width") or DEFAULT_IMAGE_SIZE)
    height = int(height or seq.metadata.get("image_height") or DEFAULT_IMAGE_SIZE)
    if width <= 0 or height <= 0:
        raise InputError(f"image size {width}x{height}; expected positive pixels")
    header = PoseHeader(VERSION, PoseHeaderDimensions(width, height, width), _components())
    pixels = seq.data[..., :3].astype(np.float64) * np.array([width, height, 1.0])
    missing = seq.confidence == 0
    mask = np.broadcast_to(missing[..., None], pixels.shape)
    data = np.ma.masked_array(pixels.astype(np.float32), mask=mask)[:, None]
    confidence = seq.confidence.astype(np.float32)[:, None]
    return Pose(header, NumPyPoseBody(fps=seq.fps, data=data, confidence=confidence))


def write_pose(
    path: str | os.PathLike[str],
    seq: LandmarkSequence,
    width: int | None = None,
    height: int | None = None,
) -> None:
    """Write ``seq`` as a 543-point MediaPipe Holistic ``.pose`` file."""
    pose = sequence_to_pose(seq, width, height)
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        pose.write(handle)
    partial.replace(path)  # never leave a truncated file under the real name
