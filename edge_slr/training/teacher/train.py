"""Train the video teacher (CorrNet recipe) on a dataset with video frames.

The epoch loop, resume, logs and curves are the student's (edge_slr.training.loop), and so are
the length bucketing sampler, greedy/beam decoding with the official scorer and the WER reports
(edge_slr.training.teacher.evaluate). Only what differs is here: video batches, CorrNet's
three-term loss (sequence CTC + conv CTC + self-distillation), backbone pretraining and the
teacher checkpoint format.

    OUT/last.pt (resumable), OUT/best.pt (lowest dev WER), OUT/log.csv, OUT/history.json,
    OUT/curves.png, OUT/config.json, OUT/results.json (best checkpoint's dev/test WER),
    OUT/eval/ (CTM, STM, WER reports)
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from edge_slr._optional import require
from edge_slr.errors import InputError
from edge_slr.training.data import BucketBatchSampler, plan_steps
from edge_slr.training.evaluate import scoring_corpus
from edge_slr.training.hardware import Hardware, OnDevice, fp32_outputs, iterate_steps
from edge_slr.training.loop import Hooks, Run, TrainResult, final_results, prepare, results_header
from edge_slr.training.teacher.checkpoint import load_teacher_checkpoint, save_teacher
from edge_slr.training.teacher.config import TeacherConfig
from edge_slr.training.teacher.corrnet import build_teacher, corrnet_loss
from edge_slr.training.teacher.data import VideoDataset, collate_video
from edge_slr.training.teacher.evaluate import evaluate_teacher, evaluate_teacher_checkpoint

__all__ = ["evaluate_teacher", "evaluate_teacher_checkpoint", "train_teacher", "video_dataset"]

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
    run: Run,
    dataset: VideoDataset,
    sampler: BucketBatchSampler,
    config: TeacherConfig,
    epoch: int,
) -> dict[str, float]:
    """One pass over this rank's share of the training videos; mean loss terms and throughput,
    summed over all ranks."""
    tqdm = require("tqdm", "progress bars").tqdm
    train, hw, model = config.train, run.hw, run.trained
    dataset.set_epoch(epoch)
    sampler.set_epoch(epoch)
    steps = plan_steps(
        sampler.batches(), hw.ranks.rank, hw.ranks.world_size, train.grad_accumulation
    )
    model.train()
    names = {"total": "loss", "seq_ctc": "ctc", "conv_ctc": "aux", "self_kd": "self_kd"}
    totals = dict.fromkeys(names.values(), 0.0)
    sequences, frames, started = 0, 0, time.perf_counter()
    bar = tqdm(
        iterate_steps(hw, dataset, steps, collate_video),
        total=len(steps),
        desc=f"teacher epoch {epoch}",
        leave=False,
        disable=not train.progress or not hw.ranks.is_main,
    )
    for micro_batches in bar:
        for k, (batch, weight) in enumerate(micro_batches):
            with hw.sync(model, last=k == len(micro_batches) - 1):
                with hw.autocast():
                    out = model(batch.frames, batch.lengths)
                terms = corrnet_loss(
                    fp32_outputs(out),  # CTC and self-distillation in fp32
                    batch.targets,
                    batch.target_lengths,
                    conv_weight=train.aux_weight,
                    self_kd_weight=config.loss.self_kd_weight,
                    temperature=config.loss.temperature,
                    include_blank=config.loss.include_blank,
                )
                hw.backward(terms["total"] * weight)
            sequences += len(batch)
            frames += int(batch.lengths.sum())
            for term, key in names.items():
                totals[key] += terms[term].item() * len(batch)
        hw.step(run.optimizer, run.model.parameters(), train.grad_clip)
        run.optimizer.zero_grad(set_to_none=True)
        run.scheduler.step()
        bar.set_postfix(loss=f"{terms['total'].item():.3f}")
    seconds = time.perf_counter() - started
    summed = hw.sum({**totals, "sequences": float(sequences), "frames": float(frames)})
    sequences, frames = int(summed.pop("sequences")), int(summed.pop("frames"))
    return {
        **{f"train_{k}": v / max(sequences, 1) for k, v in summed.items()},
        "epoch_seconds": seconds,
        "train_sequences_per_s": sequences / seconds,
        "train_frames_per_s": frames / seconds,
    }


def train_teacher(
    config: TeacherConfig, *, resume: bool = False, stop_after: int | None = None
) -> TrainResult:
    """Train (``resume``: continue from OUT/last.pt); ``stop_after`` epochs ends this call early."""
    from edge_slr.training.train import created_folders_removed_on_error

    tc = config.train
    with created_folders_removed_on_error(tc.out_dir):  # a bad config leaves no empty runs/
        torch, out_dir, hw = prepare(tc, "training the teacher")
        setup = _setup(config)
    try:
        return _train(config, setup, torch, out_dir, hw, resume, stop_after)
    finally:
        hw.close()


def _train(
    config: TeacherConfig,
    setup: _Setup,
    torch: Any,
    out_dir: Path,
    hw: Hardware,
    resume: bool,
    stop_after: int | None,
) -> TrainResult:
    tc = config.train
    model = setup.model
    if not resume and config.pretrain.epochs:
        # Every rank pretrains the same way; DDP then starts all ranks from rank 0's weights.
        _pretrain(config, setup, out_dir, hw)
    step_size = tc.batch_size * hw.ranks.world_size * tc.grad_accumulation
    sampler = BucketBatchSampler(
        setup.train_set.lengths, step_size, bucket_width=tc.bucket_width, seed=tc.seed
    )
    run = Run(torch, tc, out_dir, model, len(sampler), hw)
    state = run.begin(resume, load_teacher_checkpoint)
    hooks = Hooks(
        name="teacher",
        config=config.to_dict(),
        sentences=(len(setup.train_set), len(setup.dev_set)),
        train_epoch=partial(train_epoch, run, setup.train_set, sampler, config),
        evaluate=partial(
            evaluate_teacher,
            OnDevice(model, hw.device),  # fp32, without DDP: rank 0 evaluates alone
            setup.dev_set,
            setup.vocab,
            corpus=setup.corpus,
            beam_width=tc.beam_width,
            batch_size=tc.batch_size,
            progress=tc.progress,
        ),
        save=partial(save_teacher, model=model, vocabulary=setup.vocab, config=config.to_dict()),
        finish=partial(final_evaluation, config),
        columns=LOG_COLUMNS,
        speed=("train_frames_per_s", "frames/s"),
    )
    return run.fit(hooks, state, stop_after)


def _pretrain(config: TeacherConfig, setup: _Setup, out_dir: Path, hw: Hardware) -> None:
    """Frame-level gloss pretraining of the backbone (edge_slr.training.teacher.pretrain)."""
    from edge_slr.training.teacher.pretrain import pretrain_backbone, save_backbone

    started = time.perf_counter()
    history = pretrain_backbone(
        setup.train_set,
        setup.model.backbone,
        len(setup.vocab),
        config.pretrain,
        seed=config.train.seed,
        device=hw.device,
    )
    if not hw.ranks.is_main:
        return
    path = save_backbone(setup.model.backbone, out_dir / "backbone.pth")
    stats = {**history[-1], "epochs": history, "seconds": time.perf_counter() - started}
    stats["backbone"] = str(path)
    (out_dir / "pretrain.json").write_text(json.dumps(stats, indent=1) + "\n", "utf-8")


def final_evaluation(
    config: TeacherConfig, best_path: Path, out_dir: Path, history: list[dict[str, Any]]
) -> dict[str, Any]:
    """Evaluate the best teacher on dev and test; OUT/eval/ and OUT/results.json."""
    checkpoint = load_teacher_checkpoint(best_path)
    header = results_header(checkpoint, history, "train_frames_per_s", config.train.beam_width)
    header["dims"] = checkpoint.dims.to_dict()
    if (out_dir / "pretrain.json").is_file():
        header["pretrain"] = json.loads((out_dir / "pretrain.json").read_text("utf-8"))
    return final_results(
        config.data,
        out_dir,
        header,
        partial(
            evaluate_teacher_checkpoint,
            best_path,
            config.data.root,
            beam_width=config.train.beam_width,
            out_dir=out_dir / "eval",
            corpus=config.data.corpus,
            max_samples=config.data.max_eval_samples,
            batch_size=config.train.batch_size,
            progress=config.train.progress,
        ),
    )
