"""`edge-slr data ...`: corpus and dataset tools.

The nested subcommands live in ``DATA_COMMANDS``; a new one (for example ``data synth``) is one more
:class:`DataCommand` entry with its own ``add_arguments`` and ``run`` functions.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_slr.cli import synth

CORPORA = ("phoenix2014", "phoenix2014t", "csl-daily")  # kept literal so --help imports nothing


@dataclass(frozen=True)
class DataCommand:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _stats_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", required=True, choices=CORPORA, help="which corpus")
    p.add_argument(
        "--root",
        type=Path,
        default=None,
        help="corpus folder (flat copy or release tree); default: its folder in ../shared/data",
    )
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write JSON here")


def _run_stats(args: argparse.Namespace) -> int:
    from edge_slr.data.corpora import corpus_spec
    from edge_slr.data.stats import corpus_stats
    from edge_slr.errors import InputError
    from edge_slr.paths import shared_data_dir

    root = args.root
    if root is None:
        shared = shared_data_dir()
        folder = corpus_spec(args.corpus).shared_folder
        if shared is None or folder is None or not (shared / folder).is_dir():
            raise InputError(f"no --root given and no shared copy of {args.corpus} was found")
        root = shared / folder
    stats = corpus_stats(args.corpus, root)
    print(stats.format_table())
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(stats.to_dict(), indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.json}")
    return 0


DATA_COMMANDS: dict[str, DataCommand] = {
    "stats": DataCommand(
        help="sentences, glosses, vocabulary and OOV per split of a corpus",
        add_arguments=_stats_arguments,
        run=_run_stats,
    ),
    "synth": DataCommand(help=synth.HELP, add_arguments=synth.add_arguments, run=synth.run),
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data", help="corpus and dataset tools", description="Corpus and dataset tools."
    )
    nested = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    nested.required = True
    for name, command in DATA_COMMANDS.items():
        command.add_arguments(nested.add_parser(name, help=command.help, description=command.help))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return DATA_COMMANDS[args.data_command].run(args)
