"""`edge-slr recognize` on the real webcam clip: --overlay, and --camera fed by a video file.

The clip (../shared/data/video/webcam_signer.mp4, 58 frames at 29.9 fps, 540x720) goes through
MediaPipe Holistic and the session's tiny student (tests/conftest.py) converted to ONNX; the
student knows six synthetic glosses, so what matters here is the plumbing: frames, sizes, the
frame-rate adaptation and that the camera loop gives what offline recognition gives.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import build_tiny_student, shared_file

from edge_slr.errors import InputError

pytest.importorskip("mediapipe")
cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")

WEBCAM = "video/webcam_signer.mp4"


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edge_slr.converters import convert

    student = build_tiny_student(tmp_path_factory.getbasetemp())
    out = tmp_path_factory.mktemp("cli-student")
    convert(student.checkpoint, "onnx", out)
    return out


def cli(*argv: str) -> int:
    from edge_slr.cli import recognize

    parser = argparse.ArgumentParser(prog="edge-slr")
    recognize.add_parser(parser.add_subparsers())
    args = parser.parse_args(["recognize", *argv])
    return args.run(args)


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(bgr)
    return frames, fps


def test_overlay_of_the_webcam_clip(shared_data: Path, onnx_dir: Path, tmp_path: Path, capsys):
    video = shared_file(shared_data, WEBCAM)
    out = tmp_path / "overlay.mp4"
    assert cli(str(video), "--model", str(onnx_dir), "--overlay", str(out), "--json") == 0
    result = json.loads(capsys.readouterr().out)
    source, source_fps = read_video(video)
    drawn, drawn_fps = read_video(out)
    assert len(drawn) == len(source) == result["num_frames"] == 58  # every input frame, once
    assert drawn[0].shape == source[0].shape == (720, 540, 3)
    assert drawn_fps == pytest.approx(source_fps, abs=0.05)
    # the landmarks (and text) are drawn: frames differ from the source where the signer is
    changed = [float(np.abs(a.astype(int) - b.astype(int)).mean()) for a, b in
               zip(source, drawn, strict=True)]  # fmt: skip
    assert min(changed) > 0.5
    for gloss in result["glosses"]:  # spans count the clip's own frames (29.9 fps)
        assert 0 <= gloss["start_frame"] < gloss["end_frame"] <= 58


@pytest.mark.slow  # MediaPipe twice over the clip (about 10 s of CPU)
def test_camera_loop_on_a_video_file_gives_the_offline_result(
    shared_data: Path, onnx_dir: Path, tmp_path: Path, capsys
) -> None:
    from edge_slr.recognition.recognizer import Recognizer

    video = shared_file(shared_data, WEBCAM)
    with Recognizer.create_from_model_dir(onnx_dir) as rec:
        offline = rec.recognize_video(video)
    out = tmp_path / "live.mp4"
    # played in real time; "block" waits for a slow extractor instead of dropping frames
    argv = ("--camera", str(video), "--model", str(onnx_dir), "--json", "--overlay", str(out),
            "--drop-policy", "block")  # fmt: skip
    assert cli(*argv) == 0
    text = capsys.readouterr().out  # sentences as pauses end them, then the final result
    final = json.loads(text[text.index("{\n") :])
    assert final["recognized"] == list(offline.recognized)
    # 58 frames at 29.9 fps on the model's 25 fps clock
    assert final["num_frames"] == pytest.approx(58 * 25 / 29.9166, abs=1)
    assert len(read_video(out)[0]) == 58
    with pytest.raises(InputError, match="camera index or a video file, got 'nothing.mp4'"):
        cli("--camera", "nothing.mp4", "--model", str(onnx_dir))
