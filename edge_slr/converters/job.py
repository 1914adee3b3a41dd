"""What a conversion works on: options, the target table's rows, the source model, the job and
the artifact an exporter makes."""

from __future__ import annotations

import abc
import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from edge_slr.converters.verify import VerificationReport, VerifyConfig
from edge_slr.errors import InputError
from edge_slr.sidecar import GraphSpec, ModelDescription, PrecisionSpec, TemporalSpec

if TYPE_CHECKING:
    from edge_slr.converters.calibration import SequenceSet
    from edge_slr.converters.corrector_data import CorrectorCalibration, HeldoutSentences
    from edge_slr.converters.verify import Reference

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
    """One row of the target table: an engine format, and the exporter of each model kind.

    ``exporters`` maps a model kind ("student", "corrector") to ``"module:function"``, a
    function ``(Job) -> Artifact`` imported when used (engines load only where needed).
    """

    name: str
    engine: str  # engine the artifact runs on (a runtime's ``engine``)
    precision: str  # fp32 | int8
    suffix: str  # model file suffix
    exporters: Mapping[str, str]  # model kind -> "module:function"
    requires: tuple[str, ...] = ()  # arguments that must be given ("calibration")
    options: frozenset[str] = frozenset()  # target-specific options it accepts
    description: str = ""
    calibrating: frozenset[str] = frozenset()  # kinds whose INT8 needs activation statistics

    def __post_init__(self) -> None:
        for kind, where in self.exporters.items():
            if where.count(":") != 1:
                raise InputError(
                    f"target {self.name}: exporter of {kind!r} must be 'module:function', "
                    f"got {where!r}"
                )

    @property
    def int8(self) -> bool:
        return self.precision == "int8"

    def accepts(self, option: str) -> bool:
        return option in COMMON_OPTIONS or option in self.options

    def calibrates(self, kind: str, options: ConvertOptions) -> bool:
        """Whether exporting ``kind`` needs calibration data (activation statistics). Targets
        taking ``full_integer`` quantise weights only (dynamic range) unless it is set."""
        if kind not in self.calibrating:
            return False
        return options.full_integer or "full_integer" not in self.options

    def exporter(self, kind: str) -> Callable[[Job], Artifact]:
        """The export function of ``kind`` models (InputError when this target has none)."""
        if kind not in self.exporters:
            raise InputError(
                f"{self.name} does not convert {kind} models; it converts "
                f"{', '.join(self.exporters)}"
            )
        module, function = self.exporters[kind].split(":")
        return getattr(importlib.import_module(module), function)


@dataclass(frozen=True, kw_only=True)
class Source(abc.ABC):
    """The model being converted, loaded from its checkpoint; one subclass per model kind
    (:class:`~edge_slr.converters.source.StudentSource`,
    :class:`~edge_slr.converters.corrector_source.CorrectorSource`) holds what differs."""

    kind: ClassVar[str]
    checkpoint: Path
    sha256: str
    vocabulary: dict[str, Any]
    labels: tuple[str, ...]  # id -> gloss or token
    dims: dict[str, Any]
    num_classes: int
    info: dict[str, Any] = field(default_factory=dict)  # epoch, metrics, versions, gates
    # what a student's sidecar holds and a corrector's does not
    preset: dict[str, Any] | None = None
    temporal: TemporalSpec | None = None
    fps: float | None = None

    @classmethod
    def of(cls: type[SourceT], job: Job) -> SourceT:
        """The job's source as this kind (an exporter of this kind's models needs it to be)."""
        if not isinstance(job.source, cls):
            raise InputError(
                f"{job.spec.name}: this exporter converts {cls.kind} models, got a "
                f"{job.source.kind}"
            )
        return job.source

    def describe(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint.name,
            "sha256": self.sha256,
            "kind": self.kind,
            "dims": self.dims,
            **self.info,
        }

    @abc.abstractmethod
    def attach_data(self, job: Job, calibration: Path | None) -> None:
        """Load the held-out data (and, where the target calibrates, calibration data)."""

    @abc.abstractmethod
    def verify(
        self, job: Job, description: ModelDescription, model_path: Path
    ) -> VerificationReport:
        """Verify the written artifact ``model_path`` (``description`` is the sidecar it gets
        once it passes) on the runtime that will run it."""


SourceT = TypeVar("SourceT", bound=Source)


@dataclass
class Job:
    """One conversion: the target, the source model, the options and the data."""

    spec: TargetSpec
    source: Source
    options: ConvertOptions
    out_dir: Path
    verify_config: VerifyConfig = field(default_factory=VerifyConfig)
    calibration: SequenceSet | CorrectorCalibration | None = None  # INT8 targets that calibrate
    heldout: Reference | HeldoutSentences | None = None  # what verification compares on

    def model_path(self, stem_suffix: str = "") -> Path:
        stem = self.options.name or f"{self.source.kind}{stem_suffix}"
        return self.out_dir / f"{stem}{self.spec.suffix}"


@dataclass
class Artifact:
    """What an exporter wrote; the driver verifies it (unless the exporter did) and describes it.

    ``model_path`` is the file the sidecar is named after: a student's one graph, or for the
    corrector (several graph files, listed in ``graphs``) a name of its own."""

    model_path: Path
    precision: PrecisionSpec
    engine: dict[str, Any]  # the sidecar's engine: name, version, config (compile settings)
    graphs: tuple[GraphSpec, ...]
    sequence_output: str
    output_kind: str = "logits"
    details: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    verification: VerificationReport | None = None  # when the exporter verified it itself
