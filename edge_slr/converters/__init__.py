"""Convert trained models to edge runtimes, verify them, and describe them in a sidecar.

    from edge_slr.converters import convert
    result = convert("runs/student/best.pt", "openvino-int8", "models/", calibration="data/synth")
    result.model_path, result.sidecar_path, result.verification.wer_drop

One table, :data:`TARGETS`, drives everything (the CLI's ``--target`` choices too): each row names
its engine, precision, file suffix, what it requires, which options it accepts and, per model
kind ("student", "corrector"), the function that makes the artifact; a new target is a new row
(and a new module). Every conversion is verified against the FP32 PyTorch reference
(:mod:`edge_slr.converters.verify`) on the runtime that will run it, loaded by
:func:`edge_slr.runtimes.load_runtime` with the sidecar it is about to get; one that fails raises
:class:`ConversionError` and gets no sidecar. Engines are imported only by the exporter that
needs them.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_slr.converters.job import ConvertOptions, Job, Source, TargetSpec
from edge_slr.converters.verify import ConversionError, VerificationReport, VerifyConfig
from edge_slr.errors import InputError
from edge_slr.sidecar import ModelDescription

logger = logging.getLogger(__name__)

_INT8_CHECKS = frozenset(("max_wer_drop", "min_agreement"))

_CORRECTOR = "edge_slr.converters.corrector_export"
TARGETS: dict[str, TargetSpec] = {
    spec.name: spec
    for spec in (
        TargetSpec(
            "onnx", "onnxruntime", "fp32", ".onnx",
            exporters={"student": "edge_slr.converters.onnx_export:export",
                       "corrector": f"{_CORRECTOR}:export_onnx"},
            description="ONNX FP32, dynamic batch and time (ONNX Runtime)",
        ),
        TargetSpec(
            "onnx-int8", "onnxruntime", "int8", ".onnx",
            exporters={"student": "edge_slr.converters.onnx_int8:export",
                       "corrector": "edge_slr.converters.corrector_int8:export_onnx_int8"},
            requires=("calibration",), options=_INT8_CHECKS, calibrating=frozenset({"student"}),
            description="ONNX INT8: static QOperator Conv/MatMul, dynamic INT8 LSTM (corrector: "
            "dynamic INT8 MatMul/Gemm)",
        ),
        TargetSpec(
            "openvino", "openvino", "fp32", ".xml",
            exporters={"student": "edge_slr.converters.openvino_ir:export",
                       "corrector": f"{_CORRECTOR}:export_openvino"},
            options=frozenset(("fp16",)),
            description="OpenVINO IR FP32 (optionally FP16-compressed weights)",
        ),
        TargetSpec(
            "openvino-int8", "openvino", "int8", ".xml",
            exporters={"student": "edge_slr.converters.openvino_int8:export",
                       "corrector": "edge_slr.converters.corrector_int8:export_openvino_int8"},
            requires=("calibration",), calibrating=frozenset({"student", "corrector"}),
            options=_INT8_CHECKS | {"lstm", "accuracy_control", "inference_precision"},
            description="OpenVINO IR INT8, NNCF post-training quantisation",
        ),
        TargetSpec(
            "openvino-int8-qat", "openvino", "int8", ".xml",
            exporters={"student": "edge_slr.converters.openvino_qat:export"},
            requires=("calibration",), calibrating=frozenset({"student"}), options=_INT8_CHECKS,
            description="OpenVINO IR INT8 of a quantization-aware checkpoint (train recognizer "
            "--qat): INT8 first LSTM layer too",
        ),
        TargetSpec(
            "tflite", "litert", "fp32", ".tflite",
            exporters={"student": "edge_slr.converters.tflite:export",
                       "corrector": "edge_slr.converters.tf_corrector:export_tflite"},
            options=frozenset(("fused_lstm", "compat")),
            description="TFLite FP32 from a Keras (corrector: TensorFlow) rebuild, dynamic "
            "lengths (LiteRT)",
        ),
        TargetSpec(
            "tflite-int8", "litert", "int8", ".tflite",
            exporters={"student": "edge_slr.converters.tflite:export",
                       "corrector": "edge_slr.converters.tf_corrector:export_tflite"},
            requires=("calibration",), calibrating=frozenset({"student"}),  # full-integer only
            options=_INT8_CHECKS | {"full_integer", "fused_lstm", "compat"},
            description="TFLite INT8: dynamic-range weights, or full-integer for NPUs; --compat "
            "tflite-runtime-2.14 keeps to op versions that older interpreter runs",
        ),
    )
}  # fmt: skip


@dataclass(frozen=True)
class ConversionResult:
    """A verified artifact. ``model_path`` is the model file (a student's one graph); for the
    corrector, whose graphs are several files listed in the sidecar, it is the name the sidecar
    is written after (``corrector.onnx`` -> ``corrector.onnx.json``)."""

    target: str
    model_path: Path
    sidecar_path: Path
    description: ModelDescription
    verification: VerificationReport
    seconds: float

    @property
    def size_bytes(self) -> int:
        return sum(f.size for g in self.description.graphs for f in g.files())


def target_names() -> list[str]:
    return list(TARGETS)


def get_target(name: str) -> TargetSpec:
    if name not in TARGETS:
        raise InputError(f"unknown conversion target {name!r}; expected one of {list(TARGETS)}")
    return TARGETS[name]


def check_request(spec: TargetSpec, options: ConvertOptions, calibration: Any) -> None:
    """Reject a missing requirement or an option the target does not take, in one sentence."""
    if "calibration" in spec.requires and calibration is None:
        raise InputError(
            f"--calibration is required for {spec.name} (a landmark dataset folder: its "
            "training split calibrates, its dev split verifies the INT8 decodes)"
        )
    for option, value in options.changed().items():
        if not spec.accepts(option):
            takers = [t.name for t in TARGETS.values() if option in t.options]
            given = "" if isinstance(value, bool) else f" {value!r}"
            raise InputError(
                f"--{option.replace('_', '-')}{given} does not apply to {spec.name}; "
                f"it applies to {', '.join(takers)}"
            )
    if options.full_integer and options.fused_lstm is False:
        raise InputError(
            "--full-integer needs the fused LSTM path (Keras 3 LSTMs crash the full-integer "
            "converter); do not combine it with --no-fused-lstm"
        )


def check_paths(out_dir: Any, calibration: Any) -> Path:
    """The output folder as a Path; InputError for one that cannot be a folder or a calibration
    dataset that does not exist (checked before any folder is created)."""
    if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir):
        raise InputError(f"out_dir must be an output folder (str or Path), got {out_dir!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"output folder {out} is an existing file; expected a folder")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"output folder {out} cannot be created: {parent} is a file")
            break
    if calibration is not None:
        if not isinstance(calibration, (str, os.PathLike)) or not str(calibration):
            raise InputError(
                f"calibration must be a landmark dataset folder (str or Path), got {calibration!r}"
            )
        if not Path(calibration).is_dir():
            raise InputError(
                f"calibration dataset {calibration} does not exist or is not a folder; expected "
                "a landmark dataset folder (with train and dev splits)"
            )
    return out


def convert(
    checkpoint: str | Path,
    target: str,
    out_dir: str | Path,
    calibration: str | Path | None = None,
    **options: Any,
) -> ConversionResult:
    """Convert ``checkpoint`` to ``target`` in ``out_dir``, verify it and write its sidecar.

    ``calibration`` is a landmark dataset folder: INT8 targets calibrate on its training split and
    every target verifies on its dev (else test) split. ``options`` are
    :class:`~edge_slr.converters.job.ConvertOptions` fields. Raises InputError for a bad request,
    FormatError for an unreadable checkpoint, ConversionError when verification fails.
    """
    from edge_slr.converters import describe, source

    started = time.perf_counter()
    spec = get_target(target)
    opts = ConvertOptions.from_kwargs(options)
    check_request(spec, opts, calibration)
    out = check_paths(out_dir, calibration)  # before anything is loaded or created
    src = source.load_source(checkpoint, opts)
    if src.kind == "student":  # QAT checkpoints go to the QAT target only, and back
        from edge_slr.converters.openvino_qat import check_target

        check_target(spec, src.checkpoint)
    export = spec.exporter(src.kind)  # InputError before any folder is created
    out.mkdir(parents=True, exist_ok=True)
    job = Job(spec, src, opts, out, VerifyConfig(
        max_abs_diff=opts.max_abs_diff,
        max_wer_drop=opts.max_wer_drop,
        min_agreement=opts.min_agreement,
    ))  # fmt: skip
    src.attach_data(job, Path(calibration) if calibration is not None else None)
    logger.info("converting %s to %s", src.checkpoint.name, spec.name)
    artifact = export(job)
    report = artifact.verification or describe.verify_artifact(job, artifact)
    if not report.passed:
        raise ConversionError(
            f"{spec.name} conversion of {src.checkpoint.name} failed verification: "
            f"{report.reason}. The model file was kept for inspection at {artifact.model_path}; "
            "no sidecar was written, so runtimes will not load it",
            report,
        )
    description = describe.description(job, artifact, report)
    sidecar = describe.write_and_check(description, artifact.model_path)
    seconds = time.perf_counter() - started
    logger.info(
        "%s: %s verified (%s) in %.1f s", spec.name, artifact.model_path.name, report.mode, seconds
    )
    return ConversionResult(spec.name, artifact.model_path, sidecar, description, report, seconds)


__all__ = [
    "TARGETS",
    "ConversionError",
    "ConversionResult",
    "ConvertOptions",
    "Source",
    "TargetSpec",
    "VerificationReport",
    "VerifyConfig",
    "check_paths",
    "check_request",
    "convert",
    "get_target",
    "target_names",
]
