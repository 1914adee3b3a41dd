"""KD-MSLRT Table 4 on SignSynth: augmentation x knowledge distillation x text correction, each
on or off, dev/test WER of the landmark student.

    augmentation  off: no transform; on: the paper's recipe (flip .5, rotation .3, fusion .2)
    KD            off: CTC only; on: the three KD losses from the video teacher (all three)
    correction    off: the student's hypotheses; on: the same hypotheses through the gloss
                  corrector of the corpus (both stages, with its do-no-harm gates; an ungated
                  column is recorded too)

The four students share data, config, seed and epochs with benchmarks/kd_ablation.py and
benchmarks/student_ablation.py; a cell whose run folder holds a finished run of the same config
is reused (benchmarks/finished_runs.py): "aug on, KD off" is kd_ablation's "no KD", "aug off,
KD off" is student_ablation's "aug:none", "aug on, KD on" is kd_ablation's "all three"; with
--train-missing the cells without a run are trained here (otherwise they are left out). The
correction is applied to each run's decoded hypotheses (OUT/eval/{split}.ctm, beam, and
{split}.greedy.ctm) and scored with the official scorer against OUT/eval/{split}.stm.

    python benchmarks/table4.py --train-missing          # after kd_ablation / student_ablation
    python benchmarks/table4.py --smoke                  # tiny data, 1 epoch, random corrector

Results: benchmarks/results/table4.{json,md} (table4_smoke.* for --smoke). In the smoke run "KD
on" is self-KD only (no teacher) and the corrector has random weights: it checks the plumbing.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from finished_runs import machine, train_or_reuse  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
KD_TERMS = ("conv_kd", "lstm_kd", "self_kd")
RECIPE = ["augment.flip_p=0.5", "augment.rotation_p=0.3", "augment.fusion_p=0.2"]
SMOKE = ["model.conv_channels=[16,16,32,32]", "model.lstm_hidden=16", "train.epochs=1",
         "train.beam_width=2", "train.progress=false"]  # fmt: skip
SPLITS = ("dev", "test")


def no_augmentation() -> list[str]:
    from edge_slr.training.augment import TRANSFORMS

    return [f"augment.{t}_p=0.0" for t in TRANSFORMS]


def cell_folders(kd_runs: Path, ablation_runs: Path) -> dict[tuple[bool, bool], Path]:
    """(augmentation, KD) -> the run folder of that student."""
    return {
        (False, False): ablation_runs / "aug-none",
        (True, False): kd_runs / "no_KD",
        (False, True): kd_runs / "all_three_no_aug",
        (True, True): kd_runs / "all_three",
    }


def cell_config(base: Any, aug: bool, kd: bool, folder: Path, teacher: str,
                terms: tuple[str, ...] = KD_TERMS) -> Any:  # fmt: skip
    """The student config of one cell: ``base`` with the KD switches and augmentation set."""
    switches = [f"distill.{t}={'true' if kd and t in terms else 'false'}" for t in KD_TERMS]
    needs_teacher = kd and bool({"conv_kd", "lstm_kd"} & set(terms))
    overrides = [*switches, f"distill.teacher={json.dumps(teacher if needs_teacher else '')}"]
    overrides += RECIPE if aug else no_augmentation()
    return base.with_overrides([*overrides, f"train.out_dir={json.dumps(str(folder))}"])


def read_hypotheses(folder: Path, split: str) -> dict[str, dict[str, tuple[str, ...]]]:
    """{"beam": {id: glosses}, "greedy": {...}} from a run's eval folder (every reference id,
    an empty hypothesis where the CTM has none)."""
    from edge_slr.metrics import load_hypotheses, load_references

    refs = load_references(folder / "eval" / f"{split}.stm")
    out = {}
    for decoder, name in (("beam", f"{split}.ctm"), ("greedy", f"{split}.greedy.ctm")):
        path = folder / "eval" / name
        if path.is_file():
            hyps = load_hypotheses(path)
            out[decoder] = {i: tuple(hyps.get(i, ())) for i in refs}
    return out


def corrected_scores(folder: Path, corrector: Any, corpus: str) -> dict:
    """WER of a run's dev/test hypotheses without and with the corrector (gated, ungated)."""
    from edge_slr.metrics import load_references, score

    scores: dict[str, dict] = {}
    for split in SPLITS:
        if not (folder / "eval" / f"{split}.stm").is_file():
            continue
        refs = load_references(folder / "eval" / f"{split}.stm")
        row: dict[str, Any] = {}
        for decoder, hyps in read_hypotheses(folder, split).items():
            ids = list(hyps)
            sentences = [hyps[i] for i in ids]
            gated = corrector.correct_batch(sentences)
            ungated = corrector.correct_batch(sentences, gate=False)
            for tag, result in (("off", sentences), ("on", [c.glosses for c in gated]),
                                ("ungated", [c.glosses for c in ungated])):  # fmt: skip
                row[f"{decoder}_correction_{tag}"] = score(
                    dict(zip(ids, result, strict=True)), refs, corpus
                ).wer
            row[f"{decoder}_changed_sentences"] = sum(
                tuple(c.glosses) != tuple(s) for c, s in zip(gated, sentences, strict=True)
            )
        scores[split] = row
    return scores


def smoke_corrector(vocabulary_path: Path) -> Any:
    """A tiny corrector with random weights on the data's vocabulary (plumbing only)."""
    import torch

    from edge_slr.decoding.vocab import CorrectorVocabulary, Vocabulary
    from edge_slr.training.corrector.decode import Corrector
    from edge_slr.training.corrector.model import CorrectorDims, build_stages

    torch.manual_seed(0)
    vocab = CorrectorVocabulary(Vocabulary.load(vocabulary_path))
    dims = CorrectorDims(len(vocab), d_model=16, n_heads=2, encoder_layers=1, ff_dim=32)
    return Corrector(build_stages(dims, vocab.pad_id), vocab)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def to_markdown(report: dict) -> str:
    meta = report["meta"]
    lines = [
        "# Augmentation x KD x correction (KD-MSLRT Table 4) on SignSynth",
        "",
        f"data `{meta['data']}`; students: `{meta['student']}`, {meta['epochs']} epochs, same "
        f"seed; KD = conv + BiLSTM + self KD from `{meta['teacher']}`; corrector "
        f"`{meta['corrector']}` (both stages, its gates; greedy decoding); {meta['machine']}. "
        "WER of each student's best dev checkpoint, official scorer. SignSynth accuracy says "
        "nothing about real signing.",
        "",
        "| augmentation | KD | correction | test beam | test greedy | dev beam | dev greedy "
        "| test sentences changed (beam) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        for tag in ("off", "on", "ungated"):
            test, dev = row["scores"].get("test", {}), row["scores"].get("dev", {})
            changed = test.get("beam_changed_sentences") if tag == "on" else None
            lines.append(
                f"| {'on' if row['augmentation'] else 'off'} | {'on' if row['kd'] else 'off'} | "
                f"{tag if tag != 'ungated' else 'on, no gate'} | "
                f"{_percent(test.get(f'beam_correction_{tag}'))} | "
                f"{_percent(test.get(f'greedy_correction_{tag}'))} | "
                f"{_percent(dev.get(f'beam_correction_{tag}'))} | "
                f"{_percent(dev.get(f'greedy_correction_{tag}'))} | "
                f"{'' if changed is None else changed} |"
            )
    lines += ["", "Students:", "", "| augmentation | KD | run | epochs (best) | wall | load at end |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for row in report["rows"]:
        lines.append(
            f"| {'on' if row['augmentation'] else 'off'} | {'on' if row['kd'] else 'off'} | "
            f"`{row['run']}` | {row['epochs']} ({row['best_epoch']}) | "
            f"{(row.get('wall_s') or 0) / 60:.1f} min | {row.get('finished_load', '-')} |"
        )
    if report.get("missing"):
        lines += ["", f"Not trained (no finished run; use --train-missing): {report['missing']}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "runs" / "kd-data")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "kd-student-subset.toml")
    parser.add_argument("--teacher", type=Path, default=ROOT / "runs" / "teacher-kd" / "best.pt")
    parser.add_argument("--corrector", type=Path, default=ROOT / "runs" / "corrector-phoenix2014t")
    parser.add_argument("--corpus", default="phoenix2014t", help="scoring rules")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--kd-runs", type=Path, default=ROOT / "runs" / "kd-ablation-15ep")
    parser.add_argument("--ablation-runs", type=Path,
                        default=ROOT / "runs" / "student-ablation-15ep")  # fmt: skip
    parser.add_argument("--train-missing", action="store_true", help="train cells without a run")
    parser.add_argument("--smoke", action="store_true", help="tiny data and models, 1 epoch")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from edge_slr.training.config import load_config

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as temp:
        if args.smoke:
            from student_ablation import make_smoke_data

            data, name, config_file = make_smoke_data(Path(temp)), "table4_smoke", None
            base = load_config(None, [f"data.root={json.dumps(str(data))}", *SMOKE])
            folders = cell_folders(Path(temp) / "kd", Path(temp) / "ablation")
            corrector, teacher, terms = smoke_corrector(data / "vocabulary.json"), "", ("self_kd",)
            args.train_missing, corrector_name = True, "random tiny corrector"
        else:
            from edge_slr.training.corrector import load_corrector
            from edge_slr.training.teacher.cache import teacher_outputs

            data, name, config_file = args.data, "table4", args.config
            overrides = [f"data.root={json.dumps(str(data))}", f"train.epochs={args.epochs}",
                         "train.progress=false"]  # fmt: skip
            base = load_config(config_file, overrides)
            folders = cell_folders(args.kd_runs, args.ablation_runs)
            corrector, corrector_name = load_corrector(args.corrector), str(args.corrector)
            teacher, terms = "", KD_TERMS
            if args.train_missing:  # kd_ablation's cache of the teacher outputs (made if absent)
                teacher = str(teacher_outputs(
                    args.teacher, data, base.data.train_split,
                    cache_dir=args.kd_runs / "teacher-cache", progress=False,
                ).path)  # fmt: skip
            else:
                teacher = str(args.kd_runs / "teacher-cache")
        rows, missing = [], []
        for (aug, kd), folder in folders.items():
            config = cell_config(base, aug, kd, folder, teacher, terms)
            if not args.train_missing and not (folder / "results.json").is_file():
                missing.append(f"aug {'on' if aug else 'off'} / KD {'on' if kd else 'off'}")
                continue
            row = train_or_reuse(f"aug {aug}, KD {kd}", config)
            row |= {"augmentation": aug, "kd": kd, "kd_terms": list(terms) if kd else []}
            row["scores"] = corrected_scores(folder, corrector, args.corpus)
            logging.info("%s", row)
            rows.append(row)
        report = {
            "meta": {
                "data": str(data),
                "student": str(config_file) if config_file else "defaults + smoke sizes",
                "epochs": base.train.epochs,
                "teacher": str(args.teacher) if not args.smoke else "none (self-KD only)",
                "corrector": corrector_name,
                "machine": machine(),
                "seconds": time.perf_counter() - started,
            },
            "rows": rows,
            "missing": missing,
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
        (RESULTS / f"{name}.md").write_text(to_markdown(report))
    print(to_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
