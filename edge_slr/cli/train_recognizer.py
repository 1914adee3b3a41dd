"""`edge-slr train recognizer`: train the landmark student (CTC) from a TOML config.

The lead's ``train`` group attaches this with ``train_recognizer.add_parser(train_subparsers)``.
"""

from __future__ import annotations

import argparse

from edge_slr.cli._training import add_run_arguments, prepare_run, print_result


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "recognizer",
        help="train the 1D-CNN + BiLSTM CTC student on a landmark dataset",
        description="Train the student recogniser from a TOML config (see configs/student-*.toml). "
        "Writes OUT/best.pt, OUT/last.pt, OUT/log.csv, OUT/curves.png and OUT/results.json.",
    )
    add_run_arguments(p, "--set train.epochs=5 --set data.root=DIR")
    p.add_argument(
        "--teacher",
        default=None,
        metavar="CKPT|CACHE",
        help="distil from a video teacher checkpoint or teacher output cache (sets "
        "distill.teacher; the paper's three KD losses unless [distill] switches some on)",
    )
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    overrides = prepare_run(args)
    import json

    from edge_slr.training.config import load_config
    from edge_slr.training.train import train

    if args.teacher is not None:
        overrides.append(f"distill.teacher={json.dumps(str(args.teacher))}")
        chosen = load_config(args.config, overrides).distill
        if not (chosen.conv_kd or chosen.lstm_kd):  # a teacher alone means: distil as the paper
            overrides += ["distill.conv_kd=true", "distill.lstm_kd=true", "distill.self_kd=true"]
    config = load_config(args.config, overrides)
    print_result(train(config, resume=args.resume), config)
    return 0
