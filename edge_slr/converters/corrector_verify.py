"""Verification of a converted corrector against its PyTorch stages.

FP32 graphs must match the encoder memory and decoder log-probabilities within ``max_abs_diff``
at several (source, target) lengths, the first of length 1 (the case that exposed a stale
OpenVINO kernel cache, see corrector_export); INT8 graphs record these differences without a
bound. With held-out noisy sentences (:mod:`edge_slr.converters.corrector_data`), greedy
corrections through all stages (gates off, so every decoding step counts) must equal the
reference's (FP32), or (INT8) agree on ``min_agreement`` of the reference's glosses while the
corrected WER rises by at most ``max_wer_drop`` points. The WER of the noisy inputs themselves is
recorded as ``heldout.wer_input``. The converted graphs run as deployed: through
:class:`edge_slr.runtimes.RuntimeCorrector`, with the sidecar the conversion is about to write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_slr._optional import require
from edge_slr.converters.corrector_data import HeldoutSentences
from edge_slr.converters.corrector_source import CorrectorSource
from edge_slr.converters.job import Job
from edge_slr.converters.verify import VerificationReport, gloss_agreement
from edge_slr.sidecar import ModelDescription

PROBE_LENGTHS = ((1, 1), (5, 3), (12, 9), (30, 20))  # (source, target) token counts
Encode = Any  # src (1, S) int64 -> memory (1, S, d)
Decode = Any  # tgt (1, T), memory, src -> log_probs (1, T, V)


def torch_stage(stage: Any) -> tuple[Encode, Decode]:
    """Numpy encode/decode callables over a PyTorch stage (the reference of the probes)."""
    torch = require("torch", "the corrector reference")

    def encode(src: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return stage.encode(torch.from_numpy(src)).numpy()

    def decode(tgt: np.ndarray, memory: np.ndarray, src: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            tensors = (torch.from_numpy(tgt), torch.from_numpy(memory), torch.from_numpy(src))
            return stage.decode(*tensors).numpy()

    return encode, decode


def probe_diffs(pairs: list[Any], references: list[Any], vocab: Any, seed: int) -> dict[str, float]:
    """Max |diff| of encoder memory and decoder logits per (S, T), over all stages."""
    rng = np.random.default_rng(seed)
    glosses = np.array(list(vocab.gloss_ids))
    diffs: dict[str, float] = {}
    for (enc, dec), (ref_enc, ref_dec) in zip(pairs, references, strict=True):
        for s, t in PROBE_LENGTHS:
            src = rng.choice(glosses, size=(1, s)).astype(np.int64)
            tgt = np.concatenate([[[vocab.bos_id]], rng.choice(glosses, size=(1, t - 1))], 1)
            tgt = tgt.astype(np.int64)
            mem = ref_enc(src)
            diff = max(_diff(enc(src), mem), _diff(dec(tgt, mem, src), ref_dec(tgt, mem, src)))
            key = f"S={s},T={t}"
            diffs[key] = max(diffs.get(key, 0.0), diff)
    return diffs


def corrections(corrector: Any, data: HeldoutSentences, vocab: Any) -> dict[str, tuple[str, ...]]:
    """Greedy corrections of each held-out sentence through every stage, gates off (so every
    decoding step counts), by a torch or a runtime corrector's own ``correct``."""
    return {
        sid: tuple(corrector.correct(vocab.decode(noisy), gate=False).glosses)
        for sid, noisy, _ in data.sentences
    }


def verify_corrector(
    job: Job, description: ModelDescription, model_path: Path
) -> VerificationReport:
    """Probe differences and held-out corrections of the written graphs, run by
    :class:`edge_slr.runtimes.RuntimeCorrector` with ``description`` as their sidecar."""
    from edge_slr.runtimes.corrector import RuntimeCorrector

    reference, config = CorrectorSource.of(job).corrector, job.verify_config
    data = job.heldout if isinstance(job.heldout, HeldoutSentences) else None
    vocab = reference.vocab
    with RuntimeCorrector(model_path, description) as converted:
        pairs = [(stage.encode, stage.decode) for stage in converted.stages]
        diffs = probe_diffs(pairs, [torch_stage(s) for s in reference.stages], vocab, config.seed)
        settings = converted.stages[0].encoder.settings
        held = _heldout_scores(reference, converted, data, vocab) if data else {}
    worst = max(diffs.values())
    fp32 = not job.spec.int8
    problems = []
    if fp32 and worst > config.max_abs_diff:
        problems.append(f"max |diff| {worst:.3g} exceeds {config.max_abs_diff:g} ({diffs})")
    if data is not None:
        needed = 1.0 if fp32 else config.min_agreement
        if held["agreement"] < needed:
            problems.append(
                f"held-out corrections agree with the reference on {held['agreement']:.1%} "
                f"of its glosses (need {needed:.0%}; {held['sentence_agreement']:.0%} of "
                f"{len(data)} sentences identical)"
            )
        if not fp32 and held["wer_drop"] > config.max_wer_drop:
            problems.append(
                f"corrected WER rose from {held['wer_reference']:.2f}% to "
                f"{held['wer_converted']:.2f}%"
            )
    elif not fp32:
        problems.append("INT8 verification needs held-out sentences (--calibration DIR)")
    thresholds = (
        {"max_abs_diff": config.max_abs_diff}
        if fp32
        else {"max_wer_drop": config.max_wer_drop, "min_agreement": config.min_agreement}
    )
    wer_input = held.pop("wer_input", None)
    return VerificationReport(
        mode="fp32" if fp32 else "int8",
        passed=not problems,
        reason="; ".join(problems),
        thresholds=thresholds,
        max_abs_diff=worst,
        diff_by_length=diffs,
        sequences=len(data) if data else 0,
        heldout=data.summary(wer_input) if data else None,
        runtime=settings,
        **held,
    )


def _heldout_scores(
    reference: Any, converted: Any, data: HeldoutSentences, vocab: Any
) -> dict[str, Any]:
    from edge_slr.metrics import score

    ref_out = corrections(reference, data, vocab)
    conv_out = corrections(converted, data, vocab)
    refs = {sid: tuple(g) for sid, _, g in data.sentences}
    noisy = {sid: tuple(vocab.decode(ids)) for sid, ids, _ in data.sentences}
    held: dict[str, Any] = {
        "agreement": gloss_agreement([(ref_out[k], conv_out[k]) for k in ref_out]),
        "sentence_agreement": sum(ref_out[k] == conv_out[k] for k in ref_out)
        / max(len(ref_out), 1),
        "wer_reference": 100 * score(ref_out, refs, corpus="plain").wer,
        "wer_converted": 100 * score(conv_out, refs, corpus="plain").wer,
        "wer_input": 100 * score(noisy, refs, corpus="plain").wer,
    }
    held["wer_drop"] = held["wer_converted"] - held["wer_reference"]
    held["wer_resolution"] = 100 / max(sum(len(g) for g in refs.values()), 1)
    return held


def _diff(got: Any, expected: np.ndarray) -> float:
    got = np.asarray(got)
    if got.shape != expected.shape:
        return float("inf")
    got = got.astype(np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf: equal infinities count as 0 below
        diff = np.where(got == expected, 0.0, np.abs(got - expected))
    # NaN where the reference is finite is the worst difference, not one that max() skips
    # (Python's max(0.0, nan) is 0.0: a NaN-producing graph must not read as exact).
    return float(np.where(np.isnan(diff) & ~np.isnan(expected), np.inf, diff).max())
