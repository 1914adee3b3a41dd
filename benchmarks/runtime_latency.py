"""Latency of every runtime on a model directory, and of the Recognizer around it.

    python benchmarks/runtime_latency.py --model-dir models/ [--checkpoint student.pt]
    python benchmarks/runtime_latency.py --paper --calibration runs/signsynth-phoenix2014t \
        --out /tmp/paper-models        # convert a paper-size student to every target first
    python benchmarks/runtime_latency.py --smoke --results /tmp/out   # CI: tiny, FP32 only

For every model in the directory (and the torch checkpoint): batch 1, T = 100 and 200 frames,
1 and 2 threads, median and p90 of ``--runs`` calls after ``--warmup`` calls. Then the Recognizer
on the fastest FP32 and INT8 models: one 200-frame sequence end to end (features, model, CTC
decoding) and the streaming cost per frame. Writes benchmarks/results/runtime_latency.{json,md}
(runtime_latency_smoke.* for --smoke; --results chooses the folder).
``--paper`` builds an untrained paper-size student (5.7 M parameters) with the dataset's
vocabulary: latency does not depend on the weights, so INT8 verification is relaxed for it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = ("onnx", "onnx-int8", "openvino", "openvino-int8", "tflite", "tflite-int8")


def untrained_checkpoint(path: Path, vocab, dims) -> Path:
    from edge_slr.landmarks.presets import get_preset
    from edge_slr.training.checkpoint import save_checkpoint
    from edge_slr.training.config import StudentConfig
    from edge_slr.training.models import build_student

    model = build_student(dims).eval()
    return save_checkpoint(
        path, model, vocabulary=vocab, preset=get_preset("kdmslrt92"),
        config=StudentConfig().to_dict(),
    )  # fmt: skip


def paper_checkpoint(calibration: Path, out: Path) -> Path:
    from edge_slr.decoding.vocab import Vocabulary
    from edge_slr.training.models import StudentDims

    vocab = Vocabulary.load(calibration / "vocabulary.json")
    return untrained_checkpoint(out / "paper-untrained.pt", vocab, StudentDims.paper(len(vocab)))


def smoke_models(out: Path) -> Path:
    """An untrained tiny student and its ONNX and OpenVINO FP32 conversions (CI: plumbing)."""
    from edge_slr.converters import convert
    from edge_slr.decoding.vocab import Vocabulary
    from edge_slr.training.models import StudentDims

    vocab = Vocabulary.from_sentences([("RAIN", "SUN", "WIND")])
    dims = StudentDims(num_classes=len(vocab), conv_channels=(16, 16, 32, 32), lstm_hidden=16)
    checkpoint = untrained_checkpoint(out / "smoke-untrained.pt", vocab, dims)
    for target in ("onnx", "openvino"):
        convert(checkpoint, target, out)
    return checkpoint


def convert_all(checkpoint: Path, calibration: Path, out: Path, split: str) -> None:
    from edge_slr.converters import convert

    relaxed = dict(min_agreement=0.0, max_wer_drop=100.0)  # untrained weights: latency only
    for target in TARGETS:
        int8 = target.endswith("int8")
        kwargs = dict(calibration=calibration, calibration_split=split, calibration_size=64,
                      heldout_split="test", heldout_size=16, **relaxed) if int8 else {}  # fmt: skip
        started = time.perf_counter()
        result = convert(checkpoint, target, out, **kwargs)
        print(f"{target}: {result.model_path.name} {result.size_bytes / 1e6:.1f} MB "
              f"({time.perf_counter() - started:.0f} s)")  # fmt: skip


def timed(fn, warmup: int, runs: int) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    # On a shared machine the minimum is the least disturbed estimate; the median is typical.
    return {
        "min_ms": samples[0],
        "median_ms": statistics.median(samples),
        "p90_ms": samples[int(0.9 * len(samples))],
    }


def runtime_rows(models: list[Path], args: argparse.Namespace) -> list[dict]:
    from edge_slr.runtimes import load_runtime

    rows = []
    for path in models:
        for threads in (1, 2):
            with load_runtime(path, threads=threads) as rt:
                for frames in (100, 200):
                    x = np.random.default_rng(frames).standard_normal((1, frames, 276))
                    x = x.astype(np.float32)
                    stats = timed(lambda rt=rt, x=x: rt.run(x), args.warmup, args.runs)
                    row = {"model": path.name, "runtime": rt.name, "threads": threads,
                           "frames": frames, **stats}  # fmt: skip
                    rows.append(row)
                    print(json.dumps(row))
    return rows


def recognizer_rows(model_dir: Path, args: argparse.Namespace) -> list[dict]:
    from edge_slr.recognition.recognizer import Recognizer

    rng = np.random.default_rng(0)
    data = rng.uniform(0.2, 0.8, (200, 543, 4)).astype(np.float32)
    data[..., 3] = 1.0  # everyone present: the full feature path
    rows = []
    for precision in ("fp32", "int8"):
        try:
            rec = Recognizer.create_from_model_dir(model_dir, precision=precision, correct=False)
        except Exception as err:  # noqa: BLE001 - a missing variant is reported, not fatal
            print(f"recognizer {precision}: {err}")
            continue
        with rec:
            result = rec.recognize_landmarks(data)
            stats = timed(lambda rec=rec: rec.recognize_landmarks(data), args.warmup, args.runs)
            frames = np.concatenate([data] * 5)  # 1000 frames, 32-frame hop
            started = time.perf_counter()
            for i, frame in enumerate(frames):
                rec.process_landmarks(frame, i * 40)
            rec.finish()
            per_frame = (time.perf_counter() - started) * 1000 / len(frames)
            row = {"model": rec.description.graph.file.name, "runtime": rec.runtime.name,
                   "sequence_200_frames": stats, "stages_ms": result.timings.to_dict(),
                   "stream_ms_per_frame": per_frame}  # fmt: skip
            rows.append(row)
            print(json.dumps(row))
    return rows


def write(rows: list[dict], recognizer: list[dict], args: argparse.Namespace) -> None:
    args.results.mkdir(parents=True, exist_ok=True)
    stem = "runtime_latency_smoke" if args.smoke else "runtime_latency"
    meta = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load {' '.join(f'{v:.1f}' for v in os.getloadavg())}",
        "model_dir": str(args.model_dir),
        "runs": args.runs,
        "smoke": args.smoke,
    }
    (args.results / f"{stem}.json").write_text(
        json.dumps({**meta, "runtimes": rows, "recognizer": recognizer}, indent=1) + "\n"
    )
    lines = [f"# Runtime latency ({meta['machine']})", "",
             "| model | runtime | threads | T | min ms | median ms | p90 ms |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['model']} | {r['runtime']} | {r['threads']} | {r['frames']} | "
                     f"{r['min_ms']:.2f} | {r['median_ms']:.2f} | {r['p90_ms']:.2f} |")  # fmt: skip
    for r in recognizer:
        lines.append(f"\nRecognizer {r['model']} on {r['runtime']}: 200 frames "
                     f"{r['sequence_200_frames']['median_ms']:.2f} ms median; streaming "
                     f"{r['stream_ms_per_frame']:.3f} ms per frame")  # fmt: skip
    (args.results / f"{stem}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--checkpoint", type=Path, help="student .pt: the torch reference too")
    parser.add_argument("--paper", action="store_true", help="convert a paper-size student")
    parser.add_argument("--calibration", type=Path, help="landmark dataset (with --paper)")
    parser.add_argument("--calibration-split", default="dev")
    parser.add_argument("--out", type=Path, default=Path("/tmp/edge-slr-paper-models"))
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="results folder (default: benchmarks/results)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="untrained tiny student, FP32 only, 3 runs (CI)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.warmup = 3, 1
        args.model_dir = Path(tempfile.mkdtemp(prefix="runtime-latency-smoke-"))
        args.checkpoint = smoke_models(args.model_dir)
    elif args.paper:
        args.out.mkdir(parents=True, exist_ok=True)
        args.checkpoint = paper_checkpoint(args.calibration, args.out)
        convert_all(args.checkpoint, args.calibration, args.out, args.calibration_split)
        args.model_dir = args.out
    from edge_slr.runtimes import find_models

    models = [e.path for e in find_models(args.model_dir, "student")]
    if args.checkpoint is not None:
        models.append(args.checkpoint)
    rows = runtime_rows(models, args)
    write(rows, recognizer_rows(args.model_dir, args), args)


if __name__ == "__main__":
    main()
