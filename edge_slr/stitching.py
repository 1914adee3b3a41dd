"""Window geometry, stitching and incremental CTC decoding of a stream's window outputs.

:class:`WindowPlan` says which output steps each window owns, :class:`StepTimes` where those
steps are in the input, :class:`StreamDecoder` decodes the stitched steps into sentences; see
:mod:`edge_slr.streaming` (which re-exports these names) for the scheme.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge_slr.decoding import DecodeResult, greedy_decode
from edge_slr.errors import InputError
from edge_slr.results import RecognizedGloss
from edge_slr.sidecar import TemporalSpec

Decoder = Callable[[np.ndarray], DecodeResult]


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


class StreamDecoder:
    """Incremental CTC decoding of stitched window outputs (see the module doc).

    ``push`` takes owned log-prob rows in time order and returns the sentences it finished;
    ``partial`` the current sentence with a tentative decode of what is still pending.
    """

    def __init__(
        self,
        decode: Decoder,
        labels: tuple[str, ...],
        blank: int = 0,
        pause_steps: int | None = None,
        max_pending_steps: int = 256,
        max_sentence_glosses: int | None = None,
    ) -> None:
        self._decode = decode
        self._labels = labels
        self._blank = blank
        self._pause_steps = pause_steps
        self._max_pending = max_pending_steps
        self._max_glosses = max_sentence_glosses
        self.reset()

    def reset(self) -> None:
        self._rows: list[np.ndarray] = []
        self._times: list[StepTimes] = []
        self._pending = 0  # steps in _rows
        self._pending_tokens = False  # a non-blank best label among them
        self._blank_run = 0
        self._sentence: list[RecognizedGloss] = []
        self._tail: tuple[np.ndarray, StepTimes] | None = None
        self._partial: tuple[tuple[RecognizedGloss, ...], int] | None = None  # cached

    @property
    def sentence(self) -> tuple[RecognizedGloss, ...]:
        """Glosses of the current sentence that no later input can change."""
        return tuple(self._sentence)

    def push(
        self, rows: np.ndarray, times: StepTimes, tail: tuple[np.ndarray, StepTimes] | None = None
    ) -> list[tuple[RecognizedGloss, ...]]:
        """Add owned steps; ``tail`` (the window's unowned later steps) only feeds ``partial``."""
        finished = []
        self._tail = tail
        self._partial = None
        best = rows.argmax(axis=1) if len(rows) else np.zeros(0, dtype=int)
        begin = 0
        for i, label in enumerate(best):
            self._blank_run = self._blank_run + 1 if label == self._blank else 0
            self._pending_tokens |= bool(label != self._blank)
            if self._pause_steps is not None and self._blank_run == self._pause_steps:
                self._append(rows[begin : i + 1], times.slice(begin, i + 1))
                begin = i + 1
                done = self._end_sentence()
                if done:
                    finished.append(done)
        self._append(rows[begin:], times.slice(begin))
        self._cut()
        if self._max_glosses is not None and len(self._sentence) >= self._max_glosses:
            finished.append(self._end_sentence(decode_pending=False))
        return finished

    def flush(self) -> tuple[RecognizedGloss, ...]:
        """Decode everything pending and end the sentence (end of input)."""
        self._tail = None
        self._partial = None
        return self._end_sentence()

    def partial(self) -> tuple[tuple[RecognizedGloss, ...], int]:
        """(current sentence + tentative glosses of pending and tail steps, how many are stable)."""
        if self._partial is None:
            self._partial = self._tentative()
        return self._partial

    def _tentative(self) -> tuple[tuple[RecognizedGloss, ...], int]:
        rows, times = list(self._rows), list(self._times)
        if self._tail is not None and len(self._tail[0]):
            rows.append(self._tail[0])
            times.append(self._tail[1])
        stable = tuple(self._sentence)
        if not rows or not sum(len(r) for r in rows):
            return stable, len(stable)
        lp = np.concatenate(rows)
        result = greedy_decode(lp, self._blank, labels=self._labels)  # cheap, once per window
        return stable + tuple(glosses_from(result, StepTimes.concat(times))), len(stable)

    # -- internals ----------------------------------------------------------------------------
    def _append(self, rows: np.ndarray, times: StepTimes) -> None:
        if len(rows):
            self._rows.append(rows)
            self._times.append(times)
            self._pending += len(rows)

    def _take(self, count: int | None = None) -> None:
        """Decode the first ``count`` pending steps (all by default) into the sentence."""
        if not self._rows:
            return
        lp, times = np.concatenate(self._rows), StepTimes.concat(self._times)
        count = len(lp) if count is None else count
        if self._pending_tokens:
            self._sentence += glosses_from(self._decode(lp[:count]), times.slice(0, count))
        rest = lp[count:]
        self._rows, self._times = ([rest], [times.slice(count)]) if len(rest) else ([], [])
        self._pending = len(rest)
        self._pending_tokens = bool(len(rest) and (rest.argmax(axis=1) != self._blank).any())

    def _cut(self) -> None:
        """Decode up to the last blank step once enough is pending (bounded memory)."""
        if self._pending < self._max_pending // 2:
            return
        best = np.concatenate(self._rows).argmax(axis=1)
        blanks = np.flatnonzero(best == self._blank)
        if len(blanks):
            self._take(int(blanks[-1]) + 1)
        elif self._pending >= self._max_pending:
            self._take()  # no pause anywhere: cut anyway rather than grow

    def _end_sentence(self, decode_pending: bool = True) -> tuple[RecognizedGloss, ...]:
        if decode_pending:
            self._take()
        sentence, self._sentence = tuple(self._sentence), []
        return sentence
