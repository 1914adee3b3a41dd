"""Options of :class:`edge_slr.recognizer.Recognizer` and its landmark input checks.

:mod:`edge_slr.recognizer` re-exports these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from edge_slr.errors import InputError
from edge_slr.landmarks.extract import HolisticOptions
from edge_slr.landmarks.layout import NUM_POINTS
from edge_slr.landmarks.sequence import LandmarkSequence, as_landmark_array
from edge_slr.sidecar import PRECISIONS
from edge_slr.stream_input import DEFAULT_HISTORY, STREAM_NORMALIZATIONS


@dataclass(frozen=True)
class RecognizerOptions:
    """How a Recognizer loads and runs its models (validated on construction)."""

    model_dir: Path
    runtime: str | None = None  # None: chosen from the models and installed engines
    threads: int | None = None  # engine intra-op threads; None: the engine's default
    precision: str | None = None  # "fp32", "fp16", "int8": which converted model; None: any
    beam_width: int = 1  # CTC decoding: 1 = greedy, more = prefix beam search
    correct: bool = True  # run the corrector when the model directory has one
    fps: float | None = None  # frame rate of landmark arrays given without one; None: the model's
    window_frames: int = 128  # streaming / long inputs: frames per window
    window_hop: int = 32  # frames between window starts
    pause_ms: float = 1000.0  # streaming: this long without a gloss ends a sentence
    max_single_pass_frames: int = 4500  # longer offline inputs go through the windows
    extractor: HolisticOptions | None = None  # MediaPipe settings (video mode is forced)
    runtime_options: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"hint": "THROUGHPUT"}
    # streams: "running" normalises every window by the stream's shoulder medians so far (the last
    # normalization_history frames); "window" by the window's own (before running medians)
    stream_normalization: str = "running"
    normalization_history: int = DEFAULT_HISTORY

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
        _positive_int("normalization_history", self.normalization_history)
        if self.stream_normalization not in STREAM_NORMALIZATIONS:
            raise InputError(
                f"stream_normalization must be one of {STREAM_NORMALIZATIONS}, got "
                f"{self.stream_normalization!r}"
            )
        if self.threads is not None:
            _positive_int("threads", self.threads)
        for name in ("fps", "pause_ms"):
            value = getattr(self, name)
            if name == "fps" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InputError(f"{name} must be a positive number, got {value!r}")
        if self.extractor is not None and not isinstance(self.extractor, HolisticOptions):
            raise InputError(
                f"extractor must be HolisticOptions, got {type(self.extractor).__name__}"
            )


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")


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
