"""Evaluate the video teacher: per-sentence log-probs, greedy/beam decoding, the official WER.

The student's evaluation (edge_slr.training.evaluate) with video batches: the same prediction
loop, decoders, scorer and reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_slr.training.evaluate import (
    AS_EVALUATED,
    EvalResult,
    SplitPredictions,
    decode_predictions,
    evaluate_split,
    predict_split,
)
from edge_slr.training.teacher.data import VideoDataset, collate_video


def predict(
    model: Any, dataset: VideoDataset, *, batch_size: int = 4, progress: bool = False
) -> SplitPredictions:
    """Per-sentence log-probs of the BiLSTM head (length-sorted batches), and the CTC loss."""
    model.eval()
    return predict_split(
        dataset,
        collate_video,
        lambda batch: model(batch.frames, batch.lengths),
        batch_size=batch_size,
        progress=progress,
        desc="teacher eval",
    )


def evaluate_teacher(
    model: Any,
    dataset: VideoDataset,
    vocab: Any,
    *,
    corpus: str,
    beam_width: int = 5,
    batch_size: int = 4,
    progress: bool = False,
) -> EvalResult:
    predictions = predict(model, dataset, batch_size=batch_size, progress=progress)
    return decode_predictions(predictions, vocab.with_oov("drop"), corpus, beam_width)


def evaluate_teacher_checkpoint(
    checkpoint_path: str | Path,
    data_root: str | Path,
    split: str = "dev",
    *,
    beam_width: int = 5,
    out_dir: str | Path | None = None,
    corpus: str = "",
    max_samples: int = 0,
    batch_size: int = 4,
    progress: bool = False,
) -> EvalResult:
    """WER of a saved teacher on a split; CTM/STM/JSON reports in ``out_dir`` when given."""
    from edge_slr.data.dataset import LandmarkDataset
    from edge_slr.training.teacher.checkpoint import load_teacher

    model, checkpoint = load_teacher(checkpoint_path)
    vocab = checkpoint.vocab().with_oov("drop")
    source, output_length = LandmarkDataset(data_root, split), model.dims.output_length
    dataset = VideoDataset(
        source, vocab, model.dims.input_size, output_length=output_length, max_samples=max_samples,
        **AS_EVALUATED,
    )  # fmt: skip
    decoding = {"beam_width": beam_width, "batch_size": batch_size, "progress": progress}
    extra = {"teacher": str(checkpoint_path)}
    return evaluate_split(
        evaluate_teacher, model, dataset, vocab, data_root, split, corpus, decoding, out_dir, extra
    )
