"""Feeding a landmark dataset to the student: features, targets, length buckets, padded batches.

:class:`StudentDataset` wraps an ``edge_slr.data.dataset.LandmarkDataset``: each item is the
landmark sequence (augmented when training), turned into preset features (T, F), and the
sentence's gloss ids. :class:`BucketBatchSampler` groups sequences of similar length so little
padding is computed; :func:`collate` pads a batch and keeps the true lengths and a padding mask.

Everything random is derived from ``(seed, epoch, index)``, so an epoch is reproducible whether it
runs straight through or after a resume.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from edge_slr._optional import require
from edge_slr.errors import InputError
from edge_slr.landmarks.layout import LEFT_SHOULDER, NUM_POINTS, RIGHT_SHOULDER
from edge_slr.training.augment import AugmentConfig, augment, mirror_closed, subset_permutation

if TYPE_CHECKING:
    import torch

    from edge_slr.decoding.vocab import OOVPolicy, Vocabulary

logger = logging.getLogger(__name__)


def ctc_min_steps(targets: Sequence[int]) -> int:
    """Output steps CTC needs for ``targets``: one per label plus a blank between repeats."""
    repeats = sum(1 for a, b in zip(targets[:-1], targets[1:], strict=True) if a == b)
    return len(targets) + repeats


@dataclass(frozen=True)
class Example:
    id: str
    features: np.ndarray  # (T, F) float32
    targets: np.ndarray  # (L,) int64 gloss ids (no blank)
    glosses: tuple[str, ...]  # reference glosses as stored (for scoring)
    fps: float = 25.0


class StudentDataset:
    """Map-style dataset (torch's protocol) over a LandmarkDataset split.

    ``output_length`` (the student's frames -> output steps) lets the dataset drop sentences that
    CTC cannot align (too short for their gloss count) and reject augmentations that would make
    a sentence unalignable. ``oov`` is passed to the vocabulary: "error" for training data,
    "drop" for evaluation targets (references are scored from the raw glosses anyway).

    Without augmentation the features are computed once from the full landmarks and kept. With
    augmentation, the landmarks of the preset's points (plus shoulders and mirror partners) are
    kept in memory (``cache_landmarks``) and augmented there; the other points are treated as
    missing, which changes nothing for a shoulder-normalised preset (a sequence with no
    shoulders at all falls back to the bounding box of these points instead of all points).
    """

    def __init__(
        self,
        source: Any,
        vocab: Vocabulary,
        preset: Any,
        *,
        output_length: Callable[[int], int],
        augment_config: AugmentConfig | None = None,
        seed: int = 0,
        oov: OOVPolicy = "error",
        max_samples: int = 0,
        require_alignable: bool = True,
        cache_landmarks: bool = True,
    ) -> None:
        self.source = source
        self.vocab = vocab
        self.preset = preset
        self.output_length = output_length
        self.augment_config = augment_config if augment_config and augment_config.enabled else None
        # Used when a temporal transform would make a sentence too short to align.
        self._spatial_config = (
            replace(self.augment_config, fusion_p=0.0, time_rescale_p=0.0)
            if self.augment_config is not None
            else None
        )
        self.seed = seed
        self.epoch = 0
        self.cache_landmarks = cache_landmarks
        self._features_cache: dict[int, tuple[np.ndarray, float]] = {}
        self._landmark_cache: dict[int, tuple[np.ndarray, float]] = {}
        # Augmentation only needs the preset's points, the shoulders (normalisation) and their
        # mirror partners: about 94 of 543 points for kdmslrt92, so 6x less to keep and augment.
        self.points = mirror_closed([*preset.points, LEFT_SHOULDER, RIGHT_SHOULDER])
        self._flip = subset_permutation(self.points)
        samples = list(source.samples)
        if max_samples:
            samples = samples[:max_samples]
        self.indices: list[int] = []
        self.targets: list[np.ndarray] = []
        self.lengths: list[int] = []
        # Sentences the model cannot take (id, reference glosses): evaluation scores them as
        # empty hypotheses instead of silently leaving them out of the WER.
        self.skipped: list[tuple[str, tuple[str, ...]]] = []
        for i, sample in enumerate(samples):
            targets = np.asarray(vocab.encode(list(sample.glosses), oov=oov), dtype=np.int64)
            steps = output_length(int(sample.num_frames))
            needed = ctc_min_steps(targets.tolist()) if require_alignable else 0
            if steps < max(1, needed):
                self.skipped.append((sample.id, tuple(sample.glosses)))
                continue
            self.indices.append(i)
            self.targets.append(targets)
            self.lengths.append(int(sample.num_frames))
        if self.skipped:
            reason = "too short for their glosses" if require_alignable else "too short"
            logger.warning(
                "%d of %d sentences are %s and are skipped (first: %s)",
                len(self.skipped),
                len(samples),
                reason,
                self.skipped[0][0],
            )
        if not self.indices:
            raise InputError(
                f"no usable sentence in {len(samples)}: every one is shorter than the student "
                "needs (or the split is empty)"
            )

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _features(self, landmarks: np.ndarray) -> np.ndarray:
        return np.asarray(self.preset.features(landmarks), dtype=np.float32)

    def __getitem__(self, position: int) -> Example:
        index = self.indices[position]
        entry = self.source.samples[index]
        targets = self.targets[position]
        if self.augment_config is None:
            if index not in self._features_cache:
                item = self.source[index]
                features = self._features(item.landmarks.data)
                self._features_cache[index] = (features, float(item.landmarks.fps))
            features, fps = self._features_cache[index]
        else:
            compact, fps = self._compact(index)
            features = self._augmented(compact, targets, position)
        return Example(entry.id, features, targets, tuple(entry.glosses), fps)

    def _compact(self, index: int) -> tuple[np.ndarray, float]:
        """The sample's landmarks restricted to ``self.points`` (read once, then kept)."""
        cached = self._landmark_cache.get(index)
        if cached is None:
            item = self.source[index]
            cached = (np.ascontiguousarray(item.landmarks.data[:, self.points]), item.landmarks.fps)
            if self.cache_landmarks:
                self._landmark_cache[index] = cached
        return cached

    def _augmented(self, compact: np.ndarray, targets: np.ndarray, position: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch, position])
        needed = ctc_min_steps(targets.tolist())
        assert self.augment_config is not None and self._spatial_config is not None
        augmented = augment(compact, self.augment_config, rng, self._flip)
        if self.output_length(augmented.shape[0]) < needed:
            # A temporal transform made the sentence too short to align: keep its timing.
            augmented = augment(compact, self._spatial_config, rng, self._flip)
        full = np.zeros((len(augmented), NUM_POINTS, 4), dtype=np.float32)  # others: missing
        full[:, self.points] = augmented
        return self._features(full)


class BucketBatchSampler:
    """Batches of similar length: shuffle, take windows of ``batch_size * bucket_width`` items,
    sort each window by length, cut it into batches, shuffle the batches. Deterministic per epoch.
    ``shuffle=False`` gives length-sorted batches (evaluation)."""

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        bucket_width: int = 8,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        if batch_size < 1 or bucket_width < 1:
            raise InputError(
                f"batch_size and bucket_width must be >= 1, got {batch_size}, {bucket_width}"
            )
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.bucket_width = bucket_width
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        n = len(self.lengths)
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            return [order[i : i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        rng = np.random.default_rng([self.seed, self.epoch, 7])
        order = rng.permutation(n)
        window = self.batch_size * self.bucket_width
        batches = []
        for start in range(0, n, window):
            chunk = order[start : start + window]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [
                chunk[i : i + self.batch_size].tolist()
                for i in range(0, len(chunk), self.batch_size)
            ]
        return [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)


def plan_steps(
    batches: Sequence[Sequence[int]], rank: int = 0, world_size: int = 1, accumulation: int = 1
) -> list[list[tuple[list[int], float]]]:
    """This rank's micro-batches of every optimizer step, each with its loss weight.

    Each global batch (of ``BucketBatchSampler``, built with batch size
    ``batch_size * world_size * accumulation``) is cut, in length order, into
    ``world_size * accumulation`` micro-batches; micro-batch ``a * world_size + rank`` belongs
    to ``rank``. A micro-batch's mean loss is weighted by ``world_size * n / N`` (n its size, N
    the global batch's): summed over the rank's micro-batches and averaged over ranks by DDP,
    this is the global batch's mean loss, whatever the split. A global batch with fewer
    sentences than micro-batches repeats some (as torch's DistributedSampler pads).
    """
    parts = world_size * accumulation
    plan = []
    for batch in batches:
        items = np.asarray(batch, dtype=np.int64)
        if len(items) < parts:
            items = np.resize(items, parts)
        micro = np.array_split(items, parts)
        mine = [micro[a * world_size + rank] for a in range(accumulation)]
        plan.append([(m.tolist(), world_size * len(m) / len(items)) for m in mine])
    return plan


class TensorBatch:
    """Moving a batch dataclass (with ``ids``) whose :attr:`TENSORS` fields are torch tensors;
    the other fields (ids, glosses, fps) stay where they are."""

    TENSORS: ClassVar[tuple[str, ...]] = ()
    ids: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def to(self, device: Any, non_blocking: bool = False) -> Any:
        """The batch with its tensors on ``device``."""
        moved = {n: getattr(self, n).to(device, non_blocking=non_blocking) for n in self.TENSORS}
        return replace(self, **moved)  # type: ignore[type-var]

    def pin_memory(self) -> Any:  # DataLoader(pin_memory=True) calls this
        pinned = {n: getattr(self, n).pin_memory() for n in self.TENSORS}
        return replace(self, **pinned)  # type: ignore[type-var]


@dataclass
class Batch(TensorBatch):
    TENSORS = ("features", "lengths", "mask", "targets", "target_lengths")

    ids: list[str]
    features: torch.Tensor  # (B, T, F) float32, zero beyond each length
    lengths: torch.Tensor  # (B,) int64 valid frames
    mask: torch.Tensor  # (B, T) bool, True on valid frames
    targets: torch.Tensor  # (sum L,) int64, concatenated
    target_lengths: torch.Tensor  # (B,) int64
    glosses: list[tuple[str, ...]]
    fps: list[float]


def collate(examples: Sequence[Example]) -> Batch:
    """Pad a list of examples into a :class:`Batch`."""
    torch = require("torch", "batching training data")
    lengths = torch.tensor([e.features.shape[0] for e in examples], dtype=torch.int64)
    width = examples[0].features.shape[1]
    features = torch.zeros(len(examples), int(lengths.max()), width, dtype=torch.float32)
    for row, example in enumerate(examples):
        features[row, : example.features.shape[0]] = torch.from_numpy(example.features)
    mask = torch.arange(features.shape[1])[None, :] < lengths[:, None]
    targets = torch.from_numpy(np.concatenate([e.targets for e in examples]).astype(np.int64))
    target_lengths = torch.tensor([len(e.targets) for e in examples], dtype=torch.int64)
    return Batch(
        ids=[e.id for e in examples],
        features=features,
        lengths=lengths,
        mask=mask,
        targets=targets,
        target_lengths=target_lengths,
        glosses=[e.glosses for e in examples],
        fps=[e.fps for e in examples],
    )
