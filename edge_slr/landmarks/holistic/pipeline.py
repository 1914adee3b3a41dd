"""MediaPipe Holistic's per-frame logic in numpy/OpenCV over a :class:`HolisticModelSet`.

What the graph of mediapipe 0.10.21 does at model complexity 1 (read from the graph the wheel
builds: ``CalculatorGraph(binary_graph_path=holistic_landmark_cpu.binarypb).text_config``), step
by step, with the same numbers:

1. **Pose ROI.** The previous frame's ROI when there is one; otherwise the pose detector on the
   frame letterboxed to 224x224 ([-1, 1]): 2254 SSD anchors, sigmoid scores >= the detection
   confidence, weighted NMS (IoU 0.3), the best detection; its ROI is centred on the hip centre
   keypoint, twice as large as the distance to the scale keypoint, rotated so that vector points
   up, squared and scaled by 1.25.
2. **Pose landmarks** on that ROI warped to 256x256 ([0, 1]); dropped (tracking lost, the next
   frame detects again) when the pose flag is not above the tracking confidence. 39 points,
   refined by the heatmap when the model set returns it (kernel 7), projected back; visibility =
   sigmoid. Video mode smooths them (:mod:`.smoothing`) and places the next frame's ROI from the
   two smoothed auxiliary points (same rule as the detection, scale 1.25).
3. **Hands**, each from its pose wrist/pinky/index (the person's left hand from the pose's left
   points, as the graph's ``left_hand_landmarks``): skipped when the smoothed wrist visibility is
   not above 0.1; a ROI around the estimated middle knuckle (x2.7, shifted), refined by
   ``hand_recrop``; the previous frame's hand box (x2, shifted) is kept while the re-crop box stays
   within 40 degrees, 20 % translation and 40 % size of it and still holds the previous points;
   ``hand_landmark`` on 224x224, kept when the hand flag is above 0.5. Not smoothed (the graph
   does not smooth hands).
4. **Face**: the pose's face points give a ROI (x3); the graph runs the short-range face
   detector in it and takes the ROI from the detection keypoints (x2, shifted). The model set
   has no face detector unless it offers a ``face_detection`` role; then the same six points
   (eyes, nose, mouth centre, ears) are taken from the pose instead, which is the one place this
   pipeline knowingly differs from the graph. Tracking as for hands (15 degrees, 10 %, 30 %);
   ``face_landmark`` on 192x192 (468 points), kept when sigmoid(face flag) > 0.5. Not smoothed.

Smoothing runs on the Solutions API's clock by default (frame k at k x 33333 us, whatever the
video's rate: that is what the reference graph sees); ``PipelineOptions(clock_fps=None)`` uses
the caller's timestamps instead. Timestamps must strictly increase either way.

Two cores: after the pose, the left hand, the right hand and the face of a frame depend only on
that pose and on their own previous landmarks, so ``PipelineOptions(part_workers=2)`` runs them
on two threads (the right hand on a replica of the hand models: a runtime serves one call at a
time), and :meth:`HolisticPipeline.submit` also overlaps one frame's hands and face with the
next frame's pose, which only needs the previous pose. Both give the same landmarks as running
everything in turn (the engines and OpenCV release the GIL; OpenVINO models are loaded unpinned,
see ``models.OPENVINO_RUN_CONFIG``). ``enable_profile()`` times every stage (:mod:`.profile`).

Where this differs from the graph: the face ROI without a ``face_detection`` model (above); no
heatmap refinement when the engine's pose model is pruned of its heatmap (pose points then
differ by about 0.004, normalised, on the AUTSL clip instead of 0.001); crops use the same
OpenCV call as MediaPipe's CPU path, so differences come from the engines' arithmetic. Borderline
hand flags (a hand half out of view or blurred) can flip either way: the graph's own result
changes with such details (run through MediaPipe's CalculatorGraph directly rather than the
Solutions API, it disagrees with itself on 4 of 43 AUTSL frames for the left hand).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_slr.errors import InputError
from edge_slr.landmarks.extract import (
    check_next_timestamp,
    check_part_workers,
    check_rgb,
)
from edge_slr.landmarks.holistic import detection, roi
from edge_slr.landmarks.holistic.profile import FRAME, StageProfile
from edge_slr.landmarks.holistic.roi import Rect, Size
from edge_slr.landmarks.holistic.smoothing import POSE_AUX_FILTER, POSE_FILTER, PoseSmoother
from edge_slr.landmarks.layout import NUM_POINTS, PART_SLICES
from edge_slr.landmarks.mediapipe_backends import MIN_DETECTED_CONFIDENCE

if TYPE_CHECKING:
    from edge_slr.landmarks.holistic.models import HolisticModelSet

logger = logging.getLogger(__name__)

POSE_ROI_SCALE = 1.25
HAND_FROM_POSE_SCALE, HAND_SHIFT_Y, HAND_TRACK_SCALE = 2.7, -0.1, 2.0
HAND_TRACKING = (40.0, 0.2, 0.4, -0.1)  # degrees, translation, scale, landmark margin
FACE_FROM_POSE_SCALE, FACE_DETECTION_SCALE, FACE_TRACK_SCALE = 3.0, 2.0, 1.5
FACE_TRACKING = (15.0, 0.1, 0.3, -0.2)
MIN_WRIST_VISIBILITY = 0.1
MIN_HAND_FLAG = 0.5
MIN_FACE_PRESENCE = 0.5
MIN_FACE_DETECTION_SCORE = 0.5
HEATMAP_KERNEL, HEATMAP_MIN_CONFIDENCE = 7, 0.5
# Pose indices (wrist, pinky, index) per hand, and the face detector's keypoints from pose points.
HAND_POSE_POINTS = {"left_hand": (15, 17, 19), "right_hand": (16, 18, 20)}
HAND_ROLES = ("hand_recrop", "hand_landmark")
THREAD_PREFIX = "edge-slr-holistic"
FACE_KEYPOINTS_FROM_POSE = (5, 2, 0, (9, 10), 8, 7)


@dataclass(frozen=True)
class PipelineOptions:
    """Thresholds and modes of :class:`HolisticPipeline` (HolisticOptions' meaning)."""

    min_detection_confidence: float = 0.5  # pose detector score
    min_tracking_confidence: float = 0.5  # pose flag needed to keep the pose (and tracking)
    smooth_landmarks: bool = True  # video mode only
    refine_with_heatmap: bool = True  # used when the pose model returns its heatmap
    # The smoothing filters' clock. MediaPipe's Solutions API (edge-slr's reference extractor)
    # stamps frame k at k * 33333 us whatever the video's rate; 30.0 does the same, so the
    # filters see what the graph sees. None uses the caller's timestamps instead.
    clock_fps: float | None = 30.0
    # Threads for the parts of one frame after the pose (left hand, right hand, face): 1 runs
    # them in turn; 2 or 3 overlap them (the engines and OpenCV release the GIL), which is what
    # a 2-core machine needs for live video. The right hand then gets its own hand models.
    part_workers: int = 1

    def __post_init__(self) -> None:
        for name in ("min_detection_confidence", "min_tracking_confidence"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"{name} must be a number in [0, 1], got {value!r}")
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {value!r}")
        fps = self.clock_fps
        if fps is not None and (
            isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= 1000
        ):
            raise InputError(f"clock_fps must be None or a number in (0, 1000], got {fps!r}")
        for name in ("smooth_landmarks", "refine_with_heatmap"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be True or False, got {getattr(self, name)!r}")
        check_part_workers(self.part_workers)


def _size(rgb: np.ndarray) -> Size:
    return (int(rgb.shape[1]), int(rgb.shape[0]))


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def refine_from_heatmap(xy: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """RefineLandmarksFromHeatmapCalculator: crop-normalised points moved to the sigmoid-
    weighted centre of their 7x7 heatmap window when the window's peak is confident."""
    hm = np.asarray(heatmap, dtype=np.float64).reshape(heatmap.shape[-3:])
    rows, cols, _ = hm.shape
    out = np.array(xy, dtype=np.float64, copy=True)
    half = (HEATMAP_KERNEL - 1) // 2
    for i in range(out.shape[0]):
        col, row = int(out[i, 0] * cols), int(out[i, 1] * rows)
        if not (0 <= col < cols and 0 <= row < rows):
            continue
        r0, r1 = max(0, row - half), min(rows, row + half + 1)
        c0, c1 = max(0, col - half), min(cols, col + half + 1)
        conf = _sigmoid(hm[r0:r1, c0:c1, i])
        total = conf.sum()
        if conf.max() >= HEATMAP_MIN_CONFIDENCE and total > 0:
            out[i, 0] = (conf.sum(axis=0) * np.arange(c0, c1)).sum() / cols / total
            out[i, 1] = (conf.sum(axis=1) * np.arange(r0, r1)).sum() / rows / total
    return out


class HolisticPipeline:
    """Holistic landmarks frame by frame on the models of one engine (see the module doc).

    ``process(rgb, timestamp_ms)`` tracks across calls (video); ``timestamp_ms=None`` treats the
    frame as an independent image. ``reset()`` starts a new video.
    """

    def __init__(self, models: HolisticModelSet, options: PipelineOptions | None = None) -> None:
        self.models = models
        self.options = PipelineOptions() if options is None else options
        if not isinstance(self.options, PipelineOptions):
            raise InputError(f"options must be PipelineOptions, got {type(options).__name__}")
        self._pose_anchors = detection.ssd_anchors(detection.POSE_DETECTOR.anchors)
        self._face_anchors = detection.ssd_anchors(detection.FACE_DETECTOR.anchors)
        self.has_face_detector = "face_detection" in getattr(models, "runtimes", {})
        self._pose_filter = PoseSmoother(POSE_FILTER)
        self._aux_filter = PoseSmoother(POSE_AUX_FILTER)
        self.profile: StageProfile | None = None
        self._hand_models = dict.fromkeys(HAND_POSE_POINTS, models)
        self._replica: HolisticModelSet | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._second_stage: ThreadPoolExecutor | None = None  # submit()'s hands-and-face stage
        self._pending: Future[np.ndarray] | None = None
        if self.options.part_workers > 1:
            self._replica = models.replicate(HAND_ROLES)
            self._hand_models["right_hand"] = self._replica
            self._pool = ThreadPoolExecutor(
                self.options.part_workers, thread_name_prefix=f"{THREAD_PREFIX}-part"
            )
        self.reset()

    @property
    def engine(self) -> str:
        return str(getattr(self.models, "engine", "unknown"))

    def reset(self) -> None:
        """Forget every tracked ROI, previous landmarks and filter state."""
        self._wait_pending()
        self._pose_roi: Rect | None = None
        self._previous: dict[str, np.ndarray | None] = {"left_hand": None, "right_hand": None,
                                                        "face": None}  # fmt: skip
        self._pose_filter.reset()
        self._aux_filter.reset()
        self._last_timestamp_ms: int | None = None
        self._frames = 0  # video frames since the last reset (the Solutions-style clock)

    def close(self) -> None:
        for pool in (self._second_stage, self._pool):  # the stage first: it uses the pool
            if pool is not None:
                pool.shutdown(wait=True)
        self._second_stage = self._pool = self._pending = None
        if self._replica is not None:
            self._replica.close()
            self._replica = None
        self.models.close()

    def __enter__(self) -> HolisticPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def enable_profile(self) -> StageProfile:
        """Time every stage from now on (:mod:`.profile`); returns the profile being filled."""
        self.profile = StageProfile()
        return self.profile

    def _stage(self, name: str) -> AbstractContextManager[None]:
        return nullcontext() if self.profile is None else self.profile.stage(name)

    def _run(self, models: HolisticModelSet, role: str, tensor: np.ndarray) -> dict[str, Any]:
        with self._stage(f"model {role}"):
            return models.run(role, tensor)

    def _crop(self, *args: Any, **kwargs: Any) -> tuple[np.ndarray, tuple[float, ...]]:
        with self._stage("crop"):
            return roi.crop(*args, **kwargs)

    def process(self, rgb: np.ndarray, timestamp_ms: int | None) -> np.ndarray:
        """Landmarks ``(543, 4)`` float32 of one RGB ``(H, W, 3)`` uint8 frame."""
        with self._stage(FRAME):
            return self._process(rgb, timestamp_ms)

    def _process(self, rgb: np.ndarray, timestamp_ms: int | None) -> np.ndarray:
        rgb = check_rgb(rgb)
        self._wait_pending()  # frames submitted before go first (they update the tracking)
        video = timestamp_ms is not None
        if video:
            timestamp_ms = self._check_timestamp(timestamp_ms)
            self._frames += 1
        else:
            self.reset()
        frame = self._parts(rgb, self._pose(rgb, _size(rgb), timestamp_ms, video))
        if not video:
            self.reset()
        return frame

    def submit(self, rgb: np.ndarray, timestamp_ms: int) -> Future[np.ndarray]:
        """The next video frame, pipelined: its pose runs now, in the caller's thread, and its
        hands and face on a worker of their own, so the caller can go on to the next frame's
        pose meanwhile (two stages on two cores). The future gives what :meth:`process` would;
        futures complete in submission order. Leave ``rgb`` unchanged until its future is done.
        """
        rgb = check_rgb(rgb)
        timestamp_ms = self._check_timestamp(timestamp_ms)
        self._frames += 1
        pose = self._pose(rgb, _size(rgb), timestamp_ms, True)
        if self._second_stage is None:
            self._second_stage = ThreadPoolExecutor(1, thread_name_prefix=f"{THREAD_PREFIX}-stage")
        self._pending = self._second_stage.submit(self._parts, rgb, pose)
        return self._pending

    def _wait_pending(self) -> None:
        """Let submitted frames finish (their errors stay with their futures)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            wait([pending])

    def _parts(self, rgb: np.ndarray, pose: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        """The frame's landmarks from its pose: hands and face, or nothing without a pose."""
        frame = np.zeros((NUM_POINTS, 4), dtype=np.float32)
        if pose is None:
            self._previous = dict.fromkeys(self._previous)
            return frame
        size = _size(rgb)
        points, visibility = pose
        confidence = np.clip(visibility, MIN_DETECTED_CONFIDENCE, 1.0)
        frame[PART_SLICES["pose"]] = np.column_stack([points, confidence])
        # Each part reads only its own previous landmarks: the three are independent.
        jobs = {
            side: partial(self._hand, rgb, size, points, visibility, side, indices)
            for side, indices in HAND_POSE_POINTS.items()
        }
        jobs["face"] = partial(self._face, rgb, size, points)
        for part, found in self._run_parts(jobs).items():
            self._put(frame, part, found)
        return frame

    def _run_parts(self, jobs: dict[str, Callable[[], Any]]) -> dict[str, Any]:
        """Each job's result, in turn or on the part workers (their errors re-raised here)."""
        if self._pool is None:
            return {part: job() for part, job in jobs.items()}
        futures = {part: self._pool.submit(job) for part, job in jobs.items()}
        return {part: future.result() for part, future in futures.items()}

    def _check_timestamp(self, timestamp_ms: object) -> int:
        value = check_next_timestamp(timestamp_ms, self._last_timestamp_ms, "reset()")
        self._last_timestamp_ms = value
        return value

    def _put(self, frame: np.ndarray, part: str, points: np.ndarray | None) -> None:
        self._previous[part] = points
        if points is not None:
            frame[PART_SLICES[part], :3] = points
            frame[PART_SLICES[part], 3] = 1.0

    # -- pose -------------------------------------------------------------------------------------
    def _pose(
        self, rgb: np.ndarray, size: Size, timestamp_ms: int | None, video: bool
    ) -> tuple[np.ndarray, np.ndarray] | None:
        rect = self._pose_roi or self._detect_pose(rgb, size)
        if rect is None:
            return self._lose_pose()
        tensor, padding = self._crop(rgb, rect, 256, (0.0, 1.0))
        out = self._run(self.models, "pose_landmark", tensor)
        if float(np.ravel(out["pose_flag"])[0]) <= self.options.min_tracking_confidence:
            return self._lose_pose()
        raw = np.asarray(out["landmarks"], dtype=np.float64).reshape(39, 5)
        points = raw[:, :3] / 256.0
        visibility = _sigmoid(raw[:, 3])
        heatmap = out.get("heatmap")
        if heatmap is not None and self.options.refine_with_heatmap:
            with self._stage("heatmap refine"):
                points[:, :2] = refine_from_heatmap(points[:, :2], heatmap)
        points = roi.project(roi.remove_letterbox(points, padding), rect)
        if not video:
            return points[:33], visibility[:33]
        # The body's size in pixels scales the filters' velocity (OBJECT_SCALE_ROI).
        body = roi.alignment_rect(points[33], points[34], size, 90.0)
        scale = (body.width * size[0] + body.height * size[1]) / 2.0
        stamp = self._clock_us(timestamp_ms or 0)
        with self._stage("smoothing"):
            aux, _ = self._aux_filter.apply(points[33:35], visibility[33:35], stamp, size, scale)
        self._pose_roi = roi.transform_rect(
            roi.alignment_rect(aux[0], aux[1], size, 90.0), size, POSE_ROI_SCALE
        )
        if not self.options.smooth_landmarks:
            return points[:33], visibility[:33]
        with self._stage("smoothing"):
            return self._pose_filter.apply(points[:33], visibility[:33], stamp, size, scale)

    def _clock_us(self, timestamp_ms: int) -> int:
        fps = self.options.clock_fps
        return int(timestamp_ms) * 1000 if fps is None else self._frames * int(1e6 / fps)

    def _lose_pose(self) -> None:
        self._pose_roi = None
        self._pose_filter.reset()
        self._aux_filter.reset()
        return None

    def _detect_pose(self, rgb: np.ndarray, size: Size) -> Rect | None:
        tensor, padding = self._crop(
            rgb, roi.whole_image_rect(), 224, (-1.0, 1.0), keep_aspect=True, zero_border=True
        )
        out = self._run(self.models, "pose_detection", tensor)
        best = detection.best_detection(
            out["boxes"], out["scores"], self._pose_anchors, detection.POSE_DETECTOR,
            self.options.min_detection_confidence,
        )  # fmt: skip
        if best is None:
            return None
        keypoints = detection.remove_letterbox(best[0], padding)
        rect = roi.alignment_rect(keypoints[0], keypoints[1], size, 90.0)
        return roi.transform_rect(rect, size, POSE_ROI_SCALE)

    # -- hands ------------------------------------------------------------------------------------
    def _hand(
        self,
        rgb: np.ndarray,
        size: Size,
        pose: np.ndarray,
        visibility: np.ndarray,
        side: str,
        indices: tuple[int, int, int],
    ) -> np.ndarray | None:
        wrist, pinky, index = indices
        if visibility[wrist] <= MIN_WRIST_VISIBILITY:
            return None
        models = self._hand_models[side]
        from_pose = roi.transform_rect(
            roi.hand_rect_from_pose(pose[wrist], pose[pinky], pose[index], size),
            size, HAND_FROM_POSE_SCALE, HAND_SHIFT_Y,
        )  # fmt: skip
        tensor, padding = self._crop(rgb, from_pose, 256, (0.0, 1.0))
        raw = np.asarray(self._run(models, "hand_recrop", tensor)["landmarks"], np.float64)
        ends = roi.project(roi.remove_letterbox(raw.reshape(2, 2) / 256.0, padding), from_pose)
        recrop = roi.transform_rect(
            roi.alignment_rect(ends[0], ends[1], size, -90.0), size, 1.0, HAND_SHIFT_Y
        )
        rect = self._tracked(side, recrop, size, HAND_TRACKING, self._hand_box)
        tensor, padding = self._crop(rgb, rect, 224, (0.0, 1.0))
        out = self._run(models, "hand_landmark", tensor)
        if float(np.ravel(out["hand_flag"])[0]) <= MIN_HAND_FLAG:
            return None
        points = np.asarray(out["landmarks"], dtype=np.float64).reshape(21, 3) / 224.0
        points[:, 2] /= 0.4  # the hand model's z normalisation (normalize_z)
        return roi.project(roi.remove_letterbox(points, padding), rect)

    @staticmethod
    def _hand_box(previous: np.ndarray, size: Size) -> Rect:
        box = roi.hand_landmarks_rect(previous, size)
        return roi.transform_rect(box, size, HAND_TRACK_SCALE, HAND_SHIFT_Y)

    def _tracked(
        self, part: str, recrop: Rect, size: Size, limits: tuple[float, ...], box_of: Any
    ) -> Rect:
        """The previous frame's box while tracking holds (RoiTrackingCalculator), else recrop."""
        previous = self._previous[part]
        if previous is None:
            return recrop
        box = box_of(previous, size)
        return box if roi.tracking_keeps(box, recrop, previous, size, *limits) else recrop

    # -- face -------------------------------------------------------------------------------------
    def _face(self, rgb: np.ndarray, size: Size, pose: np.ndarray) -> np.ndarray | None:
        recrop = self._face_recrop(rgb, size, pose[:11])
        if recrop is None:
            return None
        rect = self._tracked("face", recrop, size, FACE_TRACKING, self._face_box)
        tensor, _ = self._crop(rgb, rect, 192, (0.0, 1.0), keep_aspect=False)
        out = self._run(self.models, "face_landmark", tensor)
        if float(_sigmoid(np.ravel(out["face_flag"])[0])) <= MIN_FACE_PRESENCE:
            return None
        points = np.asarray(out["landmarks"], dtype=np.float64).reshape(468, 3) / 192.0
        return roi.project(points, rect)

    @staticmethod
    def _face_box(previous: np.ndarray, size: Size) -> Rect:
        box = roi.bounding_rect(previous, 33, 263, size, 0.0)  # eye corners level the face
        return roi.transform_rect(box, size, FACE_TRACK_SCALE)

    def _face_recrop(self, rgb: np.ndarray, size: Size, face: np.ndarray) -> Rect | None:
        if self.has_face_detector:
            keypoints = self._detect_face(rgb, size, face)
            if keypoints is None:
                return None
        else:
            keypoints = np.stack(
                [face[list(i)].mean(axis=0) if isinstance(i, tuple) else face[i]
                 for i in FACE_KEYPOINTS_FROM_POSE]
            )  # fmt: skip
        rect = roi.bounding_rect(keypoints, 0, 1, size, 0.0)
        return roi.transform_rect(rect, size, FACE_DETECTION_SCALE, HAND_SHIFT_Y)

    def _detect_face(self, rgb: np.ndarray, size: Size, face: np.ndarray) -> np.ndarray | None:
        rect = roi.bounding_rect(face, 5, 2, size, 0.0)
        rect = roi.transform_rect(rect, size, FACE_FROM_POSE_SCALE)
        tensor, padding = self._crop(rgb, rect, 128, (-1.0, 1.0), zero_border=True)
        out = self._run(self.models, "face_detection", tensor)
        best = detection.best_detection(
            out["boxes"], out["scores"], self._face_anchors, detection.FACE_DETECTOR,
            MIN_FACE_DETECTION_SCORE,
        )  # fmt: skip
        if best is None:
            return None
        return roi.project(detection.remove_letterbox(best[0], padding), rect)
