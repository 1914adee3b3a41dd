"""`edge-slr train recognizer`: train the landmark student (CTC) from a TOML config.

The lead's ``train`` group attaches this with ``train_recognizer.add_parser(train_subparsers)``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "recognizer",
        help="train the 1D-CNN + BiLSTM CTC student on a landmark dataset",
        description="Train the student recogniser from a TOML config (see configs/student-*.toml). "
        "Writes OUT/best.pt, OUT/last.pt, OUT/log.csv, OUT/curves.png and OUT/results.json.",
    )
    p.add_argument("--config", type=Path, default=None, metavar="FILE", help="TOML config file")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="TABLE.KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=5 --set data.root=DIR (repeatable)",
    )
    p.add_argument(
        "--teacher",
        default=None,
        metavar="CKPT|CACHE",
        help="distil from a video teacher checkpoint or teacher output cache (sets "
        "distill.teacher; the paper's three KD losses unless [distill] switches some on)",
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see training.train.prefer_passive_openmp
    import json
    import logging

    from edge_slr.training.config import load_config
    from edge_slr.training.train import train

    overrides = list(args.overrides)
    if args.no_progress:
        overrides.append("train.progress=false")
    if args.teacher is not None:
        overrides.append(f"distill.teacher={json.dumps(str(args.teacher))}")
        chosen = load_config(args.config, overrides).distill
        if not (chosen.conv_kd or chosen.lstm_kd):  # a teacher alone means: distil as the paper
            overrides += ["distill.conv_kd=true", "distill.lstm_kd=true", "distill.self_kd=true"]
    config = load_config(args.config, overrides)
    logging.getLogger("edge_slr").setLevel(min(logging.getLogger().level, logging.INFO))
    result = train(config, resume=args.resume)
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
