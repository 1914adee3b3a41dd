"""``run_demo``: the whole chain, stage by stage, with timings and a result object.

    dataset    SignSynth clips of real (or built-in) sentences        cached  WORK/data/KEY
    student    1D-CNN + BiLSTM CTC recogniser, a few epochs           cached  WORK/student/KEY
    corrector  two-stage gloss corrector on the train sentences       cached  WORK/corrector/KEY
    convert    each target (default openvino-int8), verified          cached  WORK/models/KEY
    recognize  held-out test clips (WER before/after correction), one real video
    benchmark  edge_slr.benchmark over the model folder: size, WER, latency, frames/s

Progress goes to the ``edge_slr.demo`` logger, one line per stage with its time; the returned
:class:`DemoResult` holds every number the CLI prints.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_slr.demo import stages
from edge_slr.demo.options import DemoOptions
from edge_slr.errors import EdgeSLRError, InputError

logger = logging.getLogger("edge_slr.demo")

NUM_STAGES = 6


@dataclass
class DemoResult:
    """What a demo run did and measured (plain data; ``to_dict`` for JSON)."""

    work_dir: Path
    source: str
    data_dir: Path | None = None
    model_dir: Path | None = None
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> stamp (+ reused)
    failed_targets: dict[str, str] = field(default_factory=dict)
    held_out: Any = None  # recognize.HeldOutResult
    video: Any = None  # recognize.VideoResult
    video_note: str = ""
    benchmark: Any = None  # edge_slr.benchmark.BenchmarkReport
    benchmark_note: str = ""
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds in this run

    @property
    def ok(self) -> bool:
        return self.held_out is not None and not self.failed_targets

    def to_dict(self) -> dict[str, Any]:
        return {
            "work_dir": str(self.work_dir),
            "source": self.source,
            "data_dir": str(self.data_dir),
            "model_dir": str(self.model_dir),
            "stages": self.stages,
            "failed_targets": self.failed_targets,
            "held_out": None if self.held_out is None else self.held_out.to_dict(),
            "video": None if self.video is None else self.video.to_dict(),
            "video_note": self.video_note,
            "benchmark": None if self.benchmark is None else self.benchmark.to_dict(),
            "benchmark_note": self.benchmark_note,
            "seconds": round(self.seconds, 1),
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
        }


def run_demo(options: DemoOptions) -> DemoResult:
    """Run every stage (reusing finished ones) and return what was measured.

    Raises InputError for bad options; a conversion target that fails verification is recorded
    in ``failed_targets`` and the demo goes on with the targets that passed.
    """
    started = time.perf_counter()
    if options.fresh:
        stages.clear_work_dir(options.work_dir)
    plan = stages.data_plan(options)
    _, _, source = options.sentence_source()
    result = DemoResult(options.work_dir, source)
    logger.info("sentences: %s", source)

    data = stages.dataset_stage(options, plan)
    _timed(result, "dataset", 1, data, stages.make_dataset(plan, options.threads, options.progress))
    result.data_dir = data.folder

    student = stages.student_stage(options, data)
    _timed(result, "student", 2, student, stages.train_student(options, data.folder))

    corrector = stages.corrector_stage(options, data, plan)
    _timed(result, "corrector", 3, corrector, stages.train_corrector(options, plan))

    models = stages.models_stage(options, student, corrector)
    result.model_dir = models.folder
    _convert(result, options, models, student, corrector, data)
    _recognize(result, options)
    _benchmark(result, options)
    result.seconds = time.perf_counter() - started
    _save(result)
    return result


def _timed(
    result: DemoResult, name: str, number: int, stage: stages.Stage, work: Any
) -> dict[str, Any]:
    label = f"[{number}/{NUM_STAGES}] {name}"
    logger.info("%s ...", label)
    begun = time.perf_counter()
    stamp, reused = stages.run_stage(stage, work, label)
    result.timings[name] = time.perf_counter() - begun
    result.stages[name] = {**stamp, "reused": reused}
    return stamp


def _convert(
    result: DemoResult,
    options: DemoOptions,
    models: stages.Stage,
    student: stages.Stage,
    corrector: stages.Stage,
    data: stages.Stage,
) -> None:
    from edge_slr.converters import ConversionError

    label = f"[4/{NUM_STAGES}] convert"
    logger.info("%s: %s ...", label, ", ".join(options.targets))
    begun = time.perf_counter()
    models.folder.mkdir(parents=True, exist_ok=True)
    stages.install_corrector(corrector.folder, models.folder)
    checkpoint = student.folder / "best.pt"  # as training.train writes it
    for target in options.targets:
        stage = stages.target_stage(options, models, target)
        work = stages.convert_target(options, checkpoint, data.folder, target)
        try:
            stamp, reused = stages.run_stage(stage, work, f"{label} {target}")
        except (ConversionError, EdgeSLRError, ImportError) as err:
            result.failed_targets[target] = str(err)
            logger.error("%s %s failed: %s", label, target, err)
            continue
        result.stages[f"convert {target}"] = {**stamp, "reused": reused}
    result.timings["convert"] = time.perf_counter() - begun


def _primary(result: DemoResult, options: DemoOptions) -> tuple[str, str] | None:
    """(runtime, precision) of the first target that converted."""
    from edge_slr.converters import get_target

    for target in options.targets:
        if target not in result.failed_targets:
            spec = get_target(target)
            return spec.engine, spec.precision
    return None


def _recognize(result: DemoResult, options: DemoOptions) -> None:
    from edge_slr.demo.recognize import recognize_held_out, recognize_video

    label = f"[5/{NUM_STAGES}] recognize"
    primary = _primary(result, options)
    assert result.model_dir is not None and result.data_dir is not None
    if primary is None:
        logger.error("%s: skipped, no target converted", label)
        result.video_note = "video step skipped: no target converted"
        return
    runtime, precision = primary
    logger.info("%s: held-out test clips on %s %s ...", label, runtime, precision)
    begun = time.perf_counter()
    settings = dict(
        runtime=runtime, precision=precision, beam_width=options.beam_width, threads=options.threads
    )
    result.held_out = recognize_held_out(result.model_dir, result.data_dir, **settings)
    logger.info("%s: %d clips in %.1f s", label, result.held_out.sentences, result.held_out.seconds)
    video, note = options.video_path()
    result.video_note = note
    if video is not None:
        from edge_slr._optional import is_available

        logger.info("%s: %s (MediaPipe Holistic) ...", label, video)
        if not is_available("mediapipe"):
            result.video_note = (
                "video step skipped: MediaPipe is not installed (pip install 'edge-slr[mediapipe]')"
            )
        else:
            try:
                result.video = recognize_video(result.model_dir, video, **settings)
            except EdgeSLRError as err:  # e.g. nobody in the video: say so, keep going
                result.video_note = f"video step failed: {err}"
                logger.error("%s: %s", label, result.video_note)
    if result.video is None:
        logger.info("%s: %s", label, result.video_note)
    result.timings["recognize"] = time.perf_counter() - begun


def _benchmark(result: DemoResult, options: DemoOptions) -> None:
    label = f"[6/{NUM_STAGES}] benchmark"
    if result.model_dir is None or _primary(result, options) is None:
        result.benchmark_note = "benchmark skipped: no target converted"
        logger.error("%s: %s", label, result.benchmark_note)
        return
    try:
        from edge_slr.benchmark import benchmark_models
    except ImportError as err:
        result.benchmark_note = f"benchmark skipped: edge_slr.benchmark is unavailable ({err})"
        logger.error("%s: %s", label, result.benchmark_note)
        return
    logger.info("%s: %s ...", label, result.model_dir)
    begun = time.perf_counter()
    try:
        result.benchmark = benchmark_models(
            [result.model_dir],
            lengths=options.lengths,
            data_dir=result.data_dir,
            split="test",
            threads=options.threads,
            beam_width=options.beam_width,
            progress=lambda line: logger.info("%s %s", label, line),
        )
    except InputError as err:
        result.benchmark_note = f"benchmark failed: {err}"
        logger.error("%s: %s", label, result.benchmark_note)
    result.timings["benchmark"] = time.perf_counter() - begun


def _save(result: DemoResult) -> None:
    folder = result.work_dir / "results"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "demo.json").write_text(
        json.dumps(result.to_dict(), indent=1, default=str) + "\n", encoding="utf-8"
    )
    if result.benchmark is not None:
        (folder / "benchmark.md").write_text(result.benchmark.to_markdown() + "\n", "utf-8")
