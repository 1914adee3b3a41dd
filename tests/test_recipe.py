"""recipes/phoenix2014/run.py: stage logic (fast) and the whole smoke run (slow)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "phoenix2014" / "run.py"


def _recipe_module():
    spec = importlib.util.spec_from_file_location("phoenix2014_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


recipe = _recipe_module()


def test_paper_configs_load_next_to_the_cpu_ones() -> None:
    from edge_slr.training.config import load_config
    from edge_slr.training.corrector.config import load_config as load_corrector_config
    from edge_slr.training.teacher.config import load_teacher_config

    teacher = load_teacher_config(ROOT / "configs" / "teacher-paper.toml")
    dims = teacher.model.dims(num_classes=1232)
    assert (dims.input_size, dims.width, dims.hidden) == (224, 1.0, 1024)
    assert (teacher.train.lr, teacher.train.batch_size, teacher.train.amp) == (1e-4, 2, "bf16")
    assert teacher.train.device == "auto"
    corrector = load_corrector_config(ROOT / "configs" / "corrector-paper.toml")
    assert corrector.dims(100).d_model == 256 and corrector.train.corpus == "phoenix2014"
    student = load_config(ROOT / "configs" / "student-paper.toml")
    assert student.model.conv_channels == (256, 256, 512, 512)
    # the student's and the teacher's time axes agree (KD without resampling)
    from edge_slr.training.models import StudentDims

    s = student.model.dims(num_classes=1232, input_dim=276)
    assert all(dims.output_length(t) == s.output_length(t) for t in range(40, 400, 7))
    assert isinstance(s, StudentDims)


def test_stages_skip_what_is_done_and_resume_what_was_interrupted(tmp_path: Path) -> None:
    work = tmp_path / "work"
    r = recipe.Recipe(tmp_path / "corpus", work, device="cuda", nproc=2)
    stages = {s.name: s for s in recipe.plan(r)}
    assert list(stages) == list(recipe.STAGES)
    teacher = stages["teacher"].commands[0]
    assert teacher[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node"]
    assert teacher[teacher.index("-m", 2) + 1] == "edge_slr" and "--resume" not in teacher
    assert teacher[teacher.index("--device") : teacher.index("--device") + 2] == [
        "--device",
        "cuda",
    ]
    student = stages["student"].commands[0]
    assert student[student.index("--teacher") + 1] == str(work / "teacher-cache")
    corrector = stages["corrector"].commands[0]
    assert "torch.distributed.run" not in corrector  # one process
    assert len(stages["convert"].commands) == len(recipe.TARGETS) + 1  # + the corrector

    report = recipe.run(r, dry_run=True)
    assert report == [f"{name}: would run" for name in recipe.STAGES]
    assert not work.exists()  # a dry run writes nothing

    # an interrupted teacher resumes; finished stages are skipped
    (work / "teacher").mkdir(parents=True)
    (work / "teacher" / "last.pt").write_bytes(b"")
    (work / "landmarks" / "test").mkdir(parents=True)
    (work / "landmarks" / "test" / "index.tsv").write_text("id\tsigner\tnum_frames\tglosses\n")
    (work / "frames.done").write_text("done\n")
    stages = {s.name: s for s in recipe.plan(r)}
    assert "--resume" in stages["teacher"].commands[0]
    report = recipe.run(r, stages=("extract", "frames", "teacher"), dry_run=True)
    assert report[0].startswith("extract: done") and report[1].startswith("frames: done")
    assert report[2] == "teacher: would run"


def test_single_process_commands_and_bad_arguments(tmp_path: Path) -> None:
    r = recipe.Recipe(tmp_path / "corpus", tmp_path / "w", smoke=True)
    stages = {s.name: s for s in recipe.plan(r)}
    assert stages["student"].commands[0][1:4] == ["-m", "edge_slr", "train"]
    assert "--keep-no-person" in stages["extract"].commands[0]  # SignSynth puppets
    assert "train.epochs=1" in " ".join(stages["student"].commands[0])
    with pytest.raises(SystemExit) as exit_info:
        recipe.main(["--corpus-root", str(tmp_path), "--stages", "teacher,typo"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        recipe.main(["--work", str(tmp_path)])  # neither --corpus-root nor --smoke


@pytest.mark.slow
def test_smoke_runs_every_stage_end_to_end_and_a_rerun_skips_all(tmp_path: Path) -> None:
    """About 6-10 min on the shared 2-core machine: MediaPipe, three trainings, conversions."""
    work = tmp_path / "smoke"
    command = [sys.executable, str(RECIPE), "--smoke", "--work", str(work)]
    command += ["--targets", "openvino-int8,onnx-int8"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (work / "corpus" / "annotations" / "manual" / "train.corpus.csv").is_file()
    assert list((work / "corpus" / "features" / "fullFrame-210x260px" / "dev").glob("*/1/*.png"))
    assert list((work / "landmarks" / "train").glob("*.frames.npz"))
    assert json.loads((work / "teacher" / "results.json").read_text())["best_epoch"] == 1
    assert (work / "teacher-cache" / "train.npz").is_file()
    student = json.loads((work / "student" / "config.json").read_text())
    assert student["distill"]["conv_kd"] and student["distill"]["lstm_kd"]
    assert json.loads((work / "eval" / "test.wer.json").read_text())["split"] == "test"
    assert list((work / "models").glob("*.json")) and (work / "models" / "corrector").is_dir()
    bench = json.loads((work / "benchmark.json").read_text())
    assert bench
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert again.returncode == 0
    assert again.stdout.count(": done (") == len(recipe.STAGES)
