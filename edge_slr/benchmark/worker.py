"""One benchmark row, measured in a fresh process: ``python -m edge_slr.benchmark.worker``.

A fresh process per row is what makes the peak RSS and the load time honest: the engine is
imported and the model compiled from cold, and ``ru_maxrss`` (the process's peak resident
memory) belongs to that one model on that one engine. The job comes as JSON on stdin; the
result is one JSON line on stdout (``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``).
:func:`run_job` is the same measurement in the calling process (``isolate=False``).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr.errors import EdgeSLRError

_SPECIALS = ("<blank>", "<unk>")  # not glosses: scored like `edge-slr evaluate` (keep_unk=False)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB.

    Linux: ``VmHWM`` of /proc/self/status, the high-water mark of this address space (reset by
    exec). ``ru_maxrss`` is not used there: Linux carries it over from the parent across
    fork+exec, so a worker started by a big process would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def time_calls(fn: Any, warmup: int, runs: int, budget_s: float) -> list[float]:
    """Milliseconds of ``runs`` calls of ``fn`` after ``warmup`` calls (fewer past ``budget_s``)."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < runs and (len(samples) < 3 or time.perf_counter() < deadline):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


def _latency(samples: list[float], frames: int) -> dict[str, Any]:
    return {
        "frames": frames,
        "p50_ms": round(float(np.percentile(samples, 50)), 4),
        "p90_ms": round(float(np.percentile(samples, 90)), 4),
        "mean_ms": round(float(np.mean(samples)), 4),
        "runs": len(samples),
        "min_ms": round(float(np.min(samples)), 4),
    }


def probe_features(description: Any, data_dir: str | None, split: str, frames: int) -> np.ndarray:
    """``(1, frames, F)`` float32: a real sentence's features tiled to length, else noise."""
    width = description.feature_dim
    if data_dir:
        from edge_slr.data.dataset import LandmarkDataset

        features = description.feature_preset().features(
            LandmarkDataset(data_dir, split)[0].landmarks
        )
        reps = -(-frames // len(features))
        return np.ascontiguousarray(np.tile(features, (reps, 1))[None, :frames], np.float32)
    return np.random.default_rng(frames).standard_normal((1, frames, width)).astype(np.float32)


def measure_model(job: dict[str, Any]) -> dict[str, Any]:
    """Load one model on one runtime, time it at every length, and score it on the data."""
    from edge_slr.runtimes import get_runtime_class
    from edge_slr.sidecar import read_sidecar

    path = Path(job["model"])
    description = read_sidecar(path)  # FormatError for a truncated or changed model file
    cls = get_runtime_class(job["runtime"])
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    runtime = cls(path, threads=job.get("threads"), description=description)
    out: dict[str, Any] = {
        "load_s": round(time.perf_counter() - started, 4),
        "rss_before_load_mb": round(rss_before, 1),
        "latency": [],
    }
    try:
        for frames in job["lengths"]:
            x = probe_features(description, job.get("data_dir"), job.get("split", "test"), frames)
            samples = time_calls(
                lambda x=x: runtime.run(x), job["warmup"], job["runs"], job["budget_s"]
            )
            out["latency"].append(_latency(samples, frames))
        if job.get("data_dir"):
            out.update(score_split(runtime, job))
    finally:
        runtime.close()
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return out


def score_split(runtime: Any, job: dict[str, Any]) -> dict[str, Any]:
    """WER of the split through :class:`~edge_slr.recognition.recognizer.Recognizer` (the
    deployed path)."""
    from edge_slr.data.dataset import LandmarkDataset
    from edge_slr.metrics import score
    from edge_slr.recognition.options import RecognizerOptions
    from edge_slr.recognition.recognizer import Recognizer
    from edge_slr.training.evaluate import scoring_corpus

    data_dir, split = job["data_dir"], job.get("split", "test")
    dataset = LandmarkDataset(data_dir, split)
    count = (
        len(dataset) if not job.get("max_sentences") else min(len(dataset), job["max_sentences"])
    )
    options = RecognizerOptions(
        model_dir=Path(job["model"]).parent, beam_width=job.get("beam_width", 1), correct=False
    )
    recognizer = Recognizer(options, runtime)  # borrows the runtime: not closed here
    hypotheses, references, spent, frames = {}, {}, 0.0, 0
    for i in range(count):
        item = dataset[i]
        result = recognizer.recognize_landmarks(item.landmarks)
        hypotheses[item.id] = tuple(g for g in result.recognized if g not in _SPECIALS)
        references[item.id] = item.glosses
        spent += result.timings.recognition_ms
        frames += item.landmarks.num_frames
    corpus = scoring_corpus(data_dir)
    wer = score(hypotheses, references, corpus=corpus)
    return {
        "wer": wer.wer,
        "wer_detail": {
            "substitutions": wer.substitutions,
            "deletions": wer.deletions,
            "insertions": wer.insertions,
            "reference_words": wer.reference_words,
            "sentences": count,
            "split_sentences": len(dataset),
            "corpus": corpus,
            "decoder": "greedy" if options.beam_width == 1 else f"beam {options.beam_width}",
            "frames": frames,
        },  # fmt: skip
        "sentence_ms": round(spent / max(count, 1), 4),
    }


def measure_pipeline(job: dict[str, Any]) -> dict[str, Any]:
    """A video through Recognizer: extraction, recognition, correction; cold then warm."""
    from edge_slr.errors import MissingDependencyError
    from edge_slr.landmarks.extract import HolisticOptions
    from edge_slr.recognition.recognizer import Recognizer

    model_dir, video = Path(job["model_dir"]), Path(job["video"])
    notes = []
    engine = job.get("engine") or "mediapipe"
    extractor = HolisticOptions(engine=engine, threads=job.get("threads") or 1)
    kwargs = {"runtime": job.get("runtime"), "threads": job.get("threads"), "extractor": extractor}
    try:
        recognizer = Recognizer.create_from_model_dir(model_dir, correct=True, **kwargs)
    except MissingDependencyError as err:  # a torch corrector on a device install
        notes.append(f"correction skipped: {err}")
        recognizer = Recognizer.create_from_model_dir(model_dir, correct=False, **kwargs)
    runs = []
    with recognizer:
        for _ in range(max(2, int(job.get("runs", 2)))):
            result = recognizer.recognize_video(video)
            fps = result.landmarks.fps if result.landmarks is not None else 25.0
            duration_ms = result.num_frames * 1000.0 / fps
            t = result.timings
            runs.append({
                "frames": result.num_frames, "video_fps": fps, "timings": t.to_dict(),
                "extraction_fps": result.num_frames * 1000.0 / max(t.extraction_ms, 1e-9),
                "real_time_factor": t.total_ms / duration_ms,
                "sentence": result.sentence, "recognized": list(result.recognized),
                "corrected": None if result.corrected is None else list(result.corrected),
            })  # fmt: skip
        out = {
            "model_dir": str(model_dir), "video": str(video),
            "model": recognizer.description.graph.file.name, "runtime": recognizer.runtime.name,
            "engine": engine,
            "corrector": recognizer.has_corrector, "cold": runs[0], "warm": runs[1:],
            "notes": notes,
        }  # fmt: skip
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return out


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Measure ``job`` here; errors of ours become ``{"ok": false, "error": ...}``."""
    try:
        measure = measure_pipeline if job.get("mode") == "pipeline" else measure_model
        return {"ok": True, **measure(job)}
    except (EdgeSLRError, OSError) as err:
        return {"ok": False, "error": error_text(err)}


def error_text(err: BaseException, limit: int = 400) -> str:
    """``Type: message`` on one line (engines raise multi-line messages), at most ``limit``."""
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main() -> int:
    job = json.loads(sys.stdin.read())
    try:
        result = run_job(job)
    except Exception as err:  # noqa: BLE001 - this process measures one row: report, do not crash
        result = {"ok": False, "error": error_text(err)}
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
