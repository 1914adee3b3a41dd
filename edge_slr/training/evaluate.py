"""Evaluate a student: log-probs for a split, greedy and beam decoding, the official WER.

:func:`evaluate_model` is what the training loop calls each epoch; :func:`evaluate_checkpoint`
is ``edge-slr evaluate``: it also writes CTM hypotheses (with real times from the CTC frame spans),
the STM references and a JSON report with the S/D/I breakdown and per-sentence alignments.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr._optional import require
from edge_slr.errors import InputError
from edge_slr.training.data import BucketBatchSampler, StudentDataset, collate

logger = logging.getLogger(__name__)

DEFAULT_CORPUS = "phoenix2014t"
# Evaluation datasets drop glosses outside the vocabulary from the CTC targets and keep the
# sentences the model cannot align (too short: scored as empty hypotheses).
AS_EVALUATED: dict[str, Any] = {"oov": "drop", "require_alignable": False}


@dataclass
class SplitPredictions:
    ids: list[str] = field(default_factory=list)
    log_probs: list[np.ndarray] = field(default_factory=list)  # (T', V) per sentence
    references: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fps: dict[str, float] = field(default_factory=dict)
    loss: float = float("nan")  # CTC loss of the main head per gloss (OOV glosses dropped)


@dataclass
class EvalResult:
    greedy: Any  # WERResult
    beam: Any | None  # WERResult, when beam_width > 0
    loss: float
    hypotheses: dict[str, dict[str, tuple[str, ...]]]  # "greedy"/"beam" -> id -> glosses
    decoded: dict[str, Any]  # id -> DecodeResult of the reported decoder (spans, scores)
    fps: dict[str, float] = field(default_factory=dict)  # input frame rate per sentence

    @property
    def best(self) -> Any:
        """The result of the reported decoder: beam search when it ran, else greedy."""
        return self.beam if self.beam is not None else self.greedy

    def summary(self) -> dict[str, Any]:
        out = {"loss": self.loss, "greedy_wer": self.greedy.wer}
        if self.beam is not None:
            out["beam_wer"] = self.beam.wer
        return out


def predict(
    model: Any, dataset: StudentDataset, *, batch_size: int = 16, progress: bool = False
) -> SplitPredictions:
    """Run the model over a dataset (length-sorted batches) and collect per-sentence log-probs."""
    model.eval()
    return predict_split(
        dataset,
        collate,
        lambda batch: model(batch.features, batch.lengths, aux=False),
        batch_size=batch_size,
        progress=progress,
    )


def predict_split(
    dataset: Any,
    collate_fn: Callable[[list[Any]], Any],
    forward: Callable[[Any], Any],
    *,
    batch_size: int,
    progress: bool = False,
    desc: str = "eval",
) -> SplitPredictions:
    """Log-probs of ``forward(batch).logits`` per sentence, and the CTC loss per gloss.

    ``dataset`` has ``lengths``, items that ``collate_fn`` batches (with ids, glosses, fps,
    targets) and ``skipped`` sentences, which are scored as empty hypotheses.
    """
    torch = require("torch", "evaluating a model")
    tqdm = require("tqdm", "progress bars").tqdm
    sampler = BucketBatchSampler(dataset.lengths, batch_size, shuffle=False)
    out = SplitPredictions()
    total_loss, total_count = 0.0, 0
    with torch.no_grad():
        for indices in tqdm(sampler, desc=desc, leave=False, disable=not progress):
            batch = collate_fn([dataset[i] for i in indices])
            result = forward(batch)
            log_probs = result.logits.log_softmax(-1)
            # Per-gloss loss as in training (reduction "mean" divides by target length).
            losses = torch.nn.functional.ctc_loss(
                log_probs.transpose(0, 1),
                batch.targets,
                result.lengths,
                batch.target_lengths,
                blank=0,
                reduction="none",
                zero_infinity=True,
            )
            total_loss += float((losses / batch.target_lengths.clamp(min=1)).sum())
            total_count += len(batch)
            for row, name in enumerate(batch.ids):
                steps = int(result.lengths[row])
                out.ids.append(name)
                out.log_probs.append(log_probs[row, :steps].numpy().astype(np.float32))
                out.references[name] = batch.glosses[row]
                out.fps[name] = batch.fps[row]
    for name, glosses in dataset.skipped:  # too short to recognise: scored as empty hypotheses
        out.references[name] = glosses
    out.loss = total_loss / total_count if total_count else float("nan")
    return out


def decode_predictions(
    predictions: SplitPredictions, vocab: Any, corpus: str, beam_width: int
) -> EvalResult:
    """Greedy (and, with ``beam_width`` > 0, beam) decoding scored with the official scorer."""
    hypotheses, decoded = decode_sentences(predictions, vocab, beam_width)
    return score_hypotheses(predictions, hypotheses, decoded, corpus)


def decode_sentences(
    predictions: SplitPredictions,
    vocab: Any,
    beam_width: int,
    beam_options: dict[str, Any] | None = None,
) -> tuple[dict[str, dict[str, tuple[str, ...]]], dict[str, Any]]:
    """Hypotheses per decoder ("greedy", and "beam" when ``beam_width`` > 0) and sentence, and
    the DecodeResult of the reported decoder per sentence. ``beam_options`` go to the beam
    search (an LM: :meth:`edge_slr.decoding.lm.FusedLM.beam_options`)."""
    from edge_slr.decoding import beam_search, greedy_decode

    labels = list(vocab.glosses)
    greedy: dict[str, tuple[str, ...]] = {}
    beam: dict[str, tuple[str, ...]] = {}
    decoded: dict[str, Any] = {}
    for name, lp in zip(predictions.ids, predictions.log_probs, strict=True):
        result = greedy_decode(lp, blank=0, labels=labels)
        greedy[name] = tuple(vocab.decode(result.tokens, keep_unk=False))
        if beam_width > 0:
            result = beam_search(
                lp, beam_width=beam_width, blank=0, labels=labels, **(beam_options or {})
            )
            beam[name] = tuple(vocab.decode(result.tokens, keep_unk=False))
        decoded[name] = result
    return {"greedy": greedy} | ({"beam": beam} if beam_width > 0 else {}), decoded


def score_hypotheses(
    predictions: SplitPredictions,
    hypotheses: dict[str, dict[str, tuple[str, ...]]],
    decoded: dict[str, Any],
    corpus: str,
) -> EvalResult:
    """Score :func:`decode_sentences`' hypotheses against ``predictions.references``."""
    from edge_slr.metrics import score

    references = predictions.references
    greedy_wer = score(hypotheses["greedy"], references, corpus=corpus)
    beam = hypotheses.get("beam")
    beam_wer = score(beam, references, corpus=corpus) if beam is not None else None
    return EvalResult(
        greedy_wer, beam_wer, predictions.loss, hypotheses, decoded, dict(predictions.fps)
    )


def evaluate_model(
    model: Any,
    dataset: StudentDataset,
    vocab: Any,
    *,
    corpus: str = DEFAULT_CORPUS,
    beam_width: int = 5,
    batch_size: int = 16,
    progress: bool = False,
) -> EvalResult:
    predictions = predict(model, dataset, batch_size=batch_size, progress=progress)
    return decode_predictions(predictions, vocab, corpus, beam_width)


def scoring_corpus(root: str | Path, override: str = "") -> str:
    """The scoring rules for a dataset: ``override``, else the corpus its dataset.json names.

    A dataset of the built-in synthetic sentences (no real corpus) is scored as ``"plain"``.
    """
    from edge_slr.metrics import CORPORA

    if override:
        if override not in CORPORA:
            raise InputError(
                f"unknown scoring corpus {override!r}; expected one of {sorted(CORPORA)}"
            )
        return override
    description = Path(root) / "dataset.json"
    corpus = None
    if description.is_file():
        try:
            data = json.loads(description.read_text(encoding="utf-8"))
            # real extracted data names its corpus; SignSynth names the corpus it drew from
            corpus = data.get("corpus") or (data.get("generator") or {}).get("corpus")
        except (json.JSONDecodeError, AttributeError):
            corpus = None
    if corpus in CORPORA:
        return str(corpus)
    if corpus == "builtin":
        return "plain"
    return DEFAULT_CORPUS


def write_reports(
    result: EvalResult,
    out_dir: str | Path,
    split: str,
    *,
    frame_period: dict[str, float],
    extra: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``SPLIT.ctm`` (reported decoder, real times), ``SPLIT.greedy.ctm``, ``SPLIT.stm`` and
    ``SPLIT.wer.json`` (WER, S/D/I, most frequent errors, per-sentence alignments)."""
    from edge_slr.metrics import CtmEntry, error_breakdown, write_ctm, write_stm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, decoded in result.decoded.items():
        period = frame_period[name]  # seconds per output step
        for gloss in decoded.glosses:
            if gloss.gloss in (None, "<unk>"):
                continue
            entries.append(
                CtmEntry(
                    name,
                    gloss.gloss,
                    gloss.start * period,
                    max(gloss.end - gloss.start, 1) * period,
                    confidence=float(gloss.score),
                )
            )
    paths = {
        "ctm": out / f"{split}.ctm",
        "greedy_ctm": out / f"{split}.greedy.ctm",
        "stm": out / f"{split}.stm",
        "report": out / f"{split}.wer.json",
    }
    write_ctm(paths["ctm"], entries)
    write_ctm(paths["greedy_ctm"], result.hypotheses["greedy"])
    references = {name: s.reference for name, s in ((s.id, s) for s in result.greedy.sentences)}
    write_stm(paths["stm"], references)
    report = {
        "split": split,
        "decoder": "beam" if result.beam is not None else "greedy",
        "loss": result.loss,
        "greedy": result.greedy.to_dict(per_sentence=False),
        "beam": result.beam.to_dict(per_sentence=False) if result.beam is not None else None,
        "errors": error_breakdown(result.best, top=20).to_dict(),
        "sentences": [s.to_dict() for s in result.best.sentences],
        **(extra or {}),
    }
    paths["report"].write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", "utf-8")
    return paths


def load_evaluation(
    checkpoint_path: str | Path, data_root: str | Path, split: str, max_samples: int = 0
) -> tuple[Any, Any, Any, StudentDataset]:
    """(model, checkpoint, vocabulary, dataset) of a saved student on a landmark dataset split,
    as :func:`evaluate_checkpoint` evaluates them (reading the split's index, not its files)."""
    from edge_slr.data.dataset import LandmarkDataset
    from edge_slr.training.checkpoint import load_student

    model, checkpoint = load_student(checkpoint_path)
    vocab = checkpoint.vocab().with_oov("drop")
    source = LandmarkDataset(data_root, split)
    output_length, preset = model.dims.output_length, checkpoint.feature_preset()
    dataset = StudentDataset(
        source, vocab, preset, output_length=output_length, max_samples=max_samples, **AS_EVALUATED
    )
    return model, checkpoint, vocab, dataset


def evaluate_checkpoint(
    checkpoint_path: str | Path,
    data_root: str | Path,
    split: str = "dev",
    *,
    beam_width: int = 5,
    out_dir: str | Path | None = None,
    corpus: str = "",
    batch_size: int = 16,
    max_samples: int = 0,
    progress: bool = True,
    evaluate: Callable[..., EvalResult] = evaluate_model,
) -> EvalResult:
    """Evaluate a saved student on a landmark dataset split; write reports when ``out_dir``.

    ``evaluate`` is :func:`evaluate_model`'s signature; :mod:`edge_slr.training.evaluate_workers`
    passes one that runs the split on worker processes or Ray actors."""
    model, _, vocab, dataset = load_evaluation(checkpoint_path, data_root, split, max_samples)
    extra = {
        "checkpoint": str(checkpoint_path),
        "beam_width": beam_width,
        "skipped_too_short": [name for name, _ in dataset.skipped],
    }
    decoding = {"beam_width": beam_width, "batch_size": batch_size, "progress": progress}
    return evaluate_split(
        evaluate, model, dataset, vocab, data_root, split, corpus, decoding, out_dir, extra
    )


def evaluate_split(
    evaluate: Callable[..., EvalResult],
    model: Any,
    dataset: Any,
    vocab: Any,
    data_root: str | Path,
    split: str,
    corpus: str,
    decoding: dict[str, Any],
    out_dir: str | Path | None,
    extra: dict[str, Any],
) -> EvalResult:
    """``evaluate(model, dataset, vocab, corpus=..., **decoding)`` of a loaded model on a split
    of ``data_root``; with ``out_dir``, the reports (:func:`write_reports`) with ``extra``."""
    corpus = scoring_corpus(data_root, corpus)
    result = evaluate(model, dataset, vocab, corpus=corpus, **decoding)
    if out_dir is not None:
        period = {k: model.dims.downsampling / v for k, v in result.fps.items()}
        extra = {"data": str(data_root), "corpus": corpus, **extra}
        write_reports(result, out_dir, split, frame_period=period, extra=extra)
    return result
