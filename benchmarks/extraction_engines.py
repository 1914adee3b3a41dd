"""Holistic landmark extraction per engine: MediaPipe's graph against its own models on
edge-slr's runtimes (edge_slr.landmarks.holistic), speed and agreement.

For every source (the AUTSL clip, the webcam clip, the PHOENIX frame folder) and every engine
(``mediapipe``: the Solutions graph; ``litert``, ``openvino``, ``openvino-int8``,
``onnxruntime``: HolisticEngineExtractor; ``litert+lite``, ``openvino-int8+lite``: the same
with the wheel's lite hand model) at 1 and 2 threads: single-stream frames/s over the
decoded frames (decoding is not timed; median of ``--repeats`` passes after one warm-up pass),
and agreement with the graph's own output on the same frames (per part: detection agreement and
mean |dx|, |dy| where both found it; issue 15 asks >= 95 % and <= 0.01, 0.015 for INT8 hands).
Threads are enforced twice: the engines get ``threads=N`` and the whole process is pinned to N
cores, since the MediaPipe graph has no thread option. With 2 cores the engines also run with
one thread per model and ``part_workers=2`` (the hands and face of a frame overlapped: the live
mode's setting). The machine header (CPU, flags, load) says how busy the machine was: timings
under load are inflated.

Also recorded: a per-stage profile of each engine at one thread (one more pass with
``HolisticPipeline.enable_profile()``: ms and calls per frame of each model, the crops, heatmap
refinement, smoothing, the rest; decoding measured apart), and the glosses the demo model
(``--model``, default ``runs/demo/models/*``) recognises from each engine's landmarks against
those from the graph's.

    python benchmarks/extraction_engines.py                       # everything (several minutes)
    python benchmarks/extraction_engines.py --engines mediapipe,openvino-int8 --threads 1
    python benchmarks/extraction_engines.py --cache ~/.cache/edge-slr/holistic  # reuse builds
    python benchmarks/extraction_engines.py --smoke --results /tmp/out   # CI: one clip, 8 frames

Results: benchmarks/results/extraction_engines.{json,md} (``--smoke``: *_smoke.*).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_slr.benchmark.machine import describe_machine  # noqa: E402
from edge_slr.errors import EdgeSLRError  # noqa: E402
from edge_slr.landmarks.extract import (  # noqa: E402
    HolisticExtractor,
    HolisticOptions,
    compare_landmarks,
)
from edge_slr.landmarks.sequence import LandmarkSequence  # noqa: E402
from edge_slr.landmarks.video import open_frames  # noqa: E402
from edge_slr.paths import shared_data_dir  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SOURCES = (
    "video/autsl_signer0_sample1000_color.mp4",
    "video/webcam_signer.mp4",
    "video/phoenix2014t-frames",
)
# "ENGINE+lite": the engine with the wheel's lite hand model (HolisticOptions(hand_model="lite"))
ENGINES = ("mediapipe", "litert", "openvino", "openvino-int8", "onnxruntime", "litert+lite",
           "openvino-int8+lite")  # fmt: skip


def split_engine(name: str) -> tuple[str, str]:
    """``"ENGINE"`` or ``"ENGINE+lite"`` -> (engine, hand model)."""
    engine, plus, hand = name.partition("+")
    return engine, hand if plus else "full"


PARTS = ("pose", "face", "left_hand", "right_hand")
CALIBRATION = ("video/webcam_signer.mp4",)  # INT8 calibration: not the AUTSL clip it is scored on


@contextmanager
def pinned(threads: int):
    """Restrict the process to ``threads`` cores (where the OS allows it)."""
    if not hasattr(os, "sched_getaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    cores = sorted(before)[:threads]
    os.sched_setaffinity(0, cores)
    try:
        yield cores
    finally:
        os.sched_setaffinity(0, before)


def configs(engine: str, threads: list[int], part_workers: int) -> list[tuple[int, int, int, bool]]:
    """(cores, engine threads, part workers, pipelined) to run ``engine`` at."""
    out = [(t, t, 1, False) for t in threads]
    if engine != "mediapipe" and part_workers > 1 and max(threads) >= part_workers:
        out += [(part_workers, 1, part_workers, False), (part_workers, 1, part_workers, True)]
    return out


def make_extractor(
    engine: str, threads: int, cache: Path, calibration: Any, part_workers: int = 1
) -> Any:
    if engine == "mediapipe":
        return HolisticExtractor.create_from_options(HolisticOptions())
    from edge_slr.landmarks.holistic import HolisticEngineExtractor

    engine, hand_model = split_engine(engine)
    extra = {"calibration": calibration} if engine == "openvino-int8" else {}
    return HolisticEngineExtractor.create_from_options(
        HolisticOptions(engine=engine, part_workers=part_workers, hand_model=hand_model),
        engine=engine,
        cache_dir=cache,
        threads=threads,
        **extra,
    )


def run_frames(
    extractor: Any, frames: list[np.ndarray], fps: float, pipelined: bool = False
) -> np.ndarray:
    """One pass over the frames in video mode, tracking from the first frame. ``pipelined``:
    ``submit_video_frame`` with one frame in flight (as a live loop would run it)."""
    extractor.reset()
    stamps = [int(round(i * 1000 / fps)) for i in range(len(frames))]
    if not pipelined:
        rows = [extractor.extract_video_frame(f, t) for f, t in zip(frames, stamps, strict=True)]
    else:
        rows, pending = [], None
        for frame, stamp in zip(frames, stamps, strict=True):
            future = extractor.submit_video_frame(frame, stamp)
            if pending is not None:
                rows.append(pending.result())
            pending = future
        rows.append(pending.result())
    extractor.reset()
    return np.stack(rows)


def measure(
    extractor: Any, frames: list[np.ndarray], fps: float, repeats: int, pipelined: bool = False
) -> tuple:
    data = run_frames(extractor, frames, fps, pipelined)  # warm-up, also the landmarks compared
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_frames(extractor, frames, fps, pipelined)
        times.append(time.perf_counter() - start)
    return data, len(frames) / statistics.median(times)


def stage_profile(extractor: Any, frames: list[np.ndarray], fps: float) -> list[dict]:
    """One more pass with the pipeline's stage profile on (edge-slr engines only)."""
    pipeline = extractor.pipeline
    profile = pipeline.enable_profile()
    try:
        run_frames(extractor, frames, fps)
    finally:
        pipeline.profile = None
    return profile.rows()


def load_clips(args: argparse.Namespace, sources: list[Path]) -> dict[Path, tuple]:
    """Decoded frames, fps and decoding ms per frame of each source."""
    clips = {}
    for source in sources:
        start = time.perf_counter()
        opened = open_frames(source)
        frames = list(opened.frames())[: args.max_frames]
        decode_ms = 1000.0 * (time.perf_counter() - start) / max(1, len(frames))
        clips[source] = (frames, float(opened.fps), round(decode_ms, 3))
    return clips


def agreement(ours: np.ndarray, graph: np.ndarray, fps: float) -> dict[str, dict]:
    a, b = LandmarkSequence(ours, fps=fps), LandmarkSequence(graph, fps=fps)
    parts = compare_landmarks(a, b, PARTS)
    parts["pose (visibility > 0.5)"] = compare_landmarks(a, b, ("pose",), 0.5)["pose"]
    return {name: vars(result) for name, result in parts.items()}


def benchmark(args: argparse.Namespace, cache: Path) -> dict[str, Any]:
    sources = [args.data / s for s in (SOURCES[:1] if args.smoke else SOURCES)]
    sources = [s for s in sources if s.exists()]
    calibration = None
    if any(split_engine(e)[0] == "openvino-int8" for e in args.engines):
        from edge_slr.landmarks.holistic.quantize import calibration_set

        calibration = calibration_set([args.data / s for s in CALIBRATION], cache_dir=cache)
    clips = load_clips(args, sources)
    runs: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    landmarks: dict[tuple[str, Path], np.ndarray] = {}  # (engine, source) at the first config
    profiles: list[dict[str, Any]] = []
    for engine in args.engines:
        for config in configs(engine, args.threads, args.part_workers):
            cores_wanted, threads, workers, pipelined = config
            if engine in skipped:
                break
            with pinned(cores_wanted) as cores:
                try:
                    extractor = make_extractor(engine, threads, cache, calibration, workers)
                except EdgeSLRError as err:  # an engine or converter missing here: say so
                    skipped[engine] = str(err)
                    print(f"{engine}: skipped ({err})", file=sys.stderr)
                    continue
                try:
                    for source, (frames, fps, decode_ms) in clips.items():
                        name = str(source.relative_to(args.data))
                        data, speed = measure(extractor, frames, fps, args.repeats, pipelined)
                        landmarks.setdefault((engine, source), data)
                        reference = landmarks.get(("mediapipe", source))
                        runs.append(
                            {
                                "source": name,
                                "frames": len(frames),
                                "size": f"{frames[0].shape[1]}x{frames[0].shape[0]}",
                                "engine": engine,
                                "threads": threads,
                                "part_workers": workers,
                                "pipelined": pipelined,
                                "cores": cores,
                                "frames_per_s": round(speed, 2),
                                "agreement": None
                                if reference is None or engine == "mediapipe"
                                else agreement(data, reference, fps),
                            }
                        )
                        print(f"{name} {engine} {config}: {speed:.1f} frames/s")
                        if engine != "mediapipe" and config == (1, 1, 1, False):
                            rows = stage_profile(extractor, frames, fps)
                            profiles.append(
                                {"source": name, "engine": engine, "decode_ms": decode_ms,
                                 "stages": rows}
                            )  # fmt: skip
                finally:
                    extractor.close()
    throughput = (
        {} if args.smoke or not args.batch else many_streams(args, cache, calibration, skipped)
    )
    glosses = recognition(args, clips, landmarks)
    return {
        "runs": runs,
        "skipped": skipped,
        "throughput": throughput,
        "profiles": profiles,
        "glosses": glosses,
    }


def demo_model(args: argparse.Namespace) -> Path | None:
    if args.model is not None:
        return args.model
    found = sorted((ROOT / "runs" / "demo" / "models").glob("*/student*.json"))
    return found[0].parent if found else None


def recognition(
    args: argparse.Namespace, clips: dict[Path, tuple], landmarks: dict[tuple[str, Path], Any]
) -> dict[str, Any]:
    """Glosses of the demo model from each engine's landmarks against the graph's."""
    model = demo_model(args)
    if model is None or not model.is_dir():
        return {"skipped": "no demo model (make demo, or --model DIR)"}
    from edge_slr import Recognizer

    rows = []
    with Recognizer.create_from_model_dir(model) as recognizer:
        for source, (_, fps, _) in clips.items():
            expected = None
            for engine in args.engines:
                data = landmarks.get((engine, source))
                if data is None:
                    continue
                try:
                    glosses: Any = list(recognizer.recognize_landmarks(data, fps=fps).recognized)
                except EdgeSLRError as err:  # e.g. a clip shorter than the model's window
                    glosses = f"not recognised: {err}"
                same = None if expected is None else glosses == expected
                if engine == "mediapipe":
                    expected, same = glosses, None  # the reference itself
                rows.append(
                    {
                        "source": str(source.relative_to(args.data)),
                        "engine": engine,
                        "glosses": glosses,
                        "same_as_graph": same,
                    }
                )
    return {"model": str(model), "rows": rows}


def many_streams(args: argparse.Namespace, cache: Path, calibration: Any, skipped: dict) -> dict:
    """Frames/s of ``extract_many`` (2 workers, 1 thread each) over every source, twice."""
    from edge_slr.landmarks.holistic import extract_many

    sources = [args.data / s for s in SOURCES if (args.data / s).exists()] * 2
    frames = sum(sum(1 for _ in open_frames(s).frames()) for s in sources)
    out = {}
    for engine in args.engines:
        if engine == "mediapipe" or engine in skipped:
            continue
        base, hand_model = split_engine(engine)
        extra = {"calibration": calibration} if base == "openvino-int8" else {}
        extra["options"] = HolisticOptions(engine=base, hand_model=hand_model)
        extract_many(sources[:2], engine=base, workers=2, cache_dir=cache, **extra)  # builds
        start = time.perf_counter()
        extract_many(sources, engine=base, workers=2, cache_dir=cache, **extra)
        out[engine] = round(frames / (time.perf_counter() - start), 2)
        print(f"extract_many {engine} (2 workers x 1 thread): {out[engine]} frames/s")
    return out


def markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        "# Holistic extraction per engine",
        "",
        f"{machine['cpu_model']}, {machine['usable_cpus']} cores, load average "
        f"{machine['load_average']} at start (above the core count, timings are inflated). "
        "Single stream, video mode, decoding not timed; threads = engine threads and cores the "
        "process is pinned to; cores / threads / parts: cores the process may use, threads per "
        "model, part workers (hands and face of a frame overlapped); pipelined: "
        "`submit_video_frame`, one frame's hands and face overlapping the next one's pose (the "
        "live mode's choice). x graph: against the graph "
        "on as many cores. Agreement is with MediaPipe's graph on the same frames.",
        "",
        "| source | frames | engine | cores / threads / parts | frames/s | x graph | "
        "pose agr / err | left hand agr / err | right hand agr / err | face agr / err |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = {
        (r["source"], len(r["cores"] or [r["threads"]])): r["frames_per_s"]
        for r in report["runs"]
        if r["engine"] == "mediapipe"
    }
    for r in report["runs"]:
        cores = len(r["cores"] or [r["threads"]])
        ratio = base.get((r["source"], cores))
        ratio_text = "-" if not ratio else f"{r['frames_per_s'] / ratio:.2f}"
        cells = []
        for part in ("pose", "left_hand", "right_hand", "face"):
            a = (r["agreement"] or {}).get(part)
            if a is None:
                cells.append("-")
            else:
                err = "-" if a["mean_abs_error"] is None else f"{a['mean_abs_error']:.4f}"
                cells.append(f"{a['agreement']:.3f} / {err}")
        lines.append(
            f"| {r['source']} | {r['frames']} | {r['engine']} | "
            f"{cores} / {r['threads']} / {r.get('part_workers', 1)}"
            f"{' pipelined' if r.get('pipelined') else ''} | "
            f"{r['frames_per_s']} | {ratio_text} | " + " | ".join(cells) + " |"
        )
    if report.get("throughput"):
        head = "| engine | extract_many, 2 workers x 1 thread, model loading included: frames/s |"
        lines += ["", head, "|---|---|"]
        lines += [f"| {e} | {fps} |" for e, fps in report["throughput"].items()]
    lines += profile_markdown(report.get("profiles", []))
    lines += glosses_markdown(report.get("glosses", {}))
    for engine, reason in report.get("skipped", {}).items():
        lines.append(f"\n{engine} skipped: {reason}")
    return "\n".join(lines) + "\n"


def profile_markdown(profiles: list[dict[str, Any]]) -> list[str]:
    """Per source, one row per stage and one column per engine: ms per frame (calls)."""
    lines: list[str] = []
    for source in dict.fromkeys(p["source"] for p in profiles):
        chosen = [p for p in profiles if p["source"] == source]
        engines = [p["engine"] for p in chosen]
        stages = list(dict.fromkeys(r["stage"] for p in chosen for r in p["stages"]))
        lines += [
            "",
            f"Where the time goes, {source}: one thread, one part worker, single stream; ms "
            "per frame (calls per frame, share of the total). Decoding, not in the total: "
            f"{chosen[0]['decode_ms']:.1f} ms per frame.",
            "",
            "| stage | " + " | ".join(engines) + " |",
            "|---|" + "---|" * len(engines),
        ]
        for stage in stages:
            cells = []
            for p in chosen:
                row = next((r for r in p["stages"] if r["stage"] == stage), None)
                cells.append(
                    "-" if row is None else
                    f"{row['ms_per_frame']:.2f} ({row['calls_per_frame']:g}, {row['share']:.0%})"
                )  # fmt: skip
            lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return lines


def glosses_markdown(glosses: dict[str, Any]) -> list[str]:
    if not glosses:
        return []
    if "skipped" in glosses:
        return ["", f"Recognition check skipped: {glosses['skipped']}."]
    lines = [
        "",
        f"Glosses of the demo model (`{Path(glosses['model']).name}`) from each engine's "
        "landmarks (first configuration), against those from the graph's:",
        "",
        "| source | engine | glosses | same as graph |",
        "|---|---|---|---|",
    ]
    for row in glosses["rows"]:
        same = {None: "-", True: "yes", False: "**no**"}[row["same_as_graph"]]
        glosses = row["glosses"]
        text = glosses if isinstance(glosses, str) else " ".join(glosses) or "(none)"
        lines.append(f"| {row['source']} | {row['engine']} | {text} | {same} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir(), help="../shared/data")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument(
        "--part-workers", type=int, default=2, help="also run the engines with this many part "
        "workers at one thread per model on as many cores (1: don't)"
    )  # fmt: skip
    parser.add_argument(
        "--batch", action=argparse.BooleanOptionalAction, default=True,
        help="measure extract_many (several videos in flight)",
    )  # fmt: skip
    parser.add_argument("--model", type=Path, default=None, help="recogniser for the gloss check")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per measurement")
    parser.add_argument("--max-frames", type=int, default=None, help="frames per source")
    parser.add_argument("--cache", type=Path, default=None, help="model cache (default: temp)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="results folder")
    parser.add_argument(
        "--smoke", action="store_true", help="AUTSL clip, 8 frames, graph + litert, 1 thread"
    )
    args = parser.parse_args()
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    args.threads = [int(t) for t in args.threads.split(",") if t.strip()]
    unknown = sorted(set(args.engines) - set(ENGINES))
    if unknown or not args.engines or not args.threads or min(args.threads) < 1:
        parser.error(f"engines must be among {ENGINES} and threads positive, got {unknown}")
    if args.smoke:
        args.engines, args.threads, args.repeats, args.max_frames = (
            ["mediapipe", "litert"],
            [1],
            1,
            8,
        )
    if args.data is None or not (args.data / SOURCES[0]).exists():
        print(f"needs {SOURCES[0]} under --data (../shared/data)", file=sys.stderr)
        return 2
    if "mediapipe" in args.engines:  # the reference runs first at every thread count
        args.engines = ["mediapipe"] + [e for e in args.engines if e != "mediapipe"]
    machine = describe_machine()
    with tempfile.TemporaryDirectory(prefix="holistic-models-") as temp:
        report = {"machine": machine, "smoke": args.smoke, "engines": args.engines}
        report.update(benchmark(args, args.cache or Path(temp)))
    name = "extraction_engines_smoke" if args.smoke else "extraction_engines"
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{name}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    text = markdown(report)
    (args.results / f"{name}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
