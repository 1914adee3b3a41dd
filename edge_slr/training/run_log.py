"""What a training run writes besides its checkpoints: OUT/log.csv, OUT/history.json,
OUT/curves.png and, at the end, OUT/results.json (the best checkpoint on dev and test).

Shared by the student and the teacher through edge_slr.training.loop.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_slr._optional import require

logger = logging.getLogger(__name__)


def append_log(
    out_dir: Path, row: dict[str, Any], history: list[dict[str, Any]], columns: tuple[str, ...]
) -> None:
    log = out_dir / "log.csv"
    new = not log.exists()
    with log.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in columns})
    (out_dir / "history.json").write_text(json.dumps(history, indent=1) + "\n", encoding="utf-8")


def plot_curves(history: list[dict[str, Any]], path: Path) -> Path | None:
    """PNG of train/dev loss and dev WER per epoch (skipped without matplotlib)."""
    try:
        matplotlib = require("matplotlib", "training curves")
    except ImportError:
        logger.warning("matplotlib is not installed: no curves.png")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_wer) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [row["train_loss"] for row in history], label="train (ctc + aux)")
    ax_loss.plot(epochs, [row["train_ctc"] for row in history], label="train ctc")
    dev = [(row["epoch"], row["dev_loss"]) for row in history if _finite(row.get("dev_loss"))]
    if dev:
        ax_loss.plot(*zip(*dev, strict=True), label="dev ctc")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="CTC loss")
    for key, label in (("dev_wer_greedy", "dev greedy"), ("dev_wer_beam", "dev beam")):
        points = [(row["epoch"], 100 * row[key]) for row in history if _finite(row.get(key))]
        if points:
            ax_wer.plot(*zip(*points, strict=True), marker="o", label=label)
    ax_wer.set(xlabel="epoch", ylabel="WER %", title="dev WER")
    for ax in (ax_loss, ax_wer):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # no dev points yet: no empty legend
            ax.legend()
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.9, wspace=0.25)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def final_results(
    config: Any,
    best_path: Path,
    out_dir: Path,
    header: dict[str, Any],
    evaluate_checkpoint: Callable[..., Any],
    **options: Any,
) -> dict[str, Any]:
    """``header`` plus the scores of ``best_path`` on the dev (and, when present, test) split
    of ``config.data``; reports in OUT/eval/, everything in OUT/results.json.

    ``evaluate_checkpoint(best_path, root, split, ...)`` is the model's checkpoint evaluation
    (edge_slr.training.evaluate's or the teacher's), called with the config's decoding and
    sample settings and ``options``.
    """
    data, tc = config.data, config.train
    splits = [data.dev_split]
    if data.test_split and (Path(data.root) / data.test_split).is_dir():
        splits.append(data.test_split)
    results = dict(header)
    for split in splits:
        result = evaluate_checkpoint(
            best_path,
            data.root,
            split,
            beam_width=tc.beam_width,
            out_dir=out_dir / "eval",
            corpus=data.corpus,
            max_samples=data.max_eval_samples,
            progress=tc.progress,
            **options,
        )
        results[split] = {
            "wer_greedy": result.greedy.wer,
            "wer_beam": result.beam.wer if result.beam is not None else None,
            "substitutions": result.best.substitutions,
            "deletions": result.best.deletions,
            "insertions": result.best.insertions,
            "reference_glosses": result.best.reference_words,
            "sentences": len(result.best.sentences),
        }
    (out_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n", "utf-8")
    return results


def results_header(
    checkpoint: Any, history: list[dict[str, Any]], speed_key: str, beam_width: int
) -> dict[str, Any]:
    """The first entries of results.json: best epoch, size, training time and speed."""
    return {
        "best_epoch": checkpoint.epoch,
        "parameters": sum(int(t.numel()) for t in checkpoint.state_dict.values()),
        "train_seconds": history[-1]["elapsed_seconds"] if history else None,
        speed_key: mean([row[speed_key] for row in history]),
        "beam_width": beam_width,
    }


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
