"""`edge-slr train recognizer`: train the landmark student (CTC) from a TOML config.

The lead's ``train`` group attaches this with ``train_recognizer.add_parser(train_subparsers)``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_slr.cli._training import add_run_arguments, prepare_run, print_result
from edge_slr.errors import InputError


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
    p.add_argument(
        "--qat",
        action="store_true",
        help="quantization-aware fine-tune of the student in --init for the openvino-int8-qat "
        "target (default OUT: INIT_DIR/qat, 3 epochs at a tenth of the learning rate; --config "
        "defaults to the one stored in --init)",
    )
    p.add_argument("--init", type=Path, default=None, metavar="CKPT", help="student for --qat")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.qat != (args.init is not None) or (args.qat and args.teacher is not None):
        raise InputError(
            "--qat and --init go together (a QAT fine-tune of a trained student) and take no "
            f"--teacher; got --qat {args.qat}, --init {args.init}, --teacher {args.teacher}"
        )
    overrides = prepare_run(args)
    if args.qat:
        from edge_slr.training.qat_train import qat_config, train_qat

        config = qat_config(args.init, args.config, overrides)
        print_result(train_qat(config, args.init, resume=args.resume), config)
        return 0
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
