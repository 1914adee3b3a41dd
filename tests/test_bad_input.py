"""Bad input from the issue-13 probe: each case a one-line error (exit 2) or a stated warning.

One ONNX model directory of the session's tiny student (tests/conftest.py) serves every test;
tests that break a model work on a copy of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import build_tiny_student

from edge_slr.cli.main import main
from edge_slr.errors import FormatError, InputError
from edge_slr.landmarks.layout import PART_SLICES

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def student(tmp_path_factory: pytest.TempPathFactory):
    return build_tiny_student(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def model_dir(student, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edge_slr.converters import convert

    out = tmp_path_factory.mktemp("bad-input-model")
    convert(student.checkpoint, "onnx", out)
    return out


@pytest.fixture(scope="module")
def clip(student) -> np.ndarray:
    """A real (synthetic-signer) dev clip: (T, 543, 4) landmarks with hands in view."""
    from edge_slr.data.dataset import LandmarkDataset

    return np.asarray(LandmarkDataset(student.data, "dev")[0].landmarks.data)


@pytest.fixture()
def clip_file(clip: np.ndarray, tmp_path: Path) -> Path:
    from edge_slr.landmarks.io import write_npz
    from edge_slr.landmarks.sequence import LandmarkSequence

    path = tmp_path / "clip.npz"
    write_npz(path, LandmarkSequence(clip, 25.0))
    return path


def error_line(capsys: pytest.CaptureFixture[str], command: str) -> str:
    """The one error line of a failed command (and nothing else on stderr)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"edge-slr {command}: error: "), err
    return err[0]


def copy_of(model_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "models"
    shutil.copytree(model_dir, out)
    return out


# -- 1. a model file the engine cannot read --------------------------------------------------------


def test_a_model_the_engine_cannot_read_is_one_format_error(
    model_dir: Path, clip_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_slr import Recognizer
    from edge_slr.runtimes import load_runtime
    from edge_slr.sidecar import file_sha256

    broken = copy_of(model_dir, tmp_path)
    model = broken / "student.onnx"
    model.write_bytes(np.random.default_rng(0).bytes(4096))
    # the sidecar matches the garbage, so only the engine can tell
    sidecar = broken / "student.onnx.json"
    data = json.loads(sidecar.read_text())
    for graph in data["graphs"]:
        graph["file"].update(size=model.stat().st_size, sha256=file_sha256(model))
    sidecar.write_text(json.dumps(data))
    expected = r"student\.onnx: cannot be loaded by onnxruntime \d+\.\d+.*: .*INVALID_PROTOBUF"
    with pytest.raises(FormatError, match=expected):
        load_runtime(model)
    with pytest.raises(FormatError, match=expected):
        Recognizer.create_from_model_dir(broken)
    assert main(["recognize", str(clip_file), "--model", str(broken)]) == 2
    assert "cannot be loaded by onnxruntime" in error_line(capsys, "recognize")


# -- 2./3. beam width, frame rate, frame counts ----------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--beam", "1000000"], "--beam must be in 1..256 (1 = greedy), got 1000000"),
        (["--beam", "0"], "--beam must be in 1..256"),
        (["--fps", "0"], "--fps must be a frame rate in [1, 1000] frames/s, got 0.0"),
        (["--fps", "1e-9"], "--fps must be a frame rate in [1, 1000] frames/s, got 1e-09"),
        (["--fps", "inf"], "--fps must be a frame rate in [1, 1000] frames/s, got inf"),
        (["--fps", "nan"], "--fps must be a frame rate"),
        (["--max-frames", "0"], "--max-frames 0 applies to --camera only"),
        (["--threads", "0"], "--threads must be a positive integer, got 0"),
    ],
)
def test_recognize_options_are_checked(
    argv: list[str], message: str, model_dir: Path, clip_file: Path, capsys
) -> None:
    assert main(["recognize", str(clip_file), "--model", str(model_dir), *argv]) == 2
    assert message in error_line(capsys, "recognize")


@pytest.mark.parametrize("frames", ["0", "-1"])
def test_camera_frame_limit_must_be_positive(frames: str, model_dir: Path, capsys) -> None:
    assert main(["recognize", "--camera", "0", "--model", str(model_dir), "--max-frames", frames])
    assert f"--max-frames must be a positive frame count, got {frames}" in error_line(
        capsys, "recognize"
    )


def test_recognizer_options_bound_the_beam_and_the_frame_rate(model_dir: Path, clip) -> None:
    from edge_slr import Recognizer, RecognizerOptions

    with pytest.raises(InputError, match="beam_width must be at most 256 .*got 1000000"):
        RecognizerOptions(model_dir=model_dir, beam_width=1_000_000)
    for fps in (0, 1e-9, float("inf"), float("nan"), -25, 5000, True):
        with pytest.raises(InputError, match=r"fps must be a frame rate in \[1, 1000\]"):
            RecognizerOptions(model_dir=model_dir, fps=fps)
    with Recognizer.create_from_model_dir(model_dir) as recognizer:
        with pytest.raises(InputError, match="fps must be a frame rate"):
            recognizer.recognize_landmarks(clip, fps=0)
        with pytest.raises(InputError, match="fps must be a frame rate"):
            recognizer.recognize_landmarks(clip, fps=float("inf"))


def test_none_for_a_folder_is_an_input_error(student, tmp_path: Path) -> None:
    from edge_slr import RecognizerOptions
    from edge_slr.converters import convert

    with pytest.raises(InputError, match="model_dir must be a model directory .*got None"):
        RecognizerOptions(model_dir=None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="out_dir must be an output folder .*got None"):
        convert(student.checkpoint, "onnx", None)  # type: ignore[arg-type]


# -- 4. tracebacks: existing files as output folders, binary input, a closed pipe ------------------


def test_output_folders_that_are_files(student, tmp_path: Path, capsys) -> None:
    taken = tmp_path / "taken"
    taken.write_text("a file")
    argv = ["convert", str(student.checkpoint), "--target", "onnx", "-o", str(taken)]
    assert main(argv) == 2
    assert f"output folder {taken} is an existing file" in error_line(capsys, "convert")
    assert main([*argv[:-1], str(taken / "sub")]) == 2
    assert f"{taken} is a file" in error_line(capsys, "convert")
    assert main(["demo", "--work-dir", str(taken)]) == 2
    assert "is an existing file; expected a folder" in error_line(capsys, "demo")
    assert taken.read_text() == "a file"


def test_correct_reads_only_text(tmp_path: Path, capsys) -> None:
    binary = tmp_path / "glosses.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert main(["correct", "--model", str(tmp_path), "--input", str(binary)]) == 2
    assert "not UTF-8 text (byte 0x89 at offset 0)" in error_line(capsys, "correct")


def test_a_closed_pipe_ends_quietly(model_dir: Path, clip_file: Path) -> None:
    # `edge-slr recognize ... --json | head -c 10`, made deterministic: the reader is gone
    # before the result is written
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "edge_slr", "recognize", str(clip_file), "--model",
               str(model_dir), "--json"]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=300) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err and err == ""


# -- 5. broken sidecars and broken models in a folder ----------------------------------------------


def test_a_sidecar_that_is_not_json_says_so(model_dir: Path, tmp_path: Path) -> None:
    from edge_slr.runtimes import load_runtime

    broken = copy_of(model_dir, tmp_path)
    (broken / "student.onnx.json").write_bytes(b"\x00\x01 not json at all \xff")
    with pytest.raises(FormatError, match=r"student\.onnx\.json: not a JSON sidecar"):
        load_runtime(broken)
    with pytest.raises(FormatError, match=r"student\.onnx\.json: not a JSON sidecar"):
        load_runtime(broken / "student.onnx")
    (broken / "student.onnx.json").write_text('{"format": "edge-slr-model", ')
    with pytest.raises(FormatError, match=r"student\.onnx\.json: not a JSON sidecar"):
        load_runtime(broken, runtime="onnxruntime")


def test_a_broken_model_beside_a_good_one_is_skipped(
    model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from edge_slr.runtimes import load_runtime

    folder = copy_of(model_dir, tmp_path)
    # another model whose file changed after conversion (its sidecar no longer matches)
    shutil.copy(folder / "student.onnx", folder / "other.onnx")
    sidecar = json.loads((folder / "student.onnx.json").read_text())
    for graph in sidecar["graphs"]:
        graph["file"]["name"] = "other.onnx"
    (folder / "other.onnx.json").write_text(json.dumps(sidecar))
    (folder / "other.onnx").write_bytes(b"truncated")
    # and one whose sidecar is not JSON
    (folder / "third.onnx").write_bytes(b"whatever")
    (folder / "third.onnx.json").write_bytes(b"\xff\xfe")
    for runtime in (None, "onnxruntime"):
        caplog.clear()
        with load_runtime(folder, runtime) as rt:
            assert rt.model_path.name == "student.onnx"
        skipped = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert any("skipped other.onnx" in m for m in skipped), skipped
        assert any("skipped third.onnx" in m and "not a JSON sidecar" in m for m in skipped)
    # the only model the runtime could load is broken: that is the error, not "no model here"
    (folder / "student.onnx").unlink()
    (folder / "student.onnx.json").unlink()
    with pytest.raises(FormatError, match=r"other\.onnx|third\.onnx"):
        load_runtime(folder, "onnxruntime")


# -- 6. nothing usable in the input: a stated warning ----------------------------------------------


def test_landmarks_without_anything_usable_give_a_warning(model_dir: Path, clip) -> None:
    from edge_slr import Recognizer

    no_hands = clip.copy()
    for hand in ("left_hand", "right_hand"):
        no_hands[:, PART_SLICES[hand]] = 0.0
    rng = np.random.default_rng(0)
    random = rng.random(clip.shape, dtype=np.float32)
    pixels = clip.copy()
    pixels[..., :2] *= 640.0  # pixel coordinates instead of normalised ones
    nobody = np.zeros_like(clip)
    with Recognizer.create_from_model_dir(model_dir, correct=False) as recognizer:
        assert recognizer.recognize_landmarks(clip).warnings == ()
        cases = {
            "no hand was detected in any of": no_hands,
            "they look random": random,
            "of the detected hand points lie outside the image": pixels,
        }
        for message, data in cases.items():
            result = recognizer.recognize_landmarks(data)
            assert len(result.warnings) == 1 and message in result.warnings[0], result.warnings
            assert result.to_dict()["warnings"] == list(result.warnings)
        # nobody at all: nothing to normalise, an error (a video without anybody is one too)
        with pytest.raises(InputError, match="no point is present .* in any of the"):
            recognizer.recognize_landmarks(nobody)
        # long inputs go through the windows: the warning comes along (and nobody is blank)
        long = np.concatenate([no_hands] * (4600 // len(no_hands) + 1))
        assert "no hand" in recognizer.recognize_landmarks(long).warnings[0]
        long = np.concatenate([nobody] * (4600 // len(nobody) + 1))
        result = recognizer.recognize_landmarks(long)
        assert result.glosses == () and "no person was detected" in result.warnings[0]


def test_the_cli_states_the_warning(
    model_dir: Path, clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_slr.landmarks.io import write_npz
    from edge_slr.landmarks.sequence import LandmarkSequence

    path = tmp_path / "random.npz"
    random = np.random.default_rng(1).random(clip.shape, dtype=np.float32)
    write_npz(path, LandmarkSequence(random, 25.0))
    assert main(["recognize", str(path), "--model", str(model_dir), "--json"]) == 0
    out, err = capsys.readouterr()
    assert "they look random" in json.loads(out)["warnings"][0]
    assert err.startswith("edge-slr recognize: warning: the landmarks jump by"), err


def test_a_tiny_video_without_a_person(model_dir: Path, tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    pytest.importorskip("mediapipe")
    from edge_slr import Recognizer

    path = tmp_path / "tiny.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (16, 16))
    rng = np.random.default_rng(2)
    for _ in range(50):
        writer.write(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
    writer.release()
    with Recognizer.create_from_model_dir(model_dir, correct=False) as recognizer:
        try:
            result = recognizer.recognize_video(path)
        except InputError as err:  # an extractor may refuse a video without anybody
            assert "person" in str(err) or "nobody" in str(err)
        else:
            assert result.warnings and "was detected in any of the 50 frames" in result.warnings[0]


# -- 7. checked before the work, not after ---------------------------------------------------------


def test_demo_checks_the_video_before_training(tmp_path: Path, capsys) -> None:
    work = tmp_path / "work"
    assert main(["demo", "--work-dir", str(work), "--video", "/missing.mp4"]) == 2
    assert "video '/missing.mp4' does not exist" in error_line(capsys, "demo")
    assert not work.exists()


def test_overlay_path_is_checked_before_anything_runs(clip_file: Path, tmp_path: Path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    missing_model = tmp_path / "no-model-here"  # the overlay is checked before the model loads
    for overlay, message in (
        (blocker / "out.mp4", f"cannot be written: {blocker} is a file, not a folder"),
        (blocker / "deeper" / "out.mp4", f"cannot be written: {blocker} is a file, not a folder"),
        (folder, "is a folder; expected a file name to write"),
    ):
        argv = ["recognize", str(clip_file), "--model", str(missing_model), "--overlay"]
        assert main([*argv, str(overlay)]) == 2
        line = error_line(capsys, "recognize")
        assert f"--overlay {overlay}" in line and message in line, line


def test_a_closed_recognizer_refuses_every_call(model_dir: Path, clip) -> None:
    from edge_slr import Recognizer

    recognizer = Recognizer.create_from_model_dir(model_dir, correct=False)
    recognizer.close()
    calls = {
        "process_landmarks": lambda: recognizer.process_landmarks(clip[0], 0),
        "process_frame": lambda: recognizer.process_frame(np.zeros((8, 8, 3), np.uint8), 0),
        "recognize_landmarks": lambda: recognizer.recognize_landmarks(clip),
        "recognize_video": lambda: recognizer.recognize_video("clip.mp4"),
        "recognize_features": lambda: recognizer.recognize_features(np.zeros((40, 8))),
        "finish": recognizer.finish,
        "reset": recognizer.reset,
        "decode": lambda: recognizer.decode(np.zeros((4, 7))),
    }
    for name, call in calls.items():
        with pytest.raises(InputError, match="this Recognizer is closed"):
            call()
        assert name  # every public method fails on its first call after close
    recognizer.close()  # closing twice is fine


def test_train_without_a_config_leaves_no_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    for kind in ("recognizer", "teacher"):
        assert main(["train", kind, "--no-progress"]) == 2
        assert "data.root is not set" in error_line(capsys, "train")
    bad = tmp_path / "bad.toml"
    bad.write_text('[data]\nroot = "/nowhere"\n')
    assert main(["train", "recognizer", "--config", str(bad), "--no-progress"]) == 2
    capsys.readouterr()
    assert list(tmp_path.iterdir()) == [bad]  # no empty runs/


def test_convert_checks_the_calibration_before_making_the_folder(
    student, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    argv = ["convert", str(student.checkpoint), "--target", "onnx-int8", "-o", str(out)]
    assert main([*argv, "--calibration", str(tmp_path / "missing")]) == 2
    assert "calibration dataset" in error_line(capsys, "convert")
    assert not out.exists()
