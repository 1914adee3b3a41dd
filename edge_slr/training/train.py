"""Train the student with CTC: one readable loop.

    data    LandmarkDataset splits -> StudentDataset (augmented preset features, gloss ids)
    model   StudentDims from the config, the vocabulary and the preset
    loop    Adam, linear LR decay, CTC (blank 0, zero_infinity) on the BiLSTM head plus the
            auxiliary conv head (plus the switched-on KD terms of [distill], edge_slr.training.distill),
            gradient clipping; evaluation every ``eval_every`` epochs with
            greedy and beam decoding and the official scorer
    output  OUT/last.pt (resumable), OUT/best.pt (lowest dev WER), OUT/log.csv, OUT/history.json,
            OUT/curves.png, OUT/config.json, and at the end OUT/results.json with the best
            checkpoint's dev/test WER and OUT/eval/ (CTM, STM, WER reports)

Reproducible: the torch RNG is seeded (and saved for resume), and every shuffle and augmentation
draws from numpy generators keyed by (seed, epoch, index), so resuming gives the same run.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_slr._optional import require
from edge_slr.errors import InputError
from edge_slr.training.checkpoint import load_checkpoint, save_checkpoint
from edge_slr.training.config import StudentConfig
from edge_slr.training.data import BucketBatchSampler, StudentDataset, collate
from edge_slr.training.distill import Distiller, build_distiller
from edge_slr.training.evaluate import (
    EvalResult,
    evaluate_model,
    scoring_corpus,
)
from edge_slr.training.models import build_student

logger = logging.getLogger(__name__)

LOG_COLUMNS = (
    "epoch", "step", "lr", "train_loss", "train_ctc", "train_aux", "dev_loss", "dev_wer_greedy",
    "dev_wer_beam", "epoch_seconds", "train_sequences_per_s", "elapsed_seconds",
    "train_conv_kd", "train_lstm_kd", "train_self_kd",
)  # fmt: skip


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
class _Setup:
    vocab: Any
    preset: Any
    train_set: StudentDataset
    dev_set: StudentDataset
    corpus: str
    model: Any


def _setup(config: StudentConfig) -> _Setup:
    from edge_slr.data.dataset import LandmarkDataset
    from edge_slr.data.vocab import Vocabulary
    from edge_slr.landmarks.presets import resolve_preset

    data = config.data
    if not data.root:
        raise InputError("data.root is not set: give the landmark dataset folder in the config")
    root = Path(data.root)
    vocab = Vocabulary.load(root / "vocabulary.json")
    preset = resolve_preset(data.preset)
    dims = config.model.dims(num_classes=len(vocab), input_dim=preset.num_features)
    model = build_student(dims)
    augment = config.augment.with_min_frames(dims.min_input_length)
    train_set = StudentDataset(
        LandmarkDataset(root, data.train_split),
        vocab,
        preset,
        output_length=dims.output_length,
        augment_config=augment,
        seed=config.train.seed,
        max_samples=data.max_train_samples,
        cache_landmarks=data.cache_landmarks,
    )
    dev_set = StudentDataset(
        LandmarkDataset(root, data.dev_split),
        vocab.with_oov("drop"),
        preset,
        output_length=dims.output_length,
        oov="drop",
        max_samples=data.max_eval_samples,
        require_alignable=False,
    )
    corpus = scoring_corpus(root, data.corpus)
    return _Setup(vocab, preset, train_set, dev_set, corpus, model)


def _linear_decay(total_steps: int, final_fraction: float) -> Any:
    def factor(step: int) -> float:
        progress = min(step, total_steps) / max(total_steps, 1)
        return 1.0 - (1.0 - final_fraction) * progress

    return factor


def _ctc(torch: Any, logits: Any, lengths: Any, batch: Any) -> Any:
    log_probs = logits.log_softmax(-1).transpose(0, 1)  # (T', B, V) as ctc_loss wants
    return torch.nn.functional.ctc_loss(
        log_probs,
        batch.targets,
        lengths,
        batch.target_lengths,
        blank=0,
        reduction="mean",
        zero_infinity=True,
    )


def train_epoch(
    model: Any,
    dataset: StudentDataset,
    sampler: BucketBatchSampler,
    optimizer: Any,
    scheduler: Any,
    config: StudentConfig,
    epoch: int,
    distiller: Distiller | None = None,
) -> dict[str, float]:
    """One pass over the training data; returns mean losses (KD terms too) and throughput."""
    torch = require("torch", "training the student")
    tqdm = require("tqdm", "progress bars").tqdm
    train = config.train
    dataset.set_epoch(epoch)
    sampler.set_epoch(epoch)
    model.train()
    totals = {"loss": 0.0, "ctc": 0.0, "aux": 0.0}
    sequences, started = 0, time.perf_counter()
    bar = tqdm(sampler, desc=f"epoch {epoch}", leave=False, disable=not train.progress)
    for indices in bar:
        batch = collate([dataset[i] for i in indices])
        out = model(batch.features, batch.lengths)
        ctc = _ctc(torch, out.logits, out.lengths, batch)
        aux = (
            _ctc(torch, out.aux_logits, out.lengths, batch) if out.aux_logits is not None else None
        )
        loss = ctc if aux is None else ctc + train.aux_weight * aux
        kd = distiller.losses(out, batch.ids) if distiller is not None else {}
        if kd:
            loss = loss + distiller.weighted(kd)  # type: ignore[union-attr]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
        optimizer.step()
        scheduler.step()
        n = len(batch)
        sequences += n
        totals["loss"] += loss.item() * n
        totals["ctc"] += ctc.item() * n
        totals["aux"] += aux.item() * n if aux is not None else 0.0
        for name, value in kd.items():
            totals[name] = totals.get(name, 0.0) + value.item() * n
        bar.set_postfix(loss=f"{loss.item():.3f}")
    seconds = time.perf_counter() - started
    means = {f"train_{k}": v / max(sequences, 1) for k, v in totals.items()}
    return {**means, "epoch_seconds": seconds, "train_sequences_per_s": sequences / seconds}


def _append_log(out_dir: Path, row: dict[str, Any], history: list[dict[str, Any]]) -> None:
    log = out_dir / "log.csv"
    new = not log.exists()
    with log.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in LOG_COLUMNS})
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
        ax.legend()
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.9, wspace=0.25)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _evaluate(setup: _Setup, config: StudentConfig) -> EvalResult:
    return evaluate_model(
        setup.model,
        setup.dev_set,
        setup.dev_set.vocab,
        corpus=setup.corpus,
        beam_width=config.train.beam_width,
        batch_size=max(config.train.batch_size, 16),
        progress=config.train.progress,
    )


def prefer_passive_openmp() -> None:
    """Ask OpenMP to sleep, not spin, while its threads wait (unless the user chose otherwise).

    On a shared CPU, spinning OpenMP threads of several processes stall each other: a training
    step measured here took 0.9 sequences/s with the default policy and 40-120 with PASSIVE on a
    2-core machine under load. Only effective before torch is first imported.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def train(
    config: StudentConfig, *, resume: bool = False, stop_after: int | None = None
) -> TrainResult:
    """Train (or, with ``resume``, continue from OUT/last.pt) and return where everything is.

    ``stop_after`` ends this call after that many epochs (as an interruption would; the final
    evaluation is skipped), to split a long run into sessions: continue with ``resume=True``.
    """
    prefer_passive_openmp()
    torch = require("torch", "training the student")
    tc = config.train
    torch.set_num_threads(tc.num_threads)
    torch.manual_seed(tc.seed)
    out_dir = Path(tc.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    setup = _setup(config)
    model = setup.model
    distiller = build_distiller(
        config.distill,
        data_root=config.data.root,
        split=config.data.train_split,
        vocabulary=setup.vocab,
        student_dims=model.dims,
        cache_dir=out_dir / "teacher-cache",
        progress=tc.progress,
    )
    sampler = BucketBatchSampler(
        setup.train_set.lengths, tc.batch_size, bucket_width=tc.bucket_width, seed=tc.seed
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    total_steps = tc.epochs * len(sampler)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _linear_decay(total_steps, tc.final_lr_fraction)
    )
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    history: list[dict[str, Any]] = []
    start_epoch, step, elapsed = 1, 0, 0.0
    best = {"epoch": 0, "wer": math.inf}
    if resume:
        if not last_path.exists():
            raise InputError(f"cannot resume: {last_path} does not exist")
        state = _restore(torch, last_path, model, optimizer, scheduler)
        start_epoch, step, elapsed = state["epoch"] + 1, state["step"], state["elapsed"]
        history, best = state["history"], state["best"]
        logger.info("resuming after epoch %d (step %d)", start_epoch - 1, step)
    else:
        for stale in ("log.csv", "history.json"):
            (out_dir / stale).unlink(missing_ok=True)
    (out_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=1) + "\n", "utf-8")
    logger.info(
        "student: %d parameters, %d train / %d dev sentences, %d steps/epoch",
        model.num_parameters(),
        len(setup.train_set),
        len(setup.dev_set),
        len(sampler),
    )
    describe = dict(vocabulary=setup.vocab, preset=setup.preset, config=config.to_dict())
    last_epoch = tc.epochs if stop_after is None else min(tc.epochs, start_epoch - 1 + stop_after)
    for epoch in range(start_epoch, last_epoch + 1):
        started = time.perf_counter()
        row: dict[str, Any] = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"]}
        row |= train_epoch(
            model, setup.train_set, sampler, optimizer, scheduler, config, epoch, distiller
        )
        if distiller is not None:
            row["kd_length_mismatches"] = distiller.pop_stats()["mismatched"]
        step += len(sampler)
        metrics: dict[str, Any] = {}
        if epoch % tc.eval_every == 0 or epoch == tc.epochs:
            result = _evaluate(setup, config)
            metrics = {
                "dev_loss": result.loss,
                "dev_wer_greedy": result.greedy.wer,
                "dev_wer_beam": result.beam.wer if result.beam is not None else None,
            }
            if result.best.wer < best["wer"]:
                best = {"epoch": epoch, "wer": result.best.wer}
                save_checkpoint(
                    best_path, model, epoch=epoch, step=step, metrics=metrics, **describe
                )
        elapsed += time.perf_counter() - started
        row |= metrics | {"step": step, "elapsed_seconds": elapsed}
        history.append(row)
        training = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "history": history,
            "best": best,
            "elapsed": elapsed,
        }
        save_checkpoint(
            last_path, model, epoch=epoch, step=step, metrics=metrics, training=training, **describe
        )
        _append_log(out_dir, row, history)
        plot_curves(history, out_dir / "curves.png")
        logger.info(
            "epoch %d: loss %.3f, dev WER %s, %.1f seq/s",
            epoch,
            row["train_loss"],
            _percent(_reported(metrics)),
            row["train_sequences_per_s"],
        )
    finished = last_epoch == tc.epochs and best_path.exists()
    results = final_evaluation(config, best_path, out_dir, history) if finished else {}
    best_epoch, best_wer = int(best["epoch"]), float(best["wer"])
    return TrainResult(out_dir, best_path, last_path, best_epoch, best_wer, history, results)


def _restore(torch: Any, path: Path, model: Any, optimizer: Any, scheduler: Any) -> dict:
    checkpoint = load_checkpoint(path)
    if checkpoint.dims != model.dims:
        raise InputError(
            f"cannot resume from {path}: it holds a model with dims {checkpoint.dims.to_dict()}, "
            f"the config asks for {model.dims.to_dict()}"
        )
    if checkpoint.training is None:
        raise InputError(f"cannot resume from {path}: it has no optimizer state")
    model.load_state_dict(checkpoint.state_dict)
    optimizer.load_state_dict(checkpoint.training["optimizer"])
    scheduler.load_state_dict(checkpoint.training["scheduler"])
    torch.set_rng_state(checkpoint.training["torch_rng"])
    return {
        "epoch": checkpoint.epoch,
        "step": checkpoint.step,
        "elapsed": float(checkpoint.training["elapsed"]),
        "history": list(checkpoint.training["history"]),
        "best": dict(checkpoint.training["best"]),
    }


def final_evaluation(
    config: StudentConfig, best_path: Path, out_dir: Path, history: list[dict[str, Any]]
) -> dict[str, Any]:
    """Evaluate the best checkpoint on dev and test; write OUT/eval/ and OUT/results.json."""
    from edge_slr.training.evaluate import evaluate_checkpoint

    checkpoint = load_checkpoint(best_path)
    splits = [config.data.dev_split]
    if config.data.test_split and (Path(config.data.root) / config.data.test_split).is_dir():
        splits.append(config.data.test_split)
    results: dict[str, Any] = {
        "best_epoch": checkpoint.epoch,
        "parameters": sum(int(t.numel()) for t in checkpoint.state_dict.values()),
        "train_seconds": history[-1]["elapsed_seconds"] if history else None,
        "train_sequences_per_s": _mean([row["train_sequences_per_s"] for row in history]),
        "beam_width": config.train.beam_width,
    }
    for split in splits:
        result = evaluate_checkpoint(
            best_path,
            config.data.root,
            split,
            beam_width=config.train.beam_width,
            out_dir=out_dir / "eval",
            corpus=config.data.corpus,
            max_samples=config.data.max_eval_samples,
            progress=config.train.progress,
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


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _reported(metrics: dict[str, Any]) -> float | None:
    beam = metrics.get("dev_wer_beam")
    return beam if beam is not None else metrics.get("dev_wer_greedy")


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"
