"""Gloss correction: chained "high encoding, low decoding" transformers, trained self-supervised.

    from edge_slr.training.corrector import load_corrector
    corrector = load_corrector("models/corrector-phoenix2014t")
    corrector.correct(["MORGEN", "REGEN", "REGEN", "NORD"]).glosses

The torch stages decode through the device side's one numpy decoder
(:mod:`edge_slr.recognition.correction`), as the converted graphs on every engine do.

Importing this package needs only numpy; torch is imported when a model is built or loaded.
"""

from __future__ import annotations

from edge_slr.decoding.vocab import CorrectorVocabulary
from edge_slr.recognition.correction import StageGraphs, draft_greedy
from edge_slr.recognition.correction_chain import (
    Correction,
    GateConfig,
    GraphCorrector,
    StageResult,
)
from edge_slr.training.corrector.checkpoint import load_checkpoint, load_corrector, save_corrector
from edge_slr.training.corrector.config import CorrectorConfig, TrainConfig, load_config
from edge_slr.training.corrector.decode import Corrector, beam_decode, greedy_decode
from edge_slr.training.corrector.model import CorrectorDims, build_model, build_stages
from edge_slr.training.corrector.noise import GlossNoise, NoiseConfig, load_confusion_table
from edge_slr.training.corrector.train import train_corrector

__all__ = [
    "Correction",
    "Corrector",
    "CorrectorConfig",
    "CorrectorDims",
    "CorrectorVocabulary",
    "GateConfig",
    "GlossNoise",
    "GraphCorrector",
    "NoiseConfig",
    "StageGraphs",
    "StageResult",
    "TrainConfig",
    "beam_decode",
    "build_model",
    "build_stages",
    "draft_greedy",
    "greedy_decode",
    "load_checkpoint",
    "load_config",
    "load_confusion_table",
    "load_corrector",
    "save_corrector",
    "train_corrector",
]
