"""TFLite op versions: read from the flatbuffer, the oldest release per model, refusal on an older
interpreter, and ``compat="tflite-runtime-2.14"`` conversions that avoid FULLY_CONNECTED v12.

Fast tests read flatbuffers written by the ``flatbuffers`` package's own builder (an independent
writer of the TFLite schema) and by the real TensorFlow converter on a small Keras model; the slow
test converts the tiny trained student. The interpreter's release is a parameter of
:func:`check_runtime`, so refusal is tested without an old interpreter (the device-install test,
tests/test_tflite_device_install.py, runs the real tflite-runtime 2.14).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_slr.converters import check_request, get_target
from edge_slr.converters.job import ConvertOptions
from edge_slr.errors import FormatError, InputError, MissingDependencyError
from edge_slr.runtimes.litert_rt import LiteRTRuntime, installed_interpreters
from edge_slr.runtimes.tflite_ops import (
    OpVersion,
    check_runtime,
    converter_min_runtime,
    min_runtime,
    min_runtime_for,
    newer_ops,
    read_op_codes,
    release_key,
)

FULLY_CONNECTED, CONV_2D, ADD, CUSTOM, GELU = 9, 3, 0, 32, 150
PLACEHOLDER_FOR_GREATER_OP_CODES = 127


def hand_built_model(op_codes: list[tuple[int, int, str]], min_runtime_meta: str = "") -> bytes:
    """A TFLite flatbuffer holding only ``Model.operator_codes`` (and optionally the converter's
    ``min_runtime_version`` metadata), written with the flatbuffers builder.

    ``op_codes``: (builtin code, version (0 = leave the default), custom name). Codes above 127
    are written as new-style models do (deprecated code 127 + builtin_code); a code given as
    negative is written old-style (deprecated code only).
    """
    flatbuffers = pytest.importorskip("flatbuffers")
    b = flatbuffers.Builder(256)
    codes = []
    for code, version, custom in op_codes:
        name = b.CreateString(custom) if custom else None
        b.StartObject(4)
        old_style = code < 0
        code = abs(code)
        b.PrependInt8Slot(0, min(code, PLACEHOLDER_FOR_GREATER_OP_CODES), 0)
        if name is not None:
            b.PrependUOffsetTRelativeSlot(1, name, 0)
        if version:
            b.PrependInt32Slot(2, version, 1)
        if not old_style:
            b.PrependInt32Slot(3, code, 0)
        codes.append(b.EndObject())
    buffers, metadata = [], []
    if min_runtime_meta:
        data = b.CreateByteVector(min_runtime_meta.encode().ljust(16, b"\0"))
        b.StartObject(3)
        b.PrependUOffsetTRelativeSlot(0, data, 0)
        buffers.append(b.EndObject())
        key = b.CreateString("min_runtime_version")
        b.StartObject(2)
        b.PrependUOffsetTRelativeSlot(0, key, 0)
        b.PrependUint32Slot(1, 0, 0)
        metadata.append(b.EndObject())

    def vector(items: list[int]) -> int:
        b.StartVector(4, len(items), 4)
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        return b.EndVector()

    code_vector, buffer_vector, meta_vector = vector(codes), vector(buffers), vector(metadata)
    b.StartObject(8)
    b.PrependUint32Slot(0, 3, 0)  # schema version 3
    b.PrependUOffsetTRelativeSlot(1, code_vector, 0)
    b.PrependUOffsetTRelativeSlot(4, buffer_vector, 0)
    b.PrependUOffsetTRelativeSlot(6, meta_vector, 0)
    b.Finish(b.EndObject(), file_identifier=b"TFL3")
    return bytes(b.Output())


# -- reading op codes -----------------------------------------------------------------------------


def test_reads_names_versions_and_first_releases_from_a_flatbuffer() -> None:
    model = hand_built_model(
        [
            (FULLY_CONNECTED, 12, ""),
            (ADD, 0, ""),  # version absent: the schema default, 1
            (GELU, 2, ""),  # above 127: deprecated code is the placeholder
            (-CONV_2D, 5, ""),  # an old model: only the deprecated code
            (CUSTOM, 1, "MyOp"),
            (FULLY_CONNECTED, 99, ""),  # a version newer than the table
        ],
        min_runtime_meta="2.17.0",
    )
    ops = read_op_codes(model)
    assert ops == (
        OpVersion("ADD", 1, "1.5.0"),
        OpVersion("CONV_2D", 5, "2.4.0"),
        OpVersion("CUSTOM:MyOp", 1, None),
        OpVersion("FULLY_CONNECTED", 12, "2.17.0"),
        OpVersion("FULLY_CONNECTED", 99, None),
        OpVersion("GELU", 2, "2.9.0"),
    )
    assert min_runtime(ops) == "2.17.0"
    assert converter_min_runtime(model) == "2.17.0"
    assert converter_min_runtime(hand_built_model([(ADD, 1, "")])) is None
    assert [op.name for op in newer_ops(ops, "2.5.0")] == ["FULLY_CONNECTED", "GELU"]
    assert ops[0].to_dict() == {"op": "ADD", "version": 1, "min_runtime": "1.5.0"}


def test_release_numbers_compare_numerically() -> None:
    assert release_key("2.14.0") < release_key("2.17.0") < release_key("2.100")
    assert release_key("2.9.0") < release_key("2.14.4")
    assert release_key("2.19.1+cpu") == (2, 19, 1) and release_key("2.14.0rc1") == (2, 14, 0)
    with pytest.raises(ValueError, match="not a release number"):
        release_key("latest")
    assert min_runtime_for("BROADCAST_TO", 1) is None  # a version that never existed
    assert min_runtime_for("FULLY_CONNECTED", 9) == "2.3.0"


def test_malformed_files_are_format_errors(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="expected the TFL3 file identifier"):
        read_op_codes(b"this is not a flatbuffer at all")
    model = hand_built_model([(FULLY_CONNECTED, 12, "")])
    with pytest.raises(FormatError, match="not a readable TFLite flatbuffer"):
        read_op_codes(model[:12])
    with pytest.raises(FormatError, match="cannot read the model file"):
        read_op_codes(tmp_path / "missing.tflite")


# -- refusing an older interpreter ------------------------------------------------------------------


def test_an_older_interpreter_is_refused_with_one_line_naming_op_version_and_release(
    tmp_path: Path,
) -> None:
    path = tmp_path / "student-int8.tflite"
    path.write_bytes(hand_built_model([(ADD, 1, ""), (FULLY_CONNECTED, 12, "")]))
    with pytest.raises(FormatError) as caught:
        check_runtime(path, "2.14.0", "tflite_runtime 2.14.0")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: FULLY_CONNECTED version 12 needs TFLite 2.17.0")
    assert "tflite_runtime 2.14.0" in message and "--compat tflite-runtime-2.14" in message
    check_runtime(path, "2.17.0", "tflite_runtime 2.17.0")  # new enough: no error
    check_runtime(path, "2.19.1", "tensorflow 2.19.1")


def test_runtime_interpreter_option_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(hand_built_model([(ADD, 1, "")]))
    with pytest.raises(InputError, match="interpreter must be one of.*'tflite_runtime'.*got 'tf'"):
        LiteRTRuntime(path, interpreter="tf")
    if "tflite_runtime" not in installed_interpreters():
        with pytest.raises(MissingDependencyError, match=r"edge-slr\[tflite-runtime\]"):
            LiteRTRuntime(path, interpreter="tflite_runtime")


def test_compat_option_is_validated_and_only_for_tflite_targets() -> None:
    assert ConvertOptions(compat="tflite-runtime-2.14").compat_release == "2.14.0"
    assert ConvertOptions(compat="tflite-runtime-2.14.4").compat_release == "2.14.4"
    assert ConvertOptions().compat_release is None
    with pytest.raises(InputError, match="compat must name a TFLite interpreter release.*'2.14'"):
        ConvertOptions(compat="2.14")
    options = ConvertOptions(compat="tflite-runtime-2.14")
    check_request(get_target("tflite-int8"), options, "calibration-folder")
    check_request(get_target("tflite"), options, None)
    with pytest.raises(InputError, match="--compat 'tflite-runtime-2.14' does not apply to onnx"):
        check_request(get_target("onnx"), options, None)


# -- the real converter on a small Keras model --------------------------------------------------------


@pytest.fixture(scope="module")
def dense_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Dynamic-range INT8 of a small Keras Dense model, per-channel (the default) and with
    ``compat``: written by the converter module's own ``to_tflite``."""
    pytest.importorskip("tensorflow")
    from edge_slr.converters.job import Job
    from edge_slr.converters.tflite import keras_flavour, tensorflow, to_tflite

    tf, keras = tensorflow(), keras_flavour(False)
    tf.keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(None, 64), batch_size=1, name="features")
    hidden = keras.layers.Dense(64, activation="relu")(inputs)  # 4096 weights: quantised
    model = keras.Model(inputs, keras.layers.Dense(48)(hidden))
    folder = tmp_path_factory.mktemp("dense")
    paths = {}
    for name, compat in (("default", ""), ("compat", "tflite-runtime-2.14")):
        job = Job(get_target("tflite-int8"), None, ConvertOptions(compat=compat), folder)
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(to_tflite(job, model, "dynamic-range"))
    x = np.random.default_rng(0).standard_normal((1, 10, 64)).astype(np.float32)
    paths["reference"] = folder / "reference.npy"
    np.save(paths["reference"], np.concatenate([x, model(x).numpy()], axis=-1))
    return paths


def test_per_channel_dense_needs_2_17_and_compat_keeps_to_2_14(dense_models) -> None:
    from edge_slr.converters.tflite import op_details
    from edge_slr.converters.verify import ConversionError

    default = {op.name: op for op in read_op_codes(dense_models["default"])}
    assert default["FULLY_CONNECTED"].version == 12  # hybrid with per-channel weights
    with pytest.raises(FormatError, match="FULLY_CONNECTED version 12 needs TFLite 2.17.0"):
        check_runtime(dense_models["default"], "2.14.0", "tflite_runtime 2.14.0")
    with pytest.raises(ConversionError, match=r"still needs FULLY_CONNECTED v12 \(TFLite 2.17"):
        op_details(dense_models["default"], "tflite-runtime-2.14", "2.14.0")

    compat = read_op_codes(dense_models["compat"])
    fully_connected = [op for op in compat if op.name == "FULLY_CONNECTED"]
    assert fully_connected and all(op.version in (3, 9) for op in fully_connected)
    details = op_details(dense_models["compat"], "tflite-runtime-2.14", "2.14.0")
    assert release_key(details["min_runtime"]) <= release_key("2.14.0")
    assert details["tflite_ops"] == [op.to_dict() for op in compat]
    check_runtime(dense_models["compat"], "2.14.0", "tflite_runtime 2.14.0")


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
@pytest.mark.parametrize("interpreter", ["ai_edge_litert", "tensorflow"])
def test_both_int8_models_run_on_the_installed_interpreters(dense_models, interpreter) -> None:
    if interpreter not in installed_interpreters():
        pytest.skip(f"{interpreter} is not installed")
    data = np.load(dense_models["reference"])
    x, expected = data[..., :64], data[..., 64:]
    scale = float(np.abs(expected).max())
    for name in ("default", "compat"):
        with LiteRTRuntime(dense_models[name], interpreter=interpreter, threads=1) as runtime:
            assert runtime.interpreter.module == interpreter
            got = runtime.run(x)
        # INT8 weights: within a few percent of the float model's output range
        assert got.shape == expected.shape
        assert float(np.abs(got - expected).max()) < 0.05 * scale


# -- the tiny trained student (slow: three TFLite conversions) -----------------------------------------


def tflite_models(base: Path) -> tuple[Path, Path, Path]:
    """(data, folder with FP32 + compat INT8, folder with the default INT8) of the tiny student,
    converted once per session (kept in ``base``)."""
    from conftest import build_tiny_student

    from edge_slr.converters import convert

    student = build_tiny_student(base)
    root = base / "tflite-compat"
    compatible, newer = root / "compatible", root / "newer"
    if not (root / "done").exists():
        shutil.rmtree(root, ignore_errors=True)
        checks = {"max_wer_drop": 10.0, "min_agreement": 0.85}
        convert(student.checkpoint, "tflite", compatible, compat="tflite-runtime-2.14")
        convert(student.checkpoint, "tflite-int8", compatible, calibration=student.data,
                compat="tflite-runtime-2.14", **checks)  # fmt: skip
        convert(student.checkpoint, "tflite-int8", newer, calibration=student.data, **checks)
        (root / "done").touch()
    return student.data, compatible, newer


@pytest.mark.slow
def test_student_sidecars_record_ops_and_minimum_release(tmp_path_factory) -> None:
    pytest.importorskip("tensorflow")
    pytest.importorskip("torch")
    from edge_slr.sidecar import read_sidecar

    _, compatible, newer = tflite_models(tmp_path_factory.getbasetemp())
    sidecars = {
        name: read_sidecar(folder / f"{name}.json")
        for folder, name in ((compatible, "student.tflite"), (compatible, "student-int8-compat.tflite"),
                             (newer, "student-int8.tflite"))
    }  # fmt: skip
    for name, description in sidecars.items():
        folder = newer if name == "student-int8.tflite" else compatible
        details = description.details
        ops = read_op_codes(folder / name)
        assert details["tflite_ops"] == [op.to_dict() for op in ops]
        assert details["min_runtime"] == converter_min_runtime(folder / name)  # TF agrees
        assert details["min_runtime"] == min_runtime(ops)
    default = sidecars["student-int8.tflite"].details
    assert default["min_runtime"] == "2.17.0" and default["compat"] == ""
    assert {"op": "FULLY_CONNECTED", "version": 12, "min_runtime": "2.17.0"} in default[
        "tflite_ops"
    ]
    for name in ("student.tflite", "student-int8-compat.tflite"):
        details = sidecars[name].details
        assert details["compat"] == "tflite-runtime-2.14"
        assert release_key(details["min_runtime"]) <= release_key("2.14.0")
    assert sidecars["student-int8-compat.tflite"].precision.weights == "int8"
    assert sidecars["student-int8-compat.tflite"].verification["passed"]


@pytest.mark.slow
def test_corrector_sidecar_records_ops_per_graph_and_compat_int8_is_refused(
    tmp_path: Path,
) -> None:
    pytest.importorskip("tensorflow")
    pytest.importorskip("torch")
    import importlib.util
    import sys

    from edge_slr.converters import convert
    from edge_slr.converters.verify import ConversionError
    from edge_slr.training.corrector import load_config, train_corrector

    spec = importlib.util.spec_from_file_location(
        "_corrector_convert", Path(__file__).with_name("test_corrector_convert.py")
    )
    helpers = sys.modules.setdefault("_corrector_convert", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(helpers)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for split, count, seed in (("train", 200, 0), ("dev", 24, 1)):
        rows = [helpers.HEADER] + [
            f"{split}{i:03d}|{split}{i:03d}/1/*.png|-1|-1|Signer0{i % 3}|{' '.join(s)}|text"
            for i, s in enumerate(helpers.sentences(count, seed))
        ]
        (corpus / f"PHOENIX-2014-T.{split}.corpus.csv").write_text("\n".join(rows) + "\n")
    corrector = tmp_path / "corrector"
    config = load_config(None, [*helpers.TINY, "train.corpus=phoenix2014t", f"train.root={corpus}"])
    train_corrector(config, corrector, sentences=helpers.sentences(200, 0))

    fp32 = convert(corrector, "tflite", tmp_path / "fp32", compat="tflite-runtime-2.14")
    details = fp32.description.details
    files = {g.role: tmp_path / "fp32" / g.file.name for g in fp32.description.graphs}
    assert sorted(details["tflite_ops"]) == sorted(files)
    for role, path in files.items():
        assert details["tflite_ops"][role] == [op.to_dict() for op in read_op_codes(path)]
    newest = max((converter_min_runtime(p) for p in files.values()), key=release_key)
    assert details["min_runtime"] == newest
    assert release_key(newest) <= release_key("2.14.0")
    with pytest.raises(ConversionError, match=r"still needs FULLY_CONNECTED v12.*FP32 conversion"):
        convert(corrector, "tflite-int8", tmp_path / "int8", calibration=corpus,
                compat="tflite-runtime-2.14", **helpers.INT8_BOUNDS)  # fmt: skip
    assert not list((tmp_path / "int8").glob("*.json"))  # refused: no sidecar
