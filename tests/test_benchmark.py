"""`edge-slr benchmark`: real conversions of the tiny student measured on the real engines.

A module fixture converts the tiny trained student (tests/conftest.py) to ONNX FP32, ONNX INT8 and
OpenVINO FP32 in one model directory and benchmarks it once (one fresh process per row, WER on
the tiny dev split); the tests check that report, its table, JSON, plot and --compare, the CLI's
errors, failed rows (truncated model file, WER floor, an engine that cannot load a file) and a
run where torch, TensorFlow, MediaPipe and the converters cannot be imported (a device install).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_slr.benchmark import BenchmarkReport, benchmark_models
from edge_slr.benchmark.flops import student_flops
from edge_slr.benchmark.machine import flops_per_cycle, peak_gflops
from edge_slr.cli.main import main
from edge_slr.errors import FormatError, InputError
from edge_slr.sidecar import read_sidecar

LENGTHS = (32, 64)
SENTENCES = 6
# packages a device install lacks: shadowed by stubs that raise ImportError
BLOCKED = ("torch", "tensorflow", "tf_keras", "nncf", "onnx", "mediapipe", "cv2", "matplotlib")


@pytest.fixture(scope="module")
def model_dir(tiny_student, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    from edge_slr.converters import convert

    out = tmp_path_factory.mktemp("benchmark-models")
    convert(tiny_student.checkpoint, "onnx", out)
    convert(tiny_student.checkpoint, "openvino", out)
    convert(tiny_student.checkpoint, "onnx-int8", out, calibration=tiny_student.data,
            calibration_size=32, min_agreement=0.0, max_wer_drop=100.0)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def report(model_dir: Path, tiny_student) -> BenchmarkReport:
    return benchmark_models(
        [model_dir], lengths=LENGTHS, data_dir=tiny_student.data, split="dev", threads=1,
        max_sentences=SENTENCES, warmup=1, runs=3,
    )  # fmt: skip


def test_one_measured_row_per_model_and_runtime(report: BenchmarkReport, model_dir: Path) -> None:
    assert [(r.format, r.runtime, r.precision) for r in report.rows] == [
        ("onnx", "onnxruntime", "fp32"),
        ("onnx-int8", "onnxruntime", "int8"),
        ("openvino", "openvino", "fp32"),
    ]
    for row in report.rows:
        assert not row.failed, row.reason
        assert [lat.frames for lat in row.latency] == list(LENGTHS)
        assert all(0 < lat.p50_ms <= lat.p90_ms and lat.runs >= 3 for lat in row.latency)
        assert row.latency[0].fps == pytest.approx(32 * 1000 / row.latency[0].p50_ms)
        assert 0.0 <= row.wer < 1.0 and row.wer_detail["sentences"] == SENTENCES
        assert row.wer_detail["decoder"] == "greedy" and row.sentence_ms > 0
        assert 0 < row.load_s < 60 and row.peak_rss_mb > row.rss_before_load_mb > 10
        files = read_sidecar(model_dir / row.model).graph.files()  # .xml + .bin for OpenVINO
        on_disk = sum((model_dir / info.name).stat().st_size for info in files)
        assert row.size_mb == pytest.approx(on_disk / 1e6, abs=1e-3)
        dims = row.student_dims
        assert row.flops_per_frame == student_flops(dims, 64) / 64
        assert 0 < row.peak_fraction < 5  # measured FLOP/s over an assumed peak: a sanity bound
    # FP32 engines decode the same model: the same WER
    fp32 = [r.wer for r in report.rows if r.precision == "fp32"]
    assert fp32[0] == fp32[1]


def test_table_json_and_comparisons(report: BenchmarkReport, tmp_path: Path) -> None:
    table = report.format_table()
    assert report.machine["cpu_model"] in table and "onnx-int8" in table
    assert "p50/p90 ms @64" in table and "Failed rows" not in table
    assert "assumed FP32 peak" in table and "INT8 vs FP32 on onnxruntime" in table
    path = report.to_json(tmp_path / "bench.json")
    data = json.loads(path.read_text())
    assert data["schema"] == "edge-slr-benchmark" and data["schema_version"] == 1
    assert set(data["machine"]) >= {"cpu_model", "cpu_flags", "usable_cpus", "engines",
                                    "load_average", "clock_ghz", "flops_per_cycle"}  # fmt: skip
    assert data["settings"]["lengths"] == list(LENGTHS) and data["settings"]["isolate"]
    (pair,) = data["comparisons"]["int8_vs_fp32"]
    assert (pair["fp32_format"], pair["int8_format"]) == ("onnx", "onnx-int8")
    fps = {r["format"]: r["latency"][1]["fps"] for r in data["rows"]}
    assert pair["by_length"][1]["ratio"] == pytest.approx(fps["onnx-int8"] / fps["onnx"], 1e-2)
    again = BenchmarkReport.load(path)
    assert again.to_dict() == data  # the JSON round-trips
    assert again.format_table() == table


def test_cli_writes_json_markdown_plot_and_compares(
    model_dir: Path, tmp_path: Path, capsys
) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "a.json"
    code = main(["benchmark", str(model_dir), "--runtimes", "onnxruntime", "--lengths", "32",
                 "--runs", "2", "--warmup", "0", "--in-process", "--label", "board-a",
                 "--json", str(out), "--markdown", str(tmp_path / "a.md"),
                 "--plot", str(tmp_path / "a.png")])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and "onnx-int8" in printed and "openvino" not in printed.split("\n\n")[1]
    assert (tmp_path / "a.md").read_text().startswith("# edge-slr benchmark")
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    other = json.loads(out.read_text())
    other["label"] = "board-b"
    (tmp_path / "b.json").write_text(json.dumps(other))
    code = main(["benchmark", "--compare", str(out), str(tmp_path / "b.json"),
                 "--plot", str(tmp_path / "cmp.png"), "--json", str(tmp_path / "cmp.json")])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and "board-a" in printed and "board-b" in printed
    assert printed.count("onnx-int8") >= 2  # one row per machine
    assert len(json.loads((tmp_path / "cmp.json").read_text())["reports"]) == 2
    assert (tmp_path / "cmp.png").stat().st_size > 1000


def test_cli_errors_are_one_clear_line(model_dir: Path, tmp_path: Path, capsys) -> None:
    cases = [
        (["benchmark", str(tmp_path / "absent")], "model directory not found"),
        (["benchmark", str(model_dir), "--runtimes", "tensorrt"], "unknown runtime 'tensorrt'"),
        (["benchmark", str(model_dir), "--floor-wer", "20"], "needs data"),
        (["benchmark"], "at least one MODEL_DIR"),
        (["benchmark", "--compare", str(tmp_path / "none.json")], "does not exist"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"schema": "something-else"}')
    with pytest.raises(FormatError, match="not an edge-slr benchmark result"):
        BenchmarkReport.load(tmp_path / "bad.json")
    with pytest.raises(InputError, match="lengths"):
        benchmark_models([model_dir], lengths=(0,))


def test_failed_rows_have_reasons(model_dir: Path, tiny_student, tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in model_dir.glob("student.onnx*"):
        (broken / path.name).write_bytes(path.read_bytes())
    data = (broken / "student.onnx").read_bytes()
    (broken / "student.onnx").write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "rows.json"
    code = main(["benchmark", str(broken), str(empty), str(model_dir), "--runtimes",
                 "onnxruntime,openvino", "--lengths", "32", "--runs", "2",
                 "--data", str(tiny_student.data), "--split", "dev", "--max-sentences", "3",
                 "--floor-wer", "0", "--json", str(out), "--in-process"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 1
    legend = printed.split("Failed rows:")[1]
    rows = {(Path(r["model_dir"]).name, r["model"], r["runtime"]): r
            for r in json.loads(out.read_text())["rows"]}  # fmt: skip
    for runtime in ("onnxruntime", "openvino"):  # the sidecar's size check catches it
        row = rows[("broken", "student.onnx", runtime)]
        assert row["status"] == "failed" and "truncated" in row["reason"]
    assert rows[("empty", "", "")]["reason"].startswith("no converted student model")
    for (folder, _, _), row in rows.items():
        if folder == model_dir.name and row["wer"] is not None:  # floor 0 %: any error fails
            assert (row["status"] == "failed") == (row["wer"] > 0), row
            if row["wer"] > 0:
                assert "is above the floor 0%" in row["reason"]
    assert all(row["reason"] in legend for row in rows.values() if row["status"] == "failed")


def test_flops_count_and_peak_assumption() -> None:
    dims = {"num_classes": 7, "input_dim": 6, "conv_channels": [4, 4, 8, 8], "kernel_size": 3,
            "padding": "valid", "lstm_hidden": 4, "lstm_layers": 1, "pre_lstm": "layernorm"}  # fmt: skip
    # T=20: conv 18, 16, pool 8, conv 6, 4, pool 2 steps
    macs = 18 * 3 * 6 * 4 + 16 * 3 * 4 * 4 + 6 * 3 * 4 * 8 + 4 * 3 * 8 * 8
    macs += 2 * 2 * 4 * 4 * (8 + 4) + 2 * 8 * 7  # BiLSTM (2 directions) + classifier
    assert student_flops(dims, 20) == 2 * macs
    with pytest.raises(InputError, match="receptive field"):
        student_flops(dims, 8)
    assert flops_per_cycle(("avx", "avx2", "fma", "avx512f"), "Intel Xeon")[0] == 64
    assert flops_per_cycle(("avx", "avx2", "fma", "avx512f"), "AMD EPYC")[0] == 32
    machine = {"clock_ghz": 2.0, "usable_cpus": 4, "flops_per_cycle": 32, "cpu_flags": ["avx2"]}
    assert peak_gflops(machine, None) == 256.0 and peak_gflops(machine, 1) == 64.0
    assert peak_gflops(machine, 1, "int8") == 128.0  # no VNNI: 2x


def _stub_packages(folder: Path) -> dict[str, str]:
    """An environment in which the BLOCKED packages raise ImportError, as on a device."""
    for name in BLOCKED:
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(folder), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def test_runs_without_torch_tensorflow_or_mediapipe(
    model_dir: Path, tiny_student, tmp_path: Path
) -> None:
    env = _stub_packages(tmp_path / "stubs")
    command = [sys.executable, "-m", "edge_slr", "benchmark", str(model_dir), "--lengths", "32",
               "--runs", "2", "--data", str(tiny_student.data), "--split", "dev",
               "--max-sentences", "2", "--json", str(tmp_path / "device.json")]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((tmp_path / "device.json").read_text())
    assert [r["status"] for r in data["rows"]] == ["ok"] * 3
    assert all(r["wer"] is not None for r in data["rows"])
    # --plot needs matplotlib (the train extra): said before anything is measured
    done = subprocess.run(command + ["--plot", str(tmp_path / "x.png")], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "edge-slr[train]" in done.stderr
    assert "[1/" not in done.stderr


def test_flops_agree_with_torch_flop_counter(tiny_student) -> None:
    """torch's FlopCounterMode counts the convolutions and the classifier (not the LSTM, which
    it does not see): the analytic count minus its own LSTM term must equal torch's."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from edge_slr.training.checkpoint import load_student

    model, _ = load_student(tiny_student.checkpoint)
    dims = model.dims.to_dict()
    frames = 150
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, frames, dims["input_dim"]), None, aux=False)
    steps = model.dims.output_length(frames)
    hidden, c4 = dims["lstm_hidden"], dims["conv_channels"][-1]
    lstm = sum(2 * 2 * steps * 4 * hidden * ((c4 if i == 0 else 2 * hidden) + hidden)
               for i in range(dims["lstm_layers"]))  # fmt: skip
    assert student_flops(dims, frames) - lstm == counter.get_total_flops()
