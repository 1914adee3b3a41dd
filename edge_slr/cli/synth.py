"""`edge-slr data synth`: build a SignSynth dataset (synthetic signers, real sentences/timing).

Attach under the ``data`` command group either as ``add_parser(nested_subparsers)`` or through
``add_arguments``/``run`` (a ``DataCommand(HELP, add_arguments, run)``). Only the standard
library is imported at module level.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "synthesise a landmark (and video) dataset of synthetic signers (SignSynth)"
CORPORA = ("phoenix2014", "phoenix2014t", "csl-daily")
SPLITS = ("train", "dev", "test")
DIFFICULTIES = ("easy", "default", "hard")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="dataset folder to create or resume")
    p.add_argument(
        "--corpus",
        choices=CORPORA,
        default=None,
        help="take sentences and splits from this corpus (default: the built-in grammar)",
    )
    p.add_argument(
        "--root", type=Path, default=None, help="corpus folder (default: ../shared/data)"
    )
    p.add_argument(
        "--split",
        nargs="+",
        choices=SPLITS,
        default=list(SPLITS),
        help="splits to build (default: all)",
    )
    p.add_argument("--num-signers", type=int, default=4, help="signers per split (default 4)")
    p.add_argument(
        "--signers-per-sentence",
        type=int,
        default=None,
        help="sign each sentence by this many of the split's signers (default: all of them)",
    )
    p.add_argument(
        "--frames",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also render RGB video frames (for the video teacher)",
    )
    p.add_argument(
        "--frame-size", type=int, default=112, help="video frame size in pixels (square)"
    )
    p.add_argument("--pose", action="store_true", help="also write a .pose file per sample")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (signers, performances)")
    p.add_argument("--lexicon-seed", type=int, default=0, help="seed of the sign for each gloss")
    p.add_argument("--difficulty", choices=DIFFICULTIES, default="default")
    p.add_argument(
        "--limit", type=int, default=None, help="use only the first N sentences per split"
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("synth", help=HELP, description=HELP)
    add_arguments(p)
    p.set_defaults(run=run)
    return p


def _positive(name: str, value: int | None) -> None:
    from edge_slr.errors import InputError

    if value is not None and value < 1:
        raise InputError(f"--{name} must be a positive integer, got {value}")


def run(args: argparse.Namespace) -> int:
    from edge_slr.data.synth.config import get_difficulty
    from edge_slr.data.synth.generate import SynthConfig, build_split

    for name in ("num-signers", "signers-per-sentence", "limit", "workers", "frame-size"):
        _positive(name, getattr(args, name.replace("-", "_")))
    config = SynthConfig(
        corpus=args.corpus,
        root=args.root,
        seed=args.seed,
        lexicon_seed=args.lexicon_seed,
        difficulty=get_difficulty(args.difficulty),
        frame_size=args.frame_size,
    )
    for split in args.split:
        start = time.perf_counter()
        entries = build_split(
            config,
            args.out,
            split,
            num_signers=args.num_signers,
            signers_per_sentence=args.signers_per_sentence,
            frames=args.frames,
            pose=args.pose,
            limit=args.limit,
            workers=args.workers,
            progress=not args.no_progress,
        )
        seconds = time.perf_counter() - start
        frames = sum(e.num_frames for e in entries)
        signers = len({e.signer for e in entries})
        print(
            f"{split}: {len(entries)} samples, {signers} signers, {frames} frames "
            f"({frames / 25.0 / 60:.1f} min at 25 fps) in {seconds:.1f} s -> {args.out / split}"
        )
    return 0
