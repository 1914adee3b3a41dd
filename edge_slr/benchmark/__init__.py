"""``edge-slr benchmark``: speed, memory, size and accuracy of converted models, Ultralytics style.

    from edge_slr.benchmark import benchmark_models

    report = benchmark_models(["models/"], data_dir=Path("data/"), split="test")
    print(report.format_table())
    report.to_json("benchmark.json")

One row per model file x runtime (format and precision come from the model's sidecar): size,
WER on a landmark dataset split (through :class:`~edge_slr.Recognizer`, official scorer),
batch-1 latency p50/p90 at several input lengths, frames/s, peak RSS and load time, each row
measured in a fresh process. The report adds the machine (CPU, SIMD flags, cores, engine
versions), INT8 vs FP32 frames/s per runtime, the student's analytic FLOPs per frame and the share
of the CPU's (assumed) peak FLOP/s it reaches. Only numpy is imported here; engines load per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edge_slr.benchmark.harness import Progress, run_benchmark
from edge_slr.benchmark.report import BenchmarkReport, BenchmarkRow, BenchmarkSettings, Latency

__all__ = [
    "BenchmarkReport",
    "BenchmarkRow",
    "BenchmarkSettings",
    "Latency",
    "benchmark_models",
]


def benchmark_models(
    model_dirs: Sequence[Path],
    *,
    runtimes: Sequence[str] | None = None,
    lengths: Sequence[int] = (50, 100, 200),
    data_dir: Path | None = None,
    split: str = "test",
    threads: int | None = None,
    floor_wer: float | None = None,
    max_sentences: int | None = None,
    warmup: int = 3,
    runs: int = 20,
    beam_width: int = 1,
    video: Path | None = None,
    isolate: bool = True,
    progress: Progress | None = None,
    engines: Sequence[str] = ("mediapipe",),
) -> BenchmarkReport:
    """Benchmark every converted student model in ``model_dirs``.

    ``runtimes``: run each model on these (those that load its file type); None: on the engine
    its sidecar names. ``lengths``: input frames of the batch-1 latency probes. ``data_dir`` /
    ``split``: a landmark dataset whose split is recognised for the WER (``max_sentences``: only
    the first N). ``floor_wer`` (percent): rows above it are marked failed. ``video``: also run
    the whole pipeline (landmark extraction on each of ``engines``, recognition, correction) on
    it. ``isolate``: one
    fresh process per row (honest load time and peak RSS); False measures in this process.
    ``progress`` receives one line per step. InputError for a missing directory, an unknown
    runtime or bad options; a model that fails to load or run becomes a failed row.
    """
    if isinstance(model_dirs, (str, Path)):
        model_dirs = [model_dirs]
    settings = BenchmarkSettings(
        lengths=tuple(lengths),
        warmup=warmup,
        runs=runs,
        threads=threads,
        data_dir=None if data_dir is None else str(data_dir),
        split=split,
        max_sentences=max_sentences,
        beam_width=beam_width,
        floor_wer=floor_wer,
        isolate=isolate,
    )
    dirs = [Path(d) for d in model_dirs]
    video_path = None if video is None else Path(video)
    return run_benchmark(dirs, settings, runtimes, video_path, progress, tuple(engines))
