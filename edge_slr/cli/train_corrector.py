"""`edge-slr train corrector`: self-supervised training of the gloss corrector on a train split.

This module adds the ``corrector`` subcommand to the ``train`` group: the group's module calls
``add_parser(train_subparsers)`` with the subparsers object of ``edge-slr train``.
"""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "corrector",
        help="train the gloss corrector on a corpus's train split (self-supervised)",
        description="Train the chained gloss corrector on the train split of a corpus (never "
        "dev/test): sentences are corrupted by the noise model and the transformers learn to "
        "restore them; the do-no-harm gates are tuned on held-out train sentences. Settings "
        "come from a TOML config (configs/corrector-*.toml) and --set overrides.",
    )
    p.add_argument(
        "--corpus",
        choices=("phoenix2014", "phoenix2014t", "csl-daily"),
        help="corpus to train on (overrides train.corpus)",
    )
    p.add_argument("--root", metavar="DIR", help="corpus folder (default: ../shared/data/CORPUS)")
    p.add_argument("--config", metavar="TOML", help="training config (default: built-in defaults)")
    p.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="TABLE.KEY=VALUE",
        help="override a config value, e.g. --set train.max_minutes=5 (repeatable)",
    )
    p.add_argument("--max-minutes", type=float, metavar="M", help="time budget per stage")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads (default 1)")
    p.add_argument("--seed", type=int, metavar="S", help="random seed")
    from edge_slr.cli._training import add_device_arguments

    add_device_arguments(p, torchrun=False)
    p.add_argument(
        "--retune-gates",
        action="store_true",
        help="no training: tune the gates of the model already in --out again (same held-out "
        "train sentences; its stored config with --set overrides applied)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edge_slr.training.corrector.config import load_config
    from edge_slr.training.corrector.train import train_corrector

    overrides = list(args.set)
    for option, key in (
        ("corpus", "corpus"),
        ("root", "root"),
        ("max_minutes", "max_minutes"),
        ("threads", "threads"),
        ("seed", "seed"),
        ("device", "device"),
        ("amp", "amp"),
    ):
        value = getattr(args, option)
        if value is not None:
            overrides.append(f"train.{key}={json.dumps(value)}")
    if args.retune_gates:
        return _retune(args, overrides)
    config = load_config(args.config, overrides)
    _, report = train_corrector(config, args.out)
    print(f"corrector for {report['corpus']} written to {args.out}")
    print(
        f"  {report['fit_sentences']} train sentences (+{report['holdout_sentences']} held out), "
        f"{report['vocab_size']} tokens, {report['parameters_per_stage']:,} parameters per stage"
    )
    for i, (stage, tuning) in enumerate(
        zip(report["stages"], report["gate_tuning"], strict=True), start=1
    ):
        print(
            f"  stage {i}: {stage['steps']} steps in {stage['seconds']:.0f} s, "
            f"val loss {stage['val_loss']:.3f}, gate {tuning['gate']}"
        )
        for level, row in tuning["levels"].items():
            print(
                f"    held-out noise {float(level):.0%}: WER {100 * row['before']:.2f} -> "
                f"{100 * row['after']:.2f} (ungated {100 * row['ungated']:.2f})"
            )
    print(f"  wall time {report['wall_seconds']:.0f} s")
    return 0


def _retune(args: argparse.Namespace, overrides: list[str]) -> int:
    from edge_slr.training.corrector.checkpoint import (
        load_checkpoint,
        load_corrector,
        save_corrector,
    )
    from edge_slr.training.corrector.config import CorrectorConfig
    from edge_slr.training.corrector.gate import tuning_report
    from edge_slr.training.corrector.train import retune_gates

    stored = load_checkpoint(args.out)["config"]
    config = CorrectorConfig.from_dict(stored, where=f"{args.out}: stored config")
    config = config.with_overrides(overrides)
    corrector = load_corrector(args.out)
    tunings = retune_gates(corrector, config)
    corrector.metadata.setdefault("training", {})["gate_tuning"] = [
        tuning_report(t) for t in tunings
    ]
    save_corrector(args.out, corrector, config.to_dict())
    print(f"gates of {args.out} tuned again:")
    for i, tuning in enumerate(tunings, start=1):
        print(f"  stage {i}: gate {tuning.gate.to_dict()}")
        for level, row in tuning_report(tuning)["levels"].items():
            print(
                f"    held-out noise {float(level):.0%}: WER {100 * row['before']:.2f} -> "
                f"{100 * row['after']:.2f} (ungated {100 * row['ungated']:.2f})"
            )
    return 0
