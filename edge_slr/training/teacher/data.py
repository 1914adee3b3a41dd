"""Feeding video frames to the teacher: resized frames, gloss targets, padded batches.

:class:`VideoDataset` reads ``ID.frames.npz`` of a landmark dataset split (SignSynth with
``--frames``), resizes the frames to the teacher's input size once (area averaging, on load) and
keeps them in memory as uint8 (64 x 64 x 3 = 12 kB per frame). Training augmentation is cheap
and spatial only, the same for every frame of a sequence (a random shift of up to
``shift`` pixels, a brightness/contrast jitter, and a horizontal flip with probability
``flip_p``, as CorrNet trains: the mirror image of a signer is a plausible left-handed signer,
which matters for signer-independent splits), so the time axis, and with it the alignment to
the student's outputs, never changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_slr._optional import require
from edge_slr.errors import InputError
from edge_slr.training.data import TensorBatch, ctc_min_steps

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoExample:
    id: str
    frames: np.ndarray  # (T, S, S, 3) uint8
    targets: np.ndarray  # (L,) int64
    glosses: tuple[str, ...]
    fps: float = 25.0


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, size, size, 3) uint8 by area averaging (antialiased)."""
    torch = require("torch", "resizing video frames")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InputError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if frames.shape[1:3] == (size, size):
        return frames
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="area")
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


class VideoDataset:
    """Map-style dataset over the video frames of a LandmarkDataset split.

    ``output_length`` (the teacher's frames -> steps) lets it drop sentences CTC cannot align
    (``require_alignable``), as the student's dataset does; evaluation keeps them and scores
    them as empty hypotheses (``skipped``).
    """

    def __init__(
        self,
        source: Any,
        vocab: Any,
        size: int,
        *,
        output_length: Callable[[int], int],
        oov: str = "error",
        max_samples: int = 0,
        require_alignable: bool = True,
        shift: int = 0,
        jitter: float = 0.0,
        flip_p: float = 0.0,
        seed: int = 0,
    ) -> None:
        if shift < 0 or not 0.0 <= jitter < 1.0 or not 0.0 <= flip_p <= 1.0:
            raise InputError(
                f"shift must be >= 0, jitter in [0, 1) and flip_p in [0, 1], got {shift}, "
                f"{jitter}, {flip_p}"
            )
        self.source, self.vocab, self.size = source, vocab, size
        self.shift, self.jitter, self.flip_p = shift, jitter, flip_p
        self.seed, self.epoch = seed, 0
        self._frames: dict[int, np.ndarray] = {}
        samples = list(source.samples)[: max_samples or None]
        self.indices: list[int] = []
        self.targets: list[np.ndarray] = []
        self.lengths: list[int] = []
        self.skipped: list[tuple[str, tuple[str, ...]]] = []
        for i, sample in enumerate(samples):
            if not source.has_frames(i):
                raise InputError(
                    f"sample {sample.id} of {source.folder} has no video frames "
                    f"({sample.id}.frames.npz): make the dataset with `edge-slr data synth "
                    "--frames`"
                )
            targets = np.asarray(vocab.encode(list(sample.glosses), oov=oov), dtype=np.int64)
            needed = ctc_min_steps(targets.tolist()) if require_alignable else 0
            if output_length(int(sample.num_frames)) < max(1, needed):
                self.skipped.append((sample.id, tuple(sample.glosses)))
                continue
            self.indices.append(i)
            self.targets.append(targets)
            self.lengths.append(int(sample.num_frames))
        if self.skipped:
            logger.warning(
                "%d of %d sentences are too short for the teacher and are skipped (first: %s)",
                len(self.skipped),
                len(samples),
                self.skipped[0][0],
            )
        if not self.indices:
            raise InputError(f"no usable sentence among {len(samples)} in {source.folder}")

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def frames(self, position: int) -> np.ndarray:
        index = self.indices[position]
        if index not in self._frames:
            self._frames[index] = resize_frames(self.source.load_frames(index), self.size)
        return self._frames[index]

    def __getitem__(self, position: int) -> VideoExample:
        entry = self.source.samples[self.indices[position]]
        frames = self.frames(position)
        if self.augmenting:
            rng = np.random.default_rng([self.seed, self.epoch, position])
            frames = self._augment(frames, rng)
        return VideoExample(entry.id, frames, self.targets[position], tuple(entry.glosses))

    @property
    def augmenting(self) -> bool:
        return bool(self.shift or self.jitter or self.flip_p)

    def frame(self, position: int, t: int) -> np.ndarray:
        """Frame ``t`` of a sentence with that sentence's augmentation (cheap: one frame)."""
        frames = self.frames(position)[t : t + 1]
        if self.augmenting:
            frames = self._augment(frames, np.random.default_rng([self.seed, self.epoch, position]))
        return frames[0]

    def _augment(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.shift:
            dy, dx = rng.integers(-self.shift, self.shift + 1, size=2)
            # Edge replication: the synthetic background is flat, so no border appears.
            padded = np.pad(
                frames, ((0, 0), (self.shift,) * 2, (self.shift,) * 2, (0, 0)), mode="edge"
            )
            y0, x0 = self.shift + dy, self.shift + dx
            frames = padded[:, y0 : y0 + self.size, x0 : x0 + self.size]
        if self.jitter:
            gain = 1.0 + rng.uniform(-self.jitter, self.jitter)
            offset = 255.0 * rng.uniform(-self.jitter, self.jitter) / 2
            frames = np.clip(frames.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
        if self.flip_p and rng.random() < self.flip_p:
            frames = frames[:, :, ::-1]
        return np.ascontiguousarray(frames)


@dataclass
class VideoBatch(TensorBatch):
    TENSORS = ("frames", "lengths", "targets", "target_lengths")  # frames stay uint8: 4x less

    ids: list[str]
    frames: torch.Tensor  # (B, T, S, S, 3) uint8, zero beyond each length
    lengths: torch.Tensor  # (B,) int64
    targets: torch.Tensor  # (sum L,) int64
    target_lengths: torch.Tensor  # (B,) int64
    glosses: list[tuple[str, ...]]
    fps: list[float]


def collate_video(examples: Sequence[VideoExample]) -> VideoBatch:
    torch = require("torch", "batching video")
    lengths = torch.tensor([len(e.frames) for e in examples], dtype=torch.int64)
    frames = torch.zeros((len(examples), int(lengths.max()), *examples[0].frames.shape[1:]),
                         dtype=torch.uint8)  # fmt: skip
    for row, example in enumerate(examples):
        frames[row, : len(example.frames)] = torch.from_numpy(example.frames)
    return VideoBatch(
        ids=[e.id for e in examples],
        frames=frames,
        lengths=lengths,
        targets=torch.from_numpy(np.concatenate([e.targets for e in examples])),
        target_lengths=torch.tensor([len(e.targets) for e in examples], dtype=torch.int64),
        glosses=[e.glosses for e in examples],
        fps=[e.fps for e in examples],
    )
