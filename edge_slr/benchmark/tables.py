"""Text and markdown tables of benchmark reports (one machine, or several merged)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from edge_slr.benchmark.report import short_cpu

if TYPE_CHECKING:
    from edge_slr.benchmark.report import BenchmarkReport, BenchmarkRow


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def machine_lines(report: BenchmarkReport) -> list[str]:
    m = report.machine
    engines = ", ".join(f"{k} {v}" for k, v in m.get("engines", {}).items())
    load = m.get("load_average")
    end = m.get("load_average_end")
    lines = [
        f"Machine: {m.get('cpu_model')} ({m.get('machine')}), {m.get('usable_cpus')} usable of "
        f"{m.get('logical_cpus')} logical CPUs, {_num(m.get('clock_ghz'), 2)} GHz, "
        f"{m.get('memory_gb')} GiB, host {m.get('hostname')}",
        f"CPU flags: {' '.join(m.get('cpu_flags', [])) or '-'}",
        f"Engines: {engines or '-'}; edge-slr {m.get('edge_slr_version')}, "
        f"Python {m.get('python')}",
        f"Load average (1/5/15 min) at start {load}, at end {end}",
    ]
    s = report.settings
    threads = s.get("threads") or "engine default"
    lines.append(
        f"Settings: batch 1, lengths {s.get('lengths')} frames, {s.get('warmup')} warm-up + "
        f"{s.get('runs')} timed calls (at most {s.get('budget_s')} s) per length, threads "
        f"{threads}, {'one fresh process per row' if s.get('isolate') else 'in process'}"
    )
    if s.get("data_dir"):
        limit = f", first {s['max_sentences']} sentences" if s.get("max_sentences") else ""
        decoder = "greedy" if s.get("beam_width", 1) == 1 else f"beam {s['beam_width']}"
        floor = f", WER floor {s['floor_wer']}%" if s.get("floor_wer") is not None else ""
        lines.append(f"WER: {s['data_dir']} split {s.get('split')}{limit}, {decoder} CTC "
                     f"decoding, official scorer{floor}")  # fmt: skip
    return lines


def row_cells(row: BenchmarkRow, lengths: Sequence[int], mark: str) -> list[str]:
    cells = [row.format or "-", row.runtime or "-", row.precision or "-", _num(row.size_mb, 2)]
    cells.append(_num(None if row.wer is None else 100.0 * row.wer, 2))
    for n in lengths:
        lat = row.latency_at(n)
        cells.append("-" if lat is None else f"{lat.p50_ms:.2f}/{lat.p90_ms:.2f}")
    longest = row.latency_at(max(lengths)) if lengths else None
    cells.append("-" if longest is None else f"{longest.fps:.0f}")
    cells += [_num(row.peak_rss_mb, 0), _num(row.load_s, 2)]
    cells.append(_num(None if row.peak_fraction is None else 100.0 * row.peak_fraction, 2))
    cells.append(mark)
    return cells


def grid(header: list[str], body: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return lines + ["| " + " | ".join(cells) + " |" for cells in body]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    fmt = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return [fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in body]


def rows_table(
    rows: Sequence[BenchmarkRow], lengths: Sequence[int], markdown: bool,
    machines: Sequence[str] | None = None,
) -> list[str]:  # fmt: skip
    """The table and the legend of failed rows (with their reasons)."""
    header = ["Format", "Runtime", "Precision", "Size MB", "WER %"]
    header += [f"p50/p90 ms @{n}" for n in lengths]
    header += [f"FPS @{max(lengths)}" if lengths else "FPS", "Peak RSS MB", "Load s",
               "% peak FLOP/s", "Status"]  # fmt: skip
    if machines is not None:
        header.insert(0, "Machine")
    body, legend = [], []
    for i, row in enumerate(rows):
        mark = "ok"
        if row.failed:
            legend.append(row.reason)
            mark = f"FAILED [{len(legend)}]"
        cells = row_cells(row, lengths, mark)
        if machines is not None:
            cells.insert(0, machines[i])
        if not row.model:
            cells[0 if machines is None else 1] = row.model_dir
        body.append(cells)
    lines = grid(header, body, markdown)
    if legend:
        lines.append("")
        lines.append("Failed rows:")
        lines += [f"  [{i}] {reason}" for i, reason in enumerate(legend, 1)]
    return lines


def comparison_lines(data: dict[str, Any]) -> list[str]:
    return int8_lines(data) + flops_lines(data)


def int8_lines(data: dict[str, Any]) -> list[str]:
    lines = []
    for pair in data["int8_vs_fp32"]:
        ratios = ", ".join(
            f"T={p['frames']}: {p['fp32_fps']:.0f} -> {p['int8_fps']:.0f} fps ({p['ratio']:.2f}x"
            + (f"; {p['ratio_min']:.2f}x from the fastest calls)" if p.get("ratio_min") else ")")
            for p in pair["by_length"]
        )
        wer = ""
        if pair["wer_drop_points"] is not None:
            wer = (f"; WER {100 * pair['fp32_wer']:.2f}% -> {100 * pair['int8_wer']:.2f}% "
                   f"({pair['wer_drop_points']:+.2f} points)")  # fmt: skip
        size = f"; size {_num(pair['fp32_size_mb'], 2)} -> {_num(pair['int8_size_mb'], 2)} MB"
        lines.append(f"INT8 vs FP32 on {pair['runtime']} ({pair['int8_format']} vs "
                     f"{pair['fp32_format']}): {ratios}{wer}{size}")  # fmt: skip
    return lines


def flops_lines(data: dict[str, Any]) -> list[str]:
    lines, flops = [], data["flops"]
    for name, student in flops["students"].items():
        per = ", ".join(f"T={n}: {v / 1e6:.2f}" for n, v in student["flops_per_frame"].items())
        lines.append(f"Student FLOPs per frame (MFLOP) of {name} and its conversions: {per}")
    if flops["students"]:
        lines.append(f"FLOPs: {flops['counting']}")
        lines.append(f"Peak: {flops['peak_assumption']}")
    return lines


def pipeline_lines(pipeline: Sequence[dict[str, Any]]) -> list[str]:
    lines = []
    for p in pipeline:
        if p.get("status") != "ok":
            lines.append(f"Pipeline {p.get('video')} via {p.get('model_dir')}, extraction on "
                         f"{p.get('engine', 'mediapipe')}: FAILED: {p.get('reason')}")  # fmt: skip
            continue
        warm = p["warm"][-1] if p["warm"] else p["cold"]
        t = warm["timings"]
        correction = f"{t['correction_ms']:.1f} ms" if p["corrector"] else "no corrector"
        lines.append(
            f"Pipeline {p['video']} ({warm['frames']} frames at {warm['video_fps']:.1f} fps) on "
            f"{p['runtime']} ({p['model']}), extraction on {p.get('engine', 'mediapipe')}, "
            f"warm: extraction {t['extraction_ms']:.0f} ms "
            f"({warm['extraction_fps']:.1f} frames/s), recognition {t['recognition_ms']:.1f} ms, "
            f"correction {correction}, end-to-end real-time factor "
            f"{warm['real_time_factor']:.2f} (cold run {p['cold']['real_time_factor']:.2f}); "
            f"recognised: {warm['sentence'] or '(nothing)'}"
        )
        lines += [f"  note: {n}" for n in p.get("notes", [])]
    return lines


def format_report(report: BenchmarkReport, markdown: bool = False) -> str:
    lengths = list(report.settings.get("lengths", []))
    title = f"edge-slr benchmark ({report.created or 'not dated'})"
    head = machine_lines(report)
    lines = [f"# {title}", ""] + [f"- {x}" for x in head] if markdown else [title, *head]
    lines.append("")
    lines += rows_table(report.rows, lengths, markdown)
    extra = comparison_lines(report.comparisons()) + pipeline_lines(report.pipeline)
    if extra:
        lines.append("")
        lines += [f"- {x}" for x in extra] if markdown else extra
    return "\n".join(lines) + "\n"


def format_comparison(reports: Sequence[BenchmarkReport], markdown: bool = False) -> str:
    """Several machines' reports as one table (lengths common to all of them)."""
    common = set(reports[0].settings.get("lengths", []))
    for report in reports[1:]:
        common &= set(report.settings.get("lengths", []))
    lengths = sorted(common)
    labels = [r.label or short_cpu(r.machine) for r in reports]
    lines = ["edge-slr benchmark comparison", ""]
    for label, report in zip(labels, reports, strict=True):
        m = report.machine
        lines.append(f"{label}: {m.get('cpu_model')}, {m.get('usable_cpus')} CPUs, flags "
                     f"{' '.join(m.get('cpu_flags', []))}, load {m.get('load_average')}, "
                     f"measured {report.created}")  # fmt: skip
    lines.append("")
    rows = [row for report in reports for row in report.rows]
    machines = [label for label, report in zip(labels, reports, strict=True) for _ in report.rows]
    lines += rows_table(rows, lengths, markdown, machines)
    for label, report in zip(labels, reports, strict=True):
        for line in int8_lines(report.comparisons()):
            lines.append(f"{label}: {line}")
    return "\n".join(lines) + "\n"
