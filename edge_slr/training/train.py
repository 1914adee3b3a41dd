"""Train the student with CTC: one readable loop.

    data    LandmarkDataset splits -> StudentDataset (augmented preset features, gloss ids)
    model   StudentDims from the config, the vocabulary and the preset
    loop    Adam, linear LR decay, CTC (blank 0, zero_infinity) on the BiLSTM head plus the
            auxiliary conv head (plus the switched-on KD terms of [distill], edge_slr.training.distill),
            gradient clipping; evaluation every ``eval_every`` epochs with
            greedy and beam decoding and the official scorer
    devices train.device / train.amp / grad_accumulation / num_workers and torchrun DDP
            (edge_slr.training.hardware); the losses are always computed in fp32
    output  OUT/last.pt (resumable), OUT/best.pt (lowest dev WER), OUT/log.csv, OUT/history.json,
            OUT/curves.png, OUT/config.json, and at the end OUT/results.json with the best
            checkpoint's dev/test WER and OUT/eval/ (CTM, STM, WER reports)

The entry, the epoch loop, resume, logs and curves are shared with the teacher
(edge_slr.training.loop); only the student's data, losses and checkpoints are here.
Reproducible: the torch RNG is seeded (and saved for resume), and every shuffle and augmentation
draws from numpy generators keyed by (seed, epoch, index), so resuming gives the same run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from edge_slr.errors import InputError
from edge_slr.training.checkpoint import load_checkpoint, save_checkpoint
from edge_slr.training.config import StudentConfig
from edge_slr.training.data import StudentDataset, collate
from edge_slr.training.distill import Distiller, build_distiller
from edge_slr.training.evaluate import EvalResult, evaluate_model, scoring_corpus
from edge_slr.training.hardware import OnDevice
from edge_slr.training.loop import Hooks, Run, Session, TrainResult, run_training
from edge_slr.training.models import build_student
from edge_slr.training.run_log import final_results, results_header

__all__ = ["TrainResult", "final_evaluation", "train"]

logger = logging.getLogger(__name__)

LOG_COLUMNS = (
    "epoch", "step", "lr", "train_loss", "train_ctc", "train_aux", "dev_loss", "dev_wer_greedy",
    "dev_wer_beam", "epoch_seconds", "train_sequences_per_s", "elapsed_seconds",
    "train_conv_kd", "train_lstm_kd", "train_self_kd",
)  # fmt: skip


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
    from edge_slr.decoding.vocab import Vocabulary
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


def _forward(model: Any, batch: Any) -> Any:
    return model(batch.features, batch.lengths)


def _losses(
    torch: Any, config: StudentConfig, distiller: Distiller | None, out: Any, batch: Any
) -> dict[str, Any]:
    """CTC of the BiLSTM head, the auxiliary conv head's CTC and the switched-on KD terms."""
    ctc = _ctc(torch, out.logits, out.lengths, batch)
    aux = None if out.aux_logits is None else _ctc(torch, out.aux_logits, out.lengths, batch)
    loss = ctc if aux is None else ctc + config.train.aux_weight * aux
    kd = distiller.losses(out, batch.ids) if distiller is not None else {}
    if kd:
        loss = loss + distiller.weighted(kd)  # type: ignore[union-attr]
    return {"loss": loss, "ctc": ctc, "aux": ctc.new_zeros(()) if aux is None else aux, **kd}


def _evaluate(setup: _Setup, config: StudentConfig, device: Any) -> EvalResult:
    return evaluate_model(
        OnDevice(setup.model, device),  # in fp32, without DDP: rank 0 evaluates alone
        setup.dev_set,
        setup.dev_set.vocab,
        corpus=setup.corpus,
        beam_width=config.train.beam_width,
        batch_size=max(config.train.batch_size, 16),
        progress=config.train.progress,
    )


def train(
    config: StudentConfig, *, resume: bool = False, stop_after: int | None = None
) -> TrainResult:
    """Train (or, with ``resume``, continue from OUT/last.pt) and return where everything is.

    ``stop_after`` ends this call after that many epochs (as an interruption would; the final
    evaluation is skipped), to split a long run into sessions: continue with ``resume=True``.
    """
    setup = partial(_setup, config)
    fit = partial(_train, config)
    what = "training the student"
    return run_training(config.train, what, setup, fit, resume=resume, stop_after=stop_after)


def _train(config: StudentConfig, setup: _Setup, session: Session) -> TrainResult:
    tc = config.train
    model = setup.model
    distiller = build_distiller(
        config.distill,
        data_root=config.data.root,
        split=config.data.train_split,
        vocabulary=setup.vocab,
        student_dims=model.dims,
        cache_dir=session.out_dir / "teacher-cache",
        progress=tc.progress,
        hardware=session.hw,
    )
    losses = partial(_losses, session.torch, config, distiller)

    def hooks(run: Run) -> Hooks:
        def one_epoch(epoch: int) -> dict[str, Any]:
            desc = f"epoch {epoch}"
            row = run.train_epoch(epoch, setup.train_set, collate, _forward, losses, desc=desc)
            if distiller is not None:
                row["kd_length_mismatches"] = distiller.pop_stats()["mismatched"]
            return row

        describe = {"vocabulary": setup.vocab, "preset": setup.preset, "config": config.to_dict()}
        return Hooks(
            name="student",
            config=config.to_dict(),
            sentences=(len(setup.train_set), len(setup.dev_set)),
            train_epoch=one_epoch,
            evaluate=partial(_evaluate, setup, config, session.hw.device),
            save=partial(save_checkpoint, model=model, **describe),
            finish=partial(final_evaluation, config),
            columns=LOG_COLUMNS,
        )

    return session.fit(model, setup.train_set.lengths, load_checkpoint, hooks)


def final_evaluation(
    config: StudentConfig, best_path: Path, out_dir: Path, history: list[dict[str, Any]]
) -> dict[str, Any]:
    """Evaluate the best checkpoint on dev and test; write OUT/eval/ and OUT/results.json."""
    from edge_slr.training.evaluate import evaluate_checkpoint

    checkpoint = load_checkpoint(best_path)
    header = results_header(checkpoint, history, "train_sequences_per_s", config.train.beam_width)
    return final_results(config, best_path, out_dir, header, evaluate_checkpoint)
