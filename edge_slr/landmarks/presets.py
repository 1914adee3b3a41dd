"""Feature presets: from ``(T, 543, 4)`` landmarks to the model input ``(T, F)``.

A :class:`FeaturePreset` names the layout points to keep, their coordinate channels, the
normalisation and the missing-point policy. Training, every converter and every runtime call
``preset.features(...)`` - this one numpy function - so the model sees identical input everywhere.
The preset is stored with each model (``to_dict()`` / ``preset_from_dict()``).

Feature order: point-major, ``[p0.x, p0.y, p0.z, p1.x, ...]`` in the preset's point order, then
one 0/1 presence flag per part listed in ``presence``.

Normalisation ``"shoulders"`` (the default) makes the features independent of where the signer
stands in the image and how large they appear:

- centre = the mid-point of the two shoulders (pose 11 and 12) in x and y;
- scale = the shoulder width, the x-y distance between the shoulders;
- both are medians over the frames where both shoulders are present, one value per sequence, so
  a jittery frame or a few wrong detections do not move the whole signer;
- ``x' = (x - centre_x) / scale``, ``y' = (y - centre_y) / scale``, ``z' = z / scale``. ``z`` is not
  shifted: MediaPipe already gives each part's depth relative to its own origin (hips, wrist,
  face), so only its scale is shared with x and y;
- fallback when no frame has both shoulders (or their width is ~0): centre = the centre of the
  bounding box of all present points of the sequence, scale = its larger side, with a logged
  warning; an :class:`InputError` when no point is present in any frame.

Normalisation ``"none"`` passes MediaPipe's normalised image coordinates through.

Missing-point policy (a point is missing when its confidence is 0, e.g. an undetected hand):

- ``"hold"`` (default): the point keeps its last seen (normalised) position; before its first
  detection it is 0, i.e. at the mid-shoulder. MediaPipe loses a fast-moving, motion-blurred hand
  for a few frames at a time; with zeros each such gap makes the hand jump to the chest and back,
  a large false movement right where the signing is fastest, which the temporal convolutions
  would read as motion. Holding the position is the smallest change that removes those jumps, and
  it is causal (it only looks back), so a streaming runtime can apply it frame by frame.
- ``"zeros"``: missing points are 0 after normalisation (the common GISLR/Kaggle choice).

Add ``presence=("left_hand", "right_hand")`` to let the model tell a held or zeroed hand from a
detected one (preset ``kdmslrt92+presence``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edge_slr.errors import InputError
from edge_slr.landmarks.layout import (
    ARM_POINTS,
    LEFT_SHOULDER,
    NUM_POINTS,
    PART_SLICES,
    RIGHT_SHOULDER,
    lip_indices,
    point_name,
)
from edge_slr.landmarks.sequence import LandmarkSequence, as_landmark_array

logger = logging.getLogger(__name__)

COORDINATE_CHANNELS: tuple[str, ...] = ("x", "y", "z")
NORMALIZATIONS: tuple[str, ...] = ("shoulders", "none")
MISSING_POLICIES: tuple[str, ...] = ("hold", "zeros")
DEFAULT_PRESET = "kdmslrt92"
_MIN_SCALE = 1e-6


def _check_choice(field_name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"preset {field_name} is {value!r}; expected one of {list(choices)}")


def _as_tuple(field_name: str, value: Any) -> tuple:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise InputError(f"preset {field_name} is {value!r}; expected a list")
    return tuple(value)


@dataclass(frozen=True)
class FeaturePreset:
    """How landmarks become model features; validated on construction (see module docstring)."""

    name: str
    points: tuple[int, ...]
    channels: tuple[str, ...] = COORDINATE_CHANNELS
    normalization: str = "shoulders"
    missing: str = "hold"
    presence: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError(f"preset name is {self.name!r}; expected a non-empty string")
        points = _as_tuple("points", self.points)
        for point in points:
            if isinstance(point, bool) or not isinstance(point, (int, np.integer)):
                raise InputError(f"preset {self.name!r}: point {point!r} is not an integer index")
            if not 0 <= point < NUM_POINTS:
                raise InputError(
                    f"preset {self.name!r}: point {point} is outside the layout; expected "
                    f"0..{NUM_POINTS - 1}"
                )
        if not points or len(set(points)) != len(points):
            raise InputError(
                f"preset {self.name!r}: points must be a non-empty list without repeats; "
                f"got {len(points)} points, {len(points) - len(set(points))} repeated"
            )
        channels = _as_tuple("channels", self.channels)
        if not channels or len(set(channels)) != len(channels):
            raise InputError(f"preset {self.name!r}: channels {channels!r} must be unique, >= 1")
        for channel in channels:
            _check_choice("channel", channel, COORDINATE_CHANNELS)
        _check_choice("normalization", self.normalization, NORMALIZATIONS)
        _check_choice("missing", self.missing, MISSING_POLICIES)
        presence = _as_tuple("presence", self.presence)
        for part in presence:
            _check_choice("presence part", part, tuple(PART_SLICES))
        if len(set(presence)) != len(presence):
            raise InputError(f"preset {self.name!r}: presence {presence!r} repeats a part")
        object.__setattr__(self, "points", tuple(int(p) for p in points))
        object.__setattr__(self, "channels", channels)
        object.__setattr__(self, "presence", presence)

    @property
    def num_features(self) -> int:
        return len(self.points) * len(self.channels) + len(self.presence)

    def feature_names(self) -> list[str]:
        """One readable name per feature column, e.g. ``pose[13] LEFT_ELBOW.x``."""
        names = [f"{point_name(p)}.{c}" for p in self.points for c in self.channels]
        return names + [f"{part}.present" for part in self.presence]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; ``preset_from_dict(p.to_dict()) == p``."""
        return {key: list(v) if isinstance(v, tuple) else v for key, v in asdict(self).items()}

    def features(self, landmarks: LandmarkSequence | np.ndarray) -> np.ndarray:
        """``(T, num_features)`` float32 features of a sequence or a ``(T, 543, 4)`` array."""
        if isinstance(landmarks, LandmarkSequence):
            data = landmarks.data
        else:
            data = as_landmark_array(landmarks, what=f"input of feature preset {self.name!r}")
        points = np.asarray(self.points)
        coords = data[:, points, :3].astype(np.float64)
        present = data[:, points, 3] > 0
        if self.normalization == "shoulders":
            centre, scale = shoulder_reference(data)
            coords[..., :2] -= centre
            coords /= scale
        channel_index = [COORDINATE_CHANNELS.index(c) for c in self.channels]
        coords = coords[..., channel_index]
        coords = _fill_missing(coords, present, self.missing)
        columns = [coords.reshape(len(data), -1)]
        for part in self.presence:
            columns.append((data[:, PART_SLICES[part], 3] > 0).any(axis=1)[:, None])
        return np.ascontiguousarray(np.concatenate(columns, axis=1), dtype=np.float32)


def _fill_missing(coords: np.ndarray, present: np.ndarray, policy: str) -> np.ndarray:
    """Apply the missing-point policy to ``coords`` (T, P, C) given ``present`` (T, P)."""
    if policy == "zeros":
        return np.where(present[..., None], coords, 0.0)
    # "hold": index of the latest frame <= t where the point was present (-1 before the first).
    frame_index = np.arange(len(coords))[:, None]
    last_seen = np.maximum.accumulate(np.where(present, frame_index, -1), axis=0)
    held = coords[np.maximum(last_seen, 0), np.arange(coords.shape[1])[None, :]]
    return np.where((last_seen >= 0)[..., None], held, 0.0)


def shoulder_reference(data: np.ndarray) -> tuple[np.ndarray, float]:
    """Sequence-level ``(centre_xy, scale)`` used by the ``"shoulders"`` normalisation.

    ``data`` is a validated ``(T, 543, 4)`` array. See the module docstring for the estimate and
    its fallback.
    """
    confidence = data[..., 3]
    both = (confidence[:, LEFT_SHOULDER] > 0) & (confidence[:, RIGHT_SHOULDER] > 0)
    if both.any():
        left = data[both, LEFT_SHOULDER, :2].astype(np.float64)
        right = data[both, RIGHT_SHOULDER, :2].astype(np.float64)
        centre = np.median((left + right) / 2, axis=0)
        scale = float(np.median(np.linalg.norm(left - right, axis=1)))
        if scale > _MIN_SCALE:
            return centre, scale
        reason = f"the shoulders coincide (median width {scale:.3g})"
    else:
        reason = "no frame has both shoulders"
    points = data[..., :2][confidence > 0].astype(np.float64)
    if len(points) == 0:
        raise InputError(
            f"cannot normalise landmarks: no point is present (confidence > 0) in any of the "
            f"{len(data)} frames; expected at least one detected part"
        )
    low, high = points.min(axis=0), points.max(axis=0)
    centre, scale = (low + high) / 2, float((high - low).max())
    if scale <= _MIN_SCALE:
        scale = 1.0
    logger.warning(
        "shoulder normalisation fell back to the bounding box of the present points because "
        "%s: centre=(%.3f, %.3f), scale=%.3f",
        reason,
        centre[0],
        centre[1],
        scale,
    )
    return centre, scale


_REGISTRY: dict[str, FeaturePreset] = {}


def register_preset(preset: FeaturePreset, replace: bool = False) -> FeaturePreset:
    """Make ``preset`` available to ``get_preset``; an existing different one needs ``replace``."""
    existing = _REGISTRY.get(preset.name)
    if existing is not None and existing != preset and not replace:
        raise InputError(
            f"a different feature preset named {preset.name!r} is already registered; "
            f"pass replace=True or choose another name"
        )
    _REGISTRY[preset.name] = preset
    return preset


def available_presets() -> list[str]:
    return sorted(_REGISTRY)


def get_preset(name: str) -> FeaturePreset:
    """The registered preset ``name``; InputError listing the available ones otherwise."""
    if name not in _REGISTRY:
        raise InputError(f"unknown feature preset {name!r}; available: {available_presets()}")
    return _REGISTRY[name]


def preset_from_dict(spec: dict[str, Any]) -> FeaturePreset:
    """Build a preset from ``to_dict()`` output or a config section (lists instead of tuples)."""
    if not isinstance(spec, dict):
        raise InputError(f"preset spec is a {type(spec).__name__}; expected a dict")
    allowed = set(FeaturePreset.__dataclass_fields__)
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise InputError(f"preset spec has unknown keys {unknown}; allowed: {sorted(allowed)}")
    for key in ("name", "points"):
        if key not in spec:
            raise InputError(f"preset spec lacks {key!r}; got keys {sorted(spec)}")
    return FeaturePreset(**spec)


def resolve_preset(preset: str | dict[str, Any] | FeaturePreset | None = None) -> FeaturePreset:
    """A preset from a name, a dict spec, a preset, or None (the default ``kdmslrt92``)."""
    if preset is None:
        return get_preset(DEFAULT_PRESET)
    if isinstance(preset, FeaturePreset):
        return preset
    if isinstance(preset, str):
        return get_preset(preset)
    return preset_from_dict(preset)


def _hands() -> tuple[int, ...]:
    left, right = PART_SLICES["left_hand"], PART_SLICES["right_hand"]
    return tuple(range(left.start, left.stop)) + tuple(range(right.start, right.stop))


_KDMSLRT92 = ARM_POINTS + tuple(int(i) for i in lip_indices()) + _hands()
for _preset in (
    FeaturePreset(
        "kdmslrt92",
        _KDMSLRT92,
        description="KD-MSLRT input: arms (pose 13-22), 40 lip points, both hands; x y z = 276",
    ),
    FeaturePreset(
        "kdmslrt92-zeros",
        _KDMSLRT92,
        missing="zeros",
        description="kdmslrt92 with missing points set to 0 after normalisation",
    ),
    FeaturePreset(
        "kdmslrt92+presence",
        _KDMSLRT92,
        presence=("left_hand", "right_hand"),
        description="kdmslrt92 plus one presence flag per hand = 278",
    ),
    FeaturePreset("hands42", _hands(), description="both hands only; x y z = 126"),
):
    register_preset(_preset)
