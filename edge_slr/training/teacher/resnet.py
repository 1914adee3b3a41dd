"""A 2D ResNet-18 applied frame by frame: the teacher's spatial backbone, written here.

torchvision cannot be installed beside the CPU torch wheel, so this is our own ResNet-18 (two
BasicBlocks per stage, four stages), with two knobs that make it trainable on a CPU:

* ``width``: a multiplier on the stage widths (1.0 = 64/128/256/512, the original; 0.25 =
  16/32/64/128, 16 times fewer multiply-adds);
* ``stem``: ``"imagenet"`` is the original 7x7/2 convolution + 3x3/2 max-pool (input / 4), right
  for 112 px and up; ``"small"`` is one 3x3/2 convolution (input / 2), which keeps a usable
  4 x 4 map after the last stage at 64 px.

Parameter names follow torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1`` ...), so with
``width=1.0`` and the ImageNet stem a torchvision ``resnet18`` state dict loads with
:func:`load_backbone_weights` (weights are random otherwise).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_slr._optional import require
from edge_slr.errors import FormatError, InputError

if TYPE_CHECKING:
    import torch

STEMS = ("imagenet", "small")
BASE_WIDTHS = (64, 128, 256, 512)


def stage_channels(width: float) -> tuple[int, int, int, int]:
    """Channels of the four stages for a width multiplier (multiples of 8, at least 8)."""
    if not 0.0 < width <= 4.0:
        raise InputError(f"ResNet width multiplier must be in (0, 4], got {width}")
    return tuple(max(8, int(round(c * width / 8)) * 8) for c in BASE_WIDTHS)  # type: ignore[return-value]


def spatial_size(input_size: int, stem: str, stage: int) -> int:
    """Side of the feature map after ``stage`` (1..4) for a square input of ``input_size``."""
    side = -(-input_size // 2)  # stem convolution, stride 2, padding keeps ceil
    if stem == "imagenet":
        side = -(-side // 2)  # max-pool, stride 2
    for _ in range(1, stage):
        side = -(-side // 2)  # stages 2..4 halve
    return side


def build_resnet18(width: float = 1.0, stem: str = "imagenet") -> torch.nn.Module:
    """A freshly initialised backbone; ``module.stages[i](x)`` runs stage ``i + 1``."""
    if stem not in STEMS:
        raise InputError(f"ResNet stem must be one of {STEMS}, got {stem!r}")
    return _classes()["ResNet18"](stage_channels(width), stem)


def load_backbone_weights(backbone: torch.nn.Module, source: str | Path | dict[str, Any]) -> None:
    """Load a torchvision-named ResNet-18 state dict (a ``.pth`` path or a dict).

    The classifier (``fc.*``) is ignored; every other tensor must exist and match in shape,
    otherwise FormatError names the first mismatches (e.g. a width other than 1.0).
    """
    torch = require("torch", "loading ResNet weights")
    path = None
    if not isinstance(source, dict):
        path = Path(source)
        try:
            source = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise FormatError(path, "weights file does not exist") from None
        except Exception as err:
            raise FormatError(path, f"not a weights-only torch file ({err})") from None
    state = {k: v for k, v in dict(source).items() if not k.startswith("fc.")}  # type: ignore[arg-type]
    own = backbone.state_dict()
    problems = [f"missing {k}" for k in own if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in own]
    problems += [
        f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if problems:
        where = path if path is not None else Path("<state dict>")
        raise FormatError(where, f"does not fit this backbone: {'; '.join(problems[:5])}")
    backbone.load_state_dict(state)


@functools.cache  # the classes are defined once, on first use, so torch loads only then
def _classes() -> dict[str, type]:
    return _define(require("torch", "the video teacher"))


def _define(torch: Any) -> dict[str, type]:
    nn = torch.nn
    module_base: Any = nn.Module  # a runtime base class: type checkers see Any

    class BasicBlock(module_base):
        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.relu = nn.ReLU(inplace=True)
            self.downsample: Any = None
            if stride != 1 or c_in != c_out:
                self.downsample = nn.Sequential(
                    nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
                )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + identity)

    class ResNet18(module_base):
        def __init__(self, channels: tuple[int, int, int, int], stem: str) -> None:
            super().__init__()
            self.channels = channels
            if stem == "imagenet":
                self.conv1 = nn.Conv2d(3, channels[0], 7, 2, 3, bias=False)
                self.maxpool: Any = nn.MaxPool2d(3, 2, 1)
            else:
                self.conv1 = nn.Conv2d(3, channels[0], 3, 2, 1, bias=False)
                self.maxpool = nn.Identity()
            self.bn1 = nn.BatchNorm2d(channels[0])
            self.relu = nn.ReLU(inplace=True)
            c_prev = channels[0]
            for i, c in enumerate(channels):
                stride = 1 if i == 0 else 2
                stage = nn.Sequential(BasicBlock(c_prev, c, stride), BasicBlock(c, c, 1))
                self.add_module(f"layer{i + 1}", stage)
                c_prev = c
            self._init_weights()

        @property
        def stages(self) -> list[Any]:
            return [self.layer1, self.layer2, self.layer3, self.layer4]

        def stem(self, x: torch.Tensor) -> torch.Tensor:
            return self.maxpool(self.relu(self.bn1(self.conv1(x))))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """(N, 3, H, W) -> pooled features (N, channels[-1])."""
            x = self.stem(x)
            for stage in self.stages:
                x = stage(x)
            return x.mean(dim=(2, 3))

        def _init_weights(self) -> None:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            # Zero the last BN of each residual branch: every block starts as an identity,
            # which makes a randomly initialised ResNet train faster (Goyal et al., 2017).
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    for cls in (BasicBlock, ResNet18):
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__
    return {"BasicBlock": BasicBlock, "ResNet18": ResNet18}
