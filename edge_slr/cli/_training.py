"""Arguments and output shared by the `edge-slr train` commands of the student and the teacher."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any


def add_run_arguments(p: argparse.ArgumentParser, set_example: str) -> None:
    """``--config``, ``--set`` (``set_example`` in its help), ``--resume``, ``--no-progress``."""
    p.add_argument("--config", type=Path, default=None, metavar="FILE", help="TOML config file")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="TABLE.KEY=VALUE",
        help=f"override a config value, e.g. {set_example} (repeatable)",
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def prepare_run(args: argparse.Namespace) -> list[str]:
    """Set up logging and OpenMP for training; the ``--set`` overrides (with --no-progress)."""
    import logging

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see training.loop.prefer_passive_openmp
    logging.getLogger("edge_slr").setLevel(min(logging.getLogger().level, logging.INFO))
    overrides = list(args.overrides)
    if args.no_progress:
        overrides.append("train.progress=false")
    return overrides


def print_result(result: Any, config: Any) -> None:
    """The best epoch, the dev/test WER of the best checkpoint and where the run is."""
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
