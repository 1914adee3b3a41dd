"""The student rebuilt in Keras with the PyTorch weights copied in (the TFLite path).

Exporters from PyTorch to TFLite fix the sequence length (onnx2tf, litert-torch unrolls the LSTM),
so the student is rebuilt layer by layer instead, which keeps T dynamic:

- Conv1d ``[out, in, k]`` -> Conv1D ``[k, in, out]``, with the eval-mode BatchNorm folded into
  the convolution (``w * gamma / sqrt(var + eps)``, ``(b - mean) * gamma / sqrt(var + eps) + beta``);
  "valid" padding as in PyTorch, "same" is symmetric for odd kernels in both;
- MaxPool1d(2, 2) -> MaxPool1D(2, 2) (both floor);
- LayerNorm (eps 1e-5) -> LayerNormalization, Linear -> Dense;
- LSTM: kernel = W_ih^T, recurrent kernel = W_hh^T, bias = b_ih + b_hh, same gate order
  (i, f, g/c, o); bidirectional layers -> Bidirectional(merge_mode="concat") (forward first);
- classifier Linear -> Dense; optional log_softmax.

The input is ``(1, None, F)``: batch fixed to 1, frames dynamic (LiteRT resizes the input).
``keras`` is either Keras 3 (LSTMs become WHILE loops in TFLite) or tf-keras (its LSTMs
convert to fused UNIDIRECTIONAL_SEQUENCE_LSTM ops, which full-integer quantisation needs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

BN_EPS = 1e-5
LN_EPS = 1e-5
# indices of (Conv1d, BatchNorm1d) in the student's nn.Sequential; pools follow blocks 1 and 2
CONV_BN = ((0, 1), (3, 4), (7, 8), (10, 11))


def numpy_state(state_dict: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in state_dict.items()}


def folded_conv(state: dict[str, np.ndarray], conv: int, bn: int) -> tuple[np.ndarray, np.ndarray]:
    """Conv1d weights with the BatchNorm folded in, in Keras layout ``[k, in, out]``."""
    weight, bias = state[f"conv.{conv}.weight"], state[f"conv.{conv}.bias"]
    gamma, beta = state[f"conv.{bn}.weight"], state[f"conv.{bn}.bias"]
    mean, var = state[f"conv.{bn}.running_mean"], state[f"conv.{bn}.running_var"]
    scale = gamma / np.sqrt(var + BN_EPS)
    kernel = (weight * scale[:, None, None]).transpose(2, 1, 0)
    return kernel.astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)


def lstm_weights(state: dict[str, np.ndarray], layer: int) -> list[np.ndarray]:
    """Bidirectional LSTM weights for Keras: forward then backward (kernel, recurrent, bias)."""
    weights = []
    for suffix in ("", "_reverse"):
        w_ih = state[f"lstm.weight_ih_l{layer}{suffix}"]
        w_hh = state[f"lstm.weight_hh_l{layer}{suffix}"]
        bias = state[f"lstm.bias_ih_l{layer}{suffix}"] + state[f"lstm.bias_hh_l{layer}{suffix}"]
        weights += [w_ih.T.copy(), w_hh.T.copy(), bias]
    return weights


def build_keras_student(
    keras: Any, tf: Any, dims: Any, state_dict: dict[str, Any], *, log_probs: bool = False
) -> Any:
    """A Keras model computing the student's export forward (features -> logits/log-probs).

    ``dims`` is the checkpoint's StudentDims; ``state_dict`` its PyTorch weights.
    """
    state = numpy_state(state_dict)
    layers = keras.layers
    padding = "same" if dims.padding == "same" else "valid"
    inputs = keras.Input(shape=(None, dims.input_dim), batch_size=1, name="features")
    x = inputs
    for block, (conv, bn) in enumerate(CONV_BN):
        kernel, bias = folded_conv(state, conv, bn)
        layer = layers.Conv1D(
            kernel.shape[2],
            dims.kernel_size,
            padding=padding,
            activation="relu",
            name=f"conv{block + 1}",
        )
        x = layer(x)
        layer.set_weights([kernel, bias])
        if block in (1, 3):
            x = layers.MaxPool1D(2, 2, name=f"pool{block // 2 + 1}")(x)
    if dims.pre_lstm == "layernorm":
        norm = layers.LayerNormalization(epsilon=LN_EPS, name="pre_lstm")
        x = norm(x)
        norm.set_weights([state["pre_lstm.weight"], state["pre_lstm.bias"]])
    elif dims.pre_lstm == "linear":
        dense = layers.Dense(dims.conv_channels[-1], name="pre_lstm")
        x = dense(x)
        dense.set_weights([state["pre_lstm.weight"].T.copy(), state["pre_lstm.bias"]])
    for layer_index in range(dims.lstm_layers):
        lstm = layers.Bidirectional(
            layers.LSTM(dims.lstm_hidden, return_sequences=True),
            merge_mode="concat",
            name=f"bilstm{layer_index + 1}",
        )
        x = lstm(x)
        lstm.set_weights(lstm_weights(state, layer_index))
    classifier = layers.Dense(dims.num_classes, name="classifier")
    x = classifier(x)
    classifier.set_weights([state["classifier.weight"].T.copy(), state["classifier.bias"]])
    if log_probs:
        x = layers.Activation(tf.nn.log_softmax, name="log_softmax")(x)
    return keras.Model(inputs, x, name="student")
