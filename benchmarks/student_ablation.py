"""Student ablations on a SignSynth dataset (augmentation recipe, temporal kernel size) and
training throughput.

    augmentation: none, each transform alone, the paper's recipe (flip .5, rotation .3, fusion
                  .2); a transform of the recipe alone keeps its recipe probability (the rows
                  split the recipe into its parts), the others get p = 0.5
    kernel size:  3 / 5 / 7 / 9 for all four Conv1d layers, with the paper's recipe (Table 6)

Every variant trains the same config from the same seed and reports dev/test WER of its best
checkpoint (greedy and beam), parameters, epochs, wall time, training throughput and the load
at its end. Results go to benchmarks/results/student_ablation_{augment,kernel}.{json,md}
(student_ablation.* for --which all, student_ablation_smoke.* for --smoke); rows are saved
after every variant and merged with the file's other rows, and a variant whose run folder holds
a finished run of the same config is reused (benchmarks/finished_runs.py), so an interrupted
run continues where it stopped and the kernel-5 and recipe rows can share one run.

    python benchmarks/student_ablation.py --data runs/signsynth-phoenix2014t --epochs 15
    python benchmarks/student_ablation.py --data DIR --which kernel --only kernel:3 kernel:9
    # the KD subset of kd_ablation.py without KD (student_ablation_{kernel,augment}.md):
    python benchmarks/student_ablation.py --data runs/kd-data --config configs/kd-student-subset.toml \
        --set distill.conv_kd=false --set distill.lstm_kd=false --set distill.self_kd=false \
        --set distill.teacher= --which kernel --runs runs/student-ablation-15ep
    python benchmarks/student_ablation.py --smoke        # tiny built-in data, 1 epoch (CI)
    python benchmarks/student_ablation.py --throughput   # train-step sequences/s, no data

Accuracy on SignSynth says nothing about accuracy on real signing; the ablation shows how the
recipe behaves on the synthetic signer (signer-independent splits).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see train.py

from finished_runs import machine, train_or_reuse  # noqa: E402

from edge_slr.training.augment import TRANSFORMS  # noqa: E402
from edge_slr.training.config import StudentConfig, load_config  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
PAPER = ["augment.flip_p=0.5", "augment.rotation_p=0.3", "augment.fusion_p=0.2"]
NONE = [f"augment.{t}_p=0.0" for t in TRANSFORMS]
SMOKE = [
    "model.conv_channels=[16,16,32,32]", "model.lstm_hidden=16", "train.epochs=1",
    "train.beam_width=2", "train.progress=false",
]  # fmt: skip


def variants(which: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if which in ("all", "augment"):
        out["aug:none"] = NONE
        recipe = dict(item.split("=") for item in PAPER)
        for transform in TRANSFORMS:
            p = recipe.get(f"augment.{transform}_p", "0.5")
            out[f"aug:{transform}"] = NONE + [f"augment.{transform}_p={p}"]
        out["aug:paper"] = NONE + PAPER
    if which in ("all", "kernel"):
        for kernel in (3, 5, 7, 9):
            out[f"kernel:{kernel}"] = NONE + PAPER + [f"model.kernel_size={kernel}"]
    return out


def make_smoke_data(folder: Path) -> Path:
    """A tiny SignSynth dataset from the built-in grammar (no corpus needed, a few seconds)."""
    from edge_slr.data.synth.generate import SynthConfig, build_split

    out = folder / "signsynth-smoke"
    for split, signers, sentences in (("train", 3, 6), ("dev", 1, 3), ("test", 1, 3)):
        build_split(SynthConfig(), out, split, num_signers=signers, limit=sentences, progress=False)
    return out


def run_variant(name: str, config: StudentConfig) -> dict:
    """Train one variant (or reuse its finished run); its row."""
    row = train_or_reuse(name, config)
    logging.info("%s: %s", name, row)
    return row


def _percent(row: dict, split: str, key: str) -> str:
    value = row.get(split, {}).get(key)
    return "-" if value is None else f"{100 * value:.2f}%"


def to_markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Student ablation on SignSynth",
        "",
        f"data `{meta['data']}`, {meta['epochs']} epochs, {meta['machine']}; "
        "WER of the best dev checkpoint (beam / greedy). Wall = training + final evaluation "
        "(training only for a reused run).",
        *([f"\n{meta['note']}"] if meta.get("note") else []),
        "",
        "| variant | dev beam | dev greedy | test beam | test greedy | params | seq/s "
        "| epochs (best) | wall | load at end |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['variant']} | {_percent(row, 'dev', 'wer_beam')} | "
            f"{_percent(row, 'dev', 'wer_greedy')} | {_percent(row, 'test', 'wer_beam')} | "
            f"{_percent(row, 'test', 'wer_greedy')} | {(row.get('parameters') or 0) / 1e6:.2f} M | "
            f"{row.get('train_sequences_per_s') or 0:.1f} | {row.get('epochs', meta['epochs'])} "
            f"({row.get('best_epoch')}) | {row['wall_s'] / 60:.1f} min | "
            f"{row.get('finished_load', '-')} |"
        )
    return "\n".join(lines) + "\n"


def throughput(frames: tuple[int, ...] = (100, 200), batch: int = 8, steps: int = 10) -> dict:
    """Training steps per second on random features for the default and the paper's size."""
    import torch

    from edge_slr.training.models import StudentDims, build_student

    torch.set_num_threads(2)
    torch.manual_seed(0)
    rows = []
    sizes = {"default": StudentDims(num_classes=1086), "paper": StudentDims.paper(1086)}
    for name, dims in sizes.items():
        model = build_student(dims).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        for t in frames:
            x, lengths = torch.randn(batch, t, 276), torch.full((batch,), t)
            targets = torch.randint(1, 1086, (batch * 10,))
            target_lengths = torch.full((batch,), 10)
            for step in range(steps + 2):  # two warm-up steps
                if step == 2:
                    started = time.perf_counter()
                out = model(x, lengths)
                loss = sum(
                    torch.nn.functional.ctc_loss(
                        logits.log_softmax(-1).transpose(0, 1), targets, out.lengths,
                        target_lengths, zero_infinity=True,
                    )
                    for logits in (out.logits, out.aux_logits)
                )  # fmt: skip
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            per_s = batch * steps / (time.perf_counter() - started)
            rows.append({"dims": name, "parameters": model.num_parameters(), "frames": t,
                         "batch": batch, "train_sequences_per_s": per_s})  # fmt: skip
            logging.info("%s T=%d: %.1f sequences/s", name, t, per_s)
    return {"machine": machine(), "threads": 2, "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="SignSynth landmark dataset folder")
    parser.add_argument("--which", choices=("all", "augment", "kernel"), default="all")
    parser.add_argument("--only", nargs="*", default=None, help="variant names to run")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--max-train-samples", type=int, default=0)
    parser.add_argument("--max-eval-samples", type=int, default=0)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "student-default.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "ablation")
    parser.add_argument("--smoke", action="store_true", help="tiny data, tiny model, 1 epoch")
    parser.add_argument("--throughput", action="store_true", help="only measure train steps/s")
    parser.add_argument("--note", default="", help="a line for the report")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    RESULTS.mkdir(parents=True, exist_ok=True)

    if args.throughput:
        report = throughput()
        (RESULTS / "student_throughput.json").write_text(json.dumps(report, indent=1) + "\n")
        print(json.dumps(report, indent=1))
        return 0

    with tempfile.TemporaryDirectory() as temp:
        if args.smoke:
            data, runs, name = (
                make_smoke_data(Path(temp)),
                Path(temp) / "runs",
                "student_ablation_smoke",
            )
            base, config_file = list(SMOKE), None
            picked = {
                k: v for k, v in variants(args.which).items() if k in ("aug:none", "kernel:3")
            }
        else:
            if args.data is None:
                parser.error("--data is required (or --smoke / --throughput)")
            suffix = "" if args.which == "all" else f"_{args.which}"
            data, runs, name = args.data, args.runs, f"student_ablation{suffix}"
            base, config_file = [f"train.epochs={args.epochs}", "train.progress=false"], args.config
            picked = variants(args.which)
            if args.only:
                picked = {k: v for k, v in picked.items() if k in args.only}
        base.insert(0, f"data.root={json.dumps(str(data))}")
        if args.max_train_samples:
            base.append(f"data.max_train_samples={args.max_train_samples}")
        if args.max_eval_samples:
            base.append(f"data.max_eval_samples={args.max_eval_samples}")
        base_config = load_config(config_file, base + args.overrides)
        meta = {"data": str(data), "epochs": base_config.train.epochs, "machine": machine(),
                "overrides": base + args.overrides, "config": base_config.to_dict(),
                "note": args.note}  # fmt: skip
        rows: list[dict] = []
        for variant, overrides in picked.items():
            out_dir = json.dumps(str(runs / variant.replace(":", "-")))
            row = run_variant(
                variant, base_config.with_overrides(overrides + [f"train.out_dir={out_dir}"])
            )
            rows.append({**row, "overrides": overrides})
            meta["machine"] = machine()
            rows = save(RESULTS / f"{name}.json", rows, meta, merge=not args.smoke)
    print(to_markdown(rows, meta))
    return 0


def save(path: Path, rows: list[dict], meta: dict, *, merge: bool) -> list[dict]:
    """Write JSON + Markdown; with ``merge`` the file's rows of other variants are kept (a run
    with --only adds its rows to the table), ordered as variants("all") lists them."""
    if merge and path.exists():
        ours = {row["variant"] for row in rows}
        on_disk = json.loads(path.read_text()).get("rows", [])
        rows = rows + [row for row in on_disk if row["variant"] not in ours]
    order = list(variants("all"))
    rows.sort(key=lambda r: order.index(r["variant"]) if r["variant"] in order else len(order))
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    path.with_suffix(".md").write_text(to_markdown(rows, meta))
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
