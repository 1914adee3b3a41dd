"""MediaPipe Holistic landmark extraction in the canonical 543-point layout.

In the MediaPipe Tasks style: options in a frozen dataclass, an extractor created from them, used
as a context manager, with one method per running mode::

    options = HolisticOptions(running_mode="video")
    with HolisticExtractor.create_from_options(options) as extractor:
        seq = extractor.extract_video("clip.mp4")          # LandmarkSequence (T, 543, 4)
        # or frame by frame: extractor.extract_video_frame(rgb, timestamp_ms) -> (543, 4)

Engines, chosen by ``HolisticOptions(engine=...)``: ``"mediapipe"`` (default) runs MediaPipe's
own graph through one of the two backends below; ``"openvino"``, ``"openvino-int8"``,
``"litert"`` and ``"onnxruntime"`` run the same Holistic models through edge-slr's runtimes with
the graph's per-frame logic in numpy/OpenCV (:mod:`edge_slr.landmarks.holistic`: same interface,
errors and output; ``create_from_options`` returns its extractor), reading the model files from
``model_dir`` or the installed mediapipe wheel. The two MediaPipe backends:

- ``solutions`` (default): ``mediapipe.solutions.holistic`` of mediapipe 0.10.21, whose wheel
  ships the models, so it runs offline. Only ``model_complexity=1`` is shipped; 0 and 2 make
  mediapipe download a pose model at first use, so they need ``pose_model_path`` (a local
  ``pose_landmark_lite.tflite``/``pose_landmark_heavy.tflite``) unless already installed.
- ``tasks``: ``mediapipe.tasks.python.vision.HolisticLandmarker`` when ``task_model_path`` names
  a ``holistic_landmarker.task`` bundle (mediapipe releases without ``solutions`` need this).

Output rows: x, y (normalised to the image width/height), z (MediaPipe's relative depth) and a
confidence: the pose visibility for pose points, 1 for detected face/hand points and 0 (with
x = y = z = 0) for every point of a part that was not found in that frame. A detected pose point
keeps at least ``mediapipe_backends.MIN_DETECTED_CONFIDENCE`` (1e-6), so it is never mistaken for
a missing one.

No-person policy: frames without any detection stay in the sequence (all confidence 0), so time
stays aligned with the video. When *no* frame of a video shows a person, :meth:`extract_video`
raises :class:`NoPersonDetectedError` (``on_no_person="raise"``, the default) or returns the
all-zero sequence (``on_no_person="keep"``); ``metadata["frames_with_person"]`` counts them.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr.errors import InputError
from edge_slr.landmarks.layout import PART_SLICES
from edge_slr.landmarks.mediapipe_backends import (
    Backend,
    SolutionsBackend,
    TasksBackend,
    import_mediapipe,
)
from edge_slr.landmarks.sequence import LandmarkSequence
from edge_slr.landmarks.video import open_frames

logger = logging.getLogger(__name__)

RUNNING_MODES = ("image", "video")
NO_PERSON_POLICIES = ("raise", "keep")
# "mediapipe": MediaPipe's own Holistic graph; the others run the same models through
# edge_slr.runtimes (edge_slr.landmarks.holistic; its models.ENGINES lists them too).
ENGINES = ("mediapipe", "openvino", "openvino-int8", "litert", "onnxruntime")
HAND_MODELS = ("full", "lite")  # edge-slr engines' hand model (holistic.models.HAND_MODELS)
# engine="auto" takes the first of these whose runtime is installed (with the model files in
# model_dir or the mediapipe wheel). Measured on a 2-core AVX2 AMD EPYC
# (benchmarks/results/extraction_engines.md): LiteRT 16-17 frames/s at 1 thread and 24-25 at 2,
# OpenVINO FP32 16 and 16-18, with LiteRT closer to the graph (left hand 0.953 vs 0.907 on the
# AUTSL clip). INT8 and ONNX Runtime need a build step with the convert extra
# (edge_slr.landmarks.holistic.models.build_holistic_models), so auto never picks them.
AUTO_ENGINES = (
    ("litert", "ai_edge_litert"),
    ("litert", "tflite_runtime"),
    ("openvino", "openvino"),
)


class NoPersonDetectedError(InputError):
    """Not a single frame of the input showed a person (no pose, face or hand was found)."""


@dataclass(frozen=True)
class HolisticOptions:
    """How MediaPipe Holistic runs. Paths may be given as str; they are stored as Path."""

    running_mode: str = "video"  # "video": track across frames; "image": every frame alone
    model_complexity: int = 1  # pose model 0 (lite), 1 (full, shipped) or 2 (heavy)
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    smooth_landmarks: bool = True  # video mode only: filter jitter across frames
    refine_face_landmarks: bool = False  # refined eyes/lips; the 10 iris points are dropped
    pose_model_path: Path | None = None  # local lite/heavy pose model for complexity 0 or 2
    task_model_path: Path | None = None  # holistic_landmarker.task: use the Tasks API
    # Which engine runs the Holistic models: MediaPipe's graph, or one of edge-slr's runtimes
    # (edge_slr.landmarks.holistic), which read the model files from model_dir or the wheel.
    engine: str = "mediapipe"
    model_dir: Path | None = None  # the Holistic .tflite files (device installs without mediapipe)
    threads: int | None = 1  # engine threads (edge-slr engines; the graph picks its own)
    # edge-slr engines: threads for the hands and face of one frame (2 overlaps them on a
    # 2-core machine: the live mode's setting; 1 runs them in turn). Not used by the graph.
    part_workers: int = 1
    # edge-slr engines: "full" (the graph's hand model) or "lite" (the wheel's lighter one:
    # about half the hand cost, less accurate; holistic.models.HAND_MODELS)
    hand_model: str = "full"

    def __post_init__(self) -> None:
        if self.engine == "auto":
            object.__setattr__(self, "engine", auto_engine(self.model_dir))
        if self.engine not in ENGINES:
            raise InputError(f"engine must be one of {ENGINES} or 'auto', got {self.engine!r}")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise InputError(f"threads must be a positive int or None, got {self.threads!r}")
        check_part_workers(self.part_workers)
        if self.hand_model not in HAND_MODELS:
            raise InputError(f"hand_model must be one of {HAND_MODELS}, got {self.hand_model!r}")
        if self.hand_model != "full" and self.engine == "mediapipe":
            raise InputError(
                "hand_model='lite' runs on the edge-slr engines only (MediaPipe's Holistic graph "
                "runs its full hand model); choose engine= one of them"
            )
        if self.running_mode not in RUNNING_MODES:
            raise InputError(
                f"running_mode must be one of {RUNNING_MODES}, got {self.running_mode!r}"
            )
        if isinstance(self.model_complexity, bool) or self.model_complexity not in (0, 1, 2):
            raise InputError(f"model_complexity must be 0, 1 or 2, got {self.model_complexity!r}")
        for name in ("min_detection_confidence", "min_tracking_confidence"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"{name} must be a number in [0, 1], got {value!r}")
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {value!r}")
        for name in ("smooth_landmarks", "refine_face_landmarks"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("pose_model_path", "task_model_path", "model_dir"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        if self.pose_model_path is not None and self.model_complexity == 1:
            raise InputError(
                "pose_model_path is for model_complexity 0 or 2 (complexity 1 ships with "
                "mediapipe); got it with model_complexity=1"
            )
        if self.task_model_path is not None and self.model_complexity != 1:
            raise InputError(
                "model_complexity applies to the Solutions backend only (the .task bundle fixes "
                f"its models); got model_complexity={self.model_complexity} with task_model_path"
            )

    @property
    def backend(self) -> str:
        if self.engine != "mediapipe":
            return self.engine
        return "tasks" if self.task_model_path is not None else "solutions"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description, stored in the metadata of extracted sequences."""
        out = asdict(self)
        # Part workers only schedule the same computations (tested identical), so a dataset
        # resumed with another --part-workers is still the same dataset.
        del out["part_workers"]
        for name in ("pose_model_path", "task_model_path", "model_dir"):
            out[name] = None if out[name] is None else str(out[name])
        return out


def check_next_timestamp(timestamp_ms: object, last_ms: int | None, restart: str) -> int:
    """A video frame's timestamp, checked: whole ms, >= 0, above ``last_ms`` (None: the first
    frame); ``restart`` names the call that starts a new video, for the error."""
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, (int, np.integer)):
        raise InputError(f"timestamp_ms must be an int (milliseconds), got {timestamp_ms!r}")
    value = int(timestamp_ms)
    if value < 0:
        raise InputError(f"timestamp_ms must be >= 0, got {value}")
    if last_ms is not None and value <= last_ms:
        raise InputError(
            f"timestamps must strictly increase: got {value} ms after {last_ms} ms "
            f"(call {restart} before a new video)"
        )
    return value


def check_part_workers(value: object) -> int:
    """``part_workers`` (HolisticOptions, PipelineOptions): 1, 2 or 3 threads per frame."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3:
        raise InputError(f"part_workers must be 1, 2 or 3 (threads per frame), got {value!r}")
    return value


def auto_engine(model_dir: str | Path | None = None) -> str:
    """The fastest extraction engine that runs here (:data:`AUTO_ENGINES`), else "mediapipe"."""
    import importlib.util

    from edge_slr.landmarks.holistic.models import wheel_model_dir

    if model_dir is not None or wheel_model_dir() is not None:
        for engine, module in AUTO_ENGINES:
            if importlib.util.find_spec(module) is not None:
                return engine
    return "mediapipe"


class HolisticExtractor:
    """MediaPipe Holistic over images, video frames or whole videos (see the module doc)."""

    def __init__(self, options: HolisticOptions, backend: Backend, mediapipe_version: str):
        self._options = options
        self._backend: Backend | None = backend
        self._mediapipe_version = mediapipe_version
        self._last_timestamp_ms: int | None = None
        self._tracking = False  # whether the graph holds state from earlier video frames

    @classmethod
    def create_from_options(cls, options: HolisticOptions | None = None) -> HolisticExtractor:
        """Load the MediaPipe graph; errors say which model or mediapipe release is missing."""
        options = HolisticOptions() if options is None else options
        if not isinstance(options, HolisticOptions):
            raise InputError(f"options must be HolisticOptions, got {type(options).__name__}")
        if options.engine != "mediapipe":
            # imported here: the pipeline module builds on this one
            from edge_slr.landmarks.holistic.extractor import HolisticEngineExtractor

            return HolisticEngineExtractor.create_from_options(
                options, engine=options.engine, model_dir=options.model_dir, threads=options.threads
            )
        mp = import_mediapipe()
        version = str(getattr(mp, "__version__", "unknown"))
        if options.backend == "tasks":
            backend: Backend = TasksBackend(mp, options)
        else:
            backend = SolutionsBackend(mp, options)
        logger.debug("Holistic %s backend, mediapipe %s, %s", options.backend, version, options)
        return cls(options, backend, version)

    @property
    def options(self) -> HolisticOptions:
        return self._options

    def __enter__(self) -> HolisticExtractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the MediaPipe graph; the extractor cannot be used afterwards."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def reset(self) -> None:
        """Forget the tracking state and the last timestamp (start of a new, unrelated video)."""
        backend = self._live_backend()
        if self._tracking:  # only video mode keeps state; a fresh graph costs ~60 ms
            backend.reset()
            self._tracking = False
        self._last_timestamp_ms = None

    def extract_image(self, rgb: np.ndarray) -> np.ndarray:
        """Landmarks ``(543, 4)`` float32 of one independent image (running_mode "image")."""
        self._check_mode("image", "extract_image")
        return self._live_backend().process(check_rgb(rgb), None)

    def extract_video_frame(self, rgb: np.ndarray, timestamp_ms: int) -> np.ndarray:
        """Landmarks ``(543, 4)`` of the next video frame (running_mode "video").

        Timestamps are whole milliseconds and must strictly increase, as in MediaPipe Tasks.
        """
        self._check_mode("video", "extract_video_frame")
        timestamp_ms = self._next_timestamp(timestamp_ms)
        points = self._live_backend().process(check_rgb(rgb), timestamp_ms)
        self._last_timestamp_ms = timestamp_ms
        self._tracking = True
        return points

    def _next_timestamp(self, timestamp_ms: object) -> int:
        return check_next_timestamp(timestamp_ms, self._last_timestamp_ms, "reset()")

    def extract_video(
        self, source: str | Path, *, fps: float | None = None, on_no_person: str = "raise"
    ) -> LandmarkSequence:
        """A whole video file or frame folder as a LandmarkSequence (fps from the video).

        Tracking restarts at the first frame. In "image" mode every frame is processed alone.
        InputError/FormatError for missing or undecodable input; see the module doc for
        ``on_no_person``.
        """
        if on_no_person not in NO_PERSON_POLICIES:
            raise InputError(
                f"on_no_person must be one of {NO_PERSON_POLICIES}, got {on_no_person!r}"
            )
        frames = open_frames(source, fps)
        backend = self._live_backend()
        self.reset()
        rows, size = [], None
        try:
            for index, rgb in enumerate(frames.frames()):
                size = size or (int(rgb.shape[1]), int(rgb.shape[0]))
                video = self._options.running_mode == "video"
                rows.append(backend.process(rgb, _ms(index, frames.fps) if video else None))
                self._tracking = video
        finally:
            self.reset()  # the next call starts clean, whatever happened here
        data = np.stack(rows)
        with_person = int(np.count_nonzero(data[:, :, 3].max(axis=1) > 0))
        if with_person == 0 and on_no_person == "raise":
            raise NoPersonDetectedError(
                f"no person detected in any of the {len(rows)} frames of {frames.path} "
                "(pass on_no_person='keep' to get the all-zero sequence)"
            )
        metadata = self._metadata(frames.path, size, with_person, data)
        return LandmarkSequence(data=data, fps=float(frames.fps), metadata=metadata)

    def _metadata(
        self, path: Path, size: tuple[int, int] | None, with_person: int, data: np.ndarray
    ) -> dict[str, Any]:
        found = {
            part: int(np.count_nonzero(data[:, part_slice, 3].max(axis=1) > 0))
            for part, part_slice in PART_SLICES.items()
        }
        width, height = size or (0, 0)
        return {
            "source": str(path),
            "extractor": f"mediapipe-holistic-{self._options.backend}",
            "mediapipe_version": self._mediapipe_version,
            "options": self._options.to_dict(),
            "image_width": width,
            "image_height": height,
            "frames_with_person": with_person,
            "frames_with_part": found,
        }

    def _check_mode(self, expected: str, method: str) -> None:
        if self._options.running_mode != expected:
            raise InputError(
                f"{method}() needs running_mode={expected!r}; this extractor was created with "
                f"running_mode={self._options.running_mode!r}"
            )

    def _live_backend(self) -> Backend:
        if self._backend is None:
            raise InputError("this HolisticExtractor is closed; create a new one")
        return self._backend


def check_rgb(rgb: object) -> np.ndarray:
    """A C-contiguous ``(H, W, 3)`` uint8 array, or InputError saying what was received."""
    if not isinstance(rgb, np.ndarray):
        raise InputError(f"expected an RGB image as a numpy array, got {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise InputError(f"expected an RGB image of shape (H, W, 3), got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise InputError(f"expected an RGB image of dtype uint8, got {rgb.dtype}")
    return np.ascontiguousarray(rgb)


def _ms(index: int, fps: float) -> int:
    return int(round(index * 1000.0 / fps))


@dataclass(frozen=True)
class PartAgreement:
    """How one part of an extraction agrees with a reference recording of the same video."""

    part: str
    frames: int
    frames_found: int  # frames where the extraction has the part
    frames_reference: int  # frames where the reference has it
    agreement: float  # fraction of frames where both agree on found / not found
    mean_abs_error: float | None  # mean |dx|, |dy| (normalised) where both have it; None: never


def compare_landmarks(
    ours: LandmarkSequence,
    reference: LandmarkSequence,
    parts: tuple[str, ...] = ("left_hand", "right_hand"),
    min_confidence: float = 0.0,
) -> dict[str, PartAgreement]:
    """Per-part detection agreement and mean x, y error of ``ours`` against ``reference``.

    The error averages over points both recordings have with confidence > ``min_confidence``
    (e.g. 0.5 leaves out pose points MediaPipe itself deems invisible, such as hidden legs).
    """
    if ours.num_frames != reference.num_frames:
        raise InputError(
            f"cannot compare {ours.num_frames} frames with a {reference.num_frames}-frame "
            "reference; expected recordings of the same video"
        )
    result = {}
    for part in parts:
        found, expected = ours.present(part), reference.present(part)
        both = found & expected
        a, b = ours.part(part)[both], reference.part(part)[both]
        visible = (a[..., 3] > min_confidence) & (b[..., 3] > min_confidence)
        error = None
        if visible.any():
            error = float(np.abs(a[..., :2] - b[..., :2])[visible].mean())
        result[part] = PartAgreement(
            part,
            ours.num_frames,
            int(found.sum()),
            int(expected.sum()),
            float((found == expected).mean()),
            error,
        )
    return result
