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
(:mod:`edge_slr.recognition.windows`), so memory stays bounded however long the input is.

Frame rate: input is put on the model's clock (the training fps its sidecar records; 25 fps for
sidecars without it) before recognition: a 30 fps video or camera loses one frame in six, a
slower one repeats frames (:mod:`edge_slr.recognition.clock`). Frame spans of offline
results count the input's own frames; those of streaming results count frames on the model's
clock (``num_frames`` too); times are milliseconds on the input's clock in both.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_slr.decoding import DecodeResult, beam_search, greedy_decode, load_fused_lm, log_softmax
from edge_slr.errors import FormatError, InputError
from edge_slr.landmarks.extract import HolisticOptions
from edge_slr.landmarks.layout import NUM_POINTS
from edge_slr.landmarks.presets import shoulder_reference
from edge_slr.landmarks.sequence import LandmarkSequence
from edge_slr.recognition.clock import FrameRateAdapter, resample_indices
from edge_slr.recognition.options import (
    RecognizerOptions,
    check_fps,
    check_landmarks,
    landmark_warnings,
)
from edge_slr.recognition.results import (
    RecognitionResult,
    RecognizedGloss,
    Sentence,
    Timings,
    ms_since,
)
from edge_slr.recognition.stream import LandmarkStream, StreamDecoder
from edge_slr.recognition.windows import (
    Reference,
    StepTimes,
    WindowPlan,
    blank_where_nobody,
    glosses_from,
    window_features,
)
from edge_slr.runtimes.corrector import load_corrector

if TYPE_CHECKING:
    from edge_slr.runtimes import Runtime
    from edge_slr.sidecar import ModelDescription

logger = logging.getLogger(__name__)

HISTORY = 100  # finished stream sentences kept for Recognizer.sentences
FPS_TOLERANCE = 0.01  # relative: input this close to the model's frame rate is not resampled
MAX_SENTENCE_GLOSSES = 60  # a stream sentence ends here without a pause (corrector: its limit)
MAX_FILL_SECONDS = 2.0  # frame-rate adaptation: a longer gap between frames restarts the clock


class Recognizer:
    """A loaded recogniser (and corrector); see the module doc. Not thread-safe."""

    def __init__(self, options: RecognizerOptions, runtime: Runtime, corrector: Any = None) -> None:
        description = runtime.description
        if description is None or description.kind != "student" or description.temporal is None:
            raise FormatError(runtime.model_path, "not a recogniser model with a sidecar")
        self._options = options
        self._runtime: Runtime | None = runtime
        self._description: ModelDescription = description
        self._labels = tuple(description.vocab().glosses)
        self._preset = description.feature_preset()
        self._logits = description.output_kind == "logits"
        self._fps = description.frame_rate  # the model's clock
        self._plan = WindowPlan.for_model(
            description.temporal, options.window_frames, options.window_hop
        )
        self._corrector = corrector
        # a tuned gloss LM in the model folder (lm.arpa, `edge-slr evaluate --tune-lm`) joins
        # the beam search
        fused = load_fused_lm(options.model_dir) if options.beam_width > 1 else None
        self._beam_options = fused.beam_options(self._labels) if fused is not None else {}
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

    # -- properties -----------------------------------------------------------------------------
    @property
    def options(self) -> RecognizerOptions:
        return self._options

    @property
    def description(self) -> ModelDescription:
        return self._description

    @property
    def runtime(self) -> Runtime:
        self._check_open()
        assert self._runtime is not None
        return self._runtime

    def _check_open(self) -> None:
        if self._runtime is None:
            raise InputError("this Recognizer is closed; create a new one")

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    @property
    def has_corrector(self) -> bool:
        return self._corrector is not None

    @property
    def window_plan(self) -> WindowPlan:
        return self._plan

    @property
    def fps(self) -> float:
        """The model's frame rate (its sidecar's training fps); input is resampled to it."""
        return self._fps

    @property
    def corrector(self) -> Any:
        """The corrector (a RuntimeCorrector or a torch Corrector), or None."""
        return self._corrector

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

    # -- live stream (running_mode "live_stream"; edge_slr.recognition.live) --------------------
    def recognize_async(self, rgb: np.ndarray, timestamp_ms: int) -> None:
        """Queue one RGB frame ``(H, W, 3)`` uint8 and return at once (running_mode
        "live_stream"). Results come to ``options.result_callback(result, info)`` on a worker
        thread: landmark extraction and recognition run on two workers that overlap; frames that
        extraction cannot take in time are dropped and counted (``drop_policy``). See
        :mod:`edge_slr.recognition.live`; :meth:`finish` waits for the queued frames and ends
        the stream."""
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
            from edge_slr.recognition.live import LiveRecognizer

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
    def _check_features(self, features: Any) -> np.ndarray:
        width = self._description.feature_dim
        if not isinstance(features, np.ndarray) or features.ndim != 2 or features.shape[1] != width:
            shape = getattr(features, "shape", type(features).__name__)
            raise InputError(f"features must be a (T, {width}) array, got {shape}")
        self._check_length(len(features))
        return features

    def _check_length(self, frames: int) -> None:
        needed = self._plan.temporal.min_input_length
        if frames < needed:
            raise InputError(
                f"{frames} frames are too few to recognise: this model needs at least {needed} "
                f"(its receptive field, {needed / self._fps:.2f} s at {self._fps:g} fps)"
            )

    def _features(
        self, data: np.ndarray, reference: Reference | None = None
    ) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        return window_features(self._preset, data, reference), ms_since(started)

    def _log_probs(
        self, features: np.ndarray, data: np.ndarray | None = None
    ) -> tuple[np.ndarray, Timings]:
        """Log-probabilities ``(T', V)``; with the landmarks ``data``, blank where nobody is."""
        started = time.perf_counter()
        out = self.runtime.run(features[None])[0]
        inference = ms_since(started)
        started = time.perf_counter()
        lp = log_softmax(out) if self._logits else out.astype(np.float64)
        if data is not None:
            lp = blank_where_nobody(lp, (data[..., 3] > 0).any(axis=1), self._plan)
        return lp, Timings(inference_ms=inference, decoding_ms=ms_since(started))

    def decode(self, log_probs: np.ndarray) -> DecodeResult:
        """CTC decoding of ``(T', V)`` log-probabilities with this recogniser's options."""
        self._check_open()
        if self._options.beam_width > 1:
            return beam_search(
                log_probs, self._options.beam_width, labels=self._labels, **self._beam_options
            )
        return greedy_decode(log_probs, labels=self._labels)

    def _max_fill(self) -> int:
        return max(1, round(MAX_FILL_SECONDS * self._fps))

    def _new_clock(self) -> FrameRateAdapter:
        return FrameRateAdapter(self._fps, self._max_fill())

    def _new_stream(self, sentences: bool = True) -> LandmarkStream:
        options, plan = self._options, self._plan
        pause_steps = math.ceil(options.pause_ms / (plan.stride * 1000.0 / self._fps))
        limit = getattr(self._corrector, "max_glosses", None) or MAX_SENTENCE_GLOSSES
        decoder = StreamDecoder(
            self.decode,
            self._labels,
            pause_steps=max(1, pause_steps) if sentences else None,
            max_sentence_glosses=min(limit, MAX_SENTENCE_GLOSSES) if sentences else None,
        )
        return LandmarkStream(
            plan,
            decoder,
            self._window_log_probs,
            options.stream_normalization,
            options.normalization_history,
        )

    def _window_log_probs(
        self, data: np.ndarray, reference: Reference | None
    ) -> tuple[np.ndarray, Timings]:
        if not (data[..., 3] > 0).any():
            # Nobody in view for a whole window: nothing is being signed (blank everywhere).
            lp = np.full((self._plan.steps(len(data)), len(self._labels)), -1e9)
            lp[:, 0] = 0.0
            return lp, Timings()
        features, features_ms = self._features(data, reference)
        lp, timings = self._log_probs(features, data)
        return lp, timings + Timings(features_ms=features_ms)

    def _corrected(
        self,
        glosses: tuple[RecognizedGloss, ...],
        timings: Timings,
        frames: int,
        final: bool = True,
    ) -> RecognitionResult:
        corrected, correction = None, None
        if self._corrector is not None and final:
            started = time.perf_counter()
            correction = self._corrector.correct([g.gloss for g in glosses])
            corrected = tuple(correction.glosses)
            timings += Timings(correction_ms=ms_since(started))
        return RecognitionResult(
            glosses, corrected, timings, frames, final=final, stable=len(glosses),
            correction=correction,
        )  # fmt: skip

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
