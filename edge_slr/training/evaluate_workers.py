"""``edge-slr evaluate`` on worker processes or Ray actors, for splits too large for one core.

The split is cut into shards of whole evaluation batches: the same length-sorted batches
(:class:`BucketBatchSampler` without shuffling) that the single-process evaluation runs, so every
sentence is computed in the same batch, with the same padding, as there. Each worker loads the
student once (:class:`EvaluationTask`, an executor task of :mod:`edge_slr.landmarks.executors`),
runs the model and the decoders on its shards and returns the hypotheses; the driver puts them
back in batch order and scores the whole split once. Hypotheses and WER are therefore those of
:func:`edge_slr.training.evaluate.evaluate_checkpoint`; the loss (a mean over sentences) is summed
in another order, so it agrees to float rounding.

    result = evaluate_checkpoint_on_workers(
        "best.pt", "landmarks/", "test", executor="ray", workers=16, ray_address="auto"
    )
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edge_slr._optional import require
from edge_slr.errors import EdgeSLRError, InputError
from edge_slr.training.evaluate import (
    EvalResult,
    SplitPredictions,
    decode_sentences,
    evaluate_checkpoint,
    load_evaluation,
    predict,
    score_hypotheses,
)

logger = logging.getLogger(__name__)

SHARDS_PER_WORKER = 4  # small enough shards that a slow worker does not hold up the end


class EvaluationError(EdgeSLRError):
    """A shard of the split still failed after its retries: no WER without all sentences."""


@dataclass(frozen=True)
class EvaluationShard:
    """Consecutive evaluation batches: positions in the evaluated dataset, batch after batch."""

    id: str
    positions: tuple[int, ...]
    frames: int = 0  # input frames in the shard: the largest shards are submitted first


@dataclass(frozen=True)
class ShardOutcome:
    """A shard's sentences decoded (status "done"), or why not ("failed"/"requeued")."""

    id: str
    status: str
    predictions: SplitPredictions | None = None  # without log-probs: ids, references, fps, loss
    hypotheses: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    decoded: dict[str, Any] = field(default_factory=dict)
    error_type: str | None = None
    error: str | None = None
    seconds: float = 0.0
    worker: str | None = None
    attempts: int = 0


@dataclass(frozen=True)
class EvaluationTask:
    """Evaluation as an executor task: each worker loads the student and the split's index once."""

    checkpoint: str
    data_root: str
    split: str
    max_samples: int = 0
    beam_width: int = 5
    batch_size: int = 16
    fused: Any = None  # a FusedLM (edge_slr.decoding.lm) to fuse into the beam search

    def check(self) -> None:
        pass  # the driver has loaded the same checkpoint and split before any worker starts

    def start(self, threads: int) -> tuple[Any, Any, Any, dict[str, Any] | None]:
        if threads > 0:
            require("torch", "evaluating a model").set_num_threads(threads)
        model, _, vocab, dataset = load_evaluation(
            self.checkpoint, self.data_root, self.split, self.max_samples
        )
        fusion = None if self.fused is None else self.fused.beam_options(list(vocab.glosses))
        return model, vocab, dataset, fusion

    def run(self, state: tuple[Any, ...], shard: EvaluationShard) -> ShardOutcome:
        model, vocab, dataset, fusion = state
        start = time.perf_counter()
        try:
            view: Any = _Positions(dataset, shard.positions)  # a StudentDataset for predict
            predictions = predict(model, view, batch_size=self.batch_size)
            hypotheses, decoded = decode_sentences(predictions, vocab, self.beam_width, fusion)
        except Exception as err:  # noqa: BLE001 - reported to the driver, which retries it
            logger.debug("%s failed", shard.id, exc_info=True)
            return ShardOutcome(shard.id, "failed", error_type=type(err).__name__, error=str(err))
        return ShardOutcome(
            shard.id,
            "done",
            replace(predictions, log_probs=[]),  # decoded here: the driver needs none of them
            hypotheses,
            decoded,
            seconds=time.perf_counter() - start,
        )

    def stop(self, state: Any) -> None:
        pass

    def worker_died(self, shard: EvaluationShard, error: str, charged: bool) -> ShardOutcome:
        from edge_slr.landmarks.executors import WORKER_DIED

        status = "failed" if charged else "requeued"
        return ShardOutcome(shard.id, status, error_type=WORKER_DIED, error=error)


class _Positions:
    """The dataset restricted to some positions (the shard), in their order."""

    def __init__(self, dataset: Any, positions: Sequence[int]) -> None:
        self._dataset = dataset
        self._positions = list(positions)
        self.lengths = [dataset.lengths[p] for p in self._positions]
        self.skipped: list[tuple[str, tuple[str, ...]]] = []  # the driver scores those

    def __len__(self) -> int:
        return len(self._positions)

    def __getitem__(self, index: int) -> Any:
        return self._dataset[self._positions[index]]


def make_shards(lengths: Sequence[int], batch_size: int, count: int) -> list[EvaluationShard]:
    """At most ``count`` shards of whole evaluation batches, of about equal frames each."""
    from edge_slr.training.data import BucketBatchSampler

    batches = BucketBatchSampler(lengths, batch_size, shuffle=False).batches()
    target = sum(lengths) / max(1, min(count, len(batches)))
    shards: list[EvaluationShard] = []
    positions: list[int] = []
    frames = 0
    for number, batch in enumerate(batches, 1):
        positions += batch
        frames += sum(lengths[p] for p in batch)
        if frames >= target or number == len(batches):
            shards.append(EvaluationShard(f"shard-{len(shards):04d}", tuple(positions), frames))
            positions, frames = [], 0
    return shards


def evaluate_on_executor(
    model: Any,
    dataset: Any,
    vocab: Any,
    *,
    corpus: str,
    beam_width: int,
    batch_size: int,
    progress: bool,
    task: EvaluationTask,
    executor: str,
    workers: int,
    threads_per_worker: int = 1,
    ray_address: str | None = None,
    retries: int = 2,
) -> EvalResult:
    """:func:`edge_slr.training.evaluate.evaluate_model` of ``dataset``, its shards run by
    ``task`` (the same checkpoint and split) on an executor (see the module doc)."""
    from edge_slr.landmarks.executors import create_executor, run_jobs

    task = replace(task, beam_width=beam_width, batch_size=batch_size)
    shards = make_shards(dataset.lengths, batch_size, workers * SHARDS_PER_WORKER)
    tqdm = require("tqdm", "progress bars").tqdm
    done: dict[str, ShardOutcome] = {}
    workers = min(workers, len(shards))
    with create_executor(
        executor,
        task,
        workers=workers,
        threads_per_worker=threads_per_worker,
        ray_address=ray_address,
        retries=retries,
    ) as pool:
        bar = tqdm(total=len(dataset), unit="sentence", desc="evaluate", disable=not progress)

        def finished(shard: EvaluationShard, outcome: ShardOutcome) -> None:
            if outcome.status != "done":
                raise EvaluationError(
                    f"{shard.id} ({len(shard.positions)} sentences) failed after "
                    f"{outcome.attempts} attempt(s): {outcome.error_type}: {outcome.error}"
                )
            done[shard.id] = outcome
            bar.update(len(shard.positions))

        try:
            run_jobs(pool, sorted(shards, key=lambda s: -s.frames), retries, finished)
        finally:
            bar.close()
    logger.info("%d shards on %d %s workers", len(shards), workers, executor)
    return _merge([done[s.id] for s in shards], dataset.skipped, corpus)


def _merge(
    outcomes: list[ShardOutcome], skipped: list[tuple[str, tuple[str, ...]]], corpus: str
) -> EvalResult:
    """One split's result from its shards in batch order (the single process's order)."""
    merged = SplitPredictions()
    hypotheses: dict[str, dict[str, tuple[str, ...]]] = {}
    decoded: dict[str, Any] = {}
    total_loss, count = 0.0, 0
    for outcome in outcomes:
        part = outcome.predictions
        assert part is not None
        merged.ids += part.ids
        merged.references.update(part.references)
        merged.fps.update(part.fps)
        total_loss += part.loss * len(part.ids)
        count += len(part.ids)
        for decoder, sentences in outcome.hypotheses.items():
            hypotheses.setdefault(decoder, {}).update(sentences)
        decoded.update(outcome.decoded)
    for name, glosses in skipped:  # too short to recognise: scored as empty hypotheses
        merged.references[name] = glosses
    merged.loss = total_loss / count if count else float("nan")
    return score_hypotheses(merged, hypotheses, decoded, corpus)


def evaluate_checkpoint_on_workers(
    checkpoint_path: str | Path,
    data_root: str | Path,
    split: str = "dev",
    *,
    executor: str = "local",
    workers: int = 1,
    threads_per_worker: int = 1,
    ray_address: str | None = None,
    retries: int = 2,
    fused: Any = None,
    **options: Any,
) -> EvalResult:
    """:func:`edge_slr.training.evaluate.evaluate_checkpoint` (``options`` are its keyword
    arguments) with the split run on ``workers`` processes (``executor="local"``) or Ray actors
    (``"ray"``, on ``ray_address``; see :func:`edge_slr.landmarks.executors.create_executor`),
    with ``fused`` (a FusedLM) in the beam search when given. One local worker is the
    single-process evaluation itself."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InputError(f"retries must be an int >= 0, got {retries!r}")
    if executor == "local" and workers == 1 and ray_address is None:
        if fused is not None:
            from edge_slr.training.lm_tuning import fused_evaluator

            options["evaluate"] = fused_evaluator(fused)
        return evaluate_checkpoint(checkpoint_path, data_root, split, **options)
    max_samples = options.get("max_samples", 0)
    task = EvaluationTask(str(checkpoint_path), str(data_root), split, max_samples, fused=fused)
    run = functools.partial(
        evaluate_on_executor,
        task=task,
        executor=executor,
        workers=workers,
        threads_per_worker=threads_per_worker,
        ray_address=ray_address,
        retries=retries,
    )
    return evaluate_checkpoint(checkpoint_path, data_root, split, evaluate=run, **options)


__all__ = [
    "EvaluationError",
    "EvaluationShard",
    "EvaluationTask",
    "ShardOutcome",
    "evaluate_checkpoint_on_workers",
    "make_shards",
]
