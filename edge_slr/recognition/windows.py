"""Windows over long input: which output steps each window owns, where they are, its features.

The student is bidirectional, so it cannot emit a gloss frame by frame; long or unbounded input
runs it on overlapping windows of ``window`` frames every ``hop`` frames and *stitches* their
outputs:

    frames   |----------- window k -----------|
                      |----------- window k+1 -----------|
    owned         [margin .. margin+hop)       [margin .. margin+hop)  (in each window's frames)

Each window is trusted only in its middle: it owns the output steps whose share of the input
lies between ``margin`` and ``margin + hop`` frames from its start (the first window owns from the
start, the last one to the end). Owned steps of consecutive windows tile the time axis exactly,
so the stitched log-probabilities form one sequence, as if one model had seen everything, except
that every step had at most ``margin`` frames of context on its edge side.

:class:`WindowPlan` is that geometry for one model, :class:`StepTimes` where a window's steps are
in the input, :func:`glosses_from` turns decoded steps into input frames and times, and
:func:`window_features` computes a window's features with the shoulder normalisation of a given
reference (a stream's running one, :class:`edge_slr.recognition.stream.RunningShoulders`, or a
whole recording's). :mod:`edge_slr.recognition.stream` runs the windows over a stream.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from edge_slr.decoding import DecodeResult
from edge_slr.errors import InputError
from edge_slr.recognition.results import RecognizedGloss
from edge_slr.sidecar import TemporalSpec

Reference = tuple[np.ndarray, float]  # shoulder centre (x, y) and shoulder width


@dataclass(frozen=True)
class WindowPlan:
    """Window geometry for one model (all sizes in input frames)."""

    window: int
    hop: int
    stride: int  # input frames per output step
    lead: int  # frames before a step's own share of the input (centre of its receptive field)
    margin: int  # frames at each window edge left to the neighbours
    temporal: TemporalSpec

    @classmethod
    def for_model(cls, temporal: TemporalSpec, window: int, hop: int) -> WindowPlan:
        stride = temporal.stride
        if window < temporal.min_input_length:
            raise InputError(
                f"window of {window} frames is shorter than the model's receptive field "
                f"({temporal.min_input_length} frames)"
            )
        if window % stride or hop % stride or not 0 < hop <= window:
            raise InputError(
                f"window ({window}) and hop ({hop}) must be multiples of the model's stride "
                f"({stride}) with 0 < hop <= window"
            )
        margin = (window - hop) // 2 // stride * stride
        lead = (temporal.receptive_field - stride) // 2 if temporal.frames_lost_per_block else 0
        plan = cls(window, hop, stride, lead, margin, temporal)
        last_owned = (margin + hop) // stride
        if last_owned > plan.steps(window):
            largest = next(
                h for h in range(hop, 0, -stride)
                if ((window - h) // 2 // stride * stride + h) // stride <= plan.steps(window)
            )  # fmt: skip
            raise InputError(
                f"hop {hop} leaves part of each window to no window: a {window}-frame window "
                f"gives {plan.steps(window)} steps but must own steps up to {last_owned}; "
                f"use hop <= {largest} or a longer window"
            )
        return plan

    def steps(self, frames: int) -> int:
        return self.temporal.output_length(frames)

    def owned(self, start: int, frames: int, next_step: int, last: bool) -> tuple[int, int]:
        """Local step range ``[lo, hi)`` a window owns; ``next_step`` is the first unowned step."""
        first = start // self.stride
        lo = max(next_step - first, 0)
        hi = self.steps(frames) if last else (self.margin + self.hop) // self.stride
        return lo, max(lo, min(hi, self.steps(frames)))

    def final_start(self, total: int) -> int:
        """Start of the window that ends the input (aligned to the stride)."""
        return max(0, (total - self.window) // self.stride * self.stride)


def blank_where_nobody(log_probs: np.ndarray, present: np.ndarray, plan: WindowPlan) -> np.ndarray:
    """Force blank at steps whose share of the input shows nobody (``present``: per frame).

    Missing landmarks are held at their last position by the feature presets, which a model
    can read as a still signer; with no person in view nothing can be signed.
    """
    share = np.arange(len(log_probs)) * plan.stride + plan.lead
    seen = np.concatenate([[0], np.cumsum(present)])
    first = np.clip(share, 0, len(present))
    last = np.clip(share + plan.stride, 0, len(present))
    empty = seen[last] == seen[first]
    if empty.any():
        log_probs = log_probs.copy()
        log_probs[empty] = -1e9
        log_probs[empty, 0] = 0.0
    return log_probs


@dataclass(frozen=True)
class StepTimes:
    """Per output step: its input frames and times (arrays of equal length)."""

    frame_start: np.ndarray
    frame_end: np.ndarray
    ms_start: np.ndarray
    ms_end: np.ndarray

    @classmethod
    def for_window(
        cls, plan: WindowPlan, start: int, timestamps_ms: np.ndarray, lo: int, hi: int
    ) -> StepTimes:
        """Steps ``[lo, hi)`` of a window starting at frame ``start`` with these frame times."""
        frames = len(timestamps_ms)
        local = np.arange(lo, hi) * plan.stride + plan.lead
        first = np.clip(local, 0, frames - 1)
        last = np.clip(local + plan.stride, 1, frames)
        period = float(np.median(np.diff(timestamps_ms))) if frames > 1 else 0.0
        ends = np.where(
            last < frames, timestamps_ms[np.minimum(last, frames - 1)], timestamps_ms[-1] + period
        )
        return cls(first + start, last + start, timestamps_ms[first].astype(float), ends)

    @staticmethod
    def concat(parts: list[StepTimes]) -> StepTimes:
        return StepTimes(*(np.concatenate([getattr(p, f) for p in parts]) for f in _TIME_FIELDS))

    def slice(self, lo: int, hi: int | None = None) -> StepTimes:
        return StepTimes(*(getattr(self, f)[lo:hi] for f in _TIME_FIELDS))

    def __len__(self) -> int:
        return len(self.frame_start)


_TIME_FIELDS = ("frame_start", "frame_end", "ms_start", "ms_end")


def glosses_from(result: DecodeResult, times: StepTimes) -> list[RecognizedGloss]:
    """Decoded glosses with their step spans turned into input frames and times."""
    out = []
    for g in result.glosses:
        out.append(
            RecognizedGloss(
                gloss=str(g.gloss),
                score=float(g.score),
                start_frame=int(times.frame_start[g.start]),
                end_frame=int(times.frame_end[g.end - 1]),
                start_ms=float(times.ms_start[g.start]),
                end_ms=float(times.ms_end[g.end - 1]),
            )
        )
    return out


def window_features(preset: Any, data: np.ndarray, reference: Reference | None) -> np.ndarray:
    """``preset.features(data)`` with the shoulder normalisation taken from ``reference``.

    Without a reference (or for a preset that does not normalise by the shoulders) the preset
    normalises by ``data`` itself. With ``reference = shoulder_reference(data)`` the result is
    exactly ``preset.features(data)``.
    """
    if reference is None or preset.normalization != "shoulders":
        return preset.features(data)
    centre, scale = reference
    coords = data[..., :3].astype(np.float64)
    coords[..., :2] -= centre
    coords /= scale
    normalised = np.concatenate([coords.astype(np.float32), data[..., 3:]], axis=-1)
    return replace(preset, normalization="none").features(normalised)
