"""`edge-slr train teacher`: train the CorrNet-style video teacher from a TOML config.

The lead's ``train`` group attaches this with ``train_teacher.add_parser(train_subparsers)``.
A second action, ``--cache``, precomputes a trained teacher's outputs for distillation.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "teacher",
        help="train the CorrNet-style video teacher (for distillation into the student)",
        description="Train the video teacher from a TOML config (see configs/teacher-*.toml) on "
        "a dataset with video frames (edge-slr data synth --frames). Writes OUT/best.pt, "
        "OUT/last.pt, OUT/log.csv, OUT/curves.png and OUT/results.json. With --cache, "
        "precompute the outputs of a trained teacher (--checkpoint) for distillation instead.",
    )
    p.add_argument("--config", type=Path, default=None, metavar="FILE", help="TOML config file")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="TABLE.KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=5 (repeatable)",
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
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
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see training.train.prefer_passive_openmp
    import logging

    from edge_slr.errors import InputError

    logging.getLogger("edge_slr").setLevel(min(logging.getLogger().level, logging.INFO))
    if args.cache is not None:
        if args.checkpoint is None or args.data is None:
            raise InputError("--cache needs --checkpoint (a trained teacher) and --data")
        from edge_slr.training.teacher.cache import build_cache

        out = build_cache(
            args.checkpoint,
            args.data,
            args.cache,
            splits=args.splits,
            progress=not args.no_progress,
        )
        print(f"teacher outputs for {', '.join(args.splits)} cached in {out}")
        return 0

    from edge_slr.training.teacher.config import load_teacher_config
    from edge_slr.training.teacher.train import train_teacher

    overrides = list(args.overrides)
    if args.no_progress:
        overrides.append("train.progress=false")
    config = load_teacher_config(args.config, overrides)
    result = train_teacher(config, resume=args.resume)
    print(f"best epoch {result.best_epoch}: dev WER {100 * result.best_dev_wer:.2f}%")
    for split in (config.data.dev_split, config.data.test_split):
        scores = result.results.get(split)
        if scores:
            beam = scores["wer_beam"]
            beam_text = "" if beam is None else f", beam {100 * beam:.2f}%"
            print(
                f"{split}: greedy {100 * scores['wer_greedy']:.2f}%{beam_text} "
                f"(S {scores['substitutions']} D {scores['deletions']} I {scores['insertions']} "
                f"of {scores['reference_glosses']})"
            )
    print(f"checkpoints and logs in {result.out_dir}")
    return 0
