"""Training configuration of the corrector: TOML tables, ``--set table.key=value`` overrides.

A config file has four tables, each optional (missing keys keep their defaults)::

    [model]         # CorrectorModelConfig: CorrectorDims without vocab_size (the train split's)
    [noise]         # NoiseConfig of stage 1 (heavy noise: restore the meaning)
    [noise_stage2]  # NoiseConfig of the fresh noise stage 2 sees besides stage 1's outputs
    [train]         # TrainConfig

Reading, type checks and overrides (``train.max_minutes=2``, ``train.corpus="phoenix2014"``; a
bare word is taken as a string): edge_slr.training.config_io, as the student's and the
teacher's configs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path

from edge_slr.errors import InputError
from edge_slr.training.config_io import TomlConfig
from edge_slr.training.corrector.model import CorrectorDims
from edge_slr.training.corrector.noise import NoiseConfig
from edge_slr.training.hardware import AMP_CHOICES, DEVICE_PATTERN

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
        checks["device"] = bool(DEVICE_PATTERN.match(self.device))
        checks["amp"] = self.amp in AMP_CHOICES
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise InputError(
                "invalid train option(s): "
                + ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            )
        object.__setattr__(self, "gate_levels", tuple(float(x) for x in self.gate_levels))


_DIMS = CorrectorDims(vocab_size=8)  # the model's defaults are CorrectorDims', defined once


@dataclass(frozen=True)
class CorrectorModelConfig:
    """The [model] table: the sizes of every stage; the vocabulary size comes from the data."""

    d_model: int = _DIMS.d_model
    n_heads: int = _DIMS.n_heads
    encoder_layers: int = _DIMS.encoder_layers
    decoder_layers: int = _DIMS.decoder_layers
    ff_dim: int = _DIMS.ff_dim
    max_len: int = _DIMS.max_len
    dropout: float = _DIMS.dropout
    stages: int = _DIMS.stages
    copy_attention: bool = _DIMS.copy_attention

    def __post_init__(self) -> None:
        self.dims(vocab_size=8)  # validates the sizes now rather than after data loading

    def dims(self, vocab_size: int) -> CorrectorDims:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return CorrectorDims(vocab_size=vocab_size, **values)


@dataclass(frozen=True)
class CorrectorConfig(TomlConfig):
    model: CorrectorModelConfig = field(default_factory=CorrectorModelConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    noise_stage2: NoiseConfig = STAGE2_NOISE
    train: TrainConfig = field(default_factory=TrainConfig)

    def dims(self, vocab_size: int) -> CorrectorDims:
        return self.model.dims(vocab_size)


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> CorrectorConfig:
    """Read a corrector TOML config (None: the defaults) and apply ``--set`` overrides."""
    return CorrectorConfig.load(path, overrides)
