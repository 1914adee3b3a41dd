"""Train the video teacher (CorrNet recipe) on a dataset with video frames.

The entry, the epoch loop, resume, logs and curves are the student's (edge_slr.training.loop), and so are
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

from edge_slr.errors import InputError
from edge_slr.training.evaluate import scoring_corpus
from edge_slr.training.hardware import Hardware, OnDevice
from edge_slr.training.loop import Hooks, Run, Session, TrainResult, run_training
from edge_slr.training.run_log import final_results, results_header
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
    from edge_slr.decoding.vocab import Vocabulary
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


# corrnet_loss's terms under the names of the student's log columns
_TERMS = {"total": "loss", "seq_ctc": "ctc", "conv_ctc": "aux", "self_kd": "self_kd"}


def _forward(model: Any, batch: Any) -> Any:
    return model(batch.frames, batch.lengths)


def _losses(config: TeacherConfig, out: Any, batch: Any) -> dict[str, Any]:
    """CorrNet's three terms: sequence CTC, conv CTC and self-distillation."""
    terms = corrnet_loss(
        out,
        batch.targets,
        batch.target_lengths,
        conv_weight=config.train.aux_weight,
        self_kd_weight=config.loss.self_kd_weight,
        temperature=config.loss.temperature,
        include_blank=config.loss.include_blank,
    )
    return {name: terms[term] for term, name in _TERMS.items()}


def train_teacher(
    config: TeacherConfig, *, resume: bool = False, stop_after: int | None = None
) -> TrainResult:
    """Train (``resume``: continue from OUT/last.pt); ``stop_after`` epochs ends this call early."""
    setup = partial(_setup, config)
    fit = partial(_train, config)
    what = "training the teacher"
    return run_training(config.train, what, setup, fit, resume=resume, stop_after=stop_after)


def _train(config: TeacherConfig, setup: _Setup, session: Session) -> TrainResult:
    tc, hw = config.train, session.hw
    if not session.resume and config.pretrain.epochs:
        # Every rank pretrains the same way; DDP then starts all ranks from rank 0's weights.
        _pretrain(config, setup, session.out_dir, hw)
    losses = partial(_losses, config)

    def hooks(run: Run) -> Hooks:
        def one_epoch(epoch: int) -> dict[str, Any]:
            return run.train_epoch(
                epoch, setup.train_set, collate_video, _forward, losses,
                desc=f"teacher epoch {epoch}", frames_per_s=True,
            )  # fmt: skip

        evaluate = partial(
            evaluate_teacher,
            OnDevice(setup.model, hw.device),  # fp32, without DDP: rank 0 evaluates alone
            setup.dev_set,
            setup.vocab,
            corpus=setup.corpus,
            beam_width=tc.beam_width,
            batch_size=tc.batch_size,
            progress=tc.progress,
        )
        save = partial(save_teacher, model=setup.model, vocabulary=setup.vocab)
        return Hooks(
            name="teacher",
            config=config.to_dict(),
            sentences=(len(setup.train_set), len(setup.dev_set)),
            train_epoch=one_epoch,
            evaluate=evaluate,
            save=partial(save, config=config.to_dict()),
            finish=partial(final_evaluation, config),
            columns=LOG_COLUMNS,
            speed=("train_frames_per_s", "frames/s"),
        )

    return session.fit(setup.model, setup.train_set.lengths, load_teacher_checkpoint, hooks)


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
    batch_size = config.train.batch_size
    evaluate = evaluate_teacher_checkpoint
    return final_results(config, best_path, out_dir, header, evaluate, batch_size=batch_size)
