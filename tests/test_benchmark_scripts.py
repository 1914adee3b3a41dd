"""Every benchmark driver script runs in its ``--smoke`` mode (issue 9: so that none can rot).

The scripts are discovered: every ``benchmarks/*.py`` with a ``__main__`` block, so a new one is
checked without touching this file. Each runs in a subprocess with this interpreter, from a
mirror of the repository in a temporary folder (the scripts copied, ``configs/`` and ``tests/``
linked; ``edge_slr`` is the installed package): whatever a script writes next to itself
(``benchmarks/results/``, ``runs/``) lands there, never over the recorded results, and a script
cannot lean on local runs that a fresh clone lacks. Scripts with a ``--results`` option are also
pointed there. Checks: exit status 0 and the expected files exist and parse (JSON loads,
Markdown is not empty, PNG has its signature).

A script without ``--smoke`` is an expected failure naming it. Scripts whose smoke run needs
``../shared/data`` skip without it. Every script runs in the default suite
(that is, in CI); all of them together take about 4 min on the idle 2-core dev machine, so keep
smoke runs short (``Spec(slow=True)`` moves one to ``make test-slow``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
LINKED = ("configs", "tests")  # what smoke runs may read from the checkout
TIMEOUT_S = 900


@dataclass(frozen=True)
class Spec:
    outputs: tuple[str, ...] = ()  # under the results folder or "{work}/..."; () = any file
    args: tuple[str, ...] = ()  # extra arguments ("{work}" is the run's temporary folder)
    shared_data: bool = False  # the smoke run reads ../shared/data
    slow: bool = False  # measured too slow for the default suite


# Smoke seconds measured 2026-11-27 on the 2-core dev machine at load 10-13 (about 2-3x idle).
SPECS = {
    "synth_speed": Spec(("synth_speed_smoke.json", "synth_speed_smoke.md")),  # 7 s
    "synth_vs_real": Spec(  # 7 s
        ("synth_vs_real_smoke.md", "synth_vs_real_smoke.png"), shared_data=True
    ),
    "extraction_check": Spec(  # 24 s (MediaPipe start and two passes over the AUTSL clip)
        ("extraction_check_smoke.json", "extraction_check_smoke.md"), shared_data=True
    ),
    "kd_data": Spec(  # 6 s
        ("{work}/kd-data/dataset.json", "{work}/kd-data/vocabulary.json"),
        args=("--out", "{work}/kd-data"),
        shared_data=True,
    ),
    "runtime_latency": Spec(("runtime_latency_smoke.json", "runtime_latency_smoke.md")),  # 19 s
    "convert_speed": Spec(  # 43 s (load 1; 134 s at load 12): trains a tiny student, converts to every target
        ("convert_speed_smoke.json", "convert_speed_smoke.md")
    ),
    "corrector_speed": Spec(  # 66 s (load 1; 249 s at load 12)
        ("corrector_speed_smoke.json", "corrector_speed_smoke.md")
    ),
    "edge_benchmark": Spec(("benchmark_smoke.json", "benchmark_smoke.md")),  # 11 s (load 1)
    "kd_ablation": Spec(("kd_ablation_smoke.json", "kd_ablation_smoke.md")),  # 12 s (load 1)
    "student_ablation": Spec(  # 8 s (load 1)
        ("student_ablation_smoke.json", "student_ablation_smoke.md")
    ),
    "table4": Spec(("table4_smoke.json", "table4_smoke.md")),  # 14 s (load 1)
    "stream_normalization": Spec(  # 8 s (load 3.8)
        ("stream_normalization_smoke.json", "stream_normalization_smoke.md")
    ),
    "model_cost": Spec(("model_cost_smoke.json", "model_cost_smoke.md")),  # 13 s (load 4)
    "corrector_eval": Spec(  # 6 s (load 1): trains a tiny corrector, 20 dev sentences
        ("corrector_eval_smoke.json", "corrector_eval_smoke.md"), shared_data=True
    ),
    "corrector_convert": Spec(  # 14 s (load 1): tiny corrector trained, converted to TFLite
        ("corrector_convert_smoke.json", "corrector_convert_smoke.md"), shared_data=True
    ),
    # 2026-12-07, load 7-15 (so about 3x idle)
    "extraction_engines": Spec(  # 12 s: the graph + LiteRT on 8 AUTSL frames
        ("extraction_engines_smoke.json", "extraction_engines_smoke.md"), shared_data=True
    ),
    "live_recognition": Spec(  # 45-55 s: tiny student to ONNX, MediaPipe, 1 + 3 s of video
        ("live_recognition_smoke.json", "live_recognition_smoke.md")
    ),
    "train_throughput": Spec(("train_throughput_smoke.json", "train_throughput_smoke.md")),  # 30 s
    "extraction_scaling": Spec(  # 35-47 s: the local pool and a local Ray (its start ~12 s)
        ("extraction_scaling_smoke.json", "extraction_scaling_smoke.md"), shared_data=True
    ),
    "tflite_interpreters": Spec(  # 49 s
        ("tflite_interpreters_smoke.json", "tflite_interpreters_smoke.md")
    ),
    "recognize_video_modules": Spec(  # tiny student to ONNX, MediaPipe on the webcam clip
        ("recognize_video_modules_smoke.json", "recognize_video_modules_smoke.md"),
        shared_data=True,
    ),
    "confidence_noise": Spec(  # 21 s (load 3): tiny corrector trained, 20 references at 20%
        ("confidence_noise_smoke.json", "confidence_noise_smoke.md"), shared_data=True
    ),
}


def discover() -> list[str]:
    """The driver scripts: benchmarks/*.py that run as a program (helpers are left out)."""
    main = re.compile(r"^if __name__ == [\"']__main__[\"']:", re.MULTILINE)
    return sorted(p.stem for p in BENCHMARKS.glob("*.py") if main.search(p.read_text("utf-8")))


def params() -> list:
    out = []
    for name in discover():
        spec = SPECS.get(name, Spec())
        marks = [pytest.mark.slow] if spec.slow else []
        out.append(pytest.param(name, spec, id=name, marks=marks))
    return out


def mirror(work: Path) -> Path:
    """A repository root in ``work``: the benchmark scripts copied, configs/ and tests/ linked."""
    root = work / "root"
    (root / "benchmarks").mkdir(parents=True)
    for script in BENCHMARKS.glob("*.py"):
        shutil.copy2(script, root / "benchmarks" / script.name)
    for name in LINKED:
        (root / name).symlink_to(ROOT / name, target_is_directory=True)
    return root


def help_text(script: Path, env: dict[str, str]) -> str:
    run = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, env=env,
        cwd=script.parents[1], timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, f"{script.name} --help failed:\n{run.stderr[-3000:]}"
    return run.stdout


def check_output(path: Path) -> None:
    assert path.is_file(), f"missing {path.name}"
    if path.suffix == ".json":
        json.loads(path.read_text("utf-8"))
    elif path.suffix == ".md":
        assert path.read_text("utf-8").strip(), f"{path.name} is empty"
    elif path.suffix == ".png":
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"


def test_discovery_finds_the_driver_scripts() -> None:
    found = discover()
    assert {"synth_speed", "convert_speed", "runtime_latency"} <= set(found)
    assert "finished_runs" not in found  # a helper module, not a program


@pytest.mark.parametrize(("name", "spec"), params())
def test_script_runs_in_smoke_mode(
    name: str, spec: Spec, tmp_path: Path, request: pytest.FixtureRequest, record_property
) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    if spec.shared_data:
        env["EDGE_SLR_SHARED_DATA"] = str(request.getfixturevalue("shared_data"))
    root = mirror(tmp_path)
    script = root / "benchmarks" / f"{name}.py"
    options = help_text(script, env)
    if "--smoke" not in options:
        pytest.xfail(f"benchmarks/{name}.py has no --smoke option (issue 9 asks for one)")
    results = root / "benchmarks" / "results"
    command = [sys.executable, str(script), "--smoke"]
    command += [a.replace("{work}", str(tmp_path)) for a in spec.args]
    if "--results" in options:
        command += ["--results", str(results)]
    started = time.perf_counter()
    run = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=root, timeout=TIMEOUT_S
    )
    seconds = time.perf_counter() - started
    record_property("smoke_seconds", round(seconds, 1))
    print(f"{name} --smoke: {seconds:.1f} s")
    assert run.returncode == 0, f"{name} --smoke exited {run.returncode}:\n{run.stderr[-4000:]}"
    if spec.outputs:
        for output in spec.outputs:
            check_output(results / output.replace("{work}", str(tmp_path)))
    else:
        files = sorted(p for p in results.glob("*") if p.is_file())
        assert files, f"{name} --smoke wrote nothing under benchmarks/results"
        for path in files:
            check_output(path)
