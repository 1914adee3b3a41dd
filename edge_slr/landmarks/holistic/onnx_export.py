"""The Holistic ``.tflite`` models as ONNX files for ONNX Runtime, through tf2onnx.

tf2onnx 1.17 (the ``convert`` extra; it needs TensorFlow to import) resolves with the pinned
stack (protobuf 4.25, onnx 1.22) and converts each file directly from its TFLite flatbuffer
(``tf2onnx.convert.from_tflite``, opset 17, NHWC input kept). Only the outputs Holistic uses are
converted (the others are pruned by naming the kept outputs), and they are renamed to the stable
names of :mod:`edge_slr.landmarks.holistic.models`. Each file is checked against the ``.tflite``
on LiteRT and described by a sidecar like the OpenVINO ones.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from edge_slr._optional import require
from edge_slr.errors import FormatError
from edge_slr.landmarks.holistic.models import (
    ROLE_SPECS,
    Artifact,
    ModelFile,
    verify_against_litert,
    write_artifact_sidecar,
)

logger = logging.getLogger(__name__)

OPSET = 17


def build_onnx(source: ModelFile, path: Path) -> Artifact:
    """Convert ``source`` to ONNX at ``path`` (pruned, stable output names), verified, with its
    sidecar."""
    onnx = require("onnx", "converting the Holistic models to ONNX")
    tflite_names = _tflite_output_names(source)
    spec = ROLE_SPECS[source.role]
    stable = [name for name, _ in spec.outputs]
    kept = {old: new for old, new in zip(tflite_names, stable, strict=True) if new in source.used}
    model = _convert(source, list(kept))
    _rename_outputs(model, kept)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.onnx")
    onnx.save(model, str(tmp))
    os.replace(tmp, path)
    logger.info("built %s", path)
    verification = verify_against_litert(source, path, "onnxruntime")
    sidecar = write_artifact_sidecar(
        path,
        source,
        "onnxruntime",
        pruned=source.pruned,
        verification=verification,
        extra_versions={"onnxruntime_verified": _version("onnxruntime"), "opset": str(OPSET)},
    )
    return Artifact(source.role, "onnxruntime", path, source, sidecar)


def _convert(source: ModelFile, outputs: list[str]) -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    require("tensorflow", "converting the Holistic models to ONNX (tf2onnx imports it)")
    tf2onnx = require("tf2onnx.convert", "converting the Holistic models to ONNX")
    try:
        model, _ = tf2onnx.from_tflite(str(source.path), output_names=outputs, opset=OPSET)
    except Exception as err:  # the converter raises many types; name the file
        raise FormatError(source.path, f"tf2onnx could not convert it: {err}") from err
    return model


def _tflite_output_names(source: ModelFile) -> list[str]:
    """The file's output tensor names in output order (tf2onnx names outputs by them)."""
    litert = require("ai_edge_litert.interpreter", "reading the Holistic .tflite outputs")
    interpreter = litert.Interpreter(model_path=str(source.path))
    names = [detail["name"] for detail in interpreter.get_output_details()]
    expected = len(ROLE_SPECS[source.role].outputs)
    if len(names) != expected:
        raise FormatError(source.path, f"has {len(names)} outputs {names}; expected {expected}")
    return names


def _rename_outputs(model: Any, names: dict[str, str]) -> None:
    graph = model.graph
    found = {output.name for output in graph.output}
    if set(names) - found:
        raise FormatError(
            "tf2onnx output", f"outputs {sorted(found)} lack {sorted(set(names) - found)}"
        )
    for node in graph.node:
        node.output[:] = [names.get(name, name) for name in node.output]
        node.input[:] = [names.get(name, name) for name in node.input]
    for output in graph.output:
        output.name = names.get(output.name, output.name)


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"
