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

Bias correction is off: the biases stay those the fine-tune learned. Not registered in the
target table yet: LSTM layers after the first do not match the simulation (edge_slr.training.qat).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from edge_slr._optional import require
from edge_slr.converters.verify import ConversionError
from edge_slr.training.qat import ActRange, point_names, ranges_from_entry, weight_qmax

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
    ops: Any, model: Any, ranges: dict[str, ActRange], lstm_layers: int
) -> list[str]:
    """Write the QAT ranges into ``model``'s FakeQuantize ops; the names set, in order."""
    lstms = [op for op in model.get_ordered_ops() if op.get_type_name() == "LSTMSequence"]
    hidden = {_name(upstream_fq(op.input_value(1))) for op in lstms} - {None}
    activations = [
        op
        for op in model.get_ordered_ops()
        if op.get_type_name() == "FakeQuantize" and op.get_friendly_name() not in hidden
        and op.input_value(0).get_node().get_type_name() != "Constant"
    ]  # fmt: skip
    names = point_names(lstm_layers)
    if len(activations) != len(names) or len(lstms) != lstm_layers:
        raise ConversionError(
            f"openvino-int8 (QAT): NNCF quantised {len(activations)} activations and "
            f"{len(lstms)} LSTMs; the QAT checkpoint simulates {len(names)} and {lstm_layers}"
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


def set_weights(ops: Any, model: Any, float_model: Any, first_conv_bits: int) -> None:
    """Quantise every Convolution/MatMul/LSTMSequence weight of ``model`` as QAT simulated."""
    weights = _float_weights(float_model)
    first = True
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind not in WEIGHT_INPUTS:
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
    nncf = require("nncf", "INT8 quantisation for OpenVINO")
    ops = require("openvino.opset13", "OpenVINO conversion")
    ranges = ranges_from_entry(entry)
    dataset = nncf.Dataset([f[None].astype(np.float32) for f in features[:CALIBRATION_SEQUENCES]])
    model = nncf.quantize(
        float_model.clone(),
        dataset,
        preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=min(len(features), CALIBRATION_SEQUENCES),
        advanced_parameters=nncf.AdvancedQuantizationParameters(disable_bias_correction=True),
    )
    set_activation_ranges(ops, model, ranges, lstm_layers)
    set_weights(ops, model, float_model, int(entry["options"]["first_conv_bits"]))
    model.validate_nodes_and_infer_types()
    return model
