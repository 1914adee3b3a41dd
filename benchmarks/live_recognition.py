"""Live recognition on this machine: the webcam clip looped at its own frame rate, per engine.

Plays ``--video`` (default: the 30 fps webcam clip of ../shared/data/video) looped to at least
``--loop-seconds`` through the live mode (:mod:`edge_slr.recognition.live`: extraction and recognition on
two workers, frames dropped and counted when extraction falls behind) once per landmark
extraction engine, each in a fresh process, and records sustained fps, dropped frames, CPU use,
RSS over the run (peak, slope) and latency p50/p90 (capture to result, glass-to-gloss, sentence
end to final), plus whether the clip gives the offline ``recognize_video`` glosses live.
Run it on an idle machine; the numbers say nothing under load.

    python benchmarks/live_recognition.py --model runs/demo/models/KEY
    python benchmarks/live_recognition.py --model DIR --engines litert,litert:1 --loop-seconds 600
    python benchmarks/live_recognition.py --smoke   # untrained tiny student, a few seconds (CI)

Results: benchmarks/results/live_recognition.{json,md} (``--smoke``: live_recognition_smoke.*
in a temporary folder unless ``--results`` is given), with the machine header of
:mod:`edge_slr.benchmark.machine`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CLIP = "video/webcam_signer.mp4"
SMOKE_SECONDS = 3.0
# MediaPipe's graph and every edge-slr engine (openvino-int8 runs the INT8 models in the cache:
# build them first with edge-slr extract --engine openvino-int8 --calibration VIDEO, else its row
# says what is missing)
# ENGINE+lite: with the wheel's lite hand model
ENGINES = ("mediapipe", "litert", "openvino", "openvino-int8", "onnxruntime", "litert+lite",
           "openvino-int8+lite")  # fmt: skip


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=None, help="model directory (edge-slr convert)")
    p.add_argument("--video", type=Path, default=None, help=f"default: ../shared/data/{CLIP}")
    p.add_argument(
        "--engines",
        default=None,
        help="extraction engines, comma-separated; ENGINE:N runs an edge-slr engine with N part "
        f"workers (default: {','.join(ENGINES)}; --smoke: mediapipe)",
    )
    p.add_argument("--loop-seconds", type=float, default=60.0, help="video time to play (s)")
    p.add_argument("--runtime", default=None, help="recogniser engine (default: chosen)")
    p.add_argument("--threads", type=int, default=1, help="recogniser threads (default 1)")
    p.add_argument("--warmup-seconds", type=float, default=2.0, help="played, not counted (s)")
    p.add_argument("--drop-policy", default="skip-oldest", choices=("skip-oldest", "block"))
    p.add_argument("--no-offline-check", action="store_true", help="skip the glosses check")
    p.add_argument("--results", type=Path, default=None, help="output folder")
    p.add_argument("--name", default=None, help="output file stem (default live_recognition)")
    p.add_argument("--smoke", action="store_true", help="untrained tiny student, 3 s (CI)")
    return p.parse_args()


def default_video() -> Path | None:
    from edge_slr.paths import shared_data_dir

    shared = shared_data_dir()
    return shared / CLIP if shared is not None and (shared / CLIP).is_file() else None


def smoke_model(work: Path) -> Path:
    """An untrained tiny student converted to ONNX (seconds; its glosses mean nothing)."""
    sys.path.insert(0, str(ROOT))
    from edge_slr.converters import convert
    from edge_slr.decoding.vocab import Vocabulary
    from edge_slr.landmarks.presets import get_preset
    from edge_slr.training.checkpoint import save_checkpoint
    from edge_slr.training.config import StudentConfig
    from edge_slr.training.models import StudentDims, build_student
    from tests.conftest import make_tiny_dataset

    make_tiny_dataset(work / "data")
    vocab = Vocabulary.load(work / "data" / "vocabulary.json")
    dims = StudentDims(len(vocab), conv_channels=(32, 32, 64, 64), lstm_hidden=32)
    checkpoint = save_checkpoint(
        work / "untrained.pt", build_student(dims).eval(), vocabulary=vocab,
        preset=get_preset("kdmslrt92"), config=StudentConfig().to_dict(),
    )  # fmt: skip
    convert(checkpoint, "onnx", work / "model")
    return work / "model"


def synthetic_clip(path: Path, seconds: float = 2.0, fps: float = 30.0) -> Path:
    """A moving-gradient clip for smoke runs without the shared data (nobody in view)."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (320, 240))
    ramp = np.linspace(0, 255, 320, dtype=np.float32)
    for i in range(int(seconds * fps)):
        row = ((ramp + 8 * i) % 256).astype(np.uint8)
        writer.write(np.repeat(np.broadcast_to(row, (240, 320))[..., None], 3, axis=2))
    writer.release()
    return path


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from edge_slr.benchmark.live import benchmark_live

    with tempfile.TemporaryDirectory(prefix="live-recognition-") as temp:
        work = Path(temp)
        video = args.video or default_video()
        model, check = args.model, not args.no_offline_check
        name = args.name or ("live_recognition_smoke" if args.smoke else "live_recognition")
        results = args.results or (work / "results" if args.smoke else RESULTS)
        if args.smoke:
            model, check = smoke_model(work), False
            args.loop_seconds = min(args.loop_seconds, SMOKE_SECONDS)
            args.warmup_seconds = min(args.warmup_seconds, 1.0)
            video = video or synthetic_clip(work / "clip.mp4")
        if model is None or video is None:
            print("needs --model DIR and --video FILE (or ../shared/data)", file=sys.stderr)
            return 2
        engines = args.engines or ("mediapipe" if args.smoke else ",".join(ENGINES))
        report = benchmark_live(
            model, video, engines=[e for e in engines.split(",") if e],
            loop_seconds=args.loop_seconds, runtime=args.runtime, threads=args.threads,
            drop_policy=args.drop_policy, warmup_s=args.warmup_seconds, check_offline=check,
            progress=print,
        )  # fmt: skip
        results.mkdir(parents=True, exist_ok=True)
        report.to_json(results / f"{name}.json")
        markdown = report.to_markdown()
        (results / f"{name}.md").write_text(markdown, encoding="utf-8")
        print(markdown)
        print(f"written: {results / name}.{{json,md}}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
