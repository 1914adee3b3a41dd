"""Quantization-aware fine-tuning of the student, LSTMs included, for OpenVINO's INT8 CPU kernels.

Post-training INT8 LSTMs lose about half the glosses on OpenVINO. Measured with OpenVINO 2026.4
(``benchmarks/results/qat_int8.md``), its CPU plugin runs a quantised LSTMSequence through
oneDNN's INT8 RNN, whose arithmetic differs from what NNCF's FakeQuantize graph says:

- one u8 scale and shift, the LSTM input's, quantises the input *and* the hidden state at
  every step (NNCF gives the initial state its own range, so a zero state is read as -range);
- one weight scale vector, the input weights', is applied to the recurrent weights too, and
  per-channel scales do not reproduce the reference: a per-tensor scale shared by both weight
  matrices and both directions does (max |difference| one quantisation step).

The fine-tune therefore simulates exactly that arithmetic (``QatStudent``): fake-quantised
activations at the points NNCF quantises (u8 per tensor: model input, after each ReLU, after
the LayerNorm, after each LSTM layer), per-output-channel symmetric INT8 convolution and
classifier weights (7 bits for the first convolution: NNCF's overflow fix for CPUs without
VNNI), per-tensor INT8 LSTM weights, and an LSTM recurrence whose hidden state is quantised
with its input's range. Activation ranges are calibrated once on the initial model and kept
fixed (the weights learn to live with them); the LSTM input range is a fixed option, since
the hidden state (within +-1) shares it. BatchNorm statistics are frozen.

Verified (tests/test_qat.py): convolutions and the first LSTM layer of the OpenVINO INT8 IR
match this simulation to one quantisation step. A second INT8 LSTM layer (input from the first
one's quantised output) does not: OpenVINO's differs from the same graph computed in floating
point by about 0.08 on average, from its first step on (not the zero point, the direction
order, u8 x s8 overflow nor the hidden state's range; reading the input at twice its scale or
the recurrent weights at the first layer's scale only halves it). So by default only the first
``int8_lstm_layers`` (1) LSTM layers are INT8; later ones run, and are simulated, in FP32 (no
quantiser in front of them either, as NNCF leaves an ignored op's inputs alone).

The checkpoint stays an ordinary student checkpoint (raw weights; every converter reads it)
with a ``quantization`` entry holding the scheme and ranges that
``edge_slr.converters.openvino_qat`` writes into the INT8 IR.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass
from typing import Any

from edge_slr._optional import require
from edge_slr.errors import InputError

logger = logging.getLogger(__name__)

SCHEME = "edge-slr-qat-openvino-cpu"
SCHEME_VERSION = 2  # 2: int8_lstm_layers
U8_LEVELS = 256
# Activation quantisers in graph order; "lstm<k>" quantises LSTM layer k's output.
FEATURE_POINTS = ("input", "block1.conv2", "block1.pool", "block2.conv2", "block2.pool", "lstm_in")
HIDDEN_SCALE = 1.0 / 128.0  # hidden states lie in (-1, 1): u8 with zero point 128 covers them


@dataclass(frozen=True)
class QatOptions:
    """``lstm_input_range``: the first LSTM's input (and its hidden state) is quantised to
    [-r, r); ``calibration_sequences``: training sequences the activation ranges come from;
    ``first_conv_bits``: weight bits of the first convolution (7 avoids the u8 x s8 pair
    overflow of AVX2/AVX-512 kernels without VNNI, as NNCF does); ``int8_lstm_layers``: how many
    LSTM layers, from the first, are INT8 (the rest FP32: see the module docstring)."""

    lstm_input_range: float = 2.0
    calibration_sequences: int = 64
    first_conv_bits: int = 7
    int8_lstm_layers: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.lstm_input_range <= 64.0:
            raise InputError(f"lstm_input_range must be in (0, 64], got {self.lstm_input_range}")
        if self.calibration_sequences < 1:
            raise InputError(
                f"calibration_sequences must be >= 1, got {self.calibration_sequences}"
            )
        if self.first_conv_bits not in (7, 8):
            raise InputError(f"first_conv_bits must be 7 or 8, got {self.first_conv_bits}")
        if self.int8_lstm_layers < 1:
            raise InputError(f"int8_lstm_layers must be >= 1, got {self.int8_lstm_layers}")


@dataclass(frozen=True)
class ActRange:
    """u8 fake quantisation: q = clamp(round(x / scale) + zero_point, 0, 255)."""

    scale: float
    zero_point: int

    def __post_init__(self) -> None:
        if not self.scale > 0.0 or not 0 <= self.zero_point < U8_LEVELS:
            raise InputError(
                f"activation range needs scale > 0 and zero_point in [0, 255], got "
                f"{self.scale}, {self.zero_point}"
            )

    @property
    def low(self) -> float:
        return -self.zero_point * self.scale

    @property
    def high(self) -> float:
        return (U8_LEVELS - 1 - self.zero_point) * self.scale

    @classmethod
    def covering(cls, low: float, high: float) -> ActRange:
        """Unsigned [0, high] for non-negative data, else symmetric around zero point 128."""
        if low >= 0.0:
            return cls(max(high, 1e-6) / (U8_LEVELS - 1), 0)
        return cls(max(abs(low), abs(high), 1e-6) / 128.0, 128)


def point_names(lstm_layers: int, int8_lstm_layers: int) -> tuple[str, ...]:
    """The activation quantisers in graph order: an LSTM layer's output is quantised when an
    INT8 layer reads it, and the last one's for the INT8 classifier."""
    outputs = [k for k in range(lstm_layers) if k + 1 < int8_lstm_layers or k == lstm_layers - 1]
    return FEATURE_POINTS + tuple(f"lstm{k}" for k in outputs)


def quantization_entry(ranges: dict[str, ActRange], options: QatOptions) -> dict[str, Any]:
    """What the checkpoint stores: the scheme, its options and every activation range."""
    return {
        "scheme": SCHEME,
        "version": SCHEME_VERSION,
        "options": asdict(options),
        "activations": {
            k: {"scale": r.scale, "zero_point": r.zero_point} for k, r in ranges.items()
        },
        "weights": {
            "conv": "int8 symmetric per output channel (first convolution: "
            f"{options.first_conv_bits} bits)",
            "classifier": "int8 symmetric per output channel",
            "lstm": f"layers below {options.int8_lstm_layers} int8 symmetric per tensor, "
            "shared by input and recurrent weights and both directions; later layers fp32",
        },
    }


def ranges_from_entry(entry: dict[str, Any]) -> dict[str, ActRange]:
    """Activation ranges of a checkpoint's ``quantization`` entry (InputError if foreign)."""
    if entry.get("scheme") != SCHEME or entry.get("version") != SCHEME_VERSION:
        raise InputError(
            f"quantization entry has scheme {entry.get('scheme')!r} version "
            f"{entry.get('version')!r}; expected {SCHEME!r} version {SCHEME_VERSION}"
        )
    return {
        k: ActRange(float(v["scale"]), int(v["zero_point"]))
        for k, v in entry["activations"].items()
    }


def weight_qmax(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def check_student(dims: Any) -> None:
    if dims.pre_lstm != "layernorm":
        raise InputError(
            f"QAT supports students with pre_lstm 'layernorm' (the default), got {dims.pre_lstm!r}"
        )


@functools.cache
def _modules() -> Any:
    """The torch classes, defined once torch is importable (keeps ``import edge_slr`` light)."""
    torch = require("torch", "quantization-aware training")
    nn = torch.nn

    def act(x: Any, r: ActRange) -> Any:
        return torch.fake_quantize_per_tensor_affine(x, r.scale, r.zero_point, 0, U8_LEVELS - 1)

    def per_channel(w: Any, qmax: int) -> Any:
        # Symmetric per output channel; commutes with the BatchNorm scale OpenVINO folds in.
        scale = w.detach().abs().flatten(1).amax(1).clamp_min(1e-12) / qmax
        zeros = torch.zeros_like(scale, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(w, scale, zeros, 0, -qmax, qmax)

    def per_tensor(weights: list[Any], qmax: int) -> list[Any]:
        scale = max(float(w.detach().abs().max()) for w in weights) / qmax
        return [
            torch.fake_quantize_per_tensor_affine(w, max(scale, 1e-12), 0, -qmax, qmax)
            for w in weights
        ]

    class QatStudent(nn.Module):
        """The student's forward pass with OpenVINO's INT8 CPU arithmetic simulated."""

        def __init__(self, student: Any, ranges: dict[str, ActRange], options: QatOptions) -> None:
            super().__init__()
            check_student(student.dims)
            if options.int8_lstm_layers > student.dims.lstm_layers:
                raise InputError(
                    f"int8_lstm_layers is {options.int8_lstm_layers}; the student has "
                    f"{student.dims.lstm_layers} LSTM layers"
                )
            self.points = point_names(student.dims.lstm_layers, options.int8_lstm_layers)
            missing = set(self.points) - set(ranges)
            if missing:
                raise InputError(f"QAT ranges lack {sorted(missing)}")
            self.student, self.ranges, self.options = student, dict(ranges), options
            self.dims = student.dims

        # The checkpoint holds the plain student's weights: every converter reads it.
        def state_dict(self, *args: Any, **kwargs: Any) -> Any:
            return self.student.state_dict(*args, **kwargs)

        def load_state_dict(self, state: Any, strict: bool = True, assign: bool = False) -> Any:
            return self.student.load_state_dict(state, strict=strict, assign=assign)

        def num_parameters(self) -> int:
            return self.student.num_parameters()

        def quantization(self) -> dict[str, Any]:
            return quantization_entry(self.ranges, self.options)

        def train(self, mode: bool = True) -> QatStudent:
            super().train(mode)
            for module in self.student.modules():  # frozen BatchNorm statistics
                if isinstance(module, nn.BatchNorm1d):
                    module.eval()
            return self

        def _convs(self, x: Any) -> Any:
            r, s = self.ranges, self.student
            layers = list(s.conv)
            points = iter(FEATURE_POINTS[1:5])
            x = act(x, r["input"])
            first = True
            for layer in layers:
                if isinstance(layer, nn.Conv1d):
                    bits = self.options.first_conv_bits if first else 8
                    w = per_channel(layer.weight, weight_qmax(bits))
                    x = nn.functional.conv1d(x, w, layer.bias, padding=layer.padding)
                    first = False
                elif isinstance(layer, nn.ReLU):
                    x = act(torch.relu(x), r[next(points)])
                else:
                    x = layer(x)
            return x

        def forward(self, features: Any, lengths: Any = None, aux: bool = True) -> Any:
            from edge_slr.training.models import StudentOutput

            s = self.student
            s.check_input(features, lengths)
            visual = self._convs(features.transpose(1, 2)).transpose(1, 2)
            x = act(s.dropout(s.pre_lstm(visual)), self.ranges["lstm_in"])
            out_lengths = None if lengths is None else s.output_lengths(lengths)
            x_range: ActRange | None = self.ranges["lstm_in"]
            for k in range(self.dims.lstm_layers):
                int8 = k < self.options.int8_lstm_layers
                x = lstm_layer(s.lstm, k, x, out_lengths, x_range if int8 else None)
                x_range = self.ranges[f"lstm{k}"] if f"lstm{k}" in self.points else None
                if x_range is not None:
                    x = act(x, x_range)
                if k + 1 < self.dims.lstm_layers and self.training:
                    x = nn.functional.dropout(x, s.lstm.dropout)
            logits = nn.functional.linear(
                s.dropout(x), per_channel(s.classifier.weight, 127), s.classifier.bias
            )
            aux_logits = None
            if aux and self.dims.aux_head:
                aux_logits = s.classifier(s.dropout(visual))
            return StudentOutput(logits, aux_logits, out_lengths)

    def lstm_layer(lstm: Any, k: int, x: Any, lengths: Any, x_range: ActRange | None) -> Any:
        """One bidirectional layer as oneDNN's INT8 LSTM computes it: input and hidden state
        on the input's u8 grid ``x_range``, per-tensor INT8 weights (torch gate order i, f, g,
        o); in floating point when ``x_range`` is None."""
        names = [f"weight_ih_l{k}", f"weight_hh_l{k}"]
        weights = [getattr(lstm, n) for n in names] + [getattr(lstm, n + "_reverse") for n in names]
        w_f, r_f, w_b, r_b = weights if x_range is None else per_tensor(weights, 127)
        bias_f = getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")
        bias_b = getattr(lstm, f"bias_ih_l{k}_reverse") + getattr(lstm, f"bias_hh_l{k}_reverse")
        forward = _recur(x, w_f, r_f, bias_f, x_range)
        backward = _reverse(_recur(_reverse(x, lengths), w_b, r_b, bias_b, x_range), lengths)
        out = torch.cat([forward, backward], dim=-1)
        if lengths is not None:  # padded steps are zero, as pad_packed_sequence leaves them
            mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
            out = out * mask[..., None]
        return out

    def _recur(x: Any, w: Any, r: Any, bias: Any, x_range: ActRange | None) -> Any:
        gates_x = x @ w.t() + bias  # (B, T, 4H), all steps at once
        hidden = r.shape[1]
        h = x.new_zeros(x.shape[0], hidden)
        c = x.new_zeros(x.shape[0], hidden)
        steps = []
        for t in range(x.shape[1]):
            i, f, g, o = (gates_x[:, t] + h @ r.t()).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            h = h if x_range is None else act(h, x_range)
            steps.append(h)
        return torch.stack(steps, dim=1)

    def _reverse(x: Any, lengths: Any) -> Any:
        """Reverse each sequence within its own length (padding stays at the end)."""
        if lengths is None:
            return x.flip(1)
        steps = torch.arange(x.shape[1], device=x.device)[None, :]
        index = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
        return x.gather(1, index[..., None].expand_as(x))

    return QatStudent


def build_qat_student(student: Any, ranges: dict[str, ActRange], options: QatOptions) -> Any:
    return _modules()(student, ranges, options)


def calibrate(student: Any, sequences: list[Any], options: QatOptions) -> dict[str, ActRange]:
    """Activation ranges from the float student on ``sequences`` ((T, F) arrays): the mean of
    per-sequence minima and maxima at each point (outliers clip, as NNCF's default)."""
    torch = require("torch", "quantization-aware training")
    check_student(student.dims)
    lows: dict[str, list[float]] = {}
    highs: dict[str, list[float]] = {}
    relus = [m for m in student.conv if isinstance(m, torch.nn.ReLU)]
    hooks = [
        relu.register_forward_hook(functools.partial(_record, lows, highs, name))
        for relu, name in zip(relus, FEATURE_POINTS[1:5], strict=True)
    ]
    student.eval()
    try:
        with torch.no_grad():
            for seq in sequences:
                x = torch.as_tensor(seq, dtype=torch.float32)[None]
                _record(lows, highs, "input", None, None, x)
                student(x, None, aux=False)
    finally:
        for hook in hooks:
            hook.remove()
    ranges = {
        name: ActRange.covering(
            sum(lows[name]) / len(lows[name]), sum(highs[name]) / len(highs[name])
        )
        for name in FEATURE_POINTS[:5]
    }
    ranges["lstm_in"] = ActRange(options.lstm_input_range / 128.0, 128)
    for k in range(student.dims.lstm_layers):
        ranges[f"lstm{k}"] = ActRange(HIDDEN_SCALE, 128)
    return ranges


def _record(lows: dict, highs: dict, name: str, _module: Any, _inputs: Any, output: Any) -> None:
    lows.setdefault(name, []).append(float(output.min()))
    highs.setdefault(name, []).append(float(output.max()))
