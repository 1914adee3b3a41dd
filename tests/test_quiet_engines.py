"""The engines' own C++ log lines stay off the terminal; ``edge-slr -v`` shows them again.

MediaPipe (absl logging, no environment variable reads it), TensorFlow and LiteRT write straight
to file descriptor 2; :mod:`edge_slr._optional` sets their log levels before they load and
filters fd 2 where they run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import build_tiny_student, shared_file

ROOT = Path(__file__).resolve().parents[1]
# absl/glog ("W0000 00:00:1733.5 123 file.cc:114] ...") and TensorFlow's own format
CPP_LOG = re.compile(r"^[IWEF]\d{4} |\.cc:\d+\]", re.MULTILINE)
ENGINE_LOGS_ENV = "EDGE_SLR_ENGINE_LOGS"


def test_the_filter_drops_engine_lines_and_keeps_the_rest(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge_slr._optional import (
        engine_logs_shown,
        is_native_log_line,
        native_logs_filtered,
        show_engine_logs,
    )

    monkeypatch.delenv(ENGINE_LOGS_ENV, raising=False)
    lines = (
        "W0000 00:00:1796671455.770193   16323 inference_feedback_manager.cc:114] Feedback\n"
        "2026-12-07 19:20:00.910445: I tensorflow/core/platform/cpu_feature_guard.cc:210] AVX\n"
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
        "a line of our own\n"
    )
    # in a child process: pytest's own capture of fd 2 and sys.stderr share a file at two
    # offsets, which the filter's thread (writing as lines come) would race with
    code = (
        "import os, sys\n"
        "from edge_slr._optional import native_logs_filtered\n"
        "with native_logs_filtered():\n"
        f"    os.write(2, {lines.encode()!r})\n"
        '    print("python\'s stderr", file=sys.stderr, flush=True)\n'
    )
    env = {k: v for k, v in os.environ.items() if k != ENGINE_LOGS_ENV}
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert child.returncode == 0, child.stderr
    assert sorted(child.stderr.splitlines()) == ["a line of our own", "python's stderr"]
    assert not is_native_log_line("a line of our own")
    show_engine_logs()
    try:
        assert engine_logs_shown()
        with native_logs_filtered():
            os.write(2, lines.encode())
        assert capfd.readouterr().err == lines
    finally:
        show_engine_logs(False)
    assert not engine_logs_shown()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnxruntime")
    from edge_slr.converters import convert

    student = build_tiny_student(tmp_path_factory.getbasetemp())
    out = tmp_path_factory.mktemp("quiet-model")
    convert(student.checkpoint, "onnx", out)
    return out


def recognize(video: Path, model_dir: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (ENGINE_LOGS_ENV, "GLOG_minloglevel",
                                                              "TF_CPP_MIN_LOG_LEVEL")}  # fmt: skip
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "edge_slr", *flags, "recognize", str(video), "--model",
               str(model_dir), "--no-correct"]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)


def test_recognize_on_a_real_video_prints_no_engine_logs(shared_data: Path, model_dir: Path):
    pytest.importorskip("mediapipe")
    video = shared_file(shared_data, "video/webcam_signer.mp4")
    quiet = recognize(video, model_dir)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.strip() and "58 frames" in quiet.stdout
    assert not CPP_LOG.search(quiet.stderr), quiet.stderr
    assert quiet.stderr == ""  # nothing else either: a hand is seen, so no warning


@pytest.mark.slow  # MediaPipe Holistic over the clip once more in a fresh process
def test_verbose_shows_the_engine_logs(shared_data: Path, model_dir: Path):
    pytest.importorskip("mediapipe")
    video = shared_file(shared_data, "video/webcam_signer.mp4")
    verbose = recognize(video, model_dir, "-v")
    assert verbose.returncode == 0, verbose.stderr
    assert CPP_LOG.search(verbose.stderr), verbose.stderr  # -v: MediaPipe's lines are back
    assert "58 frames" in verbose.stdout
