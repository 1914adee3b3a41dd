"""What a Recognizer is told and given: its options, and the checks of its landmark input.

:class:`RecognizerOptions` is validated on construction; :func:`check_fps` and
:func:`check_landmarks` reject malformed input with what was wrong; :func:`landmark_warnings`
says when well-formed landmarks still hold nothing to recognise (nobody, no hands, points no
camera could have produced).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from edge_slr.errors import InputError
from edge_slr.landmarks.extract import HolisticOptions
from edge_slr.landmarks.layout import NUM_POINTS, PART_SLICES
from edge_slr.landmarks.sequence import LandmarkSequence, as_landmark_array
from edge_slr.recognition.stream import DEFAULT_HISTORY, STREAM_NORMALIZATIONS
from edge_slr.sidecar import PRECISIONS

# A recogniser's CTC beam: the best labelling stops changing after a few dozen (KD-MSLRT decodes
# with 10), while the cost grows with the width (about 0.01 s per output step at 256 here), so a
# typo like 1000000 is an error rather than minutes of decoding.
MAX_BEAM_WIDTH = 256
# Frame rates: cameras and videos run at 5..240 fps; below one frame a second no sign can be
# followed (and 1e-9 puts frames years apart), above 1000 frames fall within one millisecond,
# the timestamps' resolution.
MIN_FPS, MAX_FPS = 1.0, 1000.0
# "video": frames one call at a time (process_frame); "live_stream": recognize_async hands each
# frame to a pipeline whose workers extract and recognise while the caller captures (live.py)
RUNNING_MODES = ("video", "live_stream")
DROP_POLICIES = ("skip-oldest", "block")
# Landmarks that cannot come from a person filmed (landmark_warnings): most detected hand points
# lie OUTSIDE_MARGIN outside the image (pixel units, say), or the median point moves more than
# MAX_MEDIAN_JUMP of the image between consecutive frames: uniform random points move about half
# of it, 16 real MediaPipe recordings of signing 0.0005 to 0.004 (p99 0.03 to 0.14).
MAX_MEDIAN_JUMP = 0.2
OUTSIDE_MARGIN = 0.5


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
    running_mode: str = "video"  # "live_stream": recognize_async + result_callback (live.py)
    result_callback: Any = None  # live_stream: called (result, LiveInfo) on a worker thread
    drop_policy: str = "skip-oldest"  # live_stream: when extraction falls behind ("block": wait)

    def __post_init__(self) -> None:
        if self.running_mode not in RUNNING_MODES:
            raise InputError(
                f"running_mode must be one of {RUNNING_MODES}, got {self.running_mode!r}"
            )
        if self.result_callback is not None and not callable(self.result_callback):
            raise InputError(
                f"result_callback must be callable, got {type(self.result_callback).__name__}"
            )
        if self.running_mode == "live_stream" and self.result_callback is None:
            raise InputError("running_mode='live_stream' needs result_callback=fn(result, info)")
        if self.drop_policy not in DROP_POLICIES:
            raise InputError(
                f"drop_policy must be one of {DROP_POLICIES}, got {self.drop_policy!r}"
            )
        if not isinstance(self.model_dir, (str, os.PathLike)) or not str(self.model_dir):
            raise InputError(
                f"model_dir must be a model directory (str or Path), got {self.model_dir!r}"
            )
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
        if self.beam_width > MAX_BEAM_WIDTH:
            raise InputError(
                f"beam_width must be at most {MAX_BEAM_WIDTH} (wider beams only cost time), got "
                f"{self.beam_width!r}"
            )
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
        if self.fps is not None:
            check_fps(self.fps)
        value = self.pause_ms
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise InputError(f"pause_ms must be a positive number, got {value!r}")
        if self.extractor is not None and not isinstance(self.extractor, HolisticOptions):
            raise InputError(
                f"extractor must be HolisticOptions, got {type(self.extractor).__name__}"
            )


def check_fps(value: Any, name: str = "fps") -> float:
    """``value`` as a frame rate in [MIN_FPS, MAX_FPS], or InputError naming ``name``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
        or not MIN_FPS <= value <= MAX_FPS
    ):
        raise InputError(
            f"{name} must be a frame rate in [{MIN_FPS:g}, {MAX_FPS:g}] frames/s, got {value!r}"
        )
    return float(value)


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
