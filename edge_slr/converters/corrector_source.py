"""The gloss corrector as a conversion source: its checkpoint, data and verification.

Export per target: :mod:`edge_slr.converters.corrector_export` (ONNX, OpenVINO),
:mod:`edge_slr.converters.corrector_int8` and :mod:`edge_slr.converters.tf_corrector` (TFLite);
data: :mod:`edge_slr.converters.corrector_data`; verification:
:mod:`edge_slr.converters.corrector_verify`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from edge_slr.converters.job import ConvertOptions, Job, Source
from edge_slr.converters.verify import VerificationReport
from edge_slr.sidecar import ModelDescription, file_sha256


@dataclass(frozen=True, kw_only=True)
class CorrectorSource(Source):
    """A corrector model directory: stages of token ids -> token log-probabilities."""

    kind: ClassVar[str] = "corrector"
    corrector: Any  # the torch Corrector (edge_slr.training.corrector)

    def attach_data(self, job: Job, calibration: Path | None) -> None:
        if calibration is not None:
            from edge_slr.converters.corrector_data import attach_corrector_data

            attach_corrector_data(job, calibration)

    def verify(
        self, job: Job, description: ModelDescription, model_path: Path
    ) -> VerificationReport:
        from edge_slr.converters.corrector_verify import verify_corrector

        return verify_corrector(job, description, model_path)


def load_corrector_source(path: Path, options: ConvertOptions | None = None) -> CorrectorSource:
    """A corrector model directory (or its checkpoint file); ``options`` change nothing here."""
    from edge_slr.training.corrector.checkpoint import CHECKPOINT_FILE, load_corrector

    corrector = load_corrector(path)
    file = path / CHECKPOINT_FILE if path.is_dir() else path
    dims = corrector.stages[0].dims
    vocab = corrector.vocab
    return CorrectorSource(
        checkpoint=file,
        sha256=file_sha256(file),
        vocabulary=vocab.to_dict(),
        labels=tuple(vocab.tokens),
        dims=dims.to_dict(),
        num_classes=len(vocab),
        info={
            "gates": [g.to_dict() for g in corrector.gates],
            "special_ids": {
                "pad": vocab.pad_id,
                "bos": vocab.bos_id,
                "eos": vocab.eos_id,
                "unk": vocab.unk_id,
            },
            "max_output_rule": "min(max_len - 1, 2 * source_glosses + 4)",
        },
        corrector=corrector,
    )
