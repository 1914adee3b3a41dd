"""Corpus-scale extraction: local process pool and Ray executors, manifest, resume, retry, kills.

The fixture corpus tree is built in tmp from the shared real videos and PHOENIX frames, copied
under other names and splits. MediaPipe Holistic (0.10.21, XNNPACK on the CPU) gave byte-identical
landmarks for the same input in different processes here, so outputs are compared with the
single-process extractor exactly (``assert_array_equal``), not within a tolerance.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cv2")
pytest.importorskip("mediapipe")

from edge_slr.errors import InputError  # noqa: E402
from edge_slr.landmarks.batch import jobs_for_inputs, run_batch  # noqa: E402
from edge_slr.landmarks.extract import HolisticExtractor, HolisticOptions  # noqa: E402
from edge_slr.landmarks.io import load_landmarks  # noqa: E402
from edge_slr.landmarks.manifest import MANIFEST_NAME, Manifest  # noqa: E402

AUTSL_VIDEO = "video/autsl_signer0_sample1000_color.mp4"
PHOENIX_FRAMES = "video/phoenix2014t-frames"
REPO = Path(__file__).resolve().parents[1]


def _shared(shared_data: Path, relative: str) -> Path:
    path = shared_data / relative
    if not path.exists():
        pytest.skip(f"{relative} is absent from {shared_data}")
    return path


def _pngs(shared_data: Path) -> list[Path]:
    pngs = sorted(_shared(shared_data, PHOENIX_FRAMES).glob("*.png"))
    if len(pngs) < 2:
        pytest.skip("the two PHOENIX frames are absent")
    return pngs


def _frame_folder(folder: Path, pngs: list[Path]) -> None:
    folder.mkdir(parents=True)
    for i, png in enumerate(pngs, start=1):
        shutil.copy(png, folder / f"images{i:04d}.png")


def _small_tree(root: Path, shared_data: Path) -> Path:
    """A PHOENIX-like tree: frame folders in both layouts over two splits, one real video and
    one corrupt video."""
    pngs = _pngs(shared_data)
    _frame_folder(root / "train" / "01April_2010_Thursday_heute-6694" / "1", pngs)
    _frame_folder(root / "train" / "clipB", pngs[::-1])
    _frame_folder(root / "dev" / "clipC" / "1", pngs)
    (root / "test").mkdir(parents=True)
    shutil.copy(_shared(shared_data, AUTSL_VIDEO), root / "test" / "signer.mp4")
    (root / "test" / "broken.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    return root


@pytest.fixture(scope="module")
def small_tree(shared_data: Path, tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """The small tree (read-only: copy it before changing it) and the single-process
    extractor's landmarks of each of its good inputs, by job id."""
    tree = _small_tree(tmp_path_factory.mktemp("corpus") / "tree", shared_data)
    jobs = jobs_for_inputs([tree], tree.parent / "unused")
    return tree, _reference({j.id: j.source for j in jobs if j.id != "test/broken"})


def _video_tree(root: Path, shared_data: Path, copies: int) -> Path:
    """``copies`` copies of the real AUTSL video under other names, split over two folders."""
    video = _shared(shared_data, AUTSL_VIDEO)
    for i in range(copies):
        folder = root / ("train" if i % 2 else "dev")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(video, folder / f"clip{i:02d}.mp4")
    return root


def _reference(sources: dict[str, Path]) -> dict[str, np.ndarray]:
    with HolisticExtractor.create_from_options(HolisticOptions()) as extractor:
        return {name: extractor.extract_video(path).data for name, path in sources.items()}


def _records(out: Path) -> dict[str, dict]:
    lines = (out / MANIFEST_NAME).read_text().splitlines()
    return {json.loads(line)["id"]: json.loads(line) for line in lines}


def _leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if "partial" in p.name]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has finished; only its parent has not collected it


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge_slr", "extract", *args, "--no-progress"]


# ---- local pool -------------------------------------------------------------------------------


def test_local_pool_matches_single_process_resumes_and_records_failures(
    small_tree, tmp_path: Path
) -> None:
    tree = shutil.copytree(small_tree[0], tmp_path / "tree")
    out = tmp_path / "out"
    jobs = jobs_for_inputs([tree], out)
    assert sorted(j.id for j in jobs) == [
        "dev/clipC",
        "test/broken",
        "test/signer",
        "train/01April_2010_Thursday_heute-6694",
        "train/clipB",
    ]
    summary = run_batch(jobs, workers=2, retries=2, progress=False)
    assert summary.executor == "local"
    status = {o.id: o.status for o in summary.outcomes}
    assert status.pop("test/broken") == "failed" and set(status.values()) == {"done"}
    failure = summary.failures[0]
    assert failure.error_type == "FormatError" and failure.attempts == 1  # a file error: no retry
    for name, data in small_tree[1].items():
        np.testing.assert_array_equal(load_landmarks(out / f"{name}.npz").data, data)
    workers = summary.to_dict()["per_worker"]
    assert sum(w["videos"] for w in workers.values()) == 4
    assert all(w["frames_per_second"] > 0 for w in workers.values())
    records = _records(out)
    assert records["test/broken"]["status"] == "failed"
    assert records["test/broken"]["error_type"] == "FormatError"
    signer = records["test/signer"]
    assert signer["status"] == "done" and signer["num_frames"] == 43
    assert signer["source_size"] == (tree / "test" / "signer.mp4").stat().st_size
    assert signer["extractor"]["options"] == HolisticOptions().to_dict()
    assert signer["extractor"]["mediapipe"] == "0.10.21"
    assert not _leftovers(out)

    # Re-run: done and unchanged is skipped; the failure is tried again; a changed input redone.
    clip_b = tree / "train" / "clipB"
    shutil.copy(clip_b / "images0002.png", clip_b / "images0001.png")  # other content and time
    again = run_batch(jobs, workers=2, progress=False)
    status = {o.id: o.status for o in again.outcomes}
    assert status == {
        "dev/clipC": "skipped",
        "test/broken": "failed",
        "test/signer": "skipped",
        "train/01April_2010_Thursday_heute-6694": "skipped",
        "train/clipB": "done",
    }
    redone = load_landmarks(out / "train" / "clipB.npz").data
    np.testing.assert_array_equal(redone, _reference({"b": clip_b})["b"])
    assert len(_records(out)) == 5  # compacted: one record per output

    # Other extractor options invalidate the records instead of mixing two extractions.
    third = run_batch(jobs[:1], HolisticOptions(smooth_landmarks=False), progress=False)
    assert third.outcomes[0].status == "done"


def test_sha256_identifies_inputs_by_content(shared_data: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _frame_folder(tree / "a", _pngs(shared_data))
    out = tmp_path / "out"
    jobs = jobs_for_inputs([tree], out)
    run_batch(jobs, sha256=True, progress=False)
    digest = _records(out)["a"]["source_sha256"]
    assert len(digest) == 64
    for png in (tree / "a").iterdir():  # same content, new times: still done
        os.utime(png, ns=(0, 0))
    assert run_batch(jobs, sha256=True, progress=False).outcomes[0].status == "skipped"
    assert run_batch(jobs, progress=False).outcomes[0].status == "done"  # by time: changed


def test_failed_video_is_retried_then_listed_with_its_reason(
    shared_data: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    _frame_folder(tree / "a", _pngs(shared_data))
    out = tmp_path / "out"
    (out / "a.npz").mkdir(parents=True)  # the output cannot be moved into place: an OSError
    summary = run_batch(jobs_for_inputs([tree], out), retries=2, progress=False)
    failure = summary.failures[0]
    assert failure.attempts == 3 and failure.error_type == "IsADirectoryError"
    assert summary.to_dict()["retried"] == 1
    record = _records(out)["a"]
    assert record["status"] == "failed" and record["attempts"] == 3
    assert "a.npz" in record["error"] and not _leftovers(out)


def test_manifest_is_locked_and_survives_a_torn_line(tmp_path: Path) -> None:
    with Manifest.open(tmp_path) as manifest:
        manifest.add({"output": str(tmp_path / "a.npz"), "status": "done"})
        with pytest.raises(InputError, match="another extraction is writing into"):
            Manifest.open(tmp_path)
    with open(tmp_path / MANIFEST_NAME, "a") as handle:
        handle.write('{"output": "b.npz", "sta')  # a driver killed mid-line
    with Manifest.open(tmp_path) as manifest:
        assert list(manifest.records) == ["a.npz"]


def test_cli_out_must_be_a_folder_and_bad_executor_options(tmp_path: Path) -> None:
    from edge_slr.cli.main import main

    a_file = tmp_path / "taken.txt"
    a_file.write_text("x")
    video = tmp_path / "v.mp4"
    for out, said in ((a_file, f"{a_file} is an existing file"), (a_file / "sub", "a parent")):
        result = subprocess.run(
            [*_cli(str(video), "-o", str(out))], capture_output=True, text=True, cwd=REPO
        )
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.startswith("edge-slr")]
        assert len(lines) == 1 and said in lines[0] and "Traceback" not in result.stderr
    assert main(["extract", str(video), "-o", str(tmp_path / "o"), "--retries", "-1"]) == 2
    assert main(["extract", str(video), "-o", str(tmp_path / "o"), "--ray-address", "auto"]) == 2
    assert main(["extract", str(video), "-o", str(tmp_path / "o"), "--workers", "0"]) == 2
    if importlib.util.find_spec("ray") is not None:
        argv = ["extract", str(video), "-o", str(tmp_path / "o"), "--executor", "ray"]
        assert main([*argv, "--ray-address", "127.0.0.1:1"]) == 2  # nobody listens: at once


@pytest.mark.slow
def test_local_worker_killed_mid_run_the_job_still_finishes_exactly_once(
    shared_data: Path, tmp_path: Path
) -> None:
    tree = _video_tree(tmp_path / "tree", shared_data, copies=6)
    out = tmp_path / "out"
    run = subprocess.Popen(_cli(str(tree), "-o", str(out), "--workers", "2"), cwd=REPO)
    _wait_for(lambda: any(out.rglob("clip*.npz")) or run.poll() is not None, 300, "an output")
    workers = [p for p in _children(run.pid) if "spawn_main" in _cmdline(p)]
    assert run.poll() is None and len(workers) == 2, "the run ended before a worker was killed"
    os.kill(workers[0], signal.SIGKILL)
    assert run.wait(timeout=600) == 0
    outputs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.npz"))
    assert outputs == sorted(f"{p.parent.name}/{p.stem}.npz" for p in tree.rglob("*.mp4"))
    assert not _leftovers(out)
    records = _records(out)
    assert len(records) == 6 and {r["status"] for r in records.values()} == {"done"}
    summary = json.loads((out / "extraction_summary.json").read_text())
    assert summary["done"] == 6 and summary["failed"] == 0
    assert summary["retried"] >= 1  # the job(s) on the killed worker ran again
    assert len(summary["per_worker"]) >= 2


def test_local_workers_die_with_a_terminated_driver(shared_data: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for i in range(4):
        _frame_folder(tree / f"clip{i}", _pngs(shared_data))
    run = subprocess.Popen(_cli(str(tree), "-o", str(tmp_path / "out"), "--workers", "2"), cwd=REPO)

    def workers() -> list[int]:
        return [p for p in _children(run.pid) if "spawn_main" in _cmdline(p)]

    _wait_for(lambda: len(workers()) == 2 or run.poll() is not None, 120, "two workers")
    pids = workers()
    assert run.poll() is None and len(pids) == 2
    run.send_signal(signal.SIGTERM)  # Python's default: the driver ends without any cleanup
    run.wait()
    _wait_for(lambda: not any(_alive(p) for p in pids), 15, "the workers to end")


def _descendants(pid: int) -> list[int]:
    found = _children(pid)
    for child in list(found):
        found += _descendants(child)
    return found


@pytest.mark.slow
def test_ray_driver_killed_its_actors_and_local_ray_end(shared_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    tree = _video_tree(tmp_path / "tree", shared_data, copies=4)
    out = tmp_path / "out"
    argv = _cli(str(tree), "-o", str(out), "--workers", "2", "--executor", "ray")
    run = subprocess.Popen(argv, cwd=REPO, env={**os.environ, "RAY_ADDRESS": ""})
    _wait_for(lambda: any(out.rglob("clip*.npz")) or run.poll() is not None, 300, "an output")
    processes = _descendants(run.pid)
    actors = [p for p in processes if _cmdline(p).startswith("ray::TaskActor")]
    assert run.poll() is None and actors
    run.send_signal(signal.SIGKILL)
    run.wait()
    # The actors (the ~400 MB each that matter) and the Ray core end at once; Ray's own
    # dashboard/runtime-env agents notice their raylet is gone later (about a minute when loaded).
    core = [p for p in processes if "agent" not in _cmdline(p).lower()]
    _wait_for(lambda: not any(_alive(p) for p in core), 60, "the actors and the Ray core to end")
    _wait_for(lambda: not any(_alive(p) for p in processes), 240, "Ray's agents to end")
    again = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert len(list(out.rglob("*.npz"))) == 4 and not _leftovers(out)


@pytest.mark.slow
def test_local_driver_killed_its_workers_die_and_the_rerun_resumes(
    shared_data: Path, tmp_path: Path
) -> None:
    tree = _video_tree(tmp_path / "tree", shared_data, copies=6)
    out = tmp_path / "out"
    argv = _cli(str(tree), "-o", str(out), "--workers", "2")
    run = subprocess.Popen(argv, cwd=REPO)
    _wait_for(lambda: any(out.rglob("clip*.npz")) or run.poll() is not None, 300, "an output")
    workers = [p for p in _children(run.pid) if "spawn_main" in _cmdline(p)]
    assert run.poll() is None and len(workers) == 2
    run.send_signal(signal.SIGKILL)
    run.wait()
    _wait_for(lambda: not any(_alive(p) for p in workers), 15, "the workers to end")
    recorded = {i for i, r in _records(out).items() if r["status"] == "done"}
    assert recorded  # at least the output we waited for
    again = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    summary = json.loads((out / "extraction_summary.json").read_text())
    assert summary["skipped"] == len(recorded) and summary["done"] == 6 - len(recorded)
    assert len(list(out.rglob("*.npz"))) == 6 and not _leftovers(out)


# ---- fsspec URLs ---------------------------------------------------------------------------------


def test_outputs_to_a_file_url_on_the_local_pool(small_tree, tmp_path: Path) -> None:
    pytest.importorskip("fsspec")
    tree, reference = small_tree
    out = tmp_path / "out"
    url = out.as_uri()  # file:///...: every write goes through fsspec
    jobs = [j for j in jobs_for_inputs([tree], url) if j.id in reference]
    assert all(isinstance(j.output, str) and j.output.startswith("file://") for j in jobs)
    summary = run_batch(jobs, workers=2, progress=False)
    assert {o.status for o in summary.outcomes} == {"done"}, summary.failures
    for name, data in reference.items():
        np.testing.assert_array_equal(load_landmarks(out / f"{name}.npz").data, data)
    assert set(_records(out)) == set(reference) and not _leftovers(out)
    assert summary.write_json(f"{url}/summary.json") == f"{url}/summary.json"
    assert json.loads((out / "summary.json").read_text())["done"] == len(reference)
    again = run_batch(jobs, workers=2, progress=False)
    assert {o.status for o in again.outcomes} == {"skipped"}


def test_outputs_to_a_memory_url_resume_and_stale_temporaries(small_tree, tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    tree, reference = small_tree
    fs = fsspec.filesystem("memory")
    url = f"memory://edge-slr-test-{os.getpid()}/out"
    fs.pipe(f"{url}/train/.clipB.partial-1.npz", b"half")  # left by a killed writer
    jobs = [j for j in jobs_for_inputs([tree], url) if j.id.startswith("train/")]
    try:
        assert {o.status for o in run_batch(jobs, progress=False).outcomes} == {"done"}
        for job in jobs:
            local = tmp_path / f"{job.id.replace('/', '_')}.npz"
            fs.get(job.output, str(local))
            np.testing.assert_array_equal(load_landmarks(local).data, reference[job.id])
        assert not fs.exists(f"{url}/train/.clipB.partial-1.npz")
        lines = fs.cat(f"{url}/train/{MANIFEST_NAME}").decode().splitlines()  # the jobs' folder
        assert sorted(json.loads(line)["output"] for line in lines) == sorted(
            f"{j.id.split('/')[1]}.npz" for j in jobs
        )
        fs.rm(jobs[0].output)  # an output gone: only it is redone
        status = [o.status for o in run_batch(jobs, progress=False).outcomes]
        assert status == ["done", "skipped"]
    finally:
        fs.rm(url.rsplit("/", 1)[0], recursive=True)


def test_bad_urls_are_clear_errors(tmp_path: Path) -> None:
    pytest.importorskip("fsspec")
    from edge_slr.errors import MissingDependencyError
    from edge_slr.landmarks.batch import extract_corpus_split

    with pytest.raises(InputError, match="not a URL fsspec can open"):
        jobs_for_inputs([tmp_path / "a.mp4"], "nosuchprotocol://bucket/out")
    if importlib.util.find_spec("s3fs") is None:
        with pytest.raises(MissingDependencyError, match="s3://bucket/out"):
            jobs_for_inputs([tmp_path / "a.mp4"], "s3://bucket/out")
    with pytest.raises(InputError, match="landmark dataset .* to a local or mounted folder"):
        extract_corpus_split("phoenix2014t", tmp_path, "dev", "memory://x/out")


# ---- Ray ----------------------------------------------------------------------------------------


def _actor_pids() -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and _cmdline(int(proc.name)).startswith("ray::TaskActor"):
            pids.append(int(proc.name))
    return pids


def test_ray_actors_match_single_process_and_survive_a_killed_actor(
    local_ray, small_tree, tmp_path: Path
) -> None:
    tree, reference = small_tree
    out = tmp_path / "out"
    jobs = [j for j in jobs_for_inputs([tree], out) if j.id in reference]
    killed: list[int] = []

    def kill_one_actor_when_the_first_output_appears() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            if any(out.rglob("*.npz")) and _actor_pids():
                pid = _actor_pids()[0]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                killed.append(len(list(out.rglob("*.npz"))))
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_actor_when_the_first_output_appears)
    killer.start()
    summary = run_batch(jobs, executor="ray", workers=2, progress=False)
    killer.join()
    assert summary.executor == "ray"
    assert killed and killed[1] < len(jobs), "no actor was killed while work remained"
    assert {o.status for o in summary.outcomes} == {"done"}, summary.failures
    for name, data in reference.items():
        np.testing.assert_array_equal(load_landmarks(out / f"{name}.npz").data, data)
    assert not _leftovers(out) and len(_records(out)) == len(jobs)
    again = run_batch(jobs, executor="ray", workers=2, progress=False)
    assert {o.status for o in again.outcomes} == {"skipped"}


def test_ray_refuses_more_cpus_than_the_cluster_has(local_ray, tmp_path: Path) -> None:
    jobs = jobs_for_inputs([tmp_path / "a.mp4", tmp_path / "b.mp4"], tmp_path / "out")
    with pytest.raises(InputError, match="need 4 CPUs; the Ray cluster has 2"):
        run_batch(jobs, executor="ray", workers=2, threads_per_worker=2, progress=False)
