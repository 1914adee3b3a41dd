"""`edge-slr benchmark`: speed, memory, size and WER of converted models, one table per machine.

Imports only the standard library at top level; the harness loads each engine in a fresh
process per row, so this runs on a device install with a single engine extra.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated frame counts such as 50,100,200, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive frame counts, got {text!r}")
    return values


def _name_list(text: str) -> list[str]:
    return [part for part in text.replace(" ", "").split(",") if part]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "benchmark",
        help="benchmark converted models: size, WER, latency, frames/s, memory, load time",
        description="Benchmark every converted student model in the model directories "
        "(Ultralytics style): one row per model x runtime x precision with size, WER on a "
        "landmark dataset split, batch-1 latency p50/p90 per input length, frames/s, peak RSS "
        "and load time, each row measured in a fresh process; the machine (CPU, SIMD flags, "
        "cores, engine versions) in the header; INT8 vs FP32 frames/s per runtime, the "
        "student's FLOPs per frame and the share of the CPU's assumed peak FLOP/s. "
        "Exit status 1 when a row failed (see the legend under the table). "
        "--compare merges result files of several machines into one table and plot.",
    )
    p.add_argument("model_dirs", nargs="*", type=Path, metavar="MODEL_DIR",
                   help="folders filled by `edge-slr convert ... -o DIR`")  # fmt: skip
    p.add_argument("--runtimes", type=_name_list, default=None, metavar="LIST",
                   help="comma-separated runtimes to run each model on (those that load its "
                   "file type); default: the engine each model was converted for")  # fmt: skip
    p.add_argument("--lengths", type=_int_list, default=[50, 100, 200], metavar="LIST",
                   help="input lengths in frames for the latency probes (default 50,100,200)")  # fmt: skip
    p.add_argument("--data", type=Path, default=None, metavar="DIR",
                   help="landmark dataset (as `edge-slr evaluate` reads) to measure WER on")  # fmt: skip
    p.add_argument("--split", default="test", help="dataset split for the WER (default test)")
    p.add_argument("--max-sentences", type=int, default=None, metavar="N",
                   help="WER on the first N sentences of the split only")  # fmt: skip
    p.add_argument("--beam", type=int, default=1, metavar="N",
                   help="CTC beam width for the WER (default 1: greedy)")  # fmt: skip
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="engine intra-op threads (default: the engine's own default)")  # fmt: skip
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per length (default 3)")
    p.add_argument("--runs", type=int, default=20, help="timed calls per length (default 20)")
    p.add_argument("--floor-wer", type=float, default=None, metavar="X",
                   help="mark rows whose WER is above X percent as failed (needs --data)")  # fmt: skip
    p.add_argument("--video", type=Path, default=None, metavar="FILE",
                   help="also run the whole pipeline on a video: MediaPipe extraction, "
                   "recognition, correction, end-to-end real-time factor")  # fmt: skip
    p.add_argument("--in-process", action="store_true",
                   help="measure in this process instead of a fresh one per row (faster; "
                   "peak RSS and load time are then not per row)")  # fmt: skip
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the JSON")
    p.add_argument("--markdown", type=Path, default=None, metavar="FILE",
                   help="write the table as markdown")  # fmt: skip
    p.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                   help="write a PNG plot (needs matplotlib: the train extra)")  # fmt: skip
    p.add_argument("--label", default="", help="this machine's name in comparisons")
    p.add_argument("--compare", nargs="+", type=Path, default=None, metavar="JSON",
                   help="merge benchmark JSON files (several machines) into one table")  # fmt: skip
    p.add_argument("--live", type=Path, default=None, metavar="VIDEO",
                   help="live mode instead: play VIDEO looped at its own frame rate through the "
                   "live pipeline (extraction and recognition on two workers), one row per "
                   "--engines entry: sustained fps, dropped frames, CPU use, RSS over the run, "
                   "latency p50/p90 (glass-to-gloss, sentence end to final); one MODEL_DIR")  # fmt: skip
    p.add_argument("--engines", type=_name_list, default=["mediapipe"], metavar="LIST",
                   help="--live and --video: landmark extraction engines, one row each, comma-separated "
                   "(default mediapipe)")  # fmt: skip
    p.add_argument("--loop-seconds", type=float, default=60.0, metavar="S",
                   help="--live: video time to play, the clip looped (default 60)")  # fmt: skip
    p.add_argument("--warmup-seconds", type=float, default=2.0, metavar="S",
                   help="--live: video time played first and not counted (default 2)")  # fmt: skip
    p.add_argument("--drop-policy", choices=("skip-oldest", "block"), default="skip-oldest",
                   help="--live: when extraction falls behind, drop the oldest waiting frame "
                   "(counted; a camera) or wait (default skip-oldest)")  # fmt: skip
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from edge_slr.errors import InputError

    if args.compare:
        if args.model_dirs:
            raise InputError("give either MODEL_DIR... or --compare JSON..., not both")
        return _compare(args)
    if args.live is not None:
        return _live(args)
    if not args.model_dirs:
        raise InputError("give at least one MODEL_DIR (or --compare JSON...)")
    if args.plot is not None:  # fail before measuring, not after
        from edge_slr._optional import require

        require("matplotlib", "benchmark plots (--plot)")
    from edge_slr.benchmark import benchmark_models

    report = benchmark_models(
        args.model_dirs,
        runtimes=args.runtimes,
        lengths=args.lengths,
        data_dir=args.data,
        split=args.split,
        threads=args.threads,
        floor_wer=args.floor_wer,
        max_sentences=args.max_sentences,
        warmup=args.warmup,
        runs=args.runs,
        beam_width=args.beam,
        video=args.video,
        isolate=not args.in_process,
        engines=args.engines,
        progress=_say,
    )
    if args.label:
        report = replace(report, label=args.label)
    print(report.format_table())
    _write(report.to_dict(), report.to_markdown(), args, lambda path: report.plot(path))
    return 1 if report.failed else 0


def _compare(args: argparse.Namespace) -> int:
    import json
    from dataclasses import replace

    from edge_slr.benchmark.plot import plot_reports
    from edge_slr.benchmark.report import BenchmarkReport
    from edge_slr.benchmark.tables import format_comparison

    reports = [BenchmarkReport.load(path) for path in args.compare]
    labels = [r.label or r.to_dict()["label"] for r in reports]
    if len(set(labels)) < len(labels):  # the same machine twice: tell them apart by file name
        reports = [replace(r, label=f"{label} ({path.stem})")
                   for r, label, path in zip(reports, labels, args.compare, strict=True)]  # fmt: skip
    print(format_comparison(reports))
    merged = {"schema": "edge-slr-benchmark-comparison", "reports": [r.to_dict() for r in reports]}
    if args.json is not None:
        args.json.write_text(json.dumps(merged, indent=1) + "\n", encoding="utf-8")
        print(f"JSON: {args.json}")
    if args.markdown is not None:
        args.markdown.write_text(format_comparison(reports, markdown=True), encoding="utf-8")
        print(f"markdown: {args.markdown}")
    if args.plot is not None:
        print(f"plot: {plot_reports(reports, args.plot)}")
    return 0


def _live(args: argparse.Namespace) -> int:
    from edge_slr.errors import InputError

    if len(args.model_dirs) != 1:
        raise InputError(f"--live takes exactly one MODEL_DIR, got {len(args.model_dirs)}")
    if args.plot is not None:
        raise InputError("--plot is not available with --live (use --json / --markdown)")
    from edge_slr.benchmark.live import benchmark_live

    report = benchmark_live(
        args.model_dirs[0],
        args.live,
        engines=args.engines,
        loop_seconds=args.loop_seconds,
        warmup_s=args.warmup_seconds,
        runtime=args.runtimes[0] if args.runtimes else None,
        threads=args.threads,
        drop_policy=args.drop_policy,
        isolate=not args.in_process,
        progress=_say,
    )
    markdown = report.to_markdown()
    print(markdown)
    _write(report.to_dict(), markdown, args, plot=None)
    return 1 if report.failed else 0


def _write(data: dict, markdown: str, args: argparse.Namespace, plot) -> None:  # noqa: ANN001
    import json

    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"JSON: {args.json}")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown, encoding="utf-8")
        print(f"markdown: {args.markdown}")
    if args.plot is not None:
        print(f"plot: {plot(args.plot)}")


def _say(line: str) -> None:
    import sys

    print(line, file=sys.stderr, flush=True)
