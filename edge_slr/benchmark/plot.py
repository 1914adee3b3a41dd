"""PNG plots of benchmark reports: frames/s per row and latency vs input length.

matplotlib comes with the ``train`` extra; without it :func:`plot_reports` raises
MissingDependencyError naming the extra (a device install has only its engine).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edge_slr._optional import require
from edge_slr.benchmark.report import short_cpu

if TYPE_CHECKING:
    from edge_slr.benchmark.report import BenchmarkReport


def plot_reports(reports: Sequence[BenchmarkReport], path: str | Path) -> Path:
    """Left: frames/s at the longest common length per row (one colour per machine); right:
    median latency vs input length per row. Failed rows are left out (the table lists them)."""
    matplotlib = require("matplotlib", "benchmark plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    common = set(reports[0].settings.get("lengths", []))
    for report in reports[1:]:
        common &= set(report.settings.get("lengths", []))
    longest = max(common) if common else None
    several = len(reports) > 1
    bars: list[tuple[str, float, str]] = []
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 0.9 + 0.45 * _count(reports) + 3))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, report in enumerate(reports):
        label = report.label or short_cpu(report.machine)
        colour = colours[i % len(colours)]
        for row in report.rows:
            if row.failed or not row.latency:
                continue
            name = f"{row.format} / {row.runtime}" + (f" ({label})" if several else "")
            lat = row.latency_at(longest) if longest is not None else None
            if lat is not None:
                bars.append((name, lat.fps, colour))
            xs = [lat.frames for lat in row.latency]
            right.plot(xs, [lat.p50_ms for lat in row.latency], marker="o", label=name)
    if bars:
        left.barh(range(len(bars)), [b[1] for b in bars], color=[b[2] for b in bars])
        left.set_yticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
        left.invert_yaxis()
        for y, (_, fps, _) in enumerate(bars):
            left.text(fps, y, f" {fps:.0f}", va="center", fontsize=7)
    left.set_xlabel(f"input frames per second at T={longest} (batch 1, median)")
    right.set_xlabel("input length (frames)")
    right.set_ylabel("median latency (ms)")
    right.grid(alpha=0.3)
    if right.lines:
        right.legend(fontsize=7)
    machines = "; ".join(
        f"{r.label or short_cpu(r.machine)} ({r.machine.get('usable_cpus')} CPUs, load "
        f"{(r.machine.get('load_average') or ['?'])[0]})"
        for r in reports
    )
    fig.suptitle(f"edge-slr benchmark: {machines}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _count(reports: Sequence[BenchmarkReport]) -> int:
    return sum(1 for r in reports for row in r.rows if not row.failed)
