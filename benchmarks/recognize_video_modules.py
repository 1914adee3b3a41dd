"""Which edge_slr modules and packages ``Recognizer.recognize_video`` reaches (issue 14).

Runs ``recognize_video`` once on a real clip under ``sys.setprofile`` and lists every edge_slr
module one of whose functions (or whose module body, when it is imported on the way) ran, grouped
by package. The checkout to measure is given as the first argument, so that two versions of the
code can be compared on the same model and clip (the script itself can live in either)::

    git archive HEAD | tar -x -C /tmp/before        # the code before a change
    python benchmarks/recognize_video_modules.py /tmp/before --model runs/demo/models/KEY \
        --name recognize_video_modules_before --checkout "$(git rev-parse --short HEAD)"
    python benchmarks/recognize_video_modules.py . --model runs/demo/models/KEY
    python benchmarks/recognize_video_modules.py --smoke   # tiny untrained student (CI)

The model directory is copied to a temporary folder; when it holds only a torch corrector
(``corrector/corrector.pt``, as ``make demo`` leaves it) that corrector is converted there with
the measured checkout's own converter (``--corrector-target``, default openvino), so that the
deployed, torch-free correction path is what is measured (``--corrector-target none`` keeps the
torch corrector). Each checkout runs in a fresh process. The clip defaults to the webcam clip of
../shared/data/video. Results: benchmarks/results/recognize_video_modules.{json,md}
(``--name`` changes the stem; ``--smoke`` writes to a temporary folder unless ``--results``).
Counting modules does not depend on the machine's load.

Four phases are counted: importing the Recognizer (module bodies run), creating it, the
``recognize_video`` call (issue 14's figure), and all of them together. A package is a
first-level subpackage (``edge_slr.training`` for ``edge_slr.training.corrector.draft``), or
``edge_slr`` itself for the top-level modules.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CLIP = "video/webcam_signer.mp4"
TORCH_CORRECTOR = Path("corrector") / "corrector.pt"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("repo", type=Path, nargs="?", default=ROOT, help="checkout to measure")
    p.add_argument("--model", type=Path, default=None, help="model directory (edge-slr convert)")
    p.add_argument("--video", type=Path, default=None, help=f"default: ../shared/data/{CLIP}")
    p.add_argument("--corrector-target", default="openvino", help="'none': keep a torch one")
    p.add_argument("--results", type=Path, default=None, help="output folder")
    p.add_argument("--name", default=None, help="output file stem")
    p.add_argument("--checkout", default=None, help="what to call it in the results (a commit)")
    p.add_argument("--smoke", action="store_true", help="untrained tiny student (CI)")
    return p.parse_args(argv)


# -- the measured process -----------------------------------------------------------------------


def trace(model: str, video: str) -> dict[str, Any]:
    """In the measured checkout's process: the edge_slr modules that importing the Recognizer,
    creating one and one ``recognize_video`` call run code of (module bodies included), with the
    number of calls into each."""
    import edge_slr

    calls: dict[str, Counter[str]] = {p: Counter() for p in ("import", "create", "recognize_video")}
    phase = calls["import"]

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            name = frame.f_globals.get("__name__", "")
            if name == "edge_slr" or name.startswith("edge_slr."):
                phase[name] += 1

    import threading

    threading.setprofile(profile)  # threads the engines start run through it too
    sys.setprofile(profile)
    try:
        recognizer_class = edge_slr.Recognizer
        phase = calls["create"]
        recognizer = recognizer_class.create_from_model_dir(model)
        phase = calls["recognize_video"]
        with recognizer:
            result = recognizer.recognize_video(video)
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    return {
        "edge_slr": str(Path(edge_slr.__file__).parent),
        "recognizer": repr(recognizer),
        "sentence": result.sentence,
        "calls": {phase: dict(sorted(c.items())) for phase, c in calls.items()},
    }


def _worker(argv: list[str]) -> int:
    model, video = argv
    print(json.dumps(trace(model, video)))
    return 0


# -- the driver ---------------------------------------------------------------------------------


def run_in(repo: Path, code: str, *args: str) -> str:
    """Run ``code`` with ``repo``'s edge_slr first on the path (or the installed one when ``repo``
    holds none, as in the smoke run's mirror); its standard output."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), str(Path(__file__).parent)])}
    run = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=repo
    )
    if run.returncode:
        raise SystemExit(f"measuring in {repo} failed:\n{run.stderr[-4000:]}")
    return run.stdout


def prepare_model(repo: Path, model: Path, work: Path, corrector_target: str) -> Path:
    """A copy of ``model`` whose torch corrector (if that is all it has) is converted."""
    copy = work / "model"
    shutil.copytree(model, copy)
    converted = [p for p in copy.glob("corrector*.json") if p.is_file()]
    if corrector_target != "none" and (copy / TORCH_CORRECTOR).is_file() and not converted:
        code = (
            "import sys; from edge_slr.converters import convert; "
            "convert(sys.argv[1], sys.argv[2], sys.argv[3])"
        )
        run_in(repo, code, str(copy / TORCH_CORRECTOR.parent), corrector_target, str(copy))
        shutil.rmtree(copy / TORCH_CORRECTOR.parent)  # so the converted one is what runs
    return copy


def package_of(module: str, subpackages: set[str]) -> str:
    """The edge_slr package a module belongs to: ``edge_slr`` for top-level modules, else the
    first-level subpackage (``edge_slr.training`` for ``edge_slr.training.corrector.draft``)."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and parts[1] in subpackages):
        return ".".join(parts[:2])
    return "edge_slr"


def summarise(traced: dict[str, Any], repo: Path) -> dict[str, Any]:
    """Module and package counts of each phase."""
    source = Path(traced["edge_slr"])
    subpackages = {p.name for p in source.iterdir() if (p / "__init__.py").is_file()}
    phases = {}
    for phase, calls in traced["calls"].items():
        by_package: dict[str, list[str]] = {}
        for module in sorted(calls):
            by_package.setdefault(package_of(module, subpackages), []).append(module)
        phases[phase] = {
            "modules": len(calls),
            "packages": len(by_package),
            "by_package": dict(sorted(by_package.items())),
        }
    every = set().union(*traced["calls"].values())
    phases["all"] = {
        "modules": len(every),
        "packages": len({package_of(m, subpackages) for m in every}),
    }
    installed = source.parent != repo  # the smoke run's mirror holds no edge_slr of its own
    where = "the installed edge_slr" if installed else "its own edge_slr"
    return {**traced, "edge_slr": where, "phases": phases}


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Modules reached by Recognizer.recognize_video",
        "",
        f"Checkout `{report['checkout']}` ({report['edge_slr']}); model: {report['recognizer']}; "
        f"clip: `{report['video']}`; sentence: `{report['sentence']}`.",
        "",
        "| phase | modules | packages |",
        "|---|---:|---:|",
    ]
    for phase, counts in report["phases"].items():
        lines.append(f"| {phase} | {counts['modules']} | {counts['packages']} |")
    lines += ["", "## recognize_video, by package", ""]
    for package, modules in report["phases"]["recognize_video"]["by_package"].items():
        lines.append(f"- `{package}` ({len(modules)}): " + ", ".join(f"`{m}`" for m in modules))
    return "\n".join(lines) + "\n"


def default_video() -> Path | None:
    from edge_slr.paths import shared_data_dir

    shared = shared_data_dir()
    return shared / CLIP if shared is not None and (shared / CLIP).is_file() else None


def default_model() -> Path | None:
    models = sorted((ROOT / "runs" / "demo" / "models").glob("*/*.json"))
    return max(models, key=lambda p: p.stat().st_mtime).parent if models else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    repo = args.repo.resolve()
    video = args.video or default_video()
    name = args.name or (
        "recognize_video_modules_smoke" if args.smoke else "recognize_video_modules"
    )
    with tempfile.TemporaryDirectory(prefix="recognize-video-modules-") as temp:
        work = Path(temp)
        results = args.results or (work / "results" if args.smoke else RESULTS)
        if args.smoke:
            from live_recognition import smoke_model  # the tiny untrained ONNX student

            model = smoke_model(work / "smoke")
        else:
            model = args.model or default_model()
        if model is None or video is None:
            print("needs --model DIR and --video FILE (or runs/demo and ../shared/data)",
                  file=sys.stderr)  # fmt: skip
            return 2
        model = prepare_model(repo, model, work, args.corrector_target)
        code = "import sys, recognize_video_modules as m; sys.exit(m._worker(sys.argv[1:]))"
        traced = json.loads(run_in(repo, code, str(model), str(video)).splitlines()[-1])
        named = {"checkout": args.checkout or repo.name, "video": video.name}
        report = summarise({**traced, **named}, repo)
        results.mkdir(parents=True, exist_ok=True)
        (results / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
        markdown = to_markdown(report)
        (results / f"{name}.md").write_text(markdown, "utf-8")
        print(markdown)
        print(f"written: {results / name}.{{json,md}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
