#!/usr/bin/env python
"""PHOENIX-2014 from videos to a benchmarked INT8 bundle: one resumable recipe.

    extract        corpus frame folders -> MediaPipe Holistic landmarks   WORK/landmarks/
    frames         frame folders -> ID.frames.npz beside the landmarks    (the teacher's input)
    teacher        the CorrNet-style video teacher                        WORK/teacher/
    teacher_cache  its outputs on the train split, for distillation       WORK/teacher-cache/
    student        the 1D-CNN + BiLSTM student, KD + augmentation         WORK/student/
    corrector      the gloss corrector on the train sentences             WORK/corrector/
    evaluate       the student's dev and test WER, official scorer        WORK/eval/
    convert        student + corrector to every --targets format          WORK/models/
    benchmark      edge-slr benchmark on the model folder                 WORK/benchmark.{json,md}

Every stage is an ``edge-slr`` command (printed before it runs) and is skipped when its output
exists; a stage that was interrupted continues (extraction skips finished videos, training
resumes from last.pt). Run it again after any failure. ``--nproc N`` launches the teacher,
its cache and the student under ``torchrun --nproc-per-node N`` (one process per GPU).

    python recipes/phoenix2014/run.py --corpus-root /data/phoenix2014-release --work runs/phoenix2014
    python recipes/phoenix2014/run.py ... --nproc 4 --device cuda --stages teacher,teacher_cache
    python recipes/phoenix2014/run.py --smoke --work /tmp/smoke      # every stage, tiny, on a CPU

``--smoke`` first writes a tiny SignSynth corpus laid out like the PHOENIX-2014 release (frame
folders and annotation files) and runs every stage on it with tiny models and one epoch each.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger("recipe")

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
STAGES = (
    "extract", "frames", "teacher", "teacher_cache", "student", "corrector", "evaluate",
    "convert", "benchmark",
)  # fmt: skip
TARGETS = ("openvino-int8", "onnx-int8", "tflite-int8")

# Smoke sizes: every stage runs, nothing learns much (seconds per stage on a CPU).
SMOKE_TEACHER = [
    "model.input_size=32", "model.width=0.25", "model.hidden=32", "model.lstm_layers=1",
    'model.backbone_weights=""', "train.epochs=1", "train.batch_size=2", "train.beam_width=0",
    "train.num_threads=1", 'train.amp="none"', "train.num_workers=0", "data.shift=2",
]  # fmt: skip
SMOKE_STUDENT = [
    "model.conv_channels=[16,16,32,32]", "model.lstm_hidden=16", "model.lstm_layers=1",
    "train.epochs=1", "train.batch_size=2", "train.beam_width=0", "train.num_threads=1",
    "distill.cache_batch_size=2",
]  # fmt: skip
SMOKE_CORRECTOR = [
    "model.d_model=32", "model.ff_dim=64", "model.encoder_layers=1", "model.n_heads=2",
    "train.max_steps=5", "train.warmup_steps=1", "train.eval_every=5", "train.log_every=5",
    "train.gate_copies=1", "train.stage2_pool_copies=1",
]  # fmt: skip


@dataclass(frozen=True)
class Recipe:
    corpus_root: Path
    work: Path
    device: str = "auto"
    nproc: int = 1
    workers: int = 1  # extraction processes
    targets: tuple[str, ...] = TARGETS
    smoke: bool = False
    python: str = sys.executable

    @property
    def landmarks(self) -> Path:
        return self.work / "landmarks"

    def edge_slr(self, *args: str, distributed: bool = False) -> list[str]:
        """An edge-slr command; under torchrun when ``distributed`` and ``nproc`` > 1."""
        if distributed and self.nproc > 1:
            launch = ["-m", "torch.distributed.run", "--standalone"]
            launch += ["--nproc-per-node", str(self.nproc)]
            return [self.python, *launch, "-m", "edge_slr", *args]
        return [self.python, "-m", "edge_slr", *args]


@dataclass(frozen=True)
class Stage:
    name: str
    output: Path  # the stage is done when this exists
    commands: list[list[str]] = field(default_factory=list)
    action: Callable[[], None] | None = None  # Python work instead of (after) the commands

    @property
    def done(self) -> bool:
        return self.output.exists()


def sets(values: Sequence[str]) -> list[str]:
    return [f"--set={value}" for value in values]


def _resume(out: Path) -> list[str]:
    """``--resume`` when an interrupted run left its last.pt."""
    return ["--resume"] if (out / "last.pt").is_file() else []


def plan(r: Recipe) -> list[Stage]:
    """The stages, in order, with their commands for recipe ``r``."""
    w, data = r.work, r.landmarks
    teacher_config = CONFIGS / "teacher-paper.toml"
    progress = ["--no-progress"] if r.smoke else []
    device = ["--device", r.device]
    extract = r.edge_slr(
        "extract", "--corpus", "phoenix2014", "--root", str(r.corpus_root), "--out", str(data),
        "--workers", str(r.workers), *(["--keep-no-person"] if r.smoke else []), *progress,
    )  # fmt: skip
    teacher = r.edge_slr(
        "train", "teacher", "--config", str(teacher_config), *device, *progress,
        *sets([f"data.root={json.dumps(str(data))}", f"train.out_dir={json.dumps(str(w / 'teacher'))}"]),
        *sets(SMOKE_TEACHER if r.smoke else []), *_resume(w / "teacher"),
        distributed=True,
    )  # fmt: skip
    cache = r.edge_slr(
        "train", "teacher", "--cache", str(w / "teacher-cache"), "--checkpoint",
        str(w / "teacher" / "best.pt"), "--data", str(data), *device, *progress,
        distributed=True,
    )  # fmt: skip
    student = r.edge_slr(
        "train", "recognizer", "--config", str(CONFIGS / "student-paper.toml"), *device,
        "--teacher", str(w / "teacher-cache"), *progress,
        *sets([f"data.root={json.dumps(str(data))}", f"train.out_dir={json.dumps(str(w / 'student'))}",
               'data.corpus="phoenix2014"']),
        *sets(SMOKE_STUDENT if r.smoke else []), *_resume(w / "student"),
        distributed=True,
    )  # fmt: skip
    corrector = r.edge_slr(
        "train", "corrector", "--config", str(CONFIGS / "corrector-paper.toml"), "--corpus",
        "phoenix2014", "--root", str(r.corpus_root), "--out", str(w / "corrector"), *device,
        *sets(SMOKE_CORRECTOR if r.smoke else []),
    )  # fmt: skip
    best = str(w / "student" / "best.pt")
    evaluate = [
        r.edge_slr("evaluate", "--checkpoint", best, "--data", str(data), "--split", split,
                   "-o", str(w / "eval"), *progress)
        for split in ("dev", "test")
    ]  # fmt: skip
    lenient = ["--max-wer-drop", "100", "--min-agreement", "0"] if r.smoke else []
    convert = [
        r.edge_slr("convert", best, "--target", target, "-o", str(w / "models"), "--calibration",
                   str(data), *lenient)
        for target in r.targets
    ]  # fmt: skip
    # The corrector beside the recogniser, FP32 (MODELS/corrector/: what Recognizer and
    # benchmark load); its INT8 targets need a calibration set of sentences of their own.
    fp32 = r.targets[0].removesuffix("-int8")
    convert.append(r.edge_slr("convert", str(w / "corrector"), "--target", fp32,
                              "-o", str(w / "models" / "corrector")))  # fmt: skip
    bench = r.edge_slr(
        "benchmark", str(w / "models"), "--data", str(data), "--split", "test",
        "--json", str(w / "benchmark.json"), "--markdown", str(w / "benchmark.md"),
        *(["--lengths", "50", "--runs", "3", "--warmup", "1"] if r.smoke else []),
    )  # fmt: skip
    return [
        Stage("extract", data / "test" / "index.tsv", [extract]),
        Stage("frames", w / "frames.done", action=lambda: write_frames(r, teacher_config)),
        Stage("teacher", w / "teacher" / "results.json", [teacher]),
        Stage("teacher_cache", w / "teacher-cache" / "cache.json", [cache]),
        Stage("student", w / "student" / "results.json", [student]),
        Stage("corrector", w / "corrector" / "corrector.pt", [corrector]),
        Stage("evaluate", w / "eval" / "test.wer.json", evaluate),
        Stage("convert", w / "convert.done", convert, action=lambda: _touch(w / "convert.done")),
        Stage("benchmark", w / "benchmark.json", [bench]),
    ]  # fmt: skip


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("done\n", encoding="utf-8")


def write_frames(r: Recipe, teacher_config: Path) -> None:
    """``ID.frames.npz`` (resized to the teacher's input size) for every extracted sample.

    Resumable: samples whose file exists are skipped; frames.done marks the whole stage.
    """
    import numpy as np

    from edge_slr._optional import require
    from edge_slr.data.corpora import load_corpus
    from edge_slr.data.dataset import FRAMES_SUFFIX, read_index
    from edge_slr.data.dataset import write_frames as save
    from edge_slr.errors import FormatError
    from edge_slr.training.teacher.config import load_teacher_config

    cv2 = require("cv2", "reading corpus frames")
    overrides = [s for s in SMOKE_TEACHER if s.startswith("model.input_size")] if r.smoke else []
    size = load_teacher_config(teacher_config, overrides).model.input_size
    for split in ("train", "dev", "test"):
        sources = {s.id: s.source for s in load_corpus("phoenix2014", r.corpus_root, split)}
        for entry in read_index(r.landmarks / split / "index.tsv"):
            out = r.landmarks / split / f"{entry.id}{FRAMES_SUFFIX}"
            if out.exists():
                continue
            images = sorted(Path(sources[entry.id]).glob("*.png"))
            if len(images) != entry.num_frames:
                raise FormatError(
                    out, f"{len(images)} frames on disk, {entry.num_frames} extracted"
                )
            frames = [
                cv2.resize(
                    cv2.imread(str(p))[:, :, ::-1], (size, size), interpolation=cv2.INTER_AREA
                )
                for p in images
            ]
            save(out, np.stack(frames).astype(np.uint8))
        logger.info("frames: %s done", split)
    _touch(r.work / "frames.done")


def run(recipe: Recipe, stages: Sequence[str] = STAGES, dry_run: bool = False) -> list[str]:
    """Run the chosen stages that are not done; what happened to each, one line per stage."""
    report = []
    for stage in plan(recipe):
        if stage.name not in stages:
            continue
        if stage.done:
            report.append(f"{stage.name}: done ({stage.output})")
            logger.info(report[-1])
            continue
        for command in stage.commands:
            logger.info("%s: %s", stage.name, shlex.join(command))
            if not dry_run:
                subprocess.run(command, check=True, cwd=REPO, env=_env())
        if stage.action is not None and not dry_run:
            stage.action()
        report.append(f"{stage.name}: {'would run' if dry_run else 'ran'}")
    return report


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def make_smoke_corpus(root: Path, python: str = sys.executable) -> Path:
    """A tiny SignSynth corpus in the PHOENIX-2014 release layout (skipped when it exists):
    ROOT/annotations/manual/SPLIT.corpus.csv (id|folder|signer|annotation) and
    ROOT/features/fullFrame-210x260px/SPLIT/ID/1/*.png."""
    if (root / "annotations" / "manual" / "test.corpus.csv").is_file():
        return root
    import numpy as np

    from edge_slr._optional import require
    from edge_slr.data.dataset import LandmarkDataset

    cv2 = require("cv2", "writing frame folders")
    synth = root.parent / (root.name + "-synth")
    command = [python, "-m", "edge_slr", "data", "synth", "--out", str(synth), "--frames",
               "--frame-size", "128", "--num-signers", "1", "--limit", "3", "--no-progress",
               "--seed", "3"]  # fmt: skip
    subprocess.run(command, check=True, cwd=REPO, env=_env())
    manual = root / "annotations" / "manual"
    manual.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev", "test"):
        data = LandmarkDataset(synth, split)
        rows = ["id|folder|signer|annotation"]
        for entry in data.samples:
            folder = root / "features" / "fullFrame-210x260px" / split / entry.id / "1"
            folder.mkdir(parents=True, exist_ok=True)
            frames = data.load_frames(entry.id)[::2]  # every other frame: a quicker smoke
            for t, frame in enumerate(frames):
                name = f"{entry.id}.avi_pid0_fn{t:06d}-0.png"
                cv2.imwrite(str(folder / name), np.ascontiguousarray(frame[:, :, ::-1]))
            rows.append(f"{entry.id}|{entry.id}/1/*.png|{entry.signer}|{' '.join(entry.glosses)}")
        (manual / f"{split}.corpus.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--corpus-root",
        type=Path,
        help="PHOENIX-2014 release folder (or its phoenix-2014-multisigner)",
    )
    p.add_argument("--work", type=Path, default=Path("runs/phoenix2014"), help="output folder")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma list of {','.join(STAGES)}")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (training)")
    p.add_argument("--nproc", type=int, default=1, help="processes (GPUs) per node for torchrun")
    p.add_argument("--workers", type=int, default=1, help="extraction processes")
    p.add_argument("--targets", default=",".join(TARGETS), help="convert targets, comma list")
    p.add_argument("--smoke", action="store_true", help="tiny SignSynth corpus, tiny models, CPU")
    p.add_argument("--dry-run", action="store_true", help="print what would run")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stages = [s for s in args.stages.split(",") if s]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown or args.nproc < 1:
        p.error(
            f"unknown stages {unknown} (known: {', '.join(STAGES)})"
            if unknown
            else "--nproc must be >= 1"
        )
    root = args.corpus_root
    if args.smoke:
        root = root or make_smoke_corpus(args.work / "corpus")
    elif root is None:
        p.error("--corpus-root is required (or --smoke)")
    targets = tuple(t for t in args.targets.split(",") if t)
    recipe = Recipe(root, args.work, args.device, args.nproc, args.workers, targets, args.smoke)
    for line in run(recipe, stages, dry_run=args.dry_run):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
