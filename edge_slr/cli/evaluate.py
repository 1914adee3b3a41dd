"""`edge-slr evaluate`: WER of a student checkpoint on a landmark dataset split."""

from __future__ import annotations

import argparse
from pathlib import Path


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
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see training.train.prefer_passive_openmp
    from edge_slr.errors import InputError
    from edge_slr.training.evaluate import evaluate_checkpoint

    if args.beam < 0 or args.batch_size < 1 or args.max_samples < 0:
        raise InputError(
            f"--beam and --max-samples must be >= 0 and --batch-size >= 1, got {args.beam}, "
            f"{args.max_samples}, {args.batch_size}"
        )
    result = evaluate_checkpoint(
        args.checkpoint,
        args.data,
        args.split,
        beam_width=args.beam,
        out_dir=args.out,
        corpus=args.corpus,
        batch_size=args.batch_size,
        max_samples=args.max_samples,
        progress=not args.no_progress,
    )
    print(f"greedy: {result.greedy.summary()}")
    if result.beam is not None:
        print(f"beam {args.beam}: {result.beam.summary()}")
    if args.out is not None:
        print(f"reports in {args.out}")
    return 0
