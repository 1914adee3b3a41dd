"""`edge-slr evaluate --lm FILE`: shallow fusion of a gloss n-gram LM, and its tuning on dev.

``--lm`` decodes with the LM at ``--lm-weight`` / ``--insertion-bonus`` (default: the weights
tuned before, stored in ``FILE.json``). ``--tune-lm dev`` first grid-searches the weights on
that split (never on the split being reported, unless asked for), writes them into
``FILE.json`` (in a model folder as ``lm.arpa``, the Recognizer then uses them) and evaluates
``--split`` with them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_slr.decoding.lm import FusedLM, FusionSettings, NgramLM


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("gloss language model (shallow fusion in the beam search)")
    g.add_argument("--lm", type=Path, metavar="FILE", help="ARPA gloss LM (edge-slr train lm)")
    g.add_argument("--lm-weight", type=float, metavar="A", help="LM weight (default: tuned)")
    g.add_argument(
        "--insertion-bonus", type=float, metavar="B", help="bonus per gloss (default: tuned)"
    )
    g.add_argument(
        "--tune-lm",
        metavar="SPLIT",
        help="grid-search the LM weight and bonus on SPLIT (e.g. dev) and store them in FILE.json",
    )


def fused_lm(args: argparse.Namespace) -> FusedLM | None:
    """The LM and weights the command line asks for (tuned now with ``--tune-lm``); None
    without ``--lm``."""
    from edge_slr.decoding.lm import FusedLM, read_arpa
    from edge_slr.errors import InputError

    given = [f for f in ("lm_weight", "insertion_bonus", "tune_lm") if getattr(args, f) is not None]
    if args.lm is None:
        if given:
            raise InputError(f"--{given[0].replace('_', '-')} needs --lm FILE")
        return None
    if args.beam < 1:
        raise InputError(f"--lm fuses into the beam search: --beam must be >= 1, got {args.beam}")
    lm = read_arpa(args.lm)
    settings = _tune(args, lm) if args.tune_lm else _settings(args)
    print(f"LM {args.lm}: weight {settings.lm_weight}, insertion bonus {settings.insertion_bonus}")
    return FusedLM(lm, settings)


def _settings(args: argparse.Namespace) -> FusionSettings:
    from edge_slr.decoding.lm import FusionSettings, read_fusion_settings
    from edge_slr.errors import InputError

    stored = read_fusion_settings(args.lm)
    weight, bonus = args.lm_weight, args.insertion_bonus
    if stored is not None:
        weight = stored.lm_weight if weight is None else weight
        bonus = stored.insertion_bonus if bonus is None else bonus
    if weight is None:
        raise InputError(
            f"no --lm-weight given and {args.lm}.json holds no tuned weights; "
            "pass --lm-weight A (and --insertion-bonus B) or --tune-lm dev"
        )
    return FusionSettings(float(weight), float(bonus or 0.0))


def _tune(args: argparse.Namespace, lm: NgramLM) -> FusionSettings:
    from edge_slr.decoding.lm import FusionSettings
    from edge_slr.errors import InputError
    from edge_slr.training.lm import write_fusion_settings
    from edge_slr.training.lm_tuning import tune_on_split

    if args.lm_weight is not None or args.insertion_bonus is not None:
        raise InputError(
            "--tune-lm chooses --lm-weight and --insertion-bonus: give one or the other"
        )
    best, trials, corpus = tune_on_split(
        args.checkpoint,
        args.data,
        args.tune_lm,
        lm,
        args.beam,
        corpus=args.corpus,
        batch_size=args.batch_size,
        max_samples=args.max_samples,
        progress=not args.no_progress,
    )
    plain = next(t for t in trials if t.settings == FusionSettings(0.0, 0.0))
    chosen = next(t for t in trials if t.settings == best)
    print(
        f"tuned on {args.tune_lm} ({len(trials)} settings): WER {100 * plain.wer:.2f}% plain beam "
        f"-> {100 * chosen.wer:.2f}% with the LM"
    )
    tuning = {
        "tuned_on": {"data": str(args.data), "split": args.tune_lm, "corpus": corpus},
        "checkpoint": str(args.checkpoint),
        "beam_width": args.beam,
        "trials": [t.to_dict() for t in trials],
    }
    write_fusion_settings(args.lm, best, tuning)
    return best
