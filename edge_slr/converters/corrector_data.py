"""Sentences for converting the gloss corrector: calibration (train) and verification (held-out).

``--calibration DIR`` names either a landmark dataset folder (``dataset.json``; its index gives
each sample's glosses) or a folder of the corpus the corrector was trained on (the checkpoint
records it, e.g. ``../shared/data/phoenix2014t``). Clean sentences are corrupted with the
corrector's own noise model (:class:`~edge_slr.training.corrector.noise.GlossNoise`, the stage
configs stored in the checkpoint, gloss frequencies of the folder's train split), seeded:

- verification: the held-out split (dev, else test; ``heldout_split`` chooses), first stage's
  noise, ``heldout_size`` sentences chosen evenly across the split;
- INT8 calibration (targets that calibrate activations): the *train* split only, each stage
  with its own noise config, ``calibration_size`` sentences chosen evenly. Dev/test never
  calibrate.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr.converters.job import Job
from edge_slr.errors import FormatError, InputError

logger = logging.getLogger(__name__)

RECOMMENDED_SENTENCES = 300
HELDOUT_SEED = 0
CALIBRATION_SEED = 1


@dataclass(frozen=True)
class CorrectorCalibration:
    """Noisy train sentences, per stage: (noisy ids, clean ids) pairs."""

    root: Path
    split: str
    source: str  # "landmark dataset" or "corpus NAME"
    stages: tuple[tuple[tuple[list[int], list[int]], ...], ...]
    noise: tuple[dict[str, Any], ...]
    seed: int

    def __len__(self) -> int:
        return len(self.stages[0]) if self.stages else 0

    def summary(self) -> dict[str, Any]:
        """What the sidecar records (``calibration``)."""
        lengths = np.array([len(noisy) for noisy, _ in self.stages[0]])
        digest = hashlib.sha256(repr([p for s in self.stages for p in s]).encode()).hexdigest()
        return {
            "dataset": str(self.root),
            "source": self.source,
            "split": self.split,
            "sentences": len(self),
            "noisy_glosses": {
                "min": int(lengths.min()),
                "median": float(np.median(lengths)),
                "max": int(lengths.max()),
            },
            "noise_per_stage": list(self.noise),
            "seed": self.seed,
            "sha256": digest,
        }


@dataclass(frozen=True)
class HeldoutSentences:
    """Noisy held-out sentences: (id, noisy ids, clean glosses), with where they came from."""

    root: Path
    split: str
    source: str  # "landmark dataset" or "corpus NAME"
    sentences: tuple[tuple[str, list[int], tuple[str, ...]], ...]
    noise: dict[str, Any]  # the first stage's noise config
    seed: int

    def __len__(self) -> int:
        return len(self.sentences)

    def summary(self, wer_input: float | None) -> dict[str, Any]:
        """Where the sentences came from, their noise and the WER of the noisy inputs."""
        return {
            "dataset": str(self.root),
            "split": self.split,
            "source": self.source,
            "noise": self.noise,
            "seed": self.seed,
            "wer_input": wer_input,  # noisy sentences vs references, before any correction
            "gates": "off: raw greedy corrections are compared",
        }


def checkpoint_config(job: Job) -> dict[str, Any]:
    from edge_slr.training.corrector.checkpoint import load_checkpoint

    return dict(load_checkpoint(job.source.checkpoint).get("config") or {})


def split_sentences(root: Path, split: str, corpus: str) -> list[tuple[str, tuple[str, ...]]]:
    """(id, glosses) of the non-empty sentences of a landmark dataset or corpus split."""
    if (root / "dataset.json").is_file():
        from edge_slr.data.dataset import LandmarkDataset

        return [(e.id, tuple(e.glosses)) for e in LandmarkDataset(root, split).samples if e.glosses]
    from edge_slr.data.corpora import load_corpus

    try:
        samples = load_corpus(corpus, root, split)
    except (InputError, FormatError, OSError) as err:
        raise InputError(
            f"{root} is neither a landmark dataset folder (no dataset.json) nor a readable "
            f"{corpus!r} corpus folder, the corpus this corrector was trained on ({err})"
        ) from None
    return [(s.id, tuple(s.glosses)) for s in samples if s.glosses]


def heldout_split_of(root: Path, requested: str) -> str:
    if requested:
        return requested
    if (root / "dataset.json").is_file():
        from edge_slr.converters.calibration import heldout_split

        return heldout_split(root)
    return "dev"


def evenly(items: list[Any], limit: int) -> list[Any]:
    """At most ``limit`` items spread evenly over the list (deterministic)."""
    if len(items) <= limit:
        return list(items)
    picks = np.linspace(0, len(items) - 1, limit).round().astype(int)
    return [items[i] for i in picks]


def noise_configs(config: dict[str, Any], stages: int) -> list[Any]:
    """The training noise of each stage (the checkpoint's ``noise`` / ``noise_stage2``)."""
    from edge_slr.training.corrector.noise import NoiseConfig

    first = NoiseConfig.from_dict(config.get("noise") or {})
    later = NoiseConfig.from_dict(config.get("noise_stage2") or config.get("noise") or {})
    return [first] + [later] * (stages - 1)


def attach_corrector_data(job: Job, root: str | Path) -> None:
    """Held-out noisy sentences (``job.heldout``) and, for calibrating targets, noisy train
    sentences per stage (``job.calibration``)."""
    from dataclasses import asdict

    from edge_slr.converters.corrector_source import CorrectorSource
    from edge_slr.training.corrector.noise import GlossNoise

    root, opts = Path(root), job.options
    source = CorrectorSource.of(job)
    corrector, corrector_kind = source.corrector, source.kind
    vocab, dims = corrector.vocab, corrector.stages[0].dims
    config = checkpoint_config(job)
    corpus = str((config.get("train") or {}).get("corpus") or "phoenix2014t")
    limit = dims.max_len - 1  # room for <eos> / <bos>
    train = split_sentences(root, "train", corpus)
    if len(train) < 2:
        raise InputError(f"{root} has {len(train)} train sentences; the noise model needs >= 2")
    train_ids = [vocab.encode(g)[0][:limit] for _, g in train]
    freq = np.zeros(len(vocab))
    for token, count in Counter(t for ids in train_ids for t in ids).items():
        freq[token] = count
    freq[vocab.unk_id] = 0  # never insert <unk>
    configs = noise_configs(config, dims.stages)
    noises = [GlossNoise(c, freq) for c in configs]
    source = "landmark dataset" if (root / "dataset.json").is_file() else f"corpus {corpus}"

    split = heldout_split_of(root, opts.heldout_split)
    held = evenly(split_sentences(root, split, corpus), opts.heldout_size)
    rng = np.random.default_rng(HELDOUT_SEED)
    sentences = []
    for sid, glosses in held:
        clean = vocab.encode(glosses)[0][:limit]
        sentences.append((sid, noises[0].corrupt(clean, rng)[:limit], glosses))
    job.heldout = HeldoutSentences(
        root, split, source, tuple(sentences), asdict(configs[0]), HELDOUT_SEED
    )
    if job.spec.calibrates(corrector_kind, opts):  # the others quantise weights only
        pairs = evenly(train_ids, opts.calibration_size)
        rng = np.random.default_rng(CALIBRATION_SEED)
        stages = tuple(
            tuple((noise.corrupt(ids, rng)[:limit] or ids, list(ids)) for ids in pairs)
            for noise in noises
        )
        job.calibration = CorrectorCalibration(
            root, "train", source, stages, tuple(asdict(c) for c in configs), CALIBRATION_SEED
        )
        logger.info("corrector calibration: %d noisy train sentences per stage", len(pairs))
