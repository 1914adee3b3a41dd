"""Analytic FLOPs of the student, from the dims its sidecar records (``source.dims``).

Counted: every multiply-accumulate of the convolutions, the pre-LSTM projection (when
``pre_lstm == "linear"``), the BiLSTM gates (input and recurrent matrices, both directions, every
layer) and the classifier, at 2 FLOPs per MAC. Not counted (a few % at most): biases, batch norm
(folded into the convolutions by the converters), ReLU, max-pooling, LayerNorm and the LSTM's
gate nonlinearities and cell updates. The exported graph has no auxiliary head, so it is not
counted either. Sizes follow the model exactly: valid convolutions lose ``kernel - 1`` frames
each, pooling halves (floor).
"""

from __future__ import annotations

from typing import Any

from edge_slr.errors import InputError


def student_flops(dims: dict[str, Any], frames: int) -> int:
    """FLOPs of one forward pass over ``frames`` input frames (batch 1)."""
    try:
        channels = [int(c) for c in dims["conv_channels"]]
        kernel = int(dims["kernel_size"])
        c_in = int(dims["input_dim"])
        hidden, layers = int(dims["lstm_hidden"]), int(dims["lstm_layers"])
        classes = int(dims["num_classes"])
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"student dims lack {err} (got keys {sorted(dims)})") from None
    same = dims.get("padding", "valid") == "same"
    length, macs = int(frames), 0
    for i, c_out in enumerate(channels):
        if not same:
            length -= kernel - 1
        if length < 1:
            raise InputError(f"{frames} frames are fewer than the model's receptive field")
        macs += length * kernel * c_in * c_out
        c_in = c_out
        if i % 2 == 1:  # a max-pool after every second convolution
            length //= 2
    if dims.get("pre_lstm") == "linear":
        macs += length * c_in * c_in
    for layer in range(layers):
        size_in = c_in if layer == 0 else 2 * hidden
        macs += 2 * length * 4 * hidden * (size_in + hidden)  # two directions
    macs += length * 2 * hidden * classes
    return 2 * macs


def flops_per_frame(dims: dict[str, Any] | None, frames: int) -> float | None:
    """FLOPs per input frame at ``frames`` frames; None when the sidecar has no dims."""
    if not dims:
        return None
    return student_flops(dims, frames) / frames
