"""INT8 corrector graphs: ONNX Runtime dynamic quantisation and OpenVINO NNCF post-training.

- ``onnx-int8``: ``quantize_dynamic`` of every MatMul/Gemm with a constant weight (INT8 weights,
  activations quantised per call by DynamicQuantizeLinear, MatMulInteger). The attention
  score/value products (activation x activation), LayerNorm, Softmax, GELU and the embedding
  stay float. Needs no calibration data.
- ``openvino-int8``: ``nncf.quantize`` with ``model_type=TRANSFORMER`` (INT8 weights and
  activations of the MatMuls; NNCF's transformer scheme keeps LayerNorm/Softmax/GELU float),
  calibrated per graph on noisy *train* sentences made with the corrector's noise model
  (:mod:`edge_slr.converters.corrector_data`): encoders see the noisy sources, decoders the
  teacher-forced clean targets over the FP32 reference memory. Verified here, policy by policy
  (:data:`OV_POLICIES`): if quantising every graph fails verification, the decoders keep float
  activations (INT8 weights), then all graphs do; the sidecar records every attempt
  (``details.attempts``) and the policy kept (``details.policy``).
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr._optional import require
from edge_slr.converters.corrector_data import RECOMMENDED_SENTENCES
from edge_slr.converters.corrector_source import CorrectorSource
from edge_slr.converters.job import Artifact, Job
from edge_slr.errors import InputError
from edge_slr.sidecar import PrecisionSpec

logger = logging.getLogger(__name__)

ORT_OPS = ["MatMul", "Gemm"]


def _op_counts(nodes: list[str]) -> dict[str, int]:
    return dict(sorted(Counter(nodes).items()))


def export_onnx_int8(job: Job) -> Artifact:
    from edge_slr.converters import corrector_export as ce
    from edge_slr.converters.onnx_int8 import _quiet_root_warning

    onnx = require("onnx", "ONNX INT8 quantisation")
    ort = require("onnxruntime", "ONNX INT8 quantisation")
    quantization = require("onnxruntime.quantization", "ONNX INT8 quantisation")
    stem = ce.artifact_stem(job)
    files, ops = [], {}
    with tempfile.TemporaryDirectory(prefix="edge-slr-corrector-") as tmp:
        for role, fp32 in ce.export_onnx_graphs(job, Path(tmp), "corrector"):
            path = job.out_dir / fp32.name.replace("corrector", stem)
            with _quiet_root_warning("pre-processing before quantization"):
                quantization.quantize_dynamic(
                    str(fp32),
                    str(path),
                    op_types_to_quantize=ORT_OPS,
                    weight_type=quantization.QuantType.QInt8,
                )
            onnx.checker.check_model(str(path))
            ops[role] = _op_counts([n.op_type for n in onnx.load(str(path)).graph.node])
            files.append((role, path, None))
    kept = sorted({"MatMul (attention: activation x activation)"} if _any(ops, "MatMul") else set())
    precision = PrecisionSpec(
        "int8",
        "int8",
        kept_fp32=(*kept, "LayerNormalization", "Softmax", "GELU (Erf)", "embedding Gather",
                   "copy-attention mixing (softmax, gate, log)"),
        notes="onnxruntime quantize_dynamic: MatMul/Gemm with constant weights -> "
        "MatMulInteger (INT8 weights, activations quantised per call)",
    )  # fmt: skip
    artifact = ce.make_artifact(
        job,
        files,
        precision,
        {"name": "onnxruntime", "version": ort.__version__, "config": {}},
        {"onnx": onnx.__version__, "onnxruntime": ort.__version__},
    )
    artifact.details.update(quantization="dynamic", ops=ops)
    return artifact


def _any(ops: dict[str, dict[str, int]], op: str) -> bool:
    return any(op in counts for counts in ops.values())


def calibration_items(job: Job, index: int, stage: Any) -> tuple[list[dict], list[dict]]:
    """Encoder and decoder inputs of stage ``index`` over its noisy calibration sentences."""
    torch = require("torch", "the corrector reference")
    vocab = CorrectorSource.of(job).corrector.vocab
    encoder, decoder = [], []
    for noisy, clean in job.calibration.stages[index]:
        src = np.array([list(noisy) + [vocab.eos_id]], dtype=np.int64)
        with torch.no_grad():
            memory = stage.encode(torch.from_numpy(src)).numpy()
        tgt = np.array([[vocab.bos_id] + list(clean)], dtype=np.int64)
        encoder.append({"src": src})
        decoder.append({"tgt": tgt, "memory": memory, "src": src})
    return encoder, decoder


def float_matmuls(model: Any) -> tuple[int, list[str]]:
    """(MatMuls in the graph, names of those without a quantised (FakeQuantize) input)."""
    matmuls = [op for op in model.get_ordered_ops() if op.get_type_name() == "MatMul"]
    floating = []
    for op in matmuls:
        kinds = {i.get_source_output().get_node().get_type_name() for i in op.inputs()}
        if "FakeQuantize" not in kinds:
            floating.append(op.get_friendly_name())
    return len(matmuls), floating


# Tried in order; the first whose verification passes is kept (all are recorded in the sidecar):
# full = nncf.quantize on every graph; encoders = quantised encoders, decoders with INT8 weights
# only; weights = INT8 weights only everywhere (nncf.compress_weights, data-free).
OV_POLICIES = ("full", "encoders", "weights")


def _ov_graph(job: Job, nncf: Any, model: Any, role: str, data: list[dict], policy: str) -> Any:
    quantize = policy == "full" or (policy == "encoders" and role.endswith("encoder"))
    if not quantize:
        return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
    return nncf.quantize(
        model,
        nncf.Dataset(data),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(data),
    )


def _ov_attempt(job: Job, graphs: list[tuple[str, Path]], policy: str) -> Artifact:
    from edge_slr.converters import corrector_export as ce

    ov = require("openvino", "OpenVINO conversion")
    nncf = require("nncf", "INT8 post-training quantisation")
    stem = ce.artifact_stem(job)
    stages = CorrectorSource.of(job).corrector.stages
    files, floating = [], {}
    for i, (role, onnx_path) in enumerate(graphs):
        if i % 2 == 0:
            items = calibration_items(job, i // 2, stages[i // 2])
        model = _ov_graph(job, nncf, ov.convert_model(str(onnx_path)), role, items[i % 2], policy)
        total, names = float_matmuls(model)
        floating[role] = {"matmuls": total, "float": len(names), "float_names": names}
        xml = job.out_dir / onnx_path.name.replace("corrector", stem).replace(".onnx", ".xml")
        ov.save_model(model, str(xml), compress_to_fp16=False)
        files.append((role, xml, xml.with_suffix(".bin")))
    config = ce.ov_config()
    weight_only = [r for r, _ in graphs if policy == "weights" or (
        policy == "encoders" and r.endswith("decoder"))]  # fmt: skip
    kept = [f"activations of {', '.join(weight_only)} (INT8 weights only)"] if weight_only else []
    precision = PrecisionSpec(
        "int8",
        "int8" if len(weight_only) < len(graphs) else "fp32",
        kept_fp32=(*kept, "MatMuls listed per graph in details.float_matmuls", "LayerNorm (MVN)",
                   "Softmax", "GELU", "embedding Gather", "copy-attention mixing"),
        notes=f"policy {policy!r}: nncf.quantize model_type=TRANSFORMER on noisy train "
        "sentences; graphs with INT8 weights only use nncf.compress_weights INT8_ASYM",
    )  # fmt: skip
    artifact = ce.make_artifact(
        job,
        files,
        precision,
        {"name": "openvino", "version": ov.get_version(), "config": config},
        {"openvino": ov.get_version(), "nncf": nncf.__version__},
    )
    artifact.details.update(
        quantization=f"nncf ({policy})",
        policy=policy,
        float_matmuls=floating,
        calibration_method="nncf.quantize, model_type=TRANSFORMER, noisy train sentences",
    )
    return artifact


def export_openvino_int8(job: Job) -> Artifact:
    """The first policy of :data:`OV_POLICIES` that passes verification (verified here)."""
    from edge_slr.converters import corrector_export as ce
    from edge_slr.converters.describe import verify_artifact

    if job.options.accuracy_control or job.options.lstm != "auto":
        raise InputError("--accuracy-control and --lstm apply to the student, not the corrector")
    if job.calibration is None:
        raise InputError(
            "openvino-int8 needs calibration sentences for the corrector (--calibration DIR: "
            "a landmark dataset or the corrector's corpus folder)"
        )
    if len(job.calibration) < RECOMMENDED_SENTENCES:
        logger.warning(
            "INT8 calibration uses %d sentences; %d or more give stable statistics",
            len(job.calibration),
            RECOMMENDED_SENTENCES,
        )
    nncf = require("nncf", "INT8 post-training quantisation")
    nncf.set_log_level(logging.ERROR)  # no statistics table on stdout
    attempts = []
    with tempfile.TemporaryDirectory(prefix="edge-slr-corrector-") as tmp:
        graphs = ce.export_onnx_graphs(job, Path(tmp), "corrector")
        for policy in OV_POLICIES:
            artifact = _ov_attempt(job, graphs, policy)
            report = verify_artifact(job, artifact)
            attempts.append({"policy": policy, "passed": report.passed, "reason": report.reason,
                             "agreement": report.agreement, "wer_drop": report.wer_drop})  # fmt: skip
            logger.info("openvino-int8 corrector, policy %s: %s", policy, report.reason or "ok")
            if report.passed:
                break
    artifact.verification = report
    artifact.details["attempts"] = attempts
    return artifact
