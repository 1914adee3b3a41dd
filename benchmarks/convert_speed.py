"""Converted student: size, accuracy and speed on every engine, measured in one run.

Converts a trained student checkpoint to every target of the converters' table (each conversion
verified as usual), then times batch-1 inference at several lengths (T = 100, 150, 200 frames of
real held-out features) on PyTorch, ONNX Runtime FP32/INT8, OpenVINO FP32/INT8 and LiteRT
FP32/INT8. Engines are timed round-robin (a few calls each, many rounds) so that a busy shared
machine slows all of them alike. When OpenVINO INT8 is less than 2x faster than FP32, the CPU
plugin's per-layer counters (PERF_COUNT) of both are summarised by layer type.

    python benchmarks/convert_speed.py --checkpoint runs/student/best.pt --data DIR
    python benchmarks/convert_speed.py --smoke    # tiny data and model, few repeats (CI)

Results: benchmarks/results/convert_speed.{json,md} (convert_speed_smoke.* for --smoke).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_slr.converters import TARGETS, ConversionError, convert  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
OV_FP32_HINT = {"INFERENCE_PRECISION_HINT": "f32"}


def machine() -> dict[str, Any]:
    name = platform.processor() or "unknown CPU"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8") if f in flags]
    return {"cpu": name, "cores": os.cpu_count(), "isa": isa, "load_at_start": os.getloadavg()}


# -- conversions ---------------------------------------------------------------------------------


# (key, target, options, engine label); the FP32 OpenVINO model also runs in the CPU plugin's
# default precision (bf16 on AVX512_BF16 CPUs), which is faster but not bit-exact.
VARIANTS = (
    ("onnx", "onnx", {}, "onnxruntime fp32"),
    ("onnx-int8", "onnx-int8", {}, "onnxruntime int8"),
    ("openvino", "openvino", {}, "openvino fp32"),
    ("openvino-fp16", "openvino", {"fp16": True}, "openvino fp16 weights"),
    ("openvino-int8", "openvino-int8", {}, "openvino int8"),
    ("tflite", "tflite", {}, "litert fp32"),
    ("tflite-int8", "tflite-int8", {}, "litert int8 (dynamic range)"),
    ("tflite-int8-full", "tflite-int8", {"full_integer": True}, "litert int8 (full integer)"),
)


def convert_all(
    checkpoint: Path, data: Path, out: Path, smoke: bool, max_wer_drop: float, reuse: bool
) -> dict[str, Any]:
    """Every variant; a failed verification is recorded, not fatal. With ``reuse``, a variant
    whose folder already holds a verified model (its sidecar) is read back, not converted again."""
    int8_options = {"max_wer_drop": max_wer_drop}
    if smoke:
        int8_options = {"calibration_size": 64, "max_wer_drop": 5.0, "min_agreement": 0.8}
    previous = _previous_rows() if reuse else {}
    rows: dict[str, Any] = {}
    for key, target, options, _ in VARIANTS:
        if smoke and key == "tflite-int8-full":
            continue  # the tf-keras conversion alone takes minutes
        options = {**options, **(int8_options if TARGETS[target].int8 else {})}
        sidecars = sorted((out / key).glob("*.json")) if reuse else []
        if sidecars:
            rows[key] = from_sidecar(sidecars[0], options, previous.get(key, {}))
            continue
        started = time.perf_counter()
        try:
            result = convert(checkpoint, target, out / key, calibration=data, **options)
        except ConversionError as err:
            logging.warning("%s failed verification: %s", key, err)
            rows[key] = {"error": str(err), "convert_s": time.perf_counter() - started}
            continue
        rows[key] = describe(result.description, result.sidecar_path, options, result.seconds)
        logging.info("%s: %.2f MB, %s", key, rows[key]["size_mb"], rows[key]["verification"])
    return rows


def _previous_rows() -> dict[str, Any]:
    path = RESULTS / "convert_speed.json"
    return json.loads(path.read_text())["conversions"] if path.is_file() else {}


def from_sidecar(path: Path, options: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    from edge_slr.sidecar import read_sidecar

    return describe(read_sidecar(path), path, options, previous.get("convert_s"))


def describe(
    description: Any, sidecar: Path, options: dict[str, Any], seconds: float | None
) -> dict[str, Any]:
    fields = ("mode", "max_abs_diff", "agreement", "sentence_agreement", "wer_reference",
              "wer_converted", "wer_drop", "sequences")  # fmt: skip
    details = description.details
    model = sidecar.with_name(sidecar.name[: -len(".json")])
    return {
        "model": str(model),
        "options": options,
        "size_mb": sum(f.size for g in description.graphs for f in g.files()) / 1e6,
        "convert_s": seconds,
        "engine_config": description.engine.get("config", {}),
        "kept_fp32": list(description.precision.kept_fp32),
        "details": {
            k: details[k] for k in ("plan", "keras", "fused_lstm", "quantization") if k in details
        },
        "verification": {k: description.verification.get(k) for k in fields},
    }


# -- runners -------------------------------------------------------------------------------------


def torch_runner(checkpoint: Path, threads: int) -> Any:
    import torch

    from edge_slr.training.checkpoint import load_student

    model = load_student(checkpoint)[0].for_export(log_probs=False)

    def run(x: np.ndarray) -> Any:
        torch.set_num_threads(threads)  # process-wide: set for every call
        with torch.no_grad():
            return model(torch.from_numpy(x))

    return run


def ort_runner(path: str, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"features": x})


def ov_compiled(path: str, threads: int, config: dict[str, str], perf: bool = False) -> Any:
    import openvino as ov

    settings = {**config, "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if perf:
        settings["PERF_COUNT"] = True
    return ov.Core().compile_model(path, "CPU", settings)


def ov_runner(path: str, threads: int, config: dict[str, str]) -> Any:
    request = ov_compiled(path, threads, config).create_infer_request()
    return lambda x: request.infer({0: x})


def litert_runner(path: str, threads: int) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=path, num_threads=threads)
    index = interp.get_input_details()[0]["index"]
    state = {"shape": None}

    def run(x: np.ndarray) -> Any:
        if state["shape"] != x.shape:
            interp.resize_tensor_input(index, list(x.shape))
            interp.allocate_tensors()
            state["shape"] = x.shape
        interp.set_tensor(index, x)
        interp.invoke()

    return run


def runners(checkpoint: Path, conversions: dict[str, Any], threads: list[int]) -> dict[str, Any]:
    """Engine label -> callable, for every converted variant and thread count."""
    makers = {
        "onnxruntime": lambda path, config, n: ort_runner(path, n),
        "openvino": lambda path, config, n: ov_runner(path, n, config),
        "litert": lambda path, config, n: litert_runner(path, n),
    }
    out = {}
    for n in threads:
        tag = f" [{n}t]" if len(threads) > 1 else ""
        out[f"torch fp32 (eager){tag}"] = torch_runner(checkpoint, n)
        for key, target, _, label in VARIANTS:
            row = conversions.get(key, {})
            if "model" not in row:
                continue
            engine = TARGETS[target].engine
            out[label + tag] = makers[engine](row["model"], row["engine_config"], n)
            if key == "openvino":
                out[f"openvino fp32 model, bf16 default{tag}"] = ov_runner(row["model"], n, {})
    return out


# -- timing --------------------------------------------------------------------------------------


def inputs(data: Path, checkpoint: Path, lengths: list[int]) -> dict[int, np.ndarray]:
    """Windows of real held-out features of each length (the sequences laid end to end)."""
    from edge_slr.converters.calibration import heldout_split, load_sequences
    from edge_slr.training.checkpoint import load_checkpoint

    preset = load_checkpoint(checkpoint).feature_preset()
    held = load_sequences(data, heldout_split(data), preset, limit=50)
    stream = np.concatenate([s.features for s in held.sequences])
    return {t: np.ascontiguousarray(stream[:t][None]) for t in lengths if len(stream) >= t}


def time_all(
    engines: dict[str, Any], xs: dict[int, np.ndarray], rounds: int, per_round: int
) -> dict[str, dict[str, float]]:
    """Median ms per call, engines interleaved round by round."""
    samples: dict[tuple[str, int], list[float]] = {(e, t): [] for e in engines for t in xs}
    for run in engines.values():  # warm-up: first calls compile kernels, allocate
        for x in xs.values():
            for _ in range(3):
                run(x)
    for _ in range(rounds):
        for t, x in xs.items():
            for name, run in engines.items():
                for _ in range(per_round):
                    started = time.perf_counter()
                    run(x)
                    samples[(name, t)].append(1000 * (time.perf_counter() - started))
    return {name: {str(t): statistics.median(samples[(name, t)]) for t in xs} for name in engines}


def layer_profile(path: str, config: dict[str, str], x: np.ndarray, threads: int) -> list[dict]:
    """PERF_COUNT of the OpenVINO CPU plugin, summed by (layer type, kernel), slowest first."""
    request = ov_compiled(path, threads, config, perf=True).create_infer_request()
    totals: dict[tuple[str, str], list[float]] = {}
    runs = 20
    for _ in range(3):
        request.infer({0: x})
    for _ in range(runs):
        request.infer({0: x})
        seen: dict[tuple[str, str], float] = {}
        for info in request.profiling_info:
            key = (info.node_type, info.exec_type)
            seen[key] = seen.get(key, 0.0) + info.real_time.total_seconds() * 1000
        for key, value in seen.items():
            totals.setdefault(key, []).append(value)
    rows = [
        {"layer_type": k[0], "kernel": k[1], "ms": statistics.median(v)} for k, v in totals.items()
    ]
    rows = [r for r in rows if r["ms"] >= 0.005]
    return sorted(rows, key=lambda r: -r["ms"])


# -- report --------------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def to_markdown(result: dict[str, Any]) -> str:
    meta, conv, speed = result["meta"], result["conversions"], result["speed_ms"]
    lengths = list(next(iter(speed.values())).keys()) if speed else []
    lines = [
        "# Converted student: size, accuracy, speed",
        "",
        f"Checkpoint `{meta['checkpoint']}` ({meta['parameters']} parameters); held-out data "
        f"`{meta['data']}`. Machine: {meta['machine']['cpu']}, {meta['machine']['cores']} cores, "
        f"ISA {', '.join(meta['machine']['isa'])}; load average at start "
        f"{meta['machine']['load_at_start'][0]:.1f}, at end {meta['load_at_end'][0]:.1f} "
        "(shared machine). Batch 1, "
        f"threads {meta['threads']}, median of {meta['rounds'] * meta['per_round']} calls each, "
        "engines interleaved round by round.",
        "",
        "## Conversions",
        "",
        "| variant | size MB | convert s | verification | gloss agreement | WER ref -> conv "
        "(drop) |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in conv.items():
        if "error" in row:
            lines.append(
                f"| {name} | - | {row['convert_s']:.1f} | FAILED: {row['error'][:120]} | | |"
            )
            continue
        v = row["verification"]
        check = (
            f"{v['mode']}: max diff {v['max_abs_diff']:.1e}"
            if v["mode"] in ("fp32", "fp16")
            else f"int8: {v['sequences']} held-out"
        )
        wer = (
            f"{v['wer_reference']:.2f} -> {v['wer_converted']:.2f} ({v['wer_drop']:+.2f})"
            if v["wer_drop"] is not None
            else ""
        )
        agreement = (
            f"{100 * v['agreement']:.1f}% ({100 * v['sentence_agreement']:.0f}% sent.)"
            if v["agreement"] is not None
            else ""
        )
        lines.append(
            f"| {name} | {row['size_mb']:.2f} | {_seconds(row['convert_s'])} | {check} | "
            f"{agreement} | {wer} |"
        )
    attempts = conv.get("openvino-int8", {}).get("details", {}).get("attempts", [])
    if attempts:
        lines += [
            "",
            "OpenVINO INT8 plans tried in order (what stays FP32), on the held-out split:",
            "",
        ]
        lines += [
            f"- {a['plan']}: gloss agreement {100 * a['agreement']:.1f}%, WER drop "
            f"{a['wer_drop']:+.2f} -> {'accepted' if a['passed'] else 'rejected'}"
            for a in attempts
        ]
    lines += [
        "",
        "## Latency (ms, batch 1)",
        "",
        "| engine | " + " | ".join(f"T={t}" for t in lengths) + " |",
        "|---|" + "---|" * len(lengths),
    ]
    for name, row in speed.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[t]:.2f}" for t in lengths) + " |")
    lines += ["", "## OpenVINO INT8 vs FP32", ""]
    for threads, rows in result.get("openvino_speedup", {}).items():
        for t, ratio in rows.items():
            lines.append(
                f"- {threads}, T={t}: INT8 is {ratio['vs_fp32']:.2f}x faster than FP32 (exact, "
                f"f32 hint) and {ratio['vs_bf16']:.2f}x faster than the FP32 model run in bf16"
            )
    profile = result.get("openvino_profile")
    if profile:
        lines += [
            "",
            f"Per-layer profile at T={profile['frames']}, {profile['threads']} threads "
            "(PERF_COUNT, median ms per call, summed by layer type and kernel):",
            "",
        ]
        for label in ("fp32", "fp32 in bf16", "int8"):
            rows = profile[label][:8]
            total = sum(r["ms"] for r in profile[label])
            lines += [
                f"{label} (sum {total:.2f} ms):",
                "",
                "| layer type | kernel | ms |",
                "|---|---|---|",
            ]
            lines += [f"| {r['layer_type']} | {r['kernel']} | {r['ms']:.3f} |" for r in rows]
            lines.append("")
    return "\n".join(lines) + "\n"


def speedups(speed: dict[str, dict[str, float]], threads: list[int]) -> dict[str, Any]:
    """OpenVINO INT8 vs FP32 (exact, f32 hint) and vs the FP32 model in bf16, per T and threads."""
    out: dict[str, Any] = {}
    for n in threads:
        tag = f" [{n}t]" if len(threads) > 1 else ""
        int8, fp32 = speed.get(f"openvino int8{tag}"), speed.get(f"openvino fp32{tag}")
        bf16 = speed.get(f"openvino fp32 model, bf16 default{tag}")
        if int8 is None or fp32 is None or bf16 is None:
            continue
        out[f"{n} threads"] = {
            t: {"vs_fp32": fp32[t] / int8[t], "vs_bf16": bf16[t] / int8[t]} for t in int8
        }
    return out


def profiles(conversions: dict[str, Any], x: np.ndarray, threads: int) -> dict[str, Any] | None:
    """Per-layer PERF_COUNT of OpenVINO FP32 (f32 hint), FP32 in bf16 and INT8 at one length."""
    fp32, int8 = conversions.get("openvino", {}), conversions.get("openvino-int8", {})
    if "model" not in fp32 or "model" not in int8:
        return None
    return {
        "frames": int(x.shape[1]),
        "threads": threads,
        "fp32": layer_profile(fp32["model"], OV_FP32_HINT, x, threads),
        "fp32 in bf16": layer_profile(fp32["model"], {}, x, threads),
        "int8": layer_profile(int8["model"], int8["engine_config"], x, threads),
    }


def run(checkpoint: Path, data: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from edge_slr.training.checkpoint import load_checkpoint

    load_at_start = os.getloadavg()
    conversions = convert_all(
        checkpoint, data, work, args.smoke, args.max_wer_drop, reuse=args.keep is not None
    )
    engines = runners(checkpoint, conversions, args.threads)
    xs = inputs(data, checkpoint, args.lengths)
    speed = time_all(engines, xs, args.rounds, args.per_round)
    middle = sorted(xs)[len(xs) // 2]
    state = load_checkpoint(checkpoint).state_dict
    return {
        "conversions": conversions,
        "speed_ms": speed,
        "openvino_speedup": speedups(speed, args.threads),
        # Always recorded: it says where the time goes (the 2x goal needs it when it falls short).
        "openvino_profile": profiles(conversions, xs[middle], max(args.threads)),
        "meta": {
            "checkpoint": str(checkpoint),
            "parameters": int(
                sum(
                    v.numel()
                    for k, v in state.items()
                    if "running" not in k and v.dtype.is_floating_point
                )
            ),
            "data": str(data),
            "machine": {**machine(), "load_at_start": load_at_start},
            "threads": args.threads,
            "rounds": args.rounds,
            "per_round": args.per_round,
            "max_wer_drop": args.max_wer_drop,
            "smoke": args.smoke,
            "load_at_end": os.getloadavg(),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="trained student checkpoint")
    parser.add_argument("--data", type=Path, help="its landmark dataset (calibration, held-out)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 150, 200])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--max-wer-drop",
        type=float,
        default=0.3,
        help="INT8 WER budget (points); 0.3 is the speed goal's bound (the converter's default "
        "is 0.5)",
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=5)
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep the converted models here; models already verified there are reused",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny data and model (CI)")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="results folder (default: benchmarks/results)"
    )
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the .md from the saved .json"
    )
    args = parser.parse_args()
    stem = "convert_speed_smoke" if args.smoke else "convert_speed"
    if args.render:
        result = json.loads((args.results / f"{stem}.json").read_text())
        (args.results / f"{stem}.md").write_text(to_markdown(result))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="convert-speed-") as temp:
        work = args.keep or Path(temp)
        if args.smoke:
            from tests.conftest import make_tiny_dataset, train_tiny_student

            args.rounds, args.per_round = 2, 2
            data = work / "data"
            make_tiny_dataset(data)
            checkpoint = train_tiny_student(data, epochs=8)
        elif args.checkpoint is None or args.data is None:
            parser.error("--checkpoint and --data are required (or --smoke)")
        else:
            checkpoint, data = args.checkpoint, args.data
        result = run(checkpoint, data, work, args)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.results / f"{stem}.md").write_text(to_markdown(result))
    print(to_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
