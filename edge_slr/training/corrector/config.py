"""Training configuration of the corrector: TOML files (read with tomllib) plus CLI overrides.

A config file has four tables, each optional (defaults below)::

    [model]         # CorrectorDims without vocab_size (that comes from the train split)
    [noise]         # NoiseConfig of stage 1 (heavy noise: restore the meaning)
    [noise_stage2]  # NoiseConfig of the fresh noise stage 2 sees besides stage 1's outputs
    [train]         # TrainConfig

Overrides are ``TABLE.KEY=VALUE`` strings with a TOML value (``train.max_minutes=2``,
``train.corpus="phoenix2014"``; a bare word is taken as a string).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from edge_slr.errors import FormatError, InputError
from edge_slr.training.corrector.model import CorrectorDims
from edge_slr.training.corrector.noise import NoiseConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TRAIN_CORPORA = ("phoenix2014", "phoenix2014t", "csl-daily")
# Stage 2 makes fine corrections: besides stage 1's outputs it sees lighter noise.
STAGE2_NOISE = NoiseConfig(wer_min=0.0, wer_max=0.3, clean_share=0.3)


@dataclass(frozen=True)
class TrainConfig:
    """How the stages are trained; budgets are per stage."""

    corpus: str = "phoenix2014t"
    root: str = ""  # corpus folder; "" = the shared data folder's copy of `corpus`
    limit_sentences: int = 0  # use only the first N train sentences (0 = all); for quick runs
    seed: int = 0
    holdout: float = 0.05  # share of train held out for validation loss and gate tuning
    batch_size: int = 64
    learning_rate: float = 5e-4
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    warmup_steps: int = 300
    max_steps: int = 20000
    max_minutes: float = 6.0  # wall-clock budget per stage; whichever of steps/time comes first
    max_minutes_stage2: float = 0.0  # budget of the later stages (0: the same as max_minutes)
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 500
    log_every: int = 100
    threads: int = 1  # one thread: on a shared 2-core machine two threads thrash (10x slower)
    device: str = "auto"  # auto | cpu | cuda | cuda:N: where the stages train (gates: CPU)
    amp: str = "none"  # none | bf16 | fp16 (CUDA): autocast forward, cross-entropy in fp32
    unk_rate: float = 0.01  # glosses turned into <unk> on both sides: learn to copy unknowns
    stage2_model_share: float = 0.5  # stage-2 inputs taken from stage 1's outputs on noise
    stage2_pool_copies: int = 1  # noisy copies of each sentence run through stage 1
    stage2_pool_sentences: int = 0  # pool from a seeded sample of N fit sentences (0 = all)
    warm_start: bool = True  # stage 2 starts from stage 1's weights
    confusion_table: str = ""  # JSON {gloss: {confused gloss: count}} for substitutions ("": none)
    gate_levels: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4)
    gate_max_harm: float = 0.0  # WER increase allowed at any gate level on held-out train
    # Least mean held-out WER decrease (a fraction: 0.001 = 0.1 points) for which a stage is
    # used at all; below it its gains are noise and the stage is switched off.
    gate_min_gain: float = 0.0
    gate_copies: int = 3  # noisy copies of each held-out sentence per level (steadier gates)

    def __post_init__(self) -> None:
        if self.corpus not in TRAIN_CORPORA:
            raise InputError(f"train.corpus must be one of {TRAIN_CORPORA}, got {self.corpus!r}")
        checks = {
            "holdout": 0.0 < self.holdout < 0.5,
            "batch_size": self.batch_size >= 1,
            "learning_rate": self.learning_rate > 0,
            "min_lr_ratio": 0.0 <= self.min_lr_ratio <= 1.0,
            "max_steps": self.max_steps >= 1,
            "max_minutes": self.max_minutes > 0,
            "max_minutes_stage2": self.max_minutes_stage2 >= 0,
            "warmup_steps": self.warmup_steps >= 0,
            "threads": self.threads >= 1,
            "limit_sentences": self.limit_sentences >= 0,
            "unk_rate": 0.0 <= self.unk_rate < 1.0,
            "stage2_model_share": 0.0 <= self.stage2_model_share <= 1.0,
            "stage2_pool_copies": self.stage2_pool_copies >= 1,
            "stage2_pool_sentences": self.stage2_pool_sentences >= 0,
            "label_smoothing": 0.0 <= self.label_smoothing < 1.0,
            "eval_every": self.eval_every >= 1,
            "log_every": self.log_every >= 1,
            "gate_max_harm": self.gate_max_harm >= 0.0,
            "gate_min_gain": 0.0 <= self.gate_min_gain < 1.0,
            "gate_copies": self.gate_copies >= 1,
            "gate_levels": bool(self.gate_levels) and all(0 <= x <= 1 for x in self.gate_levels),
        }
        from edge_slr.training.hardware import AMP_CHOICES, DEVICE_PATTERN

        checks["device"] = bool(DEVICE_PATTERN.match(self.device))
        checks["amp"] = self.amp in AMP_CHOICES
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise InputError(
                "invalid train option(s): "
                + ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            )
        object.__setattr__(self, "gate_levels", tuple(float(x) for x in self.gate_levels))


@dataclass(frozen=True)
class CorrectorConfig:
    model: Mapping[str, Any] = field(default_factory=dict)  # CorrectorDims fields, no vocab_size
    noise: NoiseConfig = NoiseConfig()
    noise_stage2: NoiseConfig = STAGE2_NOISE
    train: TrainConfig = TrainConfig()

    def __post_init__(self) -> None:
        if "vocab_size" in self.model:
            raise InputError(
                "model.vocab_size is set from the train split; remove it from the config"
            )
        self.dims(vocab_size=8)  # validates the model table now rather than after data loading

    def dims(self, vocab_size: int) -> CorrectorDims:
        return CorrectorDims.from_dict({**self.model, "vocab_size": vocab_size})

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": dict(self.model),
            "noise": dataclasses.asdict(self.noise),
            "noise_stage2": dataclasses.asdict(self.noise_stage2),
            "train": dataclasses.asdict(self.train),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CorrectorConfig:
        unknown = sorted(set(data) - {"model", "noise", "noise_stage2", "train"})
        if unknown:
            raise InputError(
                f"unknown config table(s) {unknown}; expected model, noise, noise_stage2, train"
            )
        train = dict(data.get("train", {}))
        known = {f.name for f in fields(TrainConfig)}
        extra = sorted(set(train) - known)
        if extra:
            raise InputError(f"unknown train option(s) {extra}; expected some of {sorted(known)}")
        if "gate_levels" in train:
            train["gate_levels"] = tuple(train["gate_levels"])
        return cls(
            model=dict(data.get("model", {})),
            noise=NoiseConfig.from_dict(data.get("noise", {})),
            noise_stage2=NoiseConfig.from_dict(
                {**dataclasses.asdict(STAGE2_NOISE), **data.get("noise_stage2", {})}
            ),
            train=TrainConfig(**train),
        )


def parse_override(text: str) -> tuple[str, str, Any]:
    """``"train.max_minutes=2"`` -> ("train", "max_minutes", 2)."""
    key, sep, raw = text.partition("=")
    table, dot, name = key.strip().partition(".")
    if not sep or not dot or not table or not name:
        raise InputError(
            f"override must look like TABLE.KEY=VALUE (e.g. train.max_minutes=5), got {text!r}"
        )
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word: a string
    return table, name.strip(), value


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> CorrectorConfig:
    """Config from a TOML file (None: the defaults) with ``TABLE.KEY=VALUE`` overrides applied."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FormatError(path, "config file does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise FormatError(path, f"not valid TOML ({exc})") from None
    for text in overrides:
        table, name, value = parse_override(text)
        section = data.setdefault(table, {})
        if not isinstance(section, dict):
            raise InputError(f"override {text!r}: {table!r} is not a table")
        section[name] = value
    try:
        return CorrectorConfig.from_dict(data)
    except TypeError as exc:  # a wrong value type the dataclasses did not catch
        raise InputError(f"invalid corrector config: {exc}") from None
