"""Runtimes: registry, engine choice, input checks, and parity with the torch FP32 reference.

The session's tiny student (tests/conftest.py: a small SignSynth dataset of 6 glosses, 64 training
and 24 dev sentences, trained with ``edge_slr.training.train``; about 20 % dev WER, so decodes are
non-trivial) is converted once with ``edge_slr.converters.convert``. Every runtime then
runs the converted files and is compared with the checkpoint run in PyTorch:
FP32 logits within 1e-3; INT8 (slow tests) the same decoded glosses.
test_recognizer.py reuses the same models (:func:`trained_models`).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_GLOSSES as GLOSSES
from conftest import build_tiny_student

from edge_slr.errors import FormatError, InputError
from edge_slr.runtimes import (
    Runtime,
    available_runtimes,
    get_runtime_class,
    load_runtime,
    register_runtime,
    runtime_names,
)

LENGTHS = (28, 57, 211, 400)  # the receptive field (28 frames) up to long inputs
FP32_TARGETS = {"onnxruntime": "onnx", "openvino": "openvino", "litert": "tflite"}
INT8_TARGETS = {"onnxruntime": "onnx-int8", "openvino": "openvino-int8", "litert": "tflite-int8"}


# -- the trained models (shared with test_recognizer.py) -------------------------------------------


@dataclass(frozen=True)
class Models:
    data: Path  # landmark dataset (train/dev)
    checkpoint: Path  # the trained student
    model_dir: Path  # FP32 conversions of it (ONNX, OpenVINO and, with TensorFlow, TFLite)


def trained_models(base: Path) -> Models:
    """Build (once per test session: the result stays in ``base``) and return the models."""
    from edge_slr._optional import is_available
    from edge_slr.converters import convert

    root = base / "runtime-models"
    student = build_tiny_student(base)  # the session's tiny student (tests/conftest.py)
    models = Models(student.data, student.checkpoint, root / "models")
    if (root / "done").exists():
        return models
    for target in ("onnx", "openvino") + (("tflite",) if is_available("tensorflow") else ()):
        convert(models.checkpoint, target, models.model_dir)
    (root / "done").touch()
    return models


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    return trained_models(tmp_path_factory.getbasetemp())


def dev_features(models: Models, limit: int = 24) -> list[tuple[np.ndarray, tuple[str, ...]]]:
    from edge_slr.data.dataset import LandmarkDataset
    from edge_slr.landmarks.presets import get_preset

    dataset, preset = LandmarkDataset(models.data, "dev"), get_preset("kdmslrt92")
    items = [dataset[i] for i in range(min(limit, len(dataset)))]
    return [(preset.features(item.landmarks), item.glosses) for item in items]


def probe(frames: int, batch: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, frames, 276)).astype(np.float32)


def greedy(logits: np.ndarray, labels: tuple[str, ...]) -> tuple[str, ...]:
    from edge_slr.decoding import greedy_decode, log_softmax

    return tuple(labels[t] for t in greedy_decode(log_softmax(logits)).tokens)


def model_file(models: Models, runtime: str) -> Path:
    suffix = {"onnxruntime": ".onnx", "openvino": ".xml", "litert": ".tflite"}[runtime]
    path = models.model_dir / f"student{suffix}"
    if not path.exists():
        pytest.skip(f"{path.name} was not converted (TensorFlow missing)")
    return path


# -- registry ----------------------------------------------------------------------------------------


def test_registry_names_aliases_and_availability() -> None:
    assert set(runtime_names()) >= {"openvino", "onnxruntime", "litert", "torch"}
    assert set(available_runtimes()) <= set(runtime_names())
    assert get_runtime_class("onnx") is get_runtime_class("onnxruntime")
    assert get_runtime_class("tflite").engine == "litert"
    with pytest.raises(InputError, match="unknown runtime 'coreml'.*openvino"):
        get_runtime_class("coreml")


def test_register_runtime_rejects_incomplete_classes() -> None:
    with pytest.raises(InputError, match="needs a Runtime subclass"):
        register_runtime(dict)  # type: ignore[arg-type]

    class Nameless(Runtime):  # no name, engine, requires, suffixes
        pass

    with pytest.raises(InputError, match="must set the class attribute 'name'"):
        register_runtime(Nameless)
    clash = type("Clash", (get_runtime_class("openvino"),), {})
    with pytest.raises(InputError, match="already registered"):
        register_runtime(clash)


def test_missing_engine_is_reported_with_its_extra(models: Models) -> None:
    # sys.modules[name] = None makes `import openvino` fail, as on a device without it.
    code = f"""
        import sys
        sys.modules["openvino"] = None
        from edge_slr.errors import MissingDependencyError
        from edge_slr.runtimes import available_runtimes, load_runtime
        assert "openvino" not in available_runtimes(), available_runtimes()
        try:
            load_runtime({str(models.model_dir / "student.xml")!r})
        except MissingDependencyError as err:
            print(err)
        """
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "pip install 'edge-slr[openvino]'" in out.stdout


# -- choosing the model and the engine --------------------------------------------------------------


def test_engine_is_chosen_from_sidecar_suffix_or_name(models: Models) -> None:
    with load_runtime(models.model_dir / "student.onnx") as rt:
        assert rt.name == "onnxruntime" and rt.description.kind == "student"
    with load_runtime(models.model_dir / "student.onnx.json") as rt:  # the sidecar itself
        assert rt.model_path.name == "student.onnx"
    with load_runtime(models.model_dir / "student.onnx", runtime="openvino") as rt:
        # OpenVINO reads ONNX; an FP32 model compiles with exact f32 inference (no bf16)
        assert rt.name == "openvino" and rt.config["INFERENCE_PRECISION_HINT"] == "f32"
    with load_runtime(models.model_dir, runtime="onnx") as rt:  # a model directory
        assert rt.model_path.name == "student.onnx"
    with load_runtime(models.model_dir) as rt:  # preference: OpenVINO first
        assert rt.name == "openvino" and rt.model_path.name == "student.xml"
    with load_runtime(models.checkpoint) as rt:  # a checkpoint: the torch reference
        assert rt.name == "torch" and rt.description.vocab().glosses[1:] == tuple(sorted(GLOSSES))
        assert rt.description.temporal.min_input_length == 28


def test_openvino_runs_the_precision_that_was_verified(models: Models, caplog) -> None:
    """The sidecar's INFERENCE_PRECISION_HINT is what compiles; bf16 only when asked for, with a
    warning when it is not what the conversion verified (f32 here)."""
    with load_runtime(models.model_dir / "student.xml") as rt:
        assert rt.description.engine["config"]["INFERENCE_PRECISION_HINT"] == "f32"
        assert rt.config["INFERENCE_PRECISION_HINT"] == "f32"
    bf16 = {"inference_precision": "bf16"}
    with (
        caplog.at_level(logging.WARNING, logger="edge_slr.runtimes"),
        load_runtime(models.model_dir / "student.xml", **bf16) as rt,
    ):
        assert rt.config["INFERENCE_PRECISION_HINT"] == "bf16"
    assert "was verified with f32 inference; running it in bf16" in caplog.text
    with pytest.raises(InputError, match="inference_precision must be one of"):
        load_runtime(models.model_dir / "student.xml", inference_precision="fp8")


def test_model_choice_errors(models: Models, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no int8 student model"):
        load_runtime(models.model_dir, precision="int8")
    with pytest.raises(InputError, match="model not found"):
        load_runtime(tmp_path / "nothing.onnx")
    with pytest.raises(FormatError, match="no converted student model here"):
        load_runtime(tmp_path)
    with pytest.raises(InputError, match="the onnxruntime runtime loads .onnx files"):
        load_runtime(models.model_dir / "student.xml", runtime="onnxruntime")
    # a model changed after conversion no longer matches its sidecar
    copy = tmp_path / "student.onnx"
    copy.write_bytes((models.model_dir / "student.onnx").read_bytes()[:-10])
    (tmp_path / "student.onnx.json").write_text(
        (models.model_dir / "student.onnx.json").read_text()
    )
    with pytest.raises(FormatError, match="truncated or replaced"):
        load_runtime(copy)


# -- parity with the FP32 reference ---------------------------------------------------------------


@pytest.mark.parametrize("runtime", sorted(FP32_TARGETS))
def test_fp32_logits_match_the_torch_reference(models: Models, runtime: str) -> None:
    path = model_file(models, runtime)
    with load_runtime(models.checkpoint) as reference, load_runtime(path, threads=1) as rt:
        assert rt.name == runtime
        assert [s.name for s in rt.inputs] == ["features"] and rt.primary_output == "logits"
        for frames in LENGTHS:
            x = probe(frames, batch=2, seed=frames)
            got, expected = rt.run(x), reference.run(x)
            assert got.shape == expected.shape == (2, rt.description.output_length(frames), 7)
            np.testing.assert_allclose(got, expected, atol=1e-3)
        labels = rt.description.vocab().glosses
        for features, _ in dev_features(models, limit=8):
            got, expected = rt.run(features[None])[0], reference.run(features[None])[0]
            np.testing.assert_allclose(got, expected, atol=1e-3)
            assert greedy(got, labels) == greedy(expected, labels)


@pytest.mark.slow
@pytest.mark.parametrize("runtime", sorted(INT8_TARGETS))
def test_int8_models_decode_like_the_reference(models: Models, runtime: str, tmp_path: Path):
    from edge_slr.converters import convert

    if runtime == "litert":
        pytest.importorskip("tensorflow")
    result = convert(models.checkpoint, INT8_TARGETS[runtime], tmp_path, calibration=models.data,
                     calibration_size=64, max_wer_drop=4.0)  # fmt: skip
    with load_runtime(models.checkpoint) as reference, load_runtime(result.model_path) as rt:
        assert rt.name == runtime and rt.description.precision.weights == "int8"
        labels = rt.description.vocab().glosses
        sequences = dev_features(models)
        same = sum(
            greedy(rt.run(f[None])[0], labels) == greedy(reference.run(f[None])[0], labels)
            for f, _ in sequences
        )
    assert same >= 0.9 * len(sequences), f"{same}/{len(sequences)} decodes agree"


# -- engine options -------------------------------------------------------------------------------


def test_openvino_threads_hints_and_async_batches(models: Models) -> None:
    xs = [probe(t, seed=t) for t in (40, 90, 130)]
    with load_runtime(models.model_dir / "student.xml", threads=1) as latency:
        assert latency.config["INFERENCE_NUM_THREADS"] == "1"
        assert latency.config["PERFORMANCE_HINT"] == "LATENCY"
        expected = [latency.run(x) for x in xs]
    with load_runtime(models.model_dir / "student.xml", hint="THROUGHPUT") as throughput:
        assert throughput.config["PERFORMANCE_HINT"] == "THROUGHPUT"
        for got, want in zip(throughput.run_many(xs), expected, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(InputError, match="hint must be one of"):
        load_runtime(models.model_dir / "student.xml", hint="FAST")
    with pytest.raises(
        InputError,
        match="takes the options \\['device', 'hint', 'config', 'inference_precision'\\], got "
        "\\['colour'\\]",
    ):
        load_runtime(models.model_dir / "student.xml", colour="blue")


def test_openvino_reshapes_a_static_shape_model(models: Models, tmp_path: Path) -> None:
    import openvino as ov

    model = ov.Core().read_model(str(models.model_dir / "student.xml"))
    model.reshape({"features": [1, 100, 276]})  # as saved for a fixed-length accelerator
    ov.save_model(model, str(tmp_path / "static.xml"), compress_to_fp16=False)  # default: fp16
    with load_runtime(models.checkpoint) as reference, load_runtime(tmp_path / "static.xml") as rt:
        assert rt.description is None  # no sidecar: still runs, with exact FP32 settings
        assert rt.inputs[0].shape[1] == "dim1"  # every length is accepted
        for frames in (57, 100, 211, 57):
            x = probe(frames, seed=frames)
            np.testing.assert_allclose(rt.run(x), reference.run(x), atol=1e-3)


def test_onnxruntime_thread_options(models: Models) -> None:
    x = probe(64)
    with load_runtime(models.model_dir / "student.onnx", threads=1, inter_op_threads=1) as rt:
        assert rt.threads == 1 and rt.run(x).shape == (1, 10, 7)
        assert rt.settings["spinning"] is False  # idle pool threads yield their core
    with load_runtime(models.model_dir / "student.onnx", threads=2, spinning=True) as rt:
        assert rt.settings["spinning"] is True and rt.run(x).shape == (1, 10, 7)
    with pytest.raises(InputError, match="spinning must be True or False, got 'no'"):
        load_runtime(models.model_dir / "student.onnx", spinning="no")
    with pytest.raises(InputError, match="threads must be a positive int"):
        load_runtime(models.model_dir / "student.onnx", threads=0)
    with pytest.raises(InputError, match="inter_op_threads"):
        load_runtime(models.model_dir / "student.onnx", inter_op_threads=-1)


# -- input checks ---------------------------------------------------------------------------------


def test_bad_inputs_get_clear_errors(models: Models) -> None:
    with load_runtime(models.model_dir / "student.onnx") as rt:
        good = probe(64)
        np.testing.assert_allclose(rt.run(good.astype(np.float64)), rt.run(good), atol=1e-6)
        cases = {
            "must have 3 dimensions": good[0],
            "axis 2 must be 276": good[..., :200],
            "must be float32, got dtype int64": good.astype(np.int64),
            "must be a numpy array or a mapping of names to arrays, got list": good.tolist(),
            "at least 28": probe(20),
            "is empty": np.zeros((0, 64, 276), np.float32),
        }
        nan = good.copy()
        nan[0, 5, 7] = np.nan
        cases["1 NaN/inf values \\(first at index \\(0, 5, 7\\)\\)"] = nan
        for message, value in cases.items():
            with pytest.raises(InputError, match=message):
                rt.run(value)
        with pytest.raises(InputError, match="got unknown \\['frames'\\] and missing"):
            rt.run({"frames": good})
    assert rt.closed
    with pytest.raises(InputError, match="runtime is closed"):
        rt.run(good)


# -- LiteRT INT8 input/output tensors -----------------------------------------------------------------


def test_litert_quantizes_int8_inputs_and_dequantizes_outputs(tmp_path: Path) -> None:
    """A full-integer model with int8 I/O (as NPUs need) takes and returns float32 here."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf = pytest.importorskip("tensorflow")
    from ai_edge_litert.interpreter import Interpreter

    rng = np.random.default_rng(0)
    inputs = tf.keras.Input((None, 12), batch_size=1, name="features")
    hidden = tf.keras.layers.Dense(16, activation="relu")(inputs)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(5)(hidden))
    samples = [rng.uniform(-1, 1, (1, int(t), 12)).astype(np.float32) for t in range(8, 40)]
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s] for s in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path = tmp_path / "int8-io.tflite"
    path.write_bytes(converter.convert())

    x = rng.uniform(-1, 1, (2, 25, 12)).astype(np.float32)  # two sequences of a new length
    with load_runtime(path, threads=1) as rt:
        assert rt.name == "litert"
        assert rt.inputs[0].dtype == "float32" and rt.inputs[0].shape == ("batch", "dim1", 12)
        got = rt.run(x)
    assert got.dtype == np.float32 and got.shape == (2, 25, 5)

    # The same sequence quantised, run and dequantised by hand with the tensors' parameters.
    interp = Interpreter(model_path=str(path))
    src, dst = interp.get_input_details()[0], interp.get_output_details()[0]
    assert src["dtype"] == dst["dtype"] == np.int8
    interp.resize_tensor_input(src["index"], [1, 25, 12])
    interp.allocate_tensors()
    scale, zero = src["quantization"]
    interp.set_tensor(
        src["index"], np.clip(np.round(x[1:] / scale + zero), -128, 127).astype(np.int8)
    )
    interp.invoke()
    scale, zero = dst["quantization"]
    by_hand = (interp.get_tensor(dst["index"]).astype(np.float32) - zero) * scale
    np.testing.assert_array_equal(got[1:], by_hand)
    # and close to the float model: typically within a quantisation step or two (the few
    # values beyond the calibrated range clip)
    assert np.median(np.abs(got - model(x).numpy())) < 2 * scale


# -- sidecar hashing ----------------------------------------------------------------------------------


def test_recognizer_creation_hashes_each_model_file_once(
    models: Models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creating a Recognizer reads the model directory's sidecars several times (the student,
    then the corrector search); each settled file is hashed once, and a change is still caught."""
    import shutil
    import time
    from collections import Counter

    from edge_slr import Recognizer, sidecar

    folder = tmp_path / "models"
    shutil.copytree(models.model_dir, folder)
    time.sleep(sidecar.SETTLED_SECONDS + 0.2)  # fresh copies are hashed every time until then
    hashed: Counter[str] = Counter()
    real_hash = sidecar._hash_file

    def counting_hash(path: Path) -> str:
        hashed[path.name] += 1
        return real_hash(path)

    monkeypatch.setattr(sidecar, "_hash_file", counting_hash)
    Recognizer.create_from_model_dir(folder).close()
    model_files = {p.name for p in folder.iterdir() if not p.name.endswith(".json")}
    assert set(hashed) == model_files and set(hashed.values()) == {1}, hashed
    Recognizer.create_from_model_dir(folder).close()
    assert set(hashed.values()) == {1}, hashed  # the second creation hashed nothing

    onnx = folder / "student.onnx"
    data = bytearray(onnx.read_bytes())
    data[-1] ^= 1  # same size, other content
    onnx.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="sha256 .* does not match"):
        load_runtime(onnx)


def test_openvino_threads_below_the_core_count_are_not_pinned(models: Models) -> None:
    """Pinned, every 1-thread model runs on the first core, whichever thread calls it."""
    import os

    pytest.importorskip("openvino")
    student = models.model_dir / "student.xml"
    with load_runtime(student, runtime="openvino", threads=1) as rt:
        pinned = rt.config.get("ENABLE_CPU_PINNING")
        assert pinned == ("NO" if (os.cpu_count() or 1) > 1 else None)
    config = {"ENABLE_CPU_PINNING": "YES"}
    with load_runtime(student, runtime="openvino", threads=1, config=config) as rt:
        assert rt.config["ENABLE_CPU_PINNING"] == "YES"  # what the caller asks for wins
