"""A board with tflite-runtime 2.14 (and nothing else) runs the FP32 and the compat INT8 student.

Creates a fresh virtual environment with edge-slr and its [tflite-runtime] extra (pip with
dependencies, constraints.txt: tflite-runtime 2.14.0 and numpy 1.26.4, nothing else), and
recognises a dev clip of the tiny trained student with the FP32 model and the ``--compat
tflite-runtime-2.14`` INT8 model there: the same glosses as on ai-edge-litert here. The default INT8 model (FULLY_CONNECTED v12) is refused there
with one line naming the op, its version and the release it needs. Slow: three TFLite
conversions and a pip install.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import run_checked as run

HEAVY = ("ai_edge_litert", "tensorflow", "torch", "onnxruntime", "openvino", "mediapipe")

_spec = importlib.util.spec_from_file_location(
    "_tflite_compat", Path(__file__).with_name("test_tflite_compat.py")
)
tflite_compat = sys.modules.setdefault("_tflite_compat", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(tflite_compat)

RUN = """
    import json, sys
    from edge_slr.landmarks import load_landmarks
    from edge_slr import Recognizer
    from edge_slr.runtimes import available_runtimes, load_runtime
    from edge_slr.runtimes.litert_rt import load_interpreter

    compatible, newer, clip = sys.argv[1:4]
    out = {"available": available_runtimes(), "interpreter": load_interpreter().label}
    for precision in ("fp32", "int8"):
        options = {"runtime": "litert", "precision": precision}
        with Recognizer.create_from_model_dir(compatible, **options) as recognizer:
            out[precision] = list(recognizer.recognize_landmarks(load_landmarks(clip)).recognized)
    try:
        load_runtime(newer + "/student-int8.tflite")
    except Exception as err:
        out["newer"] = f"{type(err).__name__}: {err}"
    out["heavy"] = [m for m in HEAVY if m in sys.modules]
    print(json.dumps(out))
"""


@pytest.mark.slow
def test_tflite_runtime_2_14_board_runs_fp32_and_compat_int8(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, device_venv
) -> None:
    pytest.importorskip("tensorflow")
    pytest.importorskip("torch")
    pytest.importorskip("ai_edge_litert")
    from edge_slr import Recognizer
    from edge_slr.data.dataset import LandmarkDataset
    from edge_slr.landmarks import load_landmarks, save_landmarks

    data, compatible, newer = tflite_compat.tflite_models(tmp_path_factory.getbasetemp())
    clip = tmp_path / "clip.npz"
    save_landmarks(clip, LandmarkDataset(data, "dev")[0].landmarks)
    expected = {}
    for precision in ("fp32", "int8"):
        options = {"runtime": "litert", "precision": precision}
        with Recognizer.create_from_model_dir(compatible, **options) as recognizer:
            assert recognizer.runtime.interpreter.module == "ai_edge_litert"
            result = recognizer.recognize_landmarks(load_landmarks(clip))
            expected[precision] = list(result.recognized)
    assert expected["fp32"], "the tiny student recognised nothing: the comparison would be empty"

    python = device_venv("tflite-runtime")
    installed = json.loads(run(python, "-m", "pip", "list", "--format=json").stdout)
    names = {p["name"].lower().replace("_", "-") for p in installed} - {"pip", "setuptools"}
    assert names == {"edge-slr", "numpy", "tflite-runtime"}
    code = textwrap.dedent(RUN).replace("HEAVY", repr(HEAVY))
    out = json.loads(run(python, "-c", code, compatible, newer, clip).stdout.splitlines()[-1])

    assert out["heavy"] == []
    assert out["available"] == ["litert"] and out["interpreter"] == "tflite_runtime 2.14.0"
    assert out["fp32"] == expected["fp32"] and out["int8"] == expected["int8"]
    refused = out["newer"]
    assert refused.startswith("FormatError: ") and "\n" not in refused
    assert "FULLY_CONNECTED version 12 needs TFLite 2.17.0" in refused
    assert "tflite_runtime 2.14.0" in refused and "Didn't find op" not in refused
