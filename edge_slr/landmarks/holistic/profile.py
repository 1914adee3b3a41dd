"""Where a Holistic pipeline's time goes: wall time and calls per stage, per frame.

``HolisticPipeline.enable_profile()`` returns a :class:`StageProfile` that the pipeline fills as
it runs: one stage per model (``model pose_landmark``, ...), the crops (``crop``: the affine warp
and the float conversion), ``heatmap refine``, ``smoothing`` and ``frame`` (the whole
``process`` call). What the named stages leave of ``frame`` is the rest of the per-frame logic
(ROI maths, projections, tracking decisions). Stage times of parts that run concurrently
(``part_workers`` > 1) overlap, so shares are only meaningful with one part worker.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

FRAME = "frame"


class StageProfile:
    """Accumulated wall time and calls per stage name (thread-safe)."""

    def __init__(self) -> None:
        self._seconds: defaultdict[str, float] = defaultdict(float)
        self._calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._seconds.clear()
            self._calls.clear()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self._seconds[name] += elapsed
                self._calls[name] += 1

    @property
    def frames(self) -> int:
        return self._calls[FRAME]

    def rows(self) -> list[dict[str, Any]]:
        """Per stage, largest first: ms per frame, calls per frame and share of the frame time;
        ``other`` is the frame time no named stage covers."""
        with self._lock:
            seconds, calls = dict(self._seconds), dict(self._calls)
        frames = calls.get(FRAME, 0)
        if not frames:
            return []
        total = seconds.pop(FRAME)
        calls.pop(FRAME)
        seconds["other"] = max(0.0, total - sum(seconds.values()))
        calls["other"] = frames
        rows = [
            {
                "stage": name,
                "ms_per_frame": round(1000.0 * value / frames, 3),
                "calls_per_frame": round(calls[name] / frames, 3),
                "share": round(value / total, 4) if total > 0 else 0.0,
            }
            for name, value in seconds.items()
        ]
        rows.sort(key=lambda row: -row["ms_per_frame"])
        rows.append(
            {
                "stage": "total",
                "ms_per_frame": round(1000.0 * total / frames, 3),
                "calls_per_frame": 1.0,
                "share": 1.0,
            }
        )
        return rows
