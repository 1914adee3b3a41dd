"""A stream of landmark frames in, sentences out, in bounded memory.

:class:`LandmarkStream` keeps the last window of frames, runs the model on each full window (the
scheme of :mod:`edge_slr.recognition.windows`) and hands the steps each window owns to
:class:`StreamDecoder`. The decoder cuts the pending steps at a step whose best label is blank
(greedy decoding is exact across such a cut and beam search nearly so), so at most
``max_pending_steps`` steps are ever held. With ``pause_steps`` a run of that many blank steps
ends a *sentence* (what the corrector works on); sentences are bounded too.

:class:`RunningShoulders` keeps a stream's input like the model's training input: every window is
normalised by the medians of the shoulder centre and width over the stream so far (the last
``history`` frames), not over the window alone: a window's own medians move with the signing
inside it and jump where it covers a pause, whereas the offline recognition of a recording
normalises by the whole recording. Frames reach a stream on the model's clock
(:mod:`edge_slr.recognition.clock`).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from edge_slr.decoding import DecodeResult, greedy_decode
from edge_slr.errors import InputError
from edge_slr.landmarks.layout import LEFT_SHOULDER, RIGHT_SHOULDER
from edge_slr.recognition.clock import check_timestamp
from edge_slr.recognition.results import RecognizedGloss, Sentence, Timings, ms_since
from edge_slr.recognition.windows import Reference, StepTimes, WindowPlan, glosses_from

STREAM_NORMALIZATIONS = ("running", "window")
DEFAULT_HISTORY = 1500  # frames of shoulder measurements a stream keeps (1 min at 25 fps)
_MIN_WIDTH = 1e-6

Decoder = Callable[[np.ndarray], DecodeResult]
# A window of landmarks (T, 543, 4) and the shoulder reference to normalise it by (None: its
# own) -> its log-probabilities (T', V) and what that cost.
WindowModel = Callable[[np.ndarray, Reference | None], tuple[np.ndarray, Timings]]


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


class StreamDecoder:
    """Incremental CTC decoding of stitched window outputs (see the module doc).

    ``push`` takes owned log-prob rows in time order and returns the sentences it finished;
    ``partial`` the current sentence with a tentative decode of what is still pending.
    """

    def __init__(
        self,
        decode: Decoder,
        labels: tuple[str, ...],
        blank: int = 0,
        pause_steps: int | None = None,
        max_pending_steps: int = 256,
        max_sentence_glosses: int | None = None,
    ) -> None:
        self._decode = decode
        self._labels = labels
        self._blank = blank
        self._pause_steps = pause_steps
        self._max_pending = max_pending_steps
        self._max_glosses = max_sentence_glosses
        self.reset()

    def reset(self) -> None:
        self._rows: list[np.ndarray] = []
        self._times: list[StepTimes] = []
        self._pending = 0  # steps in _rows
        self._pending_tokens = False  # a non-blank best label among them
        self._blank_run = 0
        self._sentence: list[RecognizedGloss] = []
        self._tail: tuple[np.ndarray, StepTimes] | None = None
        self._partial: tuple[tuple[RecognizedGloss, ...], int] | None = None  # cached

    @property
    def sentence(self) -> tuple[RecognizedGloss, ...]:
        """Glosses of the current sentence that no later input can change."""
        return tuple(self._sentence)

    def push(
        self, rows: np.ndarray, times: StepTimes, tail: tuple[np.ndarray, StepTimes] | None = None
    ) -> list[tuple[RecognizedGloss, ...]]:
        """Add owned steps; ``tail`` (the window's unowned later steps) only feeds ``partial``."""
        finished = []
        self._tail = tail
        self._partial = None
        best = rows.argmax(axis=1) if len(rows) else np.zeros(0, dtype=int)
        begin = 0
        for i, label in enumerate(best):
            self._blank_run = self._blank_run + 1 if label == self._blank else 0
            self._pending_tokens |= bool(label != self._blank)
            if self._pause_steps is not None and self._blank_run == self._pause_steps:
                self._append(rows[begin : i + 1], times.slice(begin, i + 1))
                begin = i + 1
                done = self._end_sentence()
                if done:
                    finished.append(done)
        self._append(rows[begin:], times.slice(begin))
        self._cut()
        if self._max_glosses is not None and len(self._sentence) >= self._max_glosses:
            finished.append(self._end_sentence(decode_pending=False))
        return finished

    def flush(self) -> tuple[RecognizedGloss, ...]:
        """Decode everything pending and end the sentence (end of input)."""
        self._tail = None
        self._partial = None
        return self._end_sentence()

    def partial(self) -> tuple[tuple[RecognizedGloss, ...], int]:
        """(current sentence + tentative glosses of pending and tail steps, how many are stable)."""
        if self._partial is None:
            self._partial = self._tentative()
        return self._partial

    def _tentative(self) -> tuple[tuple[RecognizedGloss, ...], int]:
        rows, times = list(self._rows), list(self._times)
        if self._tail is not None and len(self._tail[0]):
            rows.append(self._tail[0])
            times.append(self._tail[1])
        stable = tuple(self._sentence)
        if not rows or not sum(len(r) for r in rows):
            return stable, len(stable)
        lp = np.concatenate(rows)
        result = greedy_decode(lp, self._blank, labels=self._labels)  # cheap, once per window
        return stable + tuple(glosses_from(result, StepTimes.concat(times))), len(stable)

    # -- internals ----------------------------------------------------------------------------
    def _append(self, rows: np.ndarray, times: StepTimes) -> None:
        if len(rows):
            self._rows.append(rows)
            self._times.append(times)
            self._pending += len(rows)

    def _take(self, count: int | None = None) -> None:
        """Decode the first ``count`` pending steps (all by default) into the sentence."""
        if not self._rows:
            return
        lp, times = np.concatenate(self._rows), StepTimes.concat(self._times)
        count = len(lp) if count is None else count
        if self._pending_tokens:
            self._sentence += glosses_from(self._decode(lp[:count]), times.slice(0, count))
        rest = lp[count:]
        self._rows, self._times = ([rest], [times.slice(count)]) if len(rest) else ([], [])
        self._pending = len(rest)
        self._pending_tokens = bool(len(rest) and (rest.argmax(axis=1) != self._blank).any())

    def _cut(self) -> None:
        """Decode up to the last blank step once enough is pending (bounded memory)."""
        if self._pending < self._max_pending // 2:
            return
        best = np.concatenate(self._rows).argmax(axis=1)
        blanks = np.flatnonzero(best == self._blank)
        if len(blanks):
            self._take(int(blanks[-1]) + 1)
        elif self._pending >= self._max_pending:
            self._take()  # no pause anywhere: cut anyway rather than grow

    def _end_sentence(self, decode_pending: bool = True) -> tuple[RecognizedGloss, ...]:
        if decode_pending:
            self._take()
        sentence, self._sentence = tuple(self._sentence), []
        return sentence


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
