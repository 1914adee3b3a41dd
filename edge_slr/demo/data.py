"""The demo's dataset: a small SignSynth dataset over the most frequent glosses of a sentence source.

A few minutes of CPU training cannot learn a 1085-gloss vocabulary, so the demo keeps the
``glosses`` most frequent glosses of the train sentences and every train/dev/test sentence made
only of them (real splits; dev/test sentences never repeat a train sentence), as
``benchmarks/kd_data.py`` does for distillation. The sentences come from

* a real corpus (PHOENIX-2014-T in ``../shared/data`` or a folder the user gives): real sentences,
  splits and, for PHOENIX, real per-gloss durations from the frame alignments;
* otherwise SignSynth's built-in weather-forecast grammar (no data needed).

Each split gets its own synthetic signers (signer-independent), one signer per sentence. The
folder is an ordinary edge-slr dataset (:mod:`edge_slr.data.dataset`); ``dataset.json`` records the
selection.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_slr.data.dataset import DatasetWriter, IndexEntry
from edge_slr.data.synth.generate import (
    SignSynth,
    SynthConfig,
    duration_model,
    sentences_for,
    synth_for,
)
from edge_slr.data.synth.sentences import SentenceSpec
from edge_slr.errors import InputError

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class DataPlan:
    """What the dataset stage builds (every field goes into the stage's cache key)."""

    corpus: str | None  # None: the built-in grammar
    root: Path | None  # corpus folder
    glosses: int  # vocabulary: this many most frequent train glosses
    train_sentences: int
    eval_sentences: int  # per dev/test split
    signers: int  # per split
    difficulty: str
    seed: int

    def synth_config(self) -> SynthConfig:
        from edge_slr.data.synth.config import get_difficulty

        return SynthConfig(
            corpus=self.corpus,
            root=self.root,
            seed=self.seed,
            difficulty=get_difficulty(self.difficulty),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.corpus or "builtin",
            "root": None if self.root is None else str(self.root),
            "glosses": self.glosses,
            "train_sentences": self.train_sentences,
            "eval_sentences": self.eval_sentences,
            "signers": self.signers,
            "difficulty": self.difficulty,
            "seed": self.seed,
        }


def select_sentences(plan: DataPlan) -> dict[str, list[SentenceSpec]]:
    """Sentences of every split made only of the ``plan.glosses`` most frequent train glosses.

    Dev and test also use only glosses of the student's train sentences. ``train`` is the full
    selection (the corrector learns from all of it; the student from the
    first ``plan.train_sentences``), dev and test are cut to ``plan.eval_sentences``.
    """
    config = plan.synth_config()
    sentences = {split: sentences_for(config, split) for split in SPLITS}
    counts = Counter(g for s in sentences["train"] for g in s.glosses)
    # ties broken by the gloss itself, so the selection never depends on dictionary order
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    keep = {g for g, _ in ranked[: plan.glosses]}
    chosen = {split: [s for s in sentences[split] if set(s.glosses) <= keep] for split in SPLITS}
    # dev/test keep only glosses the student sees in training (its first train sentences)
    seen = {g for s in chosen["train"][: plan.train_sentences] for g in s.glosses}
    for split in ("dev", "test"):
        chosen[split] = [s for s in chosen[split] if set(s.glosses) <= seen]
        chosen[split] = chosen[split][: plan.eval_sentences]
    for split, items in chosen.items():
        if not items:
            raise InputError(
                f"no {split} sentence of {plan.corpus or 'the built-in grammar'} uses only its "
                f"{plan.glosses} most frequent glosses; raise the vocabulary size (--glosses)"
            )
    return chosen


def build_dataset(
    plan: DataPlan, out: Path, *, workers: int = 1, progress: bool = True
) -> dict[str, Any]:
    """Write the dataset under ``out`` (resumable: finished samples are kept) and summarise it.

    ``workers`` > 1 synthesises in that many processes; the files are the same either way (every
    sample's random draws are keyed by its id and signer).
    """
    from edge_slr.decoding.vocab import Vocabulary

    chosen = select_sentences(plan)
    train = chosen["train"][: plan.train_sentences]
    vocabulary = Vocabulary.from_sentences(s.glosses for s in train)
    config = plan.synth_config()
    description = {
        "name": "signsynth-demo",
        "generator": config.description(),
        "selection": plan.describe(),
    }
    writer = DatasetWriter(out, description, vocabulary)
    setup = (config, duration_model(config), writer)
    summary: dict[str, Any] = {"vocabulary": len(vocabulary) - 1, "splits": {}}
    pool = _start_pool(workers, setup)
    try:
        for split, sentences in (
            ("train", train),
            ("dev", chosen["dev"]),
            ("test", chosen["test"]),
        ):
            entries = _write_split(pool, writer, split, sentences, plan.signers, progress)
            frames = sum(e.num_frames for e in entries)
            summary["splits"][split] = {"samples": len(entries), "frames": frames}
            logger.info(
                "  %s: %d samples, %d signers, %.1f min of signing",
                split,
                len(entries),
                len({e.signer for e in entries}),
                frames / 25.0 / 60.0,
            )
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    summary["corrector_sentences"] = len(chosen["train"])
    return summary


_WORKER: dict[str, Any] = {}
Task = tuple[str, SentenceSpec, int]  # split, sentence, signer index


def _init_worker(config: SynthConfig, durations: Any, writer: DatasetWriter) -> None:
    _WORKER["synth"] = synth_for(config, durations)
    _WORKER["writer"] = writer


def _make_sample(task: Task) -> IndexEntry:
    """Synthesise and write one sample (or find it complete on disk)."""
    split, sentence, index = task
    synth: SignSynth = _WORKER["synth"]
    writer: DatasetWriter = _WORKER["writer"]
    signer = synth.signer(split, index)
    sample_id = f"{sentence.id}__s{index:02d}"
    frames = writer.complete_sample(split, sample_id, frames=False, pose=False)
    if frames is None:
        sample = synth.synthesize(sentence.glosses, signer, sample_id=sample_id)
        writer.write_sample(split, sample_id, sample.landmarks)
        frames = sample.landmarks.num_frames
    return IndexEntry(sample_id, signer.id, frames, sentence.glosses)


def _write_split(
    pool: Any,
    writer: DatasetWriter,
    split: str,
    sentences: list[SentenceSpec],
    signers: int,
    progress: bool,
) -> list[IndexEntry]:
    writer.start_split(split)
    tasks = [(split, sentence, i % signers) for i, sentence in enumerate(sentences)]
    bar = _progress(len(tasks), split, progress)
    results = map(_make_sample, tasks) if pool is None else pool.imap(_make_sample, tasks, 8)
    entries = [_tick(bar, entry) for entry in results]
    if bar is not None:
        bar.close()
    signers_seen = sorted({e.signer for e in entries})
    writer.finish_split(split, entries, {"sentences": len(sentences), "signers": signers_seen})
    return entries


def _start_pool(workers: int, setup: tuple) -> Any:
    """Worker processes (spawned: safe with torch/OpenMP loaded), or None to work in-process."""
    if workers == 1:
        _init_worker(*setup)
        return None
    import multiprocessing

    return multiprocessing.get_context("spawn").Pool(workers, _init_worker, setup)


def _tick(bar: Any, entry: IndexEntry) -> IndexEntry:
    if bar is not None:
        bar.update(1)
    return entry


def _progress(total: int, split: str, enabled: bool) -> Any:
    from edge_slr._optional import is_available, require

    if enabled and is_available("tqdm"):
        return require("tqdm").tqdm(total=total, desc=f"synth {split}", unit="sample", leave=False)
    return None


def corrector_sentences(plan: DataPlan) -> list[tuple[str, ...]]:
    """Text for the corrector: every selected *train* sentence (never dev/test)."""
    return [s.glosses for s in select_sentences(plan)["train"]]
