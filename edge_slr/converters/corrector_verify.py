"""Verification of a converted corrector against its PyTorch stages.

FP32 graphs must match the encoder memory and decoder log-probabilities within ``max_abs_diff``
at several (source, target) lengths, the first of length 1 (the case that exposed a stale
OpenVINO kernel cache, see corrector_export); INT8 graphs record these differences without a
bound. With held-out noisy sentences (:mod:`edge_slr.converters.corrector_data`), greedy
corrections through all stages (gates off, so every decoding step counts) must equal the
reference's (FP32), or (INT8) agree on ``min_agreement`` of the reference's glosses while the
corrected WER rises by at most ``max_wer_drop`` points. The WER of the noisy inputs themselves is
recorded as ``heldout.wer_input``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_slr._optional import require
from edge_slr.converters.corrector_export import Decode, Encode
from edge_slr.converters.job import Artifact, Job
from edge_slr.converters.verify import VerificationReport, gloss_agreement

PROBE_LENGTHS = ((1, 1), (5, 3), (12, 9), (30, 20))  # (source, target) token counts


def greedy(encode: Encode, decode: Decode, ids: list[int], vocab: Any, dims: Any) -> list[int]:
    """Batch-1 greedy decoding over exported graphs (as training.corrector.decode does)."""
    from edge_slr.training.corrector.decode import output_limit

    limit = output_limit(len(ids), dims)
    src = np.array([ids + [vocab.eos_id]], dtype=np.int64)
    memory = encode(src)
    out = [vocab.bos_id]
    for step in range(limit + 1):
        logits = np.array(decode(np.array([out], dtype=np.int64), memory, src)[0, -1], np.float64)
        logits[[vocab.pad_id, vocab.bos_id]] = -np.inf
        token = vocab.eos_id if step >= limit else int(np.argmax(logits))
        if token == vocab.eos_id:
            break
        out.append(token)
    return out[1:]


def _torch_pair(stage: Any) -> tuple[Encode, Decode]:
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


def corrections(pairs: list[Any], sentences: list[Any], vocab: Any, dims: Any) -> dict:
    """Greedy corrections of each held-out sentence through every stage (no gates)."""
    out = {}
    for sid, noisy, _ in sentences:
        ids = list(noisy)
        for encode, decode in pairs:
            ids = greedy(encode, decode, ids, vocab, dims)
        out[sid] = tuple(vocab.decode(ids))
    return out


def verify_corrector(job: Job, artifact: Artifact) -> VerificationReport:
    from edge_slr.metrics import score

    corrector, config, data = job.source.corrector, job.verify_config, job.reference
    vocab, dims = corrector.vocab, corrector.stages[0].dims
    references = [_torch_pair(stage) for stage in corrector.stages]
    diffs = probe_diffs(artifact.runner, references, vocab, config.seed)
    worst = max(diffs.values())
    fp32 = not job.spec.int8
    problems = []
    if fp32 and worst > config.max_abs_diff:
        problems.append(f"max |diff| {worst:.3g} exceeds {config.max_abs_diff:g} ({diffs})")
    held: dict[str, Any] = {}
    wer_input = None
    if data is not None:
        ref_out = corrections(references, data["sentences"], vocab, dims)
        conv_out = corrections(artifact.runner, data["sentences"], vocab, dims)
        refs = {sid: tuple(g) for sid, _, g in data["sentences"]}
        noisy = {sid: tuple(vocab.decode(ids)) for sid, ids, _ in data["sentences"]}
        same = sum(ref_out[k] == conv_out[k] for k in ref_out)
        wer_input = 100 * score(noisy, refs, corpus="plain").wer
        held = {
            "agreement": gloss_agreement([(ref_out[k], conv_out[k]) for k in ref_out]),
            "sentence_agreement": same / max(len(ref_out), 1),
            "wer_reference": 100 * score(ref_out, refs, corpus="plain").wer,
            "wer_converted": 100 * score(conv_out, refs, corpus="plain").wer,
        }
        held["wer_drop"] = held["wer_converted"] - held["wer_reference"]
        held["wer_resolution"] = 100 / max(sum(len(g) for g in refs.values()), 1)
        needed = 1.0 if fp32 else config.min_agreement
        if held["agreement"] < needed:
            problems.append(
                f"held-out corrections agree with the reference on {held['agreement']:.1%} "
                f"of its glosses (need {needed:.0%}; {same}/{len(ref_out)} identical)"
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
    return VerificationReport(
        mode="fp32" if fp32 else "int8",
        passed=not problems,
        reason="; ".join(problems),
        thresholds=thresholds,
        max_abs_diff=worst,
        diff_by_length=diffs,
        sequences=len(data["sentences"]) if data else 0,
        heldout=_heldout_summary(data, wer_input) if data else None,
        **held,
    )


def _heldout_summary(data: dict[str, Any], wer_input: float | None) -> dict[str, Any]:
    """Where the held-out sentences came from, their noise and the WER of the noisy inputs."""
    keys = ("root", "split", "source", "noise", "seed")
    summary = {"dataset" if k == "root" else k: data[k] for k in keys if k in data}
    summary["wer_input"] = wer_input  # noisy sentences vs references, before any correction
    summary["gates"] = "off: raw greedy corrections are compared"
    return summary


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
