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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr._optional import require
from edge_slr.converters.corrector_data import attach_corrector_data
from edge_slr.converters.job import Artifact, Job, Source
from edge_slr.sidecar import FileInfo, GraphSpec, PrecisionSpec, TensorSpec, file_sha256

logger = logging.getLogger(__name__)

__all__ = ["attach_corrector_data", "load_corrector_source"]  # attach: used by converters.source

OPSET = 18
# OpenVINO 2026.4 CPU plugin: when a compiled graph's first inference has *source* length 1,
# later source lengths >= 16 reuse a wrong cached kernel (|diff| ~5, NaN in bf16); measured on
# the phoenix2014t corrector for both the encoder and the decoder (a first call of length 2..5,
# or 30, was followed by correct results). Disabling the shape-specialised runtime cache avoids
# it, at a cost (step-by-step dual correction ~3x slower on CPU); runtimes compile with this.
RUNTIME_CACHE_OFF = {"CPU_RUNTIME_CACHE_CAPACITY": "0"}
Encode = Callable[[np.ndarray], np.ndarray]
Decode = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # tgt, memory, src


# -- source and data -----------------------------------------------------------------------------


def load_corrector_source(path: Path) -> Source:
    from edge_slr.training.corrector.checkpoint import CHECKPOINT_FILE, load_corrector

    corrector = load_corrector(path)
    file = path / CHECKPOINT_FILE if path.is_dir() else path
    dims = corrector.stages[0].dims
    vocab = corrector.vocab
    return Source(
        kind="corrector",
        checkpoint=file,
        sha256=file_sha256(file),
        model=None,
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
    dims = job.source.corrector.stages[0].dims
    batch = torch.export.Dim("batch", max=1024)
    src_len = torch.export.Dim("source", max=dims.max_len)
    tgt_len = torch.export.Dim("target", max=dims.max_len)
    graphs = []
    for index, stage in enumerate(job.source.corrector.stages):
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
    runners: list[tuple[Encode, Decode]],
) -> Artifact:
    return Artifact(
        model_path=job.out_dir
        / f"{artifact_stem(job)}{job.spec.suffix}",  # the sidecar is named after it
        precision=precision,
        engine=engine,
        details={
            "sequence_output": "log_probs",
            "output_kind": "log_probs",
            "graphs": [f[0] for f in files],
            "decoding": "encode once; decode the growing target; greedy or beam",
        },
        versions=versions,
        runner=runners,
        extra_graphs=graph_specs(job, files),
    )


def ort_pair(enc: Path, dec: Path) -> tuple[Encode, Decode]:
    from edge_slr.converters.onnx_export import ort_session

    e, d = ort_session(enc), ort_session(dec)
    return (
        lambda src: e.run(None, {"src": src})[0],
        lambda tgt, mem, src: d.run(None, {"tgt": tgt, "memory": mem, "src": src})[0],
    )


def ov_pair(enc: Any, dec: Any, config: dict[str, str]) -> tuple[Encode, Decode]:
    ov = require("openvino", "OpenVINO conversion")
    core = ov.Core()
    e, d = core.compile_model(enc, "CPU", config), core.compile_model(dec, "CPU", config)
    return (
        lambda src: np.asarray(e(src)[0]),
        lambda tgt, mem, src: np.asarray(d({"tgt": tgt, "memory": mem, "src": src})[0]),
    )


def pairs(files: list[Any], make: Callable[[Any, Any], tuple[Encode, Decode]]) -> list[Any]:
    return [make(files[i][1], files[i + 1][1]) for i in range(0, len(files), 2)]


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
        pairs(files, ort_pair),
    )


def ov_config() -> dict[str, str]:
    """Compile settings of every corrector IR: exact f32 inference, no stale kernel cache."""
    from edge_slr.converters.openvino_ir import FP32_CONFIG

    return {**FP32_CONFIG, **RUNTIME_CACHE_OFF}


def export_openvino(job: Job) -> Artifact:
    ov = require("openvino", "OpenVINO conversion")
    stem = job.options.name or "corrector"
    files, models = [], []
    with tempfile.TemporaryDirectory(prefix="edge-slr-corrector-") as tmp:
        for role, onnx_path in export_onnx_graphs(job, Path(tmp), "corrector"):
            model = ov.convert_model(str(onnx_path))
            xml = job.out_dir / onnx_path.name.replace("corrector", stem).replace(".onnx", ".xml")
            ov.save_model(model, str(xml), compress_to_fp16=job.options.fp16)
            files.append((role, xml, xml.with_suffix(".bin")))
            models.append(model)
    config = ov_config()
    runners = [ov_pair(models[i], models[i + 1], config) for i in range(0, len(models), 2)]
    return make_artifact(
        job,
        files,
        PrecisionSpec("fp16" if job.options.fp16 else "fp32", "fp32"),
        {"name": "openvino", "version": ov.get_version(), "config": config},
        {"openvino": ov.get_version()},
        runners,
    )


def export_openvino_int8(job: Job) -> Artifact:
    from edge_slr.converters.corrector_int8 import export_openvino_int8 as export

    return export(job)


def export_onnx_int8(job: Job) -> Artifact:
    from edge_slr.converters.corrector_int8 import export_onnx_int8 as export

    return export(job)


def export_tflite(job: Job) -> Artifact:
    """``tflite`` and ``tflite-int8`` (dynamic-range)."""
    from edge_slr.converters.tf_corrector import export_tflite as export

    return export(job)
