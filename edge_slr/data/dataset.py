"""The on-disk landmark dataset: SignSynth output and real extracted data share this layout.

::

    DIR/dataset.json            description (what made it, settings, per-split summary)
    DIR/vocabulary.json         the gloss vocabulary (edge_slr.decoding.vocab.Vocabulary)
    DIR/SPLIT/index.tsv         id, signer, num_frames, glosses (space-separated), one per line
    DIR/SPLIT/ID.npz            landmarks (edge_slr.landmarks.io .npz: (T, 543, 4) float32)
    DIR/SPLIT/ID.frames.npz     optional video frames: ``frames`` uint8 (T, H, W, 3) RGB
    DIR/SPLIT/ID.pose           optional pose-format copy of the landmarks

Every file is written to a temporary name and renamed into place (``os.replace``), so a file
under its final name is always complete; a writer that is interrupted and run again skips the
samples whose files exist (:meth:`DatasetWriter.complete_sample`) and removes stale temporary
files. ``index.tsv`` is written last, in a deterministic order, when a split is finished.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr.errors import FormatError, InputError

logger = logging.getLogger(__name__)

FORMAT_NAME = "edge-slr-landmark-dataset"
FORMAT_VERSION = 1
DESCRIPTION_FILE = "dataset.json"
VOCABULARY_FILE = "vocabulary.json"
INDEX_FILE = "index.tsv"
INDEX_HEADER = ("id", "signer", "num_frames", "glosses")
FRAMES_SUFFIX = ".frames.npz"
_TEMP_SUFFIXES = (".partial", ".tmp")
_FORBIDDEN_IN_ID = ("/", "\\", "\t", "\n", " ")


@dataclass(frozen=True)
class IndexEntry:
    """One line of ``index.tsv``."""

    id: str
    signer: str
    num_frames: int
    glosses: tuple[str, ...]


@dataclass(frozen=True)
class DatasetItem:
    """A sample as read back: ids, glosses and its landmark sequence."""

    id: str
    signer: str
    glosses: tuple[str, ...]
    landmarks: Any  # edge_slr.landmarks.sequence.LandmarkSequence


def _check_id(sample_id: str) -> str:
    if (
        not isinstance(sample_id, str)
        or not sample_id
        or any(c in sample_id for c in _FORBIDDEN_IN_ID)
    ):
        raise InputError(
            f"sample id {sample_id!r} must be a non-empty string without '/', '\\\\', tabs, "
            f"newlines or spaces"
        )
    return sample_id


def _check_split(split: str) -> str:
    if not isinstance(split, str) or not split or any(c in split for c in _FORBIDDEN_IN_ID):
        raise InputError(f"split name {split!r} must be a non-empty name without separators")
    return split


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON (sorted keys, UTF-8) through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n", "utf-8")
    os.replace(tmp, path)


def write_index(path: Path, entries: Sequence[IndexEntry]) -> None:
    lines = ["\t".join(INDEX_HEADER)]
    for e in entries:
        for gloss in e.glosses:
            if not gloss or any(c in gloss for c in " \t\n"):
                raise InputError(f"sample {e.id}: gloss {gloss!r} contains whitespace or is empty")
        lines.append(f"{_check_id(e.id)}\t{e.signer}\t{int(e.num_frames)}\t{' '.join(e.glosses)}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_index(path: Path) -> list[IndexEntry]:
    """Parse ``index.tsv``; FormatError with the line number for every malformed line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise FormatError(
            path, "index file does not exist (is this a dataset split folder?)"
        ) from None
    except UnicodeDecodeError as err:
        raise FormatError(path, f"not UTF-8 text ({err})") from None
    if not lines or tuple(lines[0].split("\t")) != INDEX_HEADER:
        got = lines[0] if lines else "<empty file>"
        raise FormatError(
            path, f"expected the header {'<TAB>'.join(INDEX_HEADER)!r}, got {got!r}", 1
        )
    entries, seen = [], set()
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 4:
            raise FormatError(path, f"expected 4 tab-separated fields, got {len(fields)}", number)
        sample_id, signer, frames, glosses = fields
        try:
            num_frames = int(frames)
        except ValueError:
            num_frames = -1
        if num_frames < 1:
            raise FormatError(
                path, f"num_frames must be a positive integer, got {frames!r}", number
            )
        if not sample_id or sample_id in seen:
            raise FormatError(path, f"sample id {sample_id!r} is empty or repeated", number)
        seen.add(sample_id)
        entries.append(IndexEntry(sample_id, signer, num_frames, tuple(glosses.split())))
    return entries


def write_frames(path: Path, frames: np.ndarray) -> None:
    """Write uint8 RGB frames (T, H, W, 3) as a compressed ``.frames.npz``, atomically."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise InputError(
            f"frames must be uint8 of shape (T, H, W, 3) with T >= 1, got {frames.dtype} {frames.shape}"
        )
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as handle:
        np.savez_compressed(handle, frames=frames)
    os.replace(tmp, path)


def read_frames(path: Path) -> np.ndarray:
    """Read a ``.frames.npz`` file back; FormatError when it is not one."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            frames = archive["frames"]
    except FileNotFoundError:
        raise FormatError(path, "frames file does not exist") from None
    except (KeyError, zipfile.BadZipFile, EOFError, OSError, ValueError, TypeError) as err:
        raise FormatError(
            path, f"not a readable frames archive ({type(err).__name__}: {err})"
        ) from None
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise FormatError(
            path, f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}"
        )
    return frames


class DatasetWriter:
    """Writes samples, vocabulary, description and indexes under ``root``.

    ``description`` is stored in dataset.json; when the folder already holds a dataset, its
    description must agree (same generator settings), so that a resumed or extended run can
    never mix two different datasets.
    """

    def __init__(
        self, root: str | Path, description: dict[str, Any], vocabulary: Any = None
    ) -> None:
        self.root = Path(root)
        self.description = json.loads(json.dumps(description))  # a plain-JSON copy
        self.vocabulary = vocabulary
        self.root.mkdir(parents=True, exist_ok=True)
        existing = self._read_description()
        if existing is not None:
            self._check_compatible(existing)
        else:
            write_json_atomic(self.root / DESCRIPTION_FILE, self._document({}))
        if vocabulary is not None:
            self._write_vocabulary(vocabulary)

    def _document(self, splits: dict[str, Any]) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            **self.description,
            "splits": splits,
        }

    def _read_description(self) -> dict[str, Any] | None:
        path = self.root / DESCRIPTION_FILE
        if not path.exists():
            return None
        return read_description(self.root)

    def _check_compatible(self, existing: dict[str, Any]) -> None:
        differs = sorted(
            key for key in self.description if existing.get(key) != self.description[key]
        )
        if differs:
            details = "; ".join(
                f"{k}: on disk {existing.get(k)!r}, requested {self.description[k]!r}"
                for k in differs
            )
            raise InputError(
                f"{self.root} already holds a different dataset ({details}); "
                f"use another output folder or the same settings"
            )

    def _write_vocabulary(self, vocabulary: Any) -> None:
        path = self.root / VOCABULARY_FILE
        if path.exists():
            from edge_slr.decoding.vocab import Vocabulary

            on_disk = Vocabulary.load(path)
            if on_disk.glosses != vocabulary.glosses:
                raise InputError(
                    f"{path} holds another vocabulary ({len(on_disk)} entries, sha256 "
                    f"{on_disk.sha256[:12]}) than this run's ({len(vocabulary)} entries, "
                    f"sha256 {vocabulary.sha256[:12]})"
                )
            return
        vocabulary.save(path)

    def split_dir(self, split: str) -> Path:
        return self.root / _check_split(split)

    def start_split(self, split: str) -> None:
        """Create the split folder and remove temporary files an interrupted run left behind."""
        folder = self.split_dir(split)
        folder.mkdir(parents=True, exist_ok=True)
        for path in folder.iterdir():
            if path.name.endswith(_TEMP_SUFFIXES):
                path.unlink()
                logger.info("removed unfinished file %s", path)

    def complete_sample(
        self, split: str, sample_id: str, *, frames: bool, pose: bool
    ) -> int | None:
        """Frame count of a sample whose requested files all exist and load, else None."""
        from edge_slr.landmarks.io import read_npz

        folder = self.split_dir(split)
        landmarks = folder / f"{_check_id(sample_id)}.npz"
        needed = [landmarks]
        if frames:
            needed.append(folder / f"{sample_id}{FRAMES_SUFFIX}")
        if pose:
            needed.append(folder / f"{sample_id}.pose")
        if not all(p.exists() for p in needed):
            return None
        try:
            return read_npz(landmarks).num_frames
        except FormatError as err:
            logger.warning("remaking %s: %s", sample_id, err)
            return None

    def write_sample(
        self,
        split: str,
        sample_id: str,
        landmarks: Any,
        *,
        frames: np.ndarray | None = None,
        pose: bool = False,
    ) -> None:
        """Write one sample's files; the landmark ``.npz`` last, as the completion mark."""
        from edge_slr.landmarks.io import save_landmarks

        folder = self.split_dir(split)
        _check_id(sample_id)
        if frames is not None:
            if len(frames) != landmarks.num_frames:
                raise InputError(
                    f"sample {sample_id}: {len(frames)} video frames for "
                    f"{landmarks.num_frames} landmark frames"
                )
            write_frames(folder / f"{sample_id}{FRAMES_SUFFIX}", frames)
        if pose:
            save_landmarks(folder / f"{sample_id}.pose", landmarks)
        save_landmarks(folder / f"{sample_id}.npz", landmarks)

    def finish_split(self, split: str, entries: Sequence[IndexEntry], info: dict[str, Any]) -> None:
        """Write the split's index and record ``info`` (plus counts) in dataset.json."""
        write_index(self.split_dir(split) / INDEX_FILE, entries)
        document = self._read_description() or self._document({})
        splits = dict(document.get("splits", {}))
        splits[split] = {
            **json.loads(json.dumps(info)),
            "samples": len(entries),
            "frames_total": int(sum(e.num_frames for e in entries)),
        }
        write_json_atomic(self.root / DESCRIPTION_FILE, self._document(splits))


def read_description(root: str | Path) -> dict[str, Any]:
    path = Path(root) / DESCRIPTION_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FormatError(path, "dataset description does not exist") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FormatError(path, f"not JSON ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise FormatError(path, f"not an edge-slr dataset description (format {FORMAT_NAME!r})")
    if data.get("version") != FORMAT_VERSION:
        raise FormatError(
            path, f"dataset version {data.get('version')!r}; expected {FORMAT_VERSION}"
        )
    return data


class LandmarkDataset:
    """One split of a dataset folder: ``LandmarkDataset(root, "train")[i] -> DatasetItem``.

    Items can be looked up by position or by sample id. ``description`` is dataset.json (empty
    when the folder has none); ``vocabulary`` is loaded from vocabulary.json on first use.
    """

    def __init__(self, root: str | Path, split: str) -> None:
        self.root = Path(root)
        self.split = _check_split(split)
        self.folder = self.root / split
        if not self.folder.is_dir():
            available = (
                sorted(p.name for p in self.root.iterdir() if (p / INDEX_FILE).exists())
                if self.root.is_dir()
                else []
            )
            raise InputError(
                f"{self.root} has no split {split!r}; splits found: {available or 'none'}"
            )
        self.samples: list[IndexEntry] = read_index(self.folder / INDEX_FILE)
        self._by_id = {e.id: i for i, e in enumerate(self.samples)}
        self.description: dict[str, Any] = (
            read_description(self.root) if (self.root / DESCRIPTION_FILE).exists() else {}
        )
        self._vocabulary: Any = None

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def signers(self) -> tuple[str, ...]:
        return tuple(sorted({e.signer for e in self.samples}))

    @property
    def vocabulary(self) -> Any:
        if self._vocabulary is None:
            from edge_slr.decoding.vocab import Vocabulary

            self._vocabulary = Vocabulary.load(self.root / VOCABULARY_FILE)
        return self._vocabulary

    def _entry(self, key: int | str) -> IndexEntry:
        if isinstance(key, str):
            if key not in self._by_id:
                raise KeyError(f"no sample {key!r} in {self.folder}")
            return self.samples[self._by_id[key]]
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not -len(self) <= key < len(self):
                raise IndexError(f"sample index {key} out of range for {len(self)} samples")
            return self.samples[int(key)]
        raise InputError(f"dataset keys are ints or sample ids, got {key!r}")

    def __getitem__(self, key: int | str) -> DatasetItem:
        from edge_slr.landmarks.io import read_npz

        entry = self._entry(key)
        path = self.folder / f"{entry.id}.npz"
        landmarks = read_npz(path)
        if landmarks.num_frames != entry.num_frames:
            raise FormatError(
                path, f"has {landmarks.num_frames} frames but index.tsv says {entry.num_frames}"
            )
        return DatasetItem(entry.id, entry.signer, entry.glosses, landmarks)

    def has_frames(self, key: int | str) -> bool:
        return (self.folder / f"{self._entry(key).id}{FRAMES_SUFFIX}").exists()

    def load_frames(self, key: int | str) -> np.ndarray:
        """The sample's video frames (T, H, W, 3) uint8; FormatError when it has none."""
        entry = self._entry(key)
        frames = read_frames(self.folder / f"{entry.id}{FRAMES_SUFFIX}")
        if len(frames) != entry.num_frames:
            raise FormatError(
                self.folder / f"{entry.id}{FRAMES_SUFFIX}",
                f"has {len(frames)} frames but index.tsv says {entry.num_frames}",
            )
        return frames
