"""Batch landmark extraction over many videos or frame folders.

Built for runs of hours over a whole corpus:

- resumable: a job whose output file exists is skipped (outputs only ever appear complete, so
  existing means finished);
- atomic: each file is written under a hidden temporary name in the output folder and moved into
  place with ``os.replace``, so a kill leaves no half-written output (stale temporaries are
  removed by the next run);
- failures do not stop the run: each one is recorded with its reason in a
  :class:`BatchSummary`, which is written as JSON next to the outputs;
- ``workers > 1`` runs one MediaPipe graph per process (spawned, not forked: MediaPipe and
  TensorFlow threads do not survive a fork).

Plain inputs and a corpus split (the latter in the :mod:`edge_slr.data.dataset` layout)::

    summary = run_batch(jobs_for_inputs(["a.mp4", "frames/b"], "out"), workers=2)
    summary = extract_corpus_split("phoenix2014t", "/data/PHOENIX-2014-T", "dev", "out")
    summary.failures  # [JobOutcome(id=..., status="failed", error_type=..., error=...), ...]
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_slr._optional import require
from edge_slr.errors import InputError
from edge_slr.landmarks.extract import NO_PERSON_POLICIES, HolisticExtractor, HolisticOptions

logger = logging.getLogger(__name__)

OUTPUT_SUFFIXES = (".npz", ".pose")
LANDMARK_SUFFIXES = (".npz", ".pose", ".parquet")
SUMMARY_NAME = "extraction_summary.json"
# Temporaries: ours (".ID.partial-PID.npz") and the landmark writers' own ("X.npz.partial").
_PARTIAL = re.compile(r"^(\..+\.partial-\d+\.(npz|pose|json)|.+\.(npz|pose)\.partial)$")
_SAFE_ID = re.compile(r"^[^/\\\x00]+$")


@dataclass(frozen=True)
class ExtractionJob:
    """One input (video file or frame folder) and the landmark file it becomes."""

    id: str
    source: Path | None  # None: the corpus has no frames for this sample (recorded as a failure)
    output: Path
    fps: float | None = None  # frame rate of a frame folder; videos carry their own


@dataclass(frozen=True)
class JobOutcome:
    """What happened to one job."""

    id: str
    status: str  # "done", "skipped" (output already there) or "failed"
    source: str | None
    output: str
    num_frames: int | None = None
    error_type: str | None = None
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class BatchSummary:
    """All outcomes of a run, in job order, plus the totals."""

    outcomes: tuple[JobOutcome, ...]
    seconds: float

    def by_status(self, status: str) -> list[JobOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def failures(self) -> list[JobOutcome]:
        return self.by_status("failed")

    def to_dict(self) -> dict[str, Any]:
        done = self.by_status("done")
        frames = sum(o.num_frames or 0 for o in done)
        busy = sum(o.seconds for o in done)
        return {
            "jobs": len(self.outcomes),
            "done": len(done),
            "skipped": len(self.by_status("skipped")),
            "failed": len(self.failures),
            "frames_extracted": frames,
            "ms_per_frame": round(1000.0 * busy / frames, 2) if frames else None,
            "seconds": round(self.seconds, 2),
            "failures": [asdict(o) for o in self.failures],
        }

    def write_json(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write :meth:`to_dict` (plus ``extra``, e.g. the options) atomically as JSON."""
        path = Path(path)
        payload = {**(extra or {}), **self.to_dict()}
        partial = _partial_path(path)
        partial.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", "utf-8")
        os.replace(partial, path)
        return path


def jobs_for_inputs(
    inputs: Iterable[str | Path],
    out_dir: str | Path,
    suffix: str = ".npz",
    fps: float | None = None,
) -> list[ExtractionJob]:
    """One job per video/frame folder, written as ``OUT/NAME.suffix``.

    NAME is the file stem or folder name (``NAME/1/`` of the PHOENIX layout gives ``NAME``);
    two inputs with the same NAME are an InputError, not a silent overwrite.
    """
    _check_suffix(suffix)
    out_dir = Path(out_dir)
    jobs: list[ExtractionJob] = []
    seen: dict[str, Path] = {}
    for raw in inputs:
        source = Path(raw)
        name = _input_name(source)
        if name in seen:
            raise InputError(
                f"inputs {seen[name]} and {source} would both be written as {name}{suffix}"
            )
        seen[name] = source
        jobs.append(ExtractionJob(name, source, out_dir / f"{name}{suffix}", fps))
    if not jobs:
        raise InputError("no inputs given: expected video files or frame folders")
    return jobs


def jobs_for_samples(
    samples: Sequence[Any], out_dir: str | Path, fps: float | None = None
) -> list[ExtractionJob]:
    """One job per corpus sample (``.id``, ``.source``), written as ``OUT/ID.npz``."""
    out_dir = Path(out_dir)
    return [ExtractionJob(s.id, s.source, out_dir / f"{s.id}.npz", fps) for s in samples]


def run_batch(
    jobs: Sequence[ExtractionJob],
    options: HolisticOptions | None = None,
    *,
    workers: int = 1,
    on_no_person: str = "raise",
    overwrite: bool = False,
    progress: bool = True,
) -> BatchSummary:
    """Extract every job not finished yet.

    Per-input failures are recorded in the summary, never raised; errors that concern the
    whole run (bad options, a missing model, repeated ids) are raised before any work.
    """
    options = HolisticOptions() if options is None else options
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive int, got {workers!r}")
    if on_no_person not in NO_PERSON_POLICIES:
        raise InputError(f"on_no_person must be one of {NO_PERSON_POLICIES}, got {on_no_person!r}")
    ids = [job.id for job in jobs]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise InputError(f"job ids must be unique; repeated: {twice[:10]}")
    start = time.perf_counter()
    for folder in {job.output.parent for job in jobs}:
        folder.mkdir(parents=True, exist_ok=True)
        remove_partials(folder)
    outcomes: dict[str, JobOutcome] = {}
    todo = []
    for job in jobs:
        if job.output.exists() and not overwrite:
            outcomes[job.id] = JobOutcome(job.id, "skipped", _str(job.source), str(job.output))
        else:
            todo.append(job)
    logger.info("%d jobs: %d to run, %d already done", len(jobs), len(todo), len(outcomes))
    bar = _progress(len(todo), progress)
    try:
        runner = _run_serial if workers == 1 or len(todo) <= 1 else _run_pool
        for outcome in runner(todo, options, on_no_person, workers):
            outcomes[outcome.id] = outcome
            if outcome.status == "failed":
                logger.warning("%s failed: %s", outcome.id, outcome.error)
            bar.update(1)
    finally:
        bar.close()
    ordered = tuple(outcomes[job.id] for job in jobs)
    return BatchSummary(ordered, time.perf_counter() - start)


def extract_job(
    extractor: HolisticExtractor, job: ExtractionJob, on_no_person: str = "raise"
) -> JobOutcome:
    """Run one job with an open extractor; any failure becomes a "failed" outcome."""
    from edge_slr.landmarks.io import save_landmarks

    start = time.perf_counter()
    try:
        if not _SAFE_ID.match(job.id) or job.id in (".", ".."):
            raise InputError(f"id {job.id!r} cannot be used as a file name")
        if job.source is None:
            raise InputError(f"no video or frame folder found for {job.id!r}")
        if job.source.suffix.lower() in LANDMARK_SUFFIXES:
            raise InputError(f"{job.source} is already a landmark file; nothing to extract")
        seq = extractor.extract_video(job.source, fps=job.fps, on_no_person=on_no_person)
        partial = _partial_path(job.output)
        try:
            save_landmarks(partial, seq)
            os.replace(partial, job.output)
        finally:
            partial.unlink(missing_ok=True)
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
    from edge_slr.data.vocab import Vocabulary
    from edge_slr.errors import FormatError

    try:
        train = load_corpus(corpus, root, "train")
    except FormatError as err:
        logger.warning("no vocabulary.json: the train annotation could not be read (%s)", err)
        return None
    return Vocabulary.from_sentences(s.glosses for s in train)


def remove_partials(folder: str | Path) -> int:
    """Delete temporaries left by a killed run in ``folder``; returns how many."""
    removed = 0
    for path in Path(folder).iterdir():
        if _PARTIAL.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        logger.info("removed %d unfinished files from an earlier run in %s", removed, folder)
    return removed


def _run_serial(jobs: Sequence[ExtractionJob], options: HolisticOptions, on_no_person: str, _: int):
    if not jobs:
        return
    with HolisticExtractor.create_from_options(options) as extractor:
        for job in jobs:
            yield extract_job(extractor, job, on_no_person)


def _run_pool(
    jobs: Sequence[ExtractionJob], options: HolisticOptions, on_no_person: str, workers: int
):
    # A bad option or a missing model must stop the run with its own error here, not surface
    # as every job failing with "worker died" after the workers' initialisers crash.
    HolisticExtractor.create_from_options(options).close()
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(options,),
    )
    try:
        futures: dict[Future, ExtractionJob] = {
            pool.submit(_worker_job, job, on_no_person): job for job in jobs
        }
        for future in as_completed(futures):
            job = futures[future]
            try:
                yield future.result()
            except BrokenProcessPool as err:
                # A worker died (e.g. killed for memory): the jobs it held are failures.
                yield JobOutcome(
                    job.id,
                    "failed",
                    _str(job.source),
                    str(job.output),
                    error_type="WorkerDied",
                    error=f"worker process died: {err}",
                )
    finally:
        # On Ctrl-C (or an early stop) queued jobs are dropped instead of run to the end.
        pool.shutdown(wait=True, cancel_futures=True)


_WORKER_EXTRACTOR: HolisticExtractor | None = None


def _init_worker(options: HolisticOptions) -> None:
    global _WORKER_EXTRACTOR
    _WORKER_EXTRACTOR = HolisticExtractor.create_from_options(options)


def _worker_job(job: ExtractionJob, on_no_person: str) -> JobOutcome:
    assert _WORKER_EXTRACTOR is not None, "worker initializer did not run"
    return extract_job(_WORKER_EXTRACTOR, job, on_no_person)


def _partial_path(path: Path) -> Path:
    # Same folder (os.replace must not cross file systems), hidden, and the same suffix so
    # the writer that dispatches on it picks the right format.
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


def _input_name(source: Path) -> str:
    path = source.parent if "*" in source.name else source
    if path.name == "1" and path.parent.name:  # PHOENIX release layout NAME/1/
        path = path.parent
    return path.name if path.is_dir() else path.stem


def _check_suffix(suffix: str) -> None:
    if suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"output format must be one of {OUTPUT_SUFFIXES}, got {suffix!r}")


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool) -> Any:
    if not enabled or total == 0:
        return _NoBar()
    tqdm = require("tqdm", "the progress bar of batch extraction")
    return tqdm.tqdm(total=total, unit="video", desc="extracting landmarks")
