"""How long each gloss lasts, in frames at 25 fps, from the real PHOENIX-2014-T alignments.

Gloss durations are log-normal. With the alignments at hand (``from_alignments``), every
aligned gloss gets the mean and spread of its own segments, shrunk towards the population for
glosses seen only a few times. Glosses without an alignment (the built-in grammar's vocabulary,
CSL-Daily, the rare PHOENIX glosses) get a log-mean drawn once, deterministically from a hash of
the gloss, from the distribution of per-gloss log-means measured on the real data, so a gloss is
consistently short or long as real glosses are.

The embedded numbers below were computed once from ../shared/data/phoenix2014t with
``edge_slr.data.alignments.load_alignments(root, "train")`` (63,971 named gloss segments of
7,096 clips) and ``gloss_durations``: per gloss with at least 5 segments (513 glosses), the
log-normal parameters sigma^2 = ln(1 + (std/mean)^2), mu = ln(mean) - sigma^2/2; below are the
mean and standard deviation of mu over glosses and the median sigma.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_slr.data.synth.lexicon import split_variant
from edge_slr.data.synth.seeding import generator
from edge_slr.errors import InputError

logger = logging.getLogger(__name__)

FPS = 25.0
GLOSS_LOG_MEAN_MEAN = 2.4646  # mean over glosses of mu (about 11.8 frames, 0.47 s)
GLOSS_LOG_MEAN_STD = 0.3486  # how much glosses differ in typical length
WITHIN_GLOSS_LOG_STD = 0.4416  # median spread of one gloss's durations
MIN_FRAMES = 3  # the alignment has three HMM states per gloss, one frame each at least
MAX_FRAMES = 60  # the 99.5th percentile of segment lengths is 44 frames
PRIOR_WEIGHT = 4.0  # pseudo-count that shrinks rarely aligned glosses towards the population


@dataclass(frozen=True)
class GlossTiming:
    """Log-normal duration of one gloss: ``exp(N(log_mean, log_std))`` frames at 25 fps."""

    log_mean: float
    log_std: float
    aligned: bool  # from the gloss's own alignment segments (else drawn from the population)


class DurationModel:
    """Per-gloss durations; ``DurationModel.builtin()`` needs no data."""

    def __init__(self, table: dict[str, GlossTiming] | None = None, seed: int = 0) -> None:
        self.table = dict(table or {})
        self.seed = seed
        self._fallback: dict[str, GlossTiming] = {}

    @classmethod
    def builtin(cls, seed: int = 0) -> DurationModel:
        """Durations from the embedded summary statistics only."""
        return cls({}, seed)

    @classmethod
    def from_alignments(cls, root: str | Path, seed: int = 0) -> DurationModel:
        """Per-gloss statistics of the PHOENIX-2014-T train alignments under ``root``."""
        from edge_slr.data.alignments import gloss_durations, load_alignments

        stats = gloss_durations(load_alignments(root, "train"))
        table = {}
        for gloss, d in stats.items():
            sigma2 = np.log1p((d.std / d.mean) ** 2) if d.count > 1 else WITHIN_GLOSS_LOG_STD**2
            mu = np.log(d.mean) - 0.5 * sigma2
            w = d.count / (d.count + PRIOR_WEIGHT)
            table[gloss] = GlossTiming(
                log_mean=float(w * mu + (1 - w) * GLOSS_LOG_MEAN_MEAN),
                log_std=float(np.sqrt(w * sigma2 + (1 - w) * WITHIN_GLOSS_LOG_STD**2)),
                aligned=True,
            )
        logger.info("durations of %d aligned glosses from %s", len(table), root)
        return cls(table, seed)

    def timing(self, gloss: str) -> GlossTiming:
        """The gloss's own timing, else its base gloss's (``loc-X`` -> ``X``), else a fallback."""
        if gloss in self.table:
            return self.table[gloss]
        base, variant = split_variant(gloss)
        if variant is not None and base in self.table:
            return self.table[base]
        if gloss not in self._fallback:
            rng = generator(self.seed, "duration", gloss)
            log_mean = GLOSS_LOG_MEAN_MEAN + GLOSS_LOG_MEAN_STD * float(
                np.clip(rng.standard_normal(), -2.5, 2.5)
            )
            self._fallback[gloss] = GlossTiming(log_mean, WITHIN_GLOSS_LOG_STD, aligned=False)
        return self._fallback[gloss]

    def sample(
        self,
        glosses: list[str] | tuple[str, ...],
        rng: np.random.Generator,
        *,
        speed: float = 1.0,
        speed_spread: float = 0.0,
        tempo_variation: float = 1.0,
    ) -> list[int]:
        """Frames of each gloss of one sentence signed at ``speed`` (> 1 is faster).

        The real within-gloss spread already contains differences between signers; the part
        that the signer's own speed (log spread ``speed_spread``) explains is taken out of it.
        """
        if speed <= 0:
            raise InputError(f"speed must be positive, got {speed}")
        sentence_rate = rng.normal(0.0, 0.08 * tempo_variation)
        frames = []
        for gloss in glosses:
            t = self.timing(gloss)
            within = np.sqrt(max(t.log_std**2 - speed_spread**2 - 0.08**2, 0.01))
            value = t.log_mean + sentence_rate + rng.normal(0.0, within * tempo_variation)
            length = np.exp(value) / speed
            frames.append(int(np.clip(round(length), MIN_FRAMES, MAX_FRAMES)))
        return frames
