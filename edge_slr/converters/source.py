"""Loading the model to convert: the checkpoint formats, and the student source.

A checkpoint's ``format`` picks its loader (:data:`LOADERS`); each loader returns the
:class:`~edge_slr.converters.job.Source` subclass of its model kind, which loads that kind's
held-out and calibration data and verifies the written artifact on the runtime that will run it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from edge_slr._optional import require
from edge_slr.converters.corrector_source import load_corrector_source
from edge_slr.converters.job import ConvertOptions, Job, Source
from edge_slr.converters.verify import (
    Reference,
    VerificationReport,
    compare_decodes,
    compare_logits,
)
from edge_slr.errors import FormatError
from edge_slr.runtimes.torch_rt import student_temporal, training_fps
from edge_slr.sidecar import ModelDescription, file_sha256

logger = logging.getLogger(__name__)

RECOMMENDED_CALIBRATION = 300


@dataclass(frozen=True, kw_only=True)
class StudentSource(Source):
    """A student checkpoint: landmark features (B, T, F) -> CTC logits (B, T', V)."""

    kind: ClassVar[str] = "student"
    model: Any  # the torch export wrapper, eval mode
    feature_dim: int

    def attach_data(self, job: Job, calibration: Path | None) -> None:
        """Held-out sequences (and, for INT8 targets that calibrate, calibration sequences)
        from a landmark dataset; the FP32 reference over them."""
        heldout = None
        if calibration is not None:
            from edge_slr.converters.calibration import heldout_split, load_sequences
            from edge_slr.landmarks.presets import preset_from_dict

            assert self.temporal is not None and self.preset is not None  # set by the loader
            opts, preset = job.options, preset_from_dict(self.preset)
            common = dict(
                min_frames=self.temporal.min_input_length,
                vocabulary_sha256=self.vocabulary["sha256"],
            )
            split = heldout_split(calibration, opts.heldout_split)
            heldout = load_sequences(calibration, split, preset, limit=opts.heldout_size, **common)
            if job.spec.calibrates(self.kind, opts):
                job.calibration = load_sequences(
                    calibration, opts.calibration_split, preset, limit=opts.calibration_size,
                    **common,
                )  # fmt: skip
                if len(job.calibration) < RECOMMENDED_CALIBRATION:
                    logger.warning(
                        "INT8 calibration uses %d sequences; %d or more give stable statistics",
                        len(job.calibration),
                        RECOMMENDED_CALIBRATION,
                    )
        assert self.temporal is not None
        job.heldout = Reference(
            model=self.model,
            min_length=self.temporal.min_input_length,
            feature_dim=self.feature_dim,
            heldout=heldout,
        )

    def verify(
        self, job: Job, description: ModelDescription, model_path: Path
    ) -> VerificationReport:
        """FP32 logits (INT8: decodes and WER) of the written model, loaded by
        :func:`edge_slr.runtimes.load_runtime` with ``description`` as its sidecar."""
        from edge_slr.runtimes import load_runtime

        assert isinstance(job.heldout, Reference)
        with load_runtime(model_path, description=description) as runtime:

            def run(features: Any) -> Any:
                return runtime.run(features[None])[0]

            if job.spec.int8:
                report = compare_decodes(run, job.heldout, self.labels, job.verify_config)
            else:
                fp16 = description.precision.weights == "fp16"
                report = compare_logits(run, job.heldout, job.verify_config, fp16=fp16)
            return replace(report, runtime=runtime.settings)


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


def load_student_source(path: Path, options: ConvertOptions) -> StudentSource:
    from edge_slr.training.checkpoint import load_student

    model, ckpt = load_student(path)
    vocab, dims, fps = ckpt.vocab(), ckpt.dims, training_fps(ckpt.config)
    return StudentSource(
        checkpoint=path,
        sha256=file_sha256(path),
        model=model.for_export(log_probs=options.log_probs),
        vocabulary=vocab.to_dict(),
        labels=tuple(vocab.glosses),
        dims=dims.to_dict(),
        preset=ckpt.feature_preset().to_dict(),
        temporal=student_temporal(dims),
        fps=fps,
        feature_dim=dims.input_dim,
        num_classes=dims.num_classes,
        info={"epoch": ckpt.epoch, "step": ckpt.step, "metrics": ckpt.metrics,
              "versions": ckpt.versions, "fps": fps},
    )  # fmt: skip


# checkpoint format -> loader of its Source (the model kinds conversion knows)
LOADERS: dict[str, Callable[[Path, ConvertOptions], Source]] = {
    "edge-slr-student": load_student_source,
    "edge-slr-corrector": load_corrector_source,
}


def load_source(checkpoint: str | Path, options: ConvertOptions) -> Source:
    path = Path(checkpoint)
    found = checkpoint_format(path)
    if found not in LOADERS:
        raise FormatError(
            path, f"not an edge-slr student or corrector checkpoint (format {found!r})"
        )
    return LOADERS[found](path, options)
