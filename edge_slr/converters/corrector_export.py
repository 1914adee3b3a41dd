"""The gloss corrector on every target: two graphs per stage, one sidecar for all of them.

Each stage becomes an encoder graph ``src (B, S) int64 -> memory (B, S, d)`` and a decoder graph
``tgt (B, T) int64, memory (B, S, d), src (B, S) int64 -> log_probs (B, T, V)`` (the source ids
feed the copy-attention head); a runtime encodes once and calls the decoder on the growing output
(greedy or beam search, as ``training.corrector.decode`` does). Files are
``STEM-stage{i}-{encoder,decoder}.{onnx,xml,tflite}``; the sidecar ``STEM.EXT.json`` lists them
(``graphs``) and ``STEM.EXT`` itself is only the sidecar's name. STEM is ``corrector`` or
``corrector-int8`` (``--name`` replaces it).

- ONNX, OpenVINO FP32: the dynamo exporter (the TorchScript exporter bakes the sequence length
  into the attention reshapes, docs/engines.md), OpenVINO converts the ONNX graphs.
- ONNX / OpenVINO INT8: :mod:`edge_slr.converters.corrector_int8`.
- TFLite FP32 / dynamic-range INT8 (batch 1, dynamic lengths): a TensorFlow rebuild with copied
  weights, :mod:`edge_slr.converters.tf_corrector`.

Data (held-out and calibration sentences): :mod:`edge_slr.converters.corrector_data`;
verification: :mod:`edge_slr.converters.corrector_verify`.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from edge_slr._optional import require
from edge_slr.converters.corrector_source import CorrectorSource
from edge_slr.converters.job import Artifact, Job
from edge_slr.sidecar import FileInfo, GraphSpec, PrecisionSpec, TensorSpec

logger = logging.getLogger(__name__)

OPSET = 18
# OpenVINO 2026.4 CPU plugin: when a compiled graph's first inference has *source* length 1,
# later source lengths >= 16 reuse a wrong cached kernel (|diff| ~5, NaN in bf16); measured on
# the phoenix2014t corrector for both the encoder and the decoder (a first call of length 2..5,
# or 30, was followed by correct results). Disabling the shape-specialised runtime cache avoids
# it, at a cost (step-by-step dual correction ~3x slower on CPU); runtimes compile with this
# (edge_slr.runtimes.openvino_rt.RUNTIME_CACHE_OFF), and the sidecar records it.


# -- export --------------------------------------------------------------------------------------


def _wrappers(torch: Any, stage: Any) -> tuple[Any, Any]:
    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stage = stage

        def forward(self, src: Any) -> Any:
            return self.stage.encode(src)

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stage = stage

        def forward(self, tgt: Any, memory: Any, src: Any) -> Any:
            return self.stage.decode(tgt, memory, src)

    return Encoder().eval(), Decoder().eval()


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """The dynamo exporter's optimiser logs every rewrite at INFO; keep warnings only."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def export_onnx_graphs(job: Job, folder: Path, prefix: str) -> list[tuple[str, Path]]:
    """(role, path) of every stage's encoder and decoder ONNX file."""
    torch = require("torch", "exporting the corrector")
    corrector = CorrectorSource.of(job).corrector
    dims = corrector.stages[0].dims
    batch = torch.export.Dim("batch", max=1024)
    src_len = torch.export.Dim("source", max=dims.max_len)
    tgt_len = torch.export.Dim("target", max=dims.max_len)
    graphs = []
    for index, stage in enumerate(corrector.stages):
        encoder, decoder = _wrappers(torch, stage)
        # Batch 2 in the examples: torch.export specialises a dimension of size 1.
        src = torch.arange(1, 15, dtype=torch.long).reshape(2, 7) % dims.vocab_size
        tgt = torch.arange(1, 11, dtype=torch.long).reshape(2, 5) % dims.vocab_size
        with torch.no_grad():
            memory = stage.encode(src)
        for role, module, args, shapes, names in (
            ("encoder", encoder, (src,), {"src": {0: batch, 1: src_len}}, (["src"], ["memory"])),
            (
                "decoder",
                decoder,
                (tgt, memory, src),
                {
                    "tgt": {0: batch, 1: tgt_len},
                    "memory": {0: batch, 1: src_len},
                    "src": {0: batch, 1: src_len},
                },
                (["tgt", "memory", "src"], ["log_probs"]),
            ),
        ):
            path = folder / f"{prefix}-stage{index}-{role}.onnx"
            with warnings.catch_warnings(), _quiet("onnxscript", "onnx_ir"):
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module,
                    args,
                    str(path),
                    dynamo=True,
                    dynamic_shapes=shapes,
                    input_names=names[0],
                    output_names=names[1],
                    opset_version=OPSET,
                    external_data=False,
                    verbose=False,
                )
            graphs.append((f"stage{index}.{role}", path))
    return graphs


def graph_specs(job: Job, files: Sequence[tuple[str, Path, Path | None]]) -> list[GraphSpec]:
    d = job.source.dims["d_model"]
    batch: int | str = 1 if job.spec.engine == "litert" else "batch"  # TFLite: batch 1
    specs = []
    for role, path, weights in files:
        if role.endswith("encoder"):
            inputs = (TensorSpec("src", (batch, "source"), "int64"),)
            outputs = (TensorSpec("memory", (batch, "source", d)),)
        else:
            inputs = (
                TensorSpec("tgt", (batch, "target"), "int64"),
                TensorSpec("memory", (batch, "source", d)),
                TensorSpec("src", (batch, "source"), "int64"),
            )
            outputs = (TensorSpec("log_probs", (batch, "target", job.source.num_classes)),)
        specs.append(
            GraphSpec(
                role,
                FileInfo.of(path),
                inputs,
                outputs,
                FileInfo.of(weights) if weights is not None else None,
            )
        )
    return specs


def artifact_stem(job: Job) -> str:
    return job.options.name or "corrector" + ("-int8" if job.spec.int8 else "")


def make_artifact(
    job: Job,
    files: Sequence[tuple[str, Path, Path | None]],
    precision: PrecisionSpec,
    engine: dict[str, Any],
    versions: dict[str, str],
) -> Artifact:
    """The corrector's graphs, described under one sidecar named after ``STEM.EXT``."""
    return Artifact(
        model_path=job.out_dir / f"{artifact_stem(job)}{job.spec.suffix}",
        precision=precision,
        engine=engine,
        graphs=tuple(graph_specs(job, files)),
        sequence_output="log_probs",
        output_kind="log_probs",
        details={
            "sequence_output": "log_probs",
            "output_kind": "log_probs",
            "graphs": [f[0] for f in files],
            "decoding": "encode once; decode the growing target; greedy or beam",
        },
        versions=versions,
    )


def export_onnx(job: Job) -> Artifact:
    onnx = require("onnx", "checking the exported ONNX model")
    ort = require("onnxruntime", "verifying the ONNX model")
    graphs = export_onnx_graphs(job, job.out_dir, job.options.name or "corrector")
    for _, path in graphs:
        onnx.checker.check_model(str(path))
    files = [(role, path, None) for role, path in graphs]
    return make_artifact(
        job,
        files,
        PrecisionSpec("fp32", "fp32"),
        {"name": "onnxruntime", "version": ort.__version__, "config": {}},
        {"onnx": onnx.__version__, "onnxruntime": ort.__version__},
    )


def ov_config() -> dict[str, str]:
    """Compile settings of every corrector IR: exact f32 inference, no stale kernel cache."""
    from edge_slr.runtimes.openvino_rt import EXACT_FP32, RUNTIME_CACHE_OFF

    return {**EXACT_FP32, **RUNTIME_CACHE_OFF}


def export_openvino(job: Job) -> Artifact:
    ov = require("openvino", "OpenVINO conversion")
    stem = job.options.name or "corrector"
    files = []
    with tempfile.TemporaryDirectory(prefix="edge-slr-corrector-") as tmp:
        for role, onnx_path in export_onnx_graphs(job, Path(tmp), "corrector"):
            model = ov.convert_model(str(onnx_path))
            xml = job.out_dir / onnx_path.name.replace("corrector", stem).replace(".onnx", ".xml")
            ov.save_model(model, str(xml), compress_to_fp16=job.options.fp16)
            files.append((role, xml, xml.with_suffix(".bin")))
    config = ov_config()
    return make_artifact(
        job,
        files,
        PrecisionSpec("fp16" if job.options.fp16 else "fp32", "fp32"),
        {"name": "openvino", "version": ov.get_version(), "config": config},
        {"openvino": ov.get_version()},
    )
