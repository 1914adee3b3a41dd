"""What a conversion works on: options, the target table's entries, the source model, artifacts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from edge_slr.errors import InputError
from edge_slr.sidecar import PrecisionSpec, TemporalSpec

LSTM_POLICIES = ("auto", "int8", "first-fp32", "fp32", "fp32+input-conv")
# --compat for tflite targets: the oldest TFLite interpreter the model must load on.
COMPAT_PATTERN = re.compile(r"tflite-runtime-(\d+)\.(\d+)(?:\.(\d+))?")
# OpenVINO INFERENCE_PRECISION_HINT for the layers an INT8 model keeps in floating point
INFERENCE_PRECISIONS = ("f32", "bf16")


@dataclass(frozen=True)
class ConvertOptions:
    """Every conversion option; each target accepts the common ones and its own (TargetSpec)."""

    # common
    calibration_size: int = 300  # INT8 calibration sequences (a warning below 300)
    heldout_size: int = 200  # held-out sequences for verification
    calibration_split: str = "train"
    heldout_split: str = ""  # "" = dev, else test
    log_probs: bool = False  # emit log_softmax instead of logits
    name: str = ""  # artifact file stem; "" = "<kind>[-fp16|-int8[-full]]"
    max_abs_diff: float = 1e-3  # FP32 verification
    # INT8 verification
    max_wer_drop: float = 0.5  # WER points, absolute
    min_agreement: float = 0.95  # gloss-level agreement with the FP32 decodes
    # target specific
    fp16: bool = False  # openvino: FP16-compressed weights
    lstm: str = "auto"  # openvino-int8: LSTM quantisation policy
    accuracy_control: bool = False  # openvino-int8: nncf.quantize_with_accuracy_control
    inference_precision: str = "f32"  # openvino-int8: precision of the layers kept in FP
    full_integer: bool = False  # tflite-int8: int8 activations too (NPUs)
    fused_lstm: bool | None = None  # tflite: fused LSTM ops (tf-keras); None = only if needed
    compat: str = ""  # tflite: "tflite-runtime-2.14" = only op versions that release runs

    def __post_init__(self) -> None:
        if self.calibration_size < 1 or self.heldout_size < 1:
            raise InputError(
                f"calibration_size and heldout_size must be >= 1, got {self.calibration_size}, "
                f"{self.heldout_size}"
            )
        if self.lstm not in LSTM_POLICIES:
            raise InputError(f"lstm must be one of {LSTM_POLICIES}, got {self.lstm!r}")
        if self.inference_precision not in INFERENCE_PRECISIONS:
            raise InputError(
                f"inference_precision must be one of {INFERENCE_PRECISIONS}, got "
                f"{self.inference_precision!r}"
            )
        if not 0 <= self.max_wer_drop <= 100:
            raise InputError(f"max_wer_drop is in WER points, 0..100; got {self.max_wer_drop}")
        if not 0 <= self.min_agreement <= 1:
            raise InputError(f"min_agreement must be in [0, 1], got {self.min_agreement}")
        if not self.max_abs_diff > 0:
            raise InputError(f"max_abs_diff must be > 0, got {self.max_abs_diff}")
        if self.compat and COMPAT_PATTERN.fullmatch(self.compat) is None:
            raise InputError(
                f"compat must name a TFLite interpreter release such as 'tflite-runtime-2.14', "
                f"got {self.compat!r}"
            )
        if self.name and ("/" in self.name or "\\" in self.name or self.name.startswith(".")):
            raise InputError(f"name must be a plain file stem, got {self.name!r}")

    @classmethod
    def from_kwargs(cls, options: dict[str, Any]) -> ConvertOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(f"unknown conversion option(s) {unknown}; known: {sorted(known)}")
        return cls(**options)

    @property
    def compat_release(self) -> str | None:
        """The TFLite release of ``compat`` ("tflite-runtime-2.14" -> "2.14.0"), None without."""
        match = COMPAT_PATTERN.fullmatch(self.compat) if self.compat else None
        if match is None:
            return None
        return ".".join(part or "0" for part in match.groups())

    def changed(self) -> dict[str, Any]:
        """Options that differ from their defaults (what the user asked for)."""
        default = ConvertOptions()
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


COMMON_OPTIONS = frozenset(
    (
        "calibration_size",
        "heldout_size",
        "calibration_split",
        "heldout_split",
        "log_probs",
        "name",
        "max_abs_diff",
    )
)


@dataclass(frozen=True)
class TargetSpec:
    """One row of the target table."""

    name: str
    module: str  # edge_slr.converters.<module> with export(job) and runner(artifact, job)
    engine: str  # engine the artifact runs on
    precision: str  # fp32 | int8
    suffix: str  # model file suffix
    requires: tuple[str, ...] = ()  # arguments that must be given ("calibration")
    options: frozenset[str] = frozenset()  # target-specific options it accepts
    description: str = ""

    @property
    def int8(self) -> bool:
        return self.precision == "int8"

    def accepts(self, option: str) -> bool:
        return option in COMMON_OPTIONS or option in self.options


@dataclass(frozen=True)
class Source:
    """The model being converted, loaded from its checkpoint."""

    kind: str  # "student" | "corrector"
    checkpoint: Path
    sha256: str
    model: Any  # torch module in eval mode; students: features (B, T, F) -> (B, T', V)
    vocabulary: dict[str, Any]
    labels: tuple[str, ...]  # id -> gloss (blank first)
    dims: dict[str, Any]
    preset: dict[str, Any] | None = None
    temporal: TemporalSpec | None = None
    feature_dim: int = 0
    num_classes: int = 0
    info: dict[str, Any] = field(default_factory=dict)  # epoch, metrics, versions
    corrector: Any = None  # the Corrector (kind "corrector")

    def describe(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint.name,
            "sha256": self.sha256,
            "kind": self.kind,
            "dims": self.dims,
            **self.info,
        }


@dataclass
class Job:
    spec: TargetSpec
    source: Source
    options: ConvertOptions
    out_dir: Path
    calibration: Any = None  # SequenceSet (calibration split), INT8 targets
    reference: Any = None  # verify.Reference
    verify_config: Any = None  # verify.VerifyConfig

    def model_path(self, stem_suffix: str = "") -> Path:
        stem = self.options.name or f"{self.source.kind}{stem_suffix}"
        return self.out_dir / f"{stem}{self.spec.suffix}"


@dataclass
class Artifact:
    """What a target module made; the driver verifies it (unless the module did) and describes it."""

    model_path: Path
    precision: PrecisionSpec
    engine: dict[str, Any]  # name, version, config
    weights_path: Path | None = None
    details: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    verification: Any = None  # VerificationReport when the module verified it itself
    runner: Any = None  # a Runner over the artifact, for verification
    extra_graphs: list[Any] = field(default_factory=list)  # corrector: more GraphSpecs
