"""Frame-level pretraining of the teacher's ResNet (our stand-in for ImageNet weights).

CorrNet starts from an ImageNet ResNet-18; trained from random weights with CTC alone, our small
teacher sat on the CTC plateau (dev WER 96%, CTC 4.1 per gloss, no progress from epoch 4 to 7
of configs/teacher-kd-subset.toml). So before the CTC training, the backbone learns to name the
gloss of single frames: frame-level gloss labels come from the sentence's segmentation (SignSynth
stores the frame span of every gloss in the landmark metadata; PHOENIX-2014-T ships comparable
HMM frame alignments, the classic CNN-HMM recipe). Frames outside every span (rest, transitions)
are class 0. Each epoch draws ``frames_per_sentence`` random frames of every training sentence,
so an epoch costs a few percent of a CTC epoch.

The result is an ordinary torchvision-named backbone state dict (``OUT/backbone.pth``), loaded
like any other backbone weights (``model.backbone_weights``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr._optional import require
from edge_slr.errors import InputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainConfig:
    """The ``[pretrain]`` table of a teacher config; ``epochs = 0`` skips pretraining."""

    epochs: int = 0
    frames_per_sentence: int = 16
    batch_size: int = 64
    lr: float = 1e-3

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.frames_per_sentence < 1 or self.batch_size < 1 or self.lr <= 0:
            raise InputError(
                "pretrain epochs must be >= 0, frames_per_sentence and batch_size >= 1, lr > 0; "
                f"got {self.epochs}, {self.frames_per_sentence}, {self.batch_size}, {self.lr}"
            )


def frame_labels(metadata: dict[str, Any], num_frames: int, vocab: Any) -> np.ndarray:
    """Gloss id of every frame from the metadata's ``spans`` ([gloss, start, end), ...); 0 outside."""
    spans = metadata.get("spans")
    if not spans:
        raise InputError(
            "frame-level pretraining needs the frame span of every gloss (SignSynth writes "
            "'spans' into the landmark metadata); this sample has none"
        )
    labels = np.zeros(num_frames, dtype=np.int64)
    for gloss, start, end in spans:
        labels[max(0, int(start)) : min(num_frames, int(end))] = vocab.index(gloss)
    return labels


def pretrain_backbone(
    dataset: Any,
    backbone: Any,
    num_classes: int,
    config: PretrainConfig,
    *,
    seed: int = 0,
    device: Any = "cpu",
) -> list[dict[str, float]]:
    """Train ``backbone`` (in place, on ``device``) to classify single frames of ``dataset``.

    Returns every epoch's loss and frame accuracy on the sampled training frames.
    """
    torch = require("torch", "pretraining the teacher backbone")
    labels = []
    for position, index in enumerate(dataset.indices):
        item = dataset.source[index]
        labels.append(
            frame_labels(item.landmarks.metadata, dataset.lengths[position], dataset.vocab)
        )
    backbone.to(device)
    head = torch.nn.Linear(backbone.channels[-1], num_classes).to(device)
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
    parameters = list(backbone.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(parameters, lr=config.lr, weight_decay=1e-4)
    backbone.train()
    history: list[dict[str, float]] = []
    for epoch in range(1, config.epochs + 1):
        rng = np.random.default_rng([seed, epoch, 11])
        dataset.set_epoch(epoch)
        picks = [
            (position, int(t))
            for position in range(len(dataset))
            for t in rng.integers(0, dataset.lengths[position], config.frames_per_sentence)
        ]
        order = rng.permutation(len(picks))
        started, total, correct = time.perf_counter(), 0.0, 0
        for start in range(0, len(order), config.batch_size):
            chosen = [picks[i] for i in order[start : start + config.batch_size]]
            frames = np.stack([dataset.frame(p, t) for p, t in chosen])
            target = torch.tensor([labels[p][t] for p, t in chosen], device=device)
            x = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float() / 255.0
            logits = head(backbone((x - mean) / std))
            loss = torch.nn.functional.cross_entropy(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(chosen)
            correct += int((logits.argmax(-1) == target).sum())
        stats = {"loss": total / len(picks), "frame_accuracy": correct / len(picks)}
        history.append(stats)
        logger.info(
            "backbone pretraining epoch %d: loss %.3f, frame accuracy %.1f%% (%.0f s)",
            epoch,
            stats["loss"],
            100 * stats["frame_accuracy"],
            time.perf_counter() - started,
        )
    return history


def save_backbone(backbone: Any, path: str | Path) -> Path:
    torch = require("torch", "saving backbone weights")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(backbone.state_dict(), path)
    return path
