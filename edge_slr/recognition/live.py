"""Live recognition that keeps up with a camera: extraction and recognition on two workers.

In the MediaPipe Tasks style (a live-stream mode with an async call and a result callback)::

    from edge_slr.recognition.live import LiveOptions, LiveRecognizer, play

    def show(result, info):                      # called on the recognition worker
        print(info.timestamp_ms, result.sentence, "final" if result.final else "")

    options = LiveOptions(RecognizerOptions(model_dir="models/"), result_callback=show)
    with LiveRecognizer.create_from_options(options) as live:
        for rgb, timestamp_ms in camera:
            live.recognize_async(rgb, timestamp_ms)   # returns at once
        live.finish()                                 # what is left, as a final result
        print(live.stats().to_dict())
    # or: play("clip.mp4", live) plays a file at its own frame rate, as a camera would

Frames go through two bounded queues and two threads, so the stages overlap (the engines release
the GIL while they run)::

    caller --frames--> [extraction: landmarks] --landmarks--> [recognition + correction + callback]

Extraction keeps frame order (video-mode tracking needs it) and calls the extractor directly;
with edge-slr's own engines it submits each frame (``submit_video_frame``: the pose now, the
hands and face on the extractor's worker, ``part_workers`` threads for them) and keeps one frame
in flight, so one frame's hands and face overlap the next frame's pose on the second core.
Recognition feeds :meth:`edge_slr.Recognizer.process_landmarks`. When extraction cannot keep up,
``drop_policy`` decides: ``"skip-oldest"`` (a camera: the oldest waiting frame is dropped and
counted) or ``"block"`` (``recognize_async`` waits for room: nothing is dropped, a file is read
as fast as it is recognised). Frames are dropped only at the frame queue, never silently:
:meth:`LiveRecognizer.stats` counts them.

An exception in a stage (or in the result callback) stops both workers; it comes back to the
caller from the next :meth:`~LiveRecognizer.recognize_async`, :meth:`~LiveRecognizer.finish` or
:meth:`~LiveRecognizer.close` as a :class:`LiveStageError` naming the stage. ``close`` (also on
leaving the ``with`` block through KeyboardInterrupt) stops and joins the workers.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import Future, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr._optional import native_logs_filtered, require
from edge_slr.errors import EdgeSLRError, InputError
from edge_slr.landmarks.extract import (
    HolisticOptions,
    check_next_timestamp,
    check_part_workers,
    check_rgb,
)
from edge_slr.landmarks.layout import NUM_POINTS
from edge_slr.recognition.options import DROP_POLICIES, RecognizerOptions
from edge_slr.recognition.results import RecognitionResult, Timings

logger = logging.getLogger(__name__)

MAX_QUEUE = 256  # frames: a 1080p frame is 6 MB, so a queue stays well under 2 GB
THREAD_PREFIX = "edge-slr-live"
_CAPTURES_KEPT = 4096  # recent (timestamp, capture time) pairs for the gloss latencies
_RECENT = 32  # frames in the recent-fps window (about a second at 30 fps)

ResultCallback = Callable[[RecognitionResult, "LiveInfo"], None]
Frame = tuple[np.ndarray, int]  # an RGB frame and its timestamp in ms


class LiveStageError(EdgeSLRError, RuntimeError):
    """A live stage failed; ``stage`` names it, ``__cause__`` is the original exception."""

    def __init__(self, stage: str, error: BaseException) -> None:
        self.stage = stage
        super().__init__(f"live {stage} stage failed: {type(error).__name__}: {error}")


@dataclass(frozen=True)
class LiveOptions:
    """How a :class:`LiveRecognizer` runs (validated on construction)."""

    recognizer: RecognizerOptions
    extractor: HolisticOptions | None = None  # None: recognizer.extractor, else the defaults
    drop_policy: str = "skip-oldest"  # or "block"
    frame_queue_size: int = 2  # frames waiting for extraction (a camera's small buffer)
    landmark_queue_size: int = 8  # extracted frames waiting for recognition
    result_callback: ResultCallback | None = None  # (result, info) on the recognition worker
    latency_samples: int = 10_000  # latencies kept for the percentiles (the most recent)
    # threads for one frame's hands and face on the edge-slr engines (the graph picks its own);
    # None: 2 where the machine has two cores or more (the extraction worker's pose and the
    # previous frame's hands and face then run side by side), else 1
    part_workers: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.recognizer, RecognizerOptions):
            raise InputError(
                f"recognizer must be RecognizerOptions, got {type(self.recognizer).__name__}"
            )
        if self.extractor is not None and not isinstance(self.extractor, HolisticOptions):
            raise InputError(
                f"extractor must be HolisticOptions or None, got {type(self.extractor).__name__}"
            )
        if self.drop_policy not in DROP_POLICIES:
            raise InputError(
                f"drop_policy must be one of {DROP_POLICIES}, got {self.drop_policy!r}"
            )
        for name in ("frame_queue_size", "landmark_queue_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_QUEUE:
                raise InputError(f"{name} must be an integer in [1, {MAX_QUEUE}], got {value!r}")
        value = self.latency_samples
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"latency_samples must be a positive integer, got {value!r}")
        if self.result_callback is not None and not callable(self.result_callback):
            raise InputError(
                f"result_callback must be callable or None, got {type(self.result_callback).__name__}"
            )
        if self.part_workers is not None:
            check_part_workers(self.part_workers)

    def extractor_options(self) -> HolisticOptions:
        """The extractor's options, in video mode (tracking across frames), with
        ``part_workers`` for the edge-slr engines (MediaPipe's graph keeps its own threads)."""
        options = self.extractor or self.recognizer.extractor or HolisticOptions()
        options = replace(options, running_mode="video")
        if options.engine == "mediapipe":
            return options
        workers = self.part_workers
        if workers is None:
            workers = 2 if (os.cpu_count() or 1) >= 2 else 1
        return replace(options, part_workers=workers)


@dataclass(frozen=True)
class LiveInfo:
    """What came with one result: which frame, when, and the pipeline's state."""

    frame_index: int  # frames given to recognize_async before this one (-1: a stream's end)
    timestamp_ms: int  # the frame's timestamp (the last frame's for a stream's end)
    latency_ms: float  # from the recognize_async call (capture) to this result
    landmarks: np.ndarray | None = field(repr=False)  # the frame's (543, 4) landmarks
    image: np.ndarray | None = field(repr=False)  # the frame itself, for overlays
    dropped: int = 0  # frames dropped so far
    stream_end: bool = False  # the result of finish(): the rest of the stream


@dataclass(frozen=True)
class LiveStats:
    """Counts, rates, queue depths and latency percentiles of a live run (``None``: no sample)."""

    frames_in: int
    frames_extracted: int
    frames_recognized: int
    dropped: int  # by the drop policy at the frame queue
    discarded_on_close: int  # frames still queued when close() stopped the workers
    wall_s: float  # from the first frame in to the last result
    input_fps: float | None  # frames in per second
    sustained_fps: float | None  # results per second over the run
    recent_fps: float | None  # results per second over the last ~32 frames
    cpu_percent: float | None  # process CPU time / wall since the first frame (100 = one core)
    frame_queue: int
    frame_queue_max: int  # never above frame_queue_size
    landmark_queue: int
    landmark_queue_max: int  # never above landmark_queue_size
    extraction_ms_mean: float | None  # per frame; pipelined: from its submission to its landmarks
    recognition_ms_mean: float | None  # recognition + correction + callback, per frame
    frame_latency_p50_ms: float | None  # capture -> its result
    frame_latency_p90_ms: float | None
    glass_to_gloss_p50_ms: float | None  # capture of a gloss's last frame -> gloss first shown
    glass_to_gloss_p90_ms: float | None
    glosses_timed: int
    sentence_final_p50_ms: float | None  # capture of a sentence's last frame -> final result
    sentence_final_p90_ms: float | None  # (includes the pause that ends it, pause_ms)
    sentences_timed: int

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


class _Closed(Exception):
    """The queue was closed: the pipeline is stopping."""


class _BoundedQueue:
    """A FIFO of at most ``maxsize`` items; put drops the oldest or waits (no polling)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.high_water = 0
        self._items: deque[Any] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Any, drop_oldest: bool) -> Any:
        """Append ``item``; returns the item dropped to make room (None if none)."""
        with self._cond:
            dropped = None
            if drop_oldest and len(self._items) >= self.maxsize and not self._closed:
                dropped = self._items.popleft()
            while len(self._items) >= self.maxsize and not self._closed:
                self._cond.wait()
            if self._closed:
                raise _Closed
            self._items.append(item)
            self.high_water = max(self.high_water, len(self._items))
            self._cond.notify_all()
            return dropped

    def get(self, ready: Callable[[], bool] | None = None) -> Any:
        """The oldest item; with ``ready``, None as soon as ``ready()`` holds while the queue is
        empty (whoever makes it true calls :meth:`wake`)."""
        with self._cond:
            while not self._items and not self._closed:
                if ready is not None and ready():
                    return None
                self._cond.wait()
            if self._closed:
                raise _Closed
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def wake(self) -> None:
        """Let a waiting :meth:`get` check its ``ready`` again."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> list[Any]:
        """Wake every waiter; returns the items left (discarded)."""
        with self._cond:
            self._closed = True
            left = list(self._items)
            self._items.clear()
            self._cond.notify_all()
            return left


@dataclass
class _Frame:
    rgb: np.ndarray
    timestamp_ms: int
    captured: float  # perf_counter at recognize_async
    index: int
    points: np.ndarray | None = None
    extraction_ms: float = 0.0
    future: Future[np.ndarray] | None = None  # its landmarks while in flight (submit_video_frame)
    submitted: float = 0.0  # perf_counter when it was submitted


class _End:
    """A stream's end travelling through the queues (finish()); never dropped."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: RecognitionResult | None = None


class _Latencies:
    """Capture-to-result, glass-to-gloss and sentence-end-to-final samples (bounded)."""

    def __init__(self, samples: int) -> None:
        self.frame: deque[float] = deque(maxlen=samples)
        self.gloss: deque[float] = deque(maxlen=samples)
        self.sentence: deque[float] = deque(maxlen=samples)
        self.glosses = self.sentences = 0
        self._captures: deque[tuple[float, float]] = deque(maxlen=_CAPTURES_KEPT)
        self._last_start = -math.inf

    def add(self, frame: _Frame, result: RecognitionResult, now: float, measured: bool) -> None:
        """Take one frame's result into account (samples only when ``measured``)."""
        self._captures.append((float(frame.timestamp_ms), frame.captured))
        if measured:
            self.frame.append((now - frame.captured) * 1000.0)
        for gloss in result.glosses:
            if gloss.start_ms > self._last_start:  # a gloss shown for the first time
                self._last_start = gloss.start_ms
                if measured:
                    self.gloss.append((now - self._captured_at(gloss.end_ms)) * 1000.0)
                    self.glosses += 1
        if result.final and result.glosses and measured:
            self.sentence.append((now - self._captured_at(result.glosses[-1].end_ms)) * 1000.0)
            self.sentences += 1

    def clear(self) -> None:
        """Forget the samples (not the stream's state)."""
        for samples in (self.frame, self.gloss, self.sentence):
            samples.clear()
        self.glosses = self.sentences = 0

    def new_stream(self) -> None:
        self._captures.clear()
        self._last_start = -math.inf

    def _captured_at(self, timestamp_ms: float) -> float:
        """Capture time of the last frame at or before ``timestamp_ms`` (the oldest kept else)."""
        best = self._captures[0][1]
        for stamp, captured in reversed(self._captures):
            if stamp <= timestamp_ms + 1e-6:
                best = captured
                break
        return best


def _percentile(values: deque[float], q: float) -> float | None:
    return float(np.percentile(np.fromiter(values, float), q)) if values else None


def _rate(count: int, seconds: float) -> float | None:
    return count / seconds if count > 1 and seconds > 0 else None


class LiveRecognizer:
    """A Recognizer and an extractor on two workers (see the module doc). Feed it from one thread.

    ``recognizer`` is an :class:`edge_slr.Recognizer` (or anything with ``process_landmarks``,
    ``finish``, ``close``); ``extractor`` anything with ``extract_video_frame(rgb,
    timestamp_ms) -> (543, 4)``, ``reset`` and ``close``, and optionally ``submit_video_frame(rgb,
    timestamp_ms) -> Future`` (used instead when present; futures complete in order, ``reset``
    and ``close`` wait for the one in flight). Both are closed with this object,
    the recogniser only if ``owns_recognizer``.
    """

    def __init__(
        self, options: LiveOptions, recognizer: Any, extractor: Any, owns_recognizer: bool = True
    ) -> None:
        if not isinstance(options, LiveOptions):
            raise InputError(f"options must be LiveOptions, got {type(options).__name__}")
        self._options = options
        self._recognizer = recognizer
        self._extractor = extractor
        self._owns_recognizer = owns_recognizer
        self._frames = _BoundedQueue(options.frame_queue_size)
        self._landmarks = _BoundedQueue(options.landmark_queue_size)
        self._lock = threading.Lock()  # counters and latencies shared with stats()
        self._latency = _Latencies(options.latency_samples)
        self._recent: deque[float] = deque(maxlen=_RECENT)
        self._counts = {"in": 0, "extracted": 0, "recognized": 0, "dropped": 0, "discarded": 0}
        self._next_index = 0  # frames ever given (frame numbers)
        self._measured_from = 0  # frames numbered below this are left out of the stats
        self._busy = {"extraction": 0.0, "recognition": 0.0}
        self._first_in: float | None = None
        self._last_in: float | None = None
        self._last_done: float | None = None
        self._last_timestamp: int | None = None
        self._pending_end: _End | None = None
        self._error: tuple[str, BaseException] | None = None
        self._error_reported = False
        self._stage = "recognition"  # what the recognition worker is doing (for its errors)
        self._closed = False
        self._cpu_started: tuple[float, float] | None = None  # (wall, CPU) at the first frame
        self._threads = [
            threading.Thread(target=self._extraction_loop, name=f"{THREAD_PREFIX}-extract",
                             daemon=True),
            threading.Thread(target=self._recognition_loop, name=f"{THREAD_PREFIX}-recognize",
                             daemon=True),
        ]  # fmt: skip
        for thread in self._threads:
            thread.start()

    @classmethod
    def create_from_options(cls, options: LiveOptions) -> LiveRecognizer:
        """Load the recogniser, its corrector and the landmark extractor; start the workers."""
        from edge_slr.landmarks.extract import HolisticExtractor
        from edge_slr.recognition.recognizer import Recognizer

        if not isinstance(options, LiveOptions):
            raise InputError(f"options must be LiveOptions, got {type(options).__name__}")
        recognizer = Recognizer.create_from_options(options.recognizer)
        try:
            with native_logs_filtered():  # MediaPipe's C++ start-up lines
                extractor = HolisticExtractor.create_from_options(options.extractor_options())
        except BaseException:
            recognizer.close()
            raise
        return cls(options, recognizer, extractor)

    @classmethod
    def create_from_recognizer(
        cls, recognizer: Any, extractor: Any = None, **options: Any
    ) -> LiveRecognizer:
        """A live pipeline on an open :class:`edge_slr.Recognizer`, which stays open after
        :meth:`close`; ``options`` are LiveOptions fields (``drop_policy``, ``result_callback``,
        ...). The extractor is created from the options unless given. Do not use the
        recogniser's stream yourself while the pipeline runs."""
        from edge_slr.landmarks.extract import HolisticExtractor

        live_options = LiveOptions(recognizer.options, **options)
        if extractor is None:
            with native_logs_filtered():
                extractor = HolisticExtractor.create_from_options(live_options.extractor_options())
        return cls(live_options, recognizer, extractor, owns_recognizer=False)

    def on_worker(self) -> bool:
        """Whether the calling thread is one of this pipeline's workers (a result callback)."""
        return threading.current_thread() in self._threads

    @property
    def options(self) -> LiveOptions:
        return self._options

    @property
    def recognizer(self) -> Any:
        """The Recognizer (used by the recognition worker: do not call it meanwhile)."""
        return self._recognizer

    @property
    def extractor(self) -> Any:
        return self._extractor

    # -- the caller's side ----------------------------------------------------------------------
    def recognize_async(self, rgb: np.ndarray, timestamp_ms: int) -> None:
        """Queue one RGB frame ``(H, W, 3)`` uint8 taken at ``timestamp_ms`` (whole ms, strictly
        increasing); returns at once (``"block"``: once there is room). The array is copied."""
        self._check_usable()
        timestamp_ms = check_next_timestamp(timestamp_ms, self._last_timestamp, "finish()")
        rgb = np.array(check_rgb(rgb), copy=True)
        now = time.perf_counter()
        frame = _Frame(rgb, timestamp_ms, now, self._next_index)
        try:
            dropped = self._frames.put(frame, self._options.drop_policy == "skip-oldest")
        except _Closed:
            self._check_usable()
            raise InputError("this LiveRecognizer is closed") from None
        self._last_timestamp = timestamp_ms
        self._next_index += 1
        with self._lock:
            self._counts["in"] += 1
            self._counts["dropped"] += self._measured(dropped)
            if self._first_in is None:
                self._first_in, self._cpu_started = now, (now, time.process_time())
            self._last_in = now
        if dropped is not None:
            logger.debug("frame %d (%d ms) dropped: extraction is behind", dropped.index,
                         dropped.timestamp_ms)  # fmt: skip

    def finish(self, timeout: float | None = None) -> RecognitionResult:
        """Wait until every queued frame is recognised, end the stream and return its last result
        (``final``; also given to the callback with ``info.stream_end``). The next frame starts
        a new stream (timestamps may start again; tracking restarts)."""
        self._check_usable()
        end = _End()
        self._pending_end = end
        try:
            self._frames.put(end, drop_oldest=False)
        except _Closed:
            self._check_usable()
            raise InputError("this LiveRecognizer is closed") from None
        if not end.done.wait(timeout):
            raise TimeoutError(f"the live pipeline did not finish within {timeout} s")
        self._check_usable()
        self._last_timestamp = None
        assert end.result is not None
        return end.result

    def stats(self) -> LiveStats:
        with self._lock:
            counts, busy, latency = dict(self._counts), dict(self._busy), self._latency
            first, last_in, last = self._first_in, self._last_in, self._last_done
            recent = list(self._recent)
            samples = {"frame": latency.frame, "gloss": latency.gloss,
                       "sentence": latency.sentence}  # fmt: skip
            values = {
                f"{name}_{q}": _percentile(series, q)
                for name, series in samples.items()
                for q in (50, 90)
            }
        cpu = None
        if self._cpu_started is not None:
            wall = time.perf_counter() - self._cpu_started[0]
            cpu = (time.process_time() - self._cpu_started[1]) / wall * 100.0 if wall > 0 else None
        span = (last - first) if first is not None and last is not None else 0.0
        return LiveStats(
            frames_in=counts["in"],
            frames_extracted=counts["extracted"],
            frames_recognized=counts["recognized"],
            dropped=counts["dropped"],
            discarded_on_close=counts["discarded"],
            wall_s=span,
            input_fps=_rate(counts["in"] - 1, (last_in or 0.0) - (first or 0.0)),
            sustained_fps=_rate(counts["recognized"], span),
            recent_fps=_rate(len(recent) - 1, recent[-1] - recent[0]) if recent else None,
            cpu_percent=cpu,
            frame_queue=len(self._frames),
            frame_queue_max=self._frames.high_water,
            landmark_queue=len(self._landmarks),
            landmark_queue_max=self._landmarks.high_water,
            extraction_ms_mean=busy["extraction"] / counts["extracted"] if counts["extracted"]
            else None,
            recognition_ms_mean=busy["recognition"] / counts["recognized"]
            if counts["recognized"] else None,
            frame_latency_p50_ms=values["frame_50"],
            frame_latency_p90_ms=values["frame_90"],
            glass_to_gloss_p50_ms=values["gloss_50"],
            glass_to_gloss_p90_ms=values["gloss_90"],
            glosses_timed=latency.glosses,
            sentence_final_p50_ms=values["sentence_50"],
            sentence_final_p90_ms=values["sentence_90"],
            sentences_timed=latency.sentences,
        )  # fmt: skip

    def reset_stats(self) -> None:
        """Start the statistics anew from the next frame (e.g. after a warm-up): frames given
        before are still processed but no longer counted, timed or dropped in the stats."""
        with self._lock:
            self._measured_from = self._next_index
            self._counts = dict.fromkeys(self._counts, 0)
            self._busy = dict.fromkeys(self._busy, 0.0)
            self._latency.clear()
            self._first_in = self._last_in = self._last_done = self._cpu_started = None
            self._frames.high_water = len(self._frames)
            self._landmarks.high_water = len(self._landmarks)

    def close(self) -> None:
        """Stop and join the workers (queued frames are discarded and counted), release the
        models; re-raises a stage's exception not reported yet."""
        if not self._closed:
            self._closed = True
            self._stop()
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()
            with native_logs_filtered():
                self._extractor.close()
                if self._owns_recognizer:
                    self._recognizer.close()
        self._raise_stage_error()

    def __enter__(self) -> LiveRecognizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------
    def _check_usable(self) -> None:
        self._raise_stage_error()
        if self._closed or self._error is not None:
            raise InputError("this LiveRecognizer is closed; create a new one")

    def _raise_stage_error(self) -> None:
        if self._error is not None and not self._error_reported:
            self._error_reported = True
            stage, error = self._error
            raise LiveStageError(stage, error) from error

    def _stop(self) -> None:
        left = self._frames.close() + self._landmarks.close()
        with self._lock:
            self._counts["discarded"] += sum(self._measured(item) for item in left)
        if self._pending_end is not None:
            self._pending_end.done.set()

    def _measured(self, item: Any) -> bool:
        return isinstance(item, _Frame) and item.index >= self._measured_from

    def _fail(self, stage: str, error: BaseException) -> None:
        logger.debug("live %s stage failed", stage, exc_info=error)
        with self._lock:
            if self._error is None:
                self._error = (stage, error)
        self._stop()

    def _extraction_loop(self) -> None:
        # An extractor with submit_video_frame runs a frame's pose here and its hands and face on
        # a worker of its own: one frame stays in flight while the next one's pose runs, and is
        # handed on as soon as it is done or the next frame has been submitted (order is kept).
        submit = getattr(self._extractor, "submit_video_frame", None)
        pending: _Frame | None = None
        try:
            while True:
                ready = None if pending is None or pending.future is None else pending.future.done
                item = self._frames.get(ready)
                if isinstance(item, _Frame) and submit is not None:
                    self._submit(item, submit)
                if pending is not None:  # done, submitted over, or before a stream's end
                    self._hand_on(pending)
                    pending = None
                if item is None:
                    continue
                if isinstance(item, _Frame) and submit is not None:
                    pending = item
                    continue
                if isinstance(item, _Frame):
                    started = time.perf_counter()
                    points = self._extractor.extract_video_frame(item.rgb, item.timestamp_ms)
                    item.extraction_ms = (time.perf_counter() - started) * 1000.0
                    self._extracted(item, points)
                else:
                    self._extractor.reset()  # the next stream is unrelated video
                self._landmarks.put(item, drop_oldest=False)
        except _Closed:
            return
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            self._fail("extraction", error)
        finally:
            if pending is not None and pending.future is not None:
                wait([pending.future])  # its worker is idle before close() shuts it down

    def _submit(
        self, item: _Frame, submit: Callable[[np.ndarray, int], Future[np.ndarray]]
    ) -> None:
        item.submitted = time.perf_counter()
        item.future = submit(item.rgb, item.timestamp_ms)

        def done(_: Future[np.ndarray]) -> None:
            item.extraction_ms = (time.perf_counter() - item.submitted) * 1000.0
            self._frames.wake()  # the loop may be waiting for this frame

        item.future.add_done_callback(done)

    def _hand_on(self, item: _Frame) -> None:
        """A submitted frame's landmarks (its extractor's error raised here) to recognition."""
        assert item.future is not None
        points = item.future.result()
        if not item.extraction_ms:  # result() can return before the done callback has run
            item.extraction_ms = (time.perf_counter() - item.submitted) * 1000.0
        self._extracted(item, points)
        self._landmarks.put(item, drop_oldest=False)

    def _extracted(self, item: _Frame, points: np.ndarray) -> None:
        """Check and keep one frame's landmarks, count its extraction time."""
        if np.shape(points) != (NUM_POINTS, 4):
            raise InputError(
                f"the extractor returned landmarks of shape {np.shape(points)}, "
                f"expected ({NUM_POINTS}, 4)"
            )
        item.points = points
        with self._lock:
            if self._measured(item):
                self._counts["extracted"] += 1
                self._busy["extraction"] += item.extraction_ms

    def _recognition_loop(self) -> None:
        try:
            while True:
                item = self._landmarks.get()
                self._stage = "recognition"
                if isinstance(item, _End):
                    self._end_stream(item)
                    continue
                started = time.perf_counter()
                result = self._recognizer.process_landmarks(item.points, item.timestamp_ms)
                result = replace(result, timings=result.timings + Timings(item.extraction_ms))
                now = time.perf_counter()
                measured = self._measured(item)
                with self._lock:
                    self._latency.add(item, result, now, measured)
                    self._recent.append(now)
                    if measured:
                        self._counts["recognized"] += 1
                        self._last_done = now
                info = LiveInfo(
                    item.index, item.timestamp_ms, (now - item.captured) * 1000.0, item.points,
                    item.rgb, self._counts["dropped"],
                )  # fmt: skip
                self._deliver(result, info)
                with self._lock:
                    self._busy["recognition"] += (time.perf_counter() - started) * 1000.0 * measured
        except _Closed:
            return
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            self._fail(self._stage, error)

    def _deliver(self, result: RecognitionResult, info: LiveInfo) -> None:
        if self._options.result_callback is not None:
            self._stage = "result_callback"
            self._options.result_callback(result, info)

    def _end_stream(self, end: _End) -> None:
        result = self._recognizer.finish()
        with self._lock:
            self._latency.new_stream()
        last = self._last_timestamp if self._last_timestamp is not None else 0
        self._deliver(result, LiveInfo(-1, last, 0.0, None, None, self._counts["dropped"], True))
        end.result = result
        end.done.set()


# -- playing a camera or a file as a camera -----------------------------------------------------
def play(
    source: int | str | os.PathLike[str],
    live: LiveRecognizer,
    realtime: bool = True,
    loop_seconds: float | None = None,
    max_frames: int | None = None,
    finish: bool = True,
    warmup_s: float = 0.0,
) -> LiveStats:
    """Feed ``live`` from a camera (an index) or a video file / frame folder; returns its stats.

    A file is played at its own frame rate, as a camera would deliver it (``realtime``): frame
    ``i`` is captured ``i / fps`` seconds after the start, or later when the previous call was
    late (``"block"``), never earlier; ``realtime=False`` feeds frames as fast as they are taken.
    ``loop_seconds`` replays the file until that much video time has been played; timestamps
    keep increasing across the loops. ``max_frames`` stops earlier. With ``finish`` the stream
    is ended at the close (:meth:`LiveRecognizer.finish`). ``warmup_s``: the frames of the first
    seconds (engines start, first detections) are played but left out of the stats
    (:meth:`LiveRecognizer.reset_stats`); ``loop_seconds`` are played after them.
    """
    if not isinstance(live, LiveRecognizer):
        raise InputError(f"live must be a LiveRecognizer, got {type(live).__name__}")
    for name, value in (("loop_seconds", loop_seconds), ("max_frames", max_frames)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not value > 0):  # fmt: skip
            raise InputError(f"{name} must be a positive number or None, got {value!r}")
    if isinstance(warmup_s, bool) or not isinstance(warmup_s, (int, float)) or not warmup_s >= 0:
        raise InputError(f"warmup_s must be a number of seconds >= 0, got {warmup_s!r}")
    total = None if loop_seconds is None else loop_seconds + warmup_s
    if isinstance(source, (int, np.integer)) and not isinstance(source, bool):
        frames = _camera_frames(int(source), total)
    elif isinstance(source, (str, os.PathLike)):
        frames = _file_frames(Path(source), realtime, total)
    else:
        raise InputError(
            f"source must be a camera index (int) or a video path, got {type(source).__name__}"
        )
    limit = math.inf if max_frames is None else max_frames
    try:
        warming = warmup_s > 0
        for count, (rgb, timestamp_ms) in enumerate(frames, 1):
            if warming and timestamp_ms >= warmup_s * 1000.0:
                live.reset_stats()
                warming = False
            live.recognize_async(rgb, timestamp_ms)
            if count >= limit:
                break
    finally:
        frames.close()  # releases a camera at once, also on KeyboardInterrupt
    if finish:
        live.finish()
    return live.stats()


def _file_frames(
    path: Path, realtime: bool, loop_seconds: float | None
) -> Generator[Frame, None, None]:
    from edge_slr.landmarks.video import open_frames

    source = open_frames(path)  # InputError / FormatError for a missing or broken file
    started: float | None = None
    played = 0  # frames played, over every loop
    while True:
        before = played
        for rgb in source.frames():
            # the extractor's own offline timestamps (HolisticExtractor.extract_video)
            timestamp_ms = int(round(played * 1000.0 / source.fps))
            if loop_seconds is not None and played and timestamp_ms >= loop_seconds * 1000.0:
                return
            if realtime:  # wait for the frame's capture time; a late frame is taken late
                started = time.perf_counter() if started is None else started
                delay = started + timestamp_ms / 1000.0 - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            yield rgb, timestamp_ms
            played += 1
        if loop_seconds is None or played == before:
            return


def _camera_frames(index: int, seconds: float | None) -> Generator[Frame, None, None]:
    cv2 = require("cv2", "reading a camera")
    capture = cv2.VideoCapture(index)
    try:
        if not capture.isOpened():
            raise InputError(f"camera {index} could not be opened (no such device, or it is busy)")
        started, last = time.perf_counter(), -1
        while True:
            ok, bgr = capture.read()
            if not ok or bgr is None:
                if last < 0:
                    raise InputError(f"camera {index} opened but delivered no frame")
                return
            # a camera's timestamps: the capture clock, whole milliseconds, strictly increasing
            last = max(int((time.perf_counter() - started) * 1000.0), last + 1)
            if seconds is not None and last >= seconds * 1000.0:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), last
    finally:
        capture.release()
