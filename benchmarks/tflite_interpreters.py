"""The same TFLite models on two interpreters: ai-edge-litert and tflite-runtime 2.14 (issue 22).

Converts a student checkpoint to ``tflite`` (FP32), ``tflite-int8`` (dynamic-range, per-channel
Dense weights: FULLY_CONNECTED v12, TFLite 2.17+) and ``tflite-int8 --compat
tflite-runtime-2.14`` (per-tensor Dense weights), optionally ``--full-integer`` too, then measures
each model on each interpreter in a fresh process: file size, the oldest release it needs, load
time, latency (median and p90 at each length, batch 1) and the WER of a landmark dataset split
through the Recognizer (greedy). A model an interpreter refuses is a row with the one-line reason.

tflite-runtime cannot share a venv with everything else here, so its rows run in the Python of a
"board" venv (only numpy, tflite-runtime and edge-slr): ``--board-python PATH`` names one,
``--make-board-venv DIR`` creates it (pip, through constraints.txt). This script runs there
too, as the worker (``--worker``: a JSON job on stdin, one JSON line out).

    python benchmarks/tflite_interpreters.py --checkpoint runs/student-default/best.pt \\
        --data runs/signsynth-phoenix2014t --split test --make-board-venv /tmp/tflite-board
    python benchmarks/tflite_interpreters.py --smoke   # untrained tiny student, both INT8
                                                       # models, interpreters here only

Results: benchmarks/results/tflite_interpreters.{json,md} (tflite_interpreters_smoke.* for
--smoke; --results chooses the folder). Measure on an idle machine: the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# (label, convert() options) of the models compared
MODELS = (
    ("tflite", "tflite", {}),
    ("tflite-int8", "tflite-int8", {}),
    ("tflite-int8 --compat", "tflite-int8", {"compat": "tflite-runtime-2.14"}),
)
FULL_INTEGER = ("tflite-int8 --full-integer", "tflite-int8", {"full_integer": True})
FILE_NAMES = {  # what edge_slr.converters.tflite names each (reused when already converted)
    "tflite": "student.tflite",
    "tflite-int8": "student-int8.tflite",
    "tflite-int8 --compat": "student-int8-compat.tflite",
    "tflite-int8 --full-integer": "student-int8-full.tflite",
}
BOARD_PACKAGES = ("numpy", "tflite-runtime")  # versions: constraints.txt


# -- the worker: one model on one interpreter, in the Python that has that interpreter -------------


def worker(job: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from edge_slr.benchmark.worker import peak_rss_mb, probe_features, score_split, time_calls
    from edge_slr.runtimes.litert_rt import LiteRTRuntime
    from edge_slr.sidecar import read_sidecar

    path = Path(job["model"])
    description = read_sidecar(path)
    started = time.perf_counter()
    runtime = LiteRTRuntime(
        path, threads=job["threads"], description=description, interpreter=job["interpreter"]
    )
    out: dict[str, Any] = {
        "ok": True,
        "interpreter": runtime.interpreter.label,
        "load_ms": round((time.perf_counter() - started) * 1000, 1),
        "latency": [],
    }
    try:
        for frames in job["lengths"]:
            x = probe_features(description, job.get("data_dir"), job["split"], frames)
            samples = time_calls(lambda x=x: runtime.run(x), job["warmup"], job["runs"], 60.0)
            out["latency"].append({
                "frames": frames,
                "p50_ms": round(float(np.percentile(samples, 50)), 3),
                "p90_ms": round(float(np.percentile(samples, 90)), 3),
                "runs": len(samples),
            })  # fmt: skip
        if job.get("data_dir"):
            scored = score_split(runtime, {**job, "beam_width": 1})
            out["wer"] = scored.get("wer")
    finally:
        runtime.close()
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return out


def run_worker(python: str, job: dict[str, Any], timeout_s: float = 900) -> dict[str, Any]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if python == sys.executable:  # this checkout's edge_slr (the board venv has its own)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [python, str(Path(__file__).resolve()), "--worker"], input=json.dumps(job),
        capture_output=True, text=True, timeout=timeout_s, env=env,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if lines:
        return json.loads(lines[-1])
    tail = [line for line in done.stderr.splitlines() if line.strip()]
    return {"ok": False, "error": tail[-1] if tail else f"exit code {done.returncode}"}


def worker_main() -> int:
    try:
        result = worker(json.loads(sys.stdin.read()))
    except Exception as err:  # noqa: BLE001 - a refused or failing model is a row, not a crash
        result = {"ok": False, "error": f"{type(err).__name__}: {err}".splitlines()[0]}
    print(json.dumps(result))
    return 0


# -- models and interpreters -------------------------------------------------------------------------


def convert_models(
    checkpoint: Path,
    data: Path,
    out: Path,
    models,
    relaxed: bool,
    max_wer_drop: float | None = None,
) -> list[dict]:
    """Convert each model into ``out``, reusing one converted there from the same checkpoint."""
    from edge_slr.converters import convert
    from edge_slr.runtimes import find_models
    from edge_slr.runtimes.tflite_ops import min_runtime, read_op_codes
    from edge_slr.sidecar import file_sha256

    digest = file_sha256(checkpoint)
    have = {e.path.name: e for e in (find_models(out, "student") if out.is_dir() else [])
            if e.description.source.get("sha256") == digest}  # fmt: skip
    converted = []
    for label, target, options in models:
        kwargs = dict(options)
        if target.endswith("int8"):
            kwargs["calibration"] = data
            if max_wer_drop is not None:  # e.g. the demo's 1 point for its small dev split
                kwargs["max_wer_drop"] = max_wer_drop
            if relaxed:  # untrained smoke model: only the plumbing matters
                kwargs |= {"calibration_size": 16, "heldout_size": 8, "min_agreement": 0.0,
                           "max_wer_drop": 100.0}  # fmt: skip
        started = time.perf_counter()
        name = FILE_NAMES[label]
        if name in have:
            path, description = have[name].path, have[name].description
        else:
            result = convert(checkpoint, target, out, **kwargs)
            path, description = result.model_path, result.description
        details = dict(description.details)
        if "tflite_ops" not in details:  # converted before sidecars recorded op versions
            ops = read_op_codes(path)
            details |= {"tflite_ops": [op.to_dict() for op in ops], "min_runtime": min_runtime(ops)}
        converted.append({
            "label": label, "model": str(path), "size_mb": round(path.stat().st_size / 1e6, 3),
            "min_runtime": details.get("min_runtime"),
            "newest_ops": newest_ops(details.get("tflite_ops", [])),
            "convert_s": round(time.perf_counter() - started, 1),
        })  # fmt: skip
        print(f"{label}: {path.name}, needs TFLite {details.get('min_runtime')}")
    return converted


def newest_ops(ops: list[dict]) -> str:
    from edge_slr.runtimes.tflite_ops import release_key

    known = [op for op in ops if op.get("min_runtime")]
    if not known:
        return ""
    top = max(release_key(op["min_runtime"]) for op in known)
    return ", ".join(f"{op['op']} v{op['version']}" for op in known
                     if release_key(op["min_runtime"]) == top)  # fmt: skip


def make_board_venv(folder: Path) -> str:
    """A venv with only numpy, tflite-runtime and edge-slr (--no-deps), as on a dev board."""
    python = folder / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        pip = [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
        ]
        subprocess.run([*pip, "-c", str(ROOT / "constraints.txt"), *BOARD_PACKAGES], check=True)
        subprocess.run([*pip, str(ROOT)], check=True)
    return str(python)


def interpreters(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(interpreter module, python that runs it) to measure."""
    from edge_slr.runtimes.litert_rt import installed_interpreters

    here = installed_interpreters()
    chosen = [("ai_edge_litert", sys.executable)] if "ai_edge_litert" in here else []
    board = args.board_python or (make_board_venv(args.make_board_venv)
                                  if args.make_board_venv else None)  # fmt: skip
    if board:
        chosen.append(("tflite_runtime", board))
    elif "tflite_runtime" in here:
        chosen.append(("tflite_runtime", sys.executable))
    if args.with_tensorflow:
        chosen.append(("tensorflow", sys.executable))
    return chosen


# -- report --------------------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        "# TFLite models on two interpreters",
        "",
        f"{machine.get('cpu_model')}, {machine.get('usable_cpus')} usable CPUs, "
        f"load average {report['load_average']}, {report['threads']} thread(s), batch 1; "
        f"WER: {report['split']} split of {report['data']}"
        + (" (SMOKE: untrained model, numbers mean nothing)" if report["smoke"] else ""),
        "",
        "| model | size MB | needs TFLite | interpreter | load ms | "
        + " | ".join(f"T={t} p50/p90 ms" for t in report["lengths"])
        + " | WER % | status |",
        "|---|---:|---|---|---:|" + "---:|" * len(report["lengths"]) + "---:|---|",
    ]
    for row in report["rows"]:
        lat = {entry["frames"]: entry for entry in row.get("latency", [])}
        cells = [
            row["label"], f"{row['size_mb']:.2f}", f"{row['min_runtime']} ({row['newest_ops']})",
            row.get("interpreter_label", row["interpreter"]),
            f"{row['load_ms']:.0f}" if "load_ms" in row else "-",
            *(f"{lat[t]['p50_ms']:.2f} / {lat[t]['p90_ms']:.2f}" if t in lat else "-"
              for t in report["lengths"]),
            f"{100 * row['wer']:.1f}" if row.get("wer") is not None else "-",
            "ok" if row["ok"] else f"refused/failed: {row['error']}",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, default=ROOT / "runs/student-default/best.pt")
    p.add_argument("--data", type=Path, default=ROOT / "runs/signsynth-phoenix2014t")
    p.add_argument("--split", default="test")
    p.add_argument(
        "--models",
        type=Path,
        default=None,
        help="conversion folder (kept; models of the same checkpoint are reused)",
    )
    p.add_argument("--full-integer", action="store_true", help="add the full-integer INT8 model")
    p.add_argument("--board-python", default=None, help="python of a venv with tflite-runtime")
    p.add_argument("--make-board-venv", type=Path, default=None, metavar="DIR",
                   help="create (or reuse) a tflite-runtime-only venv there")  # fmt: skip
    p.add_argument("--with-tensorflow", action="store_true", help="also measure tf.lite")
    p.add_argument("--lengths", default="100,200")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--max-sentences", type=int, default=None)
    p.add_argument(
        "--max-wer-drop",
        type=float,
        default=None,
        help="INT8 verification bound in WER points (default: the converter's 0.5)",
    )
    p.add_argument("--results", type=Path, default=RESULTS, help="results folder")
    p.add_argument("--smoke", action="store_true", help="untrained tiny student, tiny data (CI)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args()


def main() -> int:
    args = parse_args()
    if args.worker:
        return worker_main()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from edge_slr.benchmark.machine import describe_machine, load_average

    lengths = [int(t) for t in args.lengths.split(",")]
    runs, max_sentences = (3, 4) if args.smoke else (args.runs, args.max_sentences)
    with tempfile.TemporaryDirectory(prefix="tflite-interpreters-") as temp:
        work = Path(temp)
        checkpoint, data = args.checkpoint, args.data
        if args.smoke:
            sys.path.insert(0, str(ROOT / "benchmarks"))
            from edge_benchmark import smoke_inputs

            checkpoint, data = smoke_inputs(work)
        models = (*MODELS, FULL_INTEGER) if args.full_integer else MODELS
        if args.smoke:  # the two INT8 models whose op versions differ (TensorFlow is slow)
            models = MODELS[1:]
        out = args.models or work / "models"
        converted = convert_models(
            checkpoint, data, out, models, relaxed=args.smoke, max_wer_drop=args.max_wer_drop
        )
        rows = []
        for interpreter, python in interpreters(args):
            for model in converted:
                job = {"model": model["model"], "interpreter": interpreter, "threads": args.threads,
                       "lengths": lengths, "warmup": 2, "runs": runs, "data_dir": str(data),
                       "split": args.split if not args.smoke else "dev",
                       "max_sentences": max_sentences}  # fmt: skip
                result = run_worker(python, job)
                row = {**model, **result, "interpreter": interpreter, "python": python}
                row["interpreter_label"] = result.get("interpreter", interpreter)
                rows.append(row)
                state = "ok" if result["ok"] else result["error"]
                print(f"{model['label']} on {row['interpreter_label']}: {state}")
    report = {
        "smoke": args.smoke, "machine": describe_machine(), "load_average": load_average(),
        "threads": args.threads, "lengths": lengths, "data": str(data),
        "split": args.split if not args.smoke else "dev", "rows": rows,
    }  # fmt: skip
    stem = "tflite_interpreters_smoke" if args.smoke else "tflite_interpreters"
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{stem}.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (args.results / f"{stem}.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    print(f"written: {args.results / stem}.{{json,md}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
