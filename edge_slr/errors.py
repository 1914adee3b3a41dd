"""Exceptions raised by edge-slr.

Every error that bad input can cause is one of these, with a message that says what was wrong,
the value received and what was expected, so nothing surfaces as a crash deep inside a library.
"""

from __future__ import annotations

from pathlib import Path


class EdgeSLRError(Exception):
    """Base class of every edge-slr error."""


class InputError(EdgeSLRError, ValueError):
    """An in-memory input is wrong: shape, dtype, NaN values, out-of-range options."""


class FormatError(EdgeSLRError, ValueError):
    """A file is malformed, truncated or of an unexpected layout.

    The message names the file and, where known, the line and field.
    """

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}" if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {problem}")


class MissingDependencyError(EdgeSLRError, ImportError):
    """An optional engine or library is not installed; the message names the pip extra."""
