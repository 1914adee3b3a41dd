"""The model sidecar: schema round trip and every validation error (numpy only, no engines)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_slr.decoding.vocab import Vocabulary
from edge_slr.errors import FormatError, InputError
from edge_slr.landmarks.presets import get_preset
from edge_slr.runtimes.torch_rt import student_temporal
from edge_slr.sidecar import (
    FileInfo,
    GraphSpec,
    ModelDescription,
    PrecisionSpec,
    TensorSpec,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)
from edge_slr.training.models import StudentDims

VOCAB = Vocabulary.from_sentences([["RAIN", "SUN", "WIND"]])


def describe(model: Path, *, classes: int = len(VOCAB), features: int = 276) -> ModelDescription:
    dims = StudentDims(num_classes=classes)
    return ModelDescription(
        kind="student",
        target="onnx",
        engine={"name": "onnxruntime", "version": "1.0", "config": {}},
        graphs=(
            GraphSpec(
                role="recognizer",
                file=FileInfo.of(model),
                inputs=(TensorSpec("features", ("batch", "frames", features)),),
                outputs=(TensorSpec("logits", ("batch", "steps", classes)),),
            ),
        ),
        sequence_output="logits",
        output_kind="logits",
        vocabulary=VOCAB.to_dict(),
        precision=PrecisionSpec("fp32", "fp32"),
        source={"checkpoint": "student.pt", "sha256": "0" * 64},
        preset=get_preset("kdmslrt92").to_dict(),
        temporal=student_temporal(dims),
    )


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "student.onnx"
    path.write_bytes(bytes(range(256)) * 40)
    return path


def test_round_trip(model: Path) -> None:
    description = describe(model)
    path = write_sidecar(description, model)
    assert path == sidecar_path(model) == model.with_name("student.onnx.json")
    assert read_sidecar(path) == description == read_sidecar(model)
    assert description.input.dynamic_axes == {0: "batch", 1: "frames"}
    assert description.vocab() == VOCAB and description.feature_dim == 276


def test_temporal_spec_matches_the_student() -> None:
    for dims in (
        StudentDims(num_classes=5),
        StudentDims(num_classes=5, kernel_size=3),
        StudentDims(num_classes=5, padding="same"),
    ):
        temporal = student_temporal(dims)
        assert temporal.stride == 4 and temporal.min_input_length == dims.min_input_length
        for frames in range(1, 300):
            assert temporal.output_length(frames) == max(dims.output_length(frames), 0)
    assert student_temporal(StudentDims(num_classes=5)).receptive_field == 28
    assert student_temporal(StudentDims(num_classes=5, padding="same")).receptive_field == 28


def _rewrite(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="other"), "'format' must be 'edge-slr-model'"),
        (lambda d: d.update(format_version=99), "format_version 99"),
        (lambda d: d.pop("vocabulary"), "missing field 'vocabulary'"),
        (lambda d: d.update(graphs="student.onnx"), "field 'graphs' must be a list"),
        (lambda d: d["vocabulary"]["glosses"].__setitem__(1, "HAIL"), "sha256"),
        (
            lambda d: d["graphs"][0]["inputs"][0].update(shape=["batch", "frames", 100]),
            "input feature size 100 does not match preset 'kdmslrt92'",
        ),
        (
            lambda d: d["graphs"][0]["outputs"][0].update(shape=["batch", "steps", 9]),
            "output has 9 classes but the vocabulary has 4",
        ),
        (lambda d: d.update(sequence_output="probs"), "sequence_output 'probs' is not an output"),
        (lambda d: d["graphs"][0]["file"].update(name="../student.onnx"), "only a file beside"),
        (lambda d: d.update(kind="detector"), "kind 'detector'"),
        (lambda d: d.update(temporal=None), "needs its landmark preset and temporal spec"),
    ],
)
def test_invalid_descriptions_are_format_errors(model: Path, change, message: str) -> None:
    path = write_sidecar(describe(model), model)
    _rewrite(path, change)
    with pytest.raises(FormatError, match=message) as info:
        read_sidecar(path)
    assert info.value.path == path


def test_model_file_changes_are_detected(model: Path) -> None:
    path = write_sidecar(describe(model), model)
    original = model.read_bytes()
    model.write_bytes(original[:100])
    with pytest.raises(FormatError, match="size is 100 bytes but the sidecar recorded 10240"):
        read_sidecar(path)
    model.write_bytes(original[::-1])
    with pytest.raises(FormatError, match="sha256 .* does not match the sidecar's"):
        read_sidecar(path)
    assert read_sidecar(path, check_files=False).graph.file.size == len(original)
    model.unlink()
    with pytest.raises(FormatError, match="does not exist"):
        read_sidecar(path)


def test_unreadable_sidecars(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="sidecar does not exist"):
        read_sidecar(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx.json"
    bad.write_text("{not json")
    with pytest.raises(FormatError, match="not a JSON sidecar"):
        read_sidecar(bad)


def test_schema_values_are_validated() -> None:
    with pytest.raises(InputError, match="precision 'int4'"):
        PrecisionSpec("int4", "fp32")
    with pytest.raises(InputError, match="bad dimension -1"):
        TensorSpec("x", ("batch", -1))


def test_importing_the_converters_loads_no_engine() -> None:
    import subprocess
    import sys

    code = (
        "import sys, edge_slr.converters, edge_slr.cli.convert, edge_slr.sidecar\n"
        "heavy = {'torch', 'tensorflow', 'openvino', 'nncf', 'onnxruntime', 'onnx'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
