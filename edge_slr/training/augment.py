"""Landmark augmentation for training the student (numpy, on (T, 543, 4) arrays before the preset).

Each transform is a pure function with explicit parameters (easy to test for what it preserves);
:func:`augment` draws those parameters from a seeded ``numpy.random.Generator`` according to an
:class:`AugmentConfig`, where every transform has its own probability. The defaults are the paper's
recipe: horizontal flip 50%, rotation 30%, frame fusion 20%; the other transforms are off.

Conventions: coordinates are MediaPipe's normalised image coordinates (x right, y down, z depth);
channel 3 is the presence/confidence, and a point with confidence 0 is missing. Transforms move only
present points and never change which points are present, except that a horizontal flip moves a
point (and its presence) to its mirror slot. Labels are never seen here: augmentation only changes
the landmarks, and temporal transforms keep the whole sentence (they change speed, not content).

Note: the feature presets normalise by the shoulders, which removes most of a translation and a
uniform scale; those two transforms matter for presets without that normalisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from edge_slr.errors import InputError
from edge_slr.landmarks.layout import FLIP_PERMUTATION, NUM_POINTS

SPATIAL = ("flip", "rotation", "translation", "scale")
TEMPORAL = ("fusion", "time_rescale")
TRANSFORMS = TEMPORAL + SPATIAL


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each transform (``*_p`` = chance it is applied to a sample)."""

    flip_p: float = 0.5
    rotation_p: float = 0.3
    max_rotation_deg: float = 15.0
    fusion_p: float = 0.2
    fusion_fraction: float = 0.2  # share of frame pairs merged into one frame when fusion fires
    weighted_fusion_p: float = 0.5  # chance a fused pair uses a random weight instead of 0.5/0.5
    translation_p: float = 0.0
    max_translation: float = 0.05  # in normalised image units, per axis (x, y)
    scale_p: float = 0.0
    scale_range: tuple[float, float] = (0.85, 1.15)
    time_rescale_p: float = 0.0
    time_rescale_range: tuple[float, float] = (0.8, 1.2)
    min_frames: int = 1  # temporal transforms never shorten a sequence below this

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            is_fraction = f.name.endswith("_p") or f.name == "fusion_fraction"
            if is_fraction and not 0.0 <= float(value) <= 1.0:
                raise InputError(f"augment {f.name} must be in [0, 1], got {value}")
        for name in ("scale_range", "time_rescale_range"):
            low, high = (float(v) for v in getattr(self, name))
            if not 0.0 < low <= high:
                raise InputError(f"augment {name} must be 0 < low <= high, got ({low}, {high})")
            object.__setattr__(self, name, (low, high))
        if self.max_rotation_deg < 0 or self.max_translation < 0:
            raise InputError(
                "augment max_rotation_deg and max_translation must be >= 0, got "
                f"{self.max_rotation_deg}, {self.max_translation}"
            )
        if self.min_frames < 1:
            raise InputError(f"augment min_frames must be >= 1, got {self.min_frames}")

    @classmethod
    def none(cls, **overrides: Any) -> AugmentConfig:
        """Every transform off."""
        return cls(**{**{f"{t}_p": 0.0 for t in TRANSFORMS}, **overrides})

    @classmethod
    def only(cls, transform: str, p: float = 0.5, **overrides: Any) -> AugmentConfig:
        """A single transform with probability ``p`` (for ablations)."""
        if transform not in TRANSFORMS:
            raise InputError(f"unknown transform {transform!r}; known: {TRANSFORMS}")
        return cls.none(**{f"{transform}_p": p, **overrides})

    def with_min_frames(self, min_frames: int) -> AugmentConfig:
        return replace(self, min_frames=max(1, int(min_frames)))

    @property
    def enabled(self) -> bool:
        return any(getattr(self, f"{t}_p") > 0 for t in TRANSFORMS)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


# -- helpers ------------------------------------------------------------------------------------


def _checked(landmarks: Any, num_points: int | None = NUM_POINTS) -> np.ndarray:
    """The (T, N, 4) float32 array of ``landmarks``, without a copy when it already is one.

    N must be 543 unless ``num_points`` is None (a subset of the layout, see :func:`augment`).
    No transform writes into its input; each returns a new array.
    """
    data = np.asarray(getattr(landmarks, "data", landmarks))
    if data.ndim != 3 or data.shape[2] != 4 or num_points not in (None, data.shape[1]):
        raise InputError(
            f"landmarks must be (frames, {num_points or 'points'}, 4), got {data.shape}"
        )
    if data.shape[0] < 1:
        raise InputError("landmarks have no frames")
    return data.astype(np.float32, copy=False)


def _present(data: np.ndarray) -> np.ndarray:
    return data[..., 3] > 0


def _centre_xy(data: np.ndarray) -> np.ndarray:
    """Mean (x, y) of all present points in the sequence; (0.5, 0.5) when nothing is present."""
    present = _present(data)
    if not present.any():
        return np.array([0.5, 0.5], dtype=np.float32)
    return data[..., :2][present].mean(axis=0, dtype=np.float64).astype(np.float32)


def _apply_present(data: np.ndarray, moved_xyz: np.ndarray) -> np.ndarray:
    """Write new coordinates for present points only; missing points stay exactly as they were."""
    present = _present(data)[..., None]
    out = data.copy()
    out[..., :3] = np.where(present, moved_xyz, data[..., :3])
    return out


# -- spatial transforms -------------------------------------------------------------------------


def horizontal_flip(landmarks: Any, permutation: np.ndarray | None = None) -> np.ndarray:
    """Mirror left/right: x -> 1 - x, and swap hands, body sides and face/lip sides.

    A flipped left hand is a right hand, so points move to their mirror slots (with their
    presence): applying the flip twice gives the input back. ``permutation`` is the layout's
    FLIP_PERMUTATION, or :func:`subset_permutation` for an array holding a subset of the points.
    """
    perm = FLIP_PERMUTATION if permutation is None else np.asarray(permutation)
    data = _checked(landmarks, len(perm))
    mirrored = data[..., :3].copy()
    mirrored[..., 0] = 1.0 - mirrored[..., 0]
    flipped = _apply_present(data, mirrored)
    return flipped[:, perm]


def subset_permutation(points: Any) -> np.ndarray:
    """The flip permutation of an array holding only layout ``points`` (in that order).

    ``points`` must be closed under mirroring (see :func:`mirror_closed`).
    """
    points = np.asarray(points, dtype=np.int64)
    position = {int(p): i for i, p in enumerate(points)}
    try:
        return np.array([position[int(FLIP_PERMUTATION[p])] for p in points], dtype=np.int64)
    except KeyError as err:
        raise InputError(f"point set is not closed under mirroring: lacks {err}") from None


def mirror_closed(points: Any) -> np.ndarray:
    """Sorted layout indices of ``points`` together with their mirror partners."""
    points = np.asarray(points, dtype=np.int64)
    return np.unique(np.concatenate([points, FLIP_PERMUTATION[points]]))


def rotate(landmarks: Any, degrees: float, centre: np.ndarray | None = None) -> np.ndarray:
    """Rotate present points in the image plane by ``degrees`` about ``centre`` (x, y)."""
    data = _checked(landmarks, None)
    cx, cy = _centre_xy(data) if centre is None else np.asarray(centre, dtype=np.float32)
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    x, y = data[..., 0] - cx, data[..., 1] - cy
    moved = data[..., :3].copy()
    moved[..., 0] = cx + cos * x - sin * y
    moved[..., 1] = cy + sin * x + cos * y
    return _apply_present(data, moved)


def translate(landmarks: Any, offset: tuple[float, float]) -> np.ndarray:
    """Shift present points by ``offset`` = (dx, dy) in normalised image units."""
    data = _checked(landmarks, None)
    moved = data[..., :3].copy()
    moved[..., 0] += np.float32(offset[0])
    moved[..., 1] += np.float32(offset[1])
    return _apply_present(data, moved)


def scale(landmarks: Any, factor: float, centre: np.ndarray | None = None) -> np.ndarray:
    """Scale present points (x, y about ``centre``, z about 0) by ``factor``: distances scale."""
    if factor <= 0:
        raise InputError(f"scale factor must be > 0, got {factor}")
    data = _checked(landmarks, None)
    cx, cy = _centre_xy(data) if centre is None else np.asarray(centre, dtype=np.float32)
    moved = data[..., :3].copy()
    moved[..., 0] = cx + factor * (data[..., 0] - cx)
    moved[..., 1] = cy + factor * (data[..., 1] - cy)
    moved[..., 2] = factor * data[..., 2]
    return _apply_present(data, moved)


# -- temporal transforms ------------------------------------------------------------------------


def fuse_frames(landmarks: Any, starts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Merge each pair (s, s+1) for s in ``starts`` into one frame: w * f[s] + (1 - w) * f[s+1].

    Pairs must not overlap. The result has ``T - len(starts)`` frames in the original order
    (length semantics: one frame fewer per fused pair). A point present in only one frame of a
    pair keeps that frame's value; a point missing in both stays missing.
    """
    data = _checked(landmarks, None)
    starts = np.asarray(starts, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float32)
    if starts.size == 0:
        return data.copy()
    if starts.shape != weights.shape:
        raise InputError(f"fusion starts {starts.shape} and weights {weights.shape} differ")
    order = np.sort(starts)
    if order[0] < 0 or order[-1] + 1 >= data.shape[0] or np.any(np.diff(order) < 2):
        raise InputError(
            f"fusion pairs must be non-overlapping and inside 0..{data.shape[0] - 1}, "
            f"got starts {order.tolist()}"
        )
    if np.any((weights < 0) | (weights > 1)):
        raise InputError(f"fusion weights must be in [0, 1], got {weights.tolist()}")
    a, b = data[starts], data[starts + 1]
    wa = weights[:, None] * _present(a)
    wb = (1.0 - weights[:, None]) * _present(b)
    total = wa + wb
    safe = np.where(total > 0, total, 1.0)[..., None]
    va = np.where(_present(a)[..., None], a, 0.0)
    vb = np.where(_present(b)[..., None], b, 0.0)
    fused = (wa[..., None] * va + wb[..., None] * vb) / safe
    fused = np.where((total > 0)[..., None], fused, a)  # missing in both: keep frame s as is
    out = data.copy()
    out[starts] = fused
    keep = np.ones(data.shape[0], dtype=bool)
    keep[starts + 1] = False
    return out[keep]


def rescale_time(landmarks: Any, factor: float) -> np.ndarray:
    """Resample to ``round(T * factor)`` frames (>= 1) by nearest frame: speed changes, content not."""
    if factor <= 0:
        raise InputError(f"time rescale factor must be > 0, got {factor}")
    data = _checked(landmarks, None)
    length = max(1, int(round(data.shape[0] * factor)))
    index = np.rint(np.linspace(0, data.shape[0] - 1, length)).astype(np.int64)
    return data[index]


# -- random recipe ------------------------------------------------------------------------------


def _random_fusion(data: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    num_frames = data.shape[0]
    candidates = np.arange(int(rng.integers(0, 2)), num_frames - 1, 2)  # non-overlapping pairs
    budget = min(
        int(round(config.fusion_fraction * candidates.size)), num_frames - config.min_frames
    )
    if budget <= 0:
        return data
    starts = np.sort(rng.choice(candidates, size=budget, replace=False))
    weighted = rng.random(budget) < config.weighted_fusion_p
    weights = np.where(weighted, rng.random(budget), 0.5).astype(np.float32)
    return fuse_frames(data, starts, weights)


def augment(
    landmarks: Any,
    config: AugmentConfig,
    rng: np.random.Generator,
    flip_permutation: np.ndarray | None = None,
) -> np.ndarray:
    """Apply the recipe in ``config`` to one (T, 543, 4) sequence; returns a new float32 array.

    With ``flip_permutation`` (from :func:`subset_permutation`) the array may hold a
    mirror-closed subset of the layout (T, N, 4), which is much cheaper to augment; rotation and
    scaling then turn about the centre of that subset.
    """
    perm = FLIP_PERMUTATION if flip_permutation is None else np.asarray(flip_permutation)
    data = original = _checked(landmarks, len(perm))
    if config.time_rescale_p and rng.random() < config.time_rescale_p:
        low, high = config.time_rescale_range
        factor = float(rng.uniform(low, high))
        if round(data.shape[0] * factor) >= config.min_frames:
            data = rescale_time(data, factor)
    if config.fusion_p and rng.random() < config.fusion_p:
        data = _random_fusion(data, config, rng)
    if config.flip_p and rng.random() < config.flip_p:
        data = horizontal_flip(data, perm)
    if config.rotation_p and rng.random() < config.rotation_p:
        limit = config.max_rotation_deg
        data = rotate(data, float(rng.uniform(-limit, limit)))
    if config.scale_p and rng.random() < config.scale_p:
        data = scale(data, float(rng.uniform(*config.scale_range)))
    if config.translation_p and rng.random() < config.translation_p:
        limit = config.max_translation
        data = translate(data, tuple(rng.uniform(-limit, limit, size=2)))
    return data.copy() if data is original else data
