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

A trainer's entry calls :func:`run_training` with two functions: one builds its model and data,
the other gets a :class:`Session` (torch, the output folder, the hardware) and calls
:meth:`Session.fit`, which makes the :class:`Run` (resumed when asked) and fits it. An epoch is
:meth:`Run.train_epoch` with the model's forward pass and loss terms; what else differs between
the models (evaluation, checkpoint format, final evaluation) is plugged in through
:class:`Hooks`. The files a run writes besides checkpoints: edge_slr.training.run_log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from edge_slr._optional import require
from edge_slr.errors import InputError
from edge_slr.training.data import BucketBatchSampler, plan_steps
from edge_slr.training.hardware import Hardware, fp32_outputs, iterate_steps
from edge_slr.training.run_log import append_log, plot_curves

S = TypeVar("S")

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


@dataclass(frozen=True)
class Session:
    """What :func:`run_training` hands a trainer once torch and the hardware are set up."""

    torch: Any
    tc: Any  # TrainConfig
    out_dir: Path
    hw: Hardware
    resume: bool  # continue from OUT/last.pt
    stop_after: int | None  # end after this many epochs (no final evaluation)

    def fit(
        self, model: Any, lengths: Any, load: Callable[[Path], Any], hooks: Callable[[Run], Hooks]
    ) -> TrainResult:
        """Train ``model`` on sentences of ``lengths``: a :class:`Run`, resumed with ``load``
        (the model's checkpoint reader) when asked, fitted with ``hooks(run)``."""
        run = Run(self.torch, self.tc, self.out_dir, model, lengths, self.hw)
        state = run.begin(self.resume, load)
        return run.fit(hooks(run), state, self.stop_after)


def run_training(
    tc: Any,
    what: str,
    setup: Callable[[], S],
    fit: Callable[[S, Session], TrainResult],
    *,
    resume: bool = False,
    stop_after: int | None = None,
) -> TrainResult:
    """The entry of a trainer: :func:`prepare` for TrainConfig ``tc`` (``what`` names the
    training in a missing-torch message), ``setup()`` the model and data, then
    ``fit(setup, session)``; the hardware is released however it ends."""
    with created_folders_removed_on_error(tc.out_dir):  # a bad config leaves no empty runs/
        torch, out_dir, hw = prepare(tc, what)
        built = setup()
    try:
        return fit(built, Session(torch, tc, out_dir, hw, resume, stop_after))
    finally:
        hw.close()


@contextlib.contextmanager
def created_folders_removed_on_error(out_dir: str | Path) -> Iterator[None]:
    """Folders of ``out_dir`` created inside the block are removed again (when still empty) if
    it fails: training creates its output folder before it can check the data."""
    path = Path(out_dir)
    new = [folder for folder in (path, *path.parents) if not folder.exists()]  # deepest first
    try:
        yield
    except BaseException:
        for folder in new:
            with contextlib.suppress(OSError):  # not empty: something was written, keep it
                folder.rmdir()
        raise


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
    """One training run of ``model``: Adam (``tc.lr``, ``tc.weight_decay``) with linear decay,
    on length-bucketed batches of the training sentences (their ``lengths``)."""

    torch: Any
    tc: Any  # TrainConfig
    out_dir: Path
    model: Any  # the module itself, on hw.device (``trained`` is what the epoch calls)
    lengths: Any  # input length of every training sentence
    hw: Hardware
    sampler: BucketBatchSampler = field(init=False)
    trained: Any = field(init=False)  # the model, or its DDP wrapper under torchrun
    optimizer: Any = field(init=False)
    scheduler: Any = field(init=False)

    def __post_init__(self) -> None:
        tc, hw = self.tc, self.hw
        # One global batch per optimizer step: every process's micro-batches together.
        step_size = tc.batch_size * hw.ranks.world_size * tc.grad_accumulation
        self.sampler = BucketBatchSampler(
            self.lengths, step_size, bucket_width=tc.bucket_width, seed=tc.seed
        )
        self.trained = self.hw.wrap(self.model)  # moves the model before the optimizer sees it
        self.optimizer = self.torch.optim.Adam(
            self.model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay
        )
        self.scheduler = self.torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            linear_decay(tc.epochs * self.steps_per_epoch, tc.final_lr_fraction),
        )

    @property
    def steps_per_epoch(self) -> int:
        return len(self.sampler)

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

    def train_epoch(
        self,
        epoch: int,
        dataset: Any,
        collate: Callable[[list[Any]], Any],
        forward: Callable[[Any, Any], Any],
        losses: Callable[[Any, Any], dict[str, Any]],
        *,
        desc: str,
        frames_per_s: bool = False,
    ) -> dict[str, float]:
        """One pass over this rank's share of ``dataset``; the mean of every loss term (summed
        over all ranks) as ``train_<term>``, the epoch's seconds and throughput.

        ``forward(model, batch)`` runs under autocast; ``losses(outputs, batch)`` gets the
        outputs in fp32 (every loss in fp32) and returns the loss terms, the one optimised
        under ``"loss"``. ``frames_per_s`` adds the input frames per second.
        """
        tqdm = require("tqdm", "progress bars").tqdm
        tc, hw, model = self.tc, self.hw, self.trained
        dataset.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        batches = self.sampler.batches()
        steps = plan_steps(batches, hw.ranks.rank, hw.ranks.world_size, tc.grad_accumulation)
        model.train()
        totals: dict[str, float] = {}
        sequences, frames, started = 0, 0, time.perf_counter()
        bar = tqdm(
            iterate_steps(hw, dataset, steps, collate),
            total=len(steps),
            desc=desc,
            leave=False,
            disable=not tc.progress or not hw.ranks.is_main,
        )
        for micro_batches in bar:
            for k, (batch, weight) in enumerate(micro_batches):
                with hw.sync(model, last=k == len(micro_batches) - 1):
                    with hw.autocast():
                        out = forward(model, batch)
                    terms = losses(fp32_outputs(out), batch)
                    hw.backward(terms["loss"] * weight)  # weight: the micro-batch's share
                sequences += len(batch)
                frames += int(batch.lengths.sum())
                for name, value in terms.items():
                    totals[name] = totals.get(name, 0.0) + value.item() * len(batch)
            hw.step(self.optimizer, self.model.parameters(), tc.grad_clip)
            self.optimizer.zero_grad(set_to_none=True)
            self.scheduler.step()
            bar.set_postfix(loss=f"{terms['loss'].item():.3f}")
        seconds = time.perf_counter() - started
        summed = hw.sum({**totals, "sequences": float(sequences), "frames": float(frames)})
        sequences, frames = int(summed.pop("sequences")), int(summed.pop("frames"))
        row = {f"train_{k}": v / max(sequences, 1) for k, v in summed.items()}
        row |= {"epoch_seconds": seconds, "train_sequences_per_s": sequences / seconds}
        if frames_per_s:
            row["train_frames_per_s"] = frames / seconds
        return row

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


def reported(metrics: dict[str, Any]) -> float | None:
    """The WER a run reports: beam search when it ran, else greedy."""
    beam = metrics.get("dev_wer_beam")
    return beam if beam is not None else metrics.get("dev_wer_greedy")


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"
