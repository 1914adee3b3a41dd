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
import sys
from collections.abc import Sequence

from edge_slr import __version__
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
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
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
    try:
        return int(args.run(args) or 0)
    except (EdgeSLRError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        # Expected failures (bad input, missing engine, missing file) end with one clear line.
        print(f"edge-slr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
