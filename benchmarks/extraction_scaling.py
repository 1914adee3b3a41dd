"""Corpus extraction throughput: frames/s with 1 and 2 workers, local process pool and Ray.

Extraction runs on ``--engine`` (any HolisticOptions engine; default ``auto``: the fastest one
installed, the one ``edge-slr extract`` picks). A corpus of ``--copies`` copies of the real videos in ../shared/data (the AUTSL clip, 512x512,
43 frames; the webcam clip, 540x720, 58 frames) is extracted with ``run_batch`` once per
(executor, workers) pair into a fresh folder. Reported per run: wall time from the call to the
last output (worker start-up and model loading included), frames/s over that wall time, the
steady per-worker rate (frames / busy seconds of each worker) and, for Ray, its overhead
against the local pool with as many workers (the difference in wall time). From the steady
per-worker rate: the time PHOENIX-2014-T (8,257 videos, about 1 M frames; the exact count comes
from the corpus alignments in ../shared/data when present) would take on N workers.

Results go to benchmarks/results/extraction_scaling.json and .md (``--smoke``: *_smoke.*).

    python benchmarks/extraction_scaling.py [--engine auto] [--copies 8] [--workers 1 2]
        [--executors local ray]
    python benchmarks/extraction_scaling.py --smoke --results /tmp/out   # CI: a quick pass

Run on an idle machine: the numbers are only as quiet as the machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_slr._optional import is_available  # noqa: E402
from edge_slr.landmarks.batch import jobs_for_inputs, run_batch  # noqa: E402
from edge_slr.landmarks.extract import ENGINES, HolisticOptions  # noqa: E402
from edge_slr.paths import shared_data_dir  # noqa: E402
from edge_slr.system import machine_info  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
VIDEOS = ("video/autsl_signer0_sample1000_color.mp4", "video/webcam_signer.mp4")
PHOENIX_PNGS = "video/phoenix2014t-frames"
PHOENIX_ALIGN = "phoenix2014t/alignments/phoenix2014t.{split}.align.tsv"
PHOENIX_VIDEOS = 8257
PHOENIX_FRAMES_ESTIMATE = 1_000_000  # "about a million": only when the alignments are absent


def build_corpus(folder: Path, copies: int, data: Path | None, smoke: bool = False) -> int:
    """``copies`` copies of each shared video (or a generated clip without them); inputs made.

    ``smoke``: the two real PHOENIX frames as frame folders instead (a pass in seconds)."""
    frames = data / PHOENIX_PNGS if data is not None else None
    if smoke and frames is not None and frames.is_dir():
        for i in range(copies):
            target = folder / ("train", "dev")[i % 2] / f"clip-{i:03d}"
            target.mkdir(parents=True)
            for png in sorted(frames.glob("*.png")):
                shutil.copy(png, target / png.name)
        return copies
    sources = [data / v for v in VIDEOS if data is not None and (data / v).exists()]
    if not sources:
        sources = [_generated_clip(folder.parent / "generated.mp4")]
    for i in range(copies):
        for source in sources:
            split = ("train", "dev")[i % 2]
            (folder / split).mkdir(parents=True, exist_ok=True)
            shutil.copy(source, folder / split / f"{source.stem}-{i:03d}{source.suffix}")
    return len(sources) * copies


def _generated_clip(path: Path, frames: int = 8) -> Path:
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (256, 256))
    for i in range(frames):
        writer.write(np.full((256, 256, 3), 64 + 4 * i, np.uint8))
    writer.release()
    return path


def measure(
    corpus: Path, work: Path, executor: str, workers: int, threads: int, engine: str
) -> dict:
    out = work / f"out-{executor}-{workers}"
    jobs = jobs_for_inputs([corpus], out)
    start = time.perf_counter()
    summary = run_batch(
        jobs,
        HolisticOptions(engine=engine, threads=threads),
        executor=executor,
        workers=workers,
        threads_per_worker=threads,
        on_no_person="keep",  # a generated clip has nobody in it
        progress=False,
    )
    wall = time.perf_counter() - start
    totals = summary.to_dict()
    rates = [w["frames_per_second"] for w in totals["per_worker"].values()]
    return {
        "engine": engine,
        "executor": executor,
        "workers": workers,
        "threads_per_worker": threads,
        "videos": totals["done"],
        "failed": totals["failed"],
        "frames": totals["frames_extracted"],
        "wall_s": round(wall, 2),
        "frames_per_s": round(totals["frames_extracted"] / wall, 2),
        "per_worker_frames_per_s": round(sum(rates) / len(rates), 2) if rates else None,
    }


def start_ray(cpus: int) -> float:
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    return round(time.perf_counter() - start, 2)


def phoenix_frames(data: Path | None) -> tuple[int, str]:
    if data is None:
        return PHOENIX_FRAMES_ESTIMATE, "estimate"
    total = 0
    for split in ("train", "dev", "test"):
        path = data / PHOENIX_ALIGN.format(split=split)
        if not path.exists():
            return PHOENIX_FRAMES_ESTIMATE, "estimate"
        lines = path.read_text("utf-8").splitlines()[1:]
        total += sum(int(line.split("\t")[1]) for line in lines if line.strip())
    return total, "PHOENIX-2014-T alignments"


def report(rows: list[dict], frames: int, frames_from: str, engine: str) -> tuple[dict, str]:
    local = {r["workers"]: r for r in rows if r["executor"] == "local"}
    for row in rows:
        base = local.get(row["workers"])
        if row["executor"] == "ray" and base is not None:
            row["ray_overhead_s"] = round(row["wall_s"] - base["wall_s"], 2)
    rate = max((r["per_worker_frames_per_s"] or 0) for r in rows) if rows else 0
    projection = {
        n: round(frames / (rate * n) / 3600, 2) if rate else None for n in (1, 2, 8, 16, 64)
    }
    lines = [
        f"# Corpus extraction scaling (Holistic, complexity 1, engine {engine})",
        "",
        "| executor | workers | videos | frames | wall s | frames/s | per worker frames/s "
        "| Ray overhead s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['executor']} | {r['workers']} | {r['videos']} | {r['frames']} | {r['wall_s']} "
            f"| {r['frames_per_s']} | {r['per_worker_frames_per_s']} "
            f"| {r.get('ray_overhead_s', '')} |"
        )
    lines += [
        "",
        f"PHOENIX-2014-T: {frames} frames ({frames_from}), {PHOENIX_VIDEOS} videos. At the "
        f"best steady rate of {rate} frames/s per worker:",
        "",
        "| workers | hours |",
        "|---|---|",
        *[f"| {n} | {hours} |" for n, hours in projection.items()],
    ]
    payload = {
        "machine": machine_info().to_dict(),
        "engine": engine,
        "runs": rows,
        "phoenix2014t": {"frames": frames, "from": frames_from, "hours_on_n_workers": projection},
    }
    return payload, "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=8, help="copies of each shared video")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--executors", nargs="+", choices=("local", "ray"), default=None)
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument(
        "--engine",
        choices=("auto", *ENGINES),
        default="auto",
        help="extraction engine (default auto: the fastest installed, as edge-slr extract)",
    )
    parser.add_argument("--data", type=Path, default=None, help="shared data folder")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--smoke", action="store_true", help="one copy, a quick pass (CI)")
    args = parser.parse_args(argv)
    data = args.data or shared_data_dir()
    engine = HolisticOptions(engine=args.engine).engine  # "auto" resolved once, for the report
    print(f"extraction engine: {engine}", flush=True)
    executors = args.executors or (["local", "ray"] if is_available("ray") else ["local"])
    copies = 2 if args.smoke else args.copies
    worker_counts = [2] if args.smoke else args.workers
    rows, ray_start = [], None
    with tempfile.TemporaryDirectory(prefix="extraction-scaling-") as tmp:
        work = Path(tmp)
        build_corpus(work / "corpus", copies, data, smoke=args.smoke)
        for executor in executors:
            if executor == "ray":  # one local Ray for all its runs; its start is timed alone
                ray_start = start_ray(max(worker_counts) * args.threads_per_worker)
            for workers in worker_counts:
                threads = args.threads_per_worker
                row = measure(work / "corpus", work, executor, workers, threads, engine)
                print(json.dumps(row), flush=True)
                rows.append(row)
    frames, frames_from = phoenix_frames(data)
    payload, markdown = report(rows, frames, frames_from, engine)
    payload.update(smoke=args.smoke, ray_start_s=ray_start)
    if ray_start is not None:
        markdown += f"\nStarting the local Ray itself took {ray_start} s (not in the wall times).\n"
    name = "extraction_scaling_smoke" if args.smoke else "extraction_scaling"
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n", "utf-8")
    (args.results / f"{name}.md").write_text(markdown, "utf-8")
    print(markdown)
    return 0 if all(r["failed"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
