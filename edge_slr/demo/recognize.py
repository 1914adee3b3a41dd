"""The demo's recognition step: held-out synthetic clips (scored) and one real signer video.

Both go through :class:`edge_slr.Recognizer` on a converted model directory, as a user's
application would: landmarks -> preset features -> converted student -> CTC beam search ->
corrector. Nothing here is cached; it runs (and is timed) on every demo run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldOutResult:
    """WER of the recogniser alone and after correction on the held-out test split."""

    runtime: str
    model: str
    sentences: int
    wer: float  # recognised glosses, fraction
    wer_corrected: float | None  # after the corrector (None without one)
    substitutions: int
    deletions: int
    insertions: int
    reference_glosses: int
    ms_per_clip_p50: float  # recognition (features + model + decoding) per clip
    correction_ms_p50: float | None
    seconds: float
    examples: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class VideoResult:
    """What the recogniser made of a real signer video (a pipeline check, not an accuracy one)."""

    path: str
    frames: int
    fps: float
    hands_seen: float  # share of frames with at least one hand
    recognized: tuple[str, ...]
    corrected: tuple[str, ...] | None
    timings: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # nothing usable in the video (RecognitionResult.warnings)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def recognize_held_out(
    model_dir: Path,
    data_dir: Path,
    *,
    runtime: str,
    precision: str,
    beam_width: int,
    threads: int,
    examples: int = 3,
) -> HeldOutResult:
    """Recognise every clip of the dataset's test split (unseen signers and sentences) and score."""
    from edge_slr.data.dataset import LandmarkDataset
    from edge_slr.metrics import score
    from edge_slr.recognition.recognizer import Recognizer
    from edge_slr.training.evaluate import scoring_corpus

    test = LandmarkDataset(data_dir, "test")
    corpus = scoring_corpus(data_dir)
    references: dict[str, tuple[str, ...]] = {}
    recognized: dict[str, tuple[str, ...]] = {}
    corrected: dict[str, tuple[str, ...]] = {}
    clip_ms, correction_ms = [], []
    started = time.perf_counter()
    with Recognizer.create_from_model_dir(
        model_dir, runtime=runtime, precision=precision, beam_width=beam_width, threads=threads
    ) as recognizer:
        model = recognizer.description.graph.file.name
        for i in range(len(test)):
            item = test[i]
            if item.landmarks.num_frames < recognizer.window_plan.temporal.min_input_length:
                logger.warning("%s is shorter than the model's receptive field: skipped", item.id)
                continue
            result = recognizer.recognize_landmarks(item.landmarks)
            references[item.id] = tuple(item.glosses)
            recognized[item.id] = result.recognized
            clip_ms.append(result.timings.recognition_ms)
            if result.corrected is not None:
                corrected[item.id] = result.corrected
                correction_ms.append(result.timings.correction_ms)
    seconds = time.perf_counter() - started
    plain = score(recognized, references, corpus)
    fixed = score(corrected, references, corpus) if corrected else None
    shown = tuple(
        {
            "id": name,
            "reference": " ".join(references[name]),
            "recognized": " ".join(recognized[name]),
            "corrected": " ".join(corrected[name]) if name in corrected else None,
        }
        for name in list(references)[:examples]
    )
    return HeldOutResult(
        runtime=runtime,
        model=model,
        sentences=len(references),
        wer=plain.wer,
        wer_corrected=None if fixed is None else fixed.wer,
        substitutions=plain.substitutions,
        deletions=plain.deletions,
        insertions=plain.insertions,
        reference_glosses=plain.reference_words,
        ms_per_clip_p50=float(np.median(clip_ms)),
        correction_ms_p50=float(np.median(correction_ms)) if correction_ms else None,
        seconds=seconds,
        examples=shown,
    )


def recognize_video(
    model_dir: Path, video: Path, *, runtime: str, precision: str, beam_width: int, threads: int
) -> VideoResult:
    """Extract landmarks from ``video`` with MediaPipe Holistic and recognise them."""
    from edge_slr.recognition.recognizer import Recognizer

    with Recognizer.create_from_model_dir(
        model_dir, runtime=runtime, precision=precision, beam_width=beam_width, threads=threads
    ) as recognizer:
        result = recognizer.recognize_video(video)
    landmarks = result.landmarks
    hands = 0.0
    fps = 0.0
    if landmarks is not None:
        from edge_slr.landmarks.layout import PART_SLICES

        present = landmarks.data[..., 3] > 0
        left, right = PART_SLICES["left_hand"], PART_SLICES["right_hand"]
        seen = present[:, left].any(axis=1) | present[:, right].any(axis=1)
        hands, fps = float(seen.mean()), float(landmarks.fps)
    return VideoResult(
        path=str(video),
        frames=result.num_frames,
        fps=fps,
        hands_seen=hands,
        recognized=result.recognized,
        corrected=result.corrected,
        timings=result.timings.to_dict(),
        warnings=result.warnings,
    )
