"""Loading the model to convert, its calibration/held-out data, and the verification step."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edge_slr._optional import require
from edge_slr.converters.job import Artifact, ConvertOptions, Job, Source
from edge_slr.converters.verify import (
    Reference,
    VerificationReport,
    compare_decodes,
    compare_logits,
)
from edge_slr.errors import FormatError
from edge_slr.sidecar import TemporalSpec, file_sha256

logger = logging.getLogger(__name__)

RECOMMENDED_CALIBRATION = 300


def student_temporal(dims: Any) -> TemporalSpec:
    """Stride, receptive field and output-length rule of a student (StudentDims)."""
    lost = 0 if dims.padding == "same" else 2 * (dims.kernel_size - 1)
    # Two blocks of two k-convolutions and a 2-pool: each block widens the field by
    # 2 (k - 1) + 1 steps of the block's input stride.
    field, jump = 1, 1
    for _ in range(2):
        field += (2 * (dims.kernel_size - 1) + 1) * jump
        jump *= 2
    return TemporalSpec(
        stride=jump,
        receptive_field=field,
        min_input_length=dims.min_input_length,
        frames_lost_per_block=lost,
        pool=2,
        blocks=2,
    )


def checkpoint_format(path: Path) -> str:
    """The ``format`` field of a torch checkpoint file or corrector model directory."""
    torch = require("torch", "reading checkpoints")
    if path.is_dir():
        return "edge-slr-corrector"
    if not path.is_file():
        raise FormatError(path, "checkpoint file does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, foreign or not a torch file
        raise FormatError(
            path, f"cannot be read as a weights-only torch checkpoint ({err})"
        ) from None
    return str(payload.get("format")) if isinstance(payload, dict) else type(payload).__name__


def load_source(checkpoint: str | Path, options: ConvertOptions) -> Source:
    path = Path(checkpoint)
    kind = checkpoint_format(path)
    if kind == "edge-slr-corrector":
        from edge_slr.converters.corrector_export import load_corrector_source

        return load_corrector_source(path)
    if kind != "edge-slr-student":
        raise FormatError(
            path, f"not an edge-slr student or corrector checkpoint (format {kind!r})"
        )
    from edge_slr.training.checkpoint import load_student

    model, ckpt = load_student(path)
    vocab = ckpt.vocab()
    preset = ckpt.feature_preset()
    dims = ckpt.dims
    return Source(
        kind="student",
        checkpoint=path,
        sha256=file_sha256(path),
        model=model.for_export(log_probs=options.log_probs),
        vocabulary=vocab.to_dict(),
        labels=tuple(vocab.glosses),
        dims=dims.to_dict(),
        preset=preset.to_dict(),
        temporal=student_temporal(dims),
        feature_dim=dims.input_dim,
        num_classes=dims.num_classes,
        info={
            "epoch": ckpt.epoch,
            "step": ckpt.step,
            "metrics": ckpt.metrics,
            "versions": ckpt.versions,
            "fps": training_fps(ckpt),
        },
    )


def training_fps(ckpt: Any) -> float | None:
    """The frame rate of the checkpoint's training data (its first training sample), or None
    when that dataset is not here (the sidecar then reads as ``sidecar.DEFAULT_FPS``)."""
    from edge_slr.data.dataset import LandmarkDataset

    data = (ckpt.config or {}).get("data") or {}
    root, split = data.get("root"), data.get("train_split") or "train"
    try:
        dataset = LandmarkDataset(root, split)
        return float(dataset[0].landmarks.fps) if len(dataset) else None
    except Exception as err:  # moved, deleted or unreadable: the frame rate stays unknown
        logger.info("training frame rate unknown (dataset %r: %s)", root, err)
        return None


def attach_data(job: Job, calibration: str | Path | None) -> None:
    """Load held-out (and, for INT8, calibration) sequences; build the FP32 reference."""
    src, opts = job.source, job.options
    heldout = None
    if src.kind == "student" and calibration is not None:
        from edge_slr.converters.calibration import heldout_split, load_sequences
        from edge_slr.landmarks.presets import preset_from_dict

        preset = preset_from_dict(src.preset)
        common = dict(
            min_frames=src.temporal.min_input_length,
            vocabulary_sha256=src.vocabulary["sha256"],
        )
        split = heldout_split(calibration, opts.heldout_split)
        heldout = load_sequences(calibration, split, preset, limit=opts.heldout_size, **common)
        if job.spec.int8 and needs_calibration(job):
            job.calibration = load_sequences(
                calibration, opts.calibration_split, preset, limit=opts.calibration_size, **common
            )
            if len(job.calibration) < RECOMMENDED_CALIBRATION:
                logger.warning(
                    "INT8 calibration uses %d sequences; %d or more give stable statistics",
                    len(job.calibration),
                    RECOMMENDED_CALIBRATION,
                )
    elif src.kind == "corrector" and calibration is not None:
        from edge_slr.converters.corrector_export import attach_corrector_data

        attach_corrector_data(job, calibration)
        return
    if src.kind == "student":
        job.reference = Reference(
            model=src.model,
            min_length=src.temporal.min_input_length,
            feature_dim=src.feature_dim,
            heldout=heldout,
        )


def needs_calibration(job: Job) -> bool:
    """Dynamic-range TFLite INT8 quantises weights only: no activation statistics needed."""
    return not (job.spec.name == "tflite-int8" and not job.options.full_integer)


def verify(job: Job, artifact: Artifact) -> VerificationReport:
    if job.source.kind == "corrector":
        from edge_slr.converters.corrector_verify import verify_corrector

        return verify_corrector(job, artifact)
    if job.spec.int8:
        return compare_decodes(artifact.runner, job.reference, job.source.labels, job.verify_config)
    fp16 = artifact.precision.weights == "fp16"
    return compare_logits(artifact.runner, job.reference, job.verify_config, fp16=fp16)
