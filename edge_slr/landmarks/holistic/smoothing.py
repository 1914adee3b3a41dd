"""Landmark smoothing of Holistic's video mode: one-euro filters and a visibility low-pass.

The graph of mediapipe 0.10.21 smooths only the pose (``PoseLandmarkFiltering``): visibilities
through a low-pass filter (alpha 0.1) and coordinates through a one-euro filter whose velocity is
scaled by the size of the body (the auxiliary-point ROI), in pixels. The two auxiliary points that
place the next frame's ROI get a stiffer filter. Hands and face are not smoothed in that graph,
so the pipeline does not smooth them either. Every filter is reset when its input is missing for
a frame (the pose was lost), as MediaPipe's calculators do.

The filters here are vectorised: one object filters every coordinate of a landmark list, all
sharing the same timestamps (so one sampling frequency), which is what MediaPipe's per-value
filters compute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class LowPass:
    """Exponential smoothing ``s = a * x + (1 - a) * s_prev``; the first value passes as is."""

    def __init__(self, alpha: float | None = None) -> None:
        self.alpha = alpha
        self.raw: np.ndarray | None = None
        self.stored: np.ndarray | None = None

    def reset(self) -> None:
        self.raw = self.stored = None

    def apply(self, value: np.ndarray, alpha: float | np.ndarray | None = None) -> np.ndarray:
        a = self.alpha if alpha is None else alpha
        value = np.asarray(value, dtype=np.float64)
        result = value.copy() if self.stored is None else a * value + (1.0 - a) * self.stored
        self.raw, self.stored = value.copy(), result
        return result


@dataclass(frozen=True)
class OneEuroOptions:
    min_cutoff: float
    beta: float
    derivate_cutoff: float = 1.0
    frequency: float = 30.0  # assumed until two timestamps give the real one


# PoseLandmarkFiltering of mediapipe 0.10.21 (from the graph it builds, not the older .pbtxt).
POSE_FILTER = OneEuroOptions(min_cutoff=0.05, beta=80.0)
POSE_AUX_FILTER = OneEuroOptions(min_cutoff=0.01, beta=10.0)
VISIBILITY_ALPHA = 0.1


class OneEuroFilter:
    """MediaPipe's OneEuroFilter over an array of values sharing one clock (microseconds)."""

    def __init__(self, options: OneEuroOptions) -> None:
        self.options = options
        self.reset()

    def reset(self) -> None:
        self._x, self._dx = LowPass(), LowPass()
        self._frequency = self.options.frequency
        self._last_us: int | None = None

    def _alpha(self, cutoff: float | np.ndarray) -> float | np.ndarray:
        te = 1.0 / self._frequency
        tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
        return 1.0 / (1.0 + tau / te)

    def apply(self, value: np.ndarray, timestamp_us: int, value_scale: float) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        # MediaPipe marks "no previous timestamp" with 0, so a first frame at time 0 would pass
        # unfiltered and leave the filter empty; None keeps time 0 a normal first sample (the
        # Solutions API starts its clock at 33 ms, so the graph never meets that case).
        if self._last_us is not None:
            if self._last_us >= timestamp_us:
                return value.copy()  # MediaPipe returns the input for a non-increasing time
            self._frequency = 1e6 / (timestamp_us - self._last_us)
        self._last_us = timestamp_us
        raw = self._x.raw
        dvalue = np.zeros_like(value) if raw is None else (value - raw) * value_scale
        dvalue = dvalue * self._frequency
        edvalue = self._dx.apply(dvalue, self._alpha(self.options.derivate_cutoff))
        cutoff = self.options.min_cutoff + self.options.beta * np.abs(edvalue)
        return self._x.apply(value, self._alpha(cutoff))


class PoseSmoother:
    """Visibility low-pass and one-euro coordinates for one landmark list (normalised x, y, z)."""

    def __init__(self, options: OneEuroOptions) -> None:
        self._coords = OneEuroFilter(options)
        self._visibility = LowPass(VISIBILITY_ALPHA)

    def reset(self) -> None:
        self._coords.reset()
        self._visibility.reset()

    def apply(
        self,
        points: np.ndarray,
        visibility: np.ndarray,
        timestamp_us: int,
        size: tuple[int, int],
        object_scale: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Smoothed ``(N, 3)`` points and ``(N,)`` visibilities; ``object_scale`` in pixels."""
        width, height = size
        smoothed_visibility = self._visibility.apply(visibility)
        if object_scale < 1e-6:  # MediaPipe's min_allowed_object_scale: pass through
            return np.array(points, dtype=np.float64), smoothed_visibility
        to_pixels = np.array([width, height, width], dtype=np.float64)
        pixels = np.asarray(points, dtype=np.float64) * to_pixels
        smoothed = self._coords.apply(pixels, timestamp_us, 1.0 / object_scale)
        return smoothed / to_pixels, smoothed_visibility
