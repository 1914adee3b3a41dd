"""A landmark recording in the canonical layout: ``LandmarkSequence``.

``data`` is ``(T, 543, 4)`` float32 holding ``x, y, z, confidence`` per point (layout in
:mod:`edge_slr.landmarks.layout`). Coordinates follow MediaPipe's normalised convention: ``x`` and
``y`` are fractions of the image width and height, ``z`` is MediaPipe's depth in roughly the scale
of ``x``. ``confidence`` is in [0, 1]: MediaPipe's visibility for pose points, 1 for detected face
and hand points, and exactly 0 for a point that is missing (its part was not detected in that
frame). The coordinates of a missing point carry no meaning and are stored as 0, never NaN.

Validation policy (``as_landmark_array``, used by the constructor and by the feature presets):
any real numeric dtype is accepted and converted to float32 (a copy: the sequence never aliases
the caller's array, and its own array is read-only); bool, complex, object and string arrays are
refused. Non-finite coordinates are an error wherever confidence > 0 and are replaced by 0 where
confidence is 0.

Files written by other tools are more lenient than this contract: MediaPipe Tasks recordings in
pose-format, for one, store a hand that was not found as NaN coordinates with confidence 1. The
readers (:mod:`edge_slr.landmarks.io`) pass such data through ``mark_nonfinite_missing`` first,
which marks those points missing and logs one warning; arrays handed in through the API get the
strict check above.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_slr.errors import InputError
from edge_slr.landmarks.layout import FLIP_PERMUTATION, NUM_POINTS, PART_SLICES, point_name

logger = logging.getLogger(__name__)

CHANNELS: tuple[str, ...] = ("x", "y", "z", "confidence")


def as_landmark_array(data: Any, what: str = "landmark data") -> np.ndarray:
    """Validate ``data`` as ``(T, 543, 4)`` landmarks and return a float32 copy.

    Raises :class:`InputError` naming the received shape/dtype/value and what was expected; a
    non-finite coordinate or a bad confidence is reported with its frame and point.
    """
    array = np.asarray(data)
    if array.dtype.kind not in "iuf":
        raise InputError(
            f"{what} has dtype {array.dtype}; expected a real number type (float32 preferred)"
        )
    if array.ndim != 3 or array.shape[1:] != (NUM_POINTS, len(CHANNELS)):
        raise InputError(
            f"{what} has shape {array.shape}; expected (T, {NUM_POINTS}, 4) = frames x "
            f"MediaPipe Holistic points x (x, y, z, confidence)"
        )
    if array.shape[0] < 1:
        raise InputError(f"{what} has 0 frames; expected at least 1")
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, reported below
        out = array.astype(np.float32, copy=True)
    confidence = out[..., 3]
    bad = ~np.isfinite(confidence) | (confidence < 0) | (confidence > 1)
    if bad.any():
        frame, point = np.argwhere(bad)[0]
        raise InputError(
            f"{what} has confidence {float(array[frame, point, 3])!r} at frame {frame}, point {point} "
            f"({point_name(int(point))}); expected a value in [0, 1] (0 = missing)"
        )
    missing = confidence == 0
    bad = ~np.isfinite(out[..., :3]) & ~missing[..., None]
    if bad.any():
        frame, point, channel = np.argwhere(bad)[0]
        raise InputError(
            f"{what} has {CHANNELS[channel]} = {float(array[frame, point, channel])!r} at frame {frame}, "
            f"point {point} ({point_name(int(point))}) whose confidence is "
            f"{float(confidence[frame, point]):g}; expected finite coordinates wherever "
            f"confidence > 0 (mark a missing point with confidence 0)"
        )
    out[..., :3][missing] = 0.0
    return out


def mark_nonfinite_missing(data: Any, source: str) -> tuple[Any, dict[str, int]]:
    """Mark points with a NaN/inf coordinate or confidence missing; for file readers.

    Returns ``(data, counts)``: ``(T, 543, 4)`` ``data`` (as a float32 copy when a point was
    marked) in which every point whose confidence is not 0 but has a non-finite x, y, z or
    confidence becomes missing (all four channels 0), and the number of such points per part
    (empty when there were none). Logs one warning naming ``source`` (the file), the count, the
    parts and their frames. Data of another dtype or shape is returned unchanged for
    ``LandmarkSequence`` to report.
    """
    array = np.asarray(data)
    if array.dtype.kind not in "iuf" or array.ndim != 3 or array.shape[1:] != (NUM_POINTS, 4):
        return data, {}
    if array.dtype == np.float32 and np.isfinite(array.sum(dtype=np.float64)):
        return data, {}  # the common case, in one pass: a float64 sum of float32 cannot overflow
    with np.errstate(over="ignore"):  # beyond float32's range becomes inf: marked missing too
        out = array.astype(np.float32, copy=True)
    bad = ~np.isfinite(out).all(axis=-1) & (out[..., 3] != 0)
    if not bad.any():
        return out, {}
    out[bad] = 0.0
    counts: dict[str, int] = {}
    details = []
    for name, part in PART_SLICES.items():
        points = int(bad[:, part].sum())
        if points:
            counts[name] = points
            frames = int(bad[:, part].any(axis=1).sum())
            details.append(f"{name} {points:,} in {frames:,} frame{'s' * (frames != 1)}")
    logger.warning(
        "%s: %s points with NaN/inf coordinates marked missing (confidence 0): %s; pass "
        "strict=True to load_landmarks for an error instead",
        source,
        f"{int(bad.sum()):,}",
        ", ".join(details),
    )
    return out, counts


def check_fps(fps: Any) -> float:
    """``fps`` as a float; InputError unless it is a finite number > 0."""
    return _check_fps(fps)


def _check_fps(fps: Any) -> float:
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)):
        raise InputError(f"fps is {fps!r} ({type(fps).__name__}); expected a positive number")
    if not math.isfinite(fps) or fps <= 0:
        raise InputError(f"fps is {fps!r}; expected a finite number > 0")
    return float(fps)


def _check_metadata(metadata: Any) -> dict[str, Any]:
    if not isinstance(metadata, dict):
        raise InputError(f"metadata is a {type(metadata).__name__}; expected a dict")
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise InputError(f"metadata key {key!r} is a {type(key).__name__}; expected str")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"metadata[{key!r}] = {value!r} cannot be stored as JSON ({exc}); expected "
                f"str, int, float, bool, None, or lists/dicts of those"
            ) from exc
    # A JSON round trip gives an independent copy in the exact form every file format stores.
    return json.loads(json.dumps(metadata))


def _check_part(name: str) -> slice:
    if name not in PART_SLICES:
        raise InputError(f"unknown part {name!r}; expected one of {sorted(PART_SLICES)}")
    return PART_SLICES[name]


@dataclass(frozen=True, eq=False)
class LandmarkSequence:
    """A validated ``(T, 543, 4)`` landmark recording with its frame rate and free metadata.

    ``data`` is converted to a read-only float32 array on construction (see module docstring);
    ``metadata`` must be JSON-serialisable (it is stored in ``.npz`` files and checkpoints).
    Use ``dataclasses.replace(seq, data=...)`` to derive a modified sequence.
    """

    data: np.ndarray
    fps: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        data = as_landmark_array(self.data)
        data.setflags(write=False)
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "fps", _check_fps(self.fps))
        object.__setattr__(self, "metadata", _check_metadata(self.metadata))

    def validate(self) -> None:
        """Re-check every invariant; raises :class:`InputError` when one does not hold."""
        as_landmark_array(self.data)
        _check_fps(self.fps)
        _check_metadata(self.metadata)

    @property
    def num_frames(self) -> int:
        return int(self.data.shape[0])

    @property
    def duration_s(self) -> float:
        """Length in seconds: ``num_frames / fps``."""
        return self.num_frames / self.fps

    @property
    def coordinates(self) -> np.ndarray:
        """``(T, 543, 3)`` read-only view of x, y, z."""
        return self.data[..., :3]

    @property
    def confidence(self) -> np.ndarray:
        """``(T, 543)`` read-only view of the confidence channel (0 = missing)."""
        return self.data[..., 3]

    def part(self, name: str) -> np.ndarray:
        """``(T, n, 4)`` read-only view of one part: pose, face, left_hand or right_hand."""
        return self.data[:, _check_part(name)]

    def present(self, name: str) -> np.ndarray:
        """``(T,)`` bool: whether the part was detected (any of its points has confidence > 0)."""
        return (self.data[:, _check_part(name), 3] > 0).any(axis=1)

    def frames(self, start: int, stop: int) -> LandmarkSequence:
        """The frames ``start:stop`` (Python slice semantics) as a new sequence."""
        data = self.data[start:stop]
        if data.shape[0] == 0:
            raise InputError(
                f"frames({start}, {stop}) selects no frame of a {self.num_frames}-frame sequence"
            )
        return LandmarkSequence(data, self.fps, self.metadata)

    def mirrored(self) -> LandmarkSequence:
        """The recording as seen in a horizontally flipped video.

        Points are permuted with ``FLIP_PERMUTATION`` (left <-> right) and ``x`` becomes ``1 - x``
        for present points; missing points stay 0. Mirroring twice gives the original back (up to
        float32 rounding of ``1 - x``).
        """
        data = self.data[:, FLIP_PERMUTATION].copy()
        present = data[..., 3] > 0
        data[..., 0] = np.where(present, 1.0 - data[..., 0], 0.0)
        return LandmarkSequence(data, self.fps, self.metadata)

    def __len__(self) -> int:
        return self.num_frames

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LandmarkSequence):
            return NotImplemented
        return (
            self.fps == other.fps
            and self.metadata == other.metadata
            and np.array_equal(self.data, other.data)
        )

    __hash__ = None  # type: ignore[assignment]  # equal sequences may hold different arrays

    def __repr__(self) -> str:
        parts = ", ".join(f"{name} {self.present(name).mean():.0%}" for name in PART_SLICES)
        return (
            f"LandmarkSequence(frames={self.num_frames}, fps={self.fps:g}, present: {parts}, "
            f"metadata keys={sorted(self.metadata)})"
        )
