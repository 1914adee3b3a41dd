"""KD-MSLRT Table 7 on SignSynth: which distillation losses help the landmark student.

    variants   no KD / conv KD / BiLSTM KD / self KD / the three pairs / all three; the same
               student config, seed and data, only the [distill] switches differ
    teacher    the video teacher's own dev/test WER (it is the source of conv and BiLSTM KD)
    cost       CPU milliseconds per sentence and FLOPs of teacher and student, measured with one
               harness: batch 1, one thread, the same sentence length, forward pass only

Data: the SignSynth PHOENIX-2014-T subset of benchmarks/kd_data.py (signer-independent splits,
with video). The teacher is trained first (configs/teacher-kd-subset.toml); its outputs are
cached once for the training split. Results go to benchmarks/results/kd_ablation.{json,md}
(kd_ablation_smoke.* for --smoke); finished variants are kept in the JSON, so an interrupted run
continues where it stopped.

    python benchmarks/kd_data.py --out runs/kd-data
    edge-slr train teacher --config configs/teacher-kd-subset.toml
    python benchmarks/kd_ablation.py --data runs/kd-data --teacher runs/teacher-kd/best.pt \
        --config configs/kd-student-subset.toml
    python benchmarks/kd_ablation.py --cost-only --teacher runs/teacher-kd/best.pt
    python benchmarks/kd_ablation.py --smoke            # tiny data and models, 1 epoch (CI)

Accuracy on SignSynth says nothing about accuracy on real signing: the table shows how the
losses behave on the synthetic signer.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
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
VARIANTS: dict[str, tuple[str, ...]] = {
    "no KD": (),
    "conv KD": ("conv_kd",),
    "BiLSTM KD": ("lstm_kd",),
    "self KD": ("self_kd",),
    "conv + BiLSTM KD": ("conv_kd", "lstm_kd"),
    "conv + self KD": ("conv_kd", "self_kd"),
    "BiLSTM + self KD": ("lstm_kd", "self_kd"),
    "all three": ("conv_kd", "lstm_kd", "self_kd"),
}
SMOKE_STUDENT = ["model.conv_channels=[16,16,32,32]", "model.lstm_hidden=16", "train.beam_width=2"]
SMOKE_TEACHER = ["model.input_size=32", "model.width=0.125", "model.hidden=32",
                 "model.corr_stages=[3,4]", "train.beam_width=2"]  # fmt: skip


# -- cost: one harness for both models ------------------------------------------------------------


def _lstm_flops(model: Any, inputs: tuple) -> int:
    """FLOPs of every nn.LSTM in ``model`` (FlopCounterMode does not see the fused CPU kernel):
    2 x 4H(I + H) per step, direction and layer (gates' matrix products; elementwise omitted)."""
    import torch

    total = 0

    def hook(module: Any, args: tuple, _out: Any) -> None:
        nonlocal total
        x = args[0]
        if isinstance(x, torch.nn.utils.rnn.PackedSequence):
            steps = x.data.shape[0]  # valid steps of the whole batch
        else:
            steps = x.shape[0] * x.shape[1] if x.dim() == 3 else x.shape[0]
        directions = 2 if module.bidirectional else 1
        for layer in range(module.num_layers):
            width = module.input_size if layer == 0 else module.hidden_size * directions
            per_step = 2 * 4 * module.hidden_size * (width + module.hidden_size)
            total += steps * directions * per_step

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.LSTM)
    ]
    with torch.no_grad():
        model(*inputs)
    for handle in handles:
        handle.remove()
    return total


def model_cost(model: Any, inputs: tuple, *, repeats: int = 10) -> dict[str, float]:
    """Forward-pass FLOPs and CPU milliseconds (median, minimum) of ``model(*inputs)``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    flops = counter.get_total_flops() + _lstm_flops(model, inputs)
    times = []
    with torch.no_grad():
        model(*inputs)  # warm-up
        for _ in range(repeats):
            started = time.perf_counter()
            model(*inputs)
            times.append(1000 * (time.perf_counter() - started))
    return {
        "gflops": flops / 1e9,
        "ms_median": statistics.median(times),
        "ms_min": min(times),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def cost_table(teacher_path: Path, student_dims: Any, frames: int, repeats: int) -> dict:
    """Teacher vs student for one sentence of ``frames`` frames, batch 1, one thread."""
    import torch

    from edge_slr.training.models import build_student
    from edge_slr.training.teacher.checkpoint import load_teacher

    torch.set_num_threads(1)
    torch.manual_seed(0)
    teacher, _ = load_teacher(teacher_path)
    size = teacher.dims.input_size
    video = torch.randint(0, 256, (1, frames, size, size, 3), dtype=torch.uint8)
    student = build_student(student_dims)
    features = torch.randn(1, frames, student_dims.input_dim)

    class StudentForward(torch.nn.Module):  # the deployed path: BiLSTM head only
        def __init__(self) -> None:
            super().__init__()
            self.student = student

        def forward(self, x: Any) -> Any:
            return self.student(x, None, aux=False).logits

    rows = {
        "teacher": model_cost(teacher, (video,), repeats=repeats)
        | {"input": f"{frames} frames of {size}x{size} RGB", "dims": teacher.dims.to_dict()},
        "student": model_cost(StudentForward(), (features,), repeats=repeats)
        | {
            "input": f"{frames} x {student_dims.input_dim} landmark features",
            "dims": student_dims.to_dict(),
        },  # fmt: skip
    }
    rows["ratio"] = {
        "flops": rows["teacher"]["gflops"] / rows["student"]["gflops"],
        "ms": rows["teacher"]["ms_median"] / rows["student"]["ms_median"],
    }
    return {"frames": frames, "threads": 1, "repeats": repeats, "machine": machine(), **rows}


# -- the ablation -------------------------------------------------------------------------------


def teacher_scores(teacher: Path, data: Path, beam_width: int) -> dict:
    """The teacher's dev/test WER: its run's results.json when present, else evaluated now."""
    results = teacher.parent / "results.json"
    if results.is_file():
        data_json = json.loads(results.read_text())
        keep = ("dev", "test", "best_epoch", "train_seconds", "train_frames_per_s", "parameters")
        out = {k: data_json[k] for k in keep if k in data_json}
        pretrain = data_json.get("pretrain", {})
        out["pretrain"] = {k: v for k, v in pretrain.items() if k != "epochs"}
        history = teacher.parent / "history.json"
        if history.is_file():  # the learning curve: dev WER at each evaluation
            out["curve"] = [
                {k: row.get(k) for k in ("epoch", "train_ctc", "dev_wer_greedy", "dev_wer_beam",
                                         "elapsed_seconds")}
                for row in json.loads(history.read_text()) if row.get("dev_wer_greedy") is not None
            ]  # fmt: skip
        return out
    from edge_slr.training.teacher.train import evaluate_teacher_checkpoint

    out = {}
    for split in ("dev", "test"):
        if (data / split).is_dir():
            result = evaluate_teacher_checkpoint(teacher, data, split, beam_width=beam_width)
            out[split] = {"wer_greedy": result.greedy.wer,
                          "wer_beam": result.beam.wer if result.beam else None}  # fmt: skip
    return out


def variant_config(name: str, terms: tuple[str, ...], base: list[str], cache: Path | None,
                   runs: Path, config_file: Path | None) -> Any:  # fmt: skip
    from edge_slr.training.config import load_config

    folder = runs / name.replace(" ", "_").replace("+", "and")
    switches = [f"distill.{t}={'true' if t in terms else 'false'}" for t in VARIANTS["all three"]]
    # Variants without teacher terms get no teacher at all (the config's is cleared).
    teacher = [f"distill.teacher={cache if {'conv_kd', 'lstm_kd'} & set(terms) else ''}"]
    return load_config(config_file, [*base, *switches, *teacher, f"train.out_dir={folder}"])


def run_variant(name: str, terms: tuple[str, ...], config: Any) -> dict:
    """Train one variant (or reuse its finished run); its row with dev/test WER and times."""
    row = {**train_or_reuse(name, config), "terms": list(terms)}
    logging.info("%s: %s", name, row)
    return row


def _percent(scores: dict | None, key: str) -> str:
    value = (scores or {}).get(key)
    return "-" if value is None else f"{100 * value:.2f}%"


def to_markdown(report: dict) -> str:
    meta = report["meta"]
    lines = [
        "# Knowledge distillation ablation (KD-MSLRT Table 7) on SignSynth",
        "",
        f"data `{meta['data']}` ({meta.get('data_note', '')}); student `{meta['student']}`, "
        f"{meta['epochs']} epochs; teacher `{meta['teacher']}`; {meta['machine']}. "
        "WER of the best dev checkpoint, beam / greedy. SignSynth accuracy says nothing about "
        "real signing.",
        "",
        "| variant | conv KD | BiLSTM KD | self KD | dev beam | dev greedy | test beam | test greedy "
        "| epochs (best) | wall | load at end |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        marks = ["x" if t in row["terms"] else "" for t in VARIANTS["all three"]]
        lines.append(
            f"| {row['variant']} | {' | '.join(marks)} | {_percent(row.get('dev'), 'wer_beam')} | "
            f"{_percent(row.get('dev'), 'wer_greedy')} | {_percent(row.get('test'), 'wer_beam')} | "
            f"{_percent(row.get('test'), 'wer_greedy')} | {row.get('epochs', meta['epochs'])} "
            f"({row.get('best_epoch')}) | {row['wall_s'] / 60:.1f} min | "
            f"{row.get('finished_load', '-')} |"
        )
    teacher = report.get("teacher_wer", {})
    if teacher:
        lines.append(
            f"| **teacher (video)** | | | | {_percent(teacher.get('dev'), 'wer_beam')} | "
            f"{_percent(teacher.get('dev'), 'wer_greedy')} | {_percent(teacher.get('test'), 'wer_beam')} | "
            f"{_percent(teacher.get('test'), 'wer_greedy')} | {teacher.get('best_epoch')} | | |"
        )
    lines += [""] + [f"- {note}" for note in meta.get("notes", [])] if meta.get("notes") else []
    curve = teacher.get("curve")
    if curve:
        pretrain = teacher.get("pretrain", {})
        lines += [
            "",
            f"Teacher training: backbone pretraining {pretrain.get('seconds', 0) / 60:.0f} min "
            f"(frame accuracy {100 * pretrain.get('frame_accuracy', 0):.1f}% on sampled training "
            f"frames), then CTC training {teacher.get('train_seconds', 0) / 60:.0f} min "
            f"({teacher.get('train_frames_per_s', 0):.0f} frames/s); best epoch "
            f"{teacher.get('best_epoch')}. Dev WER during training:",
            "",
            "| epoch | train CTC | dev greedy | dev beam | elapsed |",
            "|---|---|---|---|---|",
        ]
        for row in curve:
            lines.append(
                f"| {row['epoch']} | {row['train_ctc']:.3f} | {_percent(row, 'dev_wer_greedy')} | "
                f"{_percent(row, 'dev_wer_beam')} | {row['elapsed_seconds'] / 60:.0f} min |"
            )
    cost = report.get("cost")
    if cost:
        lines += [
            "",
            f"Cost per sentence ({cost['frames']} frames, batch 1, {cost['threads']} thread, "
            f"forward only, median of {cost['repeats']}; {cost['machine']}):",
            "",
            "| model | input | parameters | GFLOPs | ms (median) | ms (min) |",
            "|---|---|---|---|---|---|",
        ]
        for name in ("teacher", "student"):
            row = cost[name]
            lines.append(
                f"| {name} | {row['input']} | {row['parameters'] / 1e6:.2f} M | "
                f"{row['gflops']:.3f} | {row['ms_median']:.1f} | {row['ms_min']:.1f} |"
            )
        lines.append(
            f"\nteacher / student: {cost['ratio']['flops']:.1f}x the FLOPs, "
            f"{cost['ratio']['ms']:.1f}x the time."
        )
    return "\n".join(lines) + "\n"


def make_smoke(folder: Path) -> tuple[Path, Path]:
    """Tiny video dataset (built-in sentences, 32 px) and a 1-epoch teacher on it."""
    from edge_slr.data.synth.generate import SynthConfig, build_split
    from edge_slr.training.teacher.config import load_teacher_config
    from edge_slr.training.teacher.train import train_teacher

    data = folder / "data"
    for split, signers, sentences in (("train", 2, 3), ("dev", 1, 2), ("test", 1, 2)):
        build_split(SynthConfig(frame_size=32), data, split, num_signers=signers,
                    limit=sentences, frames=True, progress=False)  # fmt: skip
    overrides = [f"data.root={data}", f"train.out_dir={folder / 'teacher'}", "train.epochs=1",
                 "train.progress=false", *SMOKE_TEACHER]  # fmt: skip
    result = train_teacher(load_teacher_config(None, overrides))
    return data, result.best_checkpoint


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "runs" / "kd-data")
    parser.add_argument("--teacher", type=Path, default=ROOT / "runs" / "teacher-kd" / "best.pt")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "kd-student-subset.toml")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--only", nargs="*", default=None, help="variant names to run")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "kd-ablation")
    parser.add_argument("--frames", type=int, default=100, help="sentence length for the cost")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--cost-only", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="ignore finished variants")
    parser.add_argument("--note", action="append", default=[], help="a line for the report")
    parser.add_argument("--skip-cost", action="store_true", help="keep the recorded cost")
    parser.add_argument(
        "--skip-teacher-eval", action="store_true", help="keep the recorded teacher WER"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny data and models, 1 epoch")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    RESULTS.mkdir(parents=True, exist_ok=True)

    from edge_slr.training.config import load_config
    from edge_slr.training.teacher.cache import teacher_outputs

    with tempfile.TemporaryDirectory() as temp:
        base = [f"train.epochs={args.epochs}", "train.progress=false", *args.overrides]
        config_file: Path | None = args.config
        if args.smoke:
            data, teacher = make_smoke(Path(temp))
            runs, name, config_file = Path(temp) / "runs", "kd_ablation_smoke", None
            base = ["train.epochs=1", "train.progress=false", *SMOKE_STUDENT]
            args.repeats = 2
        else:
            data, teacher, runs, name = args.data, args.teacher, args.runs, "kd_ablation"
        base.insert(0, f"data.root={data}")
        student = load_config(config_file, base)
        out_json = RESULTS / f"{name}.json"
        report: dict[str, Any] = {"rows": []}
        if out_json.exists() and not (args.smoke or args.fresh):
            report = json.loads(out_json.read_text())
        report["meta"] = {
            "data": str(data),
            "data_note": "PHOENIX-2014-T sentences of the 80 most frequent glosses, SignSynth "
            "signers, signer-independent"
            if not args.smoke
            else "tiny built-in sentences",
            "student": str(config_file) if config_file else "defaults + smoke sizes",
            "overrides": base,
            "epochs": student.train.epochs,
            "teacher": str(teacher),
            "machine": machine(),
            "notes": args.note or report.get("meta", {}).get("notes", []),
        }
        student_dims = student.model.dims(num_classes=student_vocab_size(data), input_dim=276)
        if not args.skip_cost:
            report["cost"] = cost_table(teacher, student_dims, args.frames, args.repeats)
        if not (args.cost_only or args.skip_teacher_eval):
            report["teacher_wer"] = teacher_scores(teacher, data, student.train.beam_width)
        cache = None
        done = {row["variant"] for row in report["rows"]}
        for variant, terms in VARIANTS.items():
            if args.cost_only or (args.only and variant not in args.only) or variant in done:
                continue
            if cache is None and {"conv_kd", "lstm_kd"} & set(terms):
                cache = teacher_outputs(
                    teacher, data, student.data.train_split, cache_dir=runs / "teacher-cache",
                    batch_size=student.distill.cache_batch_size, progress=False,
                ).path  # fmt: skip
            config = variant_config(variant, terms, base, cache, runs, config_file)
            report["rows"].append(run_variant(variant, terms, config))
            report = save(report, out_json, merge=not args.smoke)
        report = save(report, out_json, merge=not args.smoke)
        print(to_markdown(report))
    return 0


def save(report: dict, path: Path, *, merge: bool) -> dict:
    """Write the JSON and Markdown; rows another run wrote meanwhile are kept (two runs may
    share the file, e.g. the teacher-free variants started while the teacher trains)."""
    if merge and path.exists():
        on_disk = json.loads(path.read_text())
        ours = {row["variant"] for row in report["rows"]}
        report["rows"] += [row for row in on_disk.get("rows", []) if row["variant"] not in ours]
        for key in ("cost", "teacher_wer"):
            if key not in report and key in on_disk:
                report[key] = on_disk[key]
    report["rows"].sort(key=lambda r: list(VARIANTS).index(r["variant"]))
    path.write_text(json.dumps(report, indent=1) + "\n")
    path.with_suffix(".md").write_text(to_markdown(report))
    return report


def student_vocab_size(data: Path) -> int:
    from edge_slr.decoding.vocab import Vocabulary

    return len(Vocabulary.load(data / "vocabulary.json"))


if __name__ == "__main__":
    raise SystemExit(main())
