#!/usr/bin/env python
"""Student training throughput (sequences/s): fp32 vs bf16 autocast, CPU (and CUDA when present).

One training step is the real one of edge_slr.training.train: forward (under autocast), CTC of
both heads in fp32, backward, gradient clipping, Adam. Batches are random features with
PHOENIX-2014's shape: 276 features a frame, lengths drawn around its train split's mean of
141 frames (5,672 videos, 799,006 frames), 11 glosses a sentence over 1,232 classes; the data
pipeline is not timed (DataLoader workers hide it). From the rate, the time of one PHOENIX-2014
training epoch and of the paper's 60 epochs is *computed* (rows marked so), not measured.

    python benchmarks/train_throughput.py                       # cpu fp32 / bf16, both sizes
    python benchmarks/train_throughput.py --devices cpu,cuda --threads 8 --steps 30
    python benchmarks/train_throughput.py --smoke               # seconds, for the test suite

Writes RESULTS/train_throughput[_smoke].json and .md (RESULTS: --results, default
benchmarks/results). Run it on an idle machine: a shared CPU gives meaningless rates.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

PHOENIX_TRAIN_SENTENCES = 5672
PHOENIX_MEAN_FRAMES = 141
PHOENIX_GLOSSES = 11
PHOENIX_CLASSES = 1232
PAPER_EPOCHS = 60  # configs/student-paper.toml
SIZES = {
    "student-default": {"conv_channels": (64, 64, 128, 128), "lstm_hidden": 64},
    "student-paper": {"conv_channels": (256, 256, 512, 512), "lstm_hidden": 256},
}


def batches(torch: Any, count: int, batch_size: int, frames: int, seed: int = 0) -> list[Any]:
    from edge_slr.training.data import Batch

    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        lengths = torch.randint(
            int(0.7 * frames), int(1.3 * frames) + 1, (batch_size,), generator=g
        )
        features = torch.randn(batch_size, int(lengths.max()), 276, generator=g)
        glosses = min(PHOENIX_GLOSSES, max(1, frames // 12))
        target_lengths = torch.full((batch_size,), glosses, dtype=torch.int64)
        targets = torch.randint(1, PHOENIX_CLASSES, (batch_size * glosses,), generator=g)
        mask = torch.arange(features.shape[1])[None] < lengths[:, None]
        ids = [str(i) for i in range(batch_size)]
        out.append(
            Batch(
                ids,
                features,
                lengths,
                mask,
                targets,
                target_lengths,
                [()] * batch_size,
                [25.0] * batch_size,
            )
        )
    return out


def measure(
    torch: Any, size: str, device: str, amp: str, args: argparse.Namespace
) -> dict[str, Any]:
    from edge_slr.training.hardware import Hardware, fp32_outputs
    from edge_slr.training.models import StudentDims, build_student

    hw = Hardware.create(torch, device, amp)
    dims = StudentDims(
        num_classes=PHOENIX_CLASSES, lstm_layers=2, pre_lstm="layernorm", **SIZES[size]
    )
    torch.manual_seed(0)
    model = hw.wrap(build_student(dims))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    data = batches(torch, args.warmup + args.steps, args.batch_size, args.frames)

    def step(batch: Any) -> None:
        batch = hw.to_device(batch)
        with hw.autocast():
            out = model(batch.features, batch.lengths)
        out = fp32_outputs(out)
        loss = 0
        for logits in (out.logits, out.aux_logits):
            loss = loss + torch.nn.functional.ctc_loss(
                logits.log_softmax(-1).transpose(0, 1), batch.targets, out.lengths,
                batch.target_lengths, blank=0, zero_infinity=True,
            )  # fmt: skip
        hw.backward(loss)
        hw.step(optimizer, model.parameters(), 5.0)
        optimizer.zero_grad(set_to_none=True)

    model.train()
    for batch in data[: args.warmup]:
        step(batch)
    if hw.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for batch in data[args.warmup :]:
        step(batch)
    if hw.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    rate = args.steps * args.batch_size / seconds
    epoch_min = PHOENIX_TRAIN_SENTENCES / rate / 60
    return {
        "model": size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": str(hw.device),
        "amp": amp,
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "mean_frames": args.frames,
        "steps": args.steps,
        "sequences_per_s": rate,
        "computed_phoenix2014_epoch_minutes": epoch_min,
        "computed_phoenix2014_60_epochs_hours": epoch_min * PAPER_EPOCHS / 60,
    }


def markdown(rows: list[dict[str, Any]], machine: str, load: tuple[float, float]) -> str:
    lines = [
        "# Student training throughput",
        "",
        f"Machine: {machine}; load average {load[0]:.1f} at start, {load[1]:.1f} at end.",
        "Sequences/s measured; the PHOENIX-2014 times are **computed** from them "
        f"({PHOENIX_TRAIN_SENTENCES:,} train sentences an epoch, {PAPER_EPOCHS} epochs).",
        "",
        "| model | params | device | amp | threads | batch | seq/s | epoch (computed) | "
        f"{PAPER_EPOCHS} epochs (computed) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['parameters'] / 1e6:.2f} M | {r['device']} | {r['amp']} | "
            f"{r['threads']} | {r['batch_size']} | {r['sequences_per_s']:.1f} | "
            f"{r['computed_phoenix2014_epoch_minutes']:.1f} min | "
            f"{r['computed_phoenix2014_60_epochs_hours']:.1f} h |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--devices", default="cpu", help="comma list: cpu, cuda, cuda:N")
    p.add_argument("--amp", default="none,bf16", help="comma list of none, bf16, fp16 (CUDA)")
    p.add_argument("--models", default=",".join(SIZES), help=f"comma list of {', '.join(SIZES)}")
    p.add_argument("--threads", type=int, default=2, help="torch threads on the CPU")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--frames", type=int, default=PHOENIX_MEAN_FRAMES, help="mean sentence length")
    p.add_argument("--steps", type=int, default=20, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    p.add_argument("--smoke", action="store_true", help="tiny: 2 steps of batch 2, 40 frames")
    args = p.parse_args()
    if args.smoke:
        args.steps, args.warmup, args.batch_size, args.frames = 2, 1, 2, 40
        args.models, args.threads = "student-default", 1

    from edge_slr._optional import require
    from edge_slr.system import machine_info

    torch = require("torch", "the training throughput benchmark")
    torch.set_num_threads(args.threads)
    start_load = os.getloadavg()[0]
    rows = []
    for device in args.devices.split(","):
        for size in args.models.split(","):
            for amp in args.amp.split(","):
                if amp == "fp16" and not device.startswith("cuda"):
                    continue  # fp16 autocast needs CUDA
                rows.append(measure(torch, size, device, amp, args))
                print(json.dumps(rows[-1]))
    machine = machine_info().cpu_model
    load = (start_load, os.getloadavg()[0])
    name = "train_throughput_smoke" if args.smoke else "train_throughput"
    args.results.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine, "load_average": load, "rows": rows}
    (args.results / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n", "utf-8")
    (args.results / f"{name}.md").write_text(markdown(rows, machine, load), "utf-8")
    print(markdown(rows, machine, load))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
