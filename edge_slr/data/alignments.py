"""PHOENIX-2014-T frame alignments: per-frame HMM states turned into gloss segments.

The alignment released with PHOENIX-2014-T gives, for every clip, one HMM state per frame
(``alignments/phoenix2014t.SPLIT.align.tsv``: ``name``, ``num_frames``, ``states``; 0 = silence).
Each gloss class has three states: state ``s > 0`` belongs to class ``(s - 1) // 3`` and is its
``(s - 1) % 3``-th state. ``state_lexicon.tsv`` names the classes (``class_k``, ``states``,
``gloss``, ``votes``, ``conflicting_votes``); about a quarter of the classes have no name there
(they cover ~1% of non-silence frames).

Segmenting rule, checked on the data: a run of a class always enters at its first state and
walks 1 -> 2 -> 3; when the same gloss is signed twice in a row the states go from the third
state straight back to the first (4529 times in train, matching the ~4500 immediate
repetitions of the "complex" PHOENIX annotation the alignment was made from). So a new segment
starts when the class changes, or when the state moves back to the class's first state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from edge_slr.errors import FormatError, InputError

logger = logging.getLogger(__name__)

STATES_PER_GLOSS = 3
FPS = 25.0  # PHOENIX videos are recorded at 25 frames per second
LEXICON_NAME = "state_lexicon.tsv"
SPLITS = ("train", "dev", "test")

UnknownPolicy = Literal["skip", "placeholder", "error"]
_UNKNOWN_POLICIES = ("skip", "placeholder", "error")

# Where the alignment folder may sit relative to the corpus root (flat copy or release tree).
_ALIGNMENT_DIRS = ("alignments", ".", "PHOENIX-2014-T/alignments")


@dataclass(frozen=True)
class GlossSegment:
    """One gloss occupying frames ``start`` (inclusive) to ``end`` (exclusive)."""

    gloss: str
    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise InputError(
                f"GlossSegment needs 0 <= start < end, got start={self.start}, end={self.end}"
            )

    @property
    def num_frames(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class GlossDuration:
    """Duration statistics of one gloss over a split, in frames (population std)."""

    gloss: str
    count: int
    mean: float
    std: float
    min: int
    max: int

    def mean_seconds(self, fps: float = FPS) -> float:
        return self.mean / fps


def _find(root: Path, name: str) -> Path:
    tried = [root / folder / name for folder in _ALIGNMENT_DIRS]
    for path in tried:
        if path.is_file():
            return path.resolve()
    raise FormatError(
        root,
        f"no PHOENIX-2014-T alignment file {name!r}; tried: " + ", ".join(str(p) for p in tried),
    )


def alignment_path(root: str | Path, split: str) -> Path:
    """The ``phoenix2014t.SPLIT.align.tsv`` file under ``root`` (FormatError lists paths tried)."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return _find(Path(root), f"phoenix2014t.{split}.align.tsv")


def load_state_lexicon(path: str | Path) -> dict[int, str]:
    """Read ``state_lexicon.tsv``: class index -> gloss name."""
    path = Path(path)
    lexicon: dict[int, str] = {}
    for number, fields in _read_tsv(path, ("class_k", "states", "gloss")):
        try:
            klass = int(fields[0])
            states = [int(s) for s in fields[1].split(",")]
        except ValueError:
            raise FormatError(
                path, f"class_k and states must be integers, got {fields[:2]!r}", number
            ) from None
        expected = [STATES_PER_GLOSS * klass + i for i in range(1, STATES_PER_GLOSS + 1)]
        if states != expected:
            raise FormatError(
                path, f"class {klass} should own states {expected}, got {states}", number
            )
        if klass in lexicon:
            raise FormatError(path, f"class {klass} is listed twice", number)
        lexicon[klass] = fields[2]
    return lexicon


def _read_tsv(path: Path, header: tuple[str, ...]) -> Iterable[tuple[int, list[str]]]:
    """Yield (line number, fields) of a tab-separated file whose header starts with ``header``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FormatError(path, "file does not exist") from None
    except UnicodeDecodeError as err:
        raise FormatError(path, f"not UTF-8 text ({err})") from None
    lines = text.splitlines()
    got = tuple(lines[0].split("\t")[: len(header)]) if lines else ()
    if got != header:
        raise FormatError(path, f"expected a header starting {header}, got {got}", 1)
    for number, line in enumerate(lines[1:], start=2):
        if line.strip():
            yield number, line.split("\t")


def segments_from_states(
    states: Sequence[int] | np.ndarray,
    lexicon: Mapping[int, str],
    *,
    unknown: UnknownPolicy = "skip",
) -> list[GlossSegment]:
    """Turn one clip's per-frame states into gloss segments (see the module docstring).

    ``unknown`` decides what happens to a class missing from ``lexicon``: ``"skip"`` leaves its
    frames unlabelled, ``"placeholder"`` names it ``<class:K>``, ``"error"`` raises InputError.
    """
    if unknown not in _UNKNOWN_POLICIES:
        raise InputError(f"unknown={unknown!r}; expected one of {_UNKNOWN_POLICIES}")
    s = np.asarray(states, dtype=np.int64)
    if s.ndim != 1:
        raise InputError(f"states must be one-dimensional, got shape {s.shape}")
    if s.size and s.min() < 0:
        raise InputError(f"states must be >= 0 (0 = silence), got {int(s.min())}")
    klass = np.where(s > 0, (s - 1) // STATES_PER_GLOSS, -1)
    first_state = (s > 0) & ((s - 1) % STATES_PER_GLOSS == 0)
    prev_s = np.concatenate(([0], s[:-1]))
    prev_class = np.concatenate(([-1], klass[:-1]))
    starts_here = (s > 0) & ((klass != prev_class) | (first_state & (s != prev_s)))
    # A segment ends at the next frame that is silence or starts another segment.
    boundaries = np.append(np.flatnonzero(starts_here | (s == 0)), s.size)
    starts = np.flatnonzero(starts_here)
    ends = boundaries[np.searchsorted(boundaries, starts, side="right")]
    segments = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        k = int(klass[start])
        gloss = lexicon.get(k)
        if gloss is None:
            if unknown == "error":
                raise InputError(f"state class {k} (frames {start}-{end}) has no gloss name")
            if unknown == "skip":
                continue
            gloss = f"<class:{k}>"
        segments.append(GlossSegment(gloss, start, end))
    return segments


def read_frame_counts(root: str | Path, split: str) -> dict[str, int]:
    """``name -> num_frames`` from the alignment file of ``split`` (no state parsing)."""
    path = alignment_path(root, split)
    counts = {}
    for number, fields in _read_tsv(path, ("name", "num_frames", "states")):
        counts[fields[0]] = _frame_count(path, number, fields)
    return counts


def _frame_count(path: Path, number: int, fields: list[str]) -> int:
    if len(fields) != 3:
        raise FormatError(
            path,
            f"expected 3 tab-separated fields (name, num_frames, states), got {len(fields)}",
            number,
        )
    try:
        count = int(fields[1])
    except ValueError:
        count = -1
    if count <= 0:
        raise FormatError(path, f"num_frames must be a positive integer, got {fields[1]!r}", number)
    return count


def load_alignments(
    root: str | Path, split: str, *, unknown: UnknownPolicy = "skip"
) -> dict[str, list[GlossSegment]]:
    """Gloss segments of every clip of a PHOENIX-2014-T split, keyed by clip name.

    ``root`` is the PHOENIX-2014-T folder holding ``alignments/`` (or the alignment folder
    itself). Frames of silence and, with ``unknown="skip"``, of unnamed classes belong to no
    segment.
    """
    path = alignment_path(root, split)
    lexicon = load_state_lexicon(_find(Path(root), LEXICON_NAME))
    result: dict[str, list[GlossSegment]] = {}
    for number, fields in _read_tsv(path, ("name", "num_frames", "states")):
        expected = _frame_count(path, number, fields)
        try:
            states = np.array(fields[2].split(), dtype=np.int64)
        except ValueError:
            raise FormatError(path, "states must be integers separated by spaces", number) from None
        if states.size != expected:
            raise FormatError(
                path, f"num_frames says {expected} but {states.size} states are given", number
            )
        if states.size and states.min() < 0:
            raise FormatError(path, f"negative state {int(states.min())}", number)
        try:
            result[fields[0]] = segments_from_states(states, lexicon, unknown=unknown)
        except InputError as err:
            raise FormatError(path, str(err), number) from None
    logger.debug("%s: %d clips aligned", path, len(result))
    return result


def gloss_durations(alignments: Mapping[str, Sequence[GlossSegment]]) -> dict[str, GlossDuration]:
    """Per-gloss duration statistics (frames) over all segments of ``alignments``, by gloss."""
    lengths: dict[str, list[int]] = {}
    for segments in alignments.values():
        for segment in segments:
            lengths.setdefault(segment.gloss, []).append(segment.num_frames)
    stats = {}
    for gloss in sorted(lengths):
        values = np.asarray(lengths[gloss], dtype=np.float64)
        stats[gloss] = GlossDuration(
            gloss=gloss,
            count=int(values.size),
            mean=float(values.mean()),
            std=float(values.std()) if values.size > 1 else 0.0,
            min=int(values.min()),
            max=int(values.max()),
        )
    return stats


def load_gloss_durations(
    root: str | Path, split: str = "train", *, unknown: UnknownPolicy = "skip"
) -> dict[str, GlossDuration]:
    """``gloss_durations(load_alignments(root, split))``: durations at 25 fps, in frames."""
    return gloss_durations(load_alignments(root, split, unknown=unknown))
