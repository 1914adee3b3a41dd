"""`edge-slr convert`: export a checkpoint to ONNX, OpenVINO or TFLite, verified, with a sidecar.

The ``--target`` choices come from the converters' target table. A conversion that fails its
verification exits non-zero with the reason and writes no sidecar.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_slr.converters import TARGETS
from edge_slr.converters.job import INFERENCE_PRECISIONS, LSTM_POLICIES

# CLI flag -> ConvertOptions field, for the options the user passes through
_OPTION_FLAGS = (
    "max_wer_drop", "min_agreement", "fp16", "full_integer", "fused_lstm", "lstm",
    "accuracy_control", "inference_precision", "compat", "calibration_size", "heldout_size",
    "calibration_split", "heldout_split", "log_probs", "name",
)  # fmt: skip


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    targets = "; ".join(f"{t.name}: {t.description}" for t in TARGETS.values())
    p = subparsers.add_parser(
        "convert",
        help="convert a student (or corrector) checkpoint for an edge runtime, verified",
        description="Convert a checkpoint to an edge runtime format, verify it against the FP32 "
        "PyTorch reference (FP32: max |logit diff| <= 1e-3 at several lengths; INT8: decode "
        "agreement and WER drop on held-out sequences) and write a JSON sidecar beside it. "
        f"Targets: {targets}.",
    )
    p.add_argument("checkpoint", type=Path, help="student .pt checkpoint or corrector folder")
    p.add_argument("--target", required=True, choices=list(TARGETS), help="what to produce")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="OUT", help="output folder")
    p.add_argument(
        "--calibration",
        type=Path,
        default=None,
        metavar="DIR",
        help="landmark dataset folder (for a corrector also its corpus folder): its train "
        "split calibrates INT8, its dev (else test) split verifies (required for INT8 targets)",
    )
    p.add_argument(
        "--max-wer-drop",
        type=float,
        default=None,
        help="INT8: largest allowed WER increase over the FP32 reference, in WER points "
        "(default 0.5); also the bound of --accuracy-control",
    )
    p.add_argument(
        "--min-agreement",
        type=float,
        default=None,
        help="INT8: share of the FP32 reference's decoded glosses the converted model must "
        "reproduce on held-out sequences (gloss-level, default 0.95)",
    )
    p.add_argument(
        "--fp16",
        action="store_true",
        default=None,
        help="openvino: store weights as FP16 (half the file)",
    )
    p.add_argument(
        "--full-integer",
        action="store_true",
        default=None,
        help="tflite-int8: INT8 activations too (integer-only accelerators)",
    )
    p.add_argument(
        "--fused-lstm",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="tflite: fused LSTM ops via tf-keras (default: only for --full-integer)",
    )
    p.add_argument(
        "--lstm",
        choices=LSTM_POLICIES,
        default=None,
        help="openvino-int8: what stays FP32 (default auto: all INT8, then FP32 "
        "LSTMs, then also the input convolution, until the decodes verify)",
    )
    p.add_argument(
        "--accuracy-control",
        action="store_true",
        default=None,
        help="openvino-int8: nncf.quantize_with_accuracy_control, metric 1 - WER",
    )
    p.add_argument(
        "--inference-precision",
        choices=INFERENCE_PRECISIONS,
        default=None,
        help="openvino-int8: precision of the layers kept in floating point, verified and "
        "recorded in the sidecar (default f32 on every CPU; bf16 is faster on CPUs with "
        "AVX512_BF16/AMX and is then what gets verified)",
    )
    p.add_argument(
        "--compat",
        default=None,
        metavar="INTERPRETER",
        help="tflite, tflite-int8: the oldest TFLite interpreter the model must load on, e.g. "
        "tflite-runtime-2.14 (INT8: per-tensor Dense weights, FULLY_CONNECTED v9 instead of "
        "v12); the conversion fails naming any op that still needs a newer release",
    )
    p.add_argument(
        "--calibration-size",
        type=int,
        default=None,
        help="INT8 calibration sequences (default 300)",
    )
    p.add_argument(
        "--heldout-size",
        type=int,
        default=None,
        help="held-out sequences for verification (default 200)",
    )
    p.add_argument("--calibration-split", default=None, help="default: train")
    p.add_argument("--heldout-split", default=None, help="default: dev, else test")
    p.add_argument(
        "--log-probs",
        action="store_true",
        default=None,
        help="output log_softmax instead of logits",
    )
    p.add_argument("--name", default=None, help="file stem of the model (default from kind)")
    p.set_defaults(run=run)


def options_from_args(args: argparse.Namespace) -> dict[str, object]:
    """Only the options the user gave (None = not given), so the target table judges them."""
    return {name: getattr(args, name) for name in _OPTION_FLAGS if getattr(args, name) is not None}


def run(args: argparse.Namespace) -> int:
    from edge_slr.converters import check_paths, check_request, convert, get_target
    from edge_slr.converters.describe import summary
    from edge_slr.converters.job import ConvertOptions

    options = options_from_args(args)
    # Reject a bad combination before loading anything heavy.
    check_request(get_target(args.target), ConvertOptions.from_kwargs(options), args.calibration)
    check_paths(args.out, args.calibration)
    result = convert(args.checkpoint, args.target, args.out, args.calibration, **options)
    print(f"{result.target}: {result.model_path} ({result.size_bytes / 1e6:.2f} MB)")
    print(json.dumps(summary(result.description), indent=1))
    print(f"sidecar: {result.sidecar_path}")
    return 0
