"""Calibration and held-out sequences for conversion, read from a landmark dataset folder.

A dataset folder (``edge_slr.data.dataset`` layout, SignSynth output or real extracted data)
provides both: INT8 calibration statistics come from its training split (the distribution the
model was trained on), verification runs on a held-out split (dev, else test) and compares the
converted model's decodes and WER with the FP32 PyTorch reference.

Sequences are chosen evenly across a split (every k-th sample, deterministic), so they cover
its signers and lengths; lengths stay variable (no padding, no cropping).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr.errors import FormatError, InputError

logger = logging.getLogger(__name__)

HELDOUT_SPLITS = ("dev", "test")


@dataclass(frozen=True)
class LabelledSequence:
    id: str
    features: np.ndarray  # (T, F) float32, the checkpoint's feature preset applied
    glosses: tuple[str, ...]


@dataclass(frozen=True)
class SequenceSet:
    """Feature sequences of one split, with their reference glosses and scoring corpus."""

    root: Path
    split: str
    sequences: tuple[LabelledSequence, ...]
    corpus: str  # scoring rules (edge_slr.metrics), from dataset.json
    skipped_short: int = 0  # samples shorter than the model's minimum input length

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def references(self) -> dict[str, tuple[str, ...]]:
        return {s.id: s.glosses for s in self.sequences}

    def summary(self) -> dict[str, Any]:
        """What the sidecar records: where the data came from and its length distribution."""
        lengths = np.array([len(s.features) for s in self.sequences])
        ids = "\n".join(s.id for s in self.sequences).encode("utf-8")
        return {
            "dataset": str(self.root),
            "split": self.split,
            "sequences": len(self.sequences),
            "frames": {
                "min": int(lengths.min()),
                "median": float(np.median(lengths)),
                "max": int(lengths.max()),
                "total": int(lengths.sum()),
            },
            "skipped_short": self.skipped_short,
            "ids_sha256": hashlib.sha256(ids).hexdigest(),
        }


def evenly_spaced(count: int, limit: int) -> list[int]:
    """``limit`` indices spread over ``range(count)`` (all of them when ``limit`` >= count)."""
    if limit <= 0 or limit >= count:
        return list(range(count))
    return sorted({int(i) for i in np.linspace(0, count - 1, limit).round()})


def load_sequences(
    root: str | Path,
    split: str,
    preset: Any,
    *,
    limit: int,
    min_frames: int = 1,
    vocabulary_sha256: str | None = None,
) -> SequenceSet:
    """Up to ``limit`` sequences of ``split`` as features of ``preset`` (a FeaturePreset).

    ``vocabulary_sha256`` (the checkpoint's) must match the dataset's vocabulary: references
    scored against another vocabulary would make the WER comparison meaningless.
    """
    from edge_slr.data.dataset import LandmarkDataset
    from edge_slr.decoding.vocab import Vocabulary
    from edge_slr.training.evaluate import scoring_corpus

    root = Path(root)
    if not (root / "dataset.json").is_file():
        raise InputError(
            f"calibration data {root} is not a landmark dataset folder (no dataset.json); "
            "expected the layout written by `edge-slr data synth` or landmark extraction"
        )
    if vocabulary_sha256 is not None:
        dataset_vocab = Vocabulary.load(root / "vocabulary.json")
        if dataset_vocab.sha256 != vocabulary_sha256:
            raise InputError(
                f"calibration data {root} has another vocabulary than the checkpoint "
                f"({len(dataset_vocab)} glosses, sha256 {dataset_vocab.sha256[:12]}...; the "
                f"checkpoint's is {vocabulary_sha256[:12]}...): use the dataset it was trained on"
            )
    dataset = LandmarkDataset(root, split)
    picked, short = [], 0
    entries = dataset.samples
    # Short samples are skipped before spacing, so `limit` sequences come back when possible.
    usable = [i for i, e in enumerate(entries) if e.num_frames >= min_frames]
    short = len(entries) - len(usable)
    for index in evenly_spaced(len(usable), limit):
        item = dataset[usable[index]]
        features = preset.features(item.landmarks)
        if not np.isfinite(features).all():
            raise FormatError(root / split, f"sample {item.id}: features contain NaN or inf")
        picked.append(LabelledSequence(item.id, features, tuple(item.glosses)))
    if not picked:
        raise InputError(
            f"{root}/{split} has no sequence of at least {min_frames} frames "
            f"({len(entries)} samples, all shorter)"
        )
    return SequenceSet(root, split, tuple(picked), scoring_corpus(root), short)


def heldout_split(root: str | Path, requested: str = "") -> str:
    """The split verification uses: ``requested``, else dev, else test."""
    root = Path(root)
    if requested:
        return requested
    for split in HELDOUT_SPLITS:
        if (root / split / "index.tsv").is_file():
            return split
    raise InputError(
        f"{root} has no held-out split ({' or '.join(HELDOUT_SPLITS)}) to verify conversions on"
    )
