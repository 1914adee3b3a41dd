"""What recognition returns: glosses with scores and spans, per-stage timings, the result."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_slr.landmarks.sequence import LandmarkSequence


@dataclass(frozen=True)
class RecognizedGloss:
    """One recognised gloss: its posterior score and where it is in the input.

    ``start_frame``/``end_frame`` are input frames, half-open; ``start_ms``/``end_ms`` the
    matching times (from the frame timestamps, or frame / fps).
    """

    gloss: str
    score: float
    start_frame: int
    end_frame: int
    start_ms: float
    end_ms: float

    def to_dict(self) -> dict[str, object]:
        return {
            "gloss": self.gloss,
            "score": round(self.score, 6),
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "start_ms": round(self.start_ms, 3),
            "end_ms": round(self.end_ms, 3),
        }


Sentence = tuple[RecognizedGloss, ...]


@dataclass(frozen=True)
class Timings:
    """Milliseconds spent per stage. Recognition = features + model + CTC decoding."""

    extraction_ms: float = 0.0
    features_ms: float = 0.0
    inference_ms: float = 0.0
    decoding_ms: float = 0.0
    correction_ms: float = 0.0

    @property
    def recognition_ms(self) -> float:
        return self.features_ms + self.inference_ms + self.decoding_ms

    @property
    def total_ms(self) -> float:
        return self.extraction_ms + self.recognition_ms + self.correction_ms

    def __add__(self, other: Timings) -> Timings:
        return Timings(*(a + b for a, b in zip(self._values(), other._values(), strict=True)))

    def _values(self) -> tuple[float, ...]:
        return (self.extraction_ms, self.features_ms, self.inference_ms, self.decoding_ms,
                self.correction_ms)  # fmt: skip

    def to_dict(self) -> dict[str, float]:
        names = ("extraction_ms", "features_ms", "inference_ms", "decoding_ms", "correction_ms")
        out = {n: round(v, 3) for n, v in zip(names, self._values(), strict=True)}
        out["recognition_ms"] = round(self.recognition_ms, 3)
        out["total_ms"] = round(self.total_ms, 3)
        return out


@dataclass(frozen=True)
class RecognitionResult:
    """Recognised glosses (with scores and spans), the corrected sentence and the timings.

    ``final`` is False for a streaming partial hypothesis: then only the first ``stable``
    glosses are settled, the rest may still change. ``corrected`` is None when no corrector ran.
    ``warnings`` says when the input held nothing usable (nobody, no hands, implausible
    landmarks; see :func:`edge_slr.recognition.options.landmark_warnings`): the glosses of such an
    input are not a recognition of signing.
    """

    glosses: tuple[RecognizedGloss, ...]
    corrected: tuple[str, ...] | None
    timings: Timings
    num_frames: int
    final: bool = True
    stable: int = 0
    correction: Any = None  # the corrector's Correction: what each stage proposed and kept
    warnings: tuple[str, ...] = ()  # offline recognition: nothing usable detected in the input
    # what recognize_video / process_frame extracted (for overlays); not compared, not in to_dict()
    landmarks: LandmarkSequence | None = field(default=None, repr=False, compare=False)

    @property
    def recognized(self) -> tuple[str, ...]:
        return tuple(g.gloss for g in self.glosses)

    @property
    def sentence(self) -> str:
        """The corrected glosses when a corrector ran, else the recognised ones."""
        return " ".join(self.corrected if self.corrected is not None else self.recognized)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sentence": self.sentence,
            "recognized": list(self.recognized),
            "corrected": None if self.corrected is None else list(self.corrected),
            "glosses": [g.to_dict() for g in self.glosses],
            "final": self.final,
            "stable": self.stable,
            "num_frames": self.num_frames,
            "timings": self.timings.to_dict(),
            "correction": None if self.correction is None else self.correction.to_dict(),
            "warnings": list(self.warnings),
        }


def ms_since(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.perf_counter()`` value)."""
    return (time.perf_counter() - started) * 1000.0
