"""The corrector with and without the recogniser's confidence on PHOENIX noise at 10/20/30/40%.

Text noise has no real posteriors, so the confidence of each noisy gloss is *simulated* from a
real recogniser's calibration: a gloss the noise left right gets a confidence drawn from the
confidences the student gave its right glosses on dev, a substituted or inserted gloss one drawn
from those of its wrong glosses (both lists come from ``benchmarks/lm_fusion.py``'s result JSON,
``confidence_tuning.<row>.dev_calibration``). The rows therefore show what confidence-aware
correction would do for a recogniser calibrated like that student whose errors look like the
noise model's; the real-recogniser rows are those of the lm_fusion table. The noise (the
corrector's own model, calibrated to the official scorer's WER) is benchmarks/corrector_eval.py's.
The confidence threshold and the corrector gate are tuned per level on the dev split at that
level, and the test split at the same level is reported.

    python benchmarks/confidence_noise.py --model models/corrector-phoenix2014 \\
        --calibration benchmarks/results/lm_fusion_demo.json [--corpus phoenix2014] [--tag _x]

Writes benchmarks/results/confidence_noise_<corpus><tag>.{json,md}.

    python benchmarks/confidence_noise.py --smoke    # CI: tiny corrector trained now, seconds

The smoke run trains corrector_eval.py's tiny PHOENIX-2014-T corrector, uses a stand-in
calibration (it checks the code path, not the numbers) and 20 references at 20% noise; it
writes confidence_noise_smoke.{json,md}.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from corrector_eval import LEVELS, SEED, EvalNoise, calibrate, smoke_corrector  # noqa: E402
from lm_fusion import CONFIDENCE_THRESHOLDS  # noqa: E402

from edge_slr.data.corpora import corpus_spec, load_corpus  # noqa: E402
from edge_slr.metrics import load_references, score  # noqa: E402
from edge_slr.paths import shared_data_dir  # noqa: E402
from edge_slr.recognition.confidence import ConfidenceFilter  # noqa: E402
from edge_slr.scoring.align import CORRECT, DELETION, align  # noqa: E402
from edge_slr.system import machine_info  # noqa: E402
from edge_slr.training.corrector import load_checkpoint, load_corrector  # noqa: E402
from edge_slr.training.corrector.noise import NoiseConfig  # noqa: E402


def simulated_confidences(clean, noisy, calibration: dict, rng: np.random.Generator) -> list:
    """Per noisy gloss: a draw from the right glosses' confidences if the noise left it right,
    else from the wrong glosses' (substitutions and insertions against the clean sentence)."""
    out = []
    for reference, sentence in zip(clean, noisy, strict=True):
        ops = [op for op in align(reference, sentence).ops if op != DELETION]
        pools = [calibration["correct" if op == CORRECT else "wrong"] for op in ops]
        out.append([float(rng.choice(pool)) for pool in pools])
    return out


def split_level(corpus, root, split, noise, target, k, calibration, limit):  # type: ignore[no-untyped-def]
    """(ids, references, noisy sentences, simulated confidences) of one split at one level."""
    refs = load_references(corpus_spec(corpus).stm_path(root, split))
    by_id = {s.id: list(s.glosses) for s in load_corpus(corpus, root, split)}
    ids = [i for i in refs if i in by_id][:limit]
    refs, clean = {i: refs[i] for i in ids}, [by_id[i] for i in ids]
    _, _, noisy = calibrate(noise, clean, refs, corpus, target, SEED + 100 * k)
    rng = np.random.default_rng(SEED + 100 * k + 1)
    return ids, refs, noisy, simulated_confidences(clean, noisy, calibration, rng)


def level_row(corrector, corpus, data) -> dict:  # type: ignore[no-untyped-def]
    """WERs on test at one level; threshold and gate tuned on dev at the same level."""
    ids, refs, noisy, conf = data["test"]
    proposals = {g: corrector.correct_batch(noisy, gate=g) for g in (True, False)}
    dev_ids, dev_refs, dev_noisy, dev_conf = data["dev"]
    dev_proposals = {g: corrector.correct_batch(dev_noisy, gate=g) for g in (True, False)}

    def wer(sentences, names, references) -> float:
        return score(dict(zip(names, sentences, strict=True)), references, corpus).wer

    def filtered(props, sentences, confidences, threshold):  # type: ignore[no-untyped-def]
        keep = ConfidenceFilter(threshold)
        return [keep.apply(s, p.glosses, c)
                for s, p, c in zip(sentences, props, confidences, strict=True)]  # fmt: skip

    trials = [
        {"threshold": t, "gate": g,
         "wer": wer(filtered(dev_proposals[g], dev_noisy, dev_conf, t), dev_ids, dev_refs)}
        for t in CONFIDENCE_THRESHOLDS for g in (True, False)
    ]  # fmt: skip
    best = min(trials, key=lambda t: t["wer"])
    return {
        "wer_before": wer(noisy, ids, refs),
        "wer_corrector": wer([p.glosses for p in proposals[True]], ids, refs),
        "wer_corrector_ungated": wer([p.glosses for p in proposals[False]], ids, refs),
        "wer_confidence": wer(
            filtered(proposals[best["gate"]], noisy, conf, best["threshold"]), ids, refs
        ),
        "chosen": best,
        "dev_trials": trials,
        "sentences": len(ids),
    }


# The smoke run's calibration: a stand-in with the shape of a real one (right glosses surer).
SMOKE_CALIBRATION = {"correct": [0.5, 0.7, 0.8, 0.9, 0.95], "wrong": [0.2, 0.3, 0.4, 0.6]}


def run(args: argparse.Namespace, root: Path) -> dict:
    if args.smoke:
        calibration = SMOKE_CALIBRATION
    else:
        report = json.loads(args.calibration.read_text("utf-8"))
        calibration = report["confidence_tuning"][args.calibration_row]["dev_calibration"]
    corrector = load_corrector(args.model)
    noise_cfg = NoiseConfig.from_dict(load_checkpoint(args.model)["config"].get("noise", {}))
    train = [s.glosses for s in load_corpus(args.corpus, root, "train") if s.glosses]
    noise = EvalNoise(corrector, noise_cfg, train)
    rows = {}
    for k, target in enumerate(args.levels):
        data = {
            split: split_level(args.corpus, root, split, noise, target, k, calibration, args.limit)
            for split in ("dev", "test")
        }
        rows[f"{target:.2f}"] = level_row(corrector, args.corpus, data)
        print(f"{target:.0%}: {rows[f'{target:.2f}']['wer_confidence']:.4f}", flush=True)
    return {
        "corpus": args.corpus, "model": str(args.model), "calibration": "smoke stand-in" if args.smoke else str(args.calibration),
        "calibration_row": args.calibration_row, "rows": rows, "limit": args.limit,
        "machine": machine_info().to_dict(), "load_average": os.getloadavg()[0],
        "note": args.note,
    }  # fmt: skip


def markdown(report: dict) -> str:
    lines = [
        f"# Confidence-aware correction on {report['corpus']} test with text noise",
        "",
        f"Corrector `{report['model']}`. Simulated confidences (see benchmarks/confidence_noise.py):"
        f" drawn from the dev calibration of `{report['calibration']}` "
        f"({report['calibration_row']}), right glosses from its right glosses' confidences, "
        "noisy glosses from its wrong glosses'. Threshold and gate tuned on dev at each level.",
        *([report["note"]] if report.get("note") else []),
        "",
        "| noise | before | corrector (gated) | ungated | confidence-aware | threshold, gate |",
        "|---|---|---|---|---|---|",
    ]
    for level, r in report["rows"].items():
        chosen = r["chosen"]
        lines.append(
            f"| {100 * float(level):.0f}% | {100 * r['wer_before']:.2f} | "
            f"{100 * r['wer_corrector']:.2f} | {100 * r['wer_corrector_ungated']:.2f} | "
            f"{100 * r['wer_confidence']:.2f} | {chosen['threshold']}, "
            f"{'on' if chosen['gate'] else 'off'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=ROOT / "models" / "corrector-phoenix2014")
    p.add_argument("--corpus", default="phoenix2014")
    p.add_argument("--calibration", type=Path,
                   default=ROOT / "benchmarks" / "results" / "lm_fusion_demo.json")  # fmt: skip
    p.add_argument("--calibration-row", default="confidence-aware")
    p.add_argument("--levels", nargs="+", type=float, default=list(LEVELS))
    p.add_argument("--limit", type=int, default=None, help="only the first N references per split")
    p.add_argument("--data", type=Path, default=None, help="shared data folder")
    p.add_argument("--tag", default="")
    p.add_argument("--smoke", action="store_true", help="tiny corrector trained now (CI)")
    p.add_argument(
        "--note", default="", help="a sentence for the markdown (how the model was made)"
    )
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    data = args.data or shared_data_dir()
    if data is None:
        p.error("../shared/data is absent; pass --data")
    with tempfile.TemporaryDirectory() as temp:
        if args.smoke:
            args.corpus, args.levels, args.limit = "phoenix2014t", [0.2], 20
            args.model = smoke_corrector(Path(temp) / "corrector", data / "phoenix2014t")
        report = run(args, data / corpus_spec(args.corpus).shared_folder)
    args.results.mkdir(parents=True, exist_ok=True)
    name = "smoke" if args.smoke else f"{args.corpus}{args.tag}"
    out = args.results / f"confidence_noise_{name}"
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n", "utf-8")
    out.with_suffix(".md").write_text(markdown(report), "utf-8")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
