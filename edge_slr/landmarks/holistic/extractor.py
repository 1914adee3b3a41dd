"""The extractor interface over a :class:`~.pipeline.HolisticPipeline`: one video at a time
(:class:`HolisticEngineExtractor`) or several in flight (:func:`extract_many`)."""

from __future__ import annotations

import json
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_slr.errors import InputError
from edge_slr.landmarks.extract import HolisticExtractor, HolisticOptions, check_rgb
from edge_slr.landmarks.holistic.pipeline import HolisticPipeline, PipelineOptions
from edge_slr.landmarks.mediapipe_backends import Backend

if TYPE_CHECKING:
    from edge_slr.landmarks.holistic.models import HolisticModelSet


class _PipelineBackend(Backend):
    """The HolisticExtractor backend interface over a HolisticPipeline."""

    def __init__(self, pipeline: HolisticPipeline) -> None:
        self.pipeline = pipeline

    def process(self, rgb: np.ndarray, timestamp_ms: int | None) -> np.ndarray:
        return self.pipeline.process(rgb, timestamp_ms)

    def reset(self) -> None:
        self.pipeline.reset()

    def close(self) -> None:
        self.pipeline.close()


class HolisticEngineExtractor(HolisticExtractor):
    """:class:`~edge_slr.landmarks.extract.HolisticExtractor`'s interface (``extract_video``,
    ``extract_video_frame``, ``extract_image``, ``reset``, ``close``, context manager, the same
    errors and metadata) running MediaPipe's Holistic models on one of edge-slr's engines::

        options = HolisticOptions()
        with HolisticEngineExtractor.create_from_options(options, engine="openvino") as ex:
            seq = ex.extract_video("clip.mp4")  # metadata["extractor"]: edge-slr-holistic-openvino
    """

    def __init__(self, options: HolisticOptions, pipeline: HolisticPipeline) -> None:
        from edge_slr.landmarks.holistic.models import MEDIAPIPE_VERSION

        super().__init__(options, _PipelineBackend(pipeline), MEDIAPIPE_VERSION)
        self.pipeline = pipeline

    @classmethod
    def create_from_options(  # type: ignore[override]
        cls,
        options: HolisticOptions | None = None,
        *,
        engine: str | None = None,
        model_dir: Path | str | None = None,
        cache_dir: Path | str | None = None,
        threads: int | None = 1,
        models: HolisticModelSet | None = None,
        **model_options: Any,
    ) -> HolisticEngineExtractor:
        """Load the models on ``engine`` (or ``options.engine``; see ``holistic.models.ENGINES``)
        and build the pipeline. ``models`` passes an already loaded set instead."""
        options = HolisticOptions() if options is None else options
        if not isinstance(options, HolisticOptions):
            raise InputError(f"options must be HolisticOptions, got {type(options).__name__}")
        _check_supported(options)
        if models is None:
            from edge_slr.landmarks.holistic.models import load_holistic_models

            engine = engine or getattr(options, "engine", None) or "openvino"
            if engine == "mediapipe":
                raise InputError(
                    "engine 'mediapipe' is MediaPipe's own graph: use HolisticExtractor for it"
                )
            model_options.setdefault("hand_model", options.hand_model)
            models = load_holistic_models(
                engine,
                model_dir=None if model_dir is None else Path(model_dir),
                cache_dir=None if cache_dir is None else Path(cache_dir),
                threads=threads,
                **model_options,
            )
        pipeline_options = PipelineOptions(
            min_detection_confidence=float(options.min_detection_confidence),
            min_tracking_confidence=float(options.min_tracking_confidence),
            smooth_landmarks=options.smooth_landmarks,
            part_workers=options.part_workers,
        )
        try:
            pipeline = HolisticPipeline(models, pipeline_options)
        except BaseException:
            models.close()
            raise
        return cls(options, pipeline)

    def submit_video_frame(self, rgb: np.ndarray, timestamp_ms: int) -> Future[np.ndarray]:
        """:meth:`extract_video_frame`, pipelined (:meth:`HolisticPipeline.submit`): returns at
        once with a future of the frame's landmarks, after running its pose; the hands and face
        run on a worker while the caller submits the next frame. For live video on two cores:
        keep one frame in flight and take the results in order."""
        self._check_mode("video", "submit_video_frame")
        timestamp_ms = self._next_timestamp(timestamp_ms)
        self._live_backend()  # InputError once closed
        future = self.pipeline.submit(check_rgb(rgb), timestamp_ms)
        self._last_timestamp_ms = timestamp_ms
        self._tracking = True
        return future

    def _metadata(
        self, path: Path, size: tuple[int, int] | None, with_person: int, data: np.ndarray
    ) -> dict[str, Any]:
        metadata = super()._metadata(path, size, with_person, data)
        pipeline = self.pipeline
        metadata["extractor"] = f"edge-slr-holistic-{pipeline.engine}"
        metadata["engine"] = pipeline.engine
        metadata["face_roi"] = "face_detection" if pipeline.has_face_detector else "pose"
        info = getattr(pipeline.models, "info", {})
        metadata["models"] = json.loads(json.dumps(info, default=str))  # JSON-ready for files
        return metadata


def _check_supported(options: HolisticOptions) -> None:
    """The engines run the shipped complexity-1 models without the refined face model."""
    problems = []
    if options.model_complexity != 1:
        problems.append(f"model_complexity={options.model_complexity} (only 1 is shipped)")
    if options.refine_face_landmarks:
        problems.append("refine_face_landmarks=True (the attention face model is not supported)")
    if options.task_model_path is not None or options.pose_model_path is not None:
        problems.append("task_model_path/pose_model_path (these select MediaPipe's own graph)")
    if problems:
        raise InputError(
            "the edge-slr Holistic engines do not support "
            + "; ".join(problems)
            + "; use engine='mediapipe' (HolisticExtractor) for them"
        )


def extract_many(
    sources: list[str | Path],
    *,
    engine: str = "openvino",
    workers: int = 2,
    options: HolisticOptions | None = None,
    on_no_person: str = "raise",
    **create_options: Any,
) -> list[Any]:
    """Several videos in flight: ``workers`` threads, each with its own extractor (its own model
    set, ``threads=1`` unless given), for throughput on multi-core machines: inference and the
    OpenCV crops run outside the GIL, so the streams overlap where cores are free
    (benchmarks/extraction_engines.py measures it). Returns, per source in order, its
    LandmarkSequence or the exception it raised (one bad video does not stop the others); each
    sequence equals what a lone extractor gives."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive int, got {workers!r}")
    create_options.setdefault("threads", 1)
    local = threading.local()
    made: list[HolisticEngineExtractor] = []
    lock = threading.Lock()

    def work(source: str | Path) -> Any:
        extractor = getattr(local, "extractor", None)
        if extractor is None:
            extractor = HolisticEngineExtractor.create_from_options(
                options, engine=engine, **create_options
            )
            local.extractor = extractor
            with lock:
                made.append(extractor)
        try:
            return extractor.extract_video(source, on_no_person=on_no_person)
        except Exception as err:  # reported in the result list, per source
            return err

    try:
        with ThreadPoolExecutor(max_workers=min(workers, max(1, len(sources)))) as pool:
            return list(pool.map(work, sources))
    finally:
        for extractor in made:
            extractor.close()
