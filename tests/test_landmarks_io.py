"""Landmark files: .npz / .pose / .parquet round trips, real .pose files, malformed input."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edge_slr.errors import FormatError, InputError, MissingDependencyError
from edge_slr.landmarks import layout
from edge_slr.landmarks.io import load_landmarks, read_npz, save_landmarks
from edge_slr.landmarks.parquet import read_parquet
from edge_slr.landmarks.presets import get_preset
from edge_slr.landmarks.sequence import LandmarkSequence

DATA = Path(__file__).parent / "data" / "landmarks"
EXCERPT_586 = DATA / "pose-format" / "7731febd_frames13-16.pose"
EXCERPT_178 = DATA / "sgg-lexicon" / "kleine_frames48-57.pose"

# Every shared .pose file: (frames, fps, points in the file, points mapped to the layout).
SHARED_POSE_FILES = {
    "autsl/signer0_sample1000.pose": (43, 30, 543, 543),
    "phoenix2014t-dummy/25October_2010_Monday_tagesschau-17.pose": (86, 25, 543, 543),
    "segmentation/example.pose": (130, 30, 576, 543),
    "pose-format/0ff215ef4f1f111e217e2cefee0adc77.pose": (121, 29.8904, 576, 543),
    "pose-format/6fb01565da31c5500d1ef2cd2906b06b.pose": (5, 25, 586, 543),
    "pose-format/7731febd6afbbe90f806a4434c282016.pose": (18, 25, 586, 543),
    "pose-format/7bd6dd48722def3cf84258b96371cb1e.pose": (91, 30.0071, 576, 543),
    "pose-format/84322c38ff23406f222641da30d0a49b.pose": (47, 25, 586, 543),
    "pose-format/example.pose": (97, 25, 576, 543),
    "pose-format/mediapipe.pose": (170, 24, 178, 178),
    "pose-format/mediapipe_long.pose": (278, 24, 178, 178),
    "sgg-lexicon/essen.pose": (73, 24, 178, 178),
    "sgg-lexicon/kinder.pose": (45, 24, 178, 178),
    "sgg-lexicon/kleine.pose": (68, 25, 178, 178),
    "sgg-lexicon/pizza.pose": (53, 24, 178, 178),
}


def _sequence(frames: int = 6, binary_confidence: bool = False) -> LandmarkSequence:
    rng = np.random.default_rng(1)
    data = np.zeros((frames, 543, 4), dtype=np.float32)
    data[..., :2] = rng.uniform(0.0, 1.0, size=(frames, 543, 2))
    data[..., 2] = rng.normal(0.0, 0.3, size=(frames, 543))
    data[..., 3] = 1.0
    if not binary_confidence:
        data[:, :33, 3] = rng.uniform(0.05, 1.0, size=(frames, 33))  # pose visibility
    data[1:4, layout.PART_SLICES["right_hand"]] = 0.0
    data[2, layout.PART_SLICES["face"]] = 0.0
    return LandmarkSequence(data, fps=29.97, metadata={"id": "s1", "glosses": ["A", "B"]})


def test_npz_round_trip_is_exact(tmp_path):
    seq = _sequence()
    save_landmarks(tmp_path / "clip.npz", seq)
    assert load_landmarks(tmp_path / "clip.npz") == seq
    assert not (tmp_path / "clip.npz.partial").exists()


def test_pose_round_trip_and_pose_format_reads_our_file(tmp_path):
    pose_format = pytest.importorskip("pose_format")
    seq = _sequence()
    path = tmp_path / "clip.POSE"  # suffixes are case-insensitive
    save_landmarks(path, seq)
    back = load_landmarks(path)
    np.testing.assert_allclose(back.data, seq.data, atol=2e-6)
    np.testing.assert_array_equal(back.confidence, seq.confidence)
    assert back.fps == pytest.approx(seq.fps, rel=1e-6)
    assert back.metadata["image_width"] == back.metadata["image_height"] == 1000
    with open(path, "rb") as handle:
        pose = pose_format.Pose.read(handle.read())
    assert [c.name for c in pose.header.components] == [
        "POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS",
    ]  # fmt: skip
    assert pose.body.data.shape == (6, 1, 543, 3)
    assert pose.body.data.mask[1, 0, 530].all() and not pose.body.data.mask[0, 0, 530].any()
    np.testing.assert_allclose(pose.body.data[0, 0, 540, 0], seq.data[0, 540, 0] * 1000, rtol=1e-6)


def test_pose_keeps_the_image_size_of_the_source(tmp_path):
    seq = load_landmarks(EXCERPT_178)
    save_landmarks(tmp_path / "kleine.pose", seq)
    back = load_landmarks(tmp_path / "kleine.pose")
    assert (back.metadata["image_width"], back.metadata["image_height"]) == (640, 480)
    np.testing.assert_allclose(back.data, seq.data, atol=2e-6)


def test_parquet_round_trip_and_kaggle_layout(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    seq = _sequence(binary_confidence=True)
    seq = LandmarkSequence(seq.data, 25.0, {"first_frame": 17})
    save_landmarks(tmp_path / "clip.parquet", seq)
    back = load_landmarks(tmp_path / "clip.parquet")
    np.testing.assert_array_equal(back.data, seq.data)
    assert back.fps == 25.0 and back.metadata["fps_source"] == "file"  # the rate survives
    assert back.metadata["first_frame"] == 17
    given = read_parquet(tmp_path / "clip.parquet", fps=12.5)
    assert given.fps == 12.5 and given.metadata["fps_source"] == "argument"
    table = pq.read_table(tmp_path / "clip.parquet").to_pydict()
    assert list(table) == ["frame", "row_id", "type", "landmark_index", "x", "y", "z"]
    assert len(table["frame"]) == 6 * 543
    assert table["row_id"][0] == "17-face-0" and table["type"][468] == "left_hand"
    assert table["type"][489] == "pose" and table["row_id"][-1] == "22-right_hand-20"
    missing_row = 543 + 522  # frame 18, first right-hand row: NaN, as in GISLR files
    assert table["type"][missing_row] == "right_hand" and np.isnan(table["x"][missing_row])


def _write_table(path: Path, columns: dict) -> Path:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table(columns), path)
    return path


def _gislr_rows(frames=(0, 1)) -> dict:
    """A GISLR-like table in its own dtypes (int16), listing only pose and the right hand."""
    rows: dict[str, list] = {k: [] for k in ("frame", "row_id", "type", "landmark_index")}
    for frame in frames:
        for part, count in (("pose", 33), ("right_hand", 21)):
            for i in range(count):
                rows["frame"].append(frame)
                rows["row_id"].append(f"{frame}-{part}-{i}")
                rows["type"].append(part)
                rows["landmark_index"].append(i)
    n = len(rows["frame"])
    pa = pytest.importorskip("pyarrow")
    return {
        "frame": pa.array(rows["frame"], pa.int16()),
        "row_id": rows["row_id"],
        "type": rows["type"],
        "landmark_index": pa.array(rows["landmark_index"], pa.int16()),
        "x": np.linspace(0.1, 0.9, n),
        "y": np.linspace(0.9, 0.1, n),
        "z": np.zeros(n),
    }


@pytest.mark.parametrize("dictionary_types", [False, True])
def test_parquet_reads_a_gislr_style_table(tmp_path, dictionary_types):
    columns = _gislr_rows(frames=(5, 6, 8))
    if dictionary_types:  # parquet writers often store the type column dictionary-encoded
        pa = pytest.importorskip("pyarrow")
        columns["type"] = pa.array(columns["type"]).dictionary_encode()
    seq = read_parquet(_write_table(tmp_path / "g.parquet", columns))
    assert seq.num_frames == 4 and seq.metadata["first_frame"] == 5
    assert seq.present("pose").tolist() == [True, True, False, True]  # frame 7 was not listed
    assert not seq.present("face").any() and not seq.present("left_hand").any()
    assert seq.data[0, 522, 0] == pytest.approx(columns["x"][33])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.pop("landmark_index"), r"missing columns \['landmark_index'\]"),
        (
            lambda c: c["type"].__setitem__(40, "hand"),
            r"row 40 \(row_id '0-right_hand-7'\): type 'hand'",
        ),
        (
            lambda c: c.__setitem__(
                "landmark_index",
                list(range(33)) + [21] + list(range(1, 21)) + list(range(33)) + list(range(21)),
            ),
            "landmark_index 21 is outside 0..20",
        ),  # fmt: skip
        (lambda c: c.__setitem__("x", ["a"] * 108), "column 'x' has type string"),
        (lambda c: c.__setitem__("type", [1] * 108), "column 'type' has type int64; expected str"),
        (lambda c: c.__setitem__("frame", [0.5] * 108), "column 'frame' has type double"),
        (lambda c: c["row_id"].__setitem__(0, "0-pose-0"), None),  # row_id is informative only
    ],
)
def test_parquet_errors_name_file_row_and_field(tmp_path, change, message):
    columns = _gislr_rows()
    if message is None:
        change(columns)
        read_parquet(_write_table(tmp_path / "ok.parquet", columns))
        return
    columns = {k: (v if not isinstance(v, np.ndarray) else v.copy()) for k, v in columns.items()}
    columns["type"] = list(columns["type"])
    change(columns)
    path = _write_table(tmp_path / "bad.parquet", columns)
    with pytest.raises(FormatError, match=message) as info:
        read_parquet(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("row", "channel", "value", "message"),
    [
        (3, "x", np.nan, r"row 3 \(row_id '0-pose-3'\): x is nan .* all NaN for a missing"),
        (37, "z", np.inf, r"row 37 .*: z is inf"),
    ],
)
def test_parquet_partly_nonfinite_rows_are_missing_or_strict_errors(
    tmp_path, caplog, row, channel, value, message
):
    columns = _gislr_rows()
    columns[channel] = columns[channel].copy()
    columns[channel][row] = value
    path = _write_table(tmp_path / "odd.parquet", columns)
    with pytest.raises(FormatError, match=message) as info:
        read_parquet(path, strict=True)
    assert str(path) in str(info.value)
    with caplog.at_level("WARNING", logger="edge_slr.landmarks"):
        seq = read_parquet(path)
    point = row if row < 33 else 522 + row - 33  # pose rows, then right-hand rows
    assert seq.data[0, point].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert seq.confidence[0].sum() == 53 and seq.confidence[1].sum() == 54
    part = "pose" if row < 33 else "right_hand"
    assert seq.metadata["nonfinite_marked_missing"] == {part: 1}
    warnings = [r.getMessage() for r in caplog.records if "NaN/inf" in r.getMessage()]
    assert len(warnings) == 1 and f"{part} 1 in 1 frame" in warnings[0]


def test_parquet_duplicate_rows_are_an_error(tmp_path):
    columns = _gislr_rows()
    second_frame = list(range(33)) + list(range(21))
    columns["landmark_index"] = list(range(33)) + [0, 0] + list(range(2, 21)) + second_frame
    with pytest.raises(FormatError, match="row 34 .* appears twice"):
        read_parquet(_write_table(tmp_path / "dup.parquet", columns))


@pytest.mark.parametrize("suffix", [".npz", ".pose", ".parquet"])
def test_truncated_files_are_format_errors(tmp_path, suffix):
    if suffix != ".npz":
        pytest.importorskip("pose_format" if suffix == ".pose" else "pyarrow")
    path = tmp_path / f"clip{suffix}"
    save_landmarks(path, _sequence())
    raw = path.read_bytes()
    for keep in (len(raw) // 2, len(raw) - 4, 3):
        path.write_bytes(raw[:keep])
        with pytest.raises(FormatError) as info:
            load_landmarks(path)
        assert str(path) in str(info.value)


def test_truncated_real_version_01_pose_is_detected(tmp_path):
    # pose-format itself reads a short v0.1 body as fewer frames of shifted values.
    raw = EXCERPT_178.read_bytes()
    path = tmp_path / "short.pose"
    path.write_bytes(raw[: len(raw) - 178 * 4 * 3])
    with pytest.raises(FormatError, match="does not match .* truncated"):
        load_landmarks(path)


def test_dispatch_errors(tmp_path):
    with pytest.raises(FormatError, match=r"clip\.csv: unknown landmark file suffix '\.csv'"):
        load_landmarks(tmp_path / "clip.csv")
    with pytest.raises(FormatError, match="suffix '.json'"):
        save_landmarks(tmp_path / "clip.json", _sequence())
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        load_landmarks(tmp_path / "absent.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(FormatError, match="text.npz: not a readable .npz"):
        load_landmarks(tmp_path / "text.npz")


def _rewrite_npz(path: Path, **fields) -> None:
    with np.load(path) as archive:
        content = {k: archive[k] for k in archive.files}
    content.update(fields)
    content = {k: v for k, v in content.items() if v is not None}
    with open(path, "wb") as handle:
        np.savez(handle, **content)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"fps": None}, r"field 'fps' is missing"),
        ({"format_version": np.int64(7)}, r"field 'format_version' is 7"),
        ({"metadata": np.str_("{not json")}, r"field 'metadata' is not valid JSON"),
        (
            {"data": np.zeros((4, 178, 4), np.float32)},
            r"shape \(4, 178, 4\); expected \(T, 543, 4\)",
        ),
        ({"fps": np.float64(-3)}, r"fps is -3.0"),
        ({"fps": np.zeros(2)}, r"field 'fps' is float64 with shape \(2,\)"),
    ],
)
def test_npz_errors_name_the_field(tmp_path, fields, message):
    path = tmp_path / "clip.npz"
    save_landmarks(path, _sequence())
    _rewrite_npz(path, **fields)
    with pytest.raises(FormatError, match=message) as info:
        read_npz(path)
    assert str(path) in str(info.value)


def test_nan_coordinates_in_files_are_missing_or_strict_errors(tmp_path, caplog):
    seq = _sequence()
    data = seq.data.copy()
    data[3, 100, 2] = np.nan
    data[4, 530, 0] = np.inf
    path = tmp_path / "nan.npz"
    save_landmarks(path, seq)
    _rewrite_npz(path, data=data)
    with pytest.raises(
        FormatError, match=r"nan\.npz: .*z = nan at frame 3, point 100 \(face\[67\]\)"
    ):
        load_landmarks(path, strict=True)
    with caplog.at_level("WARNING", logger="edge_slr.landmarks"):
        back = load_landmarks(path)
    assert back.data[3, 100].tolist() == back.data[4, 530].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert back.metadata["nonfinite_marked_missing"] == {"face": 1, "right_hand": 1}
    expected = data.copy()
    expected[3, 100] = expected[4, 530] = 0.0
    np.testing.assert_array_equal(back.data, expected)
    (warning,) = [r.getMessage() for r in caplog.records if "NaN/inf" in r.getMessage()]
    assert "nan.npz: 2 points" in warning and "face 1 in 1 frame, right_hand 1" in warning
    with pytest.raises(InputError, match="z = nan at frame 3"):  # the API stays strict
        LandmarkSequence(data, 25.0)
    pytest.importorskip("pose_format")
    from edge_slr.landmarks.pose_file import sequence_to_pose

    pose = sequence_to_pose(seq)
    pose.body.data.data[2, 0, 505, 0] = np.nan
    with open(tmp_path / "nan.pose", "wb") as handle:
        pose.write(handle)
    with pytest.raises(
        FormatError, match=r"x = nan at frame 2, point 505 \(left_hand\[4\] THUMB_TIP\)"
    ):
        load_landmarks(tmp_path / "nan.pose", strict=True)
    back = load_landmarks(tmp_path / "nan.pose")
    assert back.confidence[2, 505] == 0 and back.confidence[2, 504] == 1
    assert back.metadata["nonfinite_marked_missing"] == {"left_hand": 1}


def _write_pose(path: Path, components: list[tuple[str, list[str]]]) -> Path:
    pose_format = pytest.importorskip("pose_format")
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    header = PoseHeader(
        0.2,
        PoseHeaderDimensions(640, 480, 0),
        [
            PoseHeaderComponent(name, points, [], [(255, 0, 0)], "XYC")
            for name, points in components
        ],
    )
    n = sum(len(points) for _, points in components)
    data = np.ma.masked_array(np.full((2, 1, n, 2), 100.0, np.float32), mask=False)
    body = NumPyPoseBody(fps=25, data=data, confidence=np.ones((2, 1, n), np.float32))
    with open(path, "wb") as handle:
        pose_format.Pose(header, body).write(handle)
    return path


def test_pose_with_another_point_set_cannot_be_mapped(tmp_path):
    openpose = _write_pose(tmp_path / "openpose.pose", [("pose_keypoints_2d", ["Nose", "Neck"])])
    with pytest.raises(
        FormatError, match=r"openpose.pose: no MediaPipe Holistic component .*pose_keypoints_2d"
    ):
        load_landmarks(openpose)
    odd = _write_pose(tmp_path / "odd.pose", [("LEFT_HAND_LANDMARKS", ["WRIST", "PALM"])])
    with pytest.raises(
        FormatError, match=r"odd.pose: component LEFT_HAND_LANDMARKS has point 'PALM'"
    ):
        load_landmarks(odd)
    face = _write_pose(tmp_path / "face.pose", [("FACE_LANDMARKS", ["0", "500"])])
    with pytest.raises(FormatError, match="point '500'"):
        load_landmarks(face)


def test_two_dimensional_pose_gets_zero_depth(tmp_path):
    path = _write_pose(tmp_path / "xy.pose", [("RIGHT_HAND_LANDMARKS", ["WRIST", "THUMB_TIP"])])
    seq = load_landmarks(path)
    assert seq.data[0, 522].tolist() == pytest.approx([100 / 640, 100 / 480, 0.0, 1.0])
    assert seq.data[0, 526, :2].tolist() == pytest.approx([100 / 640, 100 / 480])
    assert seq.present("right_hand").all() and not seq.present("pose").any()


def _check_against_raw(path: Path, seq: LandmarkSequence) -> None:
    """Mapped values equal the file's own values, read independently with pose-format."""
    pose_format = pytest.importorskip("pose_format")
    with open(path, "rb") as handle:
        pose = pose_format.Pose.read(handle.read())
    width, height = pose.header.dimensions.width, pose.header.dimensions.height
    for name in ("RIGHT_HAND_LANDMARKS", "POSE_LANDMARKS", "FACE_LANDMARKS"):
        raw = pose.get_components([name]).body
        component = [c for c in pose.header.components if c.name == name][0]
        part = {"RIGHT_HAND_LANDMARKS": "right_hand", "POSE_LANDMARKS": "pose"}.get(name, "face")
        for i, point in enumerate(component.points[:12]):
            if part == "pose":
                local = layout.POSE_LANDMARK_NAMES.index(point)
            elif part == "face":
                local = int(point)
            else:
                local = layout.HAND_LANDMARK_NAMES.index(point)
            target = layout.PART_SLICES[part].start + local
            conf = np.asarray(raw.confidence[:, 0, i])
            np.testing.assert_array_equal(seq.data[:, target, 3], conf)
            seen = conf > 0
            np.testing.assert_allclose(
                seq.data[seen, target, 0] * width, np.asarray(raw.data[seen, 0, i, 0]), rtol=1e-5
            )
            np.testing.assert_allclose(
                seq.data[seen, target, 1] * height, np.asarray(raw.data[seen, 0, i, 1]), rtol=1e-5
            )


def test_bundled_excerpts_map_into_the_layout():
    seq = load_landmarks(EXCERPT_586)
    assert (seq.num_frames, seq.fps, seq.metadata["source_points"]) == (4, 25.0, 586)
    assert seq.metadata["dropped_components"] == ["POSE_WORLD_LANDMARKS"]
    assert seq.present("right_hand").tolist() == [True, False, False, True]
    _check_against_raw(EXCERPT_586, seq)
    reduced = load_landmarks(EXCERPT_178)
    assert reduced.metadata["mapped_points"] == 178
    present = reduced.confidence[0] > 0
    assert present[layout.PART_SLICES["pose"]].sum() == 8
    assert present[layout.lip_indices()].all()  # the reduced face keeps every lip point
    assert present[layout.PART_SLICES["face"]].sum() == 128
    _check_against_raw(EXCERPT_178, reduced)


@pytest.mark.parametrize("relative", sorted(SHARED_POSE_FILES))
def test_every_shared_pose_file_reads(shared_data, relative):
    path = shared_data / "landmarks" / relative
    if not path.exists():
        pytest.skip(f"{relative} is absent")
    frames, fps, points, mapped = SHARED_POSE_FILES[relative]
    seq = load_landmarks(path)
    assert seq.num_frames == frames and seq.fps == pytest.approx(fps, rel=1e-4)
    assert seq.metadata["source_points"] == points and seq.metadata["mapped_points"] == mapped
    assert seq.present("face").all() and seq.present("pose").all()
    features = get_preset("kdmslrt92").features(seq)
    assert features.shape == (frames, 276) and np.isfinite(features).all()
    if points == 543:
        _check_against_raw(path, seq)


def test_missing_pose_format_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pose_format", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'edge-slr\[pose\]'"):
        load_landmarks(EXCERPT_178)


def test_importing_landmarks_needs_only_numpy():
    code = (
        "import sys, edge_slr.landmarks\n"
        "heavy = {'pose_format', 'pyarrow', 'torch', 'mediapipe', 'tensorflow', 'cv2'}\n"
        "print(json.dumps(sorted(heavy & set(sys.modules))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []


def test_npz_is_a_plain_zip_without_pickles(tmp_path):
    save_landmarks(tmp_path / "clip.npz", _sequence())
    with zipfile.ZipFile(tmp_path / "clip.npz") as archive:
        assert sorted(archive.namelist()) == [
            "data.npy", "format_version.npy", "fps.npy", "metadata.npy",
        ]  # fmt: skip
    with np.load(tmp_path / "clip.npz", allow_pickle=False) as archive:
        assert json.loads(str(archive["metadata"]))["glosses"] == ["A", "B"]
        assert archive["data"].dtype == np.float32


def test_pose_body_header_is_checked_against_the_file_size(tmp_path):
    path = tmp_path / "clip.pose"
    save_landmarks(path, _sequence())
    raw = bytearray(path.read_bytes())
    # Claim one frame more than the body holds (the frame count sits after the fps float).
    body_start = len(raw) - 6 * 543 * 4 * 4 - 10
    frames = struct.unpack_from("<I", raw, body_start + 4)[0]
    assert frames == 6
    struct.pack_into("<I", raw, body_start + 4, 7)
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="7 frames"):
        load_landmarks(path)
