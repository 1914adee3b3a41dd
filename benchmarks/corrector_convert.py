"""The gloss corrector converted to every target: size, conversion time, verification, latency.

Converts a trained corrector to each target of the converters' table (each conversion verified
as usual: FP32 log-probabilities at several lengths and identical held-out corrections; INT8
correction agreement and WER drop on held-out noisy sentences), then times one greedy dual-stage
correction per sentence (gates off, batch 1, one thread) on held-out sentences of 10-30 glosses,
for each artifact and for the PyTorch reference, round-robin.

    python benchmarks/corrector_convert.py --model runs/corrector-phoenix2014t \
        --data ../shared/data/phoenix2014t

Results: benchmarks/results/corrector_convert.{json,md} .

    python benchmarks/corrector_convert.py --smoke    # CI: a tiny corrector trained now, TFLite

The smoke run trains a tiny corrector (corrector_eval.smoke_corrector: 40 steps on 200
PHOENIX-2014-T train sentences, needs ../shared/data), converts it to the TFLite target only (the
fastest conversion; --targets picks others), verifies on 20 held-out sentences, times 3 sentences
once and compares the gated corrections; it writes corrector_convert_smoke.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.convert_speed import machine  # noqa: E402
from edge_slr.converters import TARGETS, ConversionError, convert  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def runtime_corrector(result: Any, threads: int) -> Any:
    """The artifact's graphs on its own engine, as deployed (edge_slr.runtimes)."""
    from edge_slr.runtimes.corrector import RuntimeCorrector

    return RuntimeCorrector(result.model_path, threads=threads)


def latency(engines: dict[str, Any], inputs: list[tuple[str, ...]], rounds: int):
    """Wall and process-CPU ms per sentence (median, p90) of an ungated greedy correction for
    each engine, round-robin; on a shared machine the CPU time is the steadier of the two."""
    wall: dict[str, list[float]] = {k: [] for k in engines}
    cpu: dict[str, list[float]] = {k: [] for k in engines}
    for _ in range(rounds):
        for key, corrector in engines.items():
            for glosses in inputs:
                start, start_cpu = time.perf_counter(), time.process_time()
                corrector.correct(glosses, gate=False)
                cpu[key].append(1000 * (time.process_time() - start_cpu))
                wall[key].append(1000 * (time.perf_counter() - start))
    return {k: {**_stats(wall[k], "wall"), **_stats(cpu[k], "cpu")} for k in engines}


def _stats(values: list[float], prefix: str) -> dict[str, float]:
    if not values:
        return {}
    p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
    return {f"{prefix}_p50_ms": statistics.median(values), f"{prefix}_p90_ms": p90}


def run(
    model: Path, data: Path, out: Path, heldout: int, rounds: int, threads: int,
    latency_sentences: int, targets: tuple[str, ...] = tuple(TARGETS),
) -> dict:  # fmt: skip
    import torch

    from edge_slr.training.corrector import load_corrector

    host = machine()  # the load average at the start
    torch.set_num_threads(threads)
    corrector = load_corrector(model)
    rows, engines = {}, {"torch": corrector}
    sentences = _inputs(data, corrector, latency_sentences)
    for target in targets:
        started = time.perf_counter()
        try:
            result = convert(model, target, out / target, calibration=data, heldout_size=heldout)
        except ConversionError as err:
            rows[target] = {"error": str(err)}
            continue
        seconds = time.perf_counter() - started
        v = result.verification
        rows[target] = {
            "seconds": round(seconds, 1),
            "size_bytes": result.size_bytes,
            "files": {g.file.name: g.file.size for g in result.description.graphs}
            | {g.weights.name: g.weights.size for g in result.description.graphs if g.weights},
            "precision": result.description.precision.weights,
            "kept_fp32": list(result.description.precision.kept_fp32),
            "verification": {
                k: getattr(v, k)
                for k in (
                    "mode",
                    "max_abs_diff",
                    "agreement",
                    "sentence_agreement",
                    "wer_reference",
                    "wer_converted",
                    "wer_drop",
                    "sequences",
                )
            }  # fmt: skip
            | {"wer_input": (v.heldout or {}).get("wer_input")},
        }
        engines[target] = runtime_corrector(result, threads)
    timing = latency(engines, sentences, rounds)
    for key, row in rows.items():
        row["latency"] = timing.get(key)
    return {
        "model": str(model),
        "data": str(data),
        "threads": threads,
        "machine": host | {"load_at_end": os.getloadavg()},
        "torch_latency": timing["torch"],
        "latency_sentences": len(sentences),
        "targets": rows,
    }


def _inputs(data: Path, corrector: Any, limit: int) -> list[tuple[str, ...]]:
    """Dev sentences of 10-30 glosses (the issue's 10-30 gloss latency target)."""
    from edge_slr.converters.corrector_data import split_sentences

    sentences = split_sentences(data, "dev", "phoenix2014t")
    picked = [g for _, g in sentences if 10 <= len(g) <= 30][:limit]
    return [tuple(corrector.vocab.decode(corrector.vocab.encode(g)[0])) for g in picked]


def gated(model: Path, data: Path, out: Path, heldout: int, threads: int) -> dict[str, Any]:
    """Gated corrections (what a user gets) of every kept artifact through the runtime
    registry's ``RuntimeCorrector``, compared with the torch ``Corrector`` on the converter's
    held-out noisy sentences."""
    from edge_slr.converters import get_target
    from edge_slr.converters.corrector_data import attach_corrector_data
    from edge_slr.converters.corrector_source import load_corrector_source
    from edge_slr.converters.job import ConvertOptions, Job
    from edge_slr.metrics import score
    from edge_slr.runtimes.corrector import RuntimeCorrector

    source = load_corrector_source(model)
    job = Job(get_target("onnx"), source, ConvertOptions(heldout_size=heldout), out)
    attach_corrector_data(job, data)
    vocab = source.corrector.vocab
    sentences = job.heldout.sentences  # type: ignore[union-attr]
    noisy = {sid: tuple(vocab.decode(ids)) for sid, ids, _ in sentences}
    refs = {sid: tuple(g) for sid, _, g in sentences}
    ids = list(noisy)
    want = dict(
        zip(
            ids,
            (c.glosses for c in source.corrector.correct_batch([noisy[i] for i in ids])),
            strict=True,
        )
    )
    rows: dict[str, Any] = {"torch": {"wer": 100 * score(want, refs, corpus="plain").wer}}
    rows["noisy input"] = {"wer": 100 * score(noisy, refs, corpus="plain").wer}
    for target in TARGETS:
        sidecars = sorted((out / target).glob("*.json"))
        if not sidecars:
            continue
        with RuntimeCorrector(sidecars[0].with_suffix(""), threads=threads) as corrector:
            got = {i: corrector.correct(noisy[i]).glosses for i in ids}
        rows[target] = {
            "wer": 100 * score(got, refs, corpus="plain").wer,
            "identical": sum(got[i] == want[i] for i in ids) / len(ids),
        }
    return {"sentences": len(ids), "rows": rows, "load_at_end": os.getloadavg()}


def _load(values: list[float] | None) -> str:
    return f"{values[0]:.1f}" if values else "not recorded"


def markdown(report: dict) -> str:
    m, t = report["machine"], report["torch_latency"]
    lines = [
        f"# Corrector conversion: {report['model']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, ISA {' '.join(m['isa'])}; load average "
        f"{_load(m.get('load_at_start'))} at start, {_load(m['load_at_end'])} at end (shared machine"
        f"{'; ' + m['load_note'] if m.get('load_note') else ''}). "
        f"Held-out/calibration data: {report['data']}. Latency: greedy dual-stage correction, "
        f"gates off, batch 1, {report['threads']} thread(s), {report['latency_sentences']} dev "
        "sentences of 10-30 glosses, round-robin, wall and process-CPU ms (one step-by-step "
        "decoder call per output token; benchmarks/corrector_speed.py measures faster decoding); "
        f"torch eager: wall p50 {t['wall_p50_ms']:.1f} ms, CPU p50 {t['cpu_p50_ms']:.1f} ms.",
        "",
        "| target | precision | size MB | convert s | max abs diff | agreement | identical "
        "| WER noisy | WER ref | WER conv | drop | wall p50 ms | CPU p50 ms | CPU p90 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for target, row in report["targets"].items():
        if "error" in row:
            lines.append(f"| {target} | failed: {row['error'][:200]} |")
            continue
        v, lat = row["verification"], row["latency"] or {}
        lines.append(
            f"| {target} | {row['precision']} | {row['size_bytes'] / 1e6:.2f} | {row['seconds']:.0f} "
            f"| {v['max_abs_diff']:.2g} | {v['agreement']:.4f} | {v['sentence_agreement']:.3f} "
            f"| {v['wer_input']:.2f} | {v['wer_reference']:.2f} | {v['wer_converted']:.2f} "
            f"| {v['wer_drop']:+.2f} | {lat.get('wall_p50_ms', float('nan')):.2f} "
            f"| {lat.get('cpu_p50_ms', float('nan')):.2f} | {lat.get('cpu_p90_ms', float('nan')):.2f} |"
        )
    if report.get("gated"):
        g = report["gated"]
        lines += [
            "",
            f"Gated corrections (do-no-harm gates on, as `Corrector.correct`), {g['sentences']} "
            "held-out noisy sentences, through `edge_slr.runtimes.corrector.RuntimeCorrector` "
            "on each artifact; 'identical' = share of sentences equal to torch's:",
            "",
            "| model | WER % | identical |",
            "|---|---|---|",
        ]
        for key, row in g["rows"].items():
            same = f"{row['identical']:.3f}" if "identical" in row else ""
            lines.append(f"| {key} | {row['wer']:.2f} | {same} |")
    lines += ["", "kept in floating point:", ""]
    for target, row in report["targets"].items():
        if "kept_fp32" in row and row["kept_fp32"]:
            lines.append(f"- {target}: {', '.join(row['kept_fp32'])}")
    return "\n".join(lines) + "\n"


def smoke(args: argparse.Namespace) -> dict[str, Any]:
    """The same conversion, timing and gated comparison of a tiny corrector trained now (CI)."""
    from benchmarks.corrector_eval import smoke_corrector
    from edge_slr.paths import shared_data_dir

    shared = shared_data_dir()
    data = args.data or (shared / "phoenix2014t" if shared else None)
    if data is None or not data.is_dir():
        raise SystemExit("--smoke needs ../shared/data/phoenix2014t (or --data)")
    targets = tuple(args.targets or ("tflite",))
    with tempfile.TemporaryDirectory(prefix="corrector-convert-smoke-") as tmp:
        model = smoke_corrector(Path(tmp) / "model", data)
        out = args.out or Path(tmp) / "artifacts"
        report = run(model, data, out, 20, 1, args.threads, 3, targets)
        report["gated"] = gated(model, data, out, 20, args.threads)
    report["smoke"] = "tiny corrector trained for 40 steps on 200 train sentences (CI)"
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "runs" / "corrector-phoenix2014t")
    parser.add_argument("--data", type=Path, default=None, help="PHOENIX-2014-T folder")
    parser.add_argument("--heldout", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--latency-sentences", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None, help="keep the artifacts here")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the results")
    parser.add_argument("--targets", nargs="+", choices=list(TARGETS), help="default: all")
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny corrector trained now, TFLite only (CI)"
    )
    parser.add_argument(
        "--gated-only",
        action="store_true",
        help="only add the gated comparison, over the artifacts kept in --out, to the results",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = args.results
    if args.smoke:
        report = smoke(args)
        results.mkdir(parents=True, exist_ok=True)
        (results / "corrector_convert_smoke.json").write_text(json.dumps(report, indent=1) + "\n")
        (results / "corrector_convert_smoke.md").write_text(markdown(report))
        print(markdown(report))
        return 0
    data = args.data or ROOT.parent / "shared" / "data" / "phoenix2014t"
    targets = tuple(args.targets or TARGETS)
    if args.gated_only:
        path = results / "corrector_convert.json"
        report = json.loads(path.read_text())
        report["gated"] = gated(args.model, data, args.out, args.heldout, args.threads)
        path.write_text(json.dumps(report, indent=1) + "\n")
        (results / "corrector_convert.md").write_text(markdown(report))
        print(markdown(report))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        report = run(args.model, data, args.out or Path(tmp), args.heldout, args.rounds,
                     args.threads, args.latency_sentences, targets)  # fmt: skip
    results.mkdir(parents=True, exist_ok=True)
    (results / "corrector_convert.json").write_text(json.dumps(report, indent=1) + "\n")
    (results / "corrector_convert.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
