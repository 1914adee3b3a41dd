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
``NAME.json`` (vocabulary, feature preset, temporal spec, engine), optionally a corrector: a
corrector folder ``DIR/corrector/`` (``corrector.pt``, as ``edge-slr train-corrector`` writes it;
needs torch). The recogniser is chosen by :func:`edge_slr.runtimes.choose_model` (runtime and
precision options). A student checkpoint ``.pt`` may be given instead of a directory (the torch
reference). Long inputs are recognised in overlapping windows (:mod:`edge_slr.streaming`), so
memory stays bounded however long the input is.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_slr.decoding import DecodeResult, beam_search, greedy_decode, log_softmax
from edge_slr.errors import FormatError, InputError
from edge_slr.landmarks.extract import HolisticOptions
from edge_slr.landmarks.layout import NUM_POINTS
from edge_slr.landmarks.sequence import LandmarkSequence, as_landmark_array
from edge_slr.sidecar import PRECISIONS
from edge_slr.streaming import (
    LandmarkStream,
    RecognizedGloss,
    Sentence,
    StepTimes,
    StreamDecoder,
    Timings,
    WindowPlan,
    blank_where_nobody,
    glosses_from,
)

if TYPE_CHECKING:
    from edge_slr.runtimes import Runtime
    from edge_slr.sidecar import ModelDescription

logger = logging.getLogger(__name__)

CORRECTOR_FOLDER = "corrector"
CORRECTOR_CHECKPOINT = "corrector.pt"
HISTORY = 100  # finished stream sentences kept for Recognizer.sentences
MAX_SENTENCE_GLOSSES = 60  # a stream sentence ends here without a pause (corrector: its limit)


@dataclass(frozen=True)
class RecognizerOptions:
    """How a Recognizer loads and runs its models (validated on construction)."""

    model_dir: Path
    runtime: str | None = None  # None: chosen from the models and installed engines
    threads: int | None = None  # engine intra-op threads; None: the engine's default
    precision: str | None = None  # "fp32", "fp16", "int8": which converted model; None: any
    beam_width: int = 1  # CTC decoding: 1 = greedy, more = prefix beam search
    correct: bool = True  # run the corrector when the model directory has one
    fps: float = 25.0  # frame rate of landmark arrays given without one (and of streams)
    window_frames: int = 128  # streaming / long inputs: frames per window
    window_hop: int = 32  # frames between window starts
    pause_ms: float = 1000.0  # streaming: this long without a gloss ends a sentence
    max_single_pass_frames: int = 4500  # longer offline inputs go through the windows
    extractor: HolisticOptions | None = None  # MediaPipe settings (video mode is forced)
    runtime_options: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"hint": "THROUGHPUT"}

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_dir", Path(self.model_dir))
        object.__setattr__(self, "runtime_options", MappingProxyType(dict(self.runtime_options)))
        if self.runtime is not None:
            from edge_slr.runtimes import get_runtime_class

            get_runtime_class(self.runtime)  # InputError naming the known runtimes
        if self.precision is not None and self.precision not in PRECISIONS:
            raise InputError(
                f"precision must be one of {PRECISIONS} or None, got {self.precision!r}"
            )
        _positive_int("beam_width", self.beam_width)
        _positive_int("window_frames", self.window_frames)
        _positive_int("window_hop", self.window_hop)
        _positive_int("max_single_pass_frames", self.max_single_pass_frames)
        if self.threads is not None:
            _positive_int("threads", self.threads)
        for name in ("fps", "pause_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InputError(f"{name} must be a positive number, got {value!r}")
        if self.extractor is not None and not isinstance(self.extractor, HolisticOptions):
            raise InputError(
                f"extractor must be HolisticOptions, got {type(self.extractor).__name__}"
            )


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class RecognitionResult:
    """Recognised glosses (with scores and spans), the corrected sentence and the timings.

    ``final`` is False for a streaming partial hypothesis: then only the first ``stable``
    glosses are settled, the rest may still change. ``corrected`` is None when no corrector ran.
    """

    glosses: tuple[RecognizedGloss, ...]
    corrected: tuple[str, ...] | None
    timings: Timings
    num_frames: int
    final: bool = True
    stable: int = 0
    correction: Any = None  # edge_slr.training.corrector.Correction (stage details)
    # what recognize_video / process_frame extracted (for overlays); not compared, not in to_dict()
    landmarks: LandmarkSequence | None = field(default=None, repr=False, compare=False)

    @property
    def recognized(self) -> tuple[str, ...]:
        return tuple(g.gloss for g in self.glosses)

    @property
    def sentence(self) -> str:
        """The corrected glosses when a corrector ran, else the recognised ones."""
        return " ".join(self.corrected if self.corrected is not None else self.recognized)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sentence": self.sentence,
            "recognized": list(self.recognized),
            "corrected": None if self.corrected is None else list(self.corrected),
            "glosses": [g.to_dict() for g in self.glosses],
            "final": self.final,
            "stable": self.stable,
            "num_frames": self.num_frames,
            "timings": self.timings.to_dict(),
            "correction": None if self.correction is None else self.correction.to_dict(),
        }


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
        self._plan = WindowPlan.for_model(
            description.temporal, options.window_frames, options.window_hop
        )
        self._corrector = corrector
        self._extractor: Any = None
        self._stream = self._new_stream()
        self._history: deque[RecognitionResult] = deque(maxlen=HISTORY)

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
            corrector = (
                load_corrector(options.model_dir, runtime.description) if options.correct else None
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
        if self._runtime is None:
            raise InputError("this Recognizer is closed; create a new one")
        return self._runtime

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    @property
    def has_corrector(self) -> bool:
        return self._corrector is not None

    @property
    def window_plan(self) -> WindowPlan:
        return self._plan

    # -- offline --------------------------------------------------------------------------------
    def recognize_landmarks(
        self, landmarks: LandmarkSequence | np.ndarray, fps: float | None = None
    ) -> RecognitionResult:
        """Recognise a whole ``(T, 543, 4)`` landmark recording (array or LandmarkSequence)."""
        if isinstance(landmarks, LandmarkSequence):
            data, fps = landmarks.data, fps or landmarks.fps
        else:
            data = check_landmarks(landmarks)
        fps = float(fps or self._options.fps)
        return self._recognize(data, np.arange(len(data)) * (1000.0 / fps), Timings())

    def recognize_video(self, path: str | Path, fps: float | None = None) -> RecognitionResult:
        """Extract landmarks with MediaPipe Holistic (video mode), then recognise them.

        InputError for a missing file or a video without a person, FormatError for one that
        does not decode.
        """
        started = time.perf_counter()
        sequence = self._video_extractor().extract_video(path, fps=fps)
        extraction = Timings(extraction_ms=_ms_since(started))
        times = np.arange(sequence.num_frames) * (1000.0 / sequence.fps)
        result = self._recognize(sequence.data, times, extraction)
        return replace(result, landmarks=sequence)

    def recognize_features(
        self, features: np.ndarray, fps: float | None = None
    ) -> RecognitionResult:
        """Recognise preset features ``(T, F)`` directly (no landmarks; single pass)."""
        features = self._check_features(features)
        fps = float(fps or self._options.fps)
        times = np.arange(len(features)) * (1000.0 / fps)
        lp, timings = self._log_probs(features)
        return self._finish_offline(lp, times, timings, len(features))

    # -- streaming ------------------------------------------------------------------------------
    def process_frame(self, rgb: np.ndarray, timestamp_ms: int) -> RecognitionResult:
        """Add one live RGB frame ``(H, W, 3)`` uint8; returns the current hypothesis.

        Timestamps are whole milliseconds and must strictly increase (call :meth:`reset` before
        an unrelated video). The result is partial (``final`` False) until a pause ends a
        sentence; then that sentence comes back once with ``final`` True and its correction.
        """
        self._stream.check_timestamp(timestamp_ms)
        started = time.perf_counter()
        points = self._video_extractor().extract_video_frame(rgb, int(timestamp_ms))
        extraction = Timings(extraction_ms=_ms_since(started))
        result = self._stream_result(*self._stream.add(points, timestamp_ms), extraction)
        # the frame's landmarks, for drawing (a one-frame sequence)
        return replace(result, landmarks=LandmarkSequence(points[None], self._options.fps))

    def process_landmarks(self, frame: np.ndarray, timestamp_ms: float) -> RecognitionResult:
        """Add one frame of landmarks ``(543, 4)`` (streaming without MediaPipe)."""
        self._stream.check_timestamp(timestamp_ms)
        if np.shape(frame) != (NUM_POINTS, 4):
            raise InputError(
                f"process_landmarks takes one frame ({NUM_POINTS}, 4), got shape {np.shape(frame)}"
            )
        points = check_landmarks(np.asarray(frame)[None])[0]
        return self._stream_result(*self._stream.add(points, timestamp_ms), Timings())

    def finish(self) -> RecognitionResult:
        """End the stream: recognise what is left and return it; the next frame starts anew."""
        glosses, timings = self._stream.finish()
        result = self._corrected(glosses, timings, self._stream.total)
        self._history.append(result)
        self._stream = self._new_stream()
        if self._extractor is not None:
            self._extractor.reset()
        return result

    def reset(self) -> None:
        """Forget the stream (frames, pending steps, sentences, tracking): start anew."""
        self._stream = self._new_stream()
        self._history.clear()
        if self._extractor is not None:
            self._extractor.reset()

    @property
    def sentences(self) -> tuple[RecognitionResult, ...]:
        """The stream's finished sentences so far (the last 100)."""
        return tuple(self._history)

    # -- life cycle -----------------------------------------------------------------------------
    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None
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
    def _video_extractor(self) -> Any:
        if self._runtime is None:
            raise InputError("this Recognizer is closed; create a new one")
        if self._extractor is None:
            from edge_slr.landmarks.extract import HolisticExtractor

            options = replace(self._options.extractor or HolisticOptions(), running_mode="video")
            self._extractor = HolisticExtractor.create_from_options(options)
        return self._extractor

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
                f"(its receptive field, {needed / self._options.fps:.2f} s at "
                f"{self._options.fps:g} fps)"
            )

    def _features(self, data: np.ndarray) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        return self._preset.features(data), _ms_since(started)

    def _log_probs(
        self, features: np.ndarray, data: np.ndarray | None = None
    ) -> tuple[np.ndarray, Timings]:
        """Log-probabilities ``(T', V)``; with the landmarks ``data``, blank where nobody is."""
        started = time.perf_counter()
        out = self.runtime.run(features[None])[0]
        inference = _ms_since(started)
        started = time.perf_counter()
        lp = log_softmax(out) if self._logits else out.astype(np.float64)
        if data is not None:
            lp = blank_where_nobody(lp, (data[..., 3] > 0).any(axis=1), self._plan)
        return lp, Timings(inference_ms=inference, decoding_ms=_ms_since(started))

    def decode(self, log_probs: np.ndarray) -> DecodeResult:
        """CTC decoding of ``(T', V)`` log-probabilities with this recogniser's options."""
        if self._options.beam_width > 1:
            return beam_search(log_probs, self._options.beam_width, labels=self._labels)
        return greedy_decode(log_probs, labels=self._labels)

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
        timings += Timings(decoding_ms=_ms_since(started))
        return self._corrected(glosses, timings, frames)

    def _recognize_windowed(
        self, data: np.ndarray, times: np.ndarray, timings: Timings
    ) -> RecognitionResult:
        """A long recording through the same windows as streaming, without sentence cuts."""
        glosses, cost = self._new_stream(sentences=False).recognize(data, times)
        return self._corrected(glosses, timings + cost, len(data))

    def _new_stream(self, sentences: bool = True) -> LandmarkStream:
        options, plan = self._options, self._plan
        pause_steps = math.ceil(options.pause_ms / (plan.stride * 1000.0 / options.fps))
        limit = getattr(self._corrector, "max_glosses", None) or MAX_SENTENCE_GLOSSES
        decoder = StreamDecoder(
            self.decode,
            self._labels,
            pause_steps=max(1, pause_steps) if sentences else None,
            max_sentence_glosses=min(limit, MAX_SENTENCE_GLOSSES) if sentences else None,
        )
        return LandmarkStream(plan, decoder, self._window_log_probs)

    def _window_log_probs(self, data: np.ndarray) -> tuple[np.ndarray, Timings]:
        if not (data[..., 3] > 0).any():
            # Nobody in view for a whole window: nothing is being signed (blank everywhere).
            lp = np.full((self._plan.steps(len(data)), len(self._labels)), -1e9)
            lp[:, 0] = 0.0
            return lp, Timings()
        features, features_ms = self._features(data)
        lp, timings = self._log_probs(features, data)
        return lp, timings + Timings(features_ms=features_ms)

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
            timings += Timings(correction_ms=_ms_since(started))
        return RecognitionResult(
            glosses, corrected, timings, frames, final=final, stable=len(glosses),
            correction=correction,
        )  # fmt: skip


def check_landmarks(landmarks: Any) -> np.ndarray:
    """A ``(T, 543, 4)`` float32 array, or InputError saying what was wrong with the input."""
    if isinstance(landmarks, LandmarkSequence):
        return landmarks.data
    if not isinstance(landmarks, np.ndarray):
        raise InputError(
            f"landmarks must be a LandmarkSequence or a (T, {NUM_POINTS}, 4) numpy array, got "
            f"{type(landmarks).__name__}"
        )
    if landmarks.dtype.kind not in "fiu":
        raise InputError(f"landmarks must be a numeric array, got dtype {landmarks.dtype}")
    return as_landmark_array(landmarks, "landmarks")


def find_corrector(model_dir: Path) -> Path | None:
    """The corrector folder of a model directory: ``DIR/corrector/`` or ``DIR`` itself."""
    if not model_dir.is_dir():
        return None
    for folder in (model_dir / CORRECTOR_FOLDER, model_dir):
        if (folder / CORRECTOR_CHECKPOINT).is_file():
            return folder
    return None


def load_corrector(model_dir: Path, description: ModelDescription | None) -> Any:
    """The corrector of ``model_dir`` (None when it has none).

    A converted corrector (a sidecar of kind "corrector") is not run by this version: the
    error says so rather than silently skipping correction.
    """
    from edge_slr.runtimes import find_models

    folder = find_corrector(model_dir)
    if folder is None:
        if model_dir.is_dir() and find_models(model_dir, "corrector"):
            raise FormatError(
                model_dir,
                "holds a converted corrector, which this Recognizer cannot run yet; put the "
                f"corrector folder in {model_dir / CORRECTOR_FOLDER} or pass correct=False",
            )
        return None
    from edge_slr.training.corrector import load_corrector as load_torch_corrector

    corrector = load_torch_corrector(folder)  # MissingDependencyError without torch
    if description is not None:
        ours, theirs = set(description.vocab().glosses), set(corrector.vocab.base.glosses)
        unknown = len(ours - theirs - {"<blank>"})
        if unknown:
            logger.warning(
                "%d of the recogniser's glosses are unknown to the corrector in %s "
                "(they pass through it unchanged)", unknown, folder,
            )  # fmt: skip
    return corrector


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
