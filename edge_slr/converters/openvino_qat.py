"""OpenVINO IR INT8 from a QAT checkpoint (edge_slr.training.qat), LSTMs included.

NNCF lays out the INT8 graph (FakeQuantize on activations, INT8 weights with dequantisation
scales: the pattern the CPU plugin turns into INT8 kernels, oneDNN's INT8 RNN for the
LSTMSequence ops); the ranges and weights are then replaced by what the fine-tune simulated:

- each activation FakeQuantize gets the checkpoint's range (the graph's quantisers, in order,
  must be exactly the QAT points, else ConversionError);
- the FakeQuantize NNCF puts on an LSTM's initial hidden state gets that LSTM's input range
  (oneDNN reads the state with the input's scale and shift);
- convolution and classifier weights are quantised per output channel, the LSTM weights per
  tensor (one scale for input and recurrent weights: the plugin applies the input weights'
  scales to both), from the float graph's weights (BatchNorm already folded in).

LSTM layers from the checkpoint's ``int8_lstm_layers`` on (default: all but the first; a second
INT8 layer does not match the simulation, see edge_slr.training.qat) are NNCF's ignored scope:
FP32 weights, no quantiser in front, run in f32 as the fine-tune simulated them. Bias correction
is off: the biases stay those the fine-tune learned.

The ``openvino-int8-qat`` target (:func:`export`) takes only QAT checkpoints
(``edge-slr train recognizer --qat --init best.pt``); the other INT8 targets refuse them
(:func:`check_target`), since post-training quantisation would ignore the trained ranges.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr._optional import require
from edge_slr.converters.job import Artifact, Job, TargetSpec
from edge_slr.converters.verify import ConversionError
from edge_slr.errors import InputError
from edge_slr.training.qat import SCHEME, ActRange, point_names, ranges_from_entry, weight_qmax

logger = logging.getLogger(__name__)

CALIBRATION_SEQUENCES = 16  # NNCF only lays out the graph: every range is replaced
WEIGHT_INPUTS = {"Convolution": (1,), "MatMul": (1,), "LSTMSequence": (4, 5)}


def upstream_fq(value: Any) -> Any:
    """The FakeQuantize above ``value`` through single-input layout ops, else None."""
    node = value.get_node()
    for _ in range(8):
        if node.get_type_name() == "FakeQuantize":
            return node
        if node.get_type_name() not in ("Transpose", "Reshape", "MaxPool", "Squeeze", "Unsqueeze"):
            return None
        node = node.input_value(0).get_node()
    return None


def _name(node: Any) -> str | None:
    return None if node is None else node.get_friendly_name()


def _set_range(ops: Any, fq: Any, low: float, high: float) -> None:
    for index, value in zip(range(1, 5), (low, high, low, high), strict=True):
        shape = list(fq.input_value(index).get_node().get_output_shape(0))
        constant = ops.constant(np.full(tuple(shape), value, np.float32))
        fq.input(index).replace_source_output(constant.output(0))


def set_activation_ranges(
    ops: Any, model: Any, ranges: dict[str, ActRange], lstm_layers: int, int8_lstm_layers: int
) -> list[str]:
    """Write the QAT ranges into ``model``'s FakeQuantize ops; the names set, in order."""
    every_lstm = [op for op in model.get_ordered_ops() if op.get_type_name() == "LSTMSequence"]
    lstms = every_lstm[:int8_lstm_layers]
    hidden = {_name(upstream_fq(op.input_value(1))) for op in lstms} - {None}
    activations = [
        op
        for op in model.get_ordered_ops()
        if op.get_type_name() == "FakeQuantize" and op.get_friendly_name() not in hidden
        and op.input_value(0).get_node().get_type_name() != "Constant"
    ]  # fmt: skip
    names = point_names(lstm_layers, int8_lstm_layers)
    if len(activations) != len(names) or len(every_lstm) != lstm_layers:
        raise ConversionError(
            f"openvino-int8 (QAT): NNCF quantised {len(activations)} activations of a graph "
            f"with {len(every_lstm)} LSTMs; the QAT checkpoint simulates {len(names)} and "
            f"{lstm_layers}"
        )
    for fq, name in zip(activations, names, strict=True):
        _set_range(ops, fq, ranges[name].low, ranges[name].high)
    # Each LSTM's input quantiser (LayerNorm output, then the previous LSTM's output) must
    # be the one the simulation used; its hidden state gets the same range.
    for k, lstm in enumerate(lstms):
        x_fq = upstream_fq(lstm.input_value(0))
        expected = activations[names.index("lstm_in" if k == 0 else f"lstm{k - 1}")]
        if x_fq is None or x_fq.get_friendly_name() != expected.get_friendly_name():
            raise ConversionError(
                f"openvino-int8 (QAT): LSTM {k}'s input is not quantised where QAT simulated it"
            )
        h_fq = upstream_fq(lstm.input_value(1))
        if h_fq is not None:
            r = ranges["lstm_in" if k == 0 else f"lstm{k - 1}"]
            _set_range(ops, h_fq, r.low, r.high)
    return names


def _float_weights(model: Any) -> dict[tuple[str, int], np.ndarray]:
    out = {}
    for op in model.get_ordered_ops():
        for index in WEIGHT_INPUTS.get(op.get_type_name(), ()):
            node = op.input_value(index).get_node()
            if node.get_type_name() == "Constant":
                out[(op.get_friendly_name(), index)] = node.get_data().astype(np.float32)
    return out


def _replace_weights(ops: Any, op: Any, index: int, values: np.ndarray, scale: np.ndarray) -> None:
    """Swap the INT8 constant and the scale of ``op``'s dequantised weight input ``index``."""
    multiply = op.input_value(index).get_node()
    convert = multiply.input_value(0).get_node()
    if multiply.get_type_name() != "Multiply" or convert.get_type_name() != "Convert":
        raise ConversionError(
            f"openvino-int8 (QAT): {op.get_friendly_name()} input {index} is not an INT8 "
            f"weight (found {multiply.get_type_name()})"
        )
    old_scale = multiply.input_value(1).get_node().get_data()
    quantised = np.clip(np.round(values / scale), -127, 127).astype(np.int8)
    convert.input(0).replace_source_output(ops.constant(quantised).output(0))
    multiply.input(1).replace_source_output(
        ops.constant(np.broadcast_to(scale, old_scale.shape).astype(np.float32).copy()).output(0)
    )


def set_weights(
    ops: Any, model: Any, float_model: Any, first_conv_bits: int, fp32_ops: set[str]
) -> None:
    """Quantise every Convolution/MatMul/LSTMSequence weight of ``model`` as QAT simulated
    (``fp32_ops``: friendly names NNCF left in floating point)."""
    weights = _float_weights(float_model)
    first = True
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind not in WEIGHT_INPUTS or op.get_friendly_name() in fp32_ops:
            continue
        found = [weights.get((op.get_friendly_name(), i)) for i in WEIGHT_INPUTS[kind]]
        if any(w is None for w in found):
            raise ConversionError(
                f"openvino-int8 (QAT): no float weights for {kind} {op.get_friendly_name()}"
            )
        if kind == "LSTMSequence":
            scale = np.float32(max(np.abs(w).max() for w in found) / 127.0)
            for index, w in zip(WEIGHT_INPUTS[kind], found, strict=True):
                _replace_weights(ops, op, index, w, np.full((1, w.shape[1], 1), scale))
            continue
        qmax = weight_qmax(first_conv_bits if first and kind == "Convolution" else 8)
        first = first and kind != "Convolution"
        w = found[0]
        amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1).clip(1e-12)
        _replace_weights(ops, op, 1, w, (amax / qmax).reshape((-1,) + (1,) * (w.ndim - 1)))


def qat_int8_model(
    float_model: Any, entry: dict[str, Any], lstm_layers: int, features: list[np.ndarray]
) -> Any:
    """The INT8 ov.Model of a QAT student: ``float_model`` (its FP32 IR), the checkpoint's
    ``quantization`` ``entry``, ``features``: a few (T, F) sequences for NNCF's graph pass."""
    from edge_slr.converters.openvino_int8 import lstm_names

    nncf = require("nncf", "INT8 quantisation for OpenVINO")
    ops = require("openvino.opset13", "OpenVINO conversion")
    ranges = ranges_from_entry(entry)
    int8_layers = int(entry["options"]["int8_lstm_layers"])
    fp32_lstms = lstm_names(float_model)[int8_layers:]
    dataset = nncf.Dataset([f[None].astype(np.float32) for f in features[:CALIBRATION_SEQUENCES]])
    model = nncf.quantize(
        float_model.clone(),
        dataset,
        preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=min(len(features), CALIBRATION_SEQUENCES),
        ignored_scope=nncf.IgnoredScope(names=fp32_lstms) if fp32_lstms else None,
        advanced_parameters=nncf.AdvancedQuantizationParameters(disable_bias_correction=True),
    )
    set_activation_ranges(ops, model, ranges, lstm_layers, int8_layers)
    set_weights(ops, model, float_model, int(entry["options"]["first_conv_bits"]), set(fp32_lstms))
    model.validate_nodes_and_infer_types()
    return model


def checkpoint_quantization(path: Path) -> dict[str, Any] | None:
    """The ``quantization`` entry of a student checkpoint (None for a plain one)."""
    from edge_slr.training.checkpoint import load_checkpoint

    return load_checkpoint(path).quantization


def check_target(spec: TargetSpec, checkpoint: Path) -> None:
    """InputError for a plain student given to the QAT target, or a QAT student given to an
    INT8 target that quantises post-training (it would ignore the trained ranges). FP32
    targets take either: a QAT checkpoint holds ordinary float weights."""
    qat_target = spec.exporters.get("student", "").startswith(f"{__name__}:")
    if not (qat_target or spec.int8):
        return
    entry = checkpoint_quantization(checkpoint)
    if qat_target and entry is None:
        raise InputError(
            f"{spec.name} needs a quantization-aware checkpoint; {checkpoint} is a plain student: "
            f"fine-tune it with `edge-slr train recognizer --qat --init {checkpoint}`"
        )
    if not qat_target and entry is not None:
        raise InputError(
            f"{checkpoint} is a quantization-aware checkpoint ({entry.get('scheme')}); "
            f"{spec.name} quantises post-training and would ignore its ranges: use --target "
            "openvino-int8-qat (or convert the plain student it was fine-tuned from)"
        )


def export(job: Job) -> Artifact:
    """The QAT student as OpenVINO IR INT8 (LSTM layers below ``int8_lstm_layers`` INT8)."""
    from dataclasses import replace

    from edge_slr.converters.openvino_int8 import write_artifact
    from edge_slr.converters.openvino_ir import student_to_ov
    from edge_slr.converters.source import StudentSource

    nncf = require("nncf", "INT8 quantisation for OpenVINO")
    nncf.set_log_level(logging.ERROR)
    source = StudentSource.of(job)
    entry = checkpoint_quantization(source.checkpoint)
    if entry is None or entry.get("scheme") != SCHEME:
        raise InputError(f"{source.checkpoint} holds no {SCHEME} quantization entry")
    assert job.calibration is not None  # the target requires calibration data
    features = [s.features for s in job.calibration.sequences]
    lstm_layers = int(source.dims["lstm_layers"])
    model = qat_int8_model(student_to_ov(job), entry, lstm_layers, features)
    artifact = write_artifact(job, model, "qat")
    int8_layers = int(entry["options"]["int8_lstm_layers"])
    artifact.precision = replace(
        artifact.precision,
        notes=f"QAT ({SCHEME} v{entry['version']}): INT8 LSTM layers "
        f"{list(range(int8_layers))} of {lstm_layers} (oneDNN INT8 RNN), the rest FP32; "
        "activation ranges and weights from the fine-tune",
    )
    artifact.details |= {
        "lstm_policy": "qat",
        "calibration_method": "quantization-aware training (NNCF graph layout only)",
        "quantization": {
            "scheme": entry["scheme"],
            "version": entry["version"],
            "options": entry["options"],
            "int8_lstm_layers": list(range(int8_layers)),
            "fp32_lstm_layers": list(range(int8_layers, lstm_layers)),
        },
    }
    return artifact
