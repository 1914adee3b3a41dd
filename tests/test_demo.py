"""`edge-slr demo` (the README's main command): options, cache keys, and real runs of the chain.

The smoke run trains a tiny student and corrector for real, converts to ONNX, recognises the
held-out clips and benchmarks; the second run must reuse every cached stage. The full-size demo
(as `make demo` runs it) is marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_slr.demo.options import DemoOptions
from edge_slr.demo.stages import corrector_stage, data_plan, dataset_stage, student_stage
from edge_slr.errors import InputError

TINY = [
    "--no-shared", "--glosses", "20", "--train-sentences", "40", "--eval-sentences", "10",
    "--signers", "2", "--width", "16", "--epochs", "2", "--corrector-width", "32",
    "--corrector-minutes", "0.05", "--targets", "onnx", "--calibration-size", "20",
    "--lengths", "50", "--threads", "1", "--no-progress",
]  # fmt: skip


def _require_engines(*names: str) -> None:
    """Skip without an engine, without importing it (the CLI sets OpenMP's policy first)."""
    import importlib.util

    for name in names:
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed")


def test_options_are_validated() -> None:
    with pytest.raises(InputError, match="unknown conversion target.*'openvino-int4'"):
        DemoOptions(targets=("openvino-int4",))
    with pytest.raises(InputError, match="epochs must be a positive integer, got 0"):
        DemoOptions(epochs=0)
    with pytest.raises(InputError, match="needs a corpus name"):
        DemoOptions(corpus_root=Path("/data/phoenix"))
    with pytest.raises(InputError, match="corpus must be one of"):
        DemoOptions(corpus="phoenix")
    with pytest.raises(InputError, match="targets repeat a name"):
        DemoOptions(targets=("onnx", "onnx"))


def test_bare_machine_uses_builtin_sentences_and_says_why_the_video_is_skipped(
    tmp_path: Path,
) -> None:
    options = DemoOptions(shared=tmp_path / "absent")
    corpus, root, why = options.sentence_source()
    assert (corpus, root) == (None, None) and "built-in" in why and "absent" in why
    video, note = options.video_path()
    assert video is None
    assert "video step skipped" in note and "bundles no signer video" in note
    with pytest.raises(InputError, match="does not exist"):
        DemoOptions(video=tmp_path / "missing.mp4").video_path()


def test_shared_data_gives_real_sentences_and_a_video(shared_data: Path) -> None:
    options = DemoOptions(shared=shared_data)
    corpus, root, _ = options.sentence_source()
    assert corpus == "phoenix2014t" and root == shared_data / "phoenix2014t"
    video, _ = options.video_path()
    assert video is not None and video.is_file()


def test_cache_keys_follow_the_options_that_change_a_stage(tmp_path: Path) -> None:
    base = DemoOptions(work_dir=tmp_path, use_shared=False)
    more_epochs = DemoOptions(work_dir=tmp_path, use_shared=False, epochs=base.epochs + 1)
    more_glosses = DemoOptions(work_dir=tmp_path, use_shared=False, glosses=base.glosses + 1)

    def keys(options: DemoOptions) -> tuple[str, str, str]:
        plan = data_plan(options)
        data = dataset_stage(options, plan)
        return data.key, student_stage(options, data).key, corrector_stage(options, data, plan).key

    assert keys(base) == keys(DemoOptions(work_dir=tmp_path, use_shared=False))
    data, student, corrector = keys(base)
    assert keys(more_epochs) == (data, keys(more_epochs)[1], corrector)
    assert keys(more_epochs)[1] != student
    assert all(a != b for a, b in zip(keys(more_glosses), (data, student, corrector), strict=True))


def test_smoke_run_then_cached_rerun(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _require_engines("torch", "onnxruntime")
    from edge_slr.cli.main import main

    work = tmp_path / "demo"
    assert main(["demo", "--work-dir", str(work), *TINY]) == 0
    first = capsys.readouterr().out
    for stage in ("[1/6] dataset", "[2/6] student", "[3/6] corrector", "[4/6] convert",
                  "[5/6] recognize", "[6/6] benchmark"):  # fmt: skip
        assert stage in first
    assert "video step skipped" in first
    result = json.loads((work / "results" / "demo.json").read_text())
    models, data = Path(result["model_dir"]), Path(result["data_dir"])
    for path in (
        data / "dataset.json",
        data / "test" / "index.tsv",
        models / "student.onnx",
        models / "student.onnx.json",
        models / "corrector" / "corrector.pt",
        work / "results" / "benchmark.md",
    ):
        assert path.is_file(), path
    checkpoint = Path(result["stages"]["student"]["summary"]["checkpoint"])
    made = checkpoint.stat().st_mtime_ns
    held = result["held_out"]
    assert held["sentences"] >= 1 and 0.0 <= held["wer"] <= 2.0
    assert held["wer_corrected"] is not None
    table = [line for line in first.splitlines() if line.strip().startswith("onnx ")]
    assert table and table[0].split()[-1] == "ok"  # one benchmark row, measured

    assert main(["demo", "--work-dir", str(work), *TINY]) == 0
    second = capsys.readouterr().out
    assert second.count("cached") >= 4  # dataset, student, corrector, onnx
    again = json.loads((work / "results" / "demo.json").read_text())
    assert all(again["stages"][s]["reused"] for s in ("dataset", "student", "corrector"))
    assert checkpoint.stat().st_mtime_ns == made  # not retrained
    assert again["held_out"]["wer"] == held["wer"]  # same model, same clips, same decoding
    assert any(line.strip().startswith("onnx ") for line in second.splitlines())


@pytest.mark.slow
def test_full_demo_as_make_demo_runs_it(tmp_path: Path) -> None:
    """The default sizes end to end, in a fresh process as `make demo` runs it (torch is not
    imported here first: OpenMP's wait policy is set by the CLI before torch loads)."""
    import subprocess
    import sys

    _require_engines("torch", "openvino")
    work = tmp_path / "demo"
    command = [sys.executable, "-m", "edge_slr", "demo", "--work-dir", str(work), "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((work / "results" / "demo.json").read_text())
    assert "convert openvino-int8" in result["stages"]
    assert result["held_out"]["wer"] < 0.9  # it learnt something in a few minutes
    rows = [line for line in done.stdout.splitlines() if line.strip().startswith("openvino-int8 ")]
    assert rows and rows[0].split()[-1] == "ok"


def test_dataset_is_the_same_with_worker_processes(tmp_path: Path) -> None:
    from edge_slr.demo.data import DataPlan, build_dataset

    plan = DataPlan(None, None, 20, 12, 3, 2, "default", 0)
    one = build_dataset(plan, tmp_path / "one", workers=1, progress=False)
    two = build_dataset(plan, tmp_path / "two", workers=2, progress=False)
    assert one == two and one["splits"]["train"]["samples"] == 12
    for split in ("train", "dev", "test"):
        index = (tmp_path / "one" / split / "index.tsv").read_text()
        assert index == (tmp_path / "two" / split / "index.tsv").read_text()
        for name in index.splitlines()[1:3]:
            sample = f"{name.split(chr(9))[0]}.npz"
            assert (tmp_path / "one" / split / sample).read_bytes() == (
                tmp_path / "two" / split / sample
            ).read_bytes()
    vocabulary = (tmp_path / "one" / "vocabulary.json").read_text()
    assert vocabulary == (tmp_path / "two" / "vocabulary.json").read_text()
