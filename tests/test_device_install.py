"""A device install (engines only: no torch, no TensorFlow, no MediaPipe) runs the Recognizer.

Creates a fresh virtual environment, installs edge-slr with the [onnx], [openvino] and [tflite]
extras as a user would (pip with dependencies, constraints.txt): they carry the runtimes only, so
the converters' nncf, onnx and TensorFlow stay out, which the test checks. It runs a converted
model directory there on every engine. Slow: about a minute, most of it pip.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import run_checked as run

DEVICE_EXTRAS = "onnx,openvino,tflite"
# distributions only training and conversion need: none of them may come with the device extras
NOT_ON_A_DEVICE = {"torch", "tensorflow", "tf-keras", "nncf", "onnx", "mediapipe", "scipy",
                   "scikit-learn", "matplotlib"}  # fmt: skip
HEAVY = ("torch", "tensorflow", "tf_keras", "nncf", "onnx", "mediapipe", "cv2", "scipy", "sklearn")

_spec = importlib.util.spec_from_file_location(
    "_runtime_models", Path(__file__).with_name("test_runtimes.py")
)
runtime_models = sys.modules.setdefault("_runtime_models", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(runtime_models)

RUN = """
    import json, sys, time
    started = time.perf_counter()
    from edge_slr.landmarks import load_landmarks
    from edge_slr import Recognizer
    from edge_slr.runtimes import available_runtimes

    model_dir, landmark_file, checkpoint = sys.argv[1], sys.argv[2], sys.argv[3]
    out = {"available": available_runtimes(), "results": {}}
    for runtime in ("openvino", "onnxruntime", "litert"):
        with Recognizer.create_from_model_dir(model_dir, runtime=runtime) as recognizer:
            result = recognizer.recognize_landmarks(load_landmarks(landmark_file))
            out["results"][runtime] = list(result.recognized)
    if len(sys.argv) > 4:  # the same recogniser with a converted (ONNX) corrector
        out["corrected"] = {}
        for runtime in ("openvino", "onnxruntime", "litert"):
            with Recognizer.create_from_model_dir(sys.argv[4], runtime=runtime) as recognizer:
                result = recognizer.recognize_landmarks(load_landmarks(landmark_file))
                out["corrected"][runtime] = [list(result.recognized), list(result.corrected)]
    try:
        Recognizer.create_from_model_dir(checkpoint)  # the torch reference
    except Exception as err:
        out["torch_error"] = f"{type(err).__name__}: {err}"
    out["heavy"] = [m for m in HEAVY if m in sys.modules]
    out["seconds"] = time.perf_counter() - started
    print(json.dumps(out))
"""


@pytest.mark.slow
def test_device_install_runs_the_recognizer_without_torch(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, record_property, device_venv
) -> None:
    pytest.importorskip("tensorflow")  # the model directory needs a TFLite conversion too
    models = runtime_models.trained_models(tmp_path_factory.getbasetemp())
    from edge_slr import Recognizer
    from edge_slr.data.dataset import LandmarkDataset
    from edge_slr.landmarks import save_landmarks

    item = LandmarkDataset(models.data, "dev")[0]
    landmarks = tmp_path / "clip.npz"
    save_landmarks(landmarks, item.landmarks)
    with Recognizer.create_from_model_dir(models.checkpoint) as reference:
        expected = list(reference.recognize_landmarks(item.landmarks).recognized)
    corrected_dir, corrected = _with_converted_corrector(tmp_path_factory, models, expected)

    started = time.perf_counter()
    python = device_venv(DEVICE_EXTRAS)
    install_seconds = time.perf_counter() - started
    installed = run(python, "-m", "pip", "list", "--format=json").stdout
    installed_names = {p["name"].lower().replace("_", "-") for p in json.loads(installed)}
    assert not installed_names & NOT_ON_A_DEVICE, installed_names & NOT_ON_A_DEVICE
    code = textwrap.dedent(RUN).replace("HEAVY", repr(HEAVY))
    argv = (models.model_dir, landmarks, models.checkpoint, *corrected_dir)
    out = json.loads(run(python, "-c", code, *argv).stdout.splitlines()[-1])

    record_property("device_install_seconds", round(install_seconds, 1))
    record_property("device_first_run_seconds", round(out["seconds"], 2))
    print(f"device install: {install_seconds:.1f} s; three engines loaded and run: "
          f"{out['seconds']:.2f} s")  # fmt: skip
    assert out["heavy"] == []
    assert sorted(out["available"]) == ["litert", "onnxruntime", "openvino"]
    assert out["results"] == {name: expected for name in ("openvino", "onnxruntime", "litert")}
    if corrected is not None:  # corrections without torch: the torch corrector's
        assert out["corrected"] == {n: [expected, corrected] for n in out["results"]}
    assert (
        "MissingDependencyError" in out["torch_error"] and "edge-slr[train]" in out["torch_error"]
    )
    # `edge-slr benchmark` runs there too: every row measured (each in a fresh process of the
    # device venv), WER included, and --plot names the extra that brings matplotlib.
    bench = tmp_path / "benchmark.json"
    command = (python, "-m", "edge_slr", "benchmark", models.model_dir, "--lengths", "32",
               "--runs", "2", "--data", models.data, "--split", "dev", "--max-sentences", "2")  # fmt: skip
    run(*command, "--json", bench)
    rows = json.loads(bench.read_text())["rows"]
    assert {r["runtime"] for r in rows} == {"openvino", "onnxruntime", "litert"}
    assert all(r["status"] == "ok" and r["wer"] is not None for r in rows), rows
    plot = subprocess.run([str(c) for c in (*command, "--plot", tmp_path / "b.png")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert plot.returncode == 2 and "edge-slr[train]" in plot.stderr


def _with_converted_corrector(factory, models, expected: list) -> tuple[tuple, list | None]:
    """(a model directory with the recogniser and a converted ONNX corrector, the torch
    corrector's correction of ``expected``); nothing without ../shared/data."""
    import shutil

    from edge_slr.paths import shared_data_dir
    from edge_slr.training.corrector import load_corrector

    shared = shared_data_dir()
    if shared is None:
        return (), None
    spec = importlib.util.spec_from_file_location(
        "_corrector_models", Path(__file__).with_name("test_recognizer_corrector.py")
    )
    module = sys.modules.setdefault("_corrector_models", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    corrector_dir = module.build_corrector(factory.getbasetemp(), shared)
    out = factory.mktemp("device-with-corrector")
    for path in [*models.model_dir.iterdir(), *corrector_dir.glob("corrector*.onnx*")]:
        shutil.copy(path, out / path.name)
    return (out,), list(load_corrector(corrector_dir / "corrector").correct(expected).glosses)
