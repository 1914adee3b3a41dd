"""Verification of a converted student against its FP32 PyTorch reference.

Every conversion ends here; a model that fails is not given a sidecar and the conversion raises
:class:`ConversionError` saying why.

- FP32 targets: max |logit difference| <= ``max_abs_diff`` (1e-3) on inputs of several lengths
  (T from the receptive field to a few hundred frames), and on the held-out sequences when a
  dataset is given. FP16-compressed weights: the same, relative to the largest logit (2e-3).
- INT8 targets: on held-out sequences with reference glosses, the greedy decodes of the converted
  model must agree with the reference decodes on at least ``min_agreement`` of their glosses
  (1 - edit errors / glosses, the FP32 decodes taken as reference), and its WER may exceed the
  reference WER by at most ``max_wer_drop`` (percentage points, absolute).

A runner is any callable ``features (T, F) float32 -> logits (T', V)`` for one sequence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edge_slr.errors import EdgeSLRError, InputError

logger = logging.getLogger(__name__)

Runner = Callable[[np.ndarray], np.ndarray]
DEFAULT_LENGTHS = (0, 64, 150, 300)  # 0 stands for the model's minimum input length


class ConversionError(EdgeSLRError):
    """A conversion failed or its result did not pass verification; the message says why."""

    def __init__(self, message: str, report: VerificationReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class VerifyConfig:
    max_abs_diff: float = 1e-3
    max_rel_diff_fp16: float = 2e-3  # FP16-compressed weights: relative to the largest logit
    max_wer_drop: float = 0.5  # WER percentage points, absolute
    min_agreement: float = 0.95  # gloss-level agreement of converted and reference decodes
    lengths: tuple[int, ...] = DEFAULT_LENGTHS
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.max_abs_diff > 0:
            raise InputError(f"max_abs_diff must be > 0, got {self.max_abs_diff}")
        if not 0 <= self.max_wer_drop <= 100:
            raise InputError(
                f"max_wer_drop must be in [0, 100] (WER points), got {self.max_wer_drop}"
            )
        if not 0 <= self.min_agreement <= 1:
            raise InputError(f"min_agreement must be in [0, 1], got {self.min_agreement}")
        object.__setattr__(self, "lengths", tuple(int(t) for t in self.lengths))


@dataclass(frozen=True)
class VerificationReport:
    mode: str  # "fp32"/"fp16" (logit closeness) or "int8" (decodes and WER)
    passed: bool
    reason: str  # why it failed ("" when it passed)
    thresholds: dict[str, float]
    max_abs_diff: float | None = None  # over all checked inputs
    max_rel_diff: float | None = None  # max_abs_diff / largest |reference logit|
    diff_by_length: dict[str, float] = field(default_factory=dict)  # T -> max |diff|
    sequences: int = 0  # held-out sequences compared
    agreement: float | None = None  # gloss-level agreement with the reference decodes
    sentence_agreement: float | None = None  # share of sequences decoded identically
    wer_reference: float | None = None  # percent
    wer_converted: float | None = None
    wer_drop: float | None = None  # WER points (converted - reference)
    wer_resolution: float | None = None  # WER points one gloss error is worth on this set
    heldout: dict[str, Any] | None = None  # SequenceSet.summary()
    runtime: dict[str, Any] | None = None  # Runtime.settings of what ran the converted model

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Reference:
    """The FP32 PyTorch reference outputs, computed once and shared by all checks."""

    model: Any  # torch module: features (B, T, F) -> logits (B, T', V)
    min_length: int
    feature_dim: int
    heldout: Any | None = None  # SequenceSet
    _cache: dict[int, np.ndarray] = field(default_factory=dict)
    _heldout_logits: list[np.ndarray] | None = None

    def __call__(self, features: np.ndarray) -> np.ndarray:
        torch = _torch()
        with torch.no_grad():
            return self.model(torch.from_numpy(features[None])).numpy()[0]

    def probe_inputs(self, lengths: Sequence[int], seed: int) -> dict[int, np.ndarray]:
        """Inputs of the given lengths: slices of held-out features when there are some (real
        feature statistics), else seeded standard-normal features."""
        rng = np.random.default_rng(seed)
        out = {}
        pool = (
            np.concatenate([s.features for s in self.heldout.sequences]) if self.heldout else None
        )
        for t in lengths:
            t = max(int(t) or self.min_length, self.min_length)
            if pool is not None and len(pool) >= t:
                start = int(rng.integers(0, len(pool) - t + 1))
                out[t] = np.ascontiguousarray(pool[start : start + t])
            else:
                out[t] = rng.standard_normal((t, self.feature_dim)).astype(np.float32)
        return out

    def heldout_logits(self) -> list[np.ndarray]:
        if self._heldout_logits is None:
            self._heldout_logits = [self(s.features) for s in self.heldout.sequences]
        return self._heldout_logits


def _torch() -> Any:
    from edge_slr._optional import require

    return require("torch", "the FP32 reference of a conversion")


def decode_glosses(logits: np.ndarray, labels: Sequence[str]) -> tuple[str, ...]:
    """Greedy CTC decode of one sequence's logits into glosses."""
    from edge_slr.decoding import greedy_decode, log_softmax

    result = greedy_decode(log_softmax(logits.astype(np.float64)), blank=0)
    return tuple(labels[t] for t in result.tokens)


def _wer_percent(hypotheses: dict[str, tuple[str, ...]], heldout: Any) -> float:
    from edge_slr.metrics import score

    return 100.0 * score(hypotheses, heldout.references, corpus=heldout.corpus).wer


def compare_logits(
    run: Runner, reference: Reference, config: VerifyConfig, *, fp16: bool = False
) -> VerificationReport:
    """FP32 check: max |logit diff| at several lengths (and on held-out sequences).

    ``fp16`` (FP16-compressed weights): weight rounding moves logits in proportion to their
    size, so the bound is relative, ``max |diff| <= max_rel_diff_fp16 * max |logit|``.
    """
    diffs: dict[str, float] = {}
    largest = 0.0
    for t, features in reference.probe_inputs(config.lengths, config.seed).items():
        expected = reference(features)
        largest = max(largest, float(np.abs(expected).max()))
        diffs[str(t)] = _max_diff(_call(run, features, f"T={t}"), expected, f"T={t}")
    worst_heldout = None
    if reference.heldout is not None:
        pairs = list(zip(reference.heldout.sequences, reference.heldout_logits(), strict=True))
        largest = max([largest] + [float(np.abs(ref).max()) for _, ref in pairs])
        worst_heldout = max(_max_diff(_call(run, s.features, s.id), ref, s.id) for s, ref in pairs)
    worst = max([*diffs.values(), worst_heldout or 0.0])
    bound = config.max_rel_diff_fp16 * largest if fp16 else config.max_abs_diff
    passed = worst <= bound
    by_length = ", ".join(f"T={k}: {v:.2g}" for k, v in diffs.items())
    held = f"; held-out: {worst_heldout:.2g}" if worst_heldout is not None else ""
    what = f"{config.max_rel_diff_fp16:g} x max |logit| {largest:.3g}" if fp16 else ""
    reason = (
        ""
        if passed
        else (
            f"max |logit diff| {worst:.3g} exceeds {bound:.3g} {what}(by length: {by_length}{held})"
        )
    )
    thresholds = (
        {"max_rel_diff": config.max_rel_diff_fp16}
        if fp16
        else {"max_abs_diff": config.max_abs_diff}
    )
    return VerificationReport(
        mode="fp16" if fp16 else "fp32",
        passed=passed,
        reason=reason,
        thresholds=thresholds,
        max_abs_diff=worst,
        max_rel_diff=worst / largest if largest else None,
        diff_by_length=diffs,
        sequences=len(reference.heldout) if reference.heldout is not None else 0,
        heldout=reference.heldout.summary() if reference.heldout is not None else None,
    )


def _call(run: Runner, features: np.ndarray, what: str) -> np.ndarray:
    """Run the converted model; an engine error becomes a ConversionError saying on what input.

    (An exporter that fixed the time axis at export makes the engine reject other lengths.)
    """
    try:
        return np.asarray(run(features))
    except Exception as err:  # each engine raises its own types
        raise ConversionError(
            f"the converted model failed on {what} ({features.shape[0]} frames): "
            f"{type(err).__name__}: {str(err)[:300]}"
        ) from err


def _max_diff(got: np.ndarray, expected: np.ndarray, what: str) -> float:
    got = np.asarray(got)
    if got.shape != expected.shape:
        # The classic symptom of an exporter that fixed T at export time: fail, and say so.
        logger.warning(
            "%s: converted model gave shape %s, the reference %s", what, got.shape, expected.shape
        )
        return float("inf")
    return float(np.abs(got.astype(np.float64) - expected).max())


def gloss_agreement(pairs: Sequence[tuple[Sequence[str], Sequence[str]]]) -> float:
    """1 - (S + D + I) / N of converted decodes scored against the reference decodes."""
    from edge_slr.scoring.align import align

    errors = total = 0
    for reference, converted in pairs:
        result = align(tuple(reference), tuple(converted))
        errors += result.substitutions + result.deletions + result.insertions
        total += len(reference)
    if total == 0:
        return 1.0 if errors == 0 else 0.0
    return max(0.0, 1.0 - errors / total)


def compare_decodes(
    run: Runner, reference: Reference, labels: Sequence[str], config: VerifyConfig
) -> VerificationReport:
    """INT8 check: gloss agreement with the reference decodes and WER drop, held-out sequences.

    ``agreement`` is gloss-level (1 - edit errors / glosses of the FP32 decodes, as a WER with the
    FP32 decode as reference); ``sentence_agreement`` the share of sequences decoded identically.
    """
    heldout = reference.heldout
    if heldout is None or len(heldout) == 0:
        raise InputError("INT8 verification needs held-out sequences with reference glosses")
    ref_hyps, hyps = {}, {}
    for seq, ref_logits in zip(heldout.sequences, reference.heldout_logits(), strict=True):
        ref_hyps[seq.id] = decode_glosses(ref_logits, labels)
        logits = np.asarray(_call(run, seq.features, seq.id))
        if logits.shape != ref_logits.shape:
            raise ConversionError(
                f"converted model returned logits of shape {logits.shape} for {seq.id}, "
                f"the reference {ref_logits.shape}"
            )
        hyps[seq.id] = decode_glosses(logits, labels)
    same = sum(hyps[k] == ref_hyps[k] for k in hyps)
    agreement = gloss_agreement([(ref_hyps[k], hyps[k]) for k in hyps])
    wer_ref, wer_conv = _wer_percent(ref_hyps, heldout), _wer_percent(hyps, heldout)
    drop = wer_conv - wer_ref
    glosses = sum(len(s.glosses) for s in heldout.sequences)
    resolution = 100.0 / max(glosses, 1)
    problems = []
    if agreement < config.min_agreement:
        problems.append(
            f"the decodes agree with the FP32 reference on {agreement:.1%} of its glosses "
            f"(need {config.min_agreement:.0%}; {same}/{len(heldout)} sequences identical)"
        )
    if drop > config.max_wer_drop:
        problems.append(
            f"WER rose from {wer_ref:.2f}% to {wer_conv:.2f}% (+{drop:.2f} points; "
            f"allowed {config.max_wer_drop:g}; one error is {resolution:.2f} points on these "
            f"{glosses} reference glosses)"
        )
    return VerificationReport(
        mode="int8",
        passed=not problems,
        reason="; ".join(problems),
        thresholds={"max_wer_drop": config.max_wer_drop, "min_agreement": config.min_agreement},
        sequences=len(heldout),
        agreement=agreement,
        sentence_agreement=same / len(heldout),
        wer_reference=wer_ref,
        wer_converted=wer_conv,
        wer_drop=drop,
        wer_resolution=resolution,
        heldout=heldout.summary(),
    )
