"""The model's clock: frames put on the model's frame rate, live and offline by one rule.

A model is trained at one frame rate (its sidecar's training fps). A 30 fps camera feeding a
25 fps model loses one frame in six; a slower camera (or a dropped frame) repeats the previous
frame. :class:`FrameRateAdapter` does this frame by frame for streams, :func:`resample_indices`
for a whole recording, so that offline and streaming recognition see the same frames.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edge_slr.errors import InputError


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

    Each frame falls on its nearest tick (the earlier one at a tie). The first frame on a tick
    is kept; later frames on the same tick are dropped (a camera faster than the model); ticks
    no frame fell on repeat the last kept frame (a slower camera, a dropped frame), at most
    ``max_fill`` of them in a row, after which the clock restarts at the new frame.
    :func:`resample_indices` applies the same rule to a whole recording.
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
