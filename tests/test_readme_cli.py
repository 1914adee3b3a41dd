"""README, `edge-slr --help` and the code agree: every command the README shows exists, and every
command the CLI has is documented; the quickstart is the Makefile's and .ci/run runs it."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from edge_slr.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _subcommands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> set[tuple]:
    """All command paths, e.g. ("data",), ("data", "stats")."""
    found: set[tuple] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.add(prefix + (name,))
                found |= _subcommands(sub, prefix + (name,))
    return found


def _readme_commands() -> set[tuple]:
    block = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    paths = set()
    for line in block.splitlines():
        match = re.match(r"\s*edge-slr ((?:[a-z][a-z-]*\s?)+)", line)
        if match:
            words = match.group(1).split()
            paths.add(tuple(words))
    return paths


def test_every_readme_command_exists_and_every_command_is_documented():
    cli = _subcommands(build_parser())
    documented = _readme_commands()
    assert documented, "README has no '## Command line' block"
    for path in documented:
        assert path in cli, f"README shows `edge-slr {' '.join(path)}`, which the CLI lacks"
    leaves = {c for c in cli if not any(o[: len(c)] == c and o != c for o in cli)}
    for leaf in leaves:
        assert leaf in documented, f"`edge-slr {' '.join(leaf)}` is not in the README"


def test_quickstart_commands_are_the_makefile_targets_and_ci_runs_the_tests():
    quick = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(make \w+)", quick, flags=re.M)
    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("demo", "test"):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
