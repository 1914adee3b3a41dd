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

Where this differs from the graph: the face ROI without a ``face_detection`` model (above); no
heatmap refinement when the engine's pose model is pruned of its heatmap (pose points then
differ by about 0.004, normalised, on the AUTSL clip instead of 0.001); crops use the same
OpenCV call as MediaPipe's CPU path, so differences come from the engines' arithmetic. Borderline
hand flags (a hand half out of view or blurred) can flip either way: the graph's own result
changes with such details (run through MediaPipe's CalculatorGraph directly rather than the
Solutions API, it disagrees with itself on 4 of 43 AUTSL frames for the left hand).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_slr.errors import InputError
from edge_slr.landmarks.extract import HolisticExtractor, HolisticOptions, check_rgb
from edge_slr.landmarks.holistic import detection, roi
from edge_slr.landmarks.holistic.roi import Rect, Size
from edge_slr.landmarks.holistic.smoothing import POSE_AUX_FILTER, POSE_FILTER, PoseSmoother
from edge_slr.landmarks.layout import NUM_POINTS, PART_SLICES
from edge_slr.landmarks.mediapipe_backends import MIN_DETECTED_CONFIDENCE, Backend

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
        self.reset()

    @property
    def engine(self) -> str:
        return str(getattr(self.models, "engine", "unknown"))

    def reset(self) -> None:
        """Forget every tracked ROI, previous landmarks and filter state."""
        self._pose_roi: Rect | None = None
        self._previous: dict[str, np.ndarray | None] = {"left_hand": None, "right_hand": None,
                                                        "face": None}  # fmt: skip
        self._pose_filter.reset()
        self._aux_filter.reset()
        self._last_timestamp_ms: int | None = None
        self._frames = 0  # video frames since the last reset (the Solutions-style clock)

    def close(self) -> None:
        self.models.close()

    def __enter__(self) -> HolisticPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def process(self, rgb: np.ndarray, timestamp_ms: int | None) -> np.ndarray:
        """Landmarks ``(543, 4)`` float32 of one RGB ``(H, W, 3)`` uint8 frame."""
        rgb = check_rgb(rgb)
        video = timestamp_ms is not None
        if video:
            timestamp_ms = self._check_timestamp(timestamp_ms)
            self._frames += 1
        else:
            self.reset()
        size = (int(rgb.shape[1]), int(rgb.shape[0]))
        frame = np.zeros((NUM_POINTS, 4), dtype=np.float32)
        pose = self._pose(rgb, size, timestamp_ms, video)
        if pose is None:
            self._previous = dict.fromkeys(self._previous)
        else:
            points, visibility = pose
            confidence = np.clip(visibility, MIN_DETECTED_CONFIDENCE, 1.0)
            frame[PART_SLICES["pose"]] = np.column_stack([points, confidence])
            for side, indices in HAND_POSE_POINTS.items():
                self._put(frame, side, self._hand(rgb, size, points, visibility, side, indices))
            self._put(frame, "face", self._face(rgb, size, points))
        if not video:
            self.reset()
        return frame

    def _check_timestamp(self, timestamp_ms: object) -> int:
        if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, (int, np.integer)):
            raise InputError(f"timestamp_ms must be an int (milliseconds), got {timestamp_ms!r}")
        value = int(timestamp_ms)
        if value < 0 or (self._last_timestamp_ms is not None and value <= self._last_timestamp_ms):
            raise InputError(
                f"timestamps must be >= 0 and strictly increase: got {value} ms after "
                f"{self._last_timestamp_ms} ms (call reset() before a new video)"
            )
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
        tensor, padding = roi.crop(rgb, rect, 256, (0.0, 1.0))
        out = self.models.run("pose_landmark", tensor)
        if float(np.ravel(out["pose_flag"])[0]) <= self.options.min_tracking_confidence:
            return self._lose_pose()
        raw = np.asarray(out["landmarks"], dtype=np.float64).reshape(39, 5)
        points = raw[:, :3] / 256.0
        visibility = _sigmoid(raw[:, 3])
        heatmap = out.get("heatmap")
        if heatmap is not None and self.options.refine_with_heatmap:
            points[:, :2] = refine_from_heatmap(points[:, :2], heatmap)
        points = roi.project(roi.remove_letterbox(points, padding), rect)
        if not video:
            return points[:33], visibility[:33]
        # The body's size in pixels scales the filters' velocity (OBJECT_SCALE_ROI).
        body = roi.alignment_rect(points[33], points[34], size, 90.0)
        scale = (body.width * size[0] + body.height * size[1]) / 2.0
        stamp = self._clock_us(timestamp_ms or 0)
        aux, _ = self._aux_filter.apply(points[33:35], visibility[33:35], stamp, size, scale)
        self._pose_roi = roi.transform_rect(
            roi.alignment_rect(aux[0], aux[1], size, 90.0), size, POSE_ROI_SCALE
        )
        if not self.options.smooth_landmarks:
            return points[:33], visibility[:33]
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
        tensor, padding = roi.crop(
            rgb, roi.whole_image_rect(), 224, (-1.0, 1.0), keep_aspect=True, zero_border=True
        )
        out = self.models.run("pose_detection", tensor)
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
        from_pose = roi.transform_rect(
            roi.hand_rect_from_pose(pose[wrist], pose[pinky], pose[index], size),
            size, HAND_FROM_POSE_SCALE, HAND_SHIFT_Y,
        )  # fmt: skip
        tensor, padding = roi.crop(rgb, from_pose, 256, (0.0, 1.0))
        raw = np.asarray(self.models.run("hand_recrop", tensor)["landmarks"], np.float64)
        ends = roi.project(roi.remove_letterbox(raw.reshape(2, 2) / 256.0, padding), from_pose)
        recrop = roi.transform_rect(
            roi.alignment_rect(ends[0], ends[1], size, -90.0), size, 1.0, HAND_SHIFT_Y
        )
        rect = self._tracked(side, recrop, size, HAND_TRACKING, self._hand_box)
        tensor, padding = roi.crop(rgb, rect, 224, (0.0, 1.0))
        out = self.models.run("hand_landmark", tensor)
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
        tensor, _ = roi.crop(rgb, rect, 192, (0.0, 1.0), keep_aspect=False)
        out = self.models.run("face_landmark", tensor)
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
        tensor, padding = roi.crop(rgb, rect, 128, (-1.0, 1.0), zero_border=True)
        out = self.models.run("face_detection", tensor)
        best = detection.best_detection(
            out["boxes"], out["scores"], self._face_anchors, detection.FACE_DETECTOR,
            MIN_FACE_DETECTION_SCORE,
        )  # fmt: skip
        if best is None:
            return None
        return roi.project(detection.remove_letterbox(best[0], padding), rect)


class _PipelineBackend(Backend):
    """The HolisticExtractor backend interface over a HolisticPipeline."""

    def __init__(self, pipeline: HolisticPipeline) -> None:
        self.pipeline = pipeline

    def process(self, rgb: np.ndarray, timestamp_ms: int | None) -> np.ndarray:
        return self.pipeline.process(rgb, timestamp_ms)

    def reset(self) -> None:
        self.pipeline.reset()

    def close(self) -> None:
        self.pipeline.close()


class HolisticEngineExtractor(HolisticExtractor):
    """:class:`~edge_slr.landmarks.extract.HolisticExtractor`'s interface (``extract_video``,
    ``extract_video_frame``, ``extract_image``, ``reset``, ``close``, context manager, the same
    errors and metadata) running MediaPipe's Holistic models on one of edge-slr's engines::

        options = HolisticOptions()
        with HolisticEngineExtractor.create_from_options(options, engine="openvino") as ex:
            seq = ex.extract_video("clip.mp4")  # metadata["extractor"]: edge-slr-holistic-openvino
    """

    def __init__(self, options: HolisticOptions, pipeline: HolisticPipeline) -> None:
        from edge_slr.landmarks.holistic.models import MEDIAPIPE_VERSION

        super().__init__(options, _PipelineBackend(pipeline), MEDIAPIPE_VERSION)
        self.pipeline = pipeline

    @classmethod
    def create_from_options(  # type: ignore[override]
        cls,
        options: HolisticOptions | None = None,
        *,
        engine: str | None = None,
        model_dir: Path | str | None = None,
        cache_dir: Path | str | None = None,
        threads: int | None = 1,
        models: HolisticModelSet | None = None,
        **model_options: Any,
    ) -> HolisticEngineExtractor:
        """Load the models on ``engine`` (or ``options.engine``; see ``holistic.models.ENGINES``)
        and build the pipeline. ``models`` passes an already loaded set instead."""
        options = HolisticOptions() if options is None else options
        if not isinstance(options, HolisticOptions):
            raise InputError(f"options must be HolisticOptions, got {type(options).__name__}")
        _check_supported(options)
        if models is None:
            from edge_slr.landmarks.holistic.models import load_holistic_models

            engine = engine or getattr(options, "engine", None) or "openvino"
            if engine == "mediapipe":
                raise InputError(
                    "engine 'mediapipe' is MediaPipe's own graph: use HolisticExtractor for it"
                )
            models = load_holistic_models(
                engine,
                model_dir=None if model_dir is None else Path(model_dir),
                cache_dir=None if cache_dir is None else Path(cache_dir),
                threads=threads,
                **model_options,
            )
        pipeline_options = PipelineOptions(
            min_detection_confidence=float(options.min_detection_confidence),
            min_tracking_confidence=float(options.min_tracking_confidence),
            smooth_landmarks=options.smooth_landmarks,
        )
        return cls(options, HolisticPipeline(models, pipeline_options))

    def _metadata(
        self, path: Path, size: tuple[int, int] | None, with_person: int, data: np.ndarray
    ) -> dict[str, Any]:
        metadata = super()._metadata(path, size, with_person, data)
        pipeline = self.pipeline
        metadata["extractor"] = f"edge-slr-holistic-{pipeline.engine}"
        metadata["engine"] = pipeline.engine
        metadata["face_roi"] = "face_detection" if pipeline.has_face_detector else "pose"
        info = getattr(pipeline.models, "info", {})
        metadata["models"] = json.loads(json.dumps(info, default=str))  # JSON-ready for files
        return metadata


def _check_supported(options: HolisticOptions) -> None:
    """The engines run the shipped complexity-1 models without the refined face model."""
    problems = []
    if options.model_complexity != 1:
        problems.append(f"model_complexity={options.model_complexity} (only 1 is shipped)")
    if options.refine_face_landmarks:
        problems.append("refine_face_landmarks=True (the attention face model is not supported)")
    if options.task_model_path is not None or options.pose_model_path is not None:
        problems.append("task_model_path/pose_model_path (these select MediaPipe's own graph)")
    if problems:
        raise InputError(
            "the edge-slr Holistic engines do not support "
            + "; ".join(problems)
            + "; use engine='mediapipe' (HolisticExtractor) for them"
        )


def extract_many(
    sources: list[str | Path],
    *,
    engine: str = "openvino",
    workers: int = 2,
    options: HolisticOptions | None = None,
    on_no_person: str = "raise",
    **create_options: Any,
) -> list[Any]:
    """Several videos in flight: ``workers`` threads, each with its own extractor (its own model
    set, ``threads=1`` unless given), for throughput on multi-core machines: inference and the
    OpenCV crops run outside the GIL, so the streams overlap where cores are free
    (benchmarks/extraction_engines.py measures it). Returns, per source in order, its
    LandmarkSequence or the exception it raised (one bad video does not stop the others); each
    sequence equals what a lone extractor gives."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive int, got {workers!r}")
    create_options.setdefault("threads", 1)
    local = threading.local()
    made: list[HolisticEngineExtractor] = []
    lock = threading.Lock()

    def work(source: str | Path) -> Any:
        extractor = getattr(local, "extractor", None)
        if extractor is None:
            extractor = HolisticEngineExtractor.create_from_options(
                options, engine=engine, **create_options
            )
            local.extractor = extractor
            with lock:
                made.append(extractor)
        try:
            return extractor.extract_video(source, on_no_person=on_no_person)
        except Exception as err:  # reported in the result list, per source
            return err

    try:
        with ThreadPoolExecutor(max_workers=min(workers, max(1, len(sources)))) as pool:
            return list(pool.map(work, sources))
    finally:
        for extractor in made:
            extractor.close()
