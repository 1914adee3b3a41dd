"""STM references and CTM hypotheses (the NIST sclite formats the PHOENIX evaluation uses).

STM: ``name channel speaker start end [<label>] GLOSS GLOSS ...``, one segment a line.
CTM: ``name channel start duration GLOSS [confidence]``, one gloss a line.
Lines starting with ``;;`` are comments; blank lines are skipped. Every malformed line raises
:class:`~edge_slr.errors.FormatError` naming the file, the line, the field and its value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_slr.errors import FormatError, InputError

STM_END_OF_FILE = 1.79769e308  # the "until the end" time the PHOENIX STM files use


@dataclass(frozen=True)
class StmSegment:
    """One STM reference segment."""

    id: str
    glosses: tuple[str, ...]
    speaker: str = "unknown"
    channel: str = "1"
    start: float = 0.0
    end: float = STM_END_OF_FILE


@dataclass(frozen=True)
class CtmEntry:
    """One CTM line: a single gloss of sentence ``id``."""

    id: str
    gloss: str
    start: float
    duration: float
    channel: str = "1"
    confidence: float | None = None


def _lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every non-comment, non-blank line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith(";;"):
            yield number, stripped.split()


def _number(path: Path, line: int, field: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise FormatError(path, f"field {field} must be a finite number, got {value!r}", line)
    return number


def read_stm(path: str | Path) -> dict[str, StmSegment]:
    """STM segments by id, in file order. A repeated id is an error (one segment a sentence)."""
    path = Path(path)
    segments: dict[str, StmSegment] = {}
    first_line: dict[str, int] = {}
    for number, fields in _lines(path):
        if len(fields) < 5:
            raise FormatError(
                path,
                f"STM line has {len(fields)} fields, expected at least 5 "
                "(name channel speaker start end GLOSS...)",
                number,
            )
        start = _number(path, number, "4 (start time)", fields[3])
        end = _number(path, number, "5 (end time)", fields[4])
        if end < start:
            raise FormatError(
                path, f"end time {fields[4]} is before start time {fields[3]}", number
            )
        words = fields[5:]
        if words and words[0].startswith("<") and words[0].endswith(">"):
            words = words[1:]  # optional sclite label field such as <o,f0,male>
        name = fields[0]
        if name in segments:
            raise FormatError(
                path, f"segment id {name!r} repeats the one on line {first_line[name]}", number
            )
        first_line[name] = number
        segments[name] = StmSegment(name, tuple(words), fields[2], fields[1], start, end)
    return segments


def read_ctm(path: str | Path) -> list[CtmEntry]:
    """CTM entries in file order."""
    path = Path(path)
    entries = []
    for number, fields in _lines(path):
        if len(fields) not in (5, 6):
            raise FormatError(
                path,
                f"CTM line has {len(fields)} fields, expected 5 or 6 "
                "(name channel start duration GLOSS [confidence])",
                number,
            )
        start = _number(path, number, "3 (start time)", fields[2])
        duration = _number(path, number, "4 (duration)", fields[3])
        if duration < 0:
            raise FormatError(path, f"field 4 (duration) is negative: {fields[3]!r}", number)
        confidence = None
        if len(fields) == 6:
            confidence = _number(path, number, "6 (confidence)", fields[5])
        entries.append(CtmEntry(fields[0], fields[4], start, duration, fields[1], confidence))
    return entries


def ctm_hypotheses(entries: Iterable[CtmEntry]) -> dict[str, tuple[str, ...]]:
    """Glosses of each sentence ordered by start time (stable: file order among equal times)."""
    grouped: dict[str, list[CtmEntry]] = {}
    for entry in entries:
        grouped.setdefault(entry.id, []).append(entry)
    return {
        name: tuple(e.gloss for e in sorted(group, key=lambda e: e.start))
        for name, group in grouped.items()
    }


def _check_token(value: str, what: str) -> None:
    if not isinstance(value, str) or not value or any(ch.isspace() for ch in value):
        raise InputError(f"{what} must be a non-empty string without whitespace, got {value!r}")


def write_stm(
    path: str | Path, segments: Iterable[StmSegment] | Mapping[str, Sequence[str]]
) -> None:
    """Write STM; a mapping id -> glosses gets speaker "unknown" and the whole-file time span."""
    if isinstance(segments, Mapping):
        segments = [StmSegment(name, tuple(glosses)) for name, glosses in segments.items()]
    lines = [";; edge-slr STM: name channel speaker start end GLOSS..."]
    for seg in segments:
        _check_token(seg.id, "STM segment id")
        _check_token(seg.speaker, f"speaker of {seg.id}")
        for gloss in seg.glosses:
            _check_token(gloss, f"gloss of {seg.id}")
        fields = [seg.id, seg.channel, seg.speaker, repr(float(seg.start)), repr(float(seg.end))]
        lines.append(" ".join(fields + list(seg.glosses)))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def hypotheses_to_ctm(
    hypotheses: Mapping[str, Sequence[str]], step: float = 0.01
) -> list[CtmEntry]:
    """CTM entries with placeholder times (gloss k at ``k * step``), as the CSLR projects write.

    Scoring only uses the order of the glosses, which these times keep.
    """
    return [
        CtmEntry(name, gloss, k * step, step)
        for name, glosses in hypotheses.items()
        for k, gloss in enumerate(glosses)
    ]


def write_ctm(path: str | Path, entries: Iterable[CtmEntry] | Mapping[str, Sequence[str]]) -> None:
    """Write CTM; a mapping id -> glosses is written through :func:`hypotheses_to_ctm`."""
    if isinstance(entries, Mapping):
        entries = hypotheses_to_ctm(entries)
    lines = []
    for e in entries:
        _check_token(e.id, "CTM id")
        _check_token(e.gloss, f"gloss of {e.id}")
        line = f"{e.id} {e.channel} {e.start:.3f} {e.duration:.3f} {e.gloss}"
        if e.confidence is not None:
            line += f" {e.confidence:.6g}"
        lines.append(line)
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def detect_format(path: str | Path) -> str:
    """ "ctm" or "stm" for a hypothesis file, from its line shapes; FormatError when ambiguous."""
    path = Path(path)
    could_be_stm = could_be_ctm = True
    seen: set[str] = set()
    repeated = False
    for _, fields in _lines(path):
        numeric = [_is_number(f) for f in fields[:6]]
        could_be_stm &= len(fields) >= 5 and numeric[3] and numeric[4]
        could_be_ctm &= len(fields) in (5, 6) and numeric[2] and numeric[3] and all(numeric[5:])
        repeated |= fields[0] in seen
        seen.add(fields[0])
    if could_be_ctm and (repeated or not could_be_stm):
        return "ctm"
    if could_be_stm and not could_be_ctm:
        return "stm"
    if not seen:
        return "ctm"  # an empty hypothesis file: every sentence is empty either way
    if could_be_ctm:
        problem = "could be CTM or STM (one line an id, numeric third field)"
    else:
        problem = "matches neither the CTM nor the STM layout"
    raise FormatError(path, f"hypothesis file {problem}; name its format explicitly")


def _is_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def load_references(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Reference glosses by id from an STM file; FormatError when it holds no segment."""
    segments = read_stm(path)
    if not segments:
        raise FormatError(path, "STM reference holds no segment")
    return {name: seg.glosses for name, seg in segments.items()}


def load_hypotheses(path: str | Path, fmt: str = "auto") -> dict[str, tuple[str, ...]]:
    """Hypothesis glosses by id from a CTM or an STM-like file (``fmt``: auto, ctm, stm)."""
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "ctm":
        return ctm_hypotheses(read_ctm(path))
    if fmt == "stm":
        return {name: seg.glosses for name, seg in read_stm(path).items()}
    raise InputError(f"hypothesis format must be 'auto', 'ctm' or 'stm', got {fmt!r}")
