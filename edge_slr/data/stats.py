"""Corpus statistics: sentences, running glosses, vocabulary and OOV per split.

OOV is counted against the train vocabulary (so train itself has none). The overall vocabulary is
the union of the glosses of all splits; the published sizes differ in what they count (PHOENIX-2014
quotes the union, PHOENIX-2014-T the train split), so both are reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_slr.data.corpora import SPLITS, Sample, corpus_spec
from edge_slr.errors import InputError


@dataclass(frozen=True)
class SplitStats:
    split: str
    sentences: int
    tokens: int  # running glosses
    vocabulary: int  # distinct glosses in this split
    oov_types: int  # distinct glosses not in the train vocabulary
    oov_tokens: int  # running glosses not in the train vocabulary
    signers: int
    frames: int | None  # total frames, when every sample's count is known


@dataclass(frozen=True)
class CorpusStats:
    corpus: str
    title: str
    root: str
    splits: tuple[SplitStats, ...]
    vocabulary: int  # distinct glosses over the splits read (train included)
    train_vocabulary: int

    def split(self, name: str) -> SplitStats:
        for stats in self.splits:
            if stats.split == name:
                return stats
        raise InputError(f"no statistics for split {name!r}; have {[s.split for s in self.splits]}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format_table(self) -> str:
        """A plain-text table, one row per split, then the vocabulary sizes."""
        show_frames = any(s.frames is not None for s in self.splits)
        header = ["split", "sentences", "glosses", "vocab", "OOV types", "OOV tokens", "signers"]
        table = [header + ["frames"] * show_frames]
        for s in self.splits:
            values = [s.split, s.sentences, s.tokens, s.vocabulary, s.oov_types, s.oov_tokens]
            values += [s.signers] + ["-" if s.frames is None else s.frames] * show_frames
            table.append([str(x) for x in values])
        widths = [max(len(row[i]) for row in table) for i in range(len(header) + show_frames)]
        lines = [f"{self.title} ({self.corpus}) at {self.root}"]
        for row in table:
            cells = [row[0].ljust(widths[0])] + [
                x.rjust(w) for x, w in zip(row, widths, strict=True)
            ][1:]
            lines.append("  ".join(cells))
        read = ", ".join(dict.fromkeys(["train", *(s.split for s in self.splits)]))
        lines.append(
            f"vocabulary: {self.vocabulary} glosses over {read}, "
            f"{self.train_vocabulary} in train (OOV is relative to train)"
        )
        return "\n".join(lines)


def split_stats(split: str, samples: Sequence[Sample], train_glosses: set[str]) -> SplitStats:
    glosses = [g for s in samples for g in s.glosses]
    types = set(glosses)
    frames = [s.num_frames for s in samples]
    return SplitStats(
        split=split,
        sentences=len(samples),
        tokens=len(glosses),
        vocabulary=len(types),
        oov_types=len(types - train_glosses),
        oov_tokens=sum(1 for g in glosses if g not in train_glosses),
        signers=len({s.signer for s in samples}),
        frames=None if any(f is None for f in frames) else sum(frames),  # type: ignore[arg-type]
    )


def corpus_stats(name: str, root: str | Path, splits: Sequence[str] = SPLITS) -> CorpusStats:
    """Statistics of corpus ``name`` under ``root``; the train split is always read (for OOV)."""
    spec = corpus_spec(name)
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise InputError(f"unknown splits {unknown}; expected some of {', '.join(SPLITS)}")
    loaded = {split: spec.load(root, split) for split in dict.fromkeys(("train", *splits))}
    train = {g for s in loaded["train"] for g in s.glosses}
    overall = {g for samples in loaded.values() for s in samples for g in s.glosses}
    return CorpusStats(
        corpus=spec.name,
        title=spec.title,
        root=str(Path(root)),
        splits=tuple(split_stats(split, loaded[split], train) for split in splits),
        vocabulary=len(overall),
        train_vocabulary=len(train),
    )
