"""Teacher training configuration: TOML tables, ``--set table.key=value`` overrides.

    [data]    the landmark dataset folder (with video frames), splits, frame augmentation
    [model]   TeacherDims without the class count (the vocabulary decides it)
    [loss]    CorrNet's self-distillation (weight, temperature)
    [pretrain] frame-level gloss pretraining of the backbone (epochs = 0: none)
    [train]   the student's TrainConfig: optimiser, schedule, batching, evaluation, output; a
              [train] table changes the teacher's defaults below, not the student's

Parsing, type checks and overrides: edge_slr.training.config_io (as the student's config).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path

from edge_slr.errors import InputError
from edge_slr.training.config import TrainConfig
from edge_slr.training.config_io import TomlConfig
from edge_slr.training.teacher.corrnet import TeacherDims
from edge_slr.training.teacher.pretrain import PretrainConfig


@dataclass(frozen=True)
class TeacherDataConfig:
    root: str = ""
    train_split: str = "train"
    dev_split: str = "dev"
    test_split: str = "test"  # "" = no test evaluation at the end
    corpus: str = ""  # scoring rules; "" = from dataset.json
    max_train_samples: int = 0  # 0 = all; a prefix of the split
    max_eval_samples: int = 0
    shift: int = 4  # random translation of whole sequences, pixels (training only)
    jitter: float = 0.1  # brightness/contrast jitter (training only)
    flip_p: float = 0.5  # horizontal flip of whole sequences (training only; CorrNet's)

    def __post_init__(self) -> None:
        if self.max_train_samples < 0 or self.max_eval_samples < 0 or self.shift < 0:
            raise InputError("data max_*_samples and shift must be >= 0")
        if not 0.0 <= self.jitter < 1.0 or not 0.0 <= self.flip_p <= 1.0:
            raise InputError(
                f"data jitter must be in [0, 1) and flip_p in [0, 1], got {self.jitter}, "
                f"{self.flip_p}"
            )


@dataclass(frozen=True)
class TeacherModelConfig:
    input_size: int = 64
    width: float = 0.25
    stem: str = "imagenet"
    corr_stages: tuple[int, ...] = (2, 3, 4)
    corr_reduction: int = 16
    temporal_kernel: int = 5
    temporal_padding: str = "valid"
    edge_trim: int = 2
    hidden: int = 256
    lstm_layers: int = 2
    dropout: float = 0.1
    backbone_weights: str = ""  # optional torchvision-named resnet18 .pth (width 1.0 only)

    def dims(self, num_classes: int) -> TeacherDims:
        values = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name != "backbone_weights"
        }
        return TeacherDims(num_classes=num_classes, **values)


@dataclass(frozen=True)
class TeacherLossConfig:
    self_kd_weight: float = 25.0  # BiLSTM head -> conv head (CorrNet/VAC)
    temperature: float = 8.0
    include_blank: bool = False

    def __post_init__(self) -> None:
        if self.self_kd_weight < 0 or self.temperature <= 0:
            raise InputError(
                f"loss self_kd_weight must be >= 0 and temperature > 0, got "
                f"{self.self_kd_weight}, {self.temperature}"
            )


def _default_train() -> TrainConfig:
    # From scratch (no ImageNet weights) a higher rate than the student's 1e-4 is needed.
    return TrainConfig(out_dir="runs/teacher", epochs=30, batch_size=4, lr=1e-3)


@dataclass(frozen=True)
class TeacherConfig(TomlConfig):
    data: TeacherDataConfig = field(default_factory=TeacherDataConfig)
    model: TeacherModelConfig = field(default_factory=TeacherModelConfig)
    loss: TeacherLossConfig = field(default_factory=TeacherLossConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    train: TrainConfig = field(default_factory=_default_train)


def load_teacher_config(
    path: str | Path | None = None, overrides: Iterable[str] = ()
) -> TeacherConfig:
    """Read a teacher TOML config (None: defaults) and apply ``--set`` overrides."""
    return TeacherConfig.load(path, overrides)
