"""Conversions of a really trained tiny student: ONNX, OpenVINO FP32/INT8, TFLite, verified.

The session fixture ``tiny_student`` (tests/conftest.py) synthesises a small SignSynth dataset
(6 glosses, short sentences) and trains a tiny student on it (seeded; about 20 % dev WER, so
decodes are non-trivial). Each test converts it and checks the artifact with its own engine,
independently of the converter's verification.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

from conftest import TINY_DEV_SENTENCES as DEV_SENTENCES  # noqa: E402
from conftest import TINY_GLOSSES as GLOSSES  # noqa: E402

from edge_slr.converters import ConversionError, convert  # noqa: E402
from edge_slr.errors import FormatError, InputError  # noqa: E402
from edge_slr.runtimes import load_runtime  # noqa: E402
from edge_slr.sidecar import read_sidecar  # noqa: E402

LENGTHS = (28, 57, 211, 400)  # the receptive field (28 frames) up to long inputs
# 48 dev sentences hold about 120 glosses: one error is ~0.8 WER points; INT8 bounds allow ~6.
MAX_WER_DROP = 5.5


@pytest.fixture(scope="session")
def trained(tiny_student) -> tuple[Path, Path]:
    """(checkpoint, dataset folder) of the tiny student trained for real (tests/conftest.py)."""
    return tiny_student.checkpoint, tiny_student.data


def reference_logits(checkpoint: Path, features: np.ndarray) -> np.ndarray:
    from edge_slr.training.checkpoint import load_student

    model, _ = load_student(checkpoint)
    with torch.no_grad():
        return model.for_export(log_probs=False)(torch.from_numpy(features)).numpy()


def random_features(frames: int, batch: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, frames, 276)).astype(np.float32)


# -- FP32 targets --------------------------------------------------------------------------------


def test_onnx_has_dynamic_batch_and_time(trained, tmp_path: Path) -> None:
    import onnxruntime as ort

    checkpoint, _ = trained
    result = convert(checkpoint, "onnx", tmp_path)
    assert result.model_path == tmp_path / "student.onnx" and result.verification.passed
    session = ort.InferenceSession(str(result.model_path), providers=["CPUExecutionProvider"])
    for frames in LENGTHS:
        for batch in (1, 3):
            x = random_features(frames, batch, seed=frames)
            got = session.run(None, {"features": x})[0]
            expected = reference_logits(checkpoint, x)
            assert (
                got.shape == expected.shape == (batch, result.description.output_length(frames), 7)
            )
            np.testing.assert_allclose(got, expected, atol=1e-4)
    sidecar = read_sidecar(result.sidecar_path)
    assert sidecar.input.shape == ("batch", "frames", 276) and sidecar.output_kind == "logits"
    assert sidecar.temporal.stride == 4 and sidecar.temporal.min_input_length == 28
    assert set(sidecar.verification["diff_by_length"]) == {"28", "64", "150", "300"}
    assert sidecar.verification["max_abs_diff"] <= 1e-3


def test_openvino_fp32_is_exact_and_records_f32_hint(trained, tmp_path: Path) -> None:
    import openvino as ov

    checkpoint, data = trained
    result = convert(checkpoint, "openvino", tmp_path, calibration=data)
    description = result.description
    assert description.graph.weights is not None and description.graph.weights.name == "student.bin"
    # bf16 is the CPU plugin's default on AVX512_BF16 machines: exact FP32 needs the hint.
    assert description.engine["config"] == {"INFERENCE_PRECISION_HINT": "f32"}
    assert description.verification["sequences"] == DEV_SENTENCES  # the dev split was compared
    compiled = ov.Core().compile_model(str(result.model_path), "CPU", description.engine["config"])
    for frames in LENGTHS:
        x = random_features(frames, 2, seed=frames)
        np.testing.assert_allclose(compiled(x)[0], reference_logits(checkpoint, x), atol=1e-4)


@pytest.mark.parametrize("target", ["onnx", "openvino"])
def test_verified_settings_are_what_load_runtime_compiles_with(
    trained, tmp_path: Path, target: str
) -> None:
    """Verification ran the written file on the runtime that deploys it, loaded with the sidecar
    it then got: the settings it recorded are exactly what load_runtime gives (hints, precision,
    threads), and another thread count is visibly another setting."""
    checkpoint, _ = trained
    result = convert(checkpoint, target, tmp_path)
    recorded = read_sidecar(result.sidecar_path).verification["runtime"]
    with load_runtime(result.model_path) as runtime:
        assert runtime.settings == recorded
        assert recorded["runtime"] == runtime.name == result.description.engine["name"]
    if target == "openvino":
        assert recorded["config"]["INFERENCE_PRECISION_HINT"] == "f32"
        assert recorded["config"]["PERFORMANCE_HINT"] == "LATENCY"
    with load_runtime(result.model_path, threads=1) as runtime:
        assert runtime.settings != recorded


def test_failed_verification_raises_and_writes_no_sidecar(trained, tmp_path: Path) -> None:
    checkpoint, _ = trained
    with pytest.raises(ConversionError, match="max \\|logit diff\\|") as info:
        convert(checkpoint, "onnx", tmp_path, max_abs_diff=1e-12)  # below float32 rounding
    assert not info.value.report.passed
    assert (tmp_path / "student.onnx").exists()
    assert not (tmp_path / "student.onnx.json").exists()


def test_a_fixed_time_axis_fails_verification(trained, tmp_path: Path) -> None:
    """What the dynamo exporter does silently to this model: the file rejects other lengths."""
    import warnings

    from edge_slr.converters.verify import Reference, VerifyConfig, compare_logits
    from edge_slr.training.checkpoint import load_student

    model = load_student(trained[0])[0].for_export(log_probs=False)
    path = tmp_path / "fixed.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(1, 100, 276),),
            str(path),
            dynamo=False,
            input_names=["features"],
            output_names=["logits"],
        )  # no dynamic axes
    reference = Reference(model, min_length=28, feature_dim=276)
    with (
        load_runtime(path, runtime="onnxruntime") as runtime,
        pytest.raises(ConversionError, match="failed on T=28 \\(28 frames\\)"),
    ):
        compare_logits(lambda x: runtime.run(x[None])[0], reference, VerifyConfig())


# -- INT8 ------------------------------------------------------------------------------------------


def test_openvino_int8_keeps_decodes(trained, tmp_path: Path, caplog) -> None:
    checkpoint, data = trained
    with caplog.at_level(logging.WARNING, logger="edge_slr.converters"):
        # The WER bound is relaxed to ~6 errors on the tiny dev split (MAX_WER_DROP);
        # gloss agreement stays at the default 95 %.
        result = convert(
            checkpoint,
            "openvino-int8",
            tmp_path,
            calibration=data,
            calibration_size=64,
            max_wer_drop=MAX_WER_DROP,
        )
    assert "64 sequences" in caplog.text  # below the recommended 300: a warning
    report = result.verification
    assert report.mode == "int8" and report.sequences == DEV_SENTENCES
    assert report.agreement >= 0.95 and report.wer_drop <= MAX_WER_DROP  # gloss-level agreement
    description = read_sidecar(result.sidecar_path)
    assert description.precision.weights == "int8"
    # the floating-point layers were verified in f32 and the runtime compiles exactly that (the
    # plugin's default would be bf16 on CPUs with AVX512_BF16/AMX)
    assert description.engine["config"] == {"INFERENCE_PRECISION_HINT": "f32"}
    assert description.details["verified_inference_precision"] == "f32"
    with load_runtime(result.model_path) as runtime:
        assert runtime.config["INFERENCE_PRECISION_HINT"] == "f32"
        assert runtime.settings == description.verification["runtime"]  # verified as deployed
    assert description.calibration["sequences"] == 64
    assert description.calibration["frames"]["min"] < description.calibration["frames"]["max"]
    attempts = description.details["attempts"]
    assert attempts[-1]["passed"] and description.details["plan"] == attempts[-1]["plan"]
    rows = {row["op"].split()[-1]: row for row in description.details["op_precisions"]}
    kept = attempts[-1]["kept_fp32"]  # what the chosen plan left in FP32
    assert all(rows[name]["weights"] == rows[name]["input"] == "fp32" for name in kept)
    int8_ops = [row for name, row in rows.items() if name not in kept]
    assert int8_ops and all(row["weights"] == "int8" for row in int8_ops)
    fp32_size = convert(checkpoint, "openvino", tmp_path).size_bytes
    assert result.size_bytes < fp32_size


def test_int8_requires_calibration_data(trained, tmp_path: Path) -> None:
    checkpoint, _ = trained
    with pytest.raises(InputError, match="--calibration is required for openvino-int8"):
        convert(checkpoint, "openvino-int8", tmp_path)


def test_calibration_with_another_vocabulary_is_rejected(trained, tmp_path: Path) -> None:
    from edge_slr.decoding.vocab import Vocabulary

    checkpoint, data = trained
    other = tmp_path / "other"
    shutil.copytree(data, other, ignore=shutil.ignore_patterns("*.pt"))
    (other / "vocabulary.json").unlink()
    Vocabulary.from_sentences([GLOSSES + ("HAIL",)]).save(other / "vocabulary.json")
    with pytest.raises(InputError, match="another vocabulary than the checkpoint"):
        convert(checkpoint, "onnx", tmp_path / "out", calibration=other)


# -- TFLite --------------------------------------------------------------------------------------


def test_tflite_fp32_keeps_time_dynamic(trained, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    from ai_edge_litert.interpreter import Interpreter

    checkpoint, _ = trained
    result = convert(checkpoint, "tflite", tmp_path)
    details = result.description.details
    assert details["keras"] == "keras3" and details["fused_lstm"] is False
    assert "WHILE" in details["ops"]
    interpreter = Interpreter(model_path=str(result.model_path))
    index = interpreter.get_input_details()[0]["index"]
    for frames in LENGTHS:
        x = random_features(frames, seed=frames)
        interpreter.resize_tensor_input(index, [1, frames, 276])
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, x)
        interpreter.invoke()
        got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        np.testing.assert_allclose(got, reference_logits(checkpoint, x), atol=1e-4)


@pytest.mark.slow
def test_tflite_int8_dynamic_range_and_full_integer(trained, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    checkpoint, data = trained
    dynamic = convert(
        checkpoint, "tflite-int8", tmp_path, calibration=data, max_wer_drop=MAX_WER_DROP
    )
    assert dynamic.description.details["quantization"] == "dynamic-range"
    assert dynamic.description.calibration is None  # weights only: no statistics needed
    full = convert(
        checkpoint,
        "tflite-int8",
        tmp_path,
        calibration=data,
        full_integer=True,
        calibration_size=64,
        max_wer_drop=MAX_WER_DROP,
    )
    details = full.description.details
    assert details["fused_lstm"] and "UNIDIRECTIONAL_SEQUENCE_LSTM" in details["ops"]
    assert full.model_path.name == "student-int8-full.tflite"
    assert full.verification.agreement >= 0.9


@pytest.mark.slow
def test_onnx_int8_and_openvino_variants(trained, tmp_path: Path) -> None:
    checkpoint, data = trained
    onnx_int8 = convert(
        checkpoint,
        "onnx-int8",
        tmp_path,
        calibration=data,
        calibration_size=64,
        max_wer_drop=MAX_WER_DROP,
    )
    assert "DynamicQuantizeLSTM" in onnx_int8.description.details["ops"]
    fp16 = convert(checkpoint, "openvino", tmp_path, fp16=True)
    assert fp16.model_path.name == "student-fp16.xml"
    assert fp16.description.precision.weights == "fp16"
    controlled = convert(
        checkpoint,
        "openvino-int8",
        tmp_path / "ac",
        calibration=data,
        calibration_size=64,
        accuracy_control=True,
        max_wer_drop=MAX_WER_DROP,
        min_agreement=0.8,  # NNCF reverts layers for the WER budget only
    )
    assert controlled.description.details["calibration_method"].endswith("accuracy_control")


# -- sidecar and CLI -----------------------------------------------------------------------------


def test_sidecar_round_trip_and_tampering(trained, tmp_path: Path) -> None:
    checkpoint, _ = trained
    result = convert(checkpoint, "onnx", tmp_path)
    description = read_sidecar(result.model_path)  # the model path finds its sidecar
    assert description == result.description
    assert description.vocab().glosses[1:] == tuple(sorted(GLOSSES))
    assert description.feature_preset().num_features == 276
    assert description.source["sha256"] != description.graph.file.sha256

    model_bytes = result.model_path.read_bytes()
    result.model_path.write_bytes(model_bytes[: len(model_bytes) // 2])
    with pytest.raises(FormatError, match="truncated or replaced"):
        read_sidecar(result.sidecar_path)
    result.model_path.write_bytes(model_bytes[:-1] + bytes([model_bytes[-1] ^ 1]))
    with pytest.raises(FormatError, match="sha256 .* does not match"):
        read_sidecar(result.sidecar_path)
    result.model_path.write_bytes(model_bytes)

    data = json.loads(result.sidecar_path.read_text())
    data["vocabulary"]["glosses"][1] = "HAIL"
    result.sidecar_path.write_text(json.dumps(data))
    with pytest.raises(FormatError, match="sha256"):
        read_sidecar(result.sidecar_path)


def test_cli_rejects_bad_option_combinations(trained, tmp_path: Path) -> None:
    import argparse

    from edge_slr.cli import convert as cli

    parser = argparse.ArgumentParser(prog="edge-slr")
    cli.add_parser(parser.add_subparsers())
    checkpoint, data = trained
    cases = {
        ("--target", "openvino-int8"): "--calibration is required for openvino-int8",
        ("--target", "tflite", "--fp16"): "--fp16 does not apply to tflite",
        ("--target", "onnx", "--max-wer-drop", "1"): "--max-wer-drop .* does not apply to onnx",
        ("--target", "openvino", "--full-integer"): "--full-integer does not apply to openvino",
        (
            "--target",
            "tflite-int8",
            "--calibration",
            str(data),
            "--full-integer",
            "--no-fused-lstm",
        ): "needs the fused LSTM path",
    }
    for argv, message in cases.items():
        args = parser.parse_args(["convert", str(checkpoint), "-o", str(tmp_path), *argv])
        with pytest.raises(InputError, match=message):
            args.run(args)
    with pytest.raises(SystemExit):  # argparse: not a target of the table
        parser.parse_args(["convert", str(checkpoint), "-o", str(tmp_path), "--target", "coreml"])
    args = parser.parse_args(["convert", str(checkpoint), "-o", str(tmp_path), "--target", "onnx"])
    assert args.run(args) == 0 and (tmp_path / "student.onnx.json").is_file()


# -- the gloss corrector -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def corrector_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small two-stage corrector over the tiny vocabulary (untrained: exactness only)."""
    from edge_slr.decoding.vocab import Vocabulary
    from edge_slr.training.corrector import (
        Corrector,
        CorrectorDims,
        CorrectorVocabulary,
        build_stages,
        save_corrector,
    )

    vocab = CorrectorVocabulary(Vocabulary.from_sentences([GLOSSES], oov="unk"))
    dims = CorrectorDims(
        vocab_size=len(vocab),
        d_model=32,
        n_heads=2,
        encoder_layers=2,
        ff_dim=64,
        max_len=40,
        stages=2,
    )
    torch.manual_seed(0)
    stages = build_stages(dims, vocab.pad_id)
    folder = tmp_path_factory.mktemp("corrector")
    save_corrector(folder, Corrector(stages, vocab))
    return folder


@pytest.mark.slow
def test_corrector_converts_to_onnx_and_openvino(
    corrector_dir: Path, trained, tmp_path: Path
) -> None:
    onnx = convert(corrector_dir, "onnx", tmp_path, calibration=trained[1])
    roles = [g.role for g in onnx.description.graphs]
    assert roles == ["stage0.encoder", "stage0.decoder", "stage1.encoder", "stage1.decoder"]
    assert onnx.sidecar_path == tmp_path / "corrector.onnx.json"
    assert onnx.description.graphs[1].inputs[0].shape == ("batch", "target")
    assert set(onnx.verification.diff_by_length) >= {"S=1,T=1", "S=30,T=20"}
    # greedy corrections of the noisy dev sentences, through both stages, are identical
    assert (
        onnx.verification.sequences == DEV_SENTENCES and onnx.verification.sentence_agreement == 1.0
    )
    assert onnx.description.output_kind == "log_probs"  # the copy-attention head's output
    ov_result = convert(corrector_dir, "openvino", tmp_path)
    # Lengths >= 16 after a length-1 first call hit a stale kernel unless the cache is off.
    assert ov_result.description.engine["config"]["CPU_RUNTIME_CACHE_CAPACITY"] == "0"
    assert read_sidecar(ov_result.sidecar_path).vocab().glosses[1] == "<unk>"
    # TFLite goes through the TensorFlow rebuild (tests/test_corrector_convert.py covers it).
    tflite = convert(corrector_dir, "tflite", tmp_path)
    assert tflite.verification.passed and tflite.description.engine["name"] == "litert"
