"""Gloss corrector on real dev/test references with synthetic recognition errors.

For each corpus and split, the reference annotations are corrupted by the corrector's noise model
at 10/20/30/40% WER (fixed seeds; the noise rate is calibrated so that the *official* PHOENIX
scorer measures that WER on the corrupted text), corrected, and scored again against the STM
ground truth. Reported per level: WER before, after the first stage alone (the single-transformer
baseline, paper Table 5), after both stages (dual), and after both stages without the do-no-harm
gate. The corrector must never make the corpus WER worse on average at any level.

Also measured: per-sentence correction latency in torch eager on this CPU (batch 1, greedy, both
stages and gates, one thread), wall and process CPU time.

    python benchmarks/corrector_eval.py --model phoenix2014t=models/corrector-phoenix2014t \\
        [--model phoenix2014=models/corrector-phoenix2014] [--splits dev test] [--beam 4]

Writes benchmarks/results/corrector_<corpus><tag>.json and .md. With the results of a dual model
(no tag) and of a single-stage model (``--tag _single``) present,

    python benchmarks/corrector_eval.py --compare phoenix2014t

writes the single-vs-dual table corrector_<corpus>_single_vs_dual.md.

    python benchmarks/corrector_eval.py --smoke    # CI: a tiny corrector trained now, 20 sentences

The smoke run trains a tiny two-stage corrector for 40 steps on 200 PHOENIX-2014-T train
sentences (needs ../shared/data), evaluates it at 20% on the first 20 dev references and times 3
sentences; it writes corrector_eval_smoke.{json,md}.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_slr.data.corpora import corpus_spec, load_corpus  # noqa: E402
from edge_slr.metrics import load_references, score  # noqa: E402
from edge_slr.paths import shared_data_dir  # noqa: E402
from edge_slr.system import machine_info  # noqa: E402
from edge_slr.training.corrector import (  # noqa: E402
    load_checkpoint,
    load_config,
    load_corrector,
    train_corrector,
)
from edge_slr.training.corrector.noise import GlossNoise, NoiseConfig  # noqa: E402
from edge_slr.training.corrector.train import token_frequencies  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DECODING = {"draft": False, "ungated": True}  # set by --decoding and --no-ungated
LEVELS = (0.1, 0.2, 0.3, 0.4)
SEED = 2014
# The smoke runs' corrector (this script's and corrector_convert.py's): seconds to train.
SMOKE_TRAINING = (
    "model.d_model=32", "model.n_heads=2", "model.ff_dim=64", "model.encoder_layers=1",
    "model.dropout=0.0", "train.max_steps=40", "train.batch_size=32", "train.threads=1",
    "train.learning_rate=3e-3", "train.warmup_steps=5", "train.eval_every=20",
    "train.log_every=20", "train.holdout=0.1", "train.gate_levels=[0.0, 0.2]",
)  # fmt: skip


def smoke_corrector(folder: Path, root: Path, count: int = 200) -> Path:
    """A tiny two-stage corrector trained now (40 steps, d=32) on the first ``count`` train
    sentences of the PHOENIX-2014-T folder ``root``, saved in ``folder`` (the smoke runs' model)."""
    sentences = [s.glosses for s in load_corpus("phoenix2014t", root, "train") if s.glosses]
    overrides = [*SMOKE_TRAINING, "train.corpus=phoenix2014t", f"train.root={root}"]
    train_corrector(load_config(None, overrides), folder, sentences=sentences[:count])
    return folder


class EvalNoise:
    """The model's own noise model on gloss strings; unknown glosses get ids it never inserts."""

    def __init__(self, corrector, noise_cfg: NoiseConfig, train_sentences) -> None:
        self.vocab = corrector.vocab
        ids = [self.vocab.encode(list(s))[0] for s in train_sentences]
        freq = token_frequencies(ids, len(self.vocab))
        freq[self.vocab.unk_id] = 0.0
        self.noise = GlossNoise(dataclasses.replace(noise_cfg, clean_share=0.0), freq)

    def corrupt(self, sentences, rate: float, seed: int) -> list[list[str]]:
        rng = np.random.default_rng(seed)
        out = []
        for sentence in sentences:
            extra: dict[int, str] = {}
            ids = []
            for gloss in sentence:
                if gloss in self.vocab.base and gloss != "<unk>":
                    ids.append(self.vocab.base.index(gloss))
                else:  # OOV: a private id, so the noise can move or drop it but never invent it
                    ids.append(len(self.vocab) + len(extra))
                    extra[ids[-1]] = gloss
            noisy = self.noise.corrupt(ids, rng, wer=rate)
            out.append([extra[i] if i in extra else self.vocab.tokens[i] for i in noisy])
        return out


def calibrate(noise: EvalNoise, clean, refs, corpus: str, target: float, seed: int):
    """Noise rate whose corrupted sentences score ``target`` WER with the official scorer.

    Bisection on the rate (the scorer merges repetitions and normalises glosses, so the rate and
    the measured WER differ); the same seed every time, and the closest try is kept.
    """
    low, high, best = 0.0, min(1.0, 2.5 * target), None
    for _ in range(14):
        rate = (low + high) / 2
        noisy = noise.corrupt(clean, rate, seed)
        wer = score(dict(zip(refs, noisy, strict=True)), refs, corpus).wer
        if best is None or abs(wer - target) < abs(best[1] - target):
            best = (rate, wer, noisy)
        if abs(wer - target) < 0.0005:
            break
        low, high = (rate, high) if wer < target else (low, rate)
    return best


def evaluate_split(corrector, noise, corpus, root, split, levels, beam, limit=None):
    """Rows for one split; ``limit`` keeps only the first references (None: all)."""
    samples = load_corpus(corpus, root, split)
    refs = load_references(corpus_spec(corpus).stm_path(root, split))
    by_id = {s.id: list(s.glosses) for s in samples}
    ids = [i for i in refs if i in by_id][:limit]
    refs = {i: refs[i] for i in ids}
    clean = [by_id[i] for i in ids]
    rows = [
        {
            "split": split,
            "target": 0.0,
            "rate": 0.0,
            **_correct(corrector, ids, clean, refs, corpus, beam),
        }
    ]
    for k, target in enumerate(levels):
        rate, _, noisy = calibrate(noise, clean, refs, corpus, target, SEED + 100 * k)
        row = {"split": split, "target": target, "rate": round(rate, 5)}
        row.update(_correct(corrector, ids, noisy, refs, corpus, beam))
        rows.append(row)
        print(
            f"  {corpus} {split} {target:.0%}: "
            + ", ".join(
                f"{k} {100 * v:.2f}"
                for k, v in row.items()
                if k.startswith("wer_") and v is not None
            ),
            flush=True,
        )
    return rows


def _correct(corrector, ids, hyps, refs, corpus, beam) -> dict:
    def wer(sentences) -> float:
        return score(dict(zip(ids, sentences, strict=True)), refs, corpus).wer

    start = time.perf_counter()
    if DECODING["draft"]:  # the same greedy corrections, fewer decoder calls (draft_greedy)
        from edge_slr.recognition.correction_chain import GraphCorrector

        draft = GraphCorrector(corrector.graphs(), corrector.vocab, corrector.gates)
        gated = [draft.correct(s) for s in hyps]
        seconds = time.perf_counter() - start
        ungated = [draft.correct(s, gate=False) for s in hyps] if DECODING["ungated"] else None
    else:
        gated = corrector.correct_batch(hyps)
        seconds = time.perf_counter() - start
        ungated = corrector.correct_batch(hyps, gate=False)
    row = {
        "wer_before": wer(hyps),
        "wer_single": wer([r.stages[0].output if r.stages else r.glosses for r in gated]),
        "wer_dual": wer([r.glosses for r in gated]),
        "wer_single_ungated": wer(
            [r.stages[0].proposal if r.stages else r.glosses for r in ungated]
        )
        if ungated is not None
        else None,
        "wer_dual_ungated": wer([r.glosses for r in ungated]) if ungated is not None else None,
        "changed": sum(r.changed for r in gated),
        "sentences": len(ids),
        "seconds_gated_batched": round(seconds, 2),
    }
    if beam > 1:
        row["wer_dual_beam"] = wer(
            [r.glosses for r in corrector.correct_batch(hyps, beam_size=beam)]
        )
    return row


def measure_latency(corrector, noise: EvalNoise, sentences, count: int) -> dict:
    """Batch-1 greedy correction, both stages and gates; wall and process CPU ms per sentence."""
    import torch

    torch.set_num_threads(1)
    pool = [s for s in sentences if 10 <= len(s) <= 30][:count]
    noisy = noise.corrupt(pool, 0.2, SEED)
    for s in noisy[:5]:
        corrector.correct(s)
    result = {"sentences": len(noisy), "glosses_mean": float(np.mean([len(s) for s in pool]))}
    for name, kwargs in (("dual", {}), ("single", {"num_stages": 1})):
        wall, cpu = [], []
        for s in noisy:
            w0, c0 = time.perf_counter(), time.process_time()
            corrector.correct_batch([s], **kwargs)
            wall.append(1000 * (time.perf_counter() - w0))
            cpu.append(1000 * (time.process_time() - c0))
        result[name] = {
            "wall_ms_median": round(float(np.median(wall)), 2),
            "wall_ms_p90": round(float(np.percentile(wall, 90)), 2),
            "cpu_ms_median": round(float(np.median(cpu)), 2),
            "cpu_ms_p90": round(float(np.percentile(cpu, 90)), 2),
        }
    return result


def markdown(report: dict) -> str:
    t, dims = report["training"], report["dims"]
    dual = dims["stages"] > 1
    lines = [
        f"# Gloss corrector on {report['corpus']} (synthetic errors on real dev/test references)",
        "",
        f"Model `{report['model']}`: {dims['stages']} stage(s), d={dims['d_model']}, "
        f"{dims['encoder_layers']} encoder / {dims['decoder_layers']} decoder layer(s), copy "
        f"attention {'on' if dims.get('copy_attention') else 'off'}, "
        f"{t['parameters_per_stage']:,} parameters per stage, vocabulary {t['vocab_size']}. "
        f"Trained on {t['fit_sentences']} train sentences ({t['holdout_sentences']} held out for "
        f"the gates) in {t['wall_seconds'] / 60:.1f} min wall on {report['machine']['cpu_model']} "
        f"({t['threads']} thread; steps per stage {', '.join(str(s['steps']) for s in t['stages'])}).",
        "",
        "WER (%) with the official scorer; the noise rate is calibrated so that 'before' is the "
        "target level (0% = the raw annotations, the scorer's floor). "
        + (
            "stage 1 = the first stage alone with its gate; dual = both stages with their gates."
            if dual
            else "The single-stage model with its gate."
        )
        + (
            " Greedy corrections by batch-1 draft decoding (the same as the batched decoding "
            "up to float ties)."
            if report.get("decoding") == "draft"
            else ""
        ),
        "",
    ]
    columns = [("before", "wer_before")]
    if dual:
        columns += [
            ("stage 1", "wer_single"),
            ("**dual**", "wer_dual"),
            ("stage 1, no gate", "wer_single_ungated"),
            ("dual, no gate", "wer_dual_ungated"),
        ]
    else:
        columns += [("**corrected**", "wer_single"), ("no gate", "wer_single_ungated")]
    if report["beam"] > 1:
        columns.append((f"beam {report['beam']}", "wer_dual_beam"))
    lines.append("| split | target | " + " | ".join(c for c, _ in columns) + " | changed |")
    lines.append("|---" * (len(columns) + 3) + "|")
    for r in report["rows"]:
        cells = [f"{100 * r[key]:.2f}" if r.get(key) is not None else "n/a" for _, key in columns]
        lines.append(
            f"| {r['split']} | {r['target']:.0%} | "
            + " | ".join(cells)
            + f" | {r['changed']}/{r['sentences']} |"
        )
    lat = report["latency"]
    lines += ["", gates_line(report)] + (["", report["note"]] if report.get("note") else [])
    lines += [
        "",
        f"Do no harm (gated output never worse than before at 10-40%): **{report['no_harm']}**.",
        "",
        f"Latency, torch {report['versions']['torch']} eager, batch 1 through `correct_batch` (the "
        "training code's step-by-step greedy decoding), gates included, one "
        f"thread, {lat['sentences']} dev sentences of 10-30 glosses (mean {lat['glosses_mean']:.1f}) "
        "at 20% noise. CPU ms is the process CPU time (the machine was shared; wall time includes "
        "waiting for a core). The faster draft decoding and the converted graphs: "
        "corrector_speed.md.",
        "",
        "| model | wall ms median | wall ms p90 | CPU ms median | CPU ms p90 |",
        "|---|---|---|---|---|",
    ]
    for name in ("single", "dual") if dual else ("single",):
        m = lat[name]
        label = {"single": "stage 1 only" if dual else "single", "dual": "dual"}[name]
        lines.append(
            f"| {label} | {m['wall_ms_median']} | {m['wall_ms_p90']} | {m['cpu_ms_median']} | {m['cpu_ms_p90']} |"
        )
    lines += [
        "",
        f"Machine: {report['machine']['cpu_model']}, {report['machine']['usable_cpus']} CPUs, shared with other jobs while measured"
        + (
            f" (load average {report['loadavg_end'][0]:.1f} at the end)."
            if "loadavg_end" in report
            else "."
        ),
    ]
    return "\n".join(lines) + "\n"


def gates_line(report: dict) -> str:
    """The gates as tuned on held-out train sentences (a stage with margin inf is switched off)."""
    parts = []
    for i, g in enumerate(report["gates"], start=1):
        if float(g["min_margin"]) == float("inf"):
            parts.append(f"stage {i} switched off")
        else:
            parts.append(
                f"stage {i}: confidence >= {float(g['min_confidence']):.3f}, margin >= "
                f"{float(g['min_margin']):g} nats, edit rate <= {float(g['max_edit_rate']):g}"
            )
    train = report.get("config", {}).get("train", {})
    gain = train.get("gate_min_gain", 0.0)
    rule = (
        f"; a stage must lower the mean held-out WER by >= {100 * gain:g} points to be used"
        if gain
        else ""
    )
    return "Gates (tuned on held-out train sentences" + rule + "): " + "; ".join(parts) + "."


def compare(corpus: str, results: Path = RESULTS) -> str:
    """Single vs dual (paper Table 5) from the result files already written for ``corpus``."""
    name = f"corrector_{corpus}"
    found = {
        tag: json.loads((results / f"{name}{tag}.json").read_text())
        for tag in ("", "_single", "_nocopy")
        if (results / f"{name}{tag}.json").is_file()
    }
    if "" not in found or "_single" not in found:
        raise SystemExit(f"need {name}.json and {name}_single.json in {results}")
    dual, single = found[""], found["_single"]

    def minutes(report: dict) -> str:
        return " + ".join(f"{s['seconds'] / 60:.0f}" for s in report["training"]["stages"])

    header = [
        "before",
        f"single ({minutes(single)} min)",
        f"dual stage 1 ({minutes(dual).split(' + ')[0]} min)",
        f"dual ({minutes(dual)} min)",
    ]
    if "_nocopy" in found:
        header.append(f"dual without copy attention ({minutes(found['_nocopy'])} min)")
    lines = [
        f"# Single vs dual corrector on {corpus} (paper Table 5), WER %",
        "",
        "Same data, noise, gates and evaluation (see the per-model result files); all gated.",
        "",
        "| split | target | " + " | ".join(header) + " |",
        "|---" * (len(header) + 2) + "|",
    ]
    single_rows = {(r["split"], r["target"]): r for r in single["rows"]}
    other_rows = {(r["split"], r["target"]): r for r in found.get("_nocopy", {"rows": []})["rows"]}
    for r in dual["rows"]:
        key = (r["split"], r["target"])
        cells = [r["wer_before"], single_rows[key]["wer_single"], r["wer_single"], r["wer_dual"]]
        if "_nocopy" in found:
            cells.append(other_rows[key]["wer_dual"])
        lines.append(
            f"| {key[0]} | {key[1]:.0%} | " + " | ".join(f"{100 * c:.2f}" for c in cells) + " |"
        )
    text = "\n".join(lines) + "\n"
    (results / f"{name}_single_vs_dual.md").write_text(text)
    return text


def evaluate_model(corpus: str, model_dir, data: Path, args: argparse.Namespace) -> dict:
    """The report of one model: WER rows per split and level, gates, training, latency."""
    root = data / corpus_spec(corpus).shared_folder
    corrector = load_corrector(model_dir)
    raw = load_checkpoint(model_dir)
    noise_cfg = NoiseConfig.from_dict(raw["config"].get("noise", {}))
    train = [s.glosses for s in load_corpus(corpus, root, "train") if s.glosses]
    noise = EvalNoise(corrector, noise_cfg, train)
    start = time.perf_counter()
    rows = []
    for split in args.splits:
        rows += evaluate_split(
            corrector, noise, corpus, root, split, args.levels, args.beam, args.limit_sentences
        )
    dev = [list(s.glosses) for s in load_corpus(corpus, root, "dev")]
    return {
        "corpus": corpus,
        "model": str(model_dir),
        "dims": raw["dims"],
        "gates": raw["gates"],
        "config": raw["config"],
        "training": raw["metadata"]["training"],
        "versions": raw["versions"],
        "beam": args.beam,
        "decoding": args.decoding,
        "note": args.note,
        "rows": rows,
        "no_harm": all(
            r["wer_dual"] <= r["wer_before"] and r["wer_single"] <= r["wer_before"]
            for r in rows
            if r["target"] > 0
        ),
        "eval_seconds": round(time.perf_counter() - start, 1),
        "latency": measure_latency(corrector, noise, dev, args.latency_sentences),
        "machine": machine_info().to_dict(),
        "loadavg_end": list(os.getloadavg()),
    }


def write(report: dict, stem: Path) -> None:
    stem.parent.joinpath(f"{stem.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    stem.parent.joinpath(f"{stem.name}.md").write_text(markdown(report))
    print(markdown(report))


def smoke(args: argparse.Namespace, data: Path) -> None:
    """The same evaluation of a tiny corrector trained now, on a few dev sentences (CI)."""
    args.splits, args.levels, args.latency_sentences = ["dev"], [0.2], 3
    if args.limit_sentences is None:
        args.limit_sentences = 20
    args.note = args.note or (
        "Smoke run (CI): a tiny corrector trained for 40 steps on 200 train sentences, "
        f"the first {args.limit_sentences} dev references; the numbers mean nothing."
    )
    with tempfile.TemporaryDirectory(prefix="corrector-eval-smoke-") as tmp:
        root = data / corpus_spec("phoenix2014t").shared_folder
        model = smoke_corrector(Path(tmp) / "model", root)
        report = evaluate_model("phoenix2014t", model, data, args)
    write(report, args.results / "corrector_eval_smoke")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", action="append", default=[], metavar="CORPUS=DIR")
    parser.add_argument(
        "--compare", metavar="CORPUS", help="only write the single-vs-dual table from results"
    )
    parser.add_argument("--splits", nargs="+", default=["dev", "test"])
    parser.add_argument("--levels", nargs="+", type=float, default=list(LEVELS))
    parser.add_argument("--beam", type=int, default=1, help="also score beam search of this width")
    parser.add_argument("--latency-sentences", type=int, default=200)
    parser.add_argument(
        "--limit-sentences", type=int, default=None, help="only the first N references per split"
    )
    parser.add_argument("--data", type=Path, default=None, help="shared data folder")
    parser.add_argument("--tag", default="", help="suffix of the result file names")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the results")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a tiny corrector trained now, dev at 20%% on 20 sentences (CI; needs shared data)",
    )
    parser.add_argument(
        "--decoding",
        choices=("batched", "draft"),
        default="batched",
        help="greedy decoding for the WER tables: the training code's batched decoding, or "
        "batch-1 draft decoding (same corrections up to float ties; faster on a busy CPU)",
    )
    parser.add_argument("--note", default="", help="a sentence for the markdown (run history)")
    parser.add_argument(
        "--no-ungated",
        action="store_true",
        help="skip the no-gate columns (halves the time; with --decoding draft only)",
    )
    args = parser.parse_args()
    DECODING["draft"] = args.decoding == "draft"
    DECODING["ungated"] = not args.no_ungated
    if args.compare:
        print(compare(args.compare, args.results))
        return 0
    if not args.model and not args.smoke:
        parser.error("give --model CORPUS=DIR (or --compare CORPUS, or --smoke)")
    import torch

    torch.set_num_threads(1)
    data = args.data or shared_data_dir()
    if data is None:
        parser.error("../shared/data is absent; pass --data")
    args.results.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        smoke(args, data)
        return 0
    for spec in args.model:
        corpus, _, model_dir = spec.partition("=")
        report = evaluate_model(corpus, model_dir, data, args)
        write(report, args.results / f"corrector_{corpus}{args.tag}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
