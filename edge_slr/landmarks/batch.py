"""Batch landmark extraction over many videos or frame folders.

Built for runs of hours over a whole corpus, on one machine or a Ray cluster:

- exactly once: each file is written under a hidden temporary name in the output folder and
  moved into place in one step (a kill leaves no half-written output; stale temporaries are
  removed at the start and end of a run), and recorded in the folder's manifest
  (:mod:`edge_slr.landmarks.manifest`) with its input's size/mtime and the extractor's options;
- resumable: a re-run skips what the manifest says is done and unchanged, redoes what changed;
- failures do not stop the run: a failed video is retried ``retries`` times (errors that are a
  property of the file, InputError/FormatError, are not: they would fail again), then recorded
  with its reason in the manifest and in a :class:`BatchSummary` written as JSON next to the
  outputs;
- executors (:mod:`edge_slr.landmarks.executors`): this process (``workers=1``), a local
  process pool (``workers > 1``; spawned, not forked: MediaPipe threads do not survive a fork)
  or Ray actors (``executor="ray"``); one extractor per worker, largest inputs first;
- storage (:mod:`edge_slr.landmarks.storage`): the output folder is a local path or an fsspec
  URL (``file://``, ``s3://``, ...); inputs are local (or mounted) files.

Plain inputs (a folder that is not a frame folder is walked for videos and frame folders, and
its tree is mirrored in the output) and a corpus split (the :mod:`edge_slr.data.dataset` layout)::

    summary = run_batch(jobs_for_inputs(["a.mp4", "frames/b", "corpus/"], "out"), workers=2)
    summary = extract_corpus_split("phoenix2014t", "/data/PHOENIX-2014-T", "dev", "out")
    summary.failures  # [JobOutcome(id=..., status="failed", error_type=..., error=...), ...]
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_slr._optional import require
from edge_slr.errors import InputError
from edge_slr.landmarks import storage
from edge_slr.landmarks.extract import NO_PERSON_POLICIES, HolisticExtractor, HolisticOptions

logger = logging.getLogger(__name__)

OUTPUT_SUFFIXES = (".npz", ".pose")
LANDMARK_SUFFIXES = (".npz", ".pose", ".parquet")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".m4v")
SUMMARY_NAME = "extraction_summary.json"
# Errors that are a property of the input file: retrying cannot change them.
NOT_RETRIED = ("InputError", "FormatError", "NoPersonDetectedError", "MissingDependencyError")
_SAFE_ID = re.compile(r"^[^/\\\x00]+$")


@dataclass(frozen=True)
class ExtractionJob:
    """One input (video file or frame folder) and the landmark file it becomes."""

    id: str
    source: Path | None  # None: the corpus has no frames for this sample (recorded as a failure)
    output: Path | str  # a local path or an fsspec URL (edge_slr.landmarks.storage)
    fps: float | None = None  # frame rate of a frame folder; videos carry their own


@dataclass(frozen=True)
class JobOutcome:
    """What happened to one job."""

    id: str
    status: str  # "done", "skipped" (done and unchanged), "failed" ("requeued": executor-internal)
    source: str | None
    output: str
    num_frames: int | None = None
    error_type: str | None = None
    error: str | None = None
    seconds: float = 0.0
    worker: str | None = None  # host:pid of the worker that ran it
    attempts: int = 0


@dataclass(frozen=True)
class BatchSummary:
    """All outcomes of a run, in job order, plus the totals."""

    outcomes: tuple[JobOutcome, ...]
    seconds: float
    executor: str = "serial"

    def by_status(self, status: str) -> list[JobOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def failures(self) -> list[JobOutcome]:
        return self.by_status("failed")

    def per_worker(self) -> dict[str, dict[str, Any]]:
        """Videos, frames, busy seconds and frames/s of each worker (done jobs)."""
        totals: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
        for o in self.by_status("done"):
            entry = totals[o.worker or "?"]
            entry[0] += 1
            entry[1] += o.num_frames or 0
            entry[2] += o.seconds
        return {
            worker: {
                "videos": int(videos),
                "frames": int(frames),
                "busy_seconds": round(busy, 2),
                "frames_per_second": round(frames / busy, 2) if busy else None,
            }
            for worker, (videos, frames, busy) in sorted(totals.items())
        }

    def to_dict(self) -> dict[str, Any]:
        done = self.by_status("done")
        frames = sum(o.num_frames or 0 for o in done)
        busy = sum(o.seconds for o in done)
        return {
            "executor": self.executor,
            "jobs": len(self.outcomes),
            "done": len(done),
            "skipped": len(self.by_status("skipped")),
            "failed": len(self.failures),
            "retried": sum(1 for o in self.outcomes if o.attempts > 1),
            "frames_extracted": frames,
            "ms_per_frame": round(1000.0 * busy / frames, 2) if frames else None,
            "frames_per_second": round(frames / self.seconds, 2) if frames else None,
            "seconds": round(self.seconds, 2),
            "per_worker": self.per_worker(),
            "failures": [asdict(o) for o in self.failures],
        }

    def write_json(self, path: str | Path, extra: dict[str, Any] | None = None) -> storage.Target:
        """Write :meth:`to_dict` (plus ``extra``, e.g. the options) atomically as JSON to a
        local path or an fsspec URL."""
        target = storage.as_target(path)
        payload = {**(extra or {}), **self.to_dict()}
        storage.write_text_atomic(target, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        return target


def jobs_for_inputs(
    inputs: Iterable[str | Path],
    out_dir: str | Path,
    suffix: str = ".npz",
    fps: float | None = None,
) -> list[ExtractionJob]:
    """One job per video/frame folder, written as ``OUT/NAME.suffix``.

    NAME is the file stem or folder name (``NAME/1/`` of the PHOENIX layout gives ``NAME``). A
    folder that is not a frame folder is a tree (a corpus, ``features/fullFrame-210x260px``, any
    folder of videos): its videos and frame folders become ``OUT/REL/NAME.suffix``, REL being
    their folder relative to it. Two inputs with the same output are an InputError, not a
    silent overwrite.
    """
    _check_suffix(suffix)
    out_dir = storage.as_target(out_dir)
    jobs: list[ExtractionJob] = []
    seen: dict[str, Path] = {}
    for raw in inputs:
        for source, rel in _expand(Path(raw)):
            name = (rel.parent / f"{rel.name}{suffix}").as_posix()
            if name in seen:
                raise InputError(
                    f"inputs {seen[name]} and {source} would both be written as {name}"
                )
            seen[name] = source
            jobs.append(ExtractionJob(rel.as_posix(), source, storage.join(out_dir, name), fps))
    if not jobs:
        raise InputError("no inputs given: expected video files, frame folders or folders of them")
    return jobs


def jobs_for_samples(
    samples: Sequence[Any], out_dir: str | Path, fps: float | None = None
) -> list[ExtractionJob]:
    """One job per corpus sample (``.id``, ``.source``), written as ``OUT/ID.npz``."""
    out_dir = storage.as_target(out_dir)
    return [
        ExtractionJob(s.id, s.source, storage.join(out_dir, f"{s.id}.npz"), fps) for s in samples
    ]


def run_batch(
    jobs: Sequence[ExtractionJob],
    options: HolisticOptions | None = None,
    *,
    workers: int = 1,
    on_no_person: str = "raise",
    overwrite: bool = False,
    progress: bool = True,
    executor: str = "local",
    threads_per_worker: int = 1,
    ray_address: str | None = None,
    retries: int = 2,
    sha256: bool = False,
) -> BatchSummary:
    """Extract every job not finished yet (see the module doc).

    Per-input failures are recorded in the summary and the manifest, never raised; errors that
    concern the whole run (bad options, a missing model, repeated ids, an unreachable Ray
    cluster) are raised before any work.
    """
    from edge_slr.landmarks.manifest import Manifest, extractor_description

    options = HolisticOptions() if options is None else options
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive int, got {workers!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InputError(f"retries must be an int >= 0, got {retries!r}")
    if on_no_person not in NO_PERSON_POLICIES:
        raise InputError(f"on_no_person must be one of {NO_PERSON_POLICIES}, got {on_no_person!r}")
    ids = [job.id for job in jobs]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i, n in Counter(ids).items() if n > 1})
        raise InputError(f"job ids must be unique; repeated: {twice[:10]}")
    start = time.perf_counter()
    if not jobs:
        return BatchSummary((), 0.0)
    folders = {storage.parent(job.output) for job in jobs}
    for folder in folders:
        storage.makedirs(folder)
        remove_partials(folder)
    described = extractor_description(options)
    run = {
        "options": options,
        "on_no_person": on_no_person,
        "workers": workers,
        "threads_per_worker": threads_per_worker,
        "ray_address": ray_address,
        "retries": retries,
    }
    with Manifest.open(storage.common_folder(folders)) as manifest:
        outcomes, todo = _plan(jobs, manifest, described, sha256, overwrite)
        logger.info("%d jobs: %d to run, %d already done", len(jobs), len(todo), len(outcomes))
        name = "serial"
        if todo:
            name = _execute(todo, run, executor, manifest, described, outcomes, progress)
        manifest.compact()
    for folder in folders:  # temporaries of workers killed during this run
        remove_partials(folder)
    ordered = tuple(outcomes[job.id] for job in jobs)
    return BatchSummary(ordered, time.perf_counter() - start, name)


def _plan(
    jobs: Sequence[ExtractionJob],
    manifest: Any,
    described: dict[str, Any],
    sha256: bool,
    overwrite: bool,
) -> tuple[dict[str, JobOutcome], list[tuple[ExtractionJob, Any]]]:
    """Outcomes of the jobs to skip, and the others with their input signature, largest first."""
    from edge_slr.landmarks.manifest import source_signature

    outcomes: dict[str, JobOutcome] = {}
    todo = []
    for job in jobs:
        signature = source_signature(job.source, sha256)
        record = manifest.get(job.output)
        why = _redo_reason(record, job, signature, described) if not overwrite else "overwrite"
        if why is None:
            outcomes[job.id] = JobOutcome(
                job.id, "skipped", _str(job.source), str(job.output), record.get("num_frames")
            )
            continue
        if record is not None or storage.exists(job.output):
            logger.info("%s: extracting again (%s)", job.id, why)
        todo.append((job, signature))
    todo.sort(key=lambda item: -(item[1].size if item[1] is not None else 0))
    return outcomes, todo


def _redo_reason(
    record: dict[str, Any] | None, job: ExtractionJob, signature: Any, described: dict[str, Any]
) -> str | None:
    """Why a job must run (None: it is done and unchanged)."""
    if record is None:
        return "not in the manifest"
    if record.get("status") != "done":
        return f"it failed before ({record.get('error_type')})"
    if not storage.exists(job.output):
        return "its output file is gone"
    if signature is None or not signature.matches(record):
        return "its input changed"
    if record.get("extractor") != described:
        return "the extractor or its options changed"
    return None


def _execute(
    todo: list[tuple[ExtractionJob, Any]],
    run: dict[str, Any],
    executor: str,
    manifest: Any,
    described: dict[str, Any],
    outcomes: dict[str, JobOutcome],
    progress: bool,
) -> str:
    """Run the jobs on the executor, retrying failures; record each final outcome."""
    from edge_slr.landmarks.executors import create_executor, run_jobs

    signatures = {job.id: signature for job, signature in todo}
    retries = run.pop("retries")
    workers = min(run.pop("workers"), len(todo))
    threads = run["threads_per_worker"]
    task = ExtractionTask(_with_threads(run.pop("options"), threads), run.pop("on_no_person"))
    bar = _progress(len(todo), progress)
    frames, started = 0, time.perf_counter()

    def finished(job: ExtractionJob, outcome: JobOutcome) -> None:
        nonlocal frames
        outcomes[job.id] = outcome
        manifest.add(_record(job, signatures[job.id], described, outcome))
        if outcome.status == "failed":
            logger.warning("%s failed: %s", outcome.id, outcome.error)
        frames += outcome.num_frames or 0
        bar.set_postfix_str(f"{frames / (time.perf_counter() - started):.1f} frames/s")
        bar.update(1)

    try:
        with create_executor(executor, task, workers=workers, retries=retries, **run) as pool:
            jobs = [job for job, _ in todo]
            run_jobs(pool, jobs, retries, finished, lambda o: o.error_type not in NOT_RETRIED)
            return str(pool.name)
    finally:
        bar.close()


@dataclass(frozen=True)
class ExtractionTask:
    """Landmark extraction as an executor task: one extractor per worker."""

    options: HolisticOptions
    on_no_person: str = "raise"

    def check(self) -> None:
        HolisticExtractor.create_from_options(self.options).close()

    def start(self, threads: int) -> HolisticExtractor:
        return HolisticExtractor.create_from_options(self.options)  # threads: in the options

    def run(self, extractor: HolisticExtractor, job: ExtractionJob) -> JobOutcome:
        return extract_job(extractor, job, self.on_no_person)

    def stop(self, extractor: HolisticExtractor) -> None:
        extractor.close()

    def worker_died(self, job: ExtractionJob, error: str, charged: bool) -> JobOutcome:
        from edge_slr.landmarks.executors import WORKER_DIED

        status = "failed" if charged else "requeued"
        return JobOutcome(
            job.id, status, _str(job.source), str(job.output), error_type=WORKER_DIED, error=error
        )


def _with_threads(options: HolisticOptions, threads: int) -> HolisticOptions:
    # Engines with a thread option (e.g. an OpenVINO/LiteRT backend) get it from here too.
    names = {f.name for f in dataclasses.fields(options)}
    for name in ("num_threads", "threads"):
        if name in names and getattr(options, name) in (None, 0):
            changes: dict[str, Any] = {name: threads}
            return dataclasses.replace(options, **changes)
    return options


def _record(
    job: ExtractionJob, signature: Any, described: dict[str, Any], outcome: JobOutcome
) -> dict[str, Any]:
    return {
        "output": str(job.output),
        "id": job.id,
        "source": _str(job.source),
        "source_size": None if signature is None else signature.size,
        "source_mtime_ns": None if signature is None else signature.mtime_ns,
        "source_sha256": None if signature is None else signature.sha256,
        "extractor": described,
        "status": outcome.status,
        "num_frames": outcome.num_frames,
        "attempts": outcome.attempts,
        "worker": outcome.worker,
        "seconds": round(outcome.seconds, 3),
        "error_type": outcome.error_type,
        "error": outcome.error,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def extract_job(
    extractor: HolisticExtractor, job: ExtractionJob, on_no_person: str = "raise"
) -> JobOutcome:
    """Run one job with an open extractor; any failure becomes a "failed" outcome."""
    from edge_slr.landmarks.io import save_landmarks

    start = time.perf_counter()
    try:
        parts = job.id.split("/")  # tree inputs: REL/NAME, never outside the output folder
        if not all(_SAFE_ID.match(part) and part not in (".", "..") for part in parts):
            raise InputError(f"id {job.id!r} cannot be used as a file name")
        if job.source is None:
            raise InputError(f"no video or frame folder found for {job.id!r}")
        if job.source.suffix.lower() in LANDMARK_SUFFIXES:
            raise InputError(f"{job.source} is already a landmark file; nothing to extract")
        seq = extractor.extract_video(job.source, fps=job.fps, on_no_person=on_no_person)
        storage.save_atomic(job.output, lambda local: save_landmarks(local, seq))
    except Exception as err:  # noqa: BLE001 - one bad file must not end a corpus-long run
        logger.debug("%s failed", job.id, exc_info=True)
        return JobOutcome(
            job.id,
            "failed",
            _str(job.source),
            str(job.output),
            error_type=type(err).__name__,
            error=str(err),
            seconds=time.perf_counter() - start,
        )
    seconds = time.perf_counter() - start
    return JobOutcome(
        job.id, "done", _str(job.source), str(job.output), len(seq.data), seconds=seconds
    )


def extract_corpus_split(
    corpus: str,
    root: str | Path,
    split: str,
    out: str | Path,
    options: HolisticOptions | None = None,
    *,
    limit: int | None = None,
    fps: float | None = None,
    **run_options: Any,
) -> BatchSummary:
    """Extract one split of a corpus into the landmark dataset layout of
    :mod:`edge_slr.data.dataset`: OUT/SPLIT/ID.npz, OUT/SPLIT/index.tsv (samples whose file
    exists, from this run or an earlier one), OUT/dataset.json (corpus and extractor options; a
    resumed run with other options is refused) and OUT/vocabulary.json (the train glosses).

    ``run_options`` go to :func:`run_batch` (workers, on_no_person, overwrite, progress).
    """
    from edge_slr.data.corpora import load_corpus
    from edge_slr.data.dataset import DatasetWriter, IndexEntry

    if storage.is_url(out):
        raise InputError(
            f"a corpus split is written as a landmark dataset (index, dataset.json), to a local "
            f"or mounted folder; got the URL {out!r}. Extract its videos as plain inputs to a "
            "URL instead, or write to a mounted folder"
        )
    options = HolisticOptions() if options is None else options
    samples = load_corpus(corpus, root, split)[:limit]
    description = {
        "name": f"{corpus}-holistic",
        "corpus": corpus,
        "extractor": "mediapipe-holistic",
        "options": options.to_dict(),
    }
    writer = DatasetWriter(out, description, _train_vocabulary(corpus, root))
    writer.start_split(split)
    jobs = jobs_for_samples(samples, writer.split_dir(split), fps)
    summary = run_batch(jobs, options, **run_options)
    frames = {o.id: o.num_frames for o in summary.outcomes if o.status == "done"}
    entries = []
    for sample in samples:
        count = frames.get(sample.id)
        if count is None:  # skipped (finished earlier) or failed: the file on disk decides
            count = writer.complete_sample(split, sample.id, frames=False, pose=False)
        if count is not None:
            entries.append(IndexEntry(sample.id, sample.signer, count, sample.glosses))
    info = {"corpus_samples": len(samples), "failed": len(summary.failures), "limit": limit}
    writer.finish_split(split, entries, info)
    return summary


def _train_vocabulary(corpus: str, root: str | Path) -> Any:
    """The vocabulary of the corpus's train glosses, or None when its train file is absent."""
    from edge_slr.data.corpora import load_corpus
    from edge_slr.decoding.vocab import Vocabulary
    from edge_slr.errors import FormatError

    try:
        train = load_corpus(corpus, root, "train")
    except FormatError as err:
        logger.warning("no vocabulary.json: the train annotation could not be read (%s)", err)
        return None
    return Vocabulary.from_sentences(s.glosses for s in train)


def remove_partials(folder: str | Path) -> int:
    """Delete temporaries left by a killed run in ``folder``; returns how many."""
    removed = len(storage.remove_partials(folder))
    if removed:
        logger.info("removed %d unfinished files from an earlier run in %s", removed, folder)
    return removed


def _input_name(source: Path) -> str:
    path = source.parent if "*" in source.name else source
    if path.name == "1" and path.parent.name:  # PHOENIX release layout NAME/1/
        path = path.parent
    return path.name if path.is_dir() else path.stem


def _expand(source: Path) -> list[tuple[Path, Path]]:
    """(input, output path relative to OUT without suffix) of one input or one tree."""
    if not source.is_dir() or _is_frame_folder(source) or "*" in source.name:
        return [(source, Path(_input_name(source)))]
    found = []
    for folder, subfolders, files in os.walk(source):
        here = Path(folder)
        rel = here.relative_to(source)
        frame_folders = [d for d in subfolders if _is_frame_folder(here / d)]
        # Frame folders are leaves; "NAME/1/" keeps NAME as the name.
        subfolders[:] = sorted(d for d in subfolders if d not in frame_folders)
        for name in sorted(frame_folders):
            found.append((here / name, rel / name))
        for name in sorted(files):
            if Path(name).suffix.lower() in VIDEO_SUFFIXES:
                found.append((here / name, rel / Path(name).stem))
    if not found:
        raise InputError(
            f"{source} holds no frame images, videos ({'/'.join(VIDEO_SUFFIXES)}) "
            "or folders of them"
        )
    return found


def _is_frame_folder(folder: Path) -> bool:
    from edge_slr.landmarks.video import IMAGE_SUFFIXES

    for candidate in (folder, folder / "1"):
        if candidate.is_dir() and any(
            p.suffix.lower() in IMAGE_SUFFIXES for p in candidate.iterdir()
        ):
            return True
    return False


def _check_suffix(suffix: str) -> None:
    if suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"output format must be one of {OUTPUT_SUFFIXES}, got {suffix!r}")


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool) -> Any:
    if not enabled or total == 0:
        return _NoBar()
    tqdm = require("tqdm", "the progress bar of batch extraction")
    return tqdm.tqdm(total=total, unit="video", desc="extracting landmarks")
