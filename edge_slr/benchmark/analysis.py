"""The paper's comparisons, computed from a report's measured rows.

- INT8 vs FP32 per runtime (paper Table 3: frames/s and their ratio; Table 2: WER; sizes):
  rows of the same model directory and runtime, FP32 weights vs INT8 weights.
- The student's FLOPs per frame at each length (analytic, :mod:`edge_slr.benchmark.flops`) and
  the share of the CPU's assumed peak FLOP/s each row reaches at its longest length.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from edge_slr.benchmark.machine import peak_assumption, peak_gflops

if TYPE_CHECKING:
    from edge_slr.benchmark.report import BenchmarkReport, BenchmarkRow


def int8_vs_fp32(rows: tuple[BenchmarkRow, ...]) -> list[dict[str, Any]]:
    """FP32/INT8 pairs of measured rows of one model directory, runtime and format family
    (``openvino`` with ``openvino-int8``): frames/s per length, ratio, WER, size."""
    pairs = []
    measured = [r for r in rows if not r.failed and r.latency]
    keys = sorted({(r.model_dir, r.runtime, family(r.format)) for r in measured})
    for key in keys:
        group = [r for r in measured if (r.model_dir, r.runtime, family(r.format)) == key]
        for a in (r for r in group if r.precision == "fp32"):
            pairs += [_pair(a, b) for b in group if b.precision == "int8"]
    return pairs


def family(target: str) -> str:
    """The format without its precision: ``openvino-int8`` -> ``openvino``."""
    for suffix in ("-int8", "-fp16"):
        target = target.removesuffix(suffix)
    return target


def _pair(fp32: BenchmarkRow, int8: BenchmarkRow) -> dict[str, Any]:
    per_length = []
    for lat in fp32.latency:
        other = int8.latency_at(lat.frames)
        if other is not None:
            per_length.append({
                "frames": lat.frames, "fp32_fps": round(lat.fps, 1),
                "int8_fps": round(other.fps, 1), "ratio": round(other.fps / lat.fps, 3),
                # from the fastest calls: steadier than the medians on a busy machine
                "ratio_min": None if not (lat.min_ms and other.min_ms)
                else round(lat.min_ms / other.min_ms, 3),
            })  # fmt: skip
    return {
        "model_dir": fp32.model_dir, "runtime": fp32.runtime,
        "fp32": fp32.model, "int8": int8.model, "fp32_format": fp32.format,
        "int8_format": int8.format, "by_length": per_length,
        "fp32_wer": fp32.wer, "int8_wer": int8.wer,
        "wer_drop_points": None if fp32.wer is None or int8.wer is None
        else round(100.0 * (int8.wer - fp32.wer), 3),
        "fp32_size_mb": fp32.size_mb, "int8_size_mb": int8.size_mb,
    }  # fmt: skip


def flops_summary(report: BenchmarkReport) -> dict[str, Any]:
    """FLOPs per frame of each distinct student, and the peak FLOP/s assumption."""
    from edge_slr.benchmark.flops import flops_per_frame

    students: dict[str, Any] = {}
    seen: set[str] = set()
    lengths = report.settings.get("lengths", [])
    for row in report.rows:
        dims_key = json.dumps(row.student_dims, sort_keys=True)
        if row.student_dims is None or dims_key in seen:
            continue
        seen.add(dims_key)
        students[f"{row.model_dir}/{row.model}"] = {
            "dims": row.student_dims,
            "flops_per_frame": {str(n): flops_per_frame(row.student_dims, n) for n in lengths},
        }
    threads = report.settings.get("threads")
    return {
        "counting": "analytic from the sidecar dims: convolutions, BiLSTM gates, classifier; "
        "1 MAC = 2 FLOPs (biases, norms, activations, pooling not counted)",
        "peak_gflops": peak_gflops(report.machine, threads),
        "peak_int8_gops": peak_gflops(report.machine, threads, "int8"),
        "peak_assumption": peak_assumption(report.machine, threads),
        "students": students,
        "rows": [
            {
                "model": r.model,
                "runtime": r.runtime,
                "flops_per_frame": r.flops_per_frame,
                "peak_fraction": r.peak_fraction,
            }
            for r in report.rows
            if r.peak_fraction is not None
        ],  # fmt: skip
    }


def comparisons(report: BenchmarkReport) -> dict[str, Any]:
    return {"int8_vs_fp32": int8_vs_fp32(report.rows), "flops": flops_summary(report)}
