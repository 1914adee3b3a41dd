"""Self-supervised training of the chained corrector on a corpus's train split.

The recipe, per corpus (one model per vocabulary):

1. Train sentences only (never dev/test); a seeded share is held out for validation and gates.
2. Stage 1 learns noisy -> clean with heavy noise (meaning restoration).
3. Its gate is tuned on held-out sentences corrupted at fixed WER levels.
4. Stage 2 learns (stage 1's gated output on noisy sentences, or lighter fresh noise) -> clean.
5. Its gate is tuned the same way on stage 1's held-out outputs; the model is saved.

The loop is deliberately plain (nanoGPT style): sample a batch, forward, loss, backward, clip,
step; a cosine learning-rate schedule driven by whichever budget (steps or minutes) runs out first.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_slr._optional import require
from edge_slr.decoding.vocab import CorrectorVocabulary
from edge_slr.errors import InputError
from edge_slr.recognition.correction_chain import GateConfig
from edge_slr.training.corrector.config import CorrectorConfig, TrainConfig
from edge_slr.training.corrector.decode import Corrector, pad_batch
from edge_slr.training.corrector.gate import GateTuning, run_gated, tune_gate, tuning_report
from edge_slr.training.corrector.model import build_model, count_parameters
from edge_slr.training.corrector.noise import GlossNoise, NoiseConfig, load_confusion_table

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

Pair = tuple[list[int], list[int]]  # (noisy input ids, clean target ids)


@dataclass
class StageLog:
    """What one stage's training did; goes into the checkpoint's metadata."""

    steps: int = 0
    seconds: float = 0.0
    train_loss: float = float("nan")
    val_loss: float = float("nan")
    history: list[dict[str, float]] = field(default_factory=list)


def load_train_sentences(cfg: TrainConfig) -> list[tuple[str, ...]]:
    """The non-empty gloss sentences of the corpus's *train* split (the only split used here)."""
    from edge_slr.data.corpora import corpus_spec, load_corpus
    from edge_slr.paths import shared_data_dir

    root = Path(cfg.root) if cfg.root else None
    if root is None:
        shared = shared_data_dir()
        if shared is None:
            raise InputError(
                f"no corpus folder given for {cfg.corpus!r} and ../shared/data is absent; "
                "pass --root DIR (train.root)"
            )
        root = shared / corpus_spec(cfg.corpus).shared_folder
    sentences = [s.glosses for s in load_corpus(cfg.corpus, root, "train") if s.glosses]
    return sentences[: cfg.limit_sentences] if cfg.limit_sentences else sentences


def split_holdout(
    sentences: Sequence[tuple[str, ...]], share: float, seed: int
) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """(fit, held out): a seeded random ``share`` of the sentences is held out (at least one)."""
    order = np.random.default_rng(seed).permutation(len(sentences))
    n_held = max(1, int(round(share * len(sentences))))
    if n_held >= len(sentences):
        raise InputError(f"need at least 2 train sentences to hold some out, got {len(sentences)}")
    held = sorted(order[:n_held].tolist())
    held_set = set(held)
    fit = [sentences[i] for i in range(len(sentences)) if i not in held_set]
    return fit, [sentences[i] for i in held]


def token_frequencies(sentences: Sequence[Sequence[int]], size: int) -> np.ndarray:
    counts = np.zeros(size, dtype=np.float64)
    for ids, n in Counter(t for s in sentences for t in s).items():
        counts[ids] = n
    return counts


def make_batch(pairs: Sequence[Pair], vocab: CorrectorVocabulary) -> dict[str, torch.Tensor]:
    """Tensors for teacher forcing: src = noisy + <eos>, tgt_in = <bos> + clean, tgt_out = clean + <eos>."""
    src, src_pad = pad_batch([x + [vocab.eos_id] for x, _ in pairs], vocab.pad_id)
    tgt_in, _ = pad_batch([[vocab.bos_id] + y for _, y in pairs], vocab.pad_id)
    tgt_out, _ = pad_batch([y + [vocab.eos_id] for _, y in pairs], vocab.pad_id)
    return {"src": src, "src_pad": src_pad, "tgt_in": tgt_in, "tgt_out": tgt_out}


class PairSampler:
    """Endless batches of (noisy, clean) pairs: fresh noise on train sentences, or pool entries.

    A batch holds sentences of similar length (a window of the length-sorted sentences around a
    random one), so little compute goes into padding: with lengths from 1 to 30 glosses, random
    batches would be about three times wider than their average sentence.
    """

    def __init__(
        self,
        clean: Sequence[list[int]],
        noise: GlossNoise,
        vocab: CorrectorVocabulary,
        rng: np.random.Generator,
        unk_rate: float,
        max_glosses: int,
        pool: Sequence[Pair] = (),
        pool_share: float = 0.0,
    ) -> None:
        self.clean, self.noise, self.vocab, self.rng = list(clean), noise, vocab, rng
        self.unk_rate, self.max_glosses = unk_rate, max_glosses
        self.pool, self.pool_share = list(pool), pool_share if pool else 0.0
        self.clean_order, self.clean_lengths = _length_order([len(y) for y in self.clean])
        self.pool_order, self.pool_lengths = _length_order([len(y) for _, y in self.pool])

    def fresh(self, index: int) -> Pair:
        target = list(self.clean[index])
        if self.unk_rate:
            # An unknown gloss on both sides teaches the model to carry <unk> through unchanged.
            hit = self.rng.random(len(target)) < self.unk_rate
            target = [self.vocab.unk_id if h else t for t, h in zip(target, hit, strict=True)]
        noisy = self.noise.corrupt(target, self.rng)
        return (noisy if len(noisy) <= self.max_glosses else target), target

    def batch(self, size: int) -> dict[str, torch.Tensor]:
        length = self.clean_lengths[self.rng.integers(len(self.clean_lengths))]
        n_pool = int(self.rng.binomial(size, self.pool_share)) if self.pool_share else 0
        pairs = [
            self.fresh(i)
            for i in self._near(self.clean_order, self.clean_lengths, length, size - n_pool)
        ]
        pairs += [
            self.pool[i] for i in self._near(self.pool_order, self.pool_lengths, length, n_pool)
        ]
        return make_batch(pairs, self.vocab)

    def _near(self, order: np.ndarray, lengths: np.ndarray, length: int, count: int) -> np.ndarray:
        """``count`` random indices among the ~4 * count sentences closest to ``length``."""
        if count == 0:
            return order[:0]
        window = min(len(order), 4 * count)
        centre = int(np.searchsorted(lengths, length))
        start = int(np.clip(centre - window // 2, 0, len(order) - window))
        return order[start + self.rng.integers(window, size=count)]


def _length_order(lengths: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Indices sorted by length (ties in random-free stable order) and the sorted lengths."""
    order = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")
    return order, np.asarray(lengths, dtype=np.int64)[order]


def learning_rate(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up over steps, then cosine decay to ``min_lr_ratio`` over ``progress`` in [0, 1]."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    floor = cfg.learning_rate * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.learning_rate - floor) * (1 + math.cos(math.pi * min(progress, 1.0)))


def sequence_loss(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], smoothing: float, pad_id: int
) -> torch.Tensor:
    """Token cross-entropy; the model returns log-probabilities, which cross_entropy's own
    log-softmax leaves unchanged (they already sum to one)."""
    torch = require("torch", "corrector training")
    logp = model(batch["src"], batch["tgt_in"], batch["src_pad"])
    return torch.nn.functional.cross_entropy(
        logp.flatten(0, 1),
        batch["tgt_out"].flatten(),
        ignore_index=pad_id,
        label_smoothing=smoothing,
    )


def train_stage(
    model: torch.nn.Module,
    sample: Callable[[int], dict[str, torch.Tensor]],
    val_batches: Sequence[dict[str, torch.Tensor]],
    cfg: TrainConfig,
    pad_id: int,
    name: str = "stage",
) -> StageLog:
    """Train ``model`` in place until ``cfg.max_steps`` or ``cfg.max_minutes`` runs out.

    It trains on ``cfg.device`` (with ``cfg.amp`` autocast) and is back on the CPU afterwards,
    where gate tuning, the stage pool and saving use it.
    """
    torch = require("torch", "corrector training")
    from edge_slr.training.hardware import Hardware

    hw = Hardware.create(torch, cfg.device, cfg.amp)
    model.to(hw.device)
    val_batches = [_to(batch, hw.device) for batch in val_batches]
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": rest, "weight_decay": 0.0},
        ],
        lr=cfg.learning_rate,
        betas=(0.9, 0.98),
    )
    log, budget, start = StageLog(), cfg.max_minutes * 60.0, time.perf_counter()
    running: list[float] = []
    log.history.append({"step": 0, "val_loss": validation_loss(model, val_batches, pad_id)})
    model.train()
    for step in range(cfg.max_steps):
        elapsed = time.perf_counter() - start
        if elapsed >= budget:
            break
        lr = learning_rate(cfg, step, max(step / cfg.max_steps, elapsed / budget))
        for group in optimizer.param_groups:
            group["lr"] = lr
        with hw.autocast():  # cross_entropy runs in fp32 under autocast
            batch = _to(sample(cfg.batch_size), hw.device)
            loss = sequence_loss(model, batch, cfg.label_smoothing, pad_id)
        optimizer.zero_grad(set_to_none=True)
        hw.backward(loss)
        hw.step(optimizer, model.parameters(), cfg.grad_clip)
        running.append(loss.item())
        log.steps = step + 1
        if log.steps % cfg.log_every == 0:
            log.train_loss = float(np.mean(running[-cfg.log_every :]))
            logger.info(
                "%s step %d loss %.4f lr %.2e (%.0f s)",
                name,
                log.steps,
                log.train_loss,
                lr,
                elapsed,
            )
        if log.steps % cfg.eval_every == 0:
            log.val_loss = validation_loss(model, val_batches, pad_id)
            log.history.append(
                {
                    "step": log.steps,
                    "train_loss": log.train_loss,
                    "val_loss": log.val_loss,
                    "seconds": round(elapsed, 1),
                }
            )
            logger.info("%s step %d val loss %.4f", name, log.steps, log.val_loss)
    log.seconds = time.perf_counter() - start
    log.train_loss = float(np.mean(running[-cfg.log_every :])) if running else float("nan")
    log.val_loss = validation_loss(model, val_batches, pad_id)
    log.history.append(
        {
            "step": log.steps,
            "train_loss": log.train_loss,
            "val_loss": log.val_loss,
            "seconds": round(log.seconds, 1),
        }
    )
    model.to("cpu").eval()
    return log


def _to(batch: dict[str, torch.Tensor], device: Any) -> dict[str, torch.Tensor]:
    return {name: tensor.to(device) for name, tensor in batch.items()}


def validation_loss(
    model: torch.nn.Module, batches: Sequence[dict[str, torch.Tensor]], pad_id: int
) -> float:
    """Mean token cross-entropy (no smoothing) on fixed held-out batches."""
    torch = require("torch", "corrector training")
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            n = int((batch["tgt_out"] != pad_id).sum())
            total += float(sequence_loss(model, batch, 0.0, pad_id)) * n
            tokens += n
    model.train(was_training)
    return total / max(tokens, 1)


def fixed_pairs(
    clean: Sequence[list[int]], noise: GlossNoise, seed: int, wer: float | None = None
) -> list[Pair]:
    rng = np.random.default_rng(seed)
    return [(noise.corrupt(y, rng, wer), list(y)) for y in clean]


@dataclass(frozen=True)
class TrainData:
    """The train split as the stages see it: vocabulary, fit/held-out ids, gloss frequencies."""

    vocab: CorrectorVocabulary
    held: list[tuple[str, ...]]
    fit_ids: list[list[int]]
    held_ids: list[list[int]]
    frequencies: np.ndarray
    confusion: dict[int, tuple[np.ndarray, np.ndarray]]

    def noise(self, config: NoiseConfig) -> GlossNoise:
        return GlossNoise(config, self.frequencies, self.confusion)

    @classmethod
    def build(cls, sentences: Sequence[Sequence[str]], cfg: TrainConfig) -> TrainData:
        sentences = [tuple(s) for s in sentences if len(s)]
        if len(sentences) < 2:
            raise InputError(
                f"corrector training needs at least 2 non-empty sentences, got {len(sentences)}"
            )
        # The vocabulary covers the whole train split, as the recogniser's does.
        vocab = CorrectorVocabulary.from_sentences(sentences)
        fit, held = split_holdout(sentences, cfg.holdout, cfg.seed)
        fit_ids = [vocab.encode(s)[0] for s in fit]
        freq = token_frequencies(fit_ids, len(vocab))
        confusion = {}
        if cfg.confusion_table:
            ids = {g: i for i, g in enumerate(vocab.base.glosses) if i in vocab.gloss_ids}
            confusion = load_confusion_table(cfg.confusion_table, ids)
        return cls(vocab, held, fit_ids, [vocab.encode(s)[0] for s in held], freq, confusion)


def train_corrector(
    config: CorrectorConfig,
    out_dir: str | Path | None = None,
    sentences: Sequence[Sequence[str]] | None = None,
) -> tuple[Corrector, dict[str, Any]]:
    """Train all stages and tune their gates; save to ``out_dir`` when given.

    ``sentences`` replaces the corpus's train split (tests use a small subset); otherwise the
    train split of ``config.train.corpus`` is read. Returns the corrector and a training report.
    """
    torch = require("torch", "corrector training")
    cfg = config.train
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise InputError(
            "the corrector trains in one process (minutes on one device): run "
            "`edge-slr train corrector` without torchrun"
        )
    torch.set_num_threads(cfg.threads)
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    data = TrainData.build(load_train_sentences(cfg) if sentences is None else sentences, cfg)
    dims = config.dims(len(data.vocab))
    logger.info(
        "corrector: %d fit / %d held-out sentences, %d tokens",
        len(data.fit_ids),
        len(data.held),
        len(data.vocab),
    )
    heavy = data.noise(config.noise)
    current = gate_inputs(data, heavy, cfg)
    stages: list[torch.nn.Module] = []
    logs: list[StageLog] = []
    tunings: list[GateTuning] = []
    pool: list[Pair] = []
    for index in range(dims.stages):
        model, log = _train_one_stage(config, data, index, stages[-1] if stages else None, pool)
        tuning = _tune_stage_gate(model, data, current, cfg)
        logger.info("stage %d gate %s", index + 1, tuning.gate)
        stages.append(model)
        logs.append(log)
        tunings.append(tuning)
        current = dict(zip(sorted(current), tuning.outputs, strict=True))
        if index + 1 < dims.stages and cfg.stage2_model_share > 0:
            pool = stage_pool(model, tuning.gate, data.fit_ids, heavy, data.vocab, cfg)

    report = _report(cfg, data, stages, logs, tunings)
    report["wall_seconds"] = round(time.perf_counter() - wall_start, 1)
    report["cpu_seconds"] = round(time.process_time() - cpu_start, 1)
    corrector = Corrector(
        stages, data.vocab, [t.gate for t in tunings], metadata={"training": report}
    )
    if out_dir is not None:
        from edge_slr.training.corrector.checkpoint import save_corrector

        save_corrector(out_dir, corrector, config.to_dict())
    return corrector, report


def gate_inputs(
    data: TrainData, noise: GlossNoise, cfg: TrainConfig
) -> dict[float, list[list[int]]]:
    """Held-out sentences at each gate level, ``gate_copies`` seeded noisy copies of each.

    The first stage's gate is tuned on these; each later stage gets the previous stage's gated
    outputs for them, exactly as it will at inference.
    """
    return {
        level: [
            x
            for copy in range(cfg.gate_copies)
            for x, _ in fixed_pairs(data.held_ids, noise, cfg.seed + 7 + 1000 * copy, level)
        ]
        for level in cfg.gate_levels
    }


def _tune_stage_gate(
    model: torch.nn.Module, data: TrainData, current: dict[float, list[list[int]]], cfg: TrainConfig
) -> GateTuning:
    """Tune one stage's gate on the held-out sentences (``gate_copies`` noisy copies of each)."""
    held_refs = data.held * cfg.gate_copies
    return tune_gate(
        model,
        data.vocab,
        held_refs,
        current,
        cfg.corpus,
        cfg.gate_max_harm,
        cfg.gate_min_gain,
    )


def retune_gates(
    corrector: Corrector,
    config: CorrectorConfig,
    sentences: Sequence[Sequence[str]] | None = None,
) -> list[GateTuning]:
    """Tune the gates of a trained corrector again (same held-out split), without training.

    For gate rules added after a model was trained; ``corrector.gates`` is replaced.
    """
    cfg = config.train
    data = TrainData.build(load_train_sentences(cfg) if sentences is None else sentences, cfg)
    if data.vocab != corrector.vocab:
        raise InputError(
            f"the {cfg.corpus} train split gives another vocabulary than the model's "
            f"({len(data.vocab)} vs {len(corrector.vocab)} tokens): wrong corpus or data?"
        )
    current = gate_inputs(data, data.noise(config.noise), cfg)
    tunings = []
    for model in corrector.stages:
        tuning = _tune_stage_gate(model, data, current, cfg)
        logger.info("retuned gate %s", tuning.gate)
        tunings.append(tuning)
        current = dict(zip(sorted(current), tuning.outputs, strict=True))
    corrector.gates = [t.gate for t in tunings]
    return tunings


def _train_one_stage(
    config: CorrectorConfig,
    data: TrainData,
    index: int,
    previous: torch.nn.Module | None,
    pool: Sequence[Pair],
) -> tuple[torch.nn.Module, StageLog]:
    torch = require("torch", "corrector training")
    cfg, vocab = config.train, data.vocab
    dims = config.dims(len(vocab))
    torch.manual_seed(cfg.seed + index)
    noise = data.noise(config.noise if index == 0 else config.noise_stage2)
    rng = np.random.default_rng([cfg.seed, index])
    sampler = PairSampler(
        data.fit_ids,
        noise,
        vocab,
        rng,
        cfg.unk_rate,
        dims.max_len - 1,
        pool,
        cfg.stage2_model_share,
    )
    val = fixed_pairs(data.held_ids, noise, cfg.seed + 100 + index)
    val_batches = [make_batch(val[i : i + 256], vocab) for i in range(0, len(val), 256)]
    model = build_model(dims, vocab.pad_id)
    if previous is not None and cfg.warm_start:
        # A later stage starts as a copy of the previous one: it already restores sentences
        # and only has to specialise in fine corrections (much cheaper on a CPU budget).
        model.load_state_dict(previous.state_dict())
    logger.info("stage %d: %d parameters", index + 1, count_parameters(model))
    if index > 0 and cfg.max_minutes_stage2 > 0:
        cfg = dataclasses.replace(cfg, max_minutes=cfg.max_minutes_stage2)
    log = train_stage(model, sampler.batch, val_batches, cfg, vocab.pad_id, f"stage {index + 1}")
    return model, log


def _report(
    cfg: TrainConfig,
    data: TrainData,
    stages: Sequence[torch.nn.Module],
    logs: Sequence[StageLog],
    tunings: Sequence[GateTuning],
) -> dict[str, Any]:
    from edge_slr.system import machine_info

    return {
        "corpus": cfg.corpus,
        "fit_sentences": len(data.fit_ids),
        "holdout_sentences": len(data.held),
        "vocab_size": len(data.vocab),
        "parameters_per_stage": count_parameters(stages[0]),
        "stages": [
            {
                "steps": g.steps,
                "seconds": round(g.seconds, 1),
                "train_loss": g.train_loss,
                "val_loss": g.val_loss,
                "history": g.history,
            }
            for g in logs
        ],
        "gate_tuning": [tuning_report(t) for t in tunings],
        "threads": cfg.threads,
        "machine": machine_info().cpu_model,
    }


def stage_pool(
    model: torch.nn.Module,
    gate: GateConfig,
    fit_ids: Sequence[list[int]],
    noise: GlossNoise,
    vocab: CorrectorVocabulary,
    cfg: TrainConfig,
) -> list[Pair]:
    """(stage 1's gated output on a noisy sentence, clean sentence) pairs for the next stage."""
    rng = np.random.default_rng([cfg.seed, 99])
    if 0 < cfg.stage2_pool_sentences < len(fit_ids):
        # A bounded pool: running stage 1 over a large corpus costs more than training on it.
        picked = np.sort(rng.choice(len(fit_ids), cfg.stage2_pool_sentences, replace=False))
        fit_ids = [fit_ids[i] for i in picked]
    pairs: list[Pair] = []
    for _ in range(cfg.stage2_pool_copies):
        noisy = [noise.corrupt(y, rng) for y in fit_ids]
        outputs = run_gated(model, gate, noisy, vocab)
        pairs += [
            (o, list(y))
            for o, y in zip(outputs, fit_ids, strict=True)
            if len(o) <= model.dims.max_len - 1
        ]
    logger.info("stage pool: %d pairs", len(pairs))
    return pairs
