"""Quantization-aware training: the simulated INT8 arithmetic, its checkpoint entry, and the
OpenVINO INT8 LSTM it has to reproduce (edge_slr.training.qat, edge_slr.converters.openvino_qat)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_slr.errors import InputError
from edge_slr.training.qat import ActRange, QatOptions, ranges_from_entry


def test_options_and_ranges_reject_bad_values() -> None:
    with pytest.raises(InputError, match="lstm_input_range"):
        QatOptions(lstm_input_range=0.0)
    with pytest.raises(InputError, match="first_conv_bits"):
        QatOptions(first_conv_bits=4)
    with pytest.raises(InputError, match="zero_point"):
        ActRange(0.1, 300)
    with pytest.raises(InputError, match="scheme"):
        ranges_from_entry({"scheme": "other", "version": 1, "activations": {}})


def test_act_range_covers_signed_and_unsigned_data() -> None:
    unsigned = ActRange.covering(0.0, 5.1)
    assert (unsigned.zero_point, unsigned.low) == (0, 0.0)
    assert unsigned.high == pytest.approx(5.1)
    signed = ActRange.covering(-3.0, 2.0)
    assert signed.zero_point == 128  # zero is exact: a zero hidden state stays zero
    assert signed.low == pytest.approx(-3.0)


def _student(tiny_student):
    from edge_slr.converters.calibration import load_sequences
    from edge_slr.training.checkpoint import load_student

    model, checkpoint = load_student(tiny_student.checkpoint)
    sequences = load_sequences(
        tiny_student.data, "train", checkpoint.feature_preset(), limit=16,
        min_frames=checkpoint.dims.min_input_length,
    )  # fmt: skip
    return model, checkpoint, [s.features for s in sequences.sequences]


def test_qat_student_trains_and_its_checkpoint_loads_as_a_student(tiny_student, tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from edge_slr.training.checkpoint import load_checkpoint, load_student, save_checkpoint
    from edge_slr.training.qat import build_qat_student, calibrate

    model, checkpoint, features = _student(tiny_student)
    options = QatOptions(lstm_input_range=2.0)
    ranges = calibrate(model, features, options)
    qat = build_qat_student(model, ranges, options).train()
    batch = torch.as_tensor(np.stack([features[0][:40], features[1][:40]]))
    out = qat(batch, torch.tensor([40, 33]))
    assert out.logits.shape[:2] == (2, model.dims.output_length(40))
    out.logits.sum().backward()  # straight-through: every weight gets a gradient
    assert all(p.grad is not None for p in qat.student.lstm.parameters())

    path = save_checkpoint(
        tmp_path / "qat.pt", qat, vocabulary=checkpoint.vocab(),
        preset=checkpoint.feature_preset(), config=checkpoint.config,
    )  # fmt: skip
    again = load_checkpoint(path)
    assert ranges_from_entry(again.quantization) == ranges
    load_student(path)  # the plain student's weights: every converter reads it


def test_openvino_int8_first_lstm_matches_the_simulation(tiny_student, tmp_path) -> None:
    """The verified part of the scheme: OpenVINO runs the QAT graph's first LSTM layer in INT8
    (oneDNN's INT8 RNN) and agrees with the simulation to one quantisation step."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("nncf")
    ov = pytest.importorskip("openvino")
    from edge_slr.converters.onnx_export import export_student_onnx
    from edge_slr.converters.openvino_qat import qat_int8_model, upstream_fq
    from edge_slr.training.qat import build_qat_student, calibrate

    model, _, features = _student(tiny_student)
    options = QatOptions(lstm_input_range=2.0, int8_lstm_layers=2)  # a quantised 2nd input
    ranges = calibrate(model, features, options)
    qat = build_qat_student(model, ranges, options).eval()
    path = export_student_onnx(
        model.for_export(log_probs=False), tmp_path / "s.onnx", model.dims.input_dim, "logits"
    )
    float_model = ov.convert_model(str(path))
    int8 = qat_int8_model(float_model, qat.quantization(), model.dims.lstm_layers, features)
    lstms = [op for op in int8.get_ordered_ops() if op.get_type_name() == "LSTMSequence"]
    probe = int8.clone()
    second_input = [op for op in probe.get_ordered_ops() if op.get_type_name() == "LSTMSequence"][1]
    probe.add_outputs([upstream_fq(second_input.input_value(0)).output(0)])
    compiled = ov.Core().compile_model(probe, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    executed = [
        op.get_rt_info()["runtimePrecision"].astype(str)
        for op in compiled.get_runtime_model().get_ordered_ops()
        if op.get_rt_info()["layerType"].astype(str) == "RNNSeq"
    ]
    assert len(lstms) == model.dims.lstm_layers and executed and set(executed) == {"u8"}

    recorded = []
    real = torch.fake_quantize_per_tensor_affine

    def record(x, scale, zero_point, low, high):
        y = real(x, scale, zero_point, low, high)
        if low == 0 and x.dim() == 3:  # activation quantisers, not the per-step ones
            recorded.append(y.detach().numpy()[0])
        return y

    x = features[2]
    torch.fake_quantize_per_tensor_affine = record
    try:
        with torch.no_grad():
            qat(torch.as_tensor(x[None]), None, aux=False)
    finally:
        torch.fake_quantize_per_tensor_affine = real
    first_lstm_out = recorded[6]  # input, 4 conv points, lstm_in, then LSTM layer 0's output
    result = compiled.create_infer_request().infer({0: x[None]})
    engine = np.array(result[compiled.outputs[1]])[0]  # (directions, steps, hidden)
    engine = np.concatenate([engine[0], engine[1]], axis=-1)
    step = ranges["lstm_in"].scale
    diff = np.abs(engine - first_lstm_out)
    # Rounding ties can differ by one step, and a step carries through the recurrence for a
    # few frames: nearly every value must agree within one step.
    assert np.mean(diff <= step + 1e-6) >= 0.98
    assert diff.mean() <= 0.2 * step, f"mean {diff.mean() / step:.3f} steps apart"


def test_later_lstm_layers_stay_float_by_default(tiny_student) -> None:
    torch = pytest.importorskip("torch")
    from edge_slr.training.qat import build_qat_student, calibrate, point_names

    assert point_names(2, 1)[-1:] == ("lstm1",) and "lstm0" in point_names(2, 2)
    with pytest.raises(InputError, match="int8_lstm_layers"):
        QatOptions(int8_lstm_layers=0)
    model, _, features = _student(tiny_student)
    ranges = calibrate(model, features, QatOptions())
    with pytest.raises(InputError, match="int8_lstm_layers is 3"):
        build_qat_student(model, ranges, QatOptions(int8_lstm_layers=3))
    x = torch.as_tensor(features[0][None])
    with torch.no_grad():
        one = build_qat_student(model, ranges, QatOptions()).eval()(x, None, aux=False)
        two = build_qat_student(model, ranges, QatOptions(int8_lstm_layers=2)).eval()
        both = two(x, None, aux=False)
    assert one.logits.shape == both.logits.shape
    assert not torch.equal(one.logits, both.logits)  # the second layer's quantisation is gone


@pytest.mark.slow
def test_cli_qat_fine_tune_converts_to_a_verified_openvino_int8_qat_model(
    tiny_student, tmp_path
) -> None:
    """`train recognizer --qat --init`, then the openvino-int8-qat target, verified on the
    OpenVINO runtime as deployed; plain and QAT checkpoints go to their own targets only."""
    pytest.importorskip("torch")
    pytest.importorskip("nncf")
    pytest.importorskip("openvino")
    from edge_slr.cli.main import main
    from edge_slr.converters import convert
    from edge_slr.runtimes import load_runtime
    from edge_slr.training.checkpoint import load_checkpoint

    out = tmp_path / "qat"
    code = main([
        "train", "recognizer", "--qat", "--init", str(tiny_student.checkpoint), "--no-progress",
        "--set", f"train.out_dir={json.dumps(str(out))}", "--set", "train.epochs=1",
        "--set", f"data.root={json.dumps(str(tiny_student.data))}",
    ])  # fmt: skip
    assert code == 0
    qat = out / "best.pt"
    entry = load_checkpoint(qat).quantization
    assert entry["scheme"].startswith("edge-slr-qat") and entry["options"]["int8_lstm_layers"] == 1

    with pytest.raises(InputError, match="plain student"):
        convert(tiny_student.checkpoint, "openvino-int8-qat", tmp_path / "a", tiny_student.data)
    with pytest.raises(InputError, match="openvino-int8-qat"):
        convert(qat, "openvino-int8", tmp_path / "b", calibration=tiny_student.data)

    result = convert(
        qat, "openvino-int8-qat", tmp_path / "m", calibration=tiny_student.data,
        calibration_size=16, max_wer_drop=100.0, min_agreement=0.0,
    )  # fmt: skip
    assert result.verification.passed and result.sidecar_path.is_file()
    precision = result.description.precision
    assert "QAT" in precision.notes and "INT8 LSTM layers [0]" in precision.notes
    lstms = [r for r in result.description.details["op_precisions"] if "LSTM" in r["op"]]
    assert [r["weights"] for r in lstms] == ["int8", "fp32"]  # the second layer stays FP32
    assert [r["input"] for r in lstms] == ["int8", "fp32"]
    sequence = np.zeros((1, 40, entry_dim(qat)), np.float32)
    with load_runtime(result.model_path) as runtime:  # compiled with the sidecar's settings
        assert np.isfinite(runtime.run(sequence)).all()


def entry_dim(path) -> int:
    from edge_slr.training.checkpoint import load_checkpoint

    return load_checkpoint(path).dims.input_dim


def test_cli_qat_and_init_go_together(tmp_path, capsys) -> None:
    from edge_slr.cli.main import main

    assert main(["train", "recognizer", "--qat"]) == 2
    assert "--qat and --init go together" in capsys.readouterr().err
    assert main(["train", "recognizer", "--init", str(tmp_path / "best.pt")]) == 2
