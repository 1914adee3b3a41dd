"""The recorded `edge-slr benchmark` results: the trained student on every engine, one machine.

Converts a student checkpoint to every target (each conversion verified as usual; models already
converted and still matching their sidecars are reused), adds a corrector folder when given, and
runs :func:`edge_slr.benchmark.benchmark_models` on the model directory with the WER on a
landmark dataset split and, with ``--video``, the whole pipeline on a real video.

    python benchmarks/edge_benchmark.py --checkpoint runs/student-default/best.pt \\
        --data runs/signsynth-phoenix2014t --split test --models /tmp/edge-models \\
        --corrector runs/corrector-phoenix2014t --video ../shared/data/video/webcam_signer.mp4
    python benchmarks/edge_benchmark.py --smoke   # untrained tiny student, tiny data (CI)

Results: benchmarks/results/benchmark_<machine>.{json,md,png} (benchmark_smoke.* for --smoke),
where <machine> is a slug of the CPU model and the usable CPU count (or --name).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TARGETS = ("onnx", "onnx-int8", "openvino", "openvino-int8", "tflite", "tflite-int8")
SMOKE_TARGETS = ("onnx", "onnx-int8", "openvino")


def ensure_models(checkpoint: Path, data: Path, out: Path, targets: tuple[str, ...],
                  relaxed: bool) -> None:  # fmt: skip
    """Convert ``checkpoint`` to every target in ``out`` unless a verified model is there."""
    from edge_slr.converters import convert
    from edge_slr.runtimes import find_models
    from edge_slr.sidecar import file_sha256

    digest = file_sha256(checkpoint)
    found = find_models(out, "student") if out.is_dir() else []
    have = {e.description.target: e for e in found if e.description.source.get("sha256") == digest}
    for target in targets:
        if target in have:
            print(f"{target}: reusing {have[target].path.name}")
            continue
        options = {}
        if target.endswith("int8"):
            options = {"calibration": data}
            if relaxed:  # untrained smoke model: only speed matters
                options |= {"calibration_size": 32, "min_agreement": 0.0, "max_wer_drop": 100.0}
        started = time.perf_counter()
        result = convert(checkpoint, target, out, **options)
        print(f"{target}: {result.model_path.name} {result.size_bytes / 1e6:.2f} MB "
              f"({time.perf_counter() - started:.0f} s)")  # fmt: skip


def smoke_inputs(work: Path) -> tuple[Path, Path]:
    """An untrained tiny student and a tiny SignSynth dataset (seconds; WER meaningless)."""
    sys.path.insert(0, str(ROOT))
    from edge_slr.decoding.vocab import Vocabulary
    from edge_slr.landmarks.presets import get_preset
    from edge_slr.training.checkpoint import save_checkpoint
    from edge_slr.training.config import StudentConfig
    from edge_slr.training.models import StudentDims, build_student
    from tests.conftest import make_tiny_dataset

    data = work / "data"
    make_tiny_dataset(data)
    vocab = Vocabulary.load(data / "vocabulary.json")
    dims = StudentDims(len(vocab), conv_channels=(32, 32, 64, 64), lstm_hidden=32)
    checkpoint = save_checkpoint(
        work / "untrained.pt", build_student(dims).eval(), vocabulary=vocab,
        preset=get_preset("kdmslrt92"), config=StudentConfig().to_dict(),
    )  # fmt: skip
    return checkpoint, data


def machine_slug() -> str:
    from edge_slr.benchmark.machine import describe_machine
    from edge_slr.benchmark.report import short_cpu

    machine = describe_machine()
    name = re.sub(r"[^a-z0-9]+", "-", short_cpu(machine).lower()).strip("-")
    return f"{name}-{machine['usable_cpus']}cpu"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, default=ROOT / "runs/student-default/best.pt")
    p.add_argument("--data", type=Path, default=ROOT / "runs/signsynth-phoenix2014t")
    p.add_argument("--split", default="test")
    p.add_argument("--models", type=Path, default=None, help="model directory (kept)")
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--corrector", type=Path, default=None, help="corrector folder to add")
    p.add_argument("--video", type=Path, default=None, help="pipeline mode on this video")
    p.add_argument("--lengths", default="50,100,200")
    p.add_argument("--threads", type=int, default=1, help="engine threads (default 1)")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--max-sentences", type=int, default=None)
    p.add_argument("--name", default=None, help="results file suffix (default: machine slug)")
    p.add_argument("--smoke", action="store_true", help="untrained tiny student, tiny data (CI)")
    p.add_argument("--render", type=Path, default=None, metavar="JSON",
                   help="only rewrite the .md/.png (and derived JSON fields) of a saved result")  # fmt: skip
    return p.parse_args()


def write_results(report, stem: str) -> None:  # noqa: ANN001 - a BenchmarkReport
    RESULTS.mkdir(parents=True, exist_ok=True)
    report.to_json(RESULTS / f"{stem}.json")
    (RESULTS / f"{stem}.md").write_text(report.to_markdown(), encoding="utf-8")
    try:
        report.plot(RESULTS / f"{stem}.png")
    except ImportError as err:  # matplotlib missing: the table and JSON still count
        print(f"no plot: {err}")
    print(report.format_table())
    print(f"written: {RESULTS / stem}.{{json,md,png}}")


def main() -> int:
    args = parse_args()
    if args.render is not None:
        from edge_slr.benchmark import BenchmarkReport

        write_results(BenchmarkReport.load(args.render), args.render.stem)
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from edge_slr.benchmark import benchmark_models

    with tempfile.TemporaryDirectory(prefix="edge-benchmark-") as temp:
        work = Path(temp)
        models = args.models or work / "models"
        targets = tuple(t for t in args.targets.split(",") if t)
        checkpoint, data, split = args.checkpoint, args.data, args.split
        if args.smoke:
            checkpoint, data = smoke_inputs(work)
            targets, split, args.runs = SMOKE_TARGETS, "dev", 3
            args.lengths, args.max_sentences = "32,64", 4
        ensure_models(checkpoint, data, models, targets, relaxed=args.smoke)
        if args.corrector is not None and not (models / "corrector").exists():
            (models / "corrector").symlink_to(args.corrector.resolve())
        report = benchmark_models(
            [models], lengths=[int(n) for n in args.lengths.split(",")], data_dir=data,
            split=split, threads=args.threads, max_sentences=args.max_sentences,
            runs=args.runs, video=args.video, progress=print,
        )  # fmt: skip
    name = "smoke" if args.smoke else args.name or machine_slug()
    write_results(replace(report, label=name), f"benchmark_{name}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
