"""Where batch jobs run: this process, a local process pool, or Ray actors on a cluster.

An executor runs the jobs of one :class:`WorkerTask`: ``task.start(threads)`` once per worker
(the models load once per worker, not per job), then ``task.run(state, job)`` per job. Landmark
extraction (:class:`edge_slr.landmarks.batch.ExtractionTask`) and sharded evaluation
(:mod:`edge_slr.training.evaluate_workers`) are such tasks. Every executor has the same small
interface: ``submit(job)``, ``next_outcome()`` (blocks until any submitted job is finished),
``pending`` and ``close()``; :func:`run_jobs` drives it with retries. Scheduling is the engine's
own: ``concurrent.futures.ProcessPoolExecutor`` locally, ``ray.util.ActorPool`` on Ray; the
driver only submits the largest jobs first.

Jobs have an ``id``; outcomes are frozen dataclasses with ``id``, ``status`` ("failed", or
"requeued": executor-internal, anything else is final), ``attempts`` and ``worker``.

Worker deaths:

- local pool: a killed worker breaks the pool; the jobs that were on the workers come back as
  "failed" (``WorkerDied``, retried by the driver), the jobs still queued as "requeued" (resubmitted
  without counting an attempt), and the next submit starts a fresh pool. Workers die with the
  driver: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (Linux) plus a thread that exits when the parent pid
  changes (other Unix systems, and the window before prctl takes effect);
- Ray: actors are restartable (``max_restarts=-1``) and Ray itself retries a task whose actor died
  (``max_task_retries``); a job whose retries are spent comes back as ``WorkerDied``. Actors are
  not detached, so they end with the driver's job; a local Ray started here shares its fate too.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from edge_slr.errors import InputError, MissingDependencyError

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")
WORKER_DIED = "WorkerDied"
_THREAD_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
)
_PR_SET_PDEATHSIG = 1


class WorkerTask(Protocol):
    """What the workers of an executor do. Picklable: it travels to every worker."""

    def check(self) -> None:
        """Raise the task's own error in the driver (a bad option, a missing model) before any
        worker starts, instead of every job failing with "worker died"."""

    def start(self, threads: int) -> Any:
        """Load what the jobs need, once per worker; returns the worker's state."""

    def run(self, state: Any, job: Any) -> Any:
        """One job; a failure is returned as an outcome with status "failed", never raised."""

    def stop(self, state: Any) -> None:
        """Release the worker's state."""

    def worker_died(self, job: Any, error: str, charged: bool) -> Any:
        """The outcome of a job whose worker died: "failed" when ``charged`` (it was running),
        else "requeued" (it was only queued)."""


def create_executor(
    kind: str,
    task: WorkerTask,
    *,
    workers: int = 1,
    threads_per_worker: int = 1,
    ray_address: str | None = None,
    retries: int = 2,
) -> Any:
    """An open executor of ``kind`` ("local" or "ray"); close it (or use ``with``) when done."""
    if kind not in EXECUTORS:
        raise InputError(f"executor must be one of {EXECUTORS}, got {kind!r}")
    for name, value in (("workers", workers), ("threads_per_worker", threads_per_worker)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive int, got {value!r}")
    if kind == "ray":
        return RayExecutor(task, workers, threads_per_worker, ray_address, retries)
    if ray_address is not None:
        raise InputError("--ray-address needs --executor ray")
    if workers == 1:
        return SerialExecutor(task)
    return LocalPoolExecutor(task, workers, threads_per_worker)


def run_jobs(
    pool: Any,
    jobs: Sequence[Any],
    retries: int,
    finished: Callable[[Any, Any], None],
    retry_if: Callable[[Any], bool] = lambda outcome: True,
) -> None:
    """Submit ``jobs`` in order and call ``finished(job, outcome)`` once per job with its final
    outcome (``attempts`` set). A failed outcome is run again up to ``retries`` times while
    ``retry_if(outcome)``; jobs requeued by a broken pool run again without counting."""
    by_id = {job.id: job for job in jobs}
    attempts: Counter[str] = Counter()
    for job in jobs:
        pool.submit(job)
    while pool.pending:
        outcome = pool.next_outcome()
        job = by_id[outcome.id]
        if outcome.status == "requeued":  # was queued on a pool that broke
            pool.submit(job)
            continue
        attempts[job.id] += max(1, outcome.attempts)  # Ray reports its own retries
        if outcome.status == "failed" and retry_if(outcome) and attempts[job.id] <= retries:
            logger.warning("%s failed (%s); retrying", job.id, outcome.error)
            pool.submit(job)
            continue
        finished(job, dataclasses.replace(outcome, attempts=attempts[job.id]))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _run(task: WorkerTask, state: Any, job: Any) -> Any:
    return dataclasses.replace(task.run(state, job), worker=worker_name())


class _Base:
    name = "base"

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        pass


class SerialExecutor(_Base):
    """Jobs one after another in this process (``--workers 1``)."""

    name = "serial"

    def __init__(self, task: WorkerTask) -> None:
        self._task = task
        self._state = task.start(0)  # 0: this process keeps its thread settings
        self._queue: deque[Any] = deque()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def submit(self, job: Any) -> None:
        self._queue.append(job)

    def next_outcome(self) -> Any:
        return _run(self._task, self._state, self._queue.popleft())

    def close(self) -> None:
        self._task.stop(self._state)


class LocalPoolExecutor(_Base):
    """A pool of spawned processes on this machine, one task state each."""

    name = "local"

    def __init__(self, task: WorkerTask, workers: int, threads: int) -> None:
        task.check()
        self._task = task
        self._initargs = (task, threads, os.getpid())
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[Future, Any] = {}
        self._ready: deque[Any] = deque()
        self.restarts = 0

    @property
    def pending(self) -> int:
        return len(self._futures) + len(self._ready)

    def submit(self, job: Any) -> None:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context("spawn"),  # MediaPipe threads vs fork
                initializer=_init_worker,
                initargs=self._initargs,
            )
        self._futures[self._pool.submit(_worker_job, job)] = job

    def next_outcome(self) -> Any:
        while not self._ready:
            # Futures are "running" once handed to the workers' queue: if the pool breaks,
            # these are the jobs a dead worker may have held (the pool cannot say which).
            running = {f for f in self._futures if f.running()}
            done, _ = wait(list(self._futures), return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                job = self._futures.pop(future)
                try:
                    self._ready.append(future.result())
                except BrokenProcessPool as err:
                    broken = True
                    self._ready.append(self._died(job, err, future in running))
            if broken:
                self._restart(running)
        return self._ready.popleft()

    def _died(self, job: Any, err: BaseException | None, charged: bool) -> Any:
        error = f"the worker process died while running it ({err or 'pool broken'})"
        return self._task.worker_died(job, error, charged)

    def _restart(self, running: set[Future]) -> None:
        assert self._pool is not None
        self._pool.shutdown(wait=True, cancel_futures=True)  # every pending future ends now
        self._pool = None
        self.restarts += 1
        for future, job in list(self._futures.items()):
            del self._futures[future]
            if future.done() and not future.cancelled() and future.exception() is None:
                self._ready.append(future.result())  # finished just before the break
            else:
                self._ready.append(self._died(job, None, future in running))
        logger.warning("a worker died; starting a fresh pool")

    def close(self) -> None:
        if self._pool is not None:
            # On Ctrl-C (or an early stop) queued jobs are dropped instead of run to the end.
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


# ---- local worker process ---------------------------------------------------------------------

_WORKER: tuple[WorkerTask, Any] | None = None


def _init_worker(task: WorkerTask, threads: int, parent_pid: int) -> None:
    global _WORKER
    die_with_parent(parent_pid)
    limit_threads(threads)
    _WORKER = (task, task.start(threads))


def _worker_job(job: Any) -> Any:
    assert _WORKER is not None, "worker initializer did not run"
    return _run(*_WORKER, job)


def die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` ends (SIGKILL'ed drivers leave no orphans)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            logger.debug("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    except (OSError, AttributeError):  # not Linux: the watchdog below does it alone
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)  # no cleanup: the driver that would collect our result is gone

    threading.Thread(target=watch, name="edge-slr-parent-watchdog", daemon=True).start()


def limit_threads(threads: int) -> None:
    """Cap the math libraries' thread pools of this worker (before the engines load)."""
    for name in _THREAD_ENV:
        os.environ[name] = str(threads)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:  # pragma: no cover - the mediapipe extra brings OpenCV
        pass


# ---- Ray ------------------------------------------------------------------------------------


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(
            f"ray is required for --executor ray but could not be imported ({exc}). "
            "Install it with: pip install 'edge-slr[cluster]' -c constraints.txt"
        ) from exc
    return ray


def _check_reachable(address: str | None) -> None:
    """Fail at once on a host:port nobody listens on (Ray itself retries it for minutes)."""
    if address is None or address in ("auto", "local") or ":" not in address:
        return
    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as err:
        raise InputError(
            f"cannot reach a Ray cluster at {address!r} ({err}); expected the address printed "
            "by `ray start --head` (HOST:6379), 'auto' for the cluster this machine belongs to, "
            "or no address for a local Ray"
        ) from err


class TaskActor:
    """One Ray actor: the task's state loaded once, then one job per call."""

    def __init__(self, task: WorkerTask, threads: int) -> None:
        limit_threads(threads)
        self._task = task
        self._state = task.start(threads)

    def ready(self) -> str:
        return worker_name()

    def run(self, job: Any) -> Any:
        return _run(self._task, self._state, job)


class RayExecutor(_Base):
    """Task actors in a ``ray.util.ActorPool`` (a local Ray, or a cluster by address)."""

    name = "ray"

    def __init__(
        self, task: WorkerTask, workers: int, threads: int, address: str | None, retries: int
    ) -> None:
        ray = import_ray()
        from ray.util import ActorPool

        self._ray = ray
        self._task = task
        self._retries = retries
        self._started = not ray.is_initialized()
        if self._started:
            address = address or os.environ.get("RAY_ADDRESS") or None
            logger.info("starting Ray (%s)", address or "a local instance")
            _check_reachable(address)
            try:
                ray.init(
                    address=address,
                    include_dashboard=False,
                    logging_level=logging.WARNING,
                    # The actors' engine logs (MediaPipe/TFLite C++ lines) only with -vv:
                    # errors come back in the outcomes anyway.
                    log_to_driver=logger.isEnabledFor(logging.DEBUG),
                )
            except (ConnectionError, RuntimeError, ValueError) as err:
                where = f"the Ray cluster at {address!r}" if address else "a local Ray"
                raise InputError(f"could not start or reach {where}: {err}") from err
        cpus = ray.cluster_resources().get("CPU", 0)
        if workers * threads > cpus:
            self.close()
            raise InputError(
                f"{workers} workers x {threads} threads need {workers * threads} CPUs; the Ray "
                f"cluster has {cpus:g}: lower --workers or --threads-per-worker, or add machines"
            )
        actor = ray.remote(TaskActor).options(
            num_cpus=threads, max_restarts=-1, max_task_retries=retries
        )
        self._actors = [actor.remote(task, threads) for _ in range(workers)]
        try:
            names = ray.get([a.ready.remote() for a in self._actors])
        except ray.exceptions.RayError as err:
            self.close()
            raise InputError(f"the workers could not start on Ray: {err}") from err
        logger.info("Ray actors: %s", ", ".join(names))
        self._pool = ActorPool(self._actors)
        self._refs: dict[Any, Any] = {}

    @property
    def pending(self) -> int:
        return len(self._refs)

    def submit(self, job: Any) -> None:
        def call(actor: Any, item: Any) -> Any:
            ref = actor.run.remote(item)
            self._refs[ref] = item
            return ref

        self._pool.submit(call, job)

    def next_outcome(self) -> Any:
        ray = self._ray
        try:
            outcome = self._pool.get_next_unordered()
        except ray.exceptions.RayActorError as err:
            return self._died(err)
        for ref, job in list(self._refs.items()):
            if job.id == outcome.id:
                del self._refs[ref]
                break
        return outcome

    def _died(self, err: Exception) -> Any:
        # Ray spent max_task_retries on this job; ActorPool does not say which job it was,
        # so find the finished reference that holds an actor error.
        ray = self._ray
        ready, _ = ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
        for ref in ready:
            try:
                ray.get(ref, timeout=0)
            except ray.exceptions.RayActorError:
                job = self._refs.pop(ref)
                break
        else:  # pragma: no cover - the pool raised for a reference it holds
            raise err
        self._restore_actors()
        # Ray already ran it 1 + max_task_retries times: the driver must not retry it again.
        outcome = self._task.worker_died(job, f"its Ray actor died ({err})", True)
        return dataclasses.replace(outcome, attempts=self._retries + 1)

    def _restore_actors(self) -> None:
        # ActorPool drops an actor whose task died; ours restart, so they go back in
        # (push refuses the ones it still holds).
        for actor in self._actors:
            with contextlib.suppress(ValueError):
                self._pool.push(actor)

    def close(self) -> None:
        for actor in getattr(self, "_actors", []):
            self._ray.kill(actor)
        self._actors = []
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
