"""Reuse of finished training runs by the benchmark drivers (kd_ablation, student_ablation,
table4): a variant whose run folder holds results.json from the same config is not retrained, so
a driver can be interrupted and restarted, and one run can serve several tables (the no-KD
student with the paper's augmentation is also the kernel-5 and the recipe row)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def comparable(config: dict) -> dict:
    """A run's config without what does not change the result (where it writes, progress bars,
    how the data folder is spelled, [distill] settings when no KD term is on); keys a saved
    config lacks get their defaults."""
    from edge_slr.training.config import StudentConfig
    from edge_slr.training.distill import TERMS

    out = StudentConfig.from_dict(config).to_dict()
    if not any(out["distill"].get(t) for t in TERMS):
        out["distill"] = {}
    out["train"].pop("out_dir", None)
    out["train"].pop("progress", None)
    out["data"]["root"] = str(Path(out["data"]["root"]).resolve())
    if out["distill"].get("teacher"):
        out["distill"]["teacher"] = str(Path(out["distill"]["teacher"]).resolve())
    return out


def finished_run(folder: Path, config: Any) -> dict | None:
    """results.json of a finished run in ``folder`` trained with ``config`` (else None)."""
    results, saved = folder / "results.json", folder / "config.json"
    if not (results.is_file() and saved.is_file()):
        return None
    if comparable(json.loads(saved.read_text())) != comparable(config.to_dict()):
        return None
    return json.loads(results.read_text())


def machine() -> str:
    name = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    one, five, fifteen = os.getloadavg()  # the CPU is shared: say how busy it was
    return f"{name}, {os.cpu_count()} cores, load {one:.1f}/{five:.1f}/{fifteen:.1f}"


def train_or_reuse(name: str, config: Any) -> dict:
    """Train one student variant (or reuse its finished run); its row: dev/test WER of the best
    dev checkpoint, epochs, best epoch, training and wall time, throughput, load at the end."""
    import time

    from edge_slr.training.train import train

    started = time.perf_counter()
    results = finished_run(Path(config.train.out_dir), config)
    reused = results is not None
    if results is None:
        result = train(config)
        results = {**result.results, "best_epoch": result.best_epoch}
    row = {
        "variant": name,
        "epochs": config.train.epochs,
        "best_epoch": results.get("best_epoch"),
        "parameters": results.get("parameters"),
        "train_s": results.get("train_seconds"),
        # wall = training + the final dev/test evaluation; a reused run only has its training time
        "wall_s": results.get("train_seconds") if reused else time.perf_counter() - started,
        "reused_run": reused,
        "train_sequences_per_s": results.get("train_sequences_per_s"),
        "run": str(config.train.out_dir),
        "augment": {k: v for k, v in config.augment.to_dict().items() if k.endswith("_p")},
        "finished_load": machine().rsplit("load ", 1)[-1],
    }
    for split, key in (("dev", config.data.dev_split), ("test", config.data.test_split)):
        if key in results:
            row[split] = results[key]
    return row
