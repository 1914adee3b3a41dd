"""CorrNet's correlation and identification modules (Hu et al., CVPR 2023), written here.

Both work on the flattened frames of a batch (sequence after sequence, no padding frames),
with the sequence lengths telling where each sequence starts and ends:

* correlation: every position p of frame t attends to all positions q of frames t-1 and t+1,
  with affinities ``sigmoid(<x_t(p), K x_t+-1(q)> / sqrt(C)) - 0.5``, and gathers their features;
  this is how CorrNet follows the hands across frames without optical flow. The first and last
  frame of a sequence are their own missing neighbours (CorrNet repeats the end frames).
* identification: a multi-scale spatio-temporal attention map in (-0.5, 0.5): channels reduced,
  depthwise 9x3x3 convolutions at spatial dilations 1, 2, 3 (over each sequence's frames, zero
  beyond its ends), a learned mixture, back to full channels, ``sigmoid - 0.5``. It picks out the
  informative regions (hands, face) and damps the background.

A :class:`CorrelationBlock` adds ``alpha * correlation(x) * identification(x)`` to a ResNet
stage's output; ``alpha`` starts at 0, so the backbone path is intact at the start.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

from edge_slr._optional import require

if TYPE_CHECKING:
    import torch


def build_correlation_block(channels: int, reduction: int = 16) -> torch.nn.Module:
    """One correlation + identification block for a stage with ``channels`` channels."""
    return correlation_classes()["CorrelationBlock"](channels, reduction)


def neighbour_index(torch: Any, lengths: torch.Tensor, step: int) -> torch.Tensor:
    """For flattened frames (sequence after sequence), the index of each frame's neighbour at
    ``step`` (+1 / -1) inside its own sequence; the ends repeat their own frame."""
    starts = torch.cumsum(lengths, 0) - lengths
    ends = starts + lengths - 1
    owner = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
    index = torch.arange(int(lengths.sum())) + step
    return torch.minimum(torch.maximum(index, starts[owner]), ends[owner])


@functools.cache  # the classes are defined once, on first use, so torch loads only then
def correlation_classes() -> dict[str, type]:
    return _define(require("torch", "the video teacher"))


def _define(torch: Any) -> dict[str, type]:
    nn = torch.nn
    module_base: Any = nn.Module  # a runtime base class: type checkers see Any

    def to_padded(flat: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(N, C, ...) frames of all sequences -> (B, C, T, ...) zero-padded."""
        mask = torch.arange(int(lengths.max()))[None] < lengths[:, None]
        padded = flat.new_zeros((len(lengths), mask.shape[1], *flat.shape[1:]))
        padded[mask] = flat
        return padded.transpose(1, 2)

    def to_flat(padded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = torch.arange(padded.shape[2])[None] < lengths[:, None]
        return padded.transpose(1, 2)[mask]

    class Correlation(module_base):
        """Features gathered from the previous and next frame, weighted by affinities."""

        def __init__(self, channels: int) -> None:
            super().__init__()
            self.key = nn.Conv2d(channels, channels, 1, bias=False)
            self.mix = nn.Parameter(torch.full((2,), 0.5))

        def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            n, c, h, w = x.shape
            query = x.flatten(2)  # (N, C, HW)
            keys = self.key(x).flatten(2)
            out = torch.zeros_like(query)
            for weight, step in zip(self.mix, (-1, 1), strict=True):
                neighbour = keys[neighbour_index(torch, lengths, step)]
                # Scaled dot products (as in attention): without 1/sqrt(C) the sigmoid
                # saturates at once for wide stages and the affinities stop learning.
                affinity = torch.einsum("ncp,ncq->npq", query, neighbour) / math.sqrt(c)
                gathered = torch.einsum("npq,ncq->ncp", torch.sigmoid(affinity) - 0.5, neighbour)
                out = out + weight * gathered
            return out.view(n, c, h, w)

    class Identification(module_base):
        """Multi-scale spatio-temporal attention map in (-0.5, 0.5)."""

        def __init__(self, channels: int, reduction: int) -> None:
            super().__init__()
            reduced = max(4, channels // reduction)
            self.down = nn.Conv2d(channels, reduced, 1, bias=False)
            self.scales = nn.ModuleList(
                nn.Conv3d(
                    reduced,
                    reduced,
                    (9, 3, 3),
                    padding=(4, d, d),
                    dilation=(1, d, d),
                    groups=reduced,
                    bias=False,
                )
                for d in (1, 2, 3)
            )
            self.mix = nn.Parameter(torch.full((3,), 1.0 / 3.0))
            self.back = nn.Conv2d(reduced, channels, 1, bias=False)

        def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            reduced = to_padded(self.down(x), lengths)  # (B, C', T, H, W)
            mixed = sum(w * conv(reduced) for w, conv in zip(self.mix, self.scales, strict=True))
            return torch.sigmoid(self.back(to_flat(mixed, lengths))) - 0.5

    class CorrelationBlock(module_base):
        """``x + alpha * correlation(x) * identification(x)`` on flattened frames."""

        def __init__(self, channels: int, reduction: int) -> None:
            super().__init__()
            self.correlation = Correlation(channels)
            self.identification = Identification(channels, reduction)
            self.alpha = nn.Parameter(torch.zeros(1))

        def residual(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            return self.correlation(x, lengths) * self.identification(x, lengths)

        def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            return x + self.alpha * self.residual(x, lengths)

    classes = {
        "Correlation": Correlation,
        "Identification": Identification,
        "CorrelationBlock": CorrelationBlock,
    }
    for cls in classes.values():
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__
    return classes
