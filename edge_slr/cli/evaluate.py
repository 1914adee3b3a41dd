"""`edge-slr evaluate`: WER of a student checkpoint on a landmark dataset split."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate",
        help="decode a landmark dataset split with a student checkpoint and score it",
        description="Run a student checkpoint over a landmark dataset split, decode (greedy and "
        "beam search) and score with the official PHOENIX rules. Writes OUT/SPLIT.ctm (beam, with "
        "times), OUT/SPLIT.greedy.ctm, OUT/SPLIT.stm and OUT/SPLIT.wer.json (S/D/I breakdown).",
    )
    p.add_argument("--checkpoint", type=Path, required=True, metavar="FILE", help="student .pt")
    p.add_argument("--data", type=Path, required=True, metavar="DIR", help="landmark dataset")
    p.add_argument("--split", default="dev", help="split folder (default: dev)")
    p.add_argument("--beam", type=int, default=5, metavar="N", help="beam width; 0 = greedy only")
    p.add_argument("-o", "--out", type=Path, default=None, metavar="DIR", help="report folder")
    p.add_argument(
        "--corpus",
        default="",
        help="scoring rules (phoenix2014, phoenix2014t, csl-daily, plain); default: dataset.json",
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-samples", type=int, default=0, help="only the first N sentences")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_executor_arguments(p)
    from edge_slr.cli import evaluate_lm

    evaluate_lm.add_arguments(p)
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see training.train.prefer_passive_openmp
    from edge_slr.errors import InputError
    from edge_slr.training.evaluate_workers import evaluate_checkpoint_on_workers

    if args.beam < 0 or args.batch_size < 1 or args.max_samples < 0:
        raise InputError(
            f"--beam and --max-samples must be >= 0 and --batch-size >= 1, got {args.beam}, "
            f"{args.max_samples}, {args.batch_size}"
        )
    from edge_slr.cli import evaluate_lm

    executor = _executor_options(args)
    fused = evaluate_lm.fused_lm(args)  # None without --lm; tuned first with --tune-lm
    result = evaluate_checkpoint_on_workers(
        args.checkpoint,
        args.data,
        args.split,
        **executor,
        fused=fused,
        beam_width=args.beam,
        out_dir=args.out,
        corpus=args.corpus,
        batch_size=args.batch_size,
        max_samples=args.max_samples,
        progress=not args.no_progress,
    )
    print(f"greedy: {result.greedy.summary()}")
    if result.beam is not None:
        print(f"beam {args.beam}{' + LM' if fused else ''}: {result.beam.summary()}")
    if args.out is not None:
        print(f"reports in {args.out}")
    return 0


def _add_executor_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("large splits: evaluation on worker processes or a Ray cluster")
    g.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local: processes on this machine (default); ray: Ray actors (pip extra 'cluster')",
    )
    g.add_argument("--workers", type=int, default=1, help="processes or Ray actors (default 1)")
    g.add_argument("--threads-per-worker", type=int, default=1, help="threads of each worker")
    g.add_argument(
        "--ray-address",
        help="Ray cluster address ('auto': the running cluster; default: $RAY_ADDRESS, "
        "else a local Ray)",
    )
    g.add_argument("--retries", type=int, default=2, help="retries of a failed shard (default 2)")


def _executor_options(args: argparse.Namespace) -> dict[str, Any]:
    from edge_slr.errors import InputError

    for flag, value, least in (
        ("--workers", args.workers, 1),
        ("--threads-per-worker", args.threads_per_worker, 1),
        ("--retries", args.retries, 0),
    ):
        if value < least:
            raise InputError(f"{flag} must be >= {least}, got {value}")
    if args.ray_address is not None and args.executor != "ray":
        raise InputError("--ray-address needs --executor ray")
    return {
        "executor": args.executor,
        "workers": args.workers,
        "threads_per_worker": args.threads_per_worker,
        "ray_address": args.ray_address,
        "retries": args.retries,
    }
