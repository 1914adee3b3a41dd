"""`edge-slr train teacher`: train the CorrNet-style video teacher from a TOML config.

The lead's ``train`` group attaches this with ``train_teacher.add_parser(train_subparsers)``.
A second action, ``--cache``, precomputes a trained teacher's outputs for distillation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_slr.cli._training import add_run_arguments, prepare_run, print_result


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "teacher",
        help="train the CorrNet-style video teacher (for distillation into the student)",
        description="Train the video teacher from a TOML config (see configs/teacher-*.toml) on "
        "a dataset with video frames (edge-slr data synth --frames). Writes OUT/best.pt, "
        "OUT/last.pt, OUT/log.csv, OUT/curves.png and OUT/results.json. With --cache, "
        "precompute the outputs of a trained teacher (--checkpoint) for distillation instead.",
    )
    add_run_arguments(p, "--set train.epochs=5")
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="write a teacher output cache to DIR (needs --checkpoint and --data) and exit",
    )
    p.add_argument("--checkpoint", type=Path, default=None, help="trained teacher (for --cache)")
    p.add_argument("--data", type=Path, default=None, help="dataset folder (for --cache)")
    p.add_argument(
        "--splits", nargs="+", default=["train"], help="splits to cache (default: train)"
    )
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    overrides = prepare_run(args)
    from edge_slr.errors import InputError

    if args.cache is not None:
        if args.checkpoint is None or args.data is None:
            raise InputError("--cache needs --checkpoint (a trained teacher) and --data")
        from edge_slr._optional import require
        from edge_slr.cli._training import is_main_process
        from edge_slr.training.hardware import Hardware
        from edge_slr.training.teacher.cache import build_cache

        # On --device (under torchrun: each rank a share of the batches, rank 0 merges).
        hw = Hardware.create(require("torch", "teacher outputs"), args.device or "auto", "none")
        try:
            out = build_cache(
                args.checkpoint,
                args.data,
                args.cache,
                splits=args.splits,
                progress=not args.no_progress,
                hardware=hw,
            )
        finally:
            hw.close()
        if is_main_process():
            print(f"teacher outputs for {', '.join(args.splits)} cached in {out}")
        return 0

    from edge_slr.training.teacher.config import load_teacher_config
    from edge_slr.training.teacher.train import train_teacher

    config = load_teacher_config(args.config, overrides)
    print_result(train_teacher(config, resume=args.resume), config)
    return 0
