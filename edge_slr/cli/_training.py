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
    add_device_arguments(p)


def add_device_arguments(p: argparse.ArgumentParser, torchrun: bool = True) -> None:
    """``--device`` and ``--amp`` (set train.device / train.amp)."""
    more = (
        " Several GPUs or nodes: the same command under torchrun --nproc-per-node N -m edge_slr"
        if torchrun
        else ""
    )
    p.add_argument(
        "--device",
        default=None,
        metavar="auto|cpu|cuda|cuda:N",
        help=f"where to train (train.device; default auto: CUDA when torch sees it).{more}",
    )
    p.add_argument(
        "--amp",
        default=None,
        choices=("none", "bf16", "fp16"),
        help="mixed precision (train.amp): bf16 on CPU or CUDA, fp16 on CUDA only",
    )


def device_overrides(args: argparse.Namespace) -> list[str]:
    """``--device`` / ``--amp`` as ``--set`` overrides."""
    out = []
    for option in ("device", "amp"):
        value = getattr(args, option, None)
        if value is not None:
            out.append(f'train.{option}="{value}"')
    return out


def is_main_process() -> bool:
    """False on the ranks > 0 of a torchrun job (they print nothing)."""
    return os.environ.get("RANK", "0") == "0"


def prepare_run(args: argparse.Namespace) -> list[str]:
    """Set up logging and OpenMP for training; the ``--set`` overrides (with --no-progress)."""
    import logging

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see training.loop.prefer_passive_openmp
    logging.getLogger("edge_slr").setLevel(min(logging.getLogger().level, logging.INFO))
    overrides = list(args.overrides) + device_overrides(args)
    if args.no_progress:
        overrides.append("train.progress=false")
    return overrides


def print_result(result: Any, config: Any) -> None:
    """The best epoch, the dev/test WER of the best checkpoint and where the run is."""
    if not is_main_process():
        return
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
