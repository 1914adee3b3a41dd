"""Gloss LM shallow fusion and the corrector on a student's real recognition errors.

The student's log-probabilities of a SignSynth split (signer-independent: unseen signers and
sentences) are decoded by greedy search, the plain beam search, the beam search with an
insertion bonus only, and with the gloss n-gram LM fused in (weights tuned on the dev split
only, never on test); with ``--corrector`` each beam output is also corrected, once gated and
once confidence-aware (:mod:`edge_slr.recognition.confidence`: edits kept only on glosses whose
posterior is below a threshold; threshold and corrector gate tuned on dev). Reported per
decoder: WER with S/D/I and the milliseconds per sentence it adds to the plain beam search on
this CPU (one thread, the numpy decoder of every engine). The "clean" check decodes the test
references written as confident CTC posteriors (each gloss 2 frames at 0.9, blanks between):
fusion must not change a labelling the recogniser is sure of.

    python benchmarks/lm_fusion.py --checkpoint runs/student-default/best.pt \\
        --data runs/signsynth-phoenix2014t [--corrector models/corrector-phoenix2014t] [--tag _x]

The LM is ``--lm FILE`` or, by default, a 4-gram trained now on the train split of the corpus
the dataset was drawn from (its dataset.json names the corpus folder). Writes
benchmarks/results/lm_fusion<tag>.{json,md}.

    python benchmarks/lm_fusion.py --smoke    # CI: untrained tiny student, tiny data, seconds
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_slr.decoding import beam_search, greedy_decode  # noqa: E402
from edge_slr.decoding.lm import FusedLM, FusionSettings, read_arpa  # noqa: E402
from edge_slr.metrics import score  # noqa: E402
from edge_slr.recognition.confidence import ConfidenceFilter  # noqa: E402
from edge_slr.scoring.align import CORRECT, DELETION, align  # noqa: E402
from edge_slr.system import machine_info  # noqa: E402
from edge_slr.training.evaluate import load_evaluation, predict, scoring_corpus  # noqa: E402
from edge_slr.training.lm import train_corpus_lm, train_kneser_ney, write_arpa  # noqa: E402
from edge_slr.training.lm_tuning import tune_fusion  # noqa: E402


def decode_timed(predictions, vocab, decode) -> tuple[dict, dict, float]:  # type: ignore[no-untyped-def]
    """Hypotheses of ``decode(log_probs) -> DecodeResult``, the recogniser's confidence of every
    hypothesis gloss (its mean posterior over its frames) and the mean ms per sentence."""
    hypotheses, confidences, started = {}, {}, time.perf_counter()
    for name, lp in zip(predictions.ids, predictions.log_probs, strict=True):
        kept = [g for g in decode(lp).glosses if g.token != vocab.unk_id]
        hypotheses[name] = tuple(vocab.decode([g.token for g in kept]))
        confidences[name] = [g.score for g in kept]
    ms = 1000 * (time.perf_counter() - started) / max(len(predictions.ids), 1)
    return hypotheses, confidences, ms


def correct_timed(  # type: ignore[no-untyped-def]
    corrector, hypotheses: dict, confidences: dict | None = None, setting: dict | None = None
) -> tuple[dict, float]:
    """Corrected hypotheses (gated; with ``setting``: confidence-aware) and the ms per sentence."""
    started, out = time.perf_counter(), {}
    for name, h in hypotheses.items():
        if setting is None:
            out[name] = tuple(corrector.correct(list(h)).glosses)
        elif setting["threshold"] == 0.0:  # no gloss is unsure: the corrector is not asked
            out[name] = h
        else:
            proposal = corrector.correct(list(h), gate=setting["gate"]).glosses
            keep = ConfidenceFilter(setting["threshold"])
            out[name] = keep.apply(h, proposal, confidences[name])  # type: ignore[index]
    return out, 1000 * (time.perf_counter() - started) / max(len(hypotheses), 1)


def calibration(hypotheses: dict, confidences: dict, references: dict) -> dict[str, list[float]]:
    """The confidences of the hypothesis glosses that are right and of those that are wrong
    (substituted or inserted in the alignment to the reference): how well confidence tells
    them apart, and what benchmarks/confidence_noise.py draws simulated confidences from."""
    out: dict[str, list[float]] = {"correct": [], "wrong": []}
    for name, hyp in hypotheses.items():
        values = iter(confidences[name])
        for op in align(references[name], hyp).ops:
            if op != DELETION:  # every other move consumes a hypothesis gloss
                out["correct" if op == CORRECT else "wrong"].append(round(next(values), 4))
    return {k: sorted(v) for k, v in out.items()}


def tune_confidence(corrector, hypotheses, confidences, references, corpus) -> tuple[dict, list]:  # type: ignore[no-untyped-def]
    """The (threshold, gate) of the lowest WER on these (dev) hypotheses, and every trial.

    The grid runs from conservative to liberal, so ties go to the setting that edits least.
    """
    names = list(hypotheses)
    trials = []
    for gate in (True, False):
        proposals = corrector.correct_batch([list(hypotheses[n]) for n in names], gate=gate)
        for threshold in CONFIDENCE_THRESHOLDS:
            keep = ConfidenceFilter(threshold)
            fixed = {n: keep.apply(hypotheses[n], c.glosses, confidences[n])
                     for n, c in zip(names, proposals, strict=True)}  # fmt: skip
            wer = score(fixed, references, corpus=corpus).wer
            trials.append({"threshold": threshold, "gate": gate, "wer": wer})
    trials.sort(key=lambda t: (t["threshold"], not t["gate"]))
    return min(trials, key=lambda t: t["wer"]), trials


CONFIDENCE_ROWS = {"beam": "confidence-aware", "beam+LM": "beam+LM+confidence-aware"}
CONFIDENCE_THRESHOLDS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def clean_log_probs(glosses: tuple[int, ...], vocab_size: int) -> np.ndarray:
    """A confident recogniser's posteriors for ``glosses``: 2 frames of 0.9 each, blanks around."""
    frames = [0]
    for token in glosses:
        frames += [token, token, 0]
    probs = np.full((len(frames), vocab_size), 0.1 / (vocab_size - 1))
    probs[np.arange(len(frames)), frames] = 0.9
    return np.log(probs)


def build_lm(data: Path, work: Path, smoke: bool) -> Path:
    """A 4-gram of the train split of the corpus ``data`` was drawn from (tiny data: its own)."""
    description = json.loads((data / "dataset.json").read_text("utf-8"))
    generator = description.get("generator") or {}
    root = (description.get("selection") or {}).get("root")
    if smoke or not root or generator.get("corpus") in (None, "builtin"):
        from edge_slr.data.dataset import LandmarkDataset

        sentences = [tuple(s.glosses) for s in LandmarkDataset(data, "train").samples]
        return write_arpa(train_kneser_ney(sentences, 3), work / "lm.arpa")
    return train_corpus_lm(generator["corpus"], root, 4, work)[0]


def run(args: argparse.Namespace, work: Path) -> dict:
    lm_path = args.lm or build_lm(args.data, work, args.smoke)
    lm = read_arpa(lm_path)
    corpus = scoring_corpus(args.data)
    splits = {}
    for split in dict.fromkeys((args.tune_split, args.split)):
        model, _, vocab, dataset = load_evaluation(args.checkpoint, args.data, split)
        splits[split] = predict(model, dataset)
    dev, test = splits[args.tune_split], splits[args.split]
    grid = {"weights": (0.0, 0.5), "bonuses": (0.0, 1.0)} if args.smoke else {}
    best, trials = tune_fusion(dev, vocab, corpus, lm, args.beam, **grid)
    bonus_only = min((t for t in trials if t.settings.lm_weight == 0), key=lambda t: t.wer)
    labels, rows = list(vocab.glosses), {}

    def beam(fusion: FusionSettings | None):  # type: ignore[no-untyped-def]
        options = FusedLM(lm, fusion).beam_options(labels) if fusion else {}
        return lambda lp: beam_search(lp, args.beam, labels=labels, **options)

    decoders = {
        "greedy": lambda lp: greedy_decode(lp, labels=labels),
        "beam": beam(None),
        "beam+bonus": beam(bonus_only.settings),
        "beam+LM": beam(best),
    }
    hypotheses, confidences, ms, confidence_tuning = {}, {}, {}, {}
    for name, decode in decoders.items():
        hypotheses[name], confidences[name], ms[name] = decode_timed(test, vocab, decode)
    if args.corrector is not None:
        from edge_slr.training.corrector import load_corrector

        corrector = load_corrector(args.corrector)
        for name in ("beam", "beam+LM"):
            fixed, extra = correct_timed(corrector, hypotheses[name])
            hypotheses[f"{name}+corrector"], ms[f"{name}+corrector"] = fixed, ms[name] + extra
        for name, label in CONFIDENCE_ROWS.items():
            dev_hyps, dev_conf, _ = decode_timed(dev, vocab, decoders[name])
            chosen, tried = tune_confidence(corrector, dev_hyps, dev_conf, dev.references, corpus)
            confidence_tuning[label] = {
                "chosen": chosen, "dev_trials": tried,
                "dev_calibration": calibration(dev_hyps, dev_conf, dev.references),
            }  # fmt: skip
            fixed, extra = correct_timed(corrector, hypotheses[name], confidences[name], chosen)
            hypotheses[label], ms[label] = fixed, ms[name] + extra
    for name, hyps in hypotheses.items():
        result = score(hyps, test.references, corpus=corpus)
        rows[name] = {
            "wer": result.wer, "substitutions": result.substitutions,
            "deletions": result.deletions, "insertions": result.insertions,
            "ms_per_sentence": ms[name], "added_ms_vs_beam": ms[name] - ms["beam"],
        }  # fmt: skip
    clean = {}
    references = {n: tuple(vocab.encode(g)) for n, g in test.references.items()}
    for name, fusion in (("beam", None), ("beam+LM", best)):
        decode = beam(fusion)
        hyps = {n: tuple(vocab.decode(decode(clean_log_probs(ids, len(labels))).tokens,
                                      keep_unk=False)) for n, ids in references.items() if ids}  # fmt: skip
        clean[name] = score(hyps, {n: test.references[n] for n in hyps}, corpus=corpus).wer
        label = CONFIDENCE_ROWS[name]
        if label in confidence_tuning:  # each clean gloss's mean posterior is 0.9
            setting = confidence_tuning[label]["chosen"]
            sure = {n: [0.9] * len(h) for n, h in hyps.items()}
            fixed, _ = correct_timed(corrector, hyps, sure, setting)
            clean[label] = score(
                fixed, {n: test.references[n] for n in hyps}, corpus=corpus).wer  # fmt: skip
    return {
        "checkpoint": str(args.checkpoint), "data": str(args.data),
        "lm": str(args.lm) if args.lm else f"lm.arpa: trained now on the train split of {corpus}",
        "lm_order": lm.order, "corpus": corpus, "beam_width": args.beam,
        "tuned_on": args.tune_split, "evaluated_on": args.split,
        "sentences": len(test.references), "tuned": {
            "lm": {"lm_weight": best.lm_weight, "insertion_bonus": best.insertion_bonus},
            "bonus_only": {"insertion_bonus": bonus_only.settings.insertion_bonus},
        },
        "dev_trials": [t.to_dict() for t in trials], "decoders": rows,
        "confidence_tuning": confidence_tuning,
        "clean_references_wer": clean, "machine": machine_info().to_dict(),
        "load_average": os.getloadavg()[0], "smoke": args.smoke,
    }  # fmt: skip


def markdown(report: dict) -> str:
    rows, beam = report["decoders"], report["decoders"]["beam"]["wer"]
    tuned = report["tuned"]["lm"]
    lines = [
        f"# Gloss LM fusion: {report['data']} {report['evaluated_on']} "
        f"({report['sentences']} sentences, {report['corpus']} scoring)",
        "",
        f"Student `{report['checkpoint']}`, beam width {report['beam_width']}, "
        f"{report['lm_order']}-gram LM ({report['lm']}); weights tuned on "
        f"{report['tuned_on']} only: LM weight {tuned['lm_weight']}, insertion bonus "
        f"{tuned['insertion_bonus']} (bonus alone: {report['tuned']['bonus_only']['insertion_bonus']}).",
        "",
        "| decoder | WER % | S | D | I | relative to beam | ms/sentence | added ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        change = f"{100 * (r['wer'] - beam) / beam:+.1f}%" if beam else "-"
        lines.append(
            f"| {name} | {100 * r['wer']:.2f} | {r['substitutions']} | {r['deletions']} | "
            f"{r['insertions']} | {change} | {r['ms_per_sentence']:.2f} | "
            f"{r['added_ms_vs_beam']:+.2f} |"
        )
    clean = report["clean_references_wer"]
    lines += [
        "",
        f"Clean references as confident posteriors: WER {100 * clean['beam']:.2f}% (beam), "
        f"{100 * clean['beam+LM']:.2f}% (beam+LM)"
        + "".join(f", {100 * clean[k]:.2f}% ({k})" for k in CONFIDENCE_ROWS.values() if k in clean)
        + ".",
        *confidence_lines(report),
        f"Machine: {report['machine'].get('cpu_model', '?')}, "
        f"load average {report['load_average']:.1f} "
        "at the end (timings on a busy machine are not comparable).",
    ]
    return "\n".join(lines) + "\n"


def confidence_lines(report: dict) -> list[str]:
    tuning = report.get("confidence_tuning") or {}
    if not tuning:
        return []
    chosen = "; ".join(
        f"{label}: threshold {t['chosen']['threshold']}, corrector gate "
        f"{'on' if t['chosen']['gate'] else 'off'} (dev WER {100 * t['chosen']['wer']:.2f}%)"
        for label, t in tuning.items()
    )
    return [
        "",
        "Confidence-aware correction (edge_slr.recognition.confidence): the corrector's edits are "
        "kept only on glosses whose confidence (mean CTC posterior over the gloss's frames of "
        "its best alignment) is below a threshold; insertions only next to such a gloss. "
        f"Threshold and corrector gate tuned on {report['tuned_on']} only: {chosen}. "
        "Threshold 0 keeps no edit (the row then equals its input row).",
        *(calibration_line(label, t["dev_calibration"]) for label, t in tuning.items()),
    ]


def calibration_line(label: str, split: dict[str, list[float]]) -> str:
    def share_below(values: list[float], limit: float) -> str:
        return f"{100 * np.mean(np.array(values) < limit):.0f}%" if values else "-"

    return (
        f"Dev calibration ({label.replace('confidence-aware', '').strip('+') or 'beam'}): "
        f"{len(split['correct'])} right glosses, median confidence "
        f"{np.median(split['correct'] or [np.nan]):.2f}, {share_below(split['correct'], 0.5)} "
        f"below 0.5; {len(split['wrong'])} wrong glosses, median "
        f"{np.median(split['wrong'] or [np.nan]):.2f}, {share_below(split['wrong'], 0.5)} below 0.5."
    )


def smoke_inputs(work: Path) -> tuple[Path, Path]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from edge_benchmark import smoke_inputs as untrained_tiny_student

    return untrained_tiny_student(work)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, default=ROOT / "runs/student-default/best.pt")
    p.add_argument("--data", type=Path, default=ROOT / "runs/signsynth-phoenix2014t")
    p.add_argument("--lm", type=Path, default=None, help="ARPA LM (default: trained now)")
    p.add_argument("--corrector", type=Path, default=None, help="corrector folder")
    p.add_argument("--split", default="test")
    p.add_argument("--tune-split", default="dev")
    p.add_argument("--beam", type=int, default=10)
    p.add_argument("--tag", default="")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--smoke", action="store_true", help="untrained tiny student, tiny data (CI)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        if args.smoke:  # the tiny data has no test split: its dev stands in for both
            args.checkpoint, args.data = smoke_inputs(Path(temp))
            args.split, args.tag = "dev", "_smoke"
        report = run(args, Path(temp))
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"lm_fusion{args.tag}"
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n", "utf-8")
    out.with_suffix(".md").write_text(markdown(report), "utf-8")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
