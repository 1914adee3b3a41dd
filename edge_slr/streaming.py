"""Sliding-window CTC recognition over unbounded input, in bounded memory.

The student is bidirectional, so it cannot emit a gloss frame by frame; streaming runs it on
overlapping windows of ``window`` frames every ``hop`` frames and *stitches* their outputs:

    frames   |----------- window k -----------|
                      |----------- window k+1 -----------|
    owned         [margin .. margin+hop)       [margin .. margin+hop)  (in each window's frames)

Each window is trusted only in its middle: it owns the output steps whose share of the input
lies between ``margin`` and ``margin + hop`` frames from its start (the first window owns from the
start, the last one to the end). Owned steps of consecutive windows tile the time axis exactly,
so the stitched log-probabilities form one sequence, as if one model had seen everything, except
that every step had at most ``margin`` frames of context on its edge side.

:class:`StreamDecoder` decodes the stitched steps incrementally. It cuts the pending steps at a
step whose best label is blank (greedy decoding is exact across such a cut and beam search nearly
so), so at most ``max_pending_steps`` steps are ever held. With ``pause_steps`` a run of that many
blank steps ends a *sentence* (what the corrector works on); sentences are bounded too.

Two things keep a stream's input like the model's training input (:mod:`edge_slr.stream_input`):

- :class:`RunningShoulders`: the shoulder normalisation of every window uses the medians of the
  shoulder centre and width over the stream so far (the last ``history`` frames), not over the
  window alone: a window's own medians move with the signing inside it and jump where it covers
  a pause, whereas the offline recognition of a recording normalises by the whole recording.
- :class:`FrameRateAdapter`: frames are put on the model's clock (its training frame rate): a
  30 fps camera loses one frame in six for a 25 fps model, a slower one repeats frames.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from edge_slr.errors import InputError
from edge_slr.results import (  # noqa: F401 - part of this module's interface
    RecognizedGloss,
    Sentence,
    Timings,
    ms_since,
)
from edge_slr.stitching import (  # noqa: F401 - part of this module's interface
    Decoder,
    StepTimes,
    StreamDecoder,
    WindowPlan,
    blank_where_nobody,
    glosses_from,
)
from edge_slr.stream_input import (  # noqa: F401 - part of this module's interface
    DEFAULT_HISTORY,
    STREAM_NORMALIZATIONS,
    FrameRateAdapter,
    Reference,
    RunningShoulders,
    check_timestamp,
    resample_indices,
    window_features,
)

# A window of landmarks (T, 543, 4) and the shoulder reference to normalise it by (None: its
# own) -> its log-probabilities (T', V) and what that cost.
WindowModel = Callable[[np.ndarray, Reference | None], tuple[np.ndarray, Timings]]


class LandmarkStream:
    """Frames in, sentences out: a ring buffer of the last window, its schedule and stitching.

    Memory is bounded: ``window`` frames, the decoder's pending steps, the current sentence and
    (``normalization="running"``) ``history`` shoulder measurements. A whole window of frames
    with nobody in view clears those (the next person may stand elsewhere). With ``"window"``
    each window is normalised by its own frames (the behaviour before the running reference).
    """

    def __init__(
        self,
        plan: WindowPlan,
        decoder: StreamDecoder,
        model: WindowModel,
        normalization: str = "running",
        history: int = DEFAULT_HISTORY,
    ) -> None:
        if normalization not in STREAM_NORMALIZATIONS:
            raise InputError(
                f"stream normalization must be one of {STREAM_NORMALIZATIONS}, got "
                f"{normalization!r}"
            )
        self.plan = plan
        self.decoder = decoder
        self._model = model
        self.shoulders = RunningShoulders(history) if normalization == "running" else None
        self._nobody = 0  # frames in a row without any point present
        self.frames: deque[np.ndarray] = deque(maxlen=plan.window)
        self.times: deque[float] = deque(maxlen=plan.window)
        self.total = 0  # frames seen
        self._next_window = 0  # start frame of the next full window
        self._next_step = 0  # first output step no window owns yet

    def check_timestamp(self, timestamp_ms: Any) -> None:
        check_timestamp(timestamp_ms, self.times[-1] if self.times else None)

    def add(self, points: np.ndarray, timestamp_ms: float) -> tuple[list[Sentence], Timings]:
        """Add one frame (543, 4); runs a window when one is complete."""
        self.check_timestamp(timestamp_ms)
        self.frames.append(points)
        self.times.append(float(timestamp_ms))
        self.total += 1
        if self.shoulders is not None:
            self._nobody = 0 if (points[:, 3] > 0).any() else self._nobody + 1
            if self._nobody == self.plan.window:
                self.shoulders.clear()
            self.shoulders.add(points)
        if self.total < self._next_window + self.plan.window:
            return [], Timings()
        start, self._next_window = self._next_window, self._next_window + self.plan.hop
        data, times = np.stack(self.frames), np.asarray(self.times)
        return self.run_window(data, times, start, last=False, reference=self._reference())

    def _reference(self) -> Reference | None:
        return self.shoulders.reference() if self.shoulders is not None else None

    def finish(self) -> tuple[Sentence, Timings]:
        """Recognise the frames no window has covered and return everything not yet returned."""
        start = self.plan.final_start(self.total)
        finished: list[Sentence] = []
        timings = Timings()
        keep = self.total - start
        if keep >= self.plan.temporal.min_input_length:
            data, times = np.stack(self.frames)[-keep:], np.asarray(self.times)[-keep:]
            finished, timings = self.run_window(
                data, times, start, last=True, reference=self._reference()
            )
        started = time.perf_counter()
        last = self.decoder.flush()
        timings += Timings(decoding_ms=ms_since(started))
        return tuple(g for sentence in finished for g in sentence) + last, timings

    def run_window(
        self,
        data: np.ndarray,
        times: np.ndarray,
        start: int,
        last: bool,
        reference: Reference | None = None,
    ) -> tuple[list[Sentence], Timings]:
        """Recognise the window of frames ``start .. start + len(data)`` and stitch its steps."""
        lo, hi = self.plan.owned(start, len(data), self._next_step, last)
        lp, timings = self._model(data, reference)
        started = time.perf_counter()
        owned = StepTimes.for_window(self.plan, start, times, lo, hi)
        tail = None
        if not last and hi < len(lp):
            tail = (lp[hi:], StepTimes.for_window(self.plan, start, times, hi, len(lp)))
        finished = self.decoder.push(lp[lo:hi], owned, tail)
        self._next_step = start // self.plan.stride + hi
        return finished, timings + Timings(decoding_ms=ms_since(started))

    def recognize(
        self, data: np.ndarray, times: np.ndarray, reference: Reference | None = None
    ) -> tuple[Sentence, Timings]:
        """A whole recording through the windows (offline use of a fresh stream), every window
        normalised by ``reference`` (the whole recording's; None: each window by its own)."""
        window, timings, sentences = self.plan.window, Timings(), []
        spans = [(s, s + window, False) for s in range(0, len(data) - window + 1, self.plan.hop)]
        spans.append((self.plan.final_start(len(data)), len(data), True))
        for start, stop, last in spans:
            finished, cost = self.run_window(
                data[start:stop], times[start:stop], start, last, reference
            )
            sentences += finished
            timings += cost
        started = time.perf_counter()
        glosses = tuple(g for sentence in sentences for g in sentence) + self.decoder.flush()
        return glosses, timings + Timings(decoding_ms=ms_since(started))
