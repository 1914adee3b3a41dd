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

The epoch loop, resume, logs and curves are shared with the teacher (edge_slr.training.loop).
Reproducible: the torch RNG is seeded (and saved for resume), and every shuffle and augmentation
draws from numpy generators keyed by (seed, epoch, index), so resuming gives the same run.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from edge_slr._optional import require
from edge_slr.errors import InputError
from edge_slr.training.checkpoint import load_checkpoint, save_checkpoint
from edge_slr.training.config import StudentConfig
from edge_slr.training.data import BucketBatchSampler, StudentDataset, collate, plan_steps
from edge_slr.training.distill import Distiller, build_distiller
from edge_slr.training.evaluate import EvalResult, evaluate_model, scoring_corpus
from edge_slr.training.hardware import Hardware, OnDevice, fp32_outputs, iterate_steps
from edge_slr.training.loop import (
    Hooks,
    Run,
    TrainResult,
    final_results,
    plot_curves,
    prefer_passive_openmp,
    prepare,
    results_header,
)
from edge_slr.training.models import build_student

__all__ = ["TrainResult", "final_evaluation", "plot_curves", "prefer_passive_openmp", "train"]

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
    run: Run,
    dataset: StudentDataset,
    sampler: BucketBatchSampler,
    config: StudentConfig,
    epoch: int,
    distiller: Distiller | None = None,
) -> dict[str, float]:
    """One pass over this rank's share of the training data; mean losses (KD terms too) and
    throughput, summed over all ranks."""
    torch = require("torch", "training the student")
    tqdm = require("tqdm", "progress bars").tqdm
    train, hw, model = config.train, run.hw, run.trained
    dataset.set_epoch(epoch)
    sampler.set_epoch(epoch)
    steps = plan_steps(
        sampler.batches(), hw.ranks.rank, hw.ranks.world_size, train.grad_accumulation
    )
    model.train()
    totals = {"loss": 0.0, "ctc": 0.0, "aux": 0.0}
    sequences, started = 0, time.perf_counter()
    bar = tqdm(
        iterate_steps(hw, dataset, steps, collate),
        total=len(steps),
        desc=f"epoch {epoch}",
        leave=False,
        disable=not train.progress or not hw.ranks.is_main,
    )
    for micro_batches in bar:
        for k, (batch, weight) in enumerate(micro_batches):
            with hw.sync(model, last=k == len(micro_batches) - 1):
                with hw.autocast():
                    out = model(batch.features, batch.lengths)
                out = fp32_outputs(out)  # every loss in fp32
                ctc = _ctc(torch, out.logits, out.lengths, batch)
                aux = (
                    None
                    if out.aux_logits is None
                    else _ctc(torch, out.aux_logits, out.lengths, batch)
                )
                loss = ctc if aux is None else ctc + train.aux_weight * aux
                kd = distiller.losses(out, batch.ids) if distiller is not None else {}
                if kd:
                    loss = loss + distiller.weighted(kd)  # type: ignore[union-attr]
                hw.backward(loss * weight)  # weight: this micro-batch's share of the step
            n = len(batch)
            sequences += n
            totals["loss"] += loss.item() * n
            totals["ctc"] += ctc.item() * n
            totals["aux"] += aux.item() * n if aux is not None else 0.0
            for name, value in kd.items():
                totals[name] = totals.get(name, 0.0) + value.item() * n
        hw.step(run.optimizer, run.model.parameters(), train.grad_clip)
        run.optimizer.zero_grad(set_to_none=True)
        run.scheduler.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    seconds = time.perf_counter() - started
    summed = hw.sum({**totals, "sequences": float(sequences)})  # over all ranks
    sequences = int(summed.pop("sequences"))
    means = {f"train_{k}": v / max(sequences, 1) for k, v in summed.items()}
    return {**means, "epoch_seconds": seconds, "train_sequences_per_s": sequences / seconds}


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
    tc = config.train
    with created_folders_removed_on_error(tc.out_dir):  # a bad config leaves no empty runs/
        torch, out_dir, hw = prepare(tc, "training the student")
        setup = _setup(config)
    try:
        return _train(config, setup, torch, out_dir, hw, resume, stop_after)
    finally:
        hw.close()


def _train(
    config: StudentConfig,
    setup: _Setup,
    torch: Any,
    out_dir: Path,
    hw: Hardware,
    resume: bool,
    stop_after: int | None,
) -> TrainResult:
    tc = config.train
    model = setup.model
    distiller = build_distiller(
        config.distill,
        data_root=config.data.root,
        split=config.data.train_split,
        vocabulary=setup.vocab,
        student_dims=model.dims,
        cache_dir=out_dir / "teacher-cache",
        progress=tc.progress,
        hardware=hw,
    )
    # One global batch per optimizer step: every process's micro-batches together.
    step_size = tc.batch_size * hw.ranks.world_size * tc.grad_accumulation
    sampler = BucketBatchSampler(
        setup.train_set.lengths, step_size, bucket_width=tc.bucket_width, seed=tc.seed
    )
    run = Run(torch, tc, out_dir, model, len(sampler), hw)
    state = run.begin(resume, load_checkpoint)

    def one_epoch(epoch: int) -> dict[str, Any]:
        row = train_epoch(run, setup.train_set, sampler, config, epoch, distiller)
        if distiller is not None:
            row["kd_length_mismatches"] = distiller.pop_stats()["mismatched"]
        return row

    describe = {"vocabulary": setup.vocab, "preset": setup.preset, "config": config.to_dict()}
    hooks = Hooks(
        name="student",
        config=config.to_dict(),
        sentences=(len(setup.train_set), len(setup.dev_set)),
        train_epoch=one_epoch,
        evaluate=partial(_evaluate, setup, config, hw.device),
        save=partial(save_checkpoint, model=model, **describe),
        finish=partial(final_evaluation, config),
        columns=LOG_COLUMNS,
    )
    return run.fit(hooks, state, stop_after)


def final_evaluation(
    config: StudentConfig, best_path: Path, out_dir: Path, history: list[dict[str, Any]]
) -> dict[str, Any]:
    """Evaluate the best checkpoint on dev and test; write OUT/eval/ and OUT/results.json."""
    from edge_slr.training.evaluate import evaluate_checkpoint

    checkpoint = load_checkpoint(best_path)
    beam_width = config.train.beam_width
    header = results_header(checkpoint, history, "train_sequences_per_s", beam_width)
    return final_results(
        config.data,
        out_dir,
        header,
        partial(
            evaluate_checkpoint,
            best_path,
            config.data.root,
            beam_width=beam_width,
            out_dir=out_dir / "eval",
            corpus=config.data.corpus,
            max_samples=config.data.max_eval_samples,
            progress=config.train.progress,
        ),
    )
