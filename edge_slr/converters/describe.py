"""The sidecar of an artifact: assemble the ModelDescription, verify the artifact with it, write
it and read it back."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from edge_slr import __version__
from edge_slr.converters.job import Artifact, Job
from edge_slr.converters.verify import VerificationReport
from edge_slr.sidecar import (
    FileInfo,
    GraphSpec,
    ModelDescription,
    TensorSpec,
    read_sidecar,
    write_sidecar,
)


def student_graph(job: Job, path: Path, weights: Path | None = None) -> GraphSpec:
    """The one graph of a student artifact: features (batch, frames, F) -> logits."""
    from edge_slr.converters.source import StudentSource

    source = StudentSource.of(job)
    batch: int | str = 1 if job.spec.engine == "litert" else "batch"  # TFLite: batch fixed to 1
    return GraphSpec(
        role="recognizer",
        file=FileInfo.of(path),
        weights=FileInfo.of(weights) if weights is not None else None,
        inputs=(TensorSpec("features", (batch, "frames", source.feature_dim)),),
        outputs=(TensorSpec(output_name(job), (batch, "steps", source.num_classes)),),
    )


def output_name(job: Job) -> str:
    """A student's output: log_softmax with ``--log-probs``, else logits."""
    return "log_probs" if job.options.log_probs else "logits"


def description(
    job: Job, artifact: Artifact, report: VerificationReport | None = None
) -> ModelDescription:
    """The sidecar of ``artifact``; without ``report`` the one its verification runs with."""
    src = job.source
    calibration = job.calibration.summary() if job.calibration is not None else None
    if calibration is not None:
        calibration["method"] = artifact.details.get("calibration_method", "")
    return ModelDescription(
        kind=src.kind,
        target=job.spec.name,
        engine=artifact.engine,
        graphs=artifact.graphs,
        sequence_output=artifact.sequence_output,
        output_kind=artifact.output_kind,
        vocabulary=src.vocabulary,
        precision=artifact.precision,
        source=src.describe(),
        preset=src.preset,
        temporal=src.temporal,
        calibration=calibration,
        verification=report.to_dict() if report is not None else {},
        options=job.options.changed(),
        details=artifact.details,
        versions=versions(artifact),
        fps=src.fps,
    )


def verify_artifact(job: Job, artifact: Artifact) -> VerificationReport:
    """Verify ``artifact`` as deployed: loaded by the runtimes with the sidecar it will get."""
    return job.source.verify(job, description(job, artifact), artifact.model_path)


def versions(artifact: Artifact) -> dict[str, str]:
    from edge_slr._optional import require

    torch = require("torch", "recording versions")
    return {
        "edge_slr": __version__,
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        **artifact.versions,
    }


def write_and_check(description: ModelDescription, model_path: Path) -> Path:
    """Write the sidecar and read it back: what we write must pass our own validation."""
    path = write_sidecar(description, model_path)
    read_sidecar(path)
    return path


def summary(description: ModelDescription) -> dict[str, Any]:
    """A one-screen view (for the CLI): sizes, precision, verification."""
    files = [f for g in description.graphs for f in g.files()]
    v = description.verification
    return {
        "target": description.target,
        "files": {f.name: f.size for f in files},
        "size_bytes": sum(f.size for f in files),
        "precision": description.precision.weights,
        "kept_fp32": list(description.precision.kept_fp32),
        "verification": {
            k: v.get(k)
            for k in (
                "mode",
                "max_abs_diff",
                "agreement",
                "wer_reference",
                "wer_converted",
                "wer_drop",
            )
            if v.get(k) is not None
        },
    }
