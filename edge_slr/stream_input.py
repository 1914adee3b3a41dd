"""What a stream feeds its windows: a running shoulder normalisation and the model's frame rate.

- :class:`RunningShoulders` and :func:`window_features`: every window of a stream is normalised
  by the shoulder medians of the stream so far (the last ``history`` frames), as the offline
  recognition of a whole recording is by the recording's; a window's own medians move with the
  signing inside it and fall back to a bounding box when the shoulders are out of view.
- :class:`FrameRateAdapter` and :func:`resample_indices`: frames are put on the model's clock
  (its training frame rate), live and offline by the same rule.

Used by :mod:`edge_slr.streaming` and :class:`edge_slr.Recognizer`; numpy only.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace
from typing import Any

import numpy as np

from edge_slr.errors import InputError
from edge_slr.landmarks.layout import LEFT_SHOULDER, RIGHT_SHOULDER

Reference = tuple[np.ndarray, float]  # shoulder centre (x, y) and shoulder width
STREAM_NORMALIZATIONS = ("running", "window")
DEFAULT_HISTORY = 1500  # frames of shoulder measurements a stream keeps (1 min at 25 fps)
_MIN_WIDTH = 1e-6


class RunningShoulders:
    """The shoulder reference of a stream: medians over its last ``history`` frames that show
    both shoulders (every such frame so far in a shorter stream). Memory: three floats a frame.

    The medians are those of the ``"shoulders"`` normalisation of
    :mod:`edge_slr.landmarks.presets` (centre = median mid-shoulder point, scale = median
    shoulder width), taken over the stream instead of one sequence.
    """

    def __init__(self, history: int = DEFAULT_HISTORY) -> None:
        if isinstance(history, bool) or not isinstance(history, int) or history < 1:
            raise InputError(f"history must be a positive number of frames, got {history!r}")
        self._values: deque[tuple[float, float, float]] = deque(maxlen=history)
        self._reference: Reference | None = None

    def __len__(self) -> int:
        return len(self._values)

    def add(self, points: np.ndarray) -> None:
        """Take one frame ``(543, 4)`` into account (frames without both shoulders are skipped)."""
        left, right = points[LEFT_SHOULDER], points[RIGHT_SHOULDER]
        if left[3] > 0 and right[3] > 0:
            lx, ly, rx, ry = (float(v) for v in (left[0], left[1], right[0], right[1]))
            self._values.append(((lx + rx) / 2, (ly + ry) / 2, math.hypot(lx - rx, ly - ry)))
            self._reference = None

    def clear(self) -> None:
        self._values.clear()
        self._reference = None

    def reference(self) -> Reference | None:
        """(centre, width) so far; None before any frame with both shoulders apart."""
        if self._reference is None and self._values:
            medians = np.median(np.asarray(self._values), axis=0)
            if medians[2] > _MIN_WIDTH:
                self._reference = (medians[:2], float(medians[2]))
        return self._reference


def window_features(preset: Any, data: np.ndarray, reference: Reference | None) -> np.ndarray:
    """``preset.features(data)`` with the shoulder normalisation taken from ``reference``.

    Without a reference (or for a preset that does not normalise by the shoulders) the preset
    normalises by ``data`` itself. With ``reference = shoulder_reference(data)`` the result is
    exactly ``preset.features(data)``.
    """
    if reference is None or preset.normalization != "shoulders":
        return preset.features(data)
    centre, scale = reference
    coords = data[..., :3].astype(np.float64)
    coords[..., :2] -= centre
    coords /= scale
    normalised = np.concatenate([coords.astype(np.float32), data[..., 3:]], axis=-1)
    return replace(preset, normalization="none").features(normalised)


def check_timestamp(timestamp_ms: Any, last_ms: float | None) -> None:
    """InputError for a timestamp that is not a finite number >= 0 after ``last_ms`` (if any)."""
    number = isinstance(timestamp_ms, (int, float, np.integer, np.floating))
    if (
        isinstance(timestamp_ms, bool)
        or not number
        or not math.isfinite(timestamp_ms)
        or (timestamp_ms < 0)
    ):
        raise InputError(f"timestamp_ms must be a finite number >= 0, got {timestamp_ms!r}")
    if last_ms is not None and timestamp_ms <= last_ms:
        raise InputError(
            f"timestamps must strictly increase: got {timestamp_ms} ms after "
            f"{last_ms:g} ms (call reset() before a new video)"
        )


class FrameRateAdapter:
    """Puts frames on the model's clock: ticks ``1000 / fps`` ms apart from the first frame.

    Each frame falls on its nearest tick (the earlier one at a tie). The first frame on a tick is kept; later frames on the
    same tick are dropped (a camera faster than the model); ticks no frame fell on repeat the
    last kept frame (a slower camera, a dropped frame), at most ``max_fill`` of them in a row,
    after which the clock restarts at the new frame. :func:`resample_indices` applies the same
    rule to a whole recording, so offline and streaming recognition see the same frames.
    """

    def __init__(self, fps: float, max_fill: int) -> None:
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
            raise InputError(f"fps must be a positive number, got {fps!r}")
        self.period_ms = 1000.0 / float(fps)
        self.max_fill = int(max_fill)
        self._origin: float | None = None
        self._tick = -1  # last tick a frame was emitted for
        self.last_ms: float | None = None  # the last frame's own timestamp

    def check(self, timestamp_ms: Any) -> None:
        """InputError for a timestamp that is not a number >= 0 after the previous one."""
        check_timestamp(timestamp_ms, self.last_ms)

    def ticks(self, timestamp_ms: float) -> list[float]:
        """Tick times this frame is emitted at: [] (dropped), or held-frame ticks then its own."""
        self.check(timestamp_ms)
        self.last_ms = float(timestamp_ms)
        if self._origin is None:
            self._origin, self._tick = float(timestamp_ms), 0
            return [float(timestamp_ms)]
        # nearest tick; a frame exactly half-way goes to the earlier one (1e-9: float noise)
        tick = math.ceil((timestamp_ms - self._origin) / self.period_ms - 0.5 - 1e-9)
        if tick <= self._tick:
            return []
        if tick - self._tick - 1 > self.max_fill:  # a long gap: restart the clock here
            self._origin = float(timestamp_ms) - (self._tick + self.max_fill + 1) * self.period_ms
            tick = self._tick + self.max_fill + 1
        first, self._tick = self._tick + 1, tick
        return [self._origin + k * self.period_ms for k in range(first, tick + 1)]


def resample_indices(
    timestamps_ms: np.ndarray, fps: float, max_fill: int
) -> tuple[np.ndarray, np.ndarray]:
    """(source frame of every tick, tick times) of a recording put on a ``fps`` clock."""
    adapter = FrameRateAdapter(fps, max_fill)
    index: list[int] = []
    times: list[float] = []
    for frame, timestamp in enumerate(np.asarray(timestamps_ms, dtype=np.float64)):
        ticks = adapter.ticks(float(timestamp))
        if ticks:  # ticks before the last one hold the previous kept frame
            held = index[-1] if index else frame
            index += [held] * (len(ticks) - 1) + [frame]
            times += ticks
    return np.asarray(index, dtype=np.int64), np.asarray(times)
