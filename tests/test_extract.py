"""Landmark extraction: MediaPipe Holistic on real video, frame folders, batch runs and the CLI."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edge_slr.errors import FormatError, InputError, MissingDependencyError
from edge_slr.landmarks.layout import PART_SLICES

pytest.importorskip("cv2")
pytest.importorskip("mediapipe")

from edge_slr.cli import main as cli_main  # noqa: E402
from edge_slr.data.dataset import LandmarkDataset  # noqa: E402
from edge_slr.landmarks.batch import (  # noqa: E402
    SUMMARY_NAME,
    jobs_for_inputs,
    jobs_for_samples,
    run_batch,
)
from edge_slr.landmarks.extract import (  # noqa: E402
    HolisticExtractor,
    HolisticOptions,
    NoPersonDetectedError,
    compare_landmarks,
)
from edge_slr.landmarks.io import load_landmarks, save_landmarks  # noqa: E402
from edge_slr.landmarks.mediapipe_backends import import_mediapipe  # noqa: E402
from edge_slr.landmarks.video import open_frames, read_image  # noqa: E402

AUTSL_VIDEO = "video/autsl_signer0_sample1000_color.mp4"
AUTSL_POSE = "landmarks/autsl/signer0_sample1000.pose"
PHOENIX_FRAMES = "video/phoenix2014t-frames"


def _shared(shared_data: Path, relative: str) -> Path:
    path = shared_data / relative
    if not path.exists():
        pytest.skip(f"{relative} is absent from {shared_data}")
    return path


@pytest.fixture(scope="module")
def autsl(shared_data: Path):
    """(video path, extracted sequence, reference sequence): one extraction for the module."""
    video = _shared(shared_data, AUTSL_VIDEO)
    reference = load_landmarks(_shared(shared_data, AUTSL_POSE))
    with HolisticExtractor.create_from_options(HolisticOptions()) as extractor:
        seq = extractor.extract_video(video)
    return video, seq, reference


@pytest.fixture(scope="module")
def phoenix_pngs(shared_data: Path) -> list[Path]:
    pngs = sorted(_shared(shared_data, PHOENIX_FRAMES).glob("*.png"))
    if len(pngs) < 2:
        pytest.skip("the two PHOENIX frames are absent")
    return pngs


@pytest.fixture
def main(monkeypatch):
    """The real ``edge-slr`` entry point, with ``extract`` registered if the lead has not yet."""
    if "extract" not in cli_main.COMMAND_MODULES:
        monkeypatch.setattr(cli_main, "COMMAND_MODULES", (*cli_main.COMMAND_MODULES, "extract"))
    return cli_main.main


def _blank_video(path: Path, frames: int = 5) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (64, 64))
    for _ in range(frames):
        writer.write(np.full((64, 64, 3), 128, np.uint8))
    writer.release()
    assert path.stat().st_size > 0
    return path


def _corrupt_file(path: Path, size: int = 4096) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


# ---- options and creation errors -------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"running_mode": "live"}, "running_mode"),
        ({"model_complexity": 3}, "model_complexity"),
        ({"model_complexity": True}, "model_complexity"),
        ({"min_detection_confidence": 1.5}, "min_detection_confidence"),
        ({"min_tracking_confidence": "high"}, "min_tracking_confidence"),
        ({"smooth_landmarks": 1}, "smooth_landmarks"),
        ({"task_model_path": "h.task", "model_complexity": 2}, "Solutions backend only"),
        ({"pose_model_path": "lite.tflite"}, "pose_model_path is for model_complexity 0 or 2"),
    ],
)
def test_options_reject_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        HolisticOptions(**kwargs)


def test_options_store_paths_and_describe_themselves() -> None:
    options = HolisticOptions(task_model_path="models/holistic.task")
    assert options.task_model_path == Path("models/holistic.task")
    assert options.backend == "tasks"
    assert json.loads(json.dumps(options.to_dict()))["task_model_path"] == "models/holistic.task"
    assert HolisticOptions().backend == "solutions"


@pytest.mark.parametrize(
    "complexity, model", [(0, "pose_landmark_lite"), (2, "pose_landmark_heavy")]
)
def test_complexity_without_shipped_model_is_a_clear_error(complexity: int, model: str) -> None:
    mp = import_mediapipe()
    if (Path(mp.__file__).parent / "modules/pose_landmark" / f"{model}.tflite").exists():
        pytest.skip(f"{model}.tflite is installed in this mediapipe")
    with pytest.raises(InputError, match=f"{model}.tflite.*pose_model_path"):
        HolisticExtractor.create_from_options(HolisticOptions(model_complexity=complexity))


def test_pose_model_path_must_be_a_tflite_model(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        HolisticExtractor.create_from_options(
            HolisticOptions(model_complexity=0, pose_model_path=tmp_path / "missing.tflite")
        )
    bogus = _corrupt_file(tmp_path / "pose_landmark_lite.tflite")
    with pytest.raises(FormatError, match="not a TFLite model"):
        HolisticExtractor.create_from_options(
            HolisticOptions(model_complexity=0, pose_model_path=bogus)
        )


def test_tasks_backend_reports_missing_or_broken_bundles(tmp_path: Path) -> None:
    # The Tasks HolisticLandmarker really loads these; only a real .task bundle would run.
    with pytest.raises(InputError, match="bundle not found"):
        HolisticExtractor.create_from_options(HolisticOptions(task_model_path=tmp_path / "x.task"))
    garbage = _corrupt_file(tmp_path / "garbage.task")
    with pytest.raises(FormatError, match="not a usable HolisticLandmarker"):
        HolisticExtractor.create_from_options(HolisticOptions(task_model_path=garbage))
    empty_bundle = tmp_path / "empty.task"
    with zipfile.ZipFile(empty_bundle, "w") as bundle:
        bundle.writestr("readme.txt", "no models here")
    with pytest.raises(FormatError, match=r"empty\.task.*\.tflite"):
        HolisticExtractor.create_from_options(HolisticOptions(task_model_path=empty_bundle))


def test_clear_error_when_neither_api_is_available(monkeypatch, tmp_path: Path) -> None:
    mp = import_mediapipe()
    # As in mediapipe >= 0.10.30: no solutions API, so a .task bundle is the only way.
    monkeypatch.delattr(mp, "solutions")
    with pytest.raises(MissingDependencyError, match="task_model_path"):
        HolisticExtractor.create_from_options(HolisticOptions())
    # And a mediapipe without the Tasks HolisticLandmarker cannot use the bundle either.
    monkeypatch.delattr(mp.tasks.vision, "HolisticLandmarker")
    bundle = _corrupt_file(tmp_path / "holistic.task")
    with pytest.raises(MissingDependencyError, match="HolisticLandmarker"):
        HolisticExtractor.create_from_options(HolisticOptions(task_model_path=bundle))


# ---- frame sources ---------------------------------------------------------------------------


def test_frame_folder_order_layouts_and_rgb(tmp_path: Path) -> None:
    import cv2

    folder = tmp_path / "NAME" / "1"  # PHOENIX release layout
    folder.mkdir(parents=True)
    for value in (1, 2, 10):
        bgr = np.zeros((8, 6, 3), np.uint8)
        bgr[..., 0] = value  # blue channel carries the frame number
        cv2.imwrite(str(folder / f"images{value}.png"), bgr)
    (folder / "notes.txt").write_text("not a frame")
    for given in (tmp_path / "NAME", folder, folder / "*.png"):
        source = open_frames(given)
        assert [p.name for p in source.frame_paths] == [
            "images1.png",
            "images2.png",
            "images10.png",
        ]
        assert source.fps == 25.0 and source.kind == "frames"
    frames = list(open_frames(folder, fps=50).frames())
    assert [int(f[0, 0, 2]) for f in frames] == [1, 2, 10]  # RGB: blue is the last channel
    assert frames[0].shape == (8, 6, 3) and frames[0].dtype == np.uint8


def test_unreadable_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        open_frames(tmp_path / "missing.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="no frame images"):
        open_frames(tmp_path / "empty")
    (tmp_path / "zero.mp4").write_bytes(b"")
    with pytest.raises(FormatError, match="zero.mp4"):
        list(open_frames(tmp_path / "zero.mp4").frames())
    with pytest.raises(FormatError, match="corrupt"):
        list(open_frames(_corrupt_file(tmp_path / "noise.mp4")).frames())
    with pytest.raises(FormatError, match="not a readable image"):
        read_image(_corrupt_file(tmp_path / "bad.png"))
    with pytest.raises(InputError, match="fps"):
        open_frames(tmp_path / "empty", fps=0)


# ---- extraction on real data ------------------------------------------------------------------


def test_autsl_video_matches_reference_recording(autsl) -> None:
    video, seq, reference = autsl
    assert seq.data.shape == (43, 543, 4) and seq.data.dtype == np.float32
    assert seq.fps == pytest.approx(30.0)
    assert seq.metadata["image_width"] == 512 and seq.metadata["image_height"] == 512
    assert seq.metadata["frames_with_person"] == 43
    assert seq.present("pose").all() and seq.present("face").all()
    result = compare_landmarks(seq, reference)
    right, left = result["right_hand"], result["left_hand"]
    # Measured: right 43/43 frames, error 0.0018; left 35-36 vs 40 frames, error 0.0065.
    assert right.agreement >= 0.9 and right.mean_abs_error <= 0.005
    assert left.agreement >= 0.75 and left.mean_abs_error <= 0.015
    face = compare_landmarks(seq, reference, parts=("face",))["face"]
    assert face.agreement == 1.0 and face.mean_abs_error < 0.001


def test_missing_parts_have_zero_confidence_and_coordinates(autsl) -> None:
    _, seq, _ = autsl
    data = seq.data
    for part, part_slice in PART_SLICES.items():
        block = data[:, part_slice]
        found = block[..., 3].max(axis=1) > 0
        assert np.all(block[~found] == 0), part
        if part != "pose":  # face and hand points are 1 where detected
            assert np.all(block[found][..., 3] == 1.0), part
    assert ((data[..., 3] >= 0) & (data[..., 3] <= 1)).all()
    hands = data[:, 501:543]
    assert 0 < seq.metadata["frames_with_part"]["left_hand"] < 43  # some frames lack it
    assert np.all(
        (hands[hands[..., 3] > 0][:, :2] > -0.5) & (hands[hands[..., 3] > 0][:, :2] < 1.5)
    )


def test_streaming_frames_equal_whole_video_and_timestamps_are_checked(autsl) -> None:
    video, seq, _ = autsl
    with HolisticExtractor.create_from_options(HolisticOptions()) as extractor:
        with pytest.raises(InputError, match="running_mode='image'"):
            extractor.extract_image(np.zeros((8, 8, 3), np.uint8))
        source = open_frames(video)
        for index, rgb in enumerate(source.frames()):
            if index == 12:
                break
            row = extractor.extract_video_frame(rgb, index * 33)
            np.testing.assert_array_equal(row, seq.data[index])  # tracking is causal
        with pytest.raises(InputError, match="strictly increase: got 330 ms after 363 ms"):
            extractor.extract_video_frame(rgb, 330)
        with pytest.raises(InputError, match="int"):
            extractor.extract_video_frame(rgb, 400.0)
        with pytest.raises(InputError, match="uint8"):
            extractor.extract_video_frame(rgb.astype(np.float32), 400)
        with pytest.raises(InputError, match=r"\(H, W, 3\)"):
            extractor.extract_video_frame(rgb[..., 0], 400)
        extractor.reset()
        np.testing.assert_array_equal(extractor.extract_video_frame(rgb, 0).shape, (543, 4))
    with pytest.raises(InputError, match="closed"):
        extractor.extract_video_frame(rgb, 1000)


def test_image_mode_on_phoenix_frame(phoenix_pngs: list[Path]) -> None:
    with HolisticExtractor.create_from_options(HolisticOptions(running_mode="image")) as ex:
        points = ex.extract_image(read_image(phoenix_pngs[0]))
        with pytest.raises(InputError, match="running_mode='video'"):
            ex.extract_video_frame(read_image(phoenix_pngs[0]), 0)
        with pytest.raises(InputError, match="numpy array"):
            ex.extract_image([[0, 0, 0]])
    assert points.shape == (543, 4) and points.dtype == np.float32
    assert (
        points[PART_SLICES["pose"], 3].max() > 0.5 and (points[PART_SLICES["face"], 3] == 1).all()
    )
    face = points[PART_SLICES["face"], :2]
    assert (face > 0).all() and (face < 1).all()  # the signer's face is inside the frame


def test_video_without_person(tmp_path: Path) -> None:
    video = _blank_video(tmp_path / "empty_room.mp4")
    with HolisticExtractor.create_from_options(HolisticOptions()) as extractor:
        with pytest.raises(NoPersonDetectedError, match="no person detected in any of the 5"):
            extractor.extract_video(video)
        seq = extractor.extract_video(video, on_no_person="keep")
        with pytest.raises(InputError, match="on_no_person"):
            extractor.extract_video(video, on_no_person="skip")
    assert seq.num_frames == 5 and seq.fps == pytest.approx(25.0)
    assert not seq.data.any() and seq.metadata["frames_with_person"] == 0


def test_pose_output_round_trip(autsl, tmp_path: Path) -> None:
    _, seq, _ = autsl
    path = tmp_path / "clip.pose"
    save_landmarks(path, seq)
    back = load_landmarks(path)
    assert back.num_frames == seq.num_frames and back.fps == pytest.approx(seq.fps)
    np.testing.assert_array_equal(back.data[..., 3] > 0, seq.data[..., 3] > 0)
    np.testing.assert_allclose(back.data[..., :2], seq.data[..., :2], atol=1e-5)


# ---- batch extraction and CLI -----------------------------------------------------------------


def _fake_phoenix(root: Path, pngs: list[Path]) -> Path:
    """PHOENIX-2014-T layout with 4 train samples: 2 good (both folder layouts), 1 corrupt
    frame, 1 without frames."""
    frames = root / "features" / "fullFrame-210x260px" / "train"
    for sub in ("clipA/1", "clipB"):
        (frames / sub).mkdir(parents=True)
        for i, png in enumerate(pngs, start=1):
            shutil.copy(png, frames / sub / f"images{i:04d}.png")
    _corrupt_file(frames / "clipC" / "1" / "images0001.png")
    header = "name|video|start|end|speaker|orth|translation"
    rows = [
        f"clip{n}|clip{n}/1/*.png|-1|-1|Signer0{i}|REGEN WIND|es regnet"
        for i, n in enumerate("ABCD")
    ]
    text = "\n".join([header, *rows]) + "\n"
    (root / "PHOENIX-2014-T.train.corpus.csv").write_text(text)
    return root


def test_batch_over_fake_corpus_is_resumable_and_records_failures(
    phoenix_pngs: list[Path], tmp_path: Path
) -> None:
    from edge_slr.data.corpora import load_corpus

    root = _fake_phoenix(tmp_path / "phoenix", phoenix_pngs)
    samples = load_corpus("phoenix2014t", root, "train")
    assert [s.id for s in samples] == ["clipA", "clipB", "clipC", "clipD"]
    out = tmp_path / "out" / "train"
    out.mkdir(parents=True)
    stale = out / ".clipA.partial-999.npz"
    stale.write_bytes(b"half written by a killed run")
    jobs = jobs_for_samples(samples, out)
    summary = run_batch(jobs, HolisticOptions(), progress=False)
    status = {o.id: o.status for o in summary.outcomes}
    assert status == {"clipA": "done", "clipB": "done", "clipC": "failed", "clipD": "failed"}
    failures = {o.id: o for o in summary.failures}
    assert failures["clipC"].error_type == "FormatError"
    assert "not a readable image" in failures["clipC"].error
    assert "no video or frame folder" in failures["clipD"].error
    assert not stale.exists() and sorted(p.name for p in out.iterdir()) == [
        "clipA.npz",
        "clipB.npz",
        "extraction_manifest.jsonl",  # one record per input: done, or failed with its reason
    ]
    seq = load_landmarks(out / "clipA.npz")
    assert seq.num_frames == 2 and seq.fps == 25.0 and seq.present("face").all()
    mtime = (out / "clipA.npz").stat().st_mtime_ns
    again = run_batch(jobs, HolisticOptions(), progress=False)
    assert [o.status for o in again.outcomes] == ["skipped", "skipped", "failed", "failed"]
    assert (out / "clipA.npz").stat().st_mtime_ns == mtime
    totals = again.to_dict()
    assert totals["skipped"] == 2 and totals["failed"] == 2 and totals["done"] == 0


def test_cli_corpus_mode_writes_dataset_layout(
    main, phoenix_pngs: list[Path], tmp_path: Path, capsys
) -> None:
    root = _fake_phoenix(tmp_path / "phoenix", phoenix_pngs)
    out = tmp_path / "landmarks"
    argv = ["extract", "--corpus", "phoenix2014t", "--root", str(root), "--split", "train"]
    argv += ["--out", str(out), "--workers", "2", "--no-progress"]
    assert main(argv) == 1  # two samples failed
    captured = capsys.readouterr()
    assert "extracted 2, skipped 0 (already done), failed 2" in captured.out
    assert "FAILED clipC: FormatError" in captured.err
    index = (out / "train" / "index.tsv").read_text().splitlines()
    assert index == [
        "id\tsigner\tnum_frames\tglosses",
        "clipA\tSigner00\t2\tREGEN WIND",
        "clipB\tSigner01\t2\tREGEN WIND",
    ]
    dataset = LandmarkDataset(out, "train")  # the layout the trainer reads
    assert len(dataset) == 2 and dataset[1].id == "clipB"
    assert dataset[1].landmarks.num_frames == 2 and dataset[1].glosses == ("REGEN", "WIND")
    assert dataset.vocabulary.glosses == ("<blank>", "REGEN", "WIND")
    assert dataset.description["corpus"] == "phoenix2014t"
    assert dataset.description["splits"]["train"]["failed"] == 2
    summary = json.loads((out / "train" / SUMMARY_NAME).read_text())
    assert summary["corpus"] == "phoenix2014t" and summary["done"] == 2
    assert {f["id"] for f in summary["failures"]} == {"clipC", "clipD"}
    # Resume, without --split: the splits present (train only here) are found.
    argv = ["extract", "--corpus", "phoenix2014t", "--root", str(root), "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 1
    output = capsys.readouterr().out
    assert "extracted 0, skipped 2 (already done), failed 2" in output
    assert "phoenix2014t train: landmark dataset" in output and " dev" not in output
    assert len(LandmarkDataset(out, "train")) == 2
    # Other extractor settings into the same dataset would mix two datasets: refused.
    assert main([*argv, "--no-progress", "--no-smooth"]) == 2
    assert "already holds a different dataset" in capsys.readouterr().err


def test_cli_plain_inputs(
    main, shared_data: Path, phoenix_pngs: list[Path], tmp_path: Path, capsys
) -> None:
    video = _shared(shared_data, AUTSL_VIDEO)
    frames = tmp_path / "phoenix_clip"
    frames.mkdir()
    for png in phoenix_pngs:
        shutil.copy(png, frames / png.name)
    broken = _corrupt_file(tmp_path / "broken.mp4")
    out = tmp_path / "out"
    argv = ["extract", str(video), str(frames), str(broken), "-o", str(out), "--format", "pose"]
    assert main(argv + ["--no-progress"]) == 1
    assert "extracted 2, skipped 0 (already done), failed 1" in capsys.readouterr().out
    seq = load_landmarks(out / "autsl_signer0_sample1000_color.pose")
    assert seq.num_frames == 43 and seq.fps == pytest.approx(30.0)
    assert load_landmarks(out / "phoenix_clip.pose").num_frames == 2
    summary = json.loads((out / SUMMARY_NAME).read_text())
    assert summary["failures"][0]["id"] == "broken" and "corrupt" in summary["failures"][0]["error"]
    assert main(argv + ["--no-progress"]) == 1
    assert "skipped 2" in capsys.readouterr().out


def test_cli_and_job_argument_errors(main, tmp_path: Path, capsys) -> None:
    assert main(["extract", "-o", str(tmp_path)]) == 2
    assert "either video files" in capsys.readouterr().err
    assert main(["extract", "--corpus", "phoenix2014t", "-o", str(tmp_path)]) == 2
    assert "--root" in capsys.readouterr().err
    assert main(["extract", str(tmp_path), "-o", str(tmp_path), "--fps", "-5"]) == 2
    assert "--fps must be in (0, 1000], got -5.0" in capsys.readouterr().err
    with pytest.raises(InputError, match="both be written as a.npz"):
        jobs_for_inputs([tmp_path / "x" / "a.mp4", tmp_path / "y" / "a.avi"], tmp_path)
    with pytest.raises(InputError, match="workers"):
        run_batch([], workers=0)


def test_batch_run_level_errors_are_raised_before_any_work(autsl, tmp_path: Path) -> None:
    _, seq, _ = autsl
    landmark_file = tmp_path / "already.npz"
    save_landmarks(landmark_file, seq)
    jobs = jobs_for_inputs([landmark_file], tmp_path / "out")
    summary = run_batch(jobs, progress=False)
    assert summary.failures[0].error.endswith("is already a landmark file; nothing to extract")
    with pytest.raises(InputError, match=r"repeated: \['already'\]"):
        run_batch(jobs + jobs, progress=False)
    bad = HolisticOptions(model_complexity=0, pose_model_path=tmp_path / "missing.tflite")
    two = jobs_for_inputs([tmp_path / "a.mp4", tmp_path / "b.mp4"], tmp_path / "out")
    with pytest.raises(InputError, match="pose_model_path not found"):
        run_batch(two, bad, workers=2, progress=False)
    assert not (tmp_path / "out" / "a.npz").exists()


def test_tasks_style_results_convert_to_the_layout() -> None:
    # The Tasks API reports parts as lists of its NormalizedLandmark (empty when not found);
    # the conversion is shared with the Solutions backend.
    import_mediapipe()
    from mediapipe.tasks.python.components.containers.landmark import NormalizedLandmark

    from edge_slr.landmarks.mediapipe_backends import to_layout

    def points(n: int, visibility: float | None = None) -> list:
        return [NormalizedLandmark(x=i / n, y=0.5, z=-0.1, visibility=visibility) for i in range(n)]

    frame = to_layout(points(33, visibility=0.0), points(478), [], points(21))
    assert frame.shape == (543, 4) and frame.dtype == np.float32
    pose, face = frame[PART_SLICES["pose"]], frame[PART_SLICES["face"]]
    assert (pose[:, 3] > 0).all() and pose[:, 3].max() < 1e-5  # invisible but detected
    assert face[467, 0] == pytest.approx(467 / 478) and (face[:, 3] == 1).all()  # iris dropped
    assert not frame[PART_SLICES["left_hand"]].any()
    assert (frame[PART_SLICES["right_hand"], 3] == 1).all()
    assert not to_layout(None, [], points(5), None).any()  # a truncated hand is not placed
