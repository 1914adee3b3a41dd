"""Training configuration: frozen dataclasses read from TOML, with ``--set key=value`` overrides.

A config file has four tables, each optional (missing keys keep their defaults)::

    [data]     where the landmark dataset is, splits, feature preset, scoring corpus
    [model]    student sizes (StudentDims without the sizes that the data decides)
    [augment]  AugmentConfig: one probability per transform
    [train]    optimiser, schedule, batching, evaluation, output folder, seed
    [distill]  knowledge distillation from the video teacher (edge_slr.training.distill)

Overrides name a table and a key, ``train.lr=3e-4`` or ``model.conv_channels=[64,64,128,128]``;
the value is read as a TOML value (a bare word is taken as a string). Reading, type checks and
overrides: edge_slr.training.config_io.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path

from edge_slr.errors import InputError
from edge_slr.training.augment import AugmentConfig
from edge_slr.training.config_io import TomlConfig
from edge_slr.training.distill import DistillConfig
from edge_slr.training.hardware import check_amp_name, check_device_name
from edge_slr.training.models import PADDING_CHOICES, PRE_LSTM_CHOICES, StudentDims


@dataclass(frozen=True)
class DataConfig:
    root: str = ""  # landmark dataset folder (edge_slr.data.dataset layout)
    train_split: str = "train"
    dev_split: str = "dev"
    test_split: str = "test"  # "" = no test evaluation at the end
    preset: str = "kdmslrt92"
    corpus: str = ""  # scoring rules; "" = the corpus named in dataset.json (else phoenix2014t)
    max_train_samples: int = 0  # 0 = all; a prefix of the split (quick runs)
    max_eval_samples: int = 0
    cache_landmarks: bool = True  # keep the preset's points in memory (about 1.5 kB per frame)

    def __post_init__(self) -> None:
        if self.max_train_samples < 0 or self.max_eval_samples < 0:
            raise InputError("data max_train_samples and max_eval_samples must be >= 0")


_DIMS = StudentDims(num_classes=2)  # the model's defaults are StudentDims', defined once


@dataclass(frozen=True)
class ModelConfig:
    conv_channels: tuple[int, int, int, int] = _DIMS.conv_channels
    kernel_size: int = _DIMS.kernel_size
    padding: str = _DIMS.padding
    lstm_hidden: int = _DIMS.lstm_hidden
    lstm_layers: int = _DIMS.lstm_layers
    dropout: float = _DIMS.dropout
    pre_lstm: str = _DIMS.pre_lstm
    aux_head: bool = _DIMS.aux_head

    def __post_init__(self) -> None:
        if self.padding not in PADDING_CHOICES:
            raise InputError(
                f"model padding must be one of {PADDING_CHOICES}, got {self.padding!r}"
            )
        if self.pre_lstm not in PRE_LSTM_CHOICES:
            raise InputError(
                f"model pre_lstm must be one of {PRE_LSTM_CHOICES}, got {self.pre_lstm!r}"
            )

    def dims(self, num_classes: int, input_dim: int) -> StudentDims:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return StudentDims(num_classes=num_classes, input_dim=input_dim, **values)


@dataclass(frozen=True)
class TrainConfig:
    out_dir: str = "runs/student"
    epochs: int = 40
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 1e-4
    final_lr_fraction: float = 0.0  # linear decay from lr to lr * this over all steps
    grad_clip: float = 5.0
    aux_weight: float = 1.0  # weight of the auxiliary (convolutional) CTC loss
    seed: int = 0
    num_threads: int = 2
    beam_width: int = 5  # beam search in evaluation; 0 = greedy only
    eval_every: int = 1  # epochs
    bucket_width: int = 8  # batches drawn together when bucketing by length
    progress: bool = True  # tqdm bars
    # Hardware (edge_slr.training.hardware). batch_size is per process and micro-batch: one
    # optimizer step sees batch_size x processes x grad_accumulation sentences.
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "none"  # none | bf16 (CPU or CUDA) | fp16 (CUDA, with a GradScaler)
    grad_accumulation: int = 1  # micro-batches per optimizer step (and process)
    num_workers: int = 0  # DataLoader worker processes (0: load in the training process)

    def __post_init__(self) -> None:
        check_device_name(self.device)
        check_amp_name(self.amp)
        if self.num_workers < 0:
            raise InputError(f"train num_workers must be >= 0, got {self.num_workers}")
        positive = ("epochs", "batch_size", "num_threads", "eval_every", "bucket_width")
        positive += ("grad_accumulation",)
        for name in positive:
            if getattr(self, name) < 1:
                raise InputError(f"train {name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.weight_decay < 0 or self.grad_clip <= 0 or self.aux_weight < 0:
            raise InputError(
                "train lr and grad_clip must be > 0, weight_decay and aux_weight >= 0; got "
                f"lr={self.lr}, grad_clip={self.grad_clip}, weight_decay={self.weight_decay}, "
                f"aux_weight={self.aux_weight}"
            )
        if not 0.0 <= self.final_lr_fraction <= 1.0:
            raise InputError(
                f"train final_lr_fraction must be in [0, 1], got {self.final_lr_fraction}"
            )
        if self.beam_width < 0:
            raise InputError(f"train beam_width must be >= 0, got {self.beam_width}")


@dataclass(frozen=True)
class StudentConfig(TomlConfig):
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)  # off unless switched on


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> StudentConfig:
    """Read a TOML config (None: all defaults) and apply ``--set`` overrides."""
    return StudentConfig.load(path, overrides)
