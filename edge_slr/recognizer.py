"""``Recognizer``: landmarks, videos or live frames in, recognised (and corrected) glosses out.

In the MediaPipe Tasks style::

    from edge_slr import Recognizer, RecognizerOptions

    with Recognizer.create_from_model_dir("models/") as recognizer:
        result = recognizer.recognize_video("clip.mp4")
        print(result.sentence, result.timings)

    options = RecognizerOptions(model_dir="models/", runtime="openvino", threads=2, beam_width=5)
    with Recognizer.create_from_options(options) as recognizer:
        for timestamp_ms, rgb in camera:                     # live: partial hypotheses
            result = recognizer.process_frame(rgb, timestamp_ms)
        final = recognizer.finish()

The *model directory* is what ``edge-slr convert CKPT --target T -o DIR`` fills, one call per
target: converted recognisers ``student[-int8|-fp16].{xml,onnx,tflite}``, each with its sidecar
``NAME.json`` (vocabulary, feature preset, temporal spec, training frame rate, engine), and
optionally a corrector: a converted one (``edge-slr convert CORRECTOR_DIR --target T -o DIR``:
``corrector[-int8].EXT.json`` and its graphs), run through the same runtime registry without
torch (:class:`edge_slr.runtimes.RuntimeCorrector`), or a corrector folder ``DIR/corrector/``
(``corrector.pt``, as ``edge-slr train corrector`` writes it; needs torch; used when no converted
corrector can run, or with ``runtime="torch"``). Recogniser and corrector are chosen by
:func:`edge_slr.runtimes.choose_model` (runtime and precision options, else the sidecars'
engines that are installed). A student checkpoint ``.pt`` may be given instead of a directory
(the torch reference). Long inputs are recognised in overlapping windows
(:mod:`edge_slr.streaming`), so memory stays bounded however long the input is.

Frame rate: input is put on the model's clock (the training fps its sidecar records; 25 fps for
sidecars without it) before recognition: a 30 fps video or camera loses one frame in six, a
slower one repeats frames (:class:`edge_slr.streaming.FrameRateAdapter`). Frame spans of offline
results count the input's own frames; those of streaming results count frames on the model's
clock (``num_frames`` too); times are milliseconds on the input's clock in both.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_slr.errors import InputError
from edge_slr.landmarks.extract import HolisticOptions
from edge_slr.landmarks.layout import NUM_POINTS
from edge_slr.landmarks.presets import shoulder_reference
from edge_slr.landmarks.sequence import LandmarkSequence
from edge_slr.recognizer_core import (  # noqa: F401 - part of this module's interface
    MAX_FILL_SECONDS,
    MAX_SENTENCE_GLOSSES,
    RecognizerCore,
    landmark_warnings,
)
from edge_slr.recognizer_options import (  # noqa: F401 - part of this module's interface
    RecognizerOptions,
    check_fps,
    check_landmarks,
)
from edge_slr.results import RecognitionResult, ms_since
from edge_slr.runtimes.corrector import (  # noqa: F401 - find_corrector: part of this API
    CORRECTOR_CHECKPOINT,
    CORRECTOR_FOLDER,
    find_corrector,
    load_corrector,
)
from edge_slr.streaming import (  # noqa: F401 - part of this module's interface
    DEFAULT_HISTORY,
    STREAM_NORMALIZATIONS,
    FrameRateAdapter,
    LandmarkStream,
    RecognizedGloss,
    Reference,
    Sentence,
    StepTimes,
    StreamDecoder,
    Timings,
    WindowPlan,
    blank_where_nobody,
    glosses_from,
    resample_indices,
    window_features,
)

if TYPE_CHECKING:
    from edge_slr.runtimes import Runtime

logger = logging.getLogger(__name__)

HISTORY = 100  # finished stream sentences kept for Recognizer.sentences
FPS_TOLERANCE = 0.01  # relative: input this close to the model's frame rate is not resampled


class Recognizer(RecognizerCore):
    """A loaded recogniser (and corrector); see the module doc. Not thread-safe."""

    def __init__(self, options: RecognizerOptions, runtime: Runtime, corrector: Any = None) -> None:
        super().__init__(options, runtime, corrector)
        self._extractor: Any = None
        self._stream = self._new_stream()
        self._clock = self._new_clock()
        self._history: deque[RecognitionResult] = deque(maxlen=HISTORY)
        self._live: Any = None  # the live pipeline (running_mode "live_stream"), made on first use

    # -- creation -------------------------------------------------------------------------------
    @classmethod
    def create_from_options(cls, options: RecognizerOptions) -> Recognizer:
        """Load the recogniser (and corrector) of ``options.model_dir``."""
        from edge_slr.runtimes import load_runtime

        if not isinstance(options, RecognizerOptions):
            raise InputError(f"options must be RecognizerOptions, got {type(options).__name__}")
        runtime = load_runtime(
            options.model_dir,
            options.runtime,
            options.threads,
            precision=options.precision,
            **options.runtime_options,
        )
        try:
            corrector = None
            if options.correct:
                corrector = load_corrector(
                    options.model_dir,
                    runtime.description,
                    runtime=options.runtime,
                    threads=options.threads,
                    precision=options.precision,
                    runtime_options=options.runtime_options,
                )
            return cls(options, runtime, corrector)
        except BaseException:
            runtime.close()
            raise

    @classmethod
    def create_from_model_dir(cls, model_dir: str | Path, **options: Any) -> Recognizer:
        return cls.create_from_options(RecognizerOptions(model_dir=Path(model_dir), **options))

    # -- offline --------------------------------------------------------------------------------
    def recognize_landmarks(
        self, landmarks: LandmarkSequence | np.ndarray, fps: float | None = None
    ) -> RecognitionResult:
        """Recognise a whole ``(T, 543, 4)`` landmark recording (array or LandmarkSequence).

        ``fps`` (else the sequence's, else ``options.fps``, else the model's): input at another
        rate is resampled to the model's; frame spans refer to the input's frames.
        ``warnings`` of the result say when the landmarks hold nothing usable.
        """
        self._check_open()
        if fps is not None:
            fps = check_fps(fps)
        if isinstance(landmarks, LandmarkSequence):
            data, fps = landmarks.data, fps or landmarks.fps
        else:
            data = check_landmarks(landmarks)
        fps = float(fps or self._options.fps or self._fps)
        return self._recognize_at(data, np.arange(len(data)) * (1000.0 / fps), fps, Timings())

    def recognize_video(self, path: str | Path, fps: float | None = None) -> RecognitionResult:
        """Extract landmarks with MediaPipe Holistic (video mode), then recognise them.

        InputError for a missing file or a video without a person, FormatError for one that
        does not decode.
        """
        self._check_open()
        if fps is not None:
            fps = check_fps(fps)
        started = time.perf_counter()
        sequence = self._video_extractor().extract_video(path, fps=fps)
        extraction = Timings(extraction_ms=ms_since(started))
        times = np.arange(sequence.num_frames) * (1000.0 / sequence.fps)
        result = self._recognize_at(sequence.data, times, sequence.fps, extraction)
        return replace(result, landmarks=sequence)

    def recognize_features(
        self, features: np.ndarray, fps: float | None = None
    ) -> RecognitionResult:
        """Recognise preset features ``(T, F)`` at the model's frame rate (no landmarks; single
        pass; not resampled: ``fps`` only sets the times)."""
        self._check_open()
        if fps is not None:
            fps = check_fps(fps)
        features = self._check_features(features)
        fps = float(fps or self._options.fps or self._fps)
        times = np.arange(len(features)) * (1000.0 / fps)
        lp, timings = self._log_probs(features)
        return self._finish_offline(lp, times, timings, len(features))

    # -- streaming ------------------------------------------------------------------------------
    def process_frame(self, rgb: np.ndarray, timestamp_ms: int) -> RecognitionResult:
        """Add one live RGB frame ``(H, W, 3)`` uint8; returns the current hypothesis.

        Timestamps are whole milliseconds and must strictly increase (call :meth:`reset` before
        an unrelated video); they put the frames on the model's clock (a 30 fps camera feeds a
        25 fps model five frames in six). The result is partial (``final`` False) until a pause
        ends a sentence; then that sentence comes back once with ``final`` True and its
        correction.
        """
        self._check_open()
        self._check_not_live("process_frame")
        self._clock.check(timestamp_ms)
        started = time.perf_counter()
        points = self._video_extractor().extract_video_frame(rgb, int(timestamp_ms))
        extraction = Timings(extraction_ms=ms_since(started))
        result = self._stream_result(*self._feed(points, timestamp_ms), extraction)
        # the frame's landmarks, for drawing (a one-frame sequence)
        return replace(result, landmarks=LandmarkSequence(points[None], self._fps))

    def process_landmarks(self, frame: np.ndarray, timestamp_ms: float) -> RecognitionResult:
        """Add one frame of landmarks ``(543, 4)`` (streaming without MediaPipe)."""
        self._check_open()
        self._check_not_live("process_landmarks")
        self._clock.check(timestamp_ms)
        if np.shape(frame) != (NUM_POINTS, 4):
            raise InputError(
                f"process_landmarks takes one frame ({NUM_POINTS}, 4), got shape {np.shape(frame)}"
            )
        points = check_landmarks(np.asarray(frame)[None])[0]
        return self._stream_result(*self._feed(points, timestamp_ms), Timings())

    def _feed(self, points: np.ndarray, timestamp_ms: float) -> tuple[list[Sentence], Timings]:
        """One input frame into the stream, on the model's clock (dropped, once, or after
        repeats of the previous frame)."""
        finished: list[Sentence] = []
        timings = Timings()
        ticks = self._clock.ticks(timestamp_ms)
        for i, tick in enumerate(ticks):
            frame = points if i == len(ticks) - 1 else self._stream.frames[-1]
            done, cost = self._stream.add(frame, tick)
            finished += done
            timings += cost
        return finished, timings

    def finish(self) -> RecognitionResult:
        """End the stream: recognise what is left and return it; the next frame starts anew."""
        self._check_open()
        if self._live is not None and not self._live.on_worker():
            return self._live.finish()
        glosses, timings = self._stream.finish()
        result = self._corrected(glosses, timings, self._stream.total)
        self._history.append(result)
        self._stream = self._new_stream()
        self._clock = self._new_clock()
        self._reset_extractor()
        return result

    def reset(self) -> None:
        """Forget the stream (frames, pending steps, sentences, tracking): start anew."""
        self._check_open()
        self._check_not_live("reset")
        self._stream = self._new_stream()
        self._clock = self._new_clock()
        self._history.clear()
        self._reset_extractor()

    @property
    def sentences(self) -> tuple[RecognitionResult, ...]:
        """The stream's finished sentences so far (the last 100)."""
        return tuple(self._history)

    # -- live stream (running_mode "live_stream"; edge_slr.live) --------------------------------
    def recognize_async(self, rgb: np.ndarray, timestamp_ms: int) -> None:
        """Queue one RGB frame ``(H, W, 3)`` uint8 and return at once (running_mode
        "live_stream"). Results come to ``options.result_callback(result, info)`` on a worker
        thread: landmark extraction and recognition run on two workers that overlap; frames that
        extraction cannot take in time are dropped and counted (``drop_policy``). See
        :mod:`edge_slr.live`; :meth:`finish` waits for the queued frames and ends the stream."""
        self._live_pipeline().recognize_async(rgb, timestamp_ms)

    def live_stats(self) -> Any:
        """The live stream's frames, drops, fps, queue depths and latencies (LiveStats)."""
        return self._live_pipeline().stats()

    def _live_pipeline(self) -> Any:
        self._check_open()
        if self._options.running_mode != "live_stream":
            raise InputError(
                "recognize_async needs RecognizerOptions(running_mode='live_stream', "
                f"result_callback=...); this Recognizer has running_mode="
                f"{self._options.running_mode!r}"
            )
        if self._live is None:
            from edge_slr.live import LiveRecognizer

            self._live = LiveRecognizer.create_from_recognizer(
                self,
                drop_policy=self._options.drop_policy,
                result_callback=self._options.result_callback,
            )
        return self._live

    def _check_not_live(self, method: str) -> None:
        if self._live is not None and not self._live.on_worker():
            raise InputError(
                f"{method}() cannot be used while a live stream runs (recognize_async)"
            )

    # -- life cycle -----------------------------------------------------------------------------
    def close(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.close()
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None
        close_corrector = getattr(self._corrector, "close", None)
        if close_corrector is not None:
            close_corrector()
        if self._extractor is not None:
            self._extractor.close()
            self._extractor = None

    def __enter__(self) -> Recognizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        runtime = self._runtime.name if self._runtime is not None else "closed"
        corrector = "with corrector" if self._corrector is not None else "no corrector"
        return f"<Recognizer {self._description.graph.file.name} on {runtime}, {corrector}>"

    # -- internals ------------------------------------------------------------------------------
    def _reset_extractor(self) -> None:
        if self._extractor is not None:
            self._extractor.reset()

    def _video_extractor(self) -> Any:
        self._check_open()
        if self._extractor is None:
            from edge_slr.landmarks.extract import HolisticExtractor

            options = replace(self._options.extractor or HolisticOptions(), running_mode="video")
            self._extractor = HolisticExtractor.create_from_options(options)
        return self._extractor

    def _recognize_at(
        self, data: np.ndarray, times: np.ndarray, fps: float, timings: Timings
    ) -> RecognitionResult:
        """Recognise ``data`` recorded at ``fps``, resampled to the model's rate if it differs."""
        warnings = landmark_warnings(data)
        for warning in warnings:
            logger.debug("%s", warning)  # the result carries it; the CLI prints it
        if abs(fps - self._fps) <= FPS_TOLERANCE * self._fps:
            return replace(self._recognize(data, times, timings), warnings=warnings)
        index, _ = resample_indices(times, self._fps, self._max_fill())
        logger.debug("resampled %d frames at %g fps to %d at %g", len(data), fps, len(index),
                     self._fps)  # fmt: skip
        result = self._recognize(data[index], times[index], timings)
        glosses = tuple(
            replace(g, start_frame=int(index[g.start_frame]),
                    end_frame=int(index[g.end_frame - 1]) + 1)
            for g in result.glosses
        )  # fmt: skip
        return replace(result, glosses=glosses, num_frames=len(data), warnings=warnings)

    def _recognize(
        self, data: np.ndarray, times: np.ndarray, timings: Timings
    ) -> RecognitionResult:
        self._check_length(len(data))
        if len(data) > self._options.max_single_pass_frames:
            return self._recognize_windowed(data, times, timings)
        features, features_ms = self._features(data)
        lp, model_timings = self._log_probs(features, data)
        timings += model_timings + Timings(features_ms=features_ms)
        return self._finish_offline(lp, times, timings, len(data))

    def _finish_offline(
        self, lp: np.ndarray, times: np.ndarray, timings: Timings, frames: int
    ) -> RecognitionResult:
        started = time.perf_counter()
        steps = StepTimes.for_window(self._plan, 0, times, 0, len(lp))
        glosses = tuple(glosses_from(self.decode(lp), steps))
        timings += Timings(decoding_ms=ms_since(started))
        return self._corrected(glosses, timings, frames)

    def _recognize_windowed(
        self, data: np.ndarray, times: np.ndarray, timings: Timings
    ) -> RecognitionResult:
        """A long recording through the same windows as streaming, without sentence cuts, every
        window normalised by the whole recording (as a single pass would be)."""
        try:
            reference: Reference | None = shoulder_reference(data)
        except InputError:  # nobody anywhere: every window is blank
            reference = None
        glosses, cost = self._new_stream(sentences=False).recognize(data, times, reference)
        return self._corrected(glosses, timings + cost, len(data))

    def _stream_result(
        self, finished: list[Sentence], timings: Timings, extraction: Timings
    ) -> RecognitionResult:
        timings += extraction
        frames = self._stream.total
        if not finished:
            glosses, stable = self._stream.decoder.partial()
            return RecognitionResult(glosses, None, timings, frames, final=False, stable=stable)
        # Several sentences end in one call only after a long stretch without pauses.
        results = [self._corrected(sentence, Timings(), frames) for sentence in finished]
        self._history.extend(results)
        timings = sum((r.timings for r in results), timings)
        if len(results) == 1:
            return replace(results[0], timings=timings)
        glosses = tuple(g for r in results for g in r.glosses)
        corrected = None
        if all(r.corrected is not None for r in results):
            corrected = tuple(g for r in results for g in r.corrected or ())
        return RecognitionResult(glosses, corrected, timings, frames, stable=len(glosses))
