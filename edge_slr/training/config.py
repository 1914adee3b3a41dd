"""Training configuration: frozen dataclasses read from TOML, with ``--set key=value`` overrides.

A config file has four tables, each optional (missing keys keep their defaults)::

    [data]     where the landmark dataset is, splits, feature preset, scoring corpus
    [model]    student sizes (StudentDims without the sizes that the data decides)
    [augment]  AugmentConfig: one probability per transform
    [train]    optimiser, schedule, batching, evaluation, output folder, seed
    [distill]  knowledge distillation from the video teacher (edge_slr.training.distill)

Overrides name a table and a key, ``train.lr=3e-4`` or ``model.conv_channels=[64,64,128,128]``;
the value is read as a TOML value (a bare word is taken as a string).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from edge_slr.errors import FormatError, InputError
from edge_slr.training.augment import AugmentConfig
from edge_slr.training.distill import DistillConfig
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


@dataclass(frozen=True)
class ModelConfig:
    conv_channels: tuple[int, int, int, int] = (128, 128, 256, 256)
    kernel_size: int = 5
    padding: str = "valid"
    lstm_hidden: int = 128
    lstm_layers: int = 2
    dropout: float = 0.1
    pre_lstm: str = "layernorm"
    aux_head: bool = True

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

    def __post_init__(self) -> None:
        positive = ("epochs", "batch_size", "num_threads", "eval_every", "bucket_width")
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
class StudentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)  # off unless switched on

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _section_dict(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "config") -> StudentConfig:
        return _build(cls, data, where)

    def with_overrides(self, overrides: Iterable[str]) -> StudentConfig:
        """Apply ``table.key=value`` strings (as from ``--set``); InputError names a bad one."""
        data = self.to_dict()
        for item in overrides:
            section, key, value = _parse_override(item)
            if section not in data:
                raise InputError(f"--set {item!r}: unknown table {section!r}; known: {list(data)}")
            data[section][key] = value
        return StudentConfig.from_dict(data, where="--set")


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> StudentConfig:
    """Read a TOML config (None: all defaults) and apply ``--set`` overrides."""
    config = StudentConfig()
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FormatError(path, "config file does not exist") from None
        try:
            raw = _toml().loads(text)
        except Exception as err:  # tomllib.TOMLDecodeError carries the line in its message
            raise FormatError(path, f"not valid TOML ({err})") from None
        try:
            config = StudentConfig.from_dict(raw, where=str(path))
        except InputError as err:
            raise FormatError(path, str(err)) from None
    return config.with_overrides(overrides)


# -- helpers ------------------------------------------------------------------------------------


def _toml() -> Any:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        from edge_slr._optional import require

        return require("tomli", "reading TOML configs on Python 3.10")
    return tomllib


def _section_dict(section: Any) -> dict[str, Any]:
    if hasattr(section, "to_dict"):
        return dict(section.to_dict())
    out = {}
    for f in fields(section):
        value = getattr(section, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _parse_override(item: str) -> tuple[str, str, Any]:
    key, sep, text = item.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not section or not name:
        raise InputError(f"--set expects table.key=value (e.g. train.lr=3e-4), got {item!r}")
    try:
        value = _toml().loads(f"v = {text.strip()}")["v"]
    except Exception:
        value = text.strip()  # a bare word: a string
    return section, name, value


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    """Instantiate dataclass ``cls`` from ``data``, checking keys and coercing types."""
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: expected a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls) if f.init}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    values = {}
    for name, raw in data.items():
        expected = hints[name]
        if is_dataclass(expected):
            values[name] = _build(typing.cast(type, expected), raw, f"{where} [{name}]")
        else:
            values[name] = _coerce(raw, expected, f"{where}: {name}")
    return cls(**values)


def _coerce(value: Any, expected: Any, where: str) -> Any:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(expected)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is not type(None):
                try:
                    return _coerce(value, option, where)
                except InputError:
                    continue
        raise InputError(f"{where}: {value!r} is not a {expected}")
    if origin is tuple:
        args = typing.get_args(expected)
        if not isinstance(value, (list, tuple)) or (... not in args and len(value) != len(args)):
            raise InputError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        item_types = [args[0]] * len(value) if ... in args else list(args)
        return tuple(_coerce(v, t, where) for v, t in zip(value, item_types, strict=True))
    if expected is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if expected in (int, str, bool) and type(value) is expected:
        return value
    raise InputError(f"{where}: expected {getattr(expected, '__name__', expected)}, got {value!r}")
