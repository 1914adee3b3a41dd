"""CPU cost of the video teacher vs the landmark student per sentence, one harness, one run.

    python benchmarks/model_cost.py --model-dir /tmp/h8/models       # recorded results
    python benchmarks/model_cost.py --smoke --out /tmp/x               # CI: tiny random models

Subjects, each batch 1 and one thread (torch, ONNX Runtime, OpenVINO; MediaPipe runs its own
graph threads, so CPU ms is recorded beside wall ms):

* the CorrNet-style teacher (edge_slr.training.teacher): the trained one (``--teacher``, its input
  size and width from its dims) and the paper-size configuration (full-width ResNet-18, 224 x 224,
  correlation after stages 2-4, BiLSTM 2 x 512; random weights: latency does not depend on them).
  Input: rendered RGB frames already in memory (SignSynth frames of ``--frames-data`` resized to
  the teacher's size); rendering/decoding and resizing are not timed;
* the student in torch (``--student`` and StudentDims.paper) and every converted model in
  ``--model-dir`` (edge_slr.runtimes, ``threads=1``);
* the student's front end: MediaPipe Holistic (video mode, tracking) on the frames of a real
  video (``--video``, decoded once beforehand, played forwards and backwards so that motion stays
  continuous for any T), and the landmark features of the checkpoint's preset.

Timing: ``--warmup`` rounds, then up to ``--rounds`` rounds (stopped early by ``--budget`` s); in
each round every subject runs every length once, interleaved, so machine load hits all alike.
Subjects faster than ~0.3 s run several times per round (all samples kept). Median/p90/min wall
ms and median process CPU ms per sentence. FLOPs: torch.utils.flop_counter.FlopCounterMode on one
forward (torch subjects; LSTMs it does not see on CPU added from forward hooks), and
edge_slr.benchmark.flops (analytic) for every student.
Writes model_cost.{json,md} (model_cost_smoke.* for --smoke) to ``--out`` (default
benchmarks/results).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAPER_TABLE1 = "paper's Table 1 (not measured here): video teacher 5485 ms vs student 28 ms"


@dataclass
class Subject:
    name: str
    role: str  # "teacher", "student", "front end"
    info: dict[str, Any]
    calls: dict[int, Callable[[], Any]]  # T -> one sentence
    flops: dict[int, dict[str, Any]] = field(default_factory=dict)
    repeat: dict[int, int] = field(default_factory=dict)
    model: Any = None  # torch subjects: for the FLOP count
    wall: dict[int, list[float]] = field(default_factory=dict)
    cpu: dict[int, list[float]] = field(default_factory=dict)


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3


def lstm_flops(torch: Any, module: Any, inputs: tuple) -> int:
    """FLOPs of one nn.LSTM call (gate matrices, every layer and direction; 2 per MAC)."""
    x = inputs[0]
    packed = isinstance(x, torch.nn.utils.rnn.PackedSequence)
    steps = int(x.batch_sizes.sum()) if packed else int(x.shape[0] * x.shape[1])
    dirs, hidden, size_in, macs = 1 + int(module.bidirectional), module.hidden_size, 0, 0
    size_in = module.input_size
    for _ in range(module.num_layers):
        macs += dirs * steps * 4 * hidden * (size_in + hidden)
        size_in = dirs * hidden
    return 2 * macs


def count_flops(torch: Any, model: Any, fn: Callable[[], Any]) -> dict[str, Any]:
    """FlopCounterMode on one forward, plus the LSTMs it does not see.

    On CPU the counter sees an LSTM over a packed sequence (it decomposes into matrix products)
    but not a plain one (aten::lstm); the hook term is added only for LSTMs it saw nothing of.
    """
    from torch.utils.flop_counter import FlopCounterMode

    root = type(model).__name__
    lstms = {f"{root}.{n}": m for n, m in model.named_modules() if isinstance(m, torch.nn.LSTM)}
    hooked = {name: 0 for name in lstms}

    def hook(name: str) -> Callable[..., None]:
        def record(module: Any, inputs: tuple, _: Any) -> None:
            hooked[name] += lstm_flops(torch, module, inputs)

        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in lstms.items()]
    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            fn()
    finally:
        for handle in handles:
            handle.remove()
    counts = {k: int(sum(v.values())) for k, v in counter.get_flop_counts().items()}
    added = sum(f for name, f in hooked.items() if counts.get(name, 0) == 0)
    total = int(counter.get_total_flops())
    depths: dict[str, dict[int, int]] = {}  # the model's children: their top-most entries
    for key, flops in counts.items():
        bits = key.split(".")
        if len(bits) > 1:
            level = depths.setdefault(bits[1], {})
            level[len(bits)] = level.get(len(bits), 0) + flops
    parts = {child: level[min(level)] for child, level in depths.items()}
    return {"flop_counter": total, "lstm_hooks": added, "total": total + added, "by_module": parts}


# -- inputs ------------------------------------------------------------------------------------
def teacher_frames(frames_data: Path | None, frames: int, size: int, seed: int = 0) -> tuple:
    """(T, size, size, 3) uint8 rendered frames (SignSynth sentences back to back) or random."""
    from edge_slr.training.teacher.data import resize_frames

    files = sorted(glob.glob(str(frames_data / "test" / "*.frames.npz"))) if frames_data else []
    chunks, total = [], 0
    for path in files:
        chunks.append(resize_frames(np.load(path)["frames"], size))
        total += len(chunks[-1])
        if total >= frames:
            return np.concatenate(chunks)[:frames], f"SignSynth frames of {frames_data}"
    data = np.random.default_rng(seed).integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
    return data, "random uint8 frames"


def pingpong(count: int, frames: int, start: int = 0) -> list[int]:
    cycle = list(range(count)) + list(range(count - 2, 0, -1)) or [0]
    return [cycle[(start + i) % len(cycle)] for i in range(frames)]


def video_frames(video: Path) -> np.ndarray:
    from edge_slr.landmarks.video import open_frames

    return np.stack(list(open_frames(video).frames()))


# -- subjects ----------------------------------------------------------------------------------
def teacher_subject(torch: Any, name: str, model: Any, args: Any, info: dict) -> Subject:
    size = model.dims.input_size
    calls, frames_source = {}, ""
    for t in args.lengths:
        frames, frames_source = teacher_frames(args.frames_data, t, size)
        x = torch.from_numpy(frames)[None]
        calls[t] = lambda x=x: model(x)
    info |= {
        "params": model.num_parameters(), "dims": model.dims.to_dict(), "engine": "torch fp32",
        "input": f"{size}x{size} RGB uint8 frames ({frames_source}); rendering not timed",
        "input_bytes_per_frame": size * size * 3,
    }  # fmt: skip
    return Subject(name, "teacher", info, calls, model=model)


def student_torch_subject(torch: Any, name: str, model: Any, features: dict, info: dict) -> Subject:
    calls = {}
    for t, x in features.items():
        tensor = torch.from_numpy(x)[None]
        calls[t] = lambda tensor=tensor: model(tensor, None, aux=False)
    params = sum(p.numel() for p in model.parameters())
    info |= {"params": params, "dims": model.dims.to_dict(), "engine": "torch fp32"}
    return Subject(name, "student", info, calls, model=model)


def model_bytes(path: Path) -> int:
    """A model file and its weights file (OpenVINO .bin, ONNX external .data)."""
    extra = (
        path.with_suffix(".bin") if path.suffix == ".xml" else path.with_name(path.name + ".data")
    )
    return path.stat().st_size + (extra.stat().st_size if extra.exists() else 0)


def runtime_subjects(model_dir: Path, features: dict, closers: list, paper: Any) -> list[Subject]:
    """Every converted student in ``model_dir``, tagged "paper size" when its dims are paper's."""
    from edge_slr.runtimes import load_runtime

    keys = ("num_classes", "conv_channels", "kernel_size", "lstm_hidden", "lstm_layers")
    paper_dims = json.loads(json.dumps({k: paper.to_dict()[k] for k in keys}))
    subjects = []
    for sidecar in sorted(model_dir.glob("*.json")):
        meta = json.loads(sidecar.read_text())
        if meta.get("source", {}).get("kind") != "student":
            continue
        path = sidecar.with_suffix("")
        rt = load_runtime(path, threads=1)
        closers.append(rt.close)
        calls = {t: (lambda rt=rt, x=x[None]: rt.run(x)) for t, x in features.items()}
        precision, dims = meta.get("precision", {}), meta["source"].get("dims") or {}
        family = "paper size" if {k: dims.get(k) for k in keys} == paper_dims else "trained"
        info = {
            "engine": f"{rt.name} {precision.get('weights')}/{precision.get('activations')}",
            "model": str(path), "size_bytes": model_bytes(path), "family": family,
            "dims": dims or None, "source_sha256": meta["source"].get("sha256"),
            "weights": "converted from " + str(meta["source"].get("checkpoint")),
        }  # fmt: skip
        name = f"deployed {family} {path.name} ({rt.name})"
        subjects.append(Subject(name, "student", info, calls))
    return subjects


def extraction_subjects(video: Path, lengths: list[int], preset: Any, closers: list) -> tuple:
    """MediaPipe Holistic on T frames of a real video, and the preset features of its output."""
    from edge_slr.landmarks.extract import HolisticExtractor, HolisticOptions

    rgb = video_frames(video)
    extractor = HolisticExtractor.create_from_options(HolisticOptions())
    closers.append(extractor.close)
    clock = {"frame": 0}  # one endless stream: timestamps keep rising, tracking is kept

    def sentence(t: int) -> np.ndarray:
        rows = []
        for index in pingpong(len(rgb), t, clock["frame"]):
            rows.append(extractor.extract_video_frame(rgb[index], clock["frame"] * 33))
            clock["frame"] += 1
        return np.stack(rows)

    landmarks = {t: sentence(t) for t in lengths}  # also the graph's warm-up
    features = {t: preset.features(x).astype(np.float32) for t, x in landmarks.items()}
    height, width = rgb.shape[1:3]
    info = {
        "engine": "mediapipe holistic (solutions, video mode, model_complexity 1)",
        "input": f"{width}x{height} RGB frames of {video.name} ({len(rgb)} frames, played "
        "forwards and backwards), decoded beforehand: decoding not timed",
        "input_bytes_per_frame": int(width * height * 3),
        "flops": "not counted (TFLite graphs inside mediapipe)",
    }
    ext = Subject("landmark extraction (MediaPipe Holistic)", "front end", info,
                  {t: (lambda t=t: sentence(t)) for t in lengths})  # fmt: skip
    feat = Subject(f"landmark features (preset {preset.name})", "front end",
                   {"engine": "numpy"},
                   {t: (lambda x=x: preset.features(x)) for t, x in landmarks.items()})  # fmt: skip
    return [ext, feat], features


def fallback_features(lengths: list[int], width: int, data: Path | None, preset: Any) -> tuple:
    files = sorted(glob.glob(str(data / "test" / "*.npz"))) if data else []
    files = [f for f in files if not f.endswith(".frames.npz")]
    if files:
        seq = np.concatenate([np.load(f)["data"] for f in files[:40]])
        if len(seq) >= max(lengths):
            return {t: preset.features(seq[:t]).astype(np.float32) for t in lengths}, str(data)
    rng = np.random.default_rng(0)
    return {t: rng.standard_normal((t, width)).astype(np.float32) for t in lengths}, "random"


def build_subjects(args: argparse.Namespace, closers: list) -> tuple[list[Subject], list[str]]:
    import torch

    from edge_slr.landmarks.presets import get_preset
    from edge_slr.training.models import StudentDims, build_student
    from edge_slr.training.teacher.corrnet import TeacherDims, build_teacher

    torch.manual_seed(0)
    notes: list[str] = []
    if args.smoke:
        student = build_student(StudentDims(num_classes=12, conv_channels=(16, 16, 32, 32),
                                            lstm_hidden=16)).eval()  # fmt: skip
        student_info = {"weights": "random (smoke)"}
        teacher = build_teacher(TeacherDims(num_classes=12, input_size=32, width=0.25)).eval()
        teacher_info = {"weights": "random (smoke)"}
        preset_name, classes = "kdmslrt92", 12
    else:
        from edge_slr.training.checkpoint import load_student
        from edge_slr.training.teacher.checkpoint import load_teacher

        student, ckpt = load_student(args.student)
        student_info = {"weights": f"trained: {args.student}"}
        teacher, _ = load_teacher(args.teacher)
        teacher_info = {"weights": f"trained: {args.teacher}"}
        preset_name, classes = ckpt.preset["name"], student.dims.num_classes
    preset = get_preset(preset_name)

    front: list[Subject] = []
    if args.video is not None and args.video.exists():
        try:
            front, features = extraction_subjects(args.video, args.lengths, preset, closers)
            source = f"Holistic landmarks of {args.video.name} -> preset {preset.name}"
        except ImportError as err:  # mediapipe/cv2 missing: MissingDependencyError
            notes.append(f"front end not measured: {err}")
    if not front:
        features, source = fallback_features(
            args.lengths, student.dims.input_dim, args.landmark_data, preset
        )
        notes.append(f"no video: student input features from {source}")
    notes.append(f"student input: {source}")

    teachers = [teacher_subject(torch, "teacher (trained)", teacher.eval(), args, teacher_info)]
    if args.smoke:
        paper_teacher = TeacherDims(num_classes=classes, input_size=48, width=0.25)
        paper_student = StudentDims(num_classes=classes, conv_channels=(32, 32, 64, 64),
                                    lstm_hidden=32)  # fmt: skip
        label = "random weights, smoke stand-in for the paper size"
    else:
        paper_teacher = TeacherDims(
            num_classes=classes, input_size=224, width=1.0, stem="imagenet",
            corr_stages=(2, 3, 4), hidden=1024, lstm_layers=2,
        )  # fmt: skip
        paper_student = StudentDims.paper(classes)
        label = "random weights (latency does not depend on them)"
    teachers.append(teacher_subject(torch, "teacher (paper size)",
                                    build_teacher(paper_teacher).eval(), args,
                                    {"weights": label}))  # fmt: skip
    students = [
        student_torch_subject(torch, "student (trained, torch)", student, features, student_info),
        student_torch_subject(torch, "student (paper size, torch)",
                              build_student(paper_student).eval(), features, {"weights": label}),
    ]  # fmt: skip
    for model_dir in args.model_dir:
        students += runtime_subjects(model_dir, features, closers, paper_student)

    from edge_slr.benchmark.flops import student_flops

    for subject in teachers + students:
        for t, call in subject.calls.items():
            if subject.info["engine"] == "torch fp32":
                subject.flops[t] = count_flops(torch, subject.model, call)
            if subject.role == "student" and subject.info.get("dims"):
                subject.flops.setdefault(t, {})["analytic"] = student_flops(subject.info["dims"], t)
    return front + teachers + students, notes


def smoke_models(out: Path) -> Path | None:
    """A tiny random student converted to ONNX (CI: the converted-model path), if onnx is here."""
    from edge_slr.converters import convert
    from edge_slr.decoding.vocab import Vocabulary
    from edge_slr.landmarks.presets import get_preset
    from edge_slr.training.checkpoint import save_checkpoint
    from edge_slr.training.config import StudentConfig
    from edge_slr.training.models import StudentDims, build_student

    vocab = Vocabulary.from_sentences([("RAIN", "SUN", "WIND")])
    dims = StudentDims(num_classes=len(vocab), conv_channels=(16, 16, 32, 32), lstm_hidden=16)
    path = save_checkpoint(out / "smoke.pt", build_student(dims).eval(), vocabulary=vocab,
                           preset=get_preset("kdmslrt92"), config=StudentConfig().to_dict())  # fmt: skip
    try:
        convert(path, "onnx", out / "models")
    except ImportError as err:
        print(f"smoke: no converted model ({err})")
        return None
    return out / "models"


# -- measuring -------------------------------------------------------------------------------
def measure(subjects: list[Subject], args: argparse.Namespace) -> int:
    """Warm-up rounds (also sizing the repeats), then interleaved timed rounds; rounds done."""
    for _ in range(args.warmup):
        for t in args.lengths:
            for s in subjects:
                wall, _ = timed(s.calls[t])
                s.repeat[t] = max(1, min(args.max_repeat, round(300.0 / max(wall, 1e-3))))
    started, done = time.perf_counter(), 0
    for r in range(args.rounds):
        round_start = time.perf_counter()
        for t in args.lengths:
            for s in subjects:
                for _ in range(s.repeat.get(t, 1)):
                    wall, cpu = timed(s.calls[t])
                    s.wall.setdefault(t, []).append(wall)
                    s.cpu.setdefault(t, []).append(cpu)
        done += 1
        took = time.perf_counter() - round_start
        print(f"round {r + 1}/{args.rounds}: {took:.1f} s, load {os.getloadavg()[0]:.1f}")
        if time.perf_counter() - started + took > args.budget:
            break
    return done


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p90_ms": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3),
        "min_ms": round(ordered[0], 3),
        "n": len(ordered),
    }


def flops_of(s: Subject, t: int) -> int | None:
    entry = s.flops.get(t, {})
    return entry.get("total", entry.get("analytic"))


def rows(subjects: list[Subject], lengths: list[int]) -> list[dict[str, Any]]:
    out = []
    for s in subjects:
        for t in lengths:
            flops = flops_of(s, t)
            out.append({
                "subject": s.name, "role": s.role, "frames": t, "wall": stats(s.wall[t]),
                "cpu_median_ms": round(statistics.median(s.cpu[t]), 3),
                "flops": s.flops.get(t), "flops_per_frame": None if flops is None else flops / t,
            })  # fmt: skip
    return out


def ratios(subjects: list[Subject], lengths: list[int]) -> list[dict[str, Any]]:
    """Teacher / student ratios of median wall ms, median CPU ms and FLOPs, for each T.

    Each teacher is compared with the torch student of its size, with the fastest converted
    student of its size (else of the other), and end to end with the front end added.
    """
    by_name = {s.name: s for s in subjects}
    out = []
    for t in lengths:
        med = {s.name: statistics.median(s.wall[t]) for s in subjects}
        cpu = {s.name: statistics.median(s.cpu[t]) for s in subjects}
        front = [s.name for s in subjects if s.role == "front end"]
        fastest = {}
        for family in ("trained", "paper size"):
            deployed = [s for s in subjects if s.info.get("family", "trained") == family
                        and "model" in s.info]  # fmt: skip
            if deployed:
                fastest[family] = min(deployed, key=lambda s: med[s.name]).name
        pairs = []
        for family, torch_student in (("trained", "student (trained, torch)"),
                                      ("paper size", "student (paper size, torch)")):  # fmt: skip
            teacher = f"teacher ({family})"
            pairs.append((teacher, [torch_student]))
            best = fastest.get(family) or next(iter(fastest.values()), None)
            if best is not None:
                pairs += [(teacher, [best])] + ([(teacher, front + [best])] if front else [])
        for teacher, parts in pairs:
            if teacher not in by_name or any(p not in by_name for p in parts):
                continue
            flops = [flops_of(by_name[p], t) for p in parts]
            t_flops = flops_of(by_name[teacher], t)
            out.append({
                "frames": t, "teacher": teacher, "student": " + ".join(parts),
                "teacher_ms": round(med[teacher], 3),
                "student_ms": round(sum(med[p] for p in parts), 3),
                "latency_ratio": round(med[teacher] / sum(med[p] for p in parts), 2),
                "teacher_cpu_ms": round(cpu[teacher], 3),
                "student_cpu_ms": round(sum(cpu[p] for p in parts), 3),
                "cpu_ratio": round(cpu[teacher] / sum(cpu[p] for p in parts), 2),
                "flops_ratio": None if t_flops is None or None in flops
                else round(t_flops / sum(flops), 1),
                "flops_ratio_note": "MediaPipe FLOPs unknown" if len(parts) > 1 else "",
            })  # fmt: skip
    return out


def gflops(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e9:.4g}"


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"# Teacher vs student CPU cost per sentence ({m.get('cpu_model')}, "
        f"{m.get('usable_cpus')} cores, load {report['load_before']} -> {report['load_after']})",
        "",
        f"Batch 1, 1 thread (MediaPipe: its own graph threads), {report['settings']['warmup']} "
        f"warm-up round(s), {report['rounds_done']} timed round(s), subjects interleaved in each "
        "round; median / p90 / min of wall ms per sentence, median process CPU ms. "
        "GFLOPs: torch FlopCounterMode + LSTM gate matrices from forward hooks (torch rows), "
        "edge_slr.benchmark.flops analytic count (every student row).",
        "",
        "| subject | T | params / size | median ms | p90 ms | min ms | n | CPU ms | ms/frame "
        "| GFLOPs/sentence | MFLOPs/frame | analytic GFLOPs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    info = {s["name"]: s for s in report["subjects"]}
    for r in report["rows"]:
        i, w, f = info[r["subject"]], r["wall"], r["flops"] or {}
        size = f"{i['params'] / 1e6:.2f} M" if "params" in i else (
            f"{i['size_bytes'] / 1e6:.2f} MB" if "size_bytes" in i else "-")  # fmt: skip
        per_frame = "-" if r["flops_per_frame"] is None else f"{r['flops_per_frame'] / 1e6:.4g}"
        lines.append(
            f"| {r['subject']} | {r['frames']} | {size} | {w['median_ms']:.1f} | {w['p90_ms']:.1f} "
            f"| {w['min_ms']:.1f} | {w['n']} | {r['cpu_median_ms']:.1f} "
            f"| {w['median_ms'] / r['frames']:.2f} | {gflops(f.get('total', f.get('analytic')))} "
            f"| {per_frame} | {gflops(f.get('analytic'))} |"
        )
    lines += ["", "## Ratios (teacher / student; sums of medians for composite students)", "",
              "| T | teacher | student | teacher ms | student ms | latency ratio "
              "| teacher CPU ms | student CPU ms | CPU ratio | FLOPs ratio |",
              "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in report["ratios"]:
        fr = "-" if r["flops_ratio"] is None else f"{r['flops_ratio']}"
        fr += (
            f" ({r['flops_ratio_note']})"
            if r["flops_ratio"] is None and r["flops_ratio_note"]
            else ""
        )
        lines.append(f"| {r['frames']} | {r['teacher']} | {r['student']} | {r['teacher_ms']:.1f} "
                     f"| {r['student_ms']:.1f} | {r['latency_ratio']} | {r['teacher_cpu_ms']:.1f} "
                     f"| {r['student_cpu_ms']:.1f} | {r['cpu_ratio']} | {fr} |")  # fmt: skip
    lines += ["", "## Where the FLOPs go (FlopCounterMode by child module, longest T)", ""]
    longest = max(r["frames"] for r in report["rows"])
    for r in report["rows"]:
        flops = r["flops"] or {}
        parts = dict(flops.get("by_module") or {})
        if flops.get("lstm_hooks"):
            parts["lstm (hooks)"] = flops["lstm_hooks"]
        if r["frames"] == longest and parts:
            total = sum(parts.values()) or 1
            shares = ", ".join(f"{k} {v / total:.1%}" for k, v in parts.items() if v)
            lines.append(f"- {r['subject']}: {shares}")
    lines += ["", "## Subjects", ""]
    for s in report["subjects"]:
        keep = {k: v for k, v in s.items() if k not in ("name", "dims")}
        lines.append(f"- **{s['name']}**: " + "; ".join(f"{k}: {v}" for k, v in keep.items()))
    lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--teacher", type=Path, default=ROOT / "runs/teacher-kd/best.pt")
    p.add_argument("--student", type=Path, default=ROOT / "runs/student-default/best.pt")
    p.add_argument("--model-dir", type=Path, action="append", default=[],
                   help="exported student model folder (repeatable)")  # fmt: skip
    p.add_argument("--frames-data", type=Path, default=ROOT / "runs/kd-data",
                   help="SignSynth dataset with rendered frames (else random frames)")  # fmt: skip
    p.add_argument("--landmark-data", type=Path, default=ROOT / "runs/signsynth-phoenix2014t")
    p.add_argument(
        "--video",
        type=Path,
        default=None,
        help="real video for the Holistic front end (default: the shared webcam clip)",
    )
    p.add_argument("--lengths", default="100,200")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--max-repeat", type=int, default=10, help="most calls per round")
    p.add_argument("--budget", type=float, default=1800.0, help="seconds of timed rounds")
    p.add_argument("--smoke", action="store_true", help="tiny random models, T=32, 1 round")
    p.add_argument("--out", "--results", dest="out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    args.lengths = [int(x) for x in str(args.lengths).split(",")]
    if args.smoke:
        args.lengths, args.warmup, args.rounds, args.max_repeat = [32], 0, 1, 2
        args.frames_data = args.landmark_data = None
    if args.video is None:
        from edge_slr.paths import shared_data_dir

        shared = shared_data_dir()
        args.video = None if shared is None else shared / "video/webcam_signer.mp4"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    from edge_slr.benchmark.machine import describe_machine, load_average

    load_before, closers = load_average(), []
    with tempfile.TemporaryDirectory(prefix="model-cost-") as tmp:
        if args.smoke and not args.model_dir:
            model_dir = smoke_models(Path(tmp))
            args.model_dir = [model_dir] if model_dir else []
        subjects, notes = build_subjects(args, closers)
        started = time.perf_counter()
        done = measure(subjects, args)
        seconds = time.perf_counter() - started
        for close in closers:
            close()
    notes += [
        "teacher input: frames already rendered/decoded and resized in memory; rendering, "
        "decoding and resizing are not timed (a camera pipeline would add a resize to the "
        "teacher's size and the MediaPipe front end's own input scaling is inside its time)",
        "paper-size teacher: ResNet-18 width 1.0, 224 x 224, ImageNet stem, correlation after "
        "stages 2-4, temporal conv + BiLSTM hidden 1024, random weights",
        "FLOPs count 2 per multiply-accumulate; FlopCounterMode counts convolutions and matrix "
        "products; it sees an LSTM over a packed sequence (the teacher's) but not a plain "
        "aten::lstm (the student's): those gate matrices are added from forward hooks "
        "(lstm_hooks); not counted: batch norm, pooling, activations, LSTM elementwise math",
        PAPER_TABLE1,
    ]
    report = {
        "machine": describe_machine(), "load_before": load_before, "load_after": load_average(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                     if k != "model_dir"} | {"model_dir": [str(d) for d in args.model_dir]},
        "torch_threads": torch.get_num_threads(), "rounds_done": done,
        "timed_seconds": round(seconds, 1), "notes": notes,
        "subjects": [{"name": s.name, "role": s.role, **s.info} for s in subjects],
        "rows": rows(subjects, args.lengths), "ratios": ratios(subjects, args.lengths),
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "model_cost_smoke" if args.smoke else "model_cost"
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
