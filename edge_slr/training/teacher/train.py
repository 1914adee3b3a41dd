"""Train the video teacher (CorrNet recipe) on a dataset with video frames.

The loop mirrors the student's (edge_slr.training.train) and reuses its pieces: the length
bucketing sampler, linear decay, greedy/beam decoding with the official scorer, the WER reports
and the curves. Only what differs is here: video batches, CorrNet's three-term loss
(sequence CTC + conv CTC + self-distillation) and the teacher checkpoint format.

    OUT/last.pt (resumable), OUT/best.pt (lowest dev WER), OUT/log.csv, OUT/history.json,
    OUT/curves.png, OUT/config.json, OUT/results.json (best checkpoint's dev/test WER),
    OUT/eval/ (CTM, STM, WER reports)
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr._optional import require
from edge_slr.errors import InputError
from edge_slr.training.data import BucketBatchSampler
from edge_slr.training.evaluate import (
    EvalResult,
    SplitPredictions,
    decode_predictions,
    scoring_corpus,
    write_reports,
)
from edge_slr.training.teacher.checkpoint import load_teacher, load_teacher_checkpoint, save_teacher
from edge_slr.training.teacher.config import TeacherConfig
from edge_slr.training.teacher.corrnet import build_teacher, corrnet_loss
from edge_slr.training.teacher.data import VideoDataset, collate_video
from edge_slr.training.train import TrainResult, _linear_decay, plot_curves, prefer_passive_openmp

logger = logging.getLogger(__name__)

LOG_COLUMNS = (
    "epoch", "step", "lr", "train_loss", "train_ctc", "train_aux", "train_self_kd", "dev_loss",
    "dev_wer_greedy", "dev_wer_beam", "epoch_seconds", "train_sequences_per_s",
    "train_frames_per_s", "elapsed_seconds",
)  # fmt: skip


@dataclass
class _Setup:
    vocab: Any
    model: Any
    train_set: VideoDataset
    dev_set: VideoDataset
    corpus: str


def video_dataset(
    root: str | Path, split: str, vocab: Any, dims: Any, *, train: bool, config: TeacherConfig
) -> VideoDataset:
    """A split as the teacher sees it (training: augmentation, unalignable sentences dropped)."""
    from edge_slr.data.dataset import LandmarkDataset

    data = config.data
    return VideoDataset(
        LandmarkDataset(root, split),
        vocab if train else vocab.with_oov("drop"),
        dims.input_size,
        output_length=dims.output_length,
        oov="error" if train else "drop",
        max_samples=data.max_train_samples if train else data.max_eval_samples,
        require_alignable=train,
        shift=data.shift if train else 0,
        jitter=data.jitter if train else 0.0,
        flip_p=data.flip_p if train else 0.0,
        seed=config.train.seed,
    )


def _setup(config: TeacherConfig) -> _Setup:
    from edge_slr.data.vocab import Vocabulary
    from edge_slr.training.teacher.resnet import load_backbone_weights

    if not config.data.root:
        raise InputError("data.root is not set: give the dataset folder (with video frames)")
    root = Path(config.data.root)
    vocab = Vocabulary.load(root / "vocabulary.json")
    dims = config.model.dims(len(vocab))
    model = build_teacher(dims)
    if config.model.backbone_weights:
        backbone: Any = model.backbone
        load_backbone_weights(backbone, config.model.backbone_weights)
    train_set = video_dataset(root, config.data.train_split, vocab, dims, train=True, config=config)
    dev_set = video_dataset(root, config.data.dev_split, vocab, dims, train=False, config=config)
    return _Setup(vocab, model, train_set, dev_set, scoring_corpus(root, config.data.corpus))


def train_epoch(
    model: Any,
    dataset: VideoDataset,
    sampler: BucketBatchSampler,
    optimizer: Any,
    scheduler: Any,
    config: TeacherConfig,
    epoch: int,
) -> dict[str, float]:
    """One pass over the training videos; mean loss terms and throughput."""
    torch = require("torch", "training the teacher")
    tqdm = require("tqdm", "progress bars").tqdm
    dataset.set_epoch(epoch)
    sampler.set_epoch(epoch)
    model.train()
    names = {"total": "loss", "seq_ctc": "ctc", "conv_ctc": "aux", "self_kd": "self_kd"}
    totals = dict.fromkeys(names.values(), 0.0)
    sequences, frames, started = 0, 0, time.perf_counter()
    bar = tqdm(
        sampler, desc=f"teacher epoch {epoch}", leave=False, disable=not config.train.progress
    )
    for indices in bar:
        batch = collate_video([dataset[i] for i in indices])
        out = model(batch.frames, batch.lengths)
        terms = corrnet_loss(
            out,
            batch.targets,
            batch.target_lengths,
            conv_weight=config.train.aux_weight,
            self_kd_weight=config.loss.self_kd_weight,
            temperature=config.loss.temperature,
            include_blank=config.loss.include_blank,
        )
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.grad_clip)
        optimizer.step()
        scheduler.step()
        sequences += len(batch)
        frames += int(batch.lengths.sum())
        for term, key in names.items():
            totals[key] += terms[term].item() * len(batch)
        bar.set_postfix(loss=f"{terms['total'].item():.3f}")
    seconds = time.perf_counter() - started
    return {
        **{f"train_{k}": v / max(sequences, 1) for k, v in totals.items()},
        "epoch_seconds": seconds,
        "train_sequences_per_s": sequences / seconds,
        "train_frames_per_s": frames / seconds,
    }


def predict(
    model: Any, dataset: VideoDataset, *, batch_size: int = 4, progress: bool = False
) -> SplitPredictions:
    """Per-sentence log-probs of the BiLSTM head (length-sorted batches), and the CTC loss."""
    torch = require("torch", "evaluating the teacher")
    tqdm = require("tqdm", "progress bars").tqdm
    out = SplitPredictions()
    total, count = 0.0, 0
    model.eval()
    sampler = BucketBatchSampler(dataset.lengths, batch_size, shuffle=False)
    with torch.no_grad():
        for indices in tqdm(sampler, desc="teacher eval", leave=False, disable=not progress):
            batch = collate_video([dataset[i] for i in indices])
            result = model(batch.frames, batch.lengths)
            log_probs = result.logits.log_softmax(-1)
            losses = torch.nn.functional.ctc_loss(
                log_probs.transpose(0, 1),
                batch.targets,
                result.lengths,
                batch.target_lengths,
                blank=0,
                reduction="none",
                zero_infinity=True,
            )
            total += float((losses / batch.target_lengths.clamp(min=1)).sum())
            count += len(batch)
            for row, name in enumerate(batch.ids):
                out.ids.append(name)
                out.log_probs.append(log_probs[row, : int(result.lengths[row])].numpy())
                out.references[name] = batch.glosses[row]
                out.fps[name] = batch.fps[row]
    for name, glosses in dataset.skipped:
        out.references[name] = glosses
    out.loss = total / count if count else float("nan")
    return out


def evaluate_teacher(
    model: Any,
    dataset: VideoDataset,
    vocab: Any,
    *,
    corpus: str,
    beam_width: int = 5,
    batch_size: int = 4,
    progress: bool = False,
) -> EvalResult:
    predictions = predict(model, dataset, batch_size=batch_size, progress=progress)
    return decode_predictions(predictions, vocab.with_oov("drop"), corpus, beam_width)


def train_teacher(
    config: TeacherConfig, *, resume: bool = False, stop_after: int | None = None
) -> TrainResult:
    """Train (``resume``: continue from OUT/last.pt); ``stop_after`` epochs ends this call early."""
    prefer_passive_openmp()
    torch = require("torch", "training the teacher")
    tc = config.train
    torch.set_num_threads(tc.num_threads)
    torch.manual_seed(tc.seed)
    out_dir = Path(tc.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    setup = _setup(config)
    model = setup.model
    sampler = BucketBatchSampler(
        setup.train_set.lengths, tc.batch_size, bucket_width=tc.bucket_width, seed=tc.seed
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _linear_decay(tc.epochs * len(sampler), tc.final_lr_fraction)
    )
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    history: list[dict[str, Any]] = []
    start_epoch, step, elapsed = 1, 0, 0.0
    best: dict[str, Any] = {"epoch": 0, "wer": math.inf}
    if resume:
        if not last_path.exists():
            raise InputError(f"cannot resume: {last_path} does not exist")
        state = _restore(torch, last_path, model, optimizer, scheduler)
        start_epoch, step, elapsed = state["epoch"] + 1, state["step"], state["elapsed"]
        history, best = state["history"], state["best"]
    else:
        (out_dir / "log.csv").unlink(missing_ok=True)
        if config.pretrain.epochs:
            _pretrain(config, setup, out_dir)
    (out_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=1) + "\n", "utf-8")
    logger.info(
        "teacher: %d parameters, %d train / %d dev sentences, %d steps/epoch",
        model.num_parameters(),
        len(setup.train_set),
        len(setup.dev_set),
        len(sampler),
    )
    describe = dict(vocabulary=setup.vocab, config=config.to_dict())
    last_epoch = tc.epochs if stop_after is None else min(tc.epochs, start_epoch - 1 + stop_after)
    for epoch in range(start_epoch, last_epoch + 1):
        started = time.perf_counter()
        row: dict[str, Any] = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"]}
        row |= train_epoch(model, setup.train_set, sampler, optimizer, scheduler, config, epoch)
        step += len(sampler)
        metrics: dict[str, Any] = {}
        if epoch % tc.eval_every == 0 or epoch == tc.epochs:
            result = evaluate_teacher(
                model,
                setup.dev_set,
                setup.vocab,
                corpus=setup.corpus,
                beam_width=tc.beam_width,
                batch_size=tc.batch_size,
                progress=tc.progress,
            )
            metrics = {
                "dev_loss": result.loss,
                "dev_wer_greedy": result.greedy.wer,
                "dev_wer_beam": result.beam.wer if result.beam is not None else None,
            }
            if result.best.wer < best["wer"]:
                best = {"epoch": epoch, "wer": result.best.wer}
                save_teacher(best_path, model, epoch=epoch, step=step, metrics=metrics, **describe)
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
        save_teacher(
            last_path, model, epoch=epoch, step=step, metrics=metrics, training=training, **describe
        )
        _append_log(out_dir, row, history)
        plot_curves(history, out_dir / "curves.png")
        wer = metrics.get("dev_wer_beam") or metrics.get("dev_wer_greedy")
        logger.info(
            "teacher epoch %d: loss %.3f, dev WER %s, %.1f frames/s",
            epoch,
            row["train_loss"],
            "n/a" if wer is None else f"{100 * wer:.2f}%",
            row["train_frames_per_s"],
        )
    finished = last_epoch == tc.epochs and best_path.exists()
    results = final_evaluation(config, best_path, out_dir, history) if finished else {}
    return TrainResult(out_dir, best_path, last_path, best["epoch"], best["wer"], history, results)


def _pretrain(config: TeacherConfig, setup: _Setup, out_dir: Path) -> None:
    """Frame-level gloss pretraining of the backbone (edge_slr.training.teacher.pretrain)."""
    from edge_slr.training.teacher.pretrain import pretrain_backbone, save_backbone

    started = time.perf_counter()
    history = pretrain_backbone(
        setup.train_set,
        setup.model.backbone,
        len(setup.vocab),
        config.pretrain,
        seed=config.train.seed,
    )
    path = save_backbone(setup.model.backbone, out_dir / "backbone.pth")
    stats = {**history[-1], "epochs": history, "seconds": time.perf_counter() - started}
    stats["backbone"] = str(path)
    (out_dir / "pretrain.json").write_text(json.dumps(stats, indent=1) + "\n", "utf-8")


def _restore(torch: Any, path: Path, model: Any, optimizer: Any, scheduler: Any) -> dict:
    checkpoint = load_teacher_checkpoint(path)
    if checkpoint.dims != model.dims:
        raise InputError(
            f"cannot resume from {path}: it holds dims {checkpoint.dims.to_dict()}, the config "
            f"asks for {model.dims.to_dict()}"
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


def _append_log(out_dir: Path, row: dict[str, Any], history: list[dict[str, Any]]) -> None:
    log = out_dir / "log.csv"
    new = not log.exists()
    with log.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in LOG_COLUMNS})
    (out_dir / "history.json").write_text(json.dumps(history, indent=1) + "\n", encoding="utf-8")


def evaluate_teacher_checkpoint(
    checkpoint_path: str | Path,
    data_root: str | Path,
    split: str = "dev",
    *,
    beam_width: int = 5,
    out_dir: str | Path | None = None,
    corpus: str = "",
    max_samples: int = 0,
    batch_size: int = 4,
    progress: bool = False,
) -> EvalResult:
    """WER of a saved teacher on a split; CTM/STM/JSON reports in ``out_dir`` when given."""
    from edge_slr.data.dataset import LandmarkDataset

    model, checkpoint = load_teacher(checkpoint_path)
    vocab = checkpoint.vocab().with_oov("drop")
    dataset = VideoDataset(
        LandmarkDataset(data_root, split),
        vocab,
        model.dims.input_size,
        output_length=model.dims.output_length,
        oov="drop",
        max_samples=max_samples,
        require_alignable=False,
    )
    corpus = scoring_corpus(data_root, corpus)
    result = evaluate_teacher(
        model,
        dataset,
        vocab,
        corpus=corpus,
        beam_width=beam_width,
        batch_size=batch_size,
        progress=progress,
    )
    if out_dir is not None:
        period = {k: model.dims.downsampling / v for k, v in result.fps.items()}
        extra = {"teacher": str(checkpoint_path), "data": str(data_root), "corpus": corpus}
        write_reports(result, out_dir, split, frame_period=period, extra=extra)
    return result


def final_evaluation(
    config: TeacherConfig, best_path: Path, out_dir: Path, history: list[dict[str, Any]]
) -> dict[str, Any]:
    """Evaluate the best teacher on dev and test; OUT/eval/ and OUT/results.json."""
    checkpoint = load_teacher_checkpoint(best_path)
    splits = [config.data.dev_split]
    if config.data.test_split and (Path(config.data.root) / config.data.test_split).is_dir():
        splits.append(config.data.test_split)
    results: dict[str, Any] = {
        "best_epoch": checkpoint.epoch,
        "parameters": int(sum(int(np.prod(t.shape)) for t in checkpoint.state_dict.values())),
        "train_seconds": history[-1]["elapsed_seconds"] if history else None,
        "train_frames_per_s": float(np.mean([r["train_frames_per_s"] for r in history]))
        if history
        else None,
        "beam_width": config.train.beam_width,
        "dims": checkpoint.dims.to_dict(),
    }
    if (out_dir / "pretrain.json").is_file():
        results["pretrain"] = json.loads((out_dir / "pretrain.json").read_text("utf-8"))
    for split in splits:
        result = evaluate_teacher_checkpoint(
            best_path,
            config.data.root,
            split,
            beam_width=config.train.beam_width,
            out_dir=out_dir / "eval",
            corpus=config.data.corpus,
            max_samples=config.data.max_eval_samples,
            batch_size=config.train.batch_size,
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
