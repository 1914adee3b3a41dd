"""Plan and run a benchmark: every converted student model x runtime, one fresh process per row.

A *row* is one model file of a model directory (as ``edge-slr convert ... -o DIR`` fills it)
on one runtime. Without ``runtimes`` each model runs on the engine its sidecar names; with
``runtimes`` on each listed runtime that loads its file type (OpenVINO also reads ``.onnx``).
Rows are measured by :mod:`edge_slr.benchmark.worker`, by default in a fresh Python process each
(``isolate``): so the load time is a cold start and the peak RSS is that row's alone. A row that
cannot be measured becomes a failed row with the reason; only a wrong call (a missing directory,
an unknown runtime, bad options) raises.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edge_slr.benchmark.flops import flops_per_frame
from edge_slr.benchmark.machine import describe_machine, peak_gflops
from edge_slr.benchmark.report import BenchmarkReport, BenchmarkRow, BenchmarkSettings, Latency
from edge_slr.errors import FormatError, InputError

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
PRECISION_ORDER = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class PlannedRow:
    """What one row will measure; ``error`` set when it already failed while planning."""

    model_dir: Path
    model: Path | None
    runtime: str
    description: Any = None  # ModelDescription read without checking the files
    error: str = ""


def plan_rows(model_dirs: Sequence[Path], runtimes: Sequence[str] | None) -> list[PlannedRow]:
    """The rows of a benchmark. InputError for a missing directory or an unknown runtime."""
    from edge_slr.runtimes import get_runtime_class

    wanted = [get_runtime_class(name).name for name in runtimes] if runtimes else None
    rows: list[PlannedRow] = []
    for directory in map(Path, model_dirs):
        rows += sorted(_plan_directory(directory, wanted), key=_row_order)
    return rows


def _row_order(row: PlannedRow) -> tuple:
    precision = row.description.precision.weights if row.description is not None else ""
    rank = PRECISION_ORDER.index(precision) if precision in PRECISION_ORDER else 9
    return (row.runtime or "~", rank, row.model.name if row.model else "")


def _plan_directory(directory: Path, wanted: list[str] | None) -> list[PlannedRow]:
    from edge_slr.runtimes import get_runtime_class
    from edge_slr.runtimes.registry import runtime_for_engine

    if not directory.is_dir():
        raise InputError(f"model directory not found: {directory}")
    sidecars = _student_sidecars(directory)
    if not sidecars:
        return [PlannedRow(directory, None, "", error="no converted student model here "
                           "(expected NAME.EXT with its NAME.EXT.json sidecar)")]  # fmt: skip
    rows: list[PlannedRow] = []
    for sidecar, description, error in sidecars:
        model = sidecar.with_name(sidecar.name[: -len(".json")])
        if error:
            rows.append(PlannedRow(directory, model, "", error=error))
            continue
        if wanted is not None:
            names = [n for n in wanted if model.suffix in get_runtime_class(n).suffixes]
            rows.extend(PlannedRow(directory, model, name, description) for name in names)
            continue
        engine = str(description.engine.get("name", ""))
        cls = runtime_for_engine(engine)
        if cls is None:
            error = f"no registered runtime for engine {engine!r}"
            rows.append(PlannedRow(directory, model, engine, description, error))
        else:
            rows.append(PlannedRow(directory, model, cls.name, description))
    return rows


def _student_sidecars(directory: Path) -> list[tuple[Path, Any, str]]:
    """(sidecar, description or None, error) for every student sidecar in ``directory``."""
    from edge_slr.runtimes.registry import _is_our_sidecar
    from edge_slr.sidecar import read_sidecar

    found = []
    for sidecar in sorted(directory.glob("*.json")):
        if not _is_our_sidecar(sidecar):
            continue
        try:
            description = read_sidecar(sidecar, check_files=False)
        except FormatError as err:
            found.append((sidecar, None, f"FormatError: {err}"))
            continue
        if description.kind == "student":
            found.append((sidecar, description, ""))
    return found


def run_worker(job: dict[str, Any], isolate: bool, timeout_s: float) -> dict[str, Any]:
    """The worker's result for ``job``: in a fresh process (``isolate``) or in this one."""
    if not isolate:
        from edge_slr.benchmark.worker import error_text, run_job

        try:
            return run_job(job)
        except Exception as err:  # noqa: BLE001 - an engine crash is a failed row, not the end
            return {"ok": False, "error": error_text(err)}
    command = [sys.executable, "-m", "edge_slr.benchmark.worker"]
    try:
        done = subprocess.run(
            command, input=json.dumps(job), capture_output=True, text=True, timeout=timeout_s,
            env=_worker_env(),
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout_s:g} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if lines:
        return json.loads(lines[-1])
    tail = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return {
        "ok": False,
        "error": f"worker exited with code {done.returncode}: {tail[-1] if tail else 'no output'}",
    }


def _worker_env() -> dict[str, str]:
    """This environment, plus this edge_slr's folder on PYTHONPATH when it is a source checkout
    (a caller that put it on sys.path by hand: the worker must import the same code)."""
    env = dict(os.environ)
    root = Path(__file__).resolve().parents[2]
    if root.name not in ("site-packages", "dist-packages"):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    return env


def measure_row(
    planned: PlannedRow, settings: BenchmarkSettings, machine: dict[str, Any]
) -> BenchmarkRow:
    """Measure one planned row (or turn its planning error into a failed row)."""
    description = planned.description
    row = BenchmarkRow(
        model_dir=str(planned.model_dir),
        model=planned.model.name if planned.model is not None else "",
        format=description.target if description is not None else "",
        runtime=planned.runtime,
        precision=description.precision.weights if description is not None else "",
        activations=description.precision.activations if description is not None else "",
        threads=settings.threads,
    )
    if planned.error:
        return replace(row, status="failed", reason=planned.error)
    job = {
        "mode": "model", "model": str(planned.model), "runtime": planned.runtime,
        "threads": settings.threads, "lengths": list(settings.lengths),
        "warmup": settings.warmup, "runs": settings.runs, "budget_s": settings.budget_s,
        "data_dir": settings.data_dir, "split": settings.split,
        "max_sentences": settings.max_sentences, "beam_width": settings.beam_width,
    }  # fmt: skip
    result = run_worker(job, settings.isolate, settings.row_timeout_s)
    row = replace(row, size_mb=_size_mb(planned))
    if not result.get("ok"):
        return replace(row, status="failed", reason=str(result.get("error", "unknown error")))
    latency = tuple(Latency(**lat) for lat in result["latency"])
    row = replace(
        row,
        load_s=result["load_s"],
        peak_rss_mb=result["peak_rss_mb"],
        rss_before_load_mb=result["rss_before_load_mb"],
        latency=latency,
        wer=result.get("wer"),
        wer_detail=result.get("wer_detail"),
        sentence_ms=result.get("sentence_ms"),
    )
    row = _with_flops(row, description, machine, settings.threads)
    return _with_floor(row, settings.floor_wer)


def _size_mb(planned: PlannedRow) -> float | None:
    if planned.description is None or planned.model is None:
        return None
    folder = planned.model.parent
    total = 0
    for info in planned.description.graph.files():
        path = folder / info.name
        total += path.stat().st_size if path.is_file() else 0
    return round(total / 1e6, 3)


def _with_flops(
    row: BenchmarkRow, description: Any, machine: dict[str, Any], threads: int | None
) -> BenchmarkRow:
    dims = description.source.get("dims") if description is not None else None
    if not dims or not row.latency:
        return row
    longest = max(row.latency, key=lambda lat: lat.frames)
    per_frame = flops_per_frame(dims, longest.frames)
    peak = peak_gflops(machine, threads, row.precision)
    fraction = None
    if per_frame is not None and peak:
        achieved = per_frame * longest.frames / (longest.p50_ms / 1000.0) / 1e9
        fraction = round(achieved / peak, 5)
    return replace(row, flops_per_frame=per_frame, peak_fraction=fraction, student_dims=dict(dims))


def _with_floor(row: BenchmarkRow, floor_wer: float | None) -> BenchmarkRow:
    if floor_wer is None or row.wer is None or 100.0 * row.wer <= floor_wer:
        return row
    reason = f"WER {100.0 * row.wer:.2f}% is above the floor {floor_wer:g}%"
    return replace(row, status="failed", reason=reason)


def measure_pipeline(
    model_dir: Path,
    video: Path,
    settings: BenchmarkSettings,
    runtime: str | None,
    engine: str = "mediapipe",
) -> dict[str, Any]:
    """Video -> landmarks (on the extraction ``engine``) -> glosses (-> correction) through
    Recognizer, in a fresh process."""
    job = {
        "mode": "pipeline", "model_dir": str(model_dir), "video": str(video),
        "runtime": runtime, "threads": settings.threads, "runs": 2, "engine": engine,
    }  # fmt: skip
    result = run_worker(job, settings.isolate, settings.row_timeout_s)
    if not result.get("ok"):
        return {"model_dir": str(model_dir), "video": str(video), "runtime": runtime,
                "engine": engine, "status": "failed",
                "reason": str(result.get("error"))}  # fmt: skip
    result.pop("ok")
    return {"status": "ok", **result}


def run_benchmark(
    model_dirs: Sequence[Path],
    settings: BenchmarkSettings,
    runtimes: Sequence[str] | None = None,
    video: Path | None = None,
    progress: Progress | None = None,
    engines: Sequence[str] = ("mediapipe",),
) -> BenchmarkReport:
    """Measure every row of ``model_dirs`` (and the video pipeline, once per extraction
    engine) into a report."""
    say = progress or logger.info
    if settings.data_dir is not None and not Path(settings.data_dir).is_dir():
        raise InputError(f"--data folder not found: {settings.data_dir}")
    if video is not None and not Path(video).is_file():
        raise InputError(f"video not found: {video}")
    planned = plan_rows(model_dirs, runtimes)
    machine = describe_machine()
    rows = []
    for i, item in enumerate(planned, 1):
        name = f"{item.model_dir}/{item.model.name if item.model else ''} on {item.runtime or '?'}"
        say(f"[{i}/{len(planned)}] {name}")
        started = time.perf_counter()
        row = measure_row(item, settings, machine)
        rows.append(row)
        say(f"[{i}/{len(planned)}] {'FAILED: ' + row.reason if row.failed else 'done'} "
            f"({time.perf_counter() - started:.1f} s)")  # fmt: skip
    pipeline = []
    if video is not None:
        for directory in model_dirs:
            runtime = runtimes[0] if runtimes else None
            for engine in engines:
                say(f"pipeline: {video} through {directory}, extraction on {engine}")
                pipeline.append(
                    measure_pipeline(Path(directory), Path(video), settings, runtime, engine)
                )
    machine["load_average_end"] = machine_load()
    return BenchmarkReport(
        machine=machine,
        settings=settings.to_dict(),
        rows=tuple(rows),
        pipeline=tuple(pipeline),
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


def machine_load() -> list[float] | None:
    from edge_slr.benchmark.machine import load_average

    return load_average()
