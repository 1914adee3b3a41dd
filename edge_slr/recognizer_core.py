"""The loaded recogniser model (and corrector) and its per-window computation.

:class:`RecognizerCore` holds what :class:`edge_slr.recognizer.Recognizer` loaded (runtime,
sidecar description, window plan, corrector) and turns landmarks or features into
log-probabilities, decodes and corrected results; ``Recognizer`` adds the public API over
recordings, videos and live frames on top of it.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_slr.decoding import DecodeResult, beam_search, greedy_decode, log_softmax
from edge_slr.errors import FormatError, InputError
from edge_slr.landmarks.layout import PART_SLICES
from edge_slr.recognizer_options import RecognizerOptions
from edge_slr.results import RecognitionResult, RecognizedGloss, Timings, ms_since
from edge_slr.streaming import (
    FrameRateAdapter,
    LandmarkStream,
    Reference,
    StreamDecoder,
    WindowPlan,
    blank_where_nobody,
    window_features,
)

if TYPE_CHECKING:
    from edge_slr.runtimes import Runtime
    from edge_slr.sidecar import ModelDescription

MAX_SENTENCE_GLOSSES = 60  # a stream sentence ends here without a pause (corrector: its limit)
MAX_FILL_SECONDS = 2.0  # frame-rate adaptation: a longer gap between frames restarts the clock
# Landmarks that cannot come from a person filmed (landmark_warnings): most detected hand points
# lie OUTSIDE_MARGIN outside the image (pixel units, say), or the median point moves more than
# MAX_MEDIAN_JUMP of the image between consecutive frames: uniform random points move about half
# of it, the 16 real MediaPipe recordings in ../shared/data 0.0005 to 0.004 (p99 0.03 to 0.14).
MAX_MEDIAN_JUMP = 0.2
OUTSIDE_MARGIN = 0.5


def landmark_warnings(data: np.ndarray) -> tuple[str, ...]:
    """Why ``(T, 543, 4)`` landmarks hold nothing usable to recognise, if they do.

    Usable means: a person (any part detected) in some frame, a hand in some frame, and
    landmarks a camera could have produced: detected points that move less than
    :data:`MAX_MEDIAN_JUMP` of the image between frames (median over points) and hand points
    mostly within the image (normalised coordinates, :data:`OUTSIDE_MARGIN` of slack).
    """
    frames = len(data)
    seen = data[..., 3] > 0
    if not seen.any():
        return (f"no person was detected in any of the {frames} frames: nothing to recognise",)
    hands = np.concatenate([seen[:, PART_SLICES[h]] for h in ("left_hand", "right_hand")], axis=1)
    if not hands.any():
        return (
            f"no hand was detected in any of the {frames} frames: signs cannot be recognised "
            "without hands, so the glosses are not a recognition of signing",
        )
    points = np.concatenate([data[:, PART_SLICES[h], :2] for h in ("left_hand", "right_hand")], 1)
    outside = ((points < -OUTSIDE_MARGIN) | (points > 1 + OUTSIDE_MARGIN)).any(axis=-1)[hands]
    if outside.mean() > 0.5:
        return (
            f"{outside.mean():.0%} of the detected hand points lie outside the image: expected "
            "coordinates normalised to the image (0..1), so the glosses are not a recognition "
            "of signing",
        )
    both = seen[1:] & seen[:-1]
    if both.any():
        jumps = np.linalg.norm(data[1:, :, :2] - data[:-1, :, :2], axis=-1)[both]
        jump = float(np.median(jumps))
        if jump > MAX_MEDIAN_JUMP:
            return (
                f"the landmarks jump by {jump:.2f} of the image between frames (median point; "
                f"a filmed person moves less than {MAX_MEDIAN_JUMP}): they look random, so the "
                "glosses are not a recognition of signing",
            )
    return ()


class RecognizerCore:
    """A loaded recogniser (and corrector): model calls, decoding, correction. Not thread-safe."""

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
            return beam_search(log_probs, self._options.beam_width, labels=self._labels)
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
