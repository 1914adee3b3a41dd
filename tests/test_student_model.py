"""The student model: output lengths, too-short input, the shared classifier, padding, export."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edge_slr.errors import InputError  # noqa: E402
from edge_slr.training.models import StudentDims, build_student  # noqa: E402

SMALL = dict(input_dim=12, conv_channels=(8, 8, 16, 16), lstm_hidden=8, lstm_layers=1)


def small(**kwargs) -> StudentDims:
    return StudentDims(num_classes=7, **{**SMALL, **kwargs})


def expected_length(num_frames: int, kernel: int, padding: str) -> int:
    shrink = 0 if padding == "same" else 2 * (kernel - 1)
    return ((num_frames - shrink) // 2 - shrink) // 2


@pytest.mark.parametrize("kernel,padding", [(3, "valid"), (5, "valid"), (9, "valid"), (5, "same")])
def test_output_lengths_follow_the_receptive_field(kernel: int, padding: str) -> None:
    torch.manual_seed(0)
    dims = small(kernel_size=kernel, padding=padding)
    model = build_student(dims).eval()
    assert dims.min_input_length == (6 * kernel - 2 if padding == "valid" else 4)
    frames = list(range(dims.min_input_length, dims.min_input_length + 13)) + [97, 150]
    with torch.no_grad():
        for t in frames:
            out = model(torch.randn(1, t, 12))
            assert out.logits.shape == (1, expected_length(t, kernel, padding), 7)
            assert dims.output_length(t) == expected_length(t, kernel, padding) >= 1
        lengths = torch.tensor(frames[::-1])
        out = model(torch.randn(len(frames), max(frames), 12), lengths)
        assert out.lengths.tolist() == [expected_length(t, kernel, padding) for t in frames[::-1]]
    assert dims.output_length(dims.min_input_length - 1) < 1


def test_too_short_input_names_the_minimum() -> None:
    model = build_student(small()).eval()
    with pytest.raises(InputError, match="at least 28 frames"):
        model(torch.randn(1, 27, 12))
    with pytest.raises(InputError, match="27 frames"):
        model(torch.randn(2, 40, 12), torch.tensor([40, 27]))
    with pytest.raises(InputError, match=r"\(batch, frames, 12\)"):
        model(torch.randn(40, 12))


def test_padded_batch_matches_single_sequences() -> None:
    torch.manual_seed(1)
    model = build_student(small()).eval()
    a, b = torch.randn(1, 61, 12), torch.randn(1, 35, 12)
    batch = torch.zeros(2, 61, 12)
    batch[0], batch[1, :35] = a[0], b[0]
    batch[1, 35:] = 5.0  # padding content must not leak into the valid steps
    with torch.no_grad():
        out = model(batch, torch.tensor([61, 35]))
        single_a, single_b = model(a).logits[0], model(b).logits[0]
    torch.testing.assert_close(out.logits[0], single_a, atol=1e-5, rtol=1e-5)
    n = int(out.lengths[1])
    assert n == single_b.shape[0] == 2
    torch.testing.assert_close(out.logits[1, :n], single_b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.aux_logits[1, :n], model(b).aux_logits[0], atol=1e-5, rtol=1e-5)


def test_auxiliary_head_shares_the_classifier() -> None:
    torch.manual_seed(2)
    model = build_student(small()).train()
    out = model(torch.randn(3, 40, 12), torch.tensor([40, 40, 33]))
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [7]  # one classifier, no second head
    # The auxiliary loss alone trains the classifier and the convolutions, not the LSTM.
    out.aux_logits.sum().backward()
    assert model.classifier.weight.grad.abs().sum() > 0
    assert model.conv[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.lstm.parameters())
    # Changing the classifier changes both heads.
    model.eval()
    x = torch.randn(1, 40, 12)
    with torch.no_grad():
        before = model(x)
        model.classifier.bias += 1.0
        after = model(x)
    torch.testing.assert_close(after.logits, before.logits + 1.0)
    torch.testing.assert_close(after.aux_logits, before.aux_logits + 1.0)


def test_aux_head_needs_matching_sizes() -> None:
    with pytest.raises(InputError, match="2 \\* lstm_hidden"):
        StudentDims(num_classes=5, conv_channels=(8, 8, 16, 16), lstm_hidden=16)
    StudentDims(num_classes=5, conv_channels=(8, 8, 16, 16), lstm_hidden=16, aux_head=False)


@pytest.mark.parametrize(
    "pre_lstm,signed", [("none", False), ("layernorm", True), ("linear", True)]
)
def test_pre_lstm_stage_makes_lstm_input_signed(pre_lstm: str, signed: bool) -> None:
    torch.manual_seed(3)
    model = build_student(small(pre_lstm=pre_lstm, dropout=0.0)).eval()
    seen = []
    model.lstm.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    with torch.no_grad():
        model(torch.randn(1, 80, 12))
    assert bool((seen[0] < 0).any()) == signed


def test_dims_round_trip_and_legacy_checkpoints() -> None:
    dims = StudentDims.paper(100, kernel_size=7)
    assert StudentDims.from_dict(dims.to_dict()) == dims
    legacy = dims.to_dict()
    del legacy["pre_lstm"]
    assert StudentDims.from_dict(legacy).pre_lstm == "none"
    with pytest.raises(InputError, match="unknown student dims"):
        StudentDims.from_dict({**dims.to_dict(), "heads": 4})
    # the paper's shape is the size docs/engines.md measured (about 5.7-6.5 M parameters)
    assert 5.5e6 < build_student(StudentDims.paper(1296, pre_lstm="none")).num_parameters() < 7e6


@pytest.mark.filterwarnings(
    "ignore::UserWarning", "ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning"
)
def test_onnx_export_keeps_time_dynamic(tmp_path) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(4)
    model = build_student(small())
    wrapper = model.for_export()
    path = tmp_path / "student.onnx"
    torch.onnx.export(
        wrapper,
        (torch.randn(1, 64, 12),),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["features"],
        output_names=["log_probs"],
        dynamic_axes={"features": {0: "batch", 1: "frames"}, "log_probs": {0: "batch", 1: "steps"}},
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wrapper.eval()
    for t in (28, 50, 203):
        x = torch.randn(1, t, 12)
        got = session.run(None, {"features": x.numpy()})[0]
        with torch.no_grad():
            want = wrapper(x).numpy()
        assert got.shape == (1, expected_length(t, 5, "valid"), 7)
        np.testing.assert_allclose(got, want, atol=1e-4)
