"""MediaPipe glue for :mod:`edge_slr.landmarks.extract`: importing mediapipe, its two Holistic
APIs behind one small interface, and the conversion of their results to the 543-point layout.

``mediapipe.solutions.holistic`` (mediapipe <= 0.10.21, models in the wheel) and the Tasks
``HolisticLandmarker`` (a ``.task`` bundle) differ in how they take timestamps, how they report
"not found" (None vs an empty list) and how they reset; :class:`Backend` hides that.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_slr._optional import hold_native_log_filter, native_logs_filtered, require
from edge_slr.errors import FormatError, InputError, MissingDependencyError
from edge_slr.landmarks.layout import NUM_POINTS, PART_SLICES

if TYPE_CHECKING:
    from edge_slr.landmarks.extract import HolisticOptions

logger = logging.getLogger(__name__)

# Confidence 0 means "missing" in the layout, so a detected pose point whose visibility rounds
# to 0 keeps this floor (and its coordinates) instead of being erased.
MIN_DETECTED_CONFIDENCE = 1e-6
# Pose models that mediapipe 0.10.21 downloads instead of shipping (complexity -> file).
DOWNLOADED_POSE_MODELS = {0: "pose_landmark_lite.tflite", 2: "pose_landmark_heavy.tflite"}


def import_mediapipe() -> ModuleType:
    """``import mediapipe`` without dragging in TensorFlow.

    mediapipe 0.10.x imports ``tensorflow.tools.docs`` only for a doc decorator and falls back
    to a no-op when it is missing; with TensorFlow installed that costs ~5 s and ~1 GB per
    process. A ``None`` entry in sys.modules makes that one import fail fast; it is removed
    right after, so a later ``import tensorflow`` works normally.
    """
    blocker = "tensorflow.tools.docs"
    block = "tensorflow" not in sys.modules and blocker not in sys.modules
    if block:
        sys.modules[blocker] = None  # type: ignore[assignment]
    try:
        return require("mediapipe", "landmark extraction (MediaPipe Holistic)")
    finally:
        if block:
            sys.modules.pop(blocker, None)


def _part_rows(landmarks: Any, count: int, use_visibility: bool) -> np.ndarray | None:
    """``(count, 4)`` rows from a Solutions landmark list or a Tasks list; None when absent."""
    points = getattr(landmarks, "landmark", landmarks)  # Solutions: proto with .landmark
    if not points or len(points) < count:
        return None  # absent, or a truncated list that cannot be placed point by point
    rows = np.ones((count, 4), dtype=np.float32)
    for i, p in enumerate(points[:count]):
        rows[i, 0], rows[i, 1], rows[i, 2] = p.x, p.y, p.z
        if use_visibility and p.visibility is not None:
            rows[i, 3] = p.visibility
    rows[:, 3] = np.clip(rows[:, 3], MIN_DETECTED_CONFIDENCE, 1.0)
    return rows


def to_layout(pose: Any, face: Any, left_hand: Any, right_hand: Any) -> np.ndarray:
    """One frame's Holistic outputs as ``(543, 4)`` float32; absent parts stay all zero."""
    frame = np.zeros((NUM_POINTS, 4), dtype=np.float32)
    parts = {"pose": pose, "face": face, "left_hand": left_hand, "right_hand": right_hand}
    for name, landmarks in parts.items():
        part_slice = PART_SLICES[name]
        count = part_slice.stop - part_slice.start
        rows = _part_rows(landmarks, count, use_visibility=name == "pose")
        if rows is not None:
            frame[part_slice] = rows
    return frame


class Backend:
    """What the extractor needs from a MediaPipe API: process a frame, reset, close."""

    def process(self, rgb: np.ndarray, timestamp_ms: int | None) -> np.ndarray:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SolutionsBackend(Backend):
    """``mp.solutions.holistic.Holistic`` (mediapipe <= 0.10.21); timestamps are implicit."""

    def __init__(self, mp: ModuleType, options: HolisticOptions) -> None:
        solutions = getattr(mp, "solutions", None)
        holistic = getattr(solutions, "holistic", None)
        if holistic is None:
            raise MissingDependencyError(
                f"mediapipe {getattr(mp, '__version__', '?')} has no mediapipe.solutions.holistic "
                "(removed in 0.10.30). Install mediapipe==0.10.21 (pip install "
                "'edge-slr[mediapipe]' -c constraints.txt), or pass "
                "HolisticOptions(task_model_path=...) with a holistic_landmarker.task bundle"
            )
        ensure_pose_model(mp, options)
        self._holistic = holistic
        self._options = options
        # the graph's threads log whenever they like: filter for as long as it lives
        self._quiet = hold_native_log_filter()
        try:
            self._graph = self._create()
        except BaseException:
            self._quiet.release()
            raise

    def _create(self) -> Any:
        o = self._options
        with native_logs_filtered():  # the graph's C++ start-up lines (edge_slr._optional)
            return self._holistic.Holistic(
                static_image_mode=o.running_mode == "image",
                model_complexity=o.model_complexity,
                smooth_landmarks=o.smooth_landmarks,
                refine_face_landmarks=o.refine_face_landmarks,
                min_detection_confidence=float(o.min_detection_confidence),
                min_tracking_confidence=float(o.min_tracking_confidence),
            )

    def process(self, rgb: np.ndarray, timestamp_ms: int | None) -> np.ndarray:
        with native_logs_filtered():  # first frames log feedback-manager/projection warnings
            result = self._graph.process(rgb)
        return to_layout(
            result.pose_landmarks,
            result.face_landmarks,
            result.left_hand_landmarks,
            result.right_hand_landmarks,
        )

    def reset(self) -> None:
        # The graph keeps tracking state and an internal clock; a new graph costs ~60 ms.
        with native_logs_filtered():
            self._graph.close()
            self._graph = self._create()

    def close(self) -> None:
        with native_logs_filtered():
            self._graph.close()
        self._quiet.release()


class TasksBackend(Backend):
    """``mediapipe.tasks.python.vision.HolisticLandmarker`` with a ``.task`` bundle."""

    def __init__(self, mp: ModuleType, options: HolisticOptions) -> None:
        vision: Any = getattr(getattr(mp, "tasks", None), "vision", None)
        if getattr(vision, "HolisticLandmarker", None) is None:
            raise MissingDependencyError(
                f"mediapipe {getattr(mp, '__version__', '?')} has no Tasks HolisticLandmarker; "
                "install a mediapipe release that provides "
                "mediapipe.tasks.python.vision.HolisticLandmarker to use task_model_path"
            )
        path = options.task_model_path
        assert path is not None
        if not path.is_file():
            raise InputError(f"HolisticLandmarker model bundle not found: {path}")
        self._mp, self._vision, self._options = mp, vision, options
        self._quiet = hold_native_log_filter()
        try:
            self._landmarker = self._create()
        except BaseException:
            self._quiet.release()
            raise

    def _create(self) -> Any:
        o, vision = self._options, self._vision
        mode = vision.RunningMode.IMAGE if o.running_mode == "image" else vision.RunningMode.VIDEO
        task_options = vision.HolisticLandmarkerOptions(
            base_options=self._mp.tasks.BaseOptions(model_asset_path=str(o.task_model_path)),
            running_mode=mode,
            min_face_detection_confidence=o.min_detection_confidence,
            min_pose_detection_confidence=o.min_detection_confidence,
            min_face_landmarks_confidence=o.min_tracking_confidence,
            min_pose_landmarks_confidence=o.min_tracking_confidence,
            min_hand_landmarks_confidence=o.min_tracking_confidence,
        )
        try:
            with native_logs_filtered():
                return vision.HolisticLandmarker.create_from_options(task_options)
        except (RuntimeError, ValueError) as err:
            raise FormatError(
                o.task_model_path or "", f"not a usable HolisticLandmarker .task bundle: {err}"
            ) from None

    def process(self, rgb: np.ndarray, timestamp_ms: int | None) -> np.ndarray:
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        with native_logs_filtered():
            if timestamp_ms is None:
                result = self._landmarker.detect(image)
            else:
                result = self._landmarker.detect_for_video(image, timestamp_ms)
        return to_layout(
            result.pose_landmarks,
            result.face_landmarks,
            result.left_hand_landmarks,
            result.right_hand_landmarks,
        )

    def reset(self) -> None:
        with native_logs_filtered():  # Tasks timestamps cannot go back: a new video, a new task
            self._landmarker.close()
            self._landmarker = self._create()

    def close(self) -> None:
        self._landmarker.close()
        self._quiet.release()


def ensure_pose_model(mp: ModuleType, options: HolisticOptions) -> None:
    """Make sure the pose model of complexity 0/2 is where mediapipe looks, without a download."""
    name = DOWNLOADED_POSE_MODELS.get(options.model_complexity)
    if name is None:
        return
    target = Path(str(mp.__file__)).parent / "modules" / "pose_landmark" / name
    source = options.pose_model_path
    if source is None:
        if target.is_file():
            return
        raise InputError(
            f"model_complexity={options.model_complexity} needs {name}, which mediapipe does not "
            "ship and would download (this fails offline). Use model_complexity=1 (shipped), "
            f"or pass HolisticOptions(pose_model_path=...) pointing to a local {name}"
        )
    if not source.is_file():
        raise InputError(f"pose_model_path not found: {source}")
    with open(source, "rb") as handle:
        if handle.read(8)[4:8] != b"TFL3":
            raise FormatError(source, f"not a TFLite model (no TFL3 header); expected {name}")
    if target.is_file() and target.read_bytes() == source.read_bytes():
        return
    # The Solutions graph loads the model from mediapipe's own folder (where its downloader
    # would have put it), so the local file is copied there, atomically.
    partial = target.with_name(f".{name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise InputError(
            f"cannot install {source} as {target} ({err}); copy it there by hand"
        ) from None
    logger.info("installed %s as %s", source, target)
