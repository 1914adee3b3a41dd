"""Landmark files as other tools write them: NaN-coded missing points, MediaPipe Tasks layouts,
GISLR parquet frame rates, and .npz archives that declare more than they hold.

The .pose files here are written with pose-format's own writer and header helpers, in the shapes
that MediaPipe Tasks recordings have (pose 33, face 478 with the iris, two hands of 21; a hand that
was not found stored as NaN coordinates with confidence 1).
"""

from __future__ import annotations

import logging
import math
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edge_slr.errors import FormatError, InputError
from edge_slr.landmarks import layout
from edge_slr.landmarks.io import MAX_NPZ_FRAMES, load_landmarks, save_landmarks
from edge_slr.landmarks.parquet import DEFAULT_FPS, FPS_KEY
from edge_slr.landmarks.presets import get_preset
from edge_slr.landmarks.sequence import LandmarkSequence

DATA = Path(__file__).parent / "data" / "landmarks"
EXCERPT_586 = DATA / "pose-format" / "7731febd_frames13-16.pose"  # Holistic, refined face + world
WIDTH, HEIGHT = 640, 480
HANDS = ("left_hand", "right_hand")


def _nan_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "NaN/inf" in r.getMessage()]


def _tasks_pose(
    seq: LandmarkSequence,
    path: Path,
    *,
    nan_coded: bool,
    world: bool = False,
    hand_world: bool = False,
) -> Path:
    """Write ``seq`` as a MediaPipe Tasks recording (553 points, + world parts) with pose-format's
    own header classes and writer.

    ``nan_coded``: a missing hand point is stored as NaN with confidence 1, as Tasks recordings
    do; otherwise as 0 with confidence 0 (the points zeroed by hand). The 10 iris points get
    coordinates near the face's first point.
    """
    pose_format = pytest.importorskip("pose_format")
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    # The components pose-format's holistic_components("XYZC", 10) makes, without the world part
    # (built here: importing pose_format.utils.holistic imports mediapipe, ~15 s).
    def component(name: str, points: list[str]) -> PoseHeaderComponent:
        return PoseHeaderComponent(name, points, [], [(255, 0, 0)], "XYZC")

    hand = list(layout.HAND_LANDMARK_NAMES)
    components = [
        component("POSE_LANDMARKS", list(layout.POSE_LANDMARK_NAMES)),
        component("FACE_LANDMARKS", [str(i) for i in range(478)]),
        component("LEFT_HAND_LANDMARKS", hand),
        component("RIGHT_HAND_LANDMARKS", hand),
    ]
    assert [len(c.points) for c in components] == [33, 478, 21, 21]
    frames = seq.num_frames
    pixels = seq.data[..., :3] * np.array([WIDTH, HEIGHT, 1.0], np.float32)
    confidence = seq.confidence.copy()
    parts = {name: (pixels[:, s], confidence[:, s]) for name, s in layout.PART_SLICES.items()}
    iris_xyz = np.repeat(parts["face"][0][:, :1], 10, axis=1) + np.arange(10)[None, :, None]
    face_xyz = np.concatenate([parts["face"][0], iris_xyz], axis=1)
    face_conf = np.concatenate([parts["face"][1], np.repeat(parts["face"][1][:, :1], 10, 1)], 1)
    xyz = [parts["pose"][0], face_xyz, parts["left_hand"][0], parts["right_hand"][0]]
    conf = [parts["pose"][1], face_conf, parts["left_hand"][1], parts["right_hand"][1]]
    for i in (2, 3):  # the hands
        missing = conf[i] == 0
        xyz[i] = xyz[i].copy()
        conf[i] = conf[i].copy()
        xyz[i][missing] = np.nan if nan_coded else 0.0
        conf[i][missing] = 1.0 if nan_coded else 0.0
    rng = np.random.default_rng(3)
    if world:
        world_points = components[0].points
        components.append(component("POSE_WORLD_LANDMARKS", world_points))
        xyz.append(rng.normal(0, 0.3, (frames, 33, 3)).astype(np.float32))  # metres
        conf.append(np.ones((frames, 33), np.float32))
    if hand_world:
        for side in ("LEFT", "RIGHT"):
            names = list(layout.HAND_LANDMARK_NAMES)
            components.append(
                PoseHeaderComponent(
                    f"{side}_HAND_WORLD_LANDMARKS", names, [], [(0, 0, 255)], "XYZC"
                )
            )
            xyz.append(rng.normal(0, 0.05, (frames, 21, 3)).astype(np.float32))
            conf.append(np.ones((frames, 21), np.float32))
    header = PoseHeader(0.2, PoseHeaderDimensions(WIDTH, HEIGHT, 0), components)
    data = np.concatenate(xyz, axis=1)[:, None].astype(np.float32)
    body = NumPyPoseBody(
        fps=seq.fps, data=data, confidence=np.concatenate(conf, axis=1)[:, None].astype(np.float32)
    )
    with open(path, "wb") as handle:
        pose_format.Pose(header, body).write(handle)
    return path


@pytest.fixture(scope="module")
def real_clip() -> LandmarkSequence:
    """A real Holistic recording (the bundled excerpt) with hands missing in some frames."""
    pytest.importorskip("pose_format")
    seq = load_landmarks(EXCERPT_586)
    data = seq.data.copy()
    data[0, layout.PART_SLICES["left_hand"]] = 0.0  # and the right hand is missing in 1 and 2
    assert not (LandmarkSequence(data, seq.fps).present("right_hand")[1:3]).any()
    return LandmarkSequence(data, seq.fps, {"image_width": WIDTH, "image_height": HEIGHT})


def _missing_hand_points(seq: LandmarkSequence) -> dict[str, int]:
    return {
        h: int((seq.part(h)[..., 3] == 0).sum()) for h in HANDS if (seq.part(h)[..., 3] == 0).any()
    }


def test_tasks_553_nan_coded_hands_load_as_missing(tmp_path, real_clip, caplog):
    path = _tasks_pose(real_clip, tmp_path / "tasks.pose", nan_coded=True)
    with pytest.raises(FormatError, match=r"tasks\.pose: .*= nan at frame 0, point 501 "):
        load_landmarks(path, strict=True)
    with caplog.at_level(logging.WARNING, logger="edge_slr.landmarks"):
        seq = load_landmarks(path)
    assert seq.metadata["source_points"] == 553 and seq.metadata["mapped_points"] == 543
    assert seq.metadata["dropped_iris_points"] == 10 and seq.metadata["dropped_components"] == []
    assert seq.metadata["nonfinite_marked_missing"] == _missing_hand_points(real_clip)
    np.testing.assert_array_equal(seq.confidence, real_clip.confidence)
    np.testing.assert_allclose(seq.data, real_clip.data, atol=2e-6)
    (warning,) = _nan_warnings(caplog)
    assert "tasks.pose: 63 points" in warning
    assert "left_hand 21 in 1 frame, right_hand 42 in 2 frames" in warning


def test_nan_coded_file_equals_the_file_zeroed_by_hand(tmp_path, real_clip):
    nan_coded = load_landmarks(_tasks_pose(real_clip, tmp_path / "nan.pose", nan_coded=True))
    zeroed = load_landmarks(_tasks_pose(real_clip, tmp_path / "zero.pose", nan_coded=False))
    assert "nonfinite_marked_missing" not in zeroed.metadata
    np.testing.assert_array_equal(nan_coded.data, zeroed.data)
    preset = get_preset("kdmslrt92")
    features = preset.features(nan_coded)
    np.testing.assert_array_equal(features, preset.features(zeroed))
    assert np.isfinite(features).all()


@pytest.mark.parametrize(("world", "hand_world", "points"), [(True, False, 586), (True, True, 628)])
def test_tasks_layouts_with_world_landmarks_map_by_name(
    tmp_path, real_clip, world, hand_world, points
):
    path = _tasks_pose(
        real_clip, tmp_path / "world.pose", nan_coded=True, world=world, hand_world=hand_world
    )
    seq = load_landmarks(path)
    assert seq.metadata["source_points"] == points and seq.metadata["mapped_points"] == 543
    dropped = ["POSE_WORLD_LANDMARKS"] + (
        ["LEFT_HAND_WORLD_LANDMARKS", "RIGHT_HAND_WORLD_LANDMARKS"] if hand_world else []
    )
    assert seq.metadata["dropped_components"] == dropped
    np.testing.assert_allclose(seq.data, real_clip.data, atol=2e-6)


def test_holistic_refined_face_drops_only_the_iris():
    pytest.importorskip("pose_format")
    seq = load_landmarks(EXCERPT_586)
    assert seq.metadata["dropped_iris_points"] == 10
    assert seq.metadata["source_points"] - seq.metadata["mapped_points"] == 10 + 33  # + world


def test_component_and_point_names_match_case_insensitively(tmp_path):
    pose_format = pytest.importorskip("pose_format")
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    names = [n.lower() for n in layout.HAND_LANDMARK_NAMES]
    header = PoseHeader(
        0.2,
        PoseHeaderDimensions(WIDTH, HEIGHT, 0),
        [PoseHeaderComponent("right_hand_landmarks", names, [], [(0, 255, 0)], "XYZC")],
    )
    data = np.full((2, 1, 21, 3), 64.0, np.float32)
    data[..., 0] = np.arange(21) * 10.0
    body = NumPyPoseBody(fps=30, data=data, confidence=np.ones((2, 1, 21), np.float32))
    with open(tmp_path / "lower.pose", "wb") as handle:
        pose_format.Pose(header, body).write(handle)
    seq = load_landmarks(tmp_path / "lower.pose")
    assert seq.present("right_hand").all() and not seq.present("left_hand").any()
    assert seq.data[0, 522 + 4, 0] == pytest.approx(40.0 / WIDTH)  # thumb_tip is THUMB_TIP


def test_fps_argument_replaces_the_stored_rate(tmp_path, real_clip):
    path = _tasks_pose(real_clip, tmp_path / "clip.pose", nan_coded=False)
    assert load_landmarks(path).metadata["fps_source"] == "file"
    given = load_landmarks(path, fps=50)
    assert given.fps == 50.0 and given.metadata["fps_source"] == "argument"
    save_landmarks(tmp_path / "clip.npz", real_clip)
    assert load_landmarks(tmp_path / "clip.npz", fps=12).fps == 12.0
    assert load_landmarks(tmp_path / "clip.npz").metadata == real_clip.metadata  # exact
    for bad in (0, -25, math.inf, math.nan, "25"):
        with pytest.raises(InputError, match="fps is"):
            load_landmarks(tmp_path / "clip.npz", fps=bad)


# -- parquet frame rates -------------------------------------------------------------------------


def _sequence(frames: int = 5) -> LandmarkSequence:
    rng = np.random.default_rng(0)
    data = np.zeros((frames, 543, 4), np.float32)
    data[..., :3] = rng.uniform(0.1, 0.9, (frames, 543, 3))
    data[..., 3] = 1.0
    data[1:3, layout.PART_SLICES["left_hand"]] = 0.0
    return LandmarkSequence(data, 25.0)


def test_parquet_written_at_25_fps_reads_back_at_25(tmp_path, caplog):
    pq = pytest.importorskip("pyarrow.parquet")
    seq = _sequence()
    path = tmp_path / "clip.parquet"
    save_landmarks(path, seq)
    assert pq.read_schema(path).metadata[FPS_KEY] == b"25.0"
    with caplog.at_level(logging.WARNING, logger="edge_slr.landmarks"):
        back = load_landmarks(path)
    assert back.fps == 25.0 and back.metadata["fps_source"] == "file"
    assert not [r for r in caplog.records if "frame rate" in r.getMessage()]
    np.testing.assert_array_equal(back.data, seq.data)
    assert back.duration_s == pytest.approx(seq.duration_s)


def test_gislr_parquet_without_a_rate_states_the_default(tmp_path, caplog):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "gislr.parquet"
    save_landmarks(path, _sequence())
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata(None), path)  # as Kaggle's files are
    assert (
        pq.read_schema(path).metadata in (None, {}) or FPS_KEY not in pq.read_schema(path).metadata
    )
    with caplog.at_level(logging.WARNING, logger="edge_slr.landmarks"):
        seq = load_landmarks(path)
    assert seq.fps == DEFAULT_FPS == 30.0 and seq.metadata["fps_source"] == "default"
    (warning,) = [r.getMessage() for r in caplog.records if "frame rate" in r.getMessage()]
    assert "gislr.parquet: a GISLR parquet file stores no frame rate; assuming 30 fps" in warning
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edge_slr.landmarks"):
        given = load_landmarks(path, fps=25)
    assert given.fps == 25.0 and given.metadata["fps_source"] == "argument"
    assert not caplog.records
    pq.write_table(table.replace_schema_metadata({FPS_KEY: b"fast"}), path)
    with pytest.raises(
        FormatError, match=r"gislr\.parquet: schema metadata edge_slr\.fps is b'fast'"
    ):
        load_landmarks(path)
    del pa


# -- .npz bounds ---------------------------------------------------------------------------------


def _npz_with_data(path: Path, shape: tuple[int, ...], level: int = 9) -> Path:
    """An edge-slr .npz whose data member holds zeros of ``shape``, deflated at ``level``."""
    frame = np.zeros((1, 543, 4), np.float32).tobytes()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for name, value in (("format_version", np.int64(1)), ("fps", np.float64(30.0))):
            with zf.open(f"{name}.npy", "w") as member:
                np.lib.format.write_array(member, np.asarray(value))
        with zf.open("metadata.npy", "w") as member:
            np.lib.format.write_array(member, np.asarray(np.str_("{}")))
        with zf.open("data.npy", "w", force_zip64=True) as member:
            header = {"descr": "<f4", "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(member, header)
            chunk = frame * 1000
            for _ in range(shape[0] // 1000):
                member.write(chunk)
            member.write(frame * (shape[0] % 1000))
    return path


def _traced_peak(function) -> int:
    tracemalloc.start()
    try:
        function()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_npz_zip_bomb_is_refused_before_unpacking(tmp_path):
    bomb = _npz_with_data(tmp_path / "bomb.npz", (20_000, 543, 4))  # 174 MB from ~0.2 MB
    assert bomb.stat().st_size < 400_000

    def load():
        with pytest.raises(FormatError, match=r"bomb\.npz: field 'data' declares shape "
                           r"\(20000, 543, 4\) \(174 MB of float32\) from 0.2 MB compressed \(ratio 1,0\d\d:1\); "
                           r"refusing to unpack more than 500:1"):  # fmt: skip
            load_landmarks(bomb)

    assert _traced_peak(load) < 20 * 2**20  # nothing near the declared size was allocated


def test_npz_declaring_too_many_frames_is_refused(tmp_path):
    # The probe's file: 250,000 frames (2.2 GB) declared; the member holds only its first frames.
    path = tmp_path / "long.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("format_version.npy", "w") as member:
            np.lib.format.write_array(member, np.asarray(np.int64(1)))
        with zf.open("data.npy", "w") as member:
            header = {"descr": "<f4", "fortran_order": False, "shape": (250_000, 543, 4)}
            np.lib.format.write_array_header_1_0(member, header)
            member.write(np.random.default_rng(0).random(543 * 4 * 8, np.float32).tobytes())
    with pytest.raises(FormatError, match=rf"long\.npz: field 'data' declares shape "
                       rf"\(250000, 543, 4\) \(2\.17 GB of float32\); this reader takes at most "
                       rf"{MAX_NPZ_FRAMES:,} frames"):  # fmt: skip
        load_landmarks(path)


def test_npz_other_fields_and_single_arrays_are_bounded(tmp_path):
    path = tmp_path / "meta.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("metadata.npy", "w") as m:
        header = {"descr": "<U1000", "fortran_order": False, "shape": (10**6,)}
        np.lib.format.write_array_header_1_0(m, header)
    with pytest.raises(
        FormatError, match=r"field 'metadata' declares shape \(1000000,\) of <U1000"
    ):
        load_landmarks(path)
    single = tmp_path / "single.npz"
    with open(single, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 543, 4)}
        )
    with pytest.raises(FormatError, match="single.npz: holds a single .npy array"):
        load_landmarks(single)


def test_a_long_npz_of_nothing_detected_still_loads(tmp_path):
    # edge-slr's own writer (deflate level 1) on 2,000 frames with nothing detected: 17 MB at
    # about 230:1, above the 16 MiB floor of the ratio check, and a legitimate file.
    seq = LandmarkSequence(np.zeros((2_000, 543, 4), np.float32), 30.0)
    save_landmarks(tmp_path / "empty.npz", seq)
    assert load_landmarks(tmp_path / "empty.npz") == seq


# -- every real file -----------------------------------------------------------------------------


def test_every_real_landmark_file_loads(shared_data):
    files = sorted(
        p for p in shared_data.rglob("*") if p.suffix.lower() in (".pose", ".parquet", ".npz")
    )
    if not files:
        pytest.skip(f"no .pose/.parquet/.npz file under {shared_data}")
    preset = get_preset("kdmslrt92")
    for path in files:
        seq = load_landmarks(path)
        assert seq.metadata["mapped_points"] > 0 or path.suffix != ".pose", path
        assert np.isfinite(preset.features(seq)).all(), path
        assert load_landmarks(path, strict=True) == seq, path  # none of them holds NaN points


# -- through a recogniser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_model(tiny_student, tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    from edge_slr.converters import convert

    out = tmp_path_factory.mktemp("readers-onnx")
    convert(tiny_student.checkpoint, "onnx", out)
    return out


def test_nan_coded_file_recognises_like_the_zeroed_file(tmp_path, tiny_student, onnx_model):
    from edge_slr.data.dataset import LandmarkDataset
    from edge_slr.recognition.recognizer import Recognizer

    source = LandmarkDataset(tiny_student.data, "dev")[0].landmarks
    data = source.data.copy()
    data[:8, layout.PART_SLICES["left_hand"]] = 0.0  # hands "not found" in short stretches
    data[8:16, layout.PART_SLICES["right_hand"]] = 0.0
    clip = LandmarkSequence(data, source.fps, {})
    nan_coded = load_landmarks(_tasks_pose(clip, tmp_path / "nan.pose", nan_coded=True))
    zeroed = load_landmarks(_tasks_pose(clip, tmp_path / "zero.pose", nan_coded=False))
    assert sum(nan_coded.metadata["nonfinite_marked_missing"].values()) >= 21 * 16
    with Recognizer.create_from_model_dir(onnx_model, correct=False) as recognizer:
        a = recognizer.recognize_landmarks(nan_coded)
        b = recognizer.recognize_landmarks(zeroed)
    assert a.recognized and a.recognized == b.recognized
    assert [g.score for g in a.glosses] == [g.score for g in b.glosses]
