"""The epoch loop shared by the student (edge_slr.training.train) and the video teacher.

    optimiser   Adam with weight decay, linear LR decay over all steps
    resume      OUT/last.pt holds optimizer/scheduler/RNG state, history and the best so far
    epochs      train, evaluate every ``eval_every`` epochs (and at the last), keep OUT/best.pt
                (lowest dev WER), save OUT/last.pt, append OUT/log.csv and OUT/history.json,
                redraw OUT/curves.png
    the end     the best checkpoint on dev and test: OUT/results.json
    hardware    ``train.device`` (auto, cpu, cuda, cuda:N), ``train.amp`` (none, bf16, fp16),
                DataLoader workers; under ``torchrun`` one process per device with torch DDP
                (edge_slr.training.hardware): only rank 0 evaluates and writes

A trainer calls :func:`prepare`, builds its model and data, then ``Run(...).begin(...)`` and
``Run.fit(hooks, state)``; what differs between the models (their epoch, evaluation, checkpoint
format and final evaluation) is plugged in through :class:`Hooks`.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_slr._optional import require
from edge_slr.errors import InputError
from edge_slr.training.hardware import Hardware

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    out_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    best_epoch: int
    best_dev_wer: float
    history: list[dict[str, Any]]
    results: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunState:
    """Where a run is: the next epoch, steps and seconds so far, the history, the best epoch."""

    start_epoch: int = 1
    step: int = 0
    elapsed: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": 0, "wer": math.inf})


@dataclass(frozen=True)
class Hooks:
    """What one model plugs into :meth:`Run.fit`."""

    name: str  # "student", "teacher": log lines
    config: dict[str, Any]  # written to OUT/config.json
    sentences: tuple[int, int]  # train and dev sentences, for the log
    train_epoch: Callable[[int], dict[str, Any]]  # epoch -> mean losses and throughput
    evaluate: Callable[[], Any]  # -> EvalResult on the dev split
    save: Callable[..., Path]  # save(path, epoch=, step=, metrics=, training=)
    finish: Callable[[Path, Path, list[dict[str, Any]]], dict[str, Any]]  # (best, OUT, history)
    columns: tuple[str, ...]  # log.csv
    speed: tuple[str, str] = ("train_sequences_per_s", "seq/s")  # row key and unit for the log


def prepare(tc: Any, what: str) -> tuple[Any, Path, Hardware]:
    """torch (threads and seed set from TrainConfig ``tc``), the output folder (created by rank
    0 only) and the :class:`Hardware` to train on (``tc.device``, ``tc.amp``, torchrun)."""
    prefer_passive_openmp()
    torch = require("torch", what)
    torch.set_num_threads(tc.num_threads)
    torch.manual_seed(tc.seed)  # seeds every CUDA device too
    hw = Hardware.create(torch, tc.device, tc.amp, tc.num_workers)
    out_dir = Path(tc.out_dir)
    if hw.ranks.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    else:  # one log, from rank 0
        logging.getLogger("edge_slr").setLevel(logging.WARNING)
    return torch, out_dir, hw


def prefer_passive_openmp() -> None:
    """Ask OpenMP to sleep, not spin, while its threads wait (unless the user chose otherwise).

    On a shared CPU, spinning OpenMP threads of several processes stall each other: a training
    step measured here took 0.9 sequences/s with the default policy and 40-120 with PASSIVE on a
    2-core machine under load. Only effective before torch is first imported.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def linear_decay(total_steps: int, final_fraction: float) -> Callable[[int], float]:
    def factor(step: int) -> float:
        progress = min(step, total_steps) / max(total_steps, 1)
        return 1.0 - (1.0 - final_fraction) * progress

    return factor


@dataclass
class Run:
    """One training run of ``model``: Adam (``tc.lr``, ``tc.weight_decay``) with linear decay."""

    torch: Any
    tc: Any  # TrainConfig
    out_dir: Path
    model: Any  # the module itself, on hw.device (``trained`` is what the epoch calls)
    steps_per_epoch: int
    hw: Hardware
    trained: Any = field(init=False)  # the model, or its DDP wrapper under torchrun
    optimizer: Any = field(init=False)
    scheduler: Any = field(init=False)

    def __post_init__(self) -> None:
        tc = self.tc
        self.trained = self.hw.wrap(self.model)  # moves the model before the optimizer sees it
        self.optimizer = self.torch.optim.Adam(
            self.model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay
        )
        self.scheduler = self.torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            linear_decay(tc.epochs * self.steps_per_epoch, tc.final_lr_fraction),
        )

    def begin(self, resume: bool, load: Callable[[Path], Any]) -> RunState:
        """A fresh run (old logs removed) or, with ``resume``, the state saved in OUT/last.pt."""
        if not resume:
            if self.hw.ranks.is_main:
                for stale in ("log.csv", "history.json"):
                    (self.out_dir / stale).unlink(missing_ok=True)
            return RunState()
        path = self.out_dir / "last.pt"
        if not path.exists():
            raise InputError(f"cannot resume: {path} does not exist")
        checkpoint = load(path)
        if checkpoint.dims != self.model.dims:
            raise InputError(
                f"cannot resume from {path}: it holds a model with dims "
                f"{checkpoint.dims.to_dict()}, the config asks for {self.model.dims.to_dict()}"
            )
        if checkpoint.training is None:
            raise InputError(f"cannot resume from {path}: it has no optimizer state")
        self.model.load_state_dict(checkpoint.state_dict)  # read to the CPU, copied to the device
        self.optimizer.load_state_dict(checkpoint.training["optimizer"])  # moved to the params'
        self.scheduler.load_state_dict(checkpoint.training["scheduler"])
        self.hw.restore(checkpoint.training)
        logger.info("resuming after epoch %d (step %d)", checkpoint.epoch, checkpoint.step)
        return RunState(
            start_epoch=checkpoint.epoch + 1,
            step=checkpoint.step,
            elapsed=float(checkpoint.training["elapsed"]),
            history=list(checkpoint.training["history"]),
            best=dict(checkpoint.training["best"]),
        )

    def fit(self, hooks: Hooks, state: RunState, stop_after: int | None = None) -> TrainResult:
        """Train from ``state.start_epoch``; after the last epoch, ``hooks.finish`` on best.pt.

        ``stop_after`` ends this call after that many epochs (no final evaluation).
        """
        tc, out_dir, main = self.tc, self.out_dir, self.hw.ranks.is_main
        if main:
            (out_dir / "config.json").write_text(json.dumps(hooks.config, indent=1) + "\n", "utf-8")
        logger.info(
            "%s: %d parameters, %d train / %d dev sentences, %d steps/epoch",
            hooks.name,
            self.model.num_parameters(),
            *hooks.sentences,
            self.steps_per_epoch,
        )
        last = (
            tc.epochs if stop_after is None else min(tc.epochs, state.start_epoch - 1 + stop_after)
        )
        for epoch in range(state.start_epoch, last + 1):
            self._epoch(hooks, state, epoch)
        best_path = out_dir / "best.pt"
        results: dict[str, Any] = {}
        if main and last == tc.epochs and best_path.exists():
            results = hooks.finish(best_path, out_dir, state.history)
        self.hw.barrier()
        best_epoch, best_wer = int(state.best["epoch"]), float(state.best["wer"])
        return TrainResult(
            out_dir, best_path, out_dir / "last.pt", best_epoch, best_wer, state.history, results
        )

    def _epoch(self, hooks: Hooks, state: RunState, epoch: int) -> None:
        """Train one epoch (every rank); rank 0 then evaluates, saves and logs alone."""
        started = time.perf_counter()
        row: dict[str, Any] = {"epoch": epoch, "lr": self.optimizer.param_groups[0]["lr"]}
        row |= hooks.train_epoch(epoch)
        state.step += self.steps_per_epoch
        if self.hw.ranks.is_main:
            self._evaluate_and_save(hooks, state, epoch, row, started)
        self.hw.barrier()

    def _evaluate_and_save(
        self, hooks: Hooks, state: RunState, epoch: int, row: dict[str, Any], started: float
    ) -> None:
        metrics: dict[str, Any] = {}
        if epoch % self.tc.eval_every == 0 or epoch == self.tc.epochs:
            result = hooks.evaluate()
            metrics = eval_metrics(result)
            if result.best.wer < state.best["wer"]:
                state.best = {"epoch": epoch, "wer": result.best.wer}
                hooks.save(self.out_dir / "best.pt", epoch=epoch, step=state.step, metrics=metrics)
        state.elapsed += time.perf_counter() - started
        row |= metrics | {"step": state.step, "elapsed_seconds": state.elapsed}
        state.history.append(row)
        training = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            **self.hw.rng_state(),
            "history": state.history,
            "best": state.best,
            "elapsed": state.elapsed,
        }
        last = self.out_dir / "last.pt"
        hooks.save(last, epoch=epoch, step=state.step, metrics=metrics, training=training)
        append_log(self.out_dir, row, state.history, hooks.columns)
        plot_curves(state.history, self.out_dir / "curves.png")
        key, unit = hooks.speed
        logger.info(
            "%s epoch %d: loss %.3f, dev WER %s, %.1f %s",
            hooks.name,
            epoch,
            row["train_loss"],
            percent(reported(metrics)),
            row[key],
            unit,
        )


def eval_metrics(result: Any) -> dict[str, Any]:
    """What an evaluation adds to the epoch's row and its checkpoints."""
    return {
        "dev_loss": result.loss,
        "dev_wer_greedy": result.greedy.wer,
        "dev_wer_beam": result.beam.wer if result.beam is not None else None,
    }


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
    data: Any,
    out_dir: Path,
    header: dict[str, Any],
    evaluate_split: Callable[[str], Any],
) -> dict[str, Any]:
    """``header`` plus the scores of the dev (and, when present, test) split; OUT/results.json."""
    splits = [data.dev_split]
    if data.test_split and (Path(data.root) / data.test_split).is_dir():
        splits.append(data.test_split)
    results = dict(header)
    for split in splits:
        result = evaluate_split(split)
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


def reported(metrics: dict[str, Any]) -> float | None:
    """The WER a run reports: beam search when it ran, else greedy."""
    beam = metrics.get("dev_wer_beam")
    return beam if beam is not None else metrics.get("dev_wer_greedy")


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"
