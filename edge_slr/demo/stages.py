"""The demo's cached stages: dataset, student, corrector, conversion.

Each stage writes into ``WORK/<stage>/<key>/`` where ``key`` hashes every option that changes
its output (and the keys of the stages it depends on). A stage is finished when its folder holds
a stamp (``stage.json``: key, options, summary, seconds) written last; a later run with the same
key skips it and reports the stamp's summary (numbers computed by the run that made it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_slr.demo.data import DataPlan, build_dataset, corrector_sentences
from edge_slr.demo.options import DemoOptions

logger = logging.getLogger(__name__)

STAMP = "stage.json"
STAGE_FOLDERS = ("data", "student", "corrector", "models")
DEMO_VERSION = 1  # bump when a stage's recipe changes (invalidates every cache)


def cache_key(spec: dict[str, Any]) -> str:
    """12 hex digits of the sha256 of ``spec`` (canonical JSON) and the demo's version."""
    text = json.dumps({"version": DEMO_VERSION, **spec}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Stage:
    """One cached stage: its folder, key and stamp."""

    name: str
    key: str
    folder: Path
    spec: dict[str, Any]

    @classmethod
    def make(cls, work_dir: Path, name: str, spec: dict[str, Any]) -> Stage:
        key = cache_key(spec)
        return cls(name, key, work_dir / name / key, spec)

    @property
    def stamp_path(self) -> Path:
        return self.folder / STAMP

    def stamp(self) -> dict[str, Any] | None:
        """The finished stage's stamp, or None when it has not finished with this key."""
        path = self.stamp_path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return data if data.get("key") == self.key else None

    def finish(self, summary: dict[str, Any], seconds: float) -> dict[str, Any]:
        data = {
            "stage": self.name,
            "key": self.key,
            "spec": self.spec,
            "summary": summary,
            "seconds": round(seconds, 1),
        }
        path = self.stamp_path
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return data


def run_stage(
    stage: Stage, work: Callable[[Path], dict[str, Any]], label: str
) -> tuple[dict[str, Any], bool]:
    """Run ``work(folder)`` unless the stage is finished; returns (stamp, reused)."""
    done = stage.stamp()
    if done is not None:
        logger.info("%s: cached (%s, made in %.0f s)", label, stage.folder, done["seconds"])
        return done, True
    if stage.folder.exists() and not isinstance(stage, TargetStage):
        logger.info("%s: resuming an unfinished run in %s", label, stage.folder)
    stage.folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    summary = work(stage.folder)
    stamp = stage.finish(summary, time.perf_counter() - started)
    logger.info("%s: done in %.1f s -> %s", label, stamp["seconds"], stage.folder)
    return stamp, False


def clear_work_dir(work_dir: Path) -> None:
    """``--fresh``: remove the demo's stage folders (nothing else in ``work_dir``)."""
    for name in (*STAGE_FOLDERS, "results"):
        folder = work_dir / name
        if folder.is_dir():
            shutil.rmtree(folder)
            logger.info("removed %s", folder)


# -- stage definitions --------------------------------------------------------------------------


def data_plan(options: DemoOptions) -> DataPlan:
    corpus, root, _ = options.sentence_source()
    return DataPlan(
        corpus=corpus,
        root=None if root is None else root.resolve(),
        glosses=options.glosses,
        train_sentences=options.train_sentences,
        eval_sentences=options.eval_sentences,
        signers=options.signers,
        difficulty=options.difficulty,
        seed=options.seed,
    )


def dataset_stage(options: DemoOptions, plan: DataPlan) -> Stage:
    from edge_slr.data.synth.generate import GENERATOR_VERSION

    spec = {**plan.describe(), "generator_version": GENERATOR_VERSION}
    return Stage.make(options.work_dir, "data", spec)


def make_dataset(plan: DataPlan, workers: int, progress: bool) -> Callable[[Path], dict[str, Any]]:
    return lambda folder: build_dataset(plan, folder, workers=workers, progress=progress)


def student_config(options: DemoOptions, data_dir: Path, out_dir: Path) -> Any:
    """The student's training config: configs/student-default.toml's model, a short schedule.

    A few epochs learn much faster without augmentation and with a higher learning rate and
    smaller batches (measured on the demo's PHOENIX-2014-T data, 600 clips, width 64: dev WER
    after 8 epochs 58% with lr 3e-3, batch 4, no augmentation; 86% with the default recipe,
    lr 1e-3, batch 8, the paper's augmentation). Augmentation pays off over long runs.
    """
    from edge_slr.training.config import StudentConfig

    w = options.width
    config = StudentConfig.from_dict(
        {
            "data": {"root": str(data_dir), "preset": "kdmslrt92"},
            "model": {"conv_channels": [w, w, 2 * w, 2 * w], "lstm_hidden": w},
            "augment": {"flip_p": 0.0, "rotation_p": 0.0, "fusion_p": 0.0},
            "train": {
                "out_dir": str(out_dir),
                "epochs": options.epochs,
                "batch_size": options.batch_size,
                "lr": 3e-3,
                "final_lr_fraction": 0.05,
                "seed": options.seed,
                "num_threads": options.threads,
                "beam_width": 0,  # greedy during training (cheap); beam when recognising
                "eval_every": max(1, options.epochs // 4),
                "progress": options.progress,
            },
        },
        where="demo student config",
    )
    return config.with_overrides(options.extra_student)


def student_stage(options: DemoOptions, data: Stage) -> Stage:
    config = student_config(options, Path("DATA"), Path("OUT")).to_dict()  # no paths in the key
    config["train"].pop("progress")  # progress bars do not change the model
    return Stage.make(options.work_dir, "student", {"data": data.key, "config": config})


def train_student(options: DemoOptions, data_dir: Path) -> Callable[[Path], dict[str, Any]]:
    def work(folder: Path) -> dict[str, Any]:
        from edge_slr.training.train import train

        config = student_config(options, data_dir, folder)
        resume = (folder / "last.pt").exists()
        result = train(config, resume=resume)
        results = result.results
        return {
            "checkpoint": str(result.best_checkpoint),
            "best_epoch": result.best_epoch,
            "parameters": results.get("parameters"),
            "train_seconds": results.get("train_seconds"),
            "train_sequences_per_s": results.get("train_sequences_per_s"),
            "dev_wer_greedy": (results.get("dev") or {}).get("wer_greedy"),
            "test_wer_greedy": (results.get("test") or {}).get("wer_greedy"),
        }

    return work


def corrector_config(options: DemoOptions, corpus: str | None) -> Any:
    """A small two-stage corrector (configs/corrector-phoenix2014t.toml's recipe, demo sizes)."""
    from edge_slr.training.corrector.config import CorrectorConfig

    d = options.corrector_width
    return CorrectorConfig.from_dict(
        {
            "model": {
                "d_model": d,
                "n_heads": 4,
                "encoder_layers": 2,
                "decoder_layers": 1,
                "ff_dim": 4 * d,
                "max_len": 64,
                "stages": 2,
            },
            "train": {
                # scoring rules of the gate tuning; the built-in grammar's English glosses
                # pass PHOENIX's rewrites unchanged
                "corpus": corpus if corpus in ("phoenix2014", "csl-daily") else "phoenix2014t",
                "seed": options.seed,
                "learning_rate": 1e-3,
                "warmup_steps": 50,
                "max_minutes": options.corrector_minutes,
                "eval_every": 100,
                "log_every": 50,
                "threads": 1,
            },
        }
    )


def corrector_stage(options: DemoOptions, data: Stage, plan: DataPlan) -> Stage:
    config = corrector_config(options, plan.corpus)
    return Stage.make(options.work_dir, "corrector", {"data": data.key, "config": config.to_dict()})


def train_corrector(options: DemoOptions, plan: DataPlan) -> Callable[[Path], dict[str, Any]]:
    def work(folder: Path) -> dict[str, Any]:
        from edge_slr.training.corrector.train import train_corrector as train

        sentences = corrector_sentences(plan)  # train split only, never dev/test
        _, report = train(corrector_config(options, plan.corpus), folder, sentences)
        levels = report["gate_tuning"][-1]["levels"]
        return {
            "sentences": report["fit_sentences"] + report["holdout_sentences"],
            "parameters_per_stage": report["parameters_per_stage"],
            "steps": [s["steps"] for s in report["stages"]],
            "held_out": {
                level: {"before": row["before"], "after": row["after"]}
                for level, row in levels.items()
            },
        }

    return work


def models_stage(options: DemoOptions, student: Stage, corrector: Stage) -> Stage:
    return Stage.make(
        options.work_dir, "models", {"student": student.key, "corrector": corrector.key}
    )


def target_stage(options: DemoOptions, models: Stage, target: str) -> TargetStage:
    spec = {
        "models": models.key,
        "target": target,
        "calibration_size": options.calibration_size,
        "max_wer_drop": options.max_wer_drop,
        "min_agreement": options.min_agreement,
    }
    return TargetStage(target, cache_key(spec), models.folder, spec)


def convert_target(
    options: DemoOptions, checkpoint: Path, data_dir: Path, target: str
) -> Callable[[Path], dict[str, Any]]:
    def work(folder: Path) -> dict[str, Any]:
        from edge_slr.converters import convert, get_target

        spec = get_target(target)
        kwargs: dict[str, Any] = {}
        if spec.int8:
            kwargs = {"calibration_size": options.calibration_size}
            if spec.accepts("max_wer_drop"):
                kwargs["max_wer_drop"] = options.max_wer_drop
                kwargs["min_agreement"] = options.min_agreement
        result = convert(checkpoint, target, folder, calibration=data_dir, **kwargs)
        report = result.verification
        return {
            "model": result.model_path.name,
            "engine": spec.engine,
            "precision": spec.precision,
            "size_bytes": result.size_bytes,
            "verification": report.mode,
            "wer_drop": report.wer_drop,
            "agreement": report.agreement,
            "max_abs_diff": report.max_abs_diff,
            "thresholds": report.thresholds,
            "seconds": round(result.seconds, 1),
        }

    return work


def target_stamp_name(target: str) -> str:
    return f"stage-{target}.json"


@dataclass(frozen=True)
class TargetStage(Stage):
    """A conversion target: its stamp lives beside the models (one folder, several targets)."""

    @property
    def stamp_path(self) -> Path:
        return self.folder / target_stamp_name(self.name)


def install_corrector(corrector_dir: Path, models_dir: Path) -> Path:
    """Copy the trained corrector into ``MODELS/corrector/`` where the Recognizer looks for it."""
    from edge_slr.runtimes.corrector import CORRECTOR_CHECKPOINT, CORRECTOR_FOLDER

    target = models_dir / CORRECTOR_FOLDER
    target.mkdir(parents=True, exist_ok=True)
    for path in corrector_dir.iterdir():
        if path.is_file() and path.name != STAMP:
            shutil.copy2(path, target / path.name)
    if not (target / CORRECTOR_CHECKPOINT).is_file():
        raise FileNotFoundError(f"no {CORRECTOR_CHECKPOINT} in {corrector_dir}")
    return target
