"""The `edge-slr` command line.

Each subcommand lives in its own module of this package with ``add_parser(subparsers)`` (which
sets ``run`` as the handler) and ``run(args) -> int``. Those modules import only the standard
library and numpy at top level; engines are imported inside ``run``, so ``edge-slr --help`` is fast
and works on a device install with a single engine.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from edge_slr import __version__
from edge_slr._optional import show_engine_logs
from edge_slr.errors import EdgeSLRError

# subcommand modules, in the order `--help` lists them
COMMAND_MODULES = (
    "info",
    "data",
    "extract",
    "train",
    "evaluate",
    "eval",
    "convert",
    "recognize",
    "correct",
    "benchmark",
    "demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-slr",
        description="Continuous sign language recognition on edge devices.",
    )
    parser.add_argument("--version", action="version", version=f"edge-slr {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more log output (and the engines' own C++ log lines, quiet otherwise)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"edge_slr.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose:
        show_engine_logs()
    try:
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        # `edge-slr ... | head`: the reader has gone, as for any command-line tool. Python's
        # advice: point stdout at devnull so the flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool the pipe ended
    except (
        EdgeSLRError,
        FileNotFoundError,
        FileExistsError,
        IsADirectoryError,
        NotADirectoryError,
        PermissionError,
    ) as exc:
        # Expected failures (bad input, missing engine, missing file) end with one clear line.
        print(f"edge-slr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
