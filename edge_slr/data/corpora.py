"""Gloss corpora in their release layouts: PHOENIX-2014, PHOENIX-2014-T and CSL-Daily.

Each corpus is described by a :class:`CorpusSpec` (file names, column names, folders a release
may use) in a registry, and one generic reader turns any of them into :class:`Sample` records:

>>> samples = load_corpus("phoenix2014t", "../shared/data/phoenix2014t", "dev")
>>> samples[0].glosses
('DRUCK', 'TIEF', 'KOMMEN')

Layouts accepted (ROOT is the folder given): the annotation file flat in ROOT (the shared copy),
in ROOT/annotations/manual/, or in the official release tree (e.g.
ROOT/phoenix-2014-multisigner/annotations/manual/). The folder that holds ``annotations/`` is the
corpus *base*: frames are looked up in BASE/features/fullFrame-210x260px/SPLIT/ as ``NAME/1/*.png``
or ``NAME/*.png`` (CSL-Daily: BASE/sentence/frames_512x512/NAME/), landmark files in
BASE/landmarks/SPLIT/NAME.{npz,pose,parquet}. ``Sample.source`` is the first of these that
exists, else None.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from edge_slr.data import alignments
from edge_slr.errors import FormatError, InputError

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
LANDMARK_SUFFIXES = (".npz", ".pose", ".parquet")
LANDMARK_ROOT = "landmarks/{split}"


@dataclass(frozen=True)
class Sample:
    """One annotated sentence of a corpus."""

    id: str
    split: str
    signer: str
    glosses: tuple[str, ...]
    text: str | None  # spoken-language translation, where the corpus has one
    source: Path | None  # frame folder or landmark file, when present on disk
    num_frames: int | None  # from the annotation, the frame folder or the alignment


@dataclass(frozen=True)
class ScoringSpec:
    """How a corpus is scored: whether PHOENIX gloss rewrites apply and where its STM files are."""

    gloss_rewrites: bool
    stm_files: Mapping[str, str]  # split -> STM file name
    stm_dirs: tuple[str, ...] = (".", "evaluation", "evaluation/sign-recognition")


@dataclass(frozen=True)
class CorpusSpec:
    """Everything the generic reader needs to know about one corpus's release files."""

    name: str
    title: str
    annotation_file: str  # file name, ``{split}`` is replaced
    layouts: tuple[tuple[str, str], ...]  # (base, annotation folder relative to base), from ROOT
    delimiter: str
    header: tuple[str, ...]
    id_field: str
    signer_field: str
    gloss_field: str
    scoring: ScoringSpec
    frame_root: str  # relative to the base, ``{split}`` is replaced
    text_field: str | None = None
    folder_field: str | None = None  # a glob such as ``NAME/1/*.png``
    frames_field: str | None = None
    shared_folder: str | None = None  # its folder name in ../shared/data
    # Extra source of frame counts (PHOENIX-2014-T: the alignment file); {} when unavailable.
    frame_counts: Callable[[Path, str], dict[str, int]] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        named = [self.id_field, self.signer_field, self.gloss_field]
        named += [f for f in (self.text_field, self.folder_field, self.frames_field) if f]
        missing = [f for f in named if f not in self.header]
        if missing:
            raise InputError(f"corpus {self.name!r}: fields {missing} are not in {self.header}")

    def locate(self, root: str | Path, split: str) -> tuple[Path, Path]:
        """(corpus base, annotation file) of ``split`` under ``root``; FormatError if absent."""
        _check_split(split)
        root = Path(root)
        if not root.is_dir():
            raise FormatError(root, f"{self.title} root folder does not exist")
        name = self.annotation_file.format(split=split)
        tried = []
        for base, folder in self.layouts:
            path = root / base / folder / name
            tried.append(path)
            if path.is_file():
                return (root / base).resolve(), path.resolve()
        raise FormatError(
            root,
            f"unknown {self.title} layout: no {split} annotation file; tried "
            + ", ".join(str(p) for p in tried),
        )

    def stm_path(self, root: str | Path, split: str) -> Path:
        """The ground-truth STM file of ``split`` (dev/test) under ``root``."""
        _check_split(split)
        stm = self.scoring.stm_files.get(split)
        if stm is None:
            raise InputError(
                f"{self.title} has no STM file for split {split!r}; "
                f"splits with one: {', '.join(self.scoring.stm_files)}"
            )
        tried = [
            Path(root) / base / folder / stm
            for base, _ in self.layouts
            for folder in self.scoring.stm_dirs
        ]
        for path in dict.fromkeys(tried):
            if path.is_file():
                return path.resolve()
        raise FormatError(
            root, f"no {self.title} STM file {stm!r}; tried " + ", ".join(map(str, tried))
        )

    def load(self, root: str | Path, split: str) -> list[Sample]:
        base, path = self.locate(root, split)
        rows = _read_rows(path, self.delimiter, self.header)
        counts = self.frame_counts(base, split) if self.frame_counts else {}
        finder = _SourceFinder(base, self.frame_root.format(split=split), split)
        samples: list[Sample] = []
        first_line: dict[str, int] = {}
        for number, row in rows:
            sample = self._sample(path, number, row, split, finder, counts)
            if sample.id in first_line:
                raise FormatError(
                    path, f"id {sample.id!r} already used on line {first_line[sample.id]}", number
                )
            first_line[sample.id] = number
            samples.append(sample)
        logger.debug("%s %s: %d samples from %s", self.name, split, len(samples), path)
        return samples

    def _sample(
        self,
        path: Path,
        number: int,
        row: dict[str, str],
        split: str,
        finder: _SourceFinder,
        counts: Mapping[str, int],
    ) -> Sample:
        sample_id = row[self.id_field].strip()
        glosses = tuple(row[self.gloss_field].split())
        if not sample_id:
            raise FormatError(path, f"empty {self.id_field!r} field", number)
        if not glosses:
            raise FormatError(path, f"empty {self.gloss_field!r} field of {sample_id!r}", number)
        folder = row[self.folder_field].strip() if self.folder_field else sample_id
        source, image_count = finder.find(sample_id, folder)
        num_frames = image_count if image_count is not None else counts.get(sample_id)
        if self.frames_field:
            num_frames = _positive_int(path, number, self.frames_field, row[self.frames_field])
        text = row[self.text_field].strip() if self.text_field else None
        return Sample(
            sample_id, split, row[self.signer_field].strip(), glosses, text, source, num_frames
        )


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")


def _positive_int(path: Path, number: int, name: str, value: str) -> int:
    try:
        result = int(value)
    except ValueError:
        result = 0
    if result <= 0:
        raise FormatError(path, f"field {name!r} must be a positive integer, got {value!r}", number)
    return result


def _read_rows(
    path: Path, delimiter: str, header: tuple[str, ...]
) -> list[tuple[int, dict[str, str]]]:
    """(line number, {column: value}) for each non-blank line after a header equal to ``header``."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise FormatError(path, f"not UTF-8 text ({err})") from None
    sep = "tab" if delimiter == "\t" else repr(delimiter)
    got = tuple(f.strip() for f in lines[0].split(delimiter)) if lines else ()
    if got != header:
        raise FormatError(path, f"expected the header {delimiter.join(header)!r}, got {got}", 1)
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(delimiter)
        if len(fields) != len(header):
            raise FormatError(
                path,
                f"expected {len(header)} {sep}-separated fields ({delimiter.join(header)}), "
                f"got {len(fields)}: {line[:120]!r}",
                number,
            )
        rows.append((number, dict(zip(header, fields, strict=True))))
    return rows


class _SourceFinder:
    """Finds a sample's frame folder or landmark file, skipping the search when none exist."""

    def __init__(self, base: Path, frame_root: str, split: str) -> None:
        self.frames = base / frame_root
        self.landmarks = base / LANDMARK_ROOT.format(split=split)
        self.has_frames = self.frames.is_dir()
        self.has_landmarks = self.landmarks.is_dir()

    def find(self, sample_id: str, folder: str) -> tuple[Path | None, int | None]:
        """(source, number of frame images in it or None)."""
        if self.has_frames:
            # The annotation's glob (``NAME/1/*.png`` or ``NAME/*.png``) may not match the
            # copy on disk, so both release variants are tried.
            relative = folder.rsplit("/", 1)[0] if "*" in folder else folder
            for candidate in dict.fromkeys((relative, f"{sample_id}/1", sample_id)):
                count = _count_images(self.frames / candidate)
                if count:
                    return self.frames / candidate, count
        if self.has_landmarks:
            for suffix in LANDMARK_SUFFIXES:
                path = self.landmarks / f"{sample_id}{suffix}"
                if path.is_file():
                    return path, None
        return None, None


def _count_images(folder: Path) -> int:
    try:
        with os.scandir(folder) as entries:
            return sum(1 for e in entries if e.name.lower().endswith(IMAGE_SUFFIXES))
    except (FileNotFoundError, NotADirectoryError):
        return 0


def _alignment_frame_counts(base: Path, split: str) -> dict[str, int]:
    try:
        alignments.alignment_path(base, split)
    except FormatError:
        return {}  # the alignment is an optional extra; without it num_frames stays unknown
    return alignments.read_frame_counts(base, split)


_REGISTRY: dict[str, CorpusSpec] = {}


def register_corpus(spec: CorpusSpec) -> None:
    """Add (or replace) a corpus in the registry under ``spec.name``."""
    _REGISTRY[spec.name] = spec


def available_corpora() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def corpus_spec(name: str) -> CorpusSpec:
    """The registered spec of ``name``; InputError listing the known names otherwise."""
    spec = _REGISTRY.get(name)
    if spec is None:
        raise InputError(
            f"unknown corpus {name!r}; expected one of {', '.join(available_corpora())}"
        )
    return spec


def load_corpus(name: str, root: str | Path, split: str) -> list[Sample]:
    """All samples of ``split`` of corpus ``name`` found under ``root``, in file order."""
    return corpus_spec(name).load(root, split)


_PHOENIX_FRAMES = "features/fullFrame-210x260px/{split}"

register_corpus(
    CorpusSpec(
        name="phoenix2014",
        title="PHOENIX-2014",
        annotation_file="{split}.corpus.csv",
        layouts=(
            (".", "."),
            (".", "annotations/manual"),
            ("phoenix-2014-multisigner", "annotations/manual"),
            ("phoenix2014-release/phoenix-2014-multisigner", "annotations/manual"),
        ),
        delimiter="|",
        header=("id", "folder", "signer", "annotation"),
        id_field="id",
        signer_field="signer",
        gloss_field="annotation",
        folder_field="folder",
        frame_root=_PHOENIX_FRAMES,
        shared_folder="phoenix2014",
        scoring=ScoringSpec(
            gloss_rewrites=True,
            stm_files={
                "dev": "phoenix2014-groundtruth-dev.stm",
                "test": "phoenix2014-groundtruth-test.stm",
            },
        ),
    )
)

register_corpus(
    CorpusSpec(
        name="phoenix2014t",
        title="PHOENIX-2014-T",
        annotation_file="PHOENIX-2014-T.{split}.corpus.csv",
        layouts=(
            (".", "."),
            (".", "annotations/manual"),
            ("PHOENIX-2014-T", "annotations/manual"),
            ("PHOENIX-2014-T-release-v3/PHOENIX-2014-T", "annotations/manual"),
        ),
        delimiter="|",
        header=("name", "video", "start", "end", "speaker", "orth", "translation"),
        id_field="name",
        signer_field="speaker",
        gloss_field="orth",
        text_field="translation",
        folder_field="video",
        frame_root=_PHOENIX_FRAMES,
        shared_folder="phoenix2014t",
        frame_counts=_alignment_frame_counts,
        scoring=ScoringSpec(
            gloss_rewrites=True,
            stm_files={
                "dev": "phoenix2014-T-groundtruth-dev.stm",
                "test": "phoenix2014-T-groundtruth-test.stm",
            },
        ),
    )
)

register_corpus(
    CorpusSpec(
        name="csl-daily",
        title="CSL-Daily",
        annotation_file="csl-daily.{split}.tsv",
        layouts=((".", "."), (".", "sentence_label"), ("CSL-Daily", "sentence_label")),
        delimiter="\t",
        header=("name", "signer", "num_frames", "gloss", "text"),
        id_field="name",
        signer_field="signer",
        gloss_field="gloss",
        text_field="text",
        frames_field="num_frames",
        frame_root="sentence/frames_512x512",
        shared_folder="csl-daily",
        scoring=ScoringSpec(
            gloss_rewrites=False,
            stm_files={
                "dev": "CSL-Daily-groundtruth-dev.stm",
                "test": "CSL-Daily-groundtruth-test.stm",
            },
        ),
    )
)
