"""Live-mode benchmark: a video played looped at its own frame rate through the live pipeline.

One row per landmark extraction engine: :func:`edge_slr.recognition.live.play` feeds the video,
looped to at least ``loop_seconds`` of video time, to a
:class:`edge_slr.recognition.live.LiveRecognizer` as a camera would (real time; a frame extraction
cannot take in time is dropped and counted under ``"skip-oldest"``), and the row reports sustained
frames/s, dropped frames, CPU use (process CPU time / wall time: above 100 % means the stages ran on
more than one core at once), resident memory sampled over the run (peak and slope), and latency
p50/p90: capture to result, capture to a gloss's first appearance (glass-to-gloss) and a sentence's
last frame to its final result. The first ``warmup_s`` seconds of video are played but left out of
every figure: the first frames of a fresh MediaPipe graph take up to a second (model start-up, first
detections), so a camera drops frames at the start whatever the steady rate. Optionally the clip is
also recognised once live without drops (``"block"``, as fast as it goes) and offline
(``Recognizer.recognize_video``), and the two gloss sequences are compared.

Every row runs in a fresh process (``python -m edge_slr.benchmark.live``, the job as JSON on
stdin, one JSON line out), so the memory and the engines' start-up belong to that row alone.
An engine is passed as ``HolisticOptions(engine=...)`` when this edge-slr's HolisticOptions has
that field; without it only ``"mediapipe"`` (MediaPipe's graph) can run. ``"ENGINE:N"`` runs an
edge-slr engine with ``N`` part workers (threads for one frame's hands and face) instead of the
live default (:attr:`edge_slr.recognition.live.LiveOptions.part_workers`), e.g. ``litert:1``;
``"ENGINE+lite"`` runs it with the lite hand model (``HolisticOptions(hand_model="lite")``).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edge_slr.errors import InputError

logger = logging.getLogger(__name__)

SCHEMA = "edge-slr-live-benchmark"
SCHEMA_VERSION = 1
DEFAULT_ENGINES = ("mediapipe",)
RSS_INTERVAL_S = 0.5
WARMUP_FRACTION = 0.2  # RSS samples left out of the slope: model loading, graph start-up


@dataclass(frozen=True)
class LiveRow:
    """One extraction engine through the live pipeline. ``status`` "ok" or "failed" (``reason``)."""

    engine: str  # as asked: "ENGINE" or "ENGINE:N" (N part workers)
    status: str = "ok"
    reason: str = ""
    runtime: str = ""  # the recogniser's engine
    part_workers: int | None = None  # what the extractor ran with (None: MediaPipe's graph)
    load_s: float | None = None  # recogniser + corrector + extractor
    video_s: float | None = None  # video time played (the loops)
    wall_s: float | None = None
    frames: int | None = None
    dropped: int | None = None
    sustained_fps: float | None = None
    cpu_percent: float | None = None  # 100 = one core busy all the time
    rss_peak_mb: float | None = None
    rss_slope_mb_per_min: float | None = None  # after the first 20 % of the run
    rss_samples: tuple[tuple[float, float], ...] = ()  # (seconds, MiB)
    stats: dict[str, Any] = field(default_factory=dict)  # LiveStats.to_dict()
    offline_check: dict[str, Any] | None = None  # live ("block") vs recognize_video glosses

    @property
    def failed(self) -> bool:
        return self.status != "ok"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rss_samples"] = [list(sample) for sample in self.rss_samples]
        return data


@dataclass(frozen=True)
class LiveReport:
    machine: dict[str, Any]
    settings: dict[str, Any]
    rows: tuple[LiveRow, ...]
    created: str = ""

    @property
    def failed(self) -> tuple[LiveRow, ...]:
        return tuple(row for row in self.rows if row.failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "created": self.created,
            "machine": self.machine,
            "settings": self.settings,
            "rows": [row.to_dict() for row in self.rows],
        }

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return path

    def to_markdown(self) -> str:
        return format_live(self)


def benchmark_live(
    model_dir: str | Path,
    video: str | Path,
    engines: Sequence[str] = DEFAULT_ENGINES,
    loop_seconds: float = 60.0,
    runtime: str | None = None,
    threads: int | None = 1,
    drop_policy: str = "skip-oldest",
    warmup_s: float = 2.0,
    check_offline: bool = True,
    isolate: bool = True,
    progress: Callable[[str], None] | None = None,
) -> LiveReport:
    """Measure the live pipeline on ``video`` once per extraction engine (see the module doc)."""
    from edge_slr.benchmark.machine import describe_machine, load_average
    from edge_slr.recognition.options import DROP_POLICIES

    say = progress or logger.info
    model_dir, video = Path(model_dir), Path(video)
    if not model_dir.exists():
        raise InputError(f"model directory not found: {model_dir}")
    if not video.is_file():
        raise InputError(f"video not found: {video}")
    engines = tuple(engines)
    if not engines or not all(isinstance(e, str) and e for e in engines):
        raise InputError(f"engines must be non-empty engine names, got {list(engines)}")
    for spec in engines:
        parse_engine(spec)
    if (
        isinstance(loop_seconds, bool)
        or not isinstance(loop_seconds, (int, float))
        or not (loop_seconds > 0)
    ):
        raise InputError(f"loop_seconds must be a positive number, got {loop_seconds!r}")
    if isinstance(warmup_s, bool) or not isinstance(warmup_s, (int, float)) or not warmup_s >= 0:
        raise InputError(f"warmup_s must be a number of seconds >= 0, got {warmup_s!r}")
    if drop_policy not in DROP_POLICIES:
        raise InputError(f"drop_policy must be one of {DROP_POLICIES}, got {drop_policy!r}")
    settings = {
        "model_dir": str(model_dir), "video": str(video), "engines": list(engines),
        "loop_seconds": float(loop_seconds), "runtime": runtime, "threads": threads,
        "drop_policy": drop_policy, "warmup_s": float(warmup_s), "check_offline": check_offline,
        "isolate": isolate,
        "realtime": True,
    }  # fmt: skip
    machine = describe_machine()
    rows = []
    for engine in engines:
        say(f"live: {video.name} looped to {loop_seconds:g} s, extraction engine {engine}")
        started = time.perf_counter()
        job = {**settings, "engine": engine}
        row = _run_isolated(job, loop_seconds) if isolate else measure_live_row(job)
        rows.append(row)
        say(f"live: {engine} {'FAILED: ' + row.reason if row.failed else 'done'} "
            f"({time.perf_counter() - started:.0f} s)")  # fmt: skip
    machine["load_average_end"] = load_average()
    return LiveReport(machine, settings, tuple(rows), time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                    time.gmtime()))  # fmt: skip


def parse_engine(spec: str) -> tuple[str, int | None]:
    """``"ENGINE"`` or ``"ENGINE:N"`` (N part workers, 1 to 3) -> (engine, N or None)."""
    engine, colon, workers = spec.partition(":")
    if not colon:
        return engine, None
    if not workers.isdigit() or not 1 <= int(workers) <= 3 or engine in ("", "mediapipe"):
        raise InputError(
            f"engine {spec!r}: expected ENGINE or ENGINE:N with N part workers in 1..3 for an "
            "edge-slr engine (MediaPipe's graph picks its own threads)"
        )
    return engine, int(workers)


def extractor_options(engine: str) -> Any:
    """HolisticOptions for ``engine``, ``"ENGINE+lite"`` with the lite hand model (InputError
    when this edge-slr cannot select it)."""
    from edge_slr.landmarks.extract import HolisticOptions

    engine, plus, hand_model = engine.partition("+")
    if "engine" in {f.name for f in fields(HolisticOptions)}:
        hand = {"hand_model": hand_model} if plus else {}
        return HolisticOptions(engine=engine, **hand)  # type: ignore[call-arg]
    if engine != "mediapipe":
        raise InputError(
            f"extraction engine {engine!r}: this edge-slr's HolisticOptions has no engine field, "
            "only 'mediapipe' (MediaPipe's graph) runs"
        )
    return HolisticOptions()


def measure_live_row(job: dict[str, Any]) -> LiveRow:
    """One row in this process (``isolate=False``, or the worker of an isolated row)."""
    engine = str(job["engine"])
    try:
        return _measure(job)
    except Exception as error:  # noqa: BLE001 - a failed row says why; the others still run
        logger.debug("live row %s failed", engine, exc_info=error)
        return LiveRow(engine, status="failed", reason=f"{type(error).__name__}: {error}")


def _measure(job: dict[str, Any]) -> LiveRow:
    from edge_slr.landmarks.video import open_frames
    from edge_slr.recognition.live import LiveOptions, LiveRecognizer, play
    from edge_slr.recognition.options import RecognizerOptions

    engine, workers = parse_engine(str(job["engine"]))
    options = RecognizerOptions(
        Path(job["model_dir"]), runtime=job["runtime"], threads=job["threads"],
        extractor=extractor_options(engine),
    )  # fmt: skip
    live_options = LiveOptions(options, drop_policy=job["drop_policy"], part_workers=workers)
    extracting = live_options.extractor_options()
    sampler = RssSampler()
    started = time.perf_counter()
    with LiveRecognizer.create_from_options(live_options) as live:
        load_s = time.perf_counter() - started
        runtime = live.recognizer.runtime.name
        sampler.start()
        try:
            stats = play(job["video"], live, realtime=True, loop_seconds=job["loop_seconds"],
                         warmup_s=job.get("warmup_s", 0.0))  # fmt: skip
        finally:
            sampler.stop()
    check = _offline_check(options, job["video"]) if job.get("check_offline") else None
    return LiveRow(
        engine=str(job["engine"]),
        runtime=runtime,
        part_workers=None if extracting.engine == "mediapipe" else extracting.part_workers,
        load_s=round(load_s, 3),
        video_s=round(stats.frames_in / open_frames(job["video"]).fps, 3),
        wall_s=round(stats.wall_s, 3),
        frames=stats.frames_in,
        dropped=stats.dropped,
        sustained_fps=_round(stats.sustained_fps),
        cpu_percent=_round(stats.cpu_percent),
        rss_peak_mb=_round(sampler.peak_mb()),
        rss_slope_mb_per_min=_round(sampler.slope_mb_per_min()),
        rss_samples=sampler.samples(),
        stats=stats.to_dict(),
        offline_check=check,
    )  # fmt: skip


def _offline_check(options: Any, video: str) -> dict[str, Any]:
    """The clip once live without drops and once offline: the same glosses?"""
    from edge_slr.recognition.live import LiveOptions, LiveRecognizer, play
    from edge_slr.recognition.recognizer import Recognizer

    with Recognizer.create_from_options(options) as recognizer:
        offline = recognizer.recognize_video(video)
    with LiveRecognizer.create_from_options(LiveOptions(options, drop_policy="block")) as live:
        play(video, live, realtime=False, finish=False)
        last = live.finish()
    live_glosses, offline_glosses = list(last.recognized), list(offline.recognized)
    return {"same": live_glosses == offline_glosses, "live": live_glosses,
            "offline": offline_glosses}  # fmt: skip


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


class RssSampler:
    """This process's resident memory every ``interval`` seconds on a thread (Linux /proc)."""

    def __init__(self, interval: float = RSS_INTERVAL_S) -> None:
        self._interval = interval
        self._samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-slr-rss", daemon=True)
        self._started = 0.0

    def start(self) -> None:
        self._started = time.perf_counter()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            rss = current_rss_mb()
            if rss is not None:
                self._samples.append((round(time.perf_counter() - self._started, 2), round(rss, 1)))
            if self._stop.wait(self._interval):
                return

    def samples(self) -> tuple[tuple[float, float], ...]:
        return tuple(self._samples)

    def peak_mb(self) -> float | None:
        return max((mb for _, mb in self._samples), default=None)

    def slope_mb_per_min(self) -> float | None:
        """Least-squares slope after the warm-up fifth of the run (None under 4 samples)."""
        import numpy as np

        kept = self._samples[int(len(self._samples) * WARMUP_FRACTION) :]
        if len(kept) < 4:
            return None
        t, mb = np.asarray(kept).T
        return float(np.polyfit(t, mb, 1)[0] * 60.0) if np.ptp(t) > 0 else None


def current_rss_mb() -> float | None:
    """Resident memory of this process now (MiB), from /proc/self/statm; None elsewhere."""
    import os

    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _run_isolated(job: dict[str, Any], loop_seconds: float) -> LiveRow:
    """The row in a fresh ``python -m edge_slr.benchmark.live`` process."""
    timeout = 600.0 + 3.0 * loop_seconds  # start-up, the run, the offline check
    try:
        run = subprocess.run(
            [sys.executable, "-m", "edge_slr.benchmark.live"], input=json.dumps(job),
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return LiveRow(job["engine"], status="failed", reason=f"timed out after {timeout:.0f} s")
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if run.returncode != 0 or not lines:
        tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
        return LiveRow(job["engine"], status="failed",
                       reason=f"worker exited {run.returncode}: {' | '.join(tail)}")  # fmt: skip
    data = json.loads(lines[-1])
    data["rss_samples"] = tuple(tuple(sample) for sample in data.get("rss_samples", ()))
    return LiveRow(**data)


def _cell(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def format_live(report: LiveReport) -> str:
    """The report as markdown: the machine, the settings, one table row per engine."""
    machine, settings = report.machine, report.settings
    lines = [
        f"# Live recognition: {Path(settings['video']).name} looped to "
        f"{settings['loop_seconds']:g} s at its own frame rate",
        "",
        f"Machine: {machine.get('cpu_model', '?')}, {machine.get('usable_cpus', '?')} usable CPUs, "
        f"load {machine.get('load_average')} at the start, {machine.get('load_average_end')} at "
        f"the end. Model: `{settings['model_dir']}`, recogniser threads {settings['threads']}, "
        f"drop policy {settings['drop_policy']}; the first {settings['warmup_s']:g} s of video "
        f"(engine start-up, first detections) are played but not counted. "
        f"Created {report.created}.",
        "",
        "| extraction engine | part workers | runtime | frames | dropped | sustained fps | CPU % "
        "| RSS peak MB "
        "| RSS slope MB/min | capture->result p50/p90 ms | glass-to-gloss p50/p90 ms (n) "
        "| sentence end->final p50/p90 ms (n) | extraction ms/frame | same glosses as offline |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report.rows:
        if row.failed:
            lines.append(f"| {row.engine} | failed: {row.reason} |" + " |" * 12)
            continue
        s = row.stats
        check = row.offline_check
        same = "not checked" if check is None else ("yes" if check["same"] else
                                                    f"no: {check['live']} vs {check['offline']}")  # fmt: skip
        lines.append(
            f"| {row.engine} | {_cell(row.part_workers).replace('n/a', 'graph')} | {row.runtime} "
            f"| {row.frames} | {row.dropped} "
            f"| {_cell(row.sustained_fps, 1)} | {_cell(row.cpu_percent)} "
            f"| {_cell(row.rss_peak_mb)} | {_cell(row.rss_slope_mb_per_min, 2)} "
            f"| {_cell(s.get('frame_latency_p50_ms'))}/{_cell(s.get('frame_latency_p90_ms'))} "
            f"| {_cell(s.get('glass_to_gloss_p50_ms'))}/{_cell(s.get('glass_to_gloss_p90_ms'))} "
            f"({s.get('glosses_timed', 0)}) "
            f"| {_cell(s.get('sentence_final_p50_ms'))}/{_cell(s.get('sentence_final_p90_ms'))} "
            f"({s.get('sentences_timed', 0)}) | {_cell(s.get('extraction_ms_mean'), 1)} | {same} |"
        )
    lines += [
        "",
        "CPU % is process CPU time over wall time (100 = one core; above 100 the stages "
        "overlapped). Glass-to-gloss: from the capture of a gloss's last frame to the result that "
        "first shows the gloss; sentence end->final: from the capture of a sentence's last gloss "
        "frame to its final result (includes the pause that ends a sentence). RSS slope: least "
        "squares over the samples after the first fifth of the run. Part workers: threads for "
        "one frame's hands and face on an edge-slr engine, whose frames are also pipelined (one "
        "frame's hands and face run while the next frame's pose does), so its extraction "
        "ms/frame is the time from a frame's submission to its landmarks, not busy time.",
    ]
    return "\n".join(lines) + "\n"


def _worker() -> int:
    """``python -m edge_slr.benchmark.live``: one row; the job as JSON on stdin."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    job = json.loads(sys.stdin.read())
    row = measure_live_row(job)
    print(json.dumps(row.to_dict()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_worker())
