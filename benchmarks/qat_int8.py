"""OpenVINO INT8 vs FP32 for a student, with the per-layer profile: where the INT8 time goes.

    .venv/bin/python benchmarks/qat_int8.py --checkpoint runs/demo/student/*/best.pt \
        --data runs/demo/data/* [--qat QAT.pt] [--frames 200] [--threads 1]
    .venv/bin/python benchmarks/qat_int8.py --smoke   # tiny data, student and 1-epoch QAT (CI)

Rows (one thread, batch 1, T frames, median of --calls): FP32; NNCF PTQ INT8 with the LSTMs kept
in FP32 (what openvino-int8 ships); PTQ INT8 with the LSTMs quantised too (fast but the decodes
break: the speed an INT8 LSTM buys); with --qat, the QAT checkpoint through
edge_slr.converters.openvino_qat as the openvino-int8-qat target makes it (LSTM layers from the
checkpoint's ``int8_lstm_layers`` on in FP32), and with every LSTM layer INT8 (the speed a
matching second INT8 layer would buy; its decodes are not what the fine-tune simulated). Each
row: gloss agreement with the PyTorch FP32 decodes and WER (test split; --smoke: dev), and
OpenVINO's PERF_COUNT time per layer type (with the executed kernel, e.g. ``ref_any_I8`` for
oneDNN's INT8 RNN). Writes benchmarks/results/qat_int8.{md,json}
(qat_int8_smoke.* for --smoke).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.conftest builds the --smoke inputs
RESULTS = ROOT / "benchmarks" / "results"


def float_ir(model: Any, feature_dim: int) -> Any:
    import openvino as ov

    from edge_slr.converters.onnx_export import export_student_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = export_student_onnx(
            model.for_export(log_probs=False), Path(tmp) / "s.onnx", feature_dim, "logits"
        )
        return ov.convert_model(str(path))


def ptq(model: Any, features: list[np.ndarray], keep_lstm_fp32: bool) -> Any:
    import nncf

    ignored = nncf.IgnoredScope(types=["LSTMSequence"]) if keep_lstm_fp32 else None
    return nncf.quantize(
        model.clone(),
        nncf.Dataset([f[None] for f in features]),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=len(features),
        ignored_scope=ignored,
    )


def compiled(model: Any, threads: int, perf: bool = False) -> Any:
    import openvino as ov

    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads}
    config |= {"NUM_STREAMS": 1, "PERF_COUNT": perf}
    return ov.Core().compile_model(model, "CPU", config)


def latency_ms(model: Any, frames: int, dim: int, threads: int, calls: int) -> float:
    request = compiled(model, threads).create_infer_request()
    x = np.random.default_rng(0).standard_normal((1, frames, dim)).astype(np.float32)
    for _ in range(5):
        request.infer({0: x})
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        request.infer({0: x})
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def profile(model: Any, frames: int, dim: int, threads: int, calls: int = 30) -> dict[str, Any]:
    """Mean microseconds per call by (layer type, kernel), from OpenVINO's perf counters."""
    request = compiled(model, threads, perf=True).create_infer_request()
    x = np.random.default_rng(0).standard_normal((1, frames, dim)).astype(np.float32)
    for _ in range(3):
        request.infer({0: x})
    totals: dict[str, float] = {}
    for _ in range(calls):
        request.infer({0: x})
        for info in request.profiling_info:
            key = f"{info.node_type} [{info.exec_type}]"
            totals[key] = totals.get(key, 0.0) + info.real_time.total_seconds() * 1e6 / calls
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def decodes(run: Any, sequences: Any, labels: list[str]) -> dict[str, tuple[str, ...]]:
    from edge_slr.converters.verify import decode_glosses

    return {s.id: decode_glosses(run(s.features), labels) for s in sequences.sequences}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="tiny data, student and QAT (CI)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--qat", type=Path, default=None, help="a QAT checkpoint (--qat --init)")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--calibration", type=int, default=300)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.out = args.results / ("qat_int8_smoke" if args.smoke else "qat_int8")
    with tempfile.TemporaryDirectory(prefix="qat-int8-") as work:
        if args.smoke:
            smoke_inputs(args, Path(work))
        elif args.checkpoint is None or args.data is None:
            parser.error("--checkpoint and --data are required (or --smoke)")
        measure(args)


def smoke_inputs(args: argparse.Namespace, work: Path) -> None:
    """A tiny dataset and student, and a one-epoch QAT fine-tune of it."""
    from edge_slr.training.qat import QatOptions
    from edge_slr.training.qat_train import qat_config, train_qat
    from tests.conftest import make_tiny_dataset, train_tiny_student

    args.calls, args.calibration = 10, 16
    args.data = work / "data"
    make_tiny_dataset(args.data)
    args.checkpoint = train_tiny_student(args.data, epochs=8)
    out = json.dumps(str(work / "qat"))
    config = qat_config(args.checkpoint, None, ["train.epochs=1", f"train.out_dir={out}"])
    options = QatOptions(calibration_sequences=8)
    args.qat = train_qat(config, args.checkpoint, options).best_checkpoint


def measure(args: argparse.Namespace) -> None:
    import nncf
    import openvino as ov
    import torch

    from edge_slr.converters.calibration import heldout_split, load_sequences
    from edge_slr.converters.verify import gloss_agreement
    from edge_slr.metrics import score
    from edge_slr.training.checkpoint import load_student

    nncf.set_log_level(logging.ERROR)
    torch.set_num_threads(args.threads)
    model, checkpoint = load_student(args.checkpoint)
    labels, dim = list(checkpoint.vocab().glosses), checkpoint.dims.input_dim
    common = dict(min_frames=checkpoint.dims.min_input_length)
    preset = checkpoint.feature_preset()
    calibration = load_sequences(args.data, "train", preset, limit=args.calibration, **common)
    split = heldout_split(args.data) if args.smoke else "test"
    test = load_sequences(args.data, split, preset, limit=0, **common)
    features = [s.features for s in calibration.sequences]
    wrapper = model.for_export(log_probs=False)

    def torch_run(f: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return wrapper(torch.from_numpy(f[None]))[0].numpy()

    reference = decodes(torch_run, test, labels)
    fp32 = float_ir(model, dim)
    rows = {
        "FP32": fp32,
        "PTQ INT8, LSTMs FP32 (shipped)": ptq(fp32, features, keep_lstm_fp32=True),
        "PTQ INT8, LSTMs INT8 (decodes break)": ptq(fp32, features, keep_lstm_fp32=False),
    }
    if args.qat is not None:
        from edge_slr.converters.openvino_qat import qat_int8_model

        qat_model, qat_checkpoint = load_student(args.qat)
        qat_fp32, entry = float_ir(qat_model, dim), qat_checkpoint.quantization
        layers = qat_checkpoint.dims.lstm_layers
        trained = entry["options"]["int8_lstm_layers"]
        for int8_layers in sorted({trained, layers}):
            options = entry["options"] | {"int8_lstm_layers": int8_layers}
            label = "what openvino-int8-qat ships" if int8_layers == trained else "not simulated"
            name = f"QAT INT8, {int8_layers} of {layers} LSTM layers INT8 ({label})"
            rows[name] = qat_int8_model(qat_fp32, entry | {"options": options}, layers, features)
    results = []
    for name, ov_model in rows.items():
        request = compiled(ov_model, args.threads).create_infer_request()

        def run(f: np.ndarray, request: Any = request) -> np.ndarray:
            return np.array(request.infer({0: f[None]})[0])[0]

        hyps = decodes(run, test, labels)
        pairs = [(hyps[k], reference[k]) for k in reference]
        results.append(
            {
                "model": name,
                "latency_ms": latency_ms(ov_model, args.frames, dim, args.threads, args.calls),
                "agreement": gloss_agreement(pairs),
                "test_wer": 100 * score(hyps, test.references, corpus=test.corpus).wer,
                "profile_us": profile(ov_model, args.frames, dim, args.threads),
            }
        )
    write(args, results, ov.get_version())


def write(args: argparse.Namespace, results: list[dict[str, Any]], ov_version: str) -> None:
    import os

    flags = sorted(
        {f for f in Path("/proc/cpuinfo").read_text().split() if f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "fma")}
    ) if Path("/proc/cpuinfo").exists() else []  # fmt: skip
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "flags": flags,
        "load_average": list(os.getloadavg()),
        "openvino": ov_version,
    }
    fp32 = results[0]["latency_ms"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine, "frames": args.frames, "threads": args.threads, "rows": results}
    args.out.with_suffix(".json").write_text(json.dumps(payload, indent=1))
    lines = [
        f"# OpenVINO INT8 vs FP32, T={args.frames}, {args.threads} thread(s)",
        "",
        f"- Machine: {machine}",
        f"- Checkpoint: {args.checkpoint}; QAT: {args.qat}",
        "",
        "| Model | ms | speed-up vs FP32 | agreement | test WER % |",
        "|---|---|---|---|---|",
    ]
    for row in results:
        lines.append(
            f"| {row['model']} | {row['latency_ms']:.3f} | {fp32 / row['latency_ms']:.2f}x | "
            f"{row['agreement']:.3f} | {row['test_wer']:.2f} |"
        )
    for row in results:
        lines += ["", f"## {row['model']}: per layer type (us per call, PERF_COUNT)", ""]
        lines += [f"- {k}: {v:.1f}" for k, v in list(row["profile_us"].items())[:10]]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
