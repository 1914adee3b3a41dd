"""OpenVINO IR INT8 by NNCF post-training quantisation, with the LSTM handling that keeps decodes.

Calibration runs on real landmark sequences of the training distribution (>= 300 by default,
variable lengths: the IR has a dynamic time axis). NNCF's default quantisation of OpenVINO's
LSTMSequence broke the decodes of a student whose LSTM input is all-positive (post-ReLU and
max-pool; docs/engines.md). The students here put a LayerNorm or a linear layer before the LSTM
for that reason, but whether an INT8 LSTM keeps the decodes is checked, not assumed:

    lstm="auto"        try INT8 LSTMs; if the held-out decodes or WER fail verification, keep the
                       first LSTM in FP32, then all of them, then also the first convolution
                       (it reads the raw landmark features)
    lstm="int8" | "first-fp32" | "fp32" | "fp32+input-conv"   one fixed choice

Measured on the project's students (benchmarks/results/convert_speed.md): INT8 LSTMs change the
decodes even behind the LayerNorm, and the input convolution is the most sensitive of the rest.

``accuracy_control=True`` runs ``nncf.quantize_with_accuracy_control`` instead, with the metric
1 - WER on the held-out split and ``max_wer_drop`` (points) as its absolute maximum drop; NNCF then
reverts the layers that hurt most to FP32 until the drop is within bounds. Either way the final
model is verified like every INT8 artifact.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from edge_slr._optional import require
from edge_slr.converters.describe import output_name, student_graph
from edge_slr.converters.job import Artifact, Job
from edge_slr.converters.openvino_ir import student_to_ov
from edge_slr.converters.source import StudentSource
from edge_slr.converters.verify import (
    ConversionError,
    Reference,
    VerificationReport,
    decode_glosses,
)
from edge_slr.runtimes.openvino_rt import PRECISION_KEY
from edge_slr.sidecar import PrecisionSpec

logger = logging.getLogger(__name__)


# The layers an INT8 model keeps in floating point (the LSTMs, at least) would run in the CPU
# plugin's default precision, which is bf16 on CPUs with AVX512_BF16/AMX and f32 elsewhere: what
# was verified on one CPU would not be what runs on another. They are pinned to the precision
# the verification used (``inference_precision`` option, f32 unless bf16 is asked for), and the
# sidecar records it so the runtime compiles with exactly that.
def int8_config(inference_precision: str = "f32") -> dict[str, str]:
    return {PRECISION_KEY: inference_precision}


INT8_CONFIG = int8_config()
QUANTIZED_TYPES = ("Convolution", "MatMul", "LSTMSequence")


def lstm_names(model: Any) -> list[str]:
    """Friendly names of the LSTMSequence ops, first layer first."""
    return [
        op.get_friendly_name()
        for op in model.get_ordered_ops()
        if op.get_type_name() == "LSTMSequence"
    ]


def input_conv_name(model: Any) -> list[str]:
    """The first Convolution: it reads the raw landmark features, the most sensitive input."""
    convs = [
        op.get_friendly_name()
        for op in model.get_ordered_ops()
        if op.get_type_name() == "Convolution"
    ]
    return convs[:1]


def attempts(policy: str, lstms: list[str], input_conv: list[str]) -> list[tuple[str, list[str]]]:
    """(label, ops kept in FP32) to try in order, for a policy (``auto`` tries them all)."""
    plans = {
        "int8": [],
        "first-fp32": lstms[:1],
        "fp32": lstms,
        "fp32+input-conv": lstms + input_conv,
    }
    order = list(plans) if policy == "auto" else [policy]
    tried, out = set(), []
    for label in order:
        if tuple(plans[label]) not in tried:
            tried.add(tuple(plans[label]))
            out.append((label, plans[label]))
    return out


def _dataset(nncf: Any, job: Job) -> Any:
    # Each item is one whole sequence, (1, T, F): lengths vary, as at run time.
    return nncf.Dataset([s.features[None] for s in job.calibration.sequences])


def quantize(job: Job, model: Any, kept_fp32: list[str]) -> Any:
    nncf = require("nncf", "INT8 quantisation for OpenVINO")
    return nncf.quantize(
        model,
        _dataset(nncf, job),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=len(job.calibration),
        ignored_scope=nncf.IgnoredScope(names=kept_fp32) if kept_fp32 else None,
    )


def quantize_with_accuracy_control(job: Job, model: Any) -> Any:
    """NNCF's accuracy-controlled PTQ: metric 1 - WER on held-out sentences."""
    nncf = require("nncf", "INT8 quantisation for OpenVINO")
    from edge_slr.metrics import score

    assert isinstance(job.heldout, Reference) and job.heldout.heldout is not None
    heldout = job.heldout.heldout
    labels = StudentSource.of(job).labels

    def validate(compiled: Any, items: Any) -> tuple[float, list[float]]:
        hyps, refs, per_item = {}, {}, []
        for seq in items:
            logits = np.asarray(compiled(seq.features[None])[0])[0]
            hyps[seq.id], refs[seq.id] = decode_glosses(logits, labels), seq.glosses
            one = score({seq.id: hyps[seq.id]}, {seq.id: seq.glosses}, corpus=heldout.corpus)
            per_item.append(1.0 - one.wer)
        return 1.0 - score(hyps, refs, corpus=heldout.corpus).wer, per_item

    validation = nncf.Dataset(list(heldout.sequences), lambda seq: seq.features[None])
    return nncf.quantize_with_accuracy_control(
        model,
        _dataset(nncf, job),
        validation,
        validate,
        max_drop=job.options.max_wer_drop / 100.0,
        drop_type=nncf.DropType.ABSOLUTE,
        preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=len(job.calibration),
    )


# Ops between a quantiser and the op it feeds (NNCF moves FakeQuantize above them), and the
# decompression chain of INT8 weights (Constant i8 -> Convert -> Subtract -> Multiply).
_PASS_THROUGH = (
    "Transpose",
    "MaxPool",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Convert",
    "Subtract",
    "Multiply",
)
_INT_TYPES = ("i8", "u8", "i4", "u4")


def _upstream(value: Any, depth: int = 6) -> list[Any]:
    """Nodes reachable from an input value through pass-through ops (bounded search)."""
    node, found = value.get_node(), []
    found.append(node)
    if depth and node.get_type_name() in _PASS_THROUGH:
        for parent in node.input_values():
            found += _upstream(parent, depth - 1)
    return found


def op_precisions(model: Any) -> list[dict[str, str]]:
    """For each Convolution/MatMul/LSTMSequence: are its weights INT8, is its input quantised?"""
    rows = []
    for op in model.get_ordered_ops():
        if op.get_type_name() not in QUANTIZED_TYPES:
            continue
        inputs = list(op.input_values())
        data = _upstream(inputs[0])
        weights = [n for v in inputs[1:] for n in _upstream(v)]
        int8_weights = any(
            n.get_type_name() == "Constant" and n.get_element_type().get_type_name() in _INT_TYPES
            for n in weights
        )
        rows.append(
            {
                "op": f"{op.get_type_name()} {op.get_friendly_name()}",
                "weights": "int8" if int8_weights else "fp32",
                "input": "int8"
                if any(n.get_type_name() == "FakeQuantize" for n in data)
                else "fp32",
            }
        )
    return rows


def kept_fp32(rows: list[dict[str, str]]) -> list[str]:
    kept = []
    for row in rows:
        if row["weights"] == "fp32":
            kept.append(f"{row['op']} (weights and input)")
        elif row["input"] == "fp32":
            kept.append(f"{row['op']} (input; weights INT8)")
    return kept


def try_plans(job: Job, float_model: Any) -> tuple[Artifact, VerificationReport, list[dict]]:
    """Quantise per plan until one verifies; (the last artifact written, its report, every
    attempt). Each plan's IR is written and verified on the OpenVINO runtime, as deployed."""
    from edge_slr.converters.describe import verify_artifact

    if job.options.accuracy_control:
        plans = [("accuracy-control", [])]
    else:
        plans = attempts(job.options.lstm, lstm_names(float_model), input_conv_name(float_model))
    tried: list[dict[str, Any]] = []
    for label, kept in plans:
        if label == "accuracy-control":
            model = quantize_with_accuracy_control(job, float_model.clone())
        else:
            model = quantize(job, float_model.clone(), kept)
        artifact = write_artifact(job, model, label)
        report = verify_artifact(job, artifact)
        tried.append(
            {
                "plan": label,
                "kept_fp32": kept,
                "passed": report.passed,
                "agreement": report.agreement,
                "wer_drop": report.wer_drop,
            }
        )
        logger.info(
            "INT8 plan %s: gloss agreement %.3f, WER drop %+.2f",
            label,
            report.agreement,
            report.wer_drop,
        )
        if report.passed:
            break
    artifact.details["attempts"] = tried
    return artifact, report, tried


def write_artifact(job: Job, model: Any, label: str) -> Artifact:
    """Save one plan's INT8 IR (over the previous plan's) and describe it."""
    from edge_slr.converters.openvino_ir import op_types, save_ir

    ov = require("openvino", "OpenVINO conversion")
    nncf = require("nncf", "INT8 quantisation for OpenVINO")
    xml, weights = save_ir(model, job.model_path("-int8"), compress_to_fp16=False)
    precisions = op_precisions(model)
    config = int8_config(job.options.inference_precision)
    return Artifact(
        model_path=xml,
        precision=PrecisionSpec(
            "int8",
            "int8",
            kept_fp32=tuple(kept_fp32(precisions)),
            notes="NNCF PTQ (performance preset); ops listed in kept_fp32 run in floating point",
        ),
        engine={"name": "openvino", "version": ov.get_version(), "config": config},
        graphs=(student_graph(job, xml, weights),),
        sequence_output=output_name(job),
        output_kind=output_name(job),
        details={
            "lstm_policy": "nncf" if job.options.accuracy_control else job.options.lstm,
            "plan": label,
            "calibration_method": "nncf.quantize_with_accuracy_control"
            if job.options.accuracy_control
            else "nncf.quantize",
            "ops": op_types(model),
            "op_precisions": precisions,
            "verified_inference_precision": config[PRECISION_KEY],
        },
        versions={"openvino": ov.get_version(), "nncf": nncf.__version__},
    )


def export(job: Job) -> Artifact:
    """The student as OpenVINO IR INT8: the first quantisation plan that verifies."""
    nncf = require("nncf", "INT8 quantisation for OpenVINO")
    nncf.set_log_level(logging.ERROR)
    artifact, report, tried = try_plans(job, student_to_ov(job))
    if not report.passed:
        summary = "; ".join(
            f"{t['plan']}: agreement {t['agreement']:.1%}, WER {t['wer_drop']:+.2f}" for t in tried
        )
        raise ConversionError(
            f"openvino-int8: no quantisation plan kept the decodes ({summary}); "
            f"last: {report.reason}",
            report,
        )
    verified = (report.runtime or {}).get("inference_precision", job.options.inference_precision)
    if verified != job.options.inference_precision:
        # A bf16 hint on a CPU without bf16 ran in f32: record what really ran.
        logger.warning(
            "%s inference was asked for, but this CPU runs the floating-point layers in %s: "
            "verified and recorded %s",
            job.options.inference_precision, verified, verified,
        )  # fmt: skip
        artifact.engine["config"] = int8_config(verified)
        artifact.details["verified_inference_precision"] = verified
    artifact.verification = report
    return artifact
