"""Shallow fusion on a whole split: decode with a gloss LM, and tune its weights on dev.

The grid search runs the numpy beam search over the student's log-probabilities of a dev split
(computed once) for every (LM weight, insertion bonus) pair and keeps the pair with the lowest
WER. The grid holds (0, 0), the plain beam search, so the tuned weights are never worse than it
on the split they are tuned on; ties go to the smaller weight, then the bonus nearest 0.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_slr.decoding.lm import FusedLM, FusionSettings, NgramLM
from edge_slr.errors import InputError

logger = logging.getLogger(__name__)

DEFAULT_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)
DEFAULT_BONUSES = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)


@dataclass(frozen=True)
class FusionTrial:
    """The WER of one (weight, bonus) pair on the tuning split."""

    settings: FusionSettings
    wer: float
    substitutions: int
    deletions: int
    insertions: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "lm_weight": self.settings.lm_weight,
            "insertion_bonus": self.settings.insertion_bonus,
            "wer": self.wer,
            "substitutions": self.substitutions,
            "deletions": self.deletions,
            "insertions": self.insertions,
        }


def decode_split(
    predictions: Any, vocab: Any, beam_width: int, fused: FusedLM | None = None
) -> dict[str, tuple[str, ...]]:
    """Beam-search hypotheses (glosses) of every sentence of ``predictions`` (SplitPredictions)."""
    from edge_slr.training.evaluate import decode_sentences

    options = fused.beam_options(list(vocab.glosses)) if fused is not None else None
    return decode_sentences(predictions, vocab, beam_width, options)[0]["beam"]


def fused_evaluator(fused: FusedLM) -> Callable[..., Any]:
    """An ``evaluate`` for :func:`edge_slr.training.evaluate.evaluate_checkpoint` that decodes
    with ``fused`` in the beam search."""
    from edge_slr.training.evaluate import decode_sentences, predict, score_hypotheses

    def evaluate(
        model: Any,
        dataset: Any,
        vocab: Any,
        *,
        corpus: str,
        beam_width: int,
        batch_size: int = 16,
        progress: bool = False,
    ) -> Any:
        predictions = predict(model, dataset, batch_size=batch_size, progress=progress)
        options = fused.beam_options(list(vocab.glosses))
        hypotheses, decoded = decode_sentences(predictions, vocab, beam_width, options)
        return score_hypotheses(predictions, hypotheses, decoded, corpus)

    return evaluate


def tune_on_split(
    checkpoint: str | Path,
    data_root: str | Path,
    split: str,
    lm: NgramLM,
    beam_width: int,
    *,
    corpus: str = "",
    batch_size: int = 16,
    max_samples: int = 0,
    progress: bool = False,
) -> tuple[FusionSettings, list[FusionTrial], str]:
    """Tune the fusion of ``lm`` with a student checkpoint on ``split`` of a landmark dataset:
    (best settings, every trial, the scoring corpus)."""
    from edge_slr.training.evaluate import load_evaluation, predict, scoring_corpus

    if beam_width < 1:
        raise InputError(f"tuning an LM needs beam search (beam width >= 1), got {beam_width}")
    model, _, vocab, dataset = load_evaluation(checkpoint, data_root, split, max_samples)
    predictions = predict(model, dataset, batch_size=batch_size, progress=progress)
    corpus = scoring_corpus(data_root, corpus)
    best, trials = tune_fusion(predictions, vocab, corpus, lm, beam_width)
    return best, trials, corpus


def tune_fusion(
    predictions: Any,
    vocab: Any,
    corpus: str,
    lm: NgramLM,
    beam_width: int,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    bonuses: Sequence[float] = DEFAULT_BONUSES,
) -> tuple[FusionSettings, list[FusionTrial]]:
    """The best (weight, bonus) on ``predictions`` (a dev split) and every trial, grid order."""
    from edge_slr.metrics import score

    if not weights or not bonuses:
        raise InputError(f"the grid needs weights and bonuses, got {weights!r} and {bonuses!r}")
    grid = [FusionSettings(float(w), float(b)) for w in weights for b in bonuses]
    if FusionSettings(0.0, 0.0) not in grid:
        grid.insert(0, FusionSettings(0.0, 0.0))  # the plain beam search: never worse than it
    trials = []
    for settings in grid:
        hypotheses = decode_split(predictions, vocab, beam_width, FusedLM(lm, settings))
        result = score(hypotheses, predictions.references, corpus=corpus)
        trials.append(
            FusionTrial(
                settings, result.wer, result.substitutions, result.deletions, result.insertions
            )
        )
        logger.info(
            "lm weight %s bonus %s: WER %.4f",
            settings.lm_weight,
            settings.insertion_bonus,
            result.wer,
        )
    best = min(
        trials,
        key=lambda t: (t.wer, t.settings.lm_weight, abs(t.settings.insertion_bonus)),
    )
    return best.settings, trials
