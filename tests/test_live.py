"""Live mode (edge_slr.recognition.live): the same glosses as offline, counted drops, bounded queues, clean
shutdown on close, KeyboardInterrupt and an exception in every stage.

Recognition is real (the session's tiny student, converted to ONNX). Where the queueing is under
test, the extractor is a stand-in that returns real landmark frames, made slow or held back on
purpose, so what is asserted never depends on the machine's speed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge_slr.errors import InputError
from edge_slr.landmarks.extract import HolisticOptions
from edge_slr.recognition.live import (
    THREAD_PREFIX,
    LiveOptions,
    LiveRecognizer,
    LiveStageError,
    play,
)
from edge_slr.recognition.options import RecognizerOptions
from edge_slr.recognition.recognizer import Recognizer

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def onnx_dir(tiny_student, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory holding only the tiny student converted to ONNX."""
    from edge_slr.converters import convert

    out = tmp_path_factory.mktemp("live-onnx")
    convert(tiny_student.checkpoint, "onnx", out)
    return out


@pytest.fixture(scope="module")
def frames(tiny_student) -> np.ndarray:
    """Real landmark frames (543, 4) of a few SignSynth dev sentences."""
    from edge_slr.data.dataset import LandmarkDataset

    dataset = LandmarkDataset(tiny_student.data, "dev")
    return np.concatenate([dataset[i].landmarks.data for i in range(3)])


class StandInExtractor:
    """Returns the next stored landmark frame; ``delay`` seconds a frame, ``gate`` holds every
    frame until set, ``fail_at`` raises at that frame, ``bad_at`` returns NaN landmarks."""

    def __init__(self, frames, delay=0.0, gate=None, fail_at=None, bad_at=None) -> None:
        self.frames, self.delay, self.gate = frames, delay, gate
        self.fail_at, self.bad_at = fail_at, bad_at
        self.calls = self.resets = 0
        self.closed = False

    def extract_video_frame(self, rgb: np.ndarray, timestamp_ms: int) -> np.ndarray:
        if self.gate is not None:
            self.gate.wait()
        time.sleep(self.delay)
        index, self.calls = self.calls, self.calls + 1
        if index == self.fail_at:
            raise RuntimeError(f"extractor broke at frame {index}")
        points = self.frames[index % len(self.frames)].copy()
        if index == self.bad_at:
            points[:, :2] = np.nan  # present points with NaN coordinates: not landmarks
        return points

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        self.closed = True


class PipelinedStandIn(StandInExtractor):
    """The same frames through ``submit_video_frame``, as edge-slr's engines pipeline them: each
    frame finishes on a worker thread of the extractor's own (named like the live workers, so a
    test sees it if it outlives close), in order; ``reset`` and ``close`` wait for it."""

    def __init__(self, frames, **kwargs) -> None:
        from concurrent.futures import ThreadPoolExecutor

        super().__init__(frames, **kwargs)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix=f"{THREAD_PREFIX}-stand-in-stage")
        self.submitted: list[int] = []
        self.pending = None

    def submit_video_frame(self, rgb: np.ndarray, timestamp_ms: int):
        self.submitted.append(timestamp_ms)
        self.pending = self.pool.submit(self.extract_video_frame, rgb, timestamp_ms)
        return self.pending

    def reset(self) -> None:
        if self.pending is not None:
            self.pending.exception()  # waits; its error stays with its future
        super().reset()

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        super().close()


EXTRACTORS = [StandInExtractor, PipelinedStandIn]


def live_with(onnx_dir: Path, extractor, **options) -> LiveRecognizer:
    recognizer = Recognizer.create_from_model_dir(onnx_dir)
    return LiveRecognizer(
        LiveOptions(RecognizerOptions(onnx_dir), **options), recognizer, extractor
    )


def live_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


def image() -> np.ndarray:
    return np.zeros((24, 32, 3), np.uint8)


@pytest.fixture(autouse=True)
def no_threads_left():
    assert not live_threads()
    yield
    assert not live_threads(), "live worker threads outlived the test"


# -- options and input -----------------------------------------------------------------------------


def test_options_are_validated(tmp_path: Path) -> None:
    recognizer = RecognizerOptions(tmp_path)
    with pytest.raises(InputError, match="recognizer must be RecognizerOptions, got str"):
        LiveOptions("models/")
    with pytest.raises(InputError, match="drop_policy must be one of .*got 'newest'"):
        LiveOptions(recognizer, drop_policy="newest")
    with pytest.raises(InputError, match=r"frame_queue_size must be an integer in \[1, 256\]"):
        LiveOptions(recognizer, frame_queue_size=0)
    with pytest.raises(InputError, match="landmark_queue_size .* got 1000"):
        LiveOptions(recognizer, landmark_queue_size=1000)
    with pytest.raises(InputError, match="result_callback must be callable or None, got int"):
        LiveOptions(recognizer, result_callback=3)
    with pytest.raises(InputError, match="extractor must be HolisticOptions or None"):
        LiveOptions(recognizer, extractor={"engine": "x"})
    assert LiveOptions(recognizer).extractor_options().running_mode == "video"
    with pytest.raises(InputError, match="part_workers must be 1, 2 or 3 .* got 0"):
        LiveOptions(recognizer, part_workers=0)


def test_edge_slr_engines_get_part_workers_the_graph_does_not(tmp_path: Path) -> None:
    import os

    recognizer = RecognizerOptions(tmp_path)
    graph = LiveOptions(recognizer, extractor=HolisticOptions(engine="mediapipe"))
    assert graph.extractor_options().part_workers == 1  # the graph picks its own threads
    engine = HolisticOptions(engine="openvino")
    default = LiveOptions(recognizer, extractor=engine).extractor_options()
    assert default.part_workers == (2 if (os.cpu_count() or 1) >= 2 else 1)
    assert default.engine == "openvino" and default.running_mode == "video"
    chosen = LiveOptions(recognizer, extractor=engine, part_workers=3).extractor_options()
    assert chosen.part_workers == 3


def test_bad_frames_and_timestamps_get_clear_errors(onnx_dir: Path, frames) -> None:
    with live_with(onnx_dir, StandInExtractor(frames)) as live:
        with pytest.raises(InputError, match="dtype uint8, got float32"):
            live.recognize_async(np.zeros((8, 8, 3), np.float32), 0)
        with pytest.raises(InputError, match=r"shape \(H, W, 3\), got shape \(8, 8\)"):
            live.recognize_async(np.zeros((8, 8), np.uint8), 0)
        with pytest.raises(InputError, match="timestamp_ms must be an int .* got 1.5"):
            live.recognize_async(image(), 1.5)
        live.recognize_async(image(), 40)
        with pytest.raises(InputError, match="strictly increase: got 40 ms after 40 ms"):
            live.recognize_async(image(), 40)
        live.finish()
        live.recognize_async(image(), 0)  # a new stream may start again at 0
    with pytest.raises(InputError, match="closed"):
        live.recognize_async(image(), 80)


# -- queueing --------------------------------------------------------------------------------------


def test_skip_oldest_counts_every_dropped_frame(onnx_dir: Path, frames) -> None:
    gate = threading.Event()
    extractor = StandInExtractor(frames, gate=gate)
    seen: list[int] = []
    live = live_with(onnx_dir, extractor, frame_queue_size=2, landmark_queue_size=3,
                     result_callback=lambda result, info: seen.append(info.frame_index))  # fmt: skip
    with live:
        for i in range(40):  # extraction is held back: the queue overflows
            live.recognize_async(image(), i * 33)
        gate.set()
        last = live.finish()
        stats = live.stats()
    assert last.final
    assert stats.frames_in == 40 and stats.dropped >= 37  # at most 1 + 2 queued got through
    assert stats.frames_recognized + stats.dropped == stats.frames_in == 40
    assert stats.frames_extracted == stats.frames_recognized == len(seen) - 1  # + the final
    assert seen[-1] == -1 and seen[:-1] == sorted(seen[:-1]) and seen[-2] == 39  # newest kept
    assert stats.frame_queue_max <= 2 and stats.landmark_queue_max <= 3
    assert stats.discarded_on_close == 0 and extractor.closed


@pytest.mark.parametrize("kind", EXTRACTORS)
def test_block_drops_nothing_and_queues_stay_bounded(onnx_dir: Path, frames, kind) -> None:
    extractor = kind(frames, delay=0.005)
    seen: list[tuple[int, int]] = []
    live = live_with(onnx_dir, extractor, drop_policy="block", frame_queue_size=2,
                     landmark_queue_size=2,
                     result_callback=lambda r, info: seen.append((info.frame_index,
                                                                  info.timestamp_ms)))  # fmt: skip
    with live:
        for i in range(60):
            live.recognize_async(image(), i * 40)
        live.finish()
        stats = live.stats()
    assert seen == [(i, i * 40) for i in range(60)] + [(-1, 59 * 40)]  # every frame, in order
    assert stats.dropped == 0 and stats.frames_recognized == stats.frames_in == 60
    assert stats.extraction_ms_mean is not None and stats.extraction_ms_mean >= 5.0
    assert 1 <= stats.frame_queue_max <= 2 and 1 <= stats.landmark_queue_max <= 2
    assert stats.frame_latency_p50_ms is not None and stats.sustained_fps is not None
    assert extractor.resets == 1  # finish() restarts tracking for the next stream


def test_a_pipeline_on_an_open_recognizer_leaves_it_open(onnx_dir: Path, frames) -> None:
    with Recognizer.create_from_model_dir(onnx_dir) as recognizer:
        extractor = StandInExtractor(frames)
        with LiveRecognizer.create_from_recognizer(
            recognizer, extractor, drop_policy="block"
        ) as live:
            for i in range(40):
                live.recognize_async(image(), i * 40)
            streamed = live.finish()
            assert not live.on_worker()
        assert extractor.closed
        offline = recognizer.recognize_landmarks(frames[:40], fps=25)  # still open
    assert streamed.recognized == offline.recognized  # 40 frames: one window, as offline


def test_a_pipelined_extractor_gives_what_the_plain_one_gives(onnx_dir: Path, frames) -> None:
    """One frame in flight: handed on once done even when no next frame comes (a slow camera),
    and the results are those of the plain extractor, frame for frame."""
    runs = {}
    for kind in EXTRACTORS:
        extractor = kind(frames)
        results: list = []
        live = live_with(onnx_dir, extractor, drop_policy="block",
                         result_callback=lambda r, info, out=results: out.append(r))  # fmt: skip
        with live:
            for i in range(45):
                live.recognize_async(image(), i * 40)
                if i == 20:  # a pause in the input: the frame in flight must still come out
                    deadline = time.monotonic() + 30
                    while live.stats().frames_recognized < 21 and time.monotonic() < deadline:
                        time.sleep(0.01)
                    assert live.stats().frames_recognized == 21
            live.finish()
        runs[kind] = [(r.sentence, r.final) for r in results]
        if kind is PipelinedStandIn:
            assert extractor.submitted == [i * 40 for i in range(45)]
    assert runs[PipelinedStandIn] == runs[StandInExtractor]


def test_stats_can_start_after_a_warm_up(onnx_dir: Path, frames) -> None:
    with live_with(onnx_dir, StandInExtractor(frames), drop_policy="block") as live:
        for i in range(10):
            live.recognize_async(image(), i * 40)
        live.reset_stats()
        for i in range(10, 30):
            live.recognize_async(image(), i * 40)
        live.finish()
        stats = live.stats()
    assert stats.frames_in == stats.frames_extracted == stats.frames_recognized == 20
    assert stats.dropped == 0 and stats.frame_latency_p50_ms is not None


# -- shutdown --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", EXTRACTORS)
def test_close_stops_the_workers_and_counts_what_was_left(onnx_dir: Path, frames, kind) -> None:
    live = live_with(onnx_dir, kind(frames, delay=0.05), drop_policy="block",
                     frame_queue_size=4)  # fmt: skip
    for i in range(6):
        live.recognize_async(image(), i * 40)
    assert len(live_threads()) == 2 + (kind is PipelinedStandIn)  # + the stand-in's stage
    live.close()
    stats = live.stats()
    assert not live_threads()
    assert stats.frames_recognized + stats.discarded_on_close + stats.dropped <= 6
    assert stats.discarded_on_close >= 1  # 0.05 s a frame: frames were still queued
    live.close()  # twice is fine


@pytest.mark.parametrize("kind", EXTRACTORS)
def test_keyboard_interrupt_in_the_caller_shuts_down(onnx_dir: Path, frames, kind) -> None:
    live = live_with(onnx_dir, kind(frames, delay=0.01))
    with pytest.raises(KeyboardInterrupt), live:
        for i in range(5):
            live.recognize_async(image(), i * 40)
        raise KeyboardInterrupt
    assert not live_threads()


# A real Ctrl+C goes to the whole process: it is sent to a child process, so that a signal
# arriving in the middle of the test session's other native threads cannot take pytest down.
_CTRL_C_CHILD = """
import os, signal, sys, threading
import numpy as np
sys.path.insert(0, sys.argv[3])
from test_live import StandInExtractor, image, live_threads, live_with

live = live_with(sys.argv[1], StandInExtractor(np.load(sys.argv[2]), delay=0.2),
                 drop_policy="block", frame_queue_size=1, landmark_queue_size=1)
timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
try:
    with live:
        timer.start()
        for i in range(200):  # 40 s of extraction: Ctrl+C comes while put() waits
            live.recognize_async(image(), i * 40)
except KeyboardInterrupt:
    timer.join()
    print("interrupted", live.stats().frames_in, len(live_threads()))
"""


def test_ctrl_c_while_blocked_on_a_full_queue_shuts_down(
    onnx_dir: Path, frames, tmp_path: Path
) -> None:
    import subprocess
    import sys

    np.save(tmp_path / "frames.npy", frames)
    argv = [sys.executable, "-c", _CTRL_C_CHILD, str(onnx_dir), str(tmp_path / "frames.npy"),
            str(Path(__file__).parent)]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    word, frames_in, threads_left = out.stdout.split()
    assert word == "interrupted" and int(frames_in) < 200 and int(threads_left) == 0


@pytest.mark.parametrize("kind", EXTRACTORS)
@pytest.mark.parametrize("stage", ["extraction", "recognition", "result_callback"])
def test_an_exception_in_a_stage_reaches_the_caller(
    onnx_dir: Path, frames, stage: str, kind
) -> None:
    def callback(result, info) -> None:
        if info.frame_index == 3:
            raise ValueError("the overlay broke")

    extractor = kind(
        frames, fail_at=3 if stage == "extraction" else None,
        bad_at=3 if stage == "recognition" else None,
    )  # fmt: skip
    live = live_with(onnx_dir, extractor, drop_policy="block",
                     result_callback=callback if stage == "result_callback" else None)  # fmt: skip
    with live:
        # the error comes back from whichever call follows it: a later recognize_async when the
        # worker is quick, else finish
        with pytest.raises(LiveStageError, match=f"live {stage} stage failed") as caught:
            for i in range(6):
                live.recognize_async(image(), i * 40)
            live.finish()
        assert caught.value.stage == stage
        cause = caught.value.__cause__
        expected = {"extraction": RuntimeError, "recognition": InputError,
                    "result_callback": ValueError}[stage]  # fmt: skip
        assert isinstance(cause, expected), repr(cause)
        with pytest.raises(InputError, match="closed"):  # reported once, then just closed
            live.recognize_async(image(), 1000)
    assert not live_threads() and extractor.closed


def test_a_stage_error_comes_back_from_the_next_call(onnx_dir: Path, frames) -> None:
    live = live_with(onnx_dir, StandInExtractor(frames, fail_at=0))
    live.recognize_async(image(), 0)
    for thread in live._threads:  # the workers stop on their own after the failure
        thread.join(timeout=30)
    with pytest.raises(LiveStageError, match="extraction stage failed: RuntimeError: extractor"):
        live.recognize_async(image(), 40)
    live.close()  # already reported: close does not raise it again
    assert not live_threads()


def test_close_reports_an_unreported_stage_error(onnx_dir: Path, frames) -> None:
    live = live_with(onnx_dir, StandInExtractor(frames, fail_at=0))
    live.recognize_async(image(), 0)
    for thread in live._threads:
        thread.join(timeout=30)
    with pytest.raises(LiveStageError, match="extraction"):
        live.close()
    assert not live_threads()


# -- real video ------------------------------------------------------------------------------------


def test_play_checks_its_source(onnx_dir: Path, frames, tmp_path: Path) -> None:
    with live_with(onnx_dir, StandInExtractor(frames)) as live:
        with pytest.raises(InputError, match="camera index .* or a video path, got float"):
            play(1.5, live)
        with pytest.raises(InputError, match="not found"):
            play(tmp_path / "missing.mp4", live)
        with pytest.raises(InputError, match="loop_seconds must be a positive number"):
            play(tmp_path / "missing.mp4", live, loop_seconds=0)


def test_live_webcam_clip_gives_the_offline_glosses(shared_data: Path, onnx_dir: Path) -> None:
    pytest.importorskip("mediapipe")
    video = shared_data / "video" / "webcam_signer.mp4"
    if not video.exists():
        pytest.skip(f"{video} is absent")
    with Recognizer.create_from_model_dir(onnx_dir) as rec:
        offline = rec.recognize_video(video)
        period = 1000.0 / rec.fps  # one frame on the model's clock
    results: list = []
    options = LiveOptions(RecognizerOptions(onnx_dir), drop_policy="block",
                          result_callback=lambda r, info: results.append((r, info)))  # fmt: skip
    with LiveRecognizer.create_from_options(options) as live:
        stats = play(video, live, realtime=False)
    last, info = results[-1]
    assert info.stream_end and last.final
    assert stats.dropped == 0 and stats.frames_recognized == stats.frames_in == 58
    assert last.recognized == offline.recognized
    # spans: live ones count frames on the model's clock, offline ones the video's; the times
    # agree within one model frame (a tick vs the video frame it holds)
    for ours, theirs in zip(last.glosses, offline.glosses, strict=True):
        assert abs(ours.start_ms - theirs.start_ms) <= period, (ours, theirs)
        assert abs(ours.end_ms - theirs.end_ms) <= period, (ours, theirs)
    # the live landmarks are the offline video-mode landmarks of the same frames
    frame_results = [(r, i) for r, i in results if not i.stream_end]
    assert [i.frame_index for _, i in frame_results] == list(range(58))
    for index in (0, 30, 57):
        np.testing.assert_allclose(
            frame_results[index][1].landmarks, offline.landmarks.data[index], atol=1e-5
        )
    assert all(r.timings.extraction_ms > 0 for r, _ in frame_results)
    assert stats.frame_queue_max <= 2 and stats.landmark_queue_max <= 8


def test_an_edge_slr_engine_runs_pipelined_and_gives_its_offline_landmarks(
    shared_data: Path, onnx_dir: Path
) -> None:
    """Two part workers and one frame in flight (submit_video_frame) change nothing: the live
    landmarks are the engine's own offline video-mode landmarks, frame for frame, in order."""
    from edge_slr._optional import is_available
    from edge_slr.landmarks.extract import HolisticExtractor
    from edge_slr.landmarks.holistic.models import wheel_model_dir

    if not is_available("ai_edge_litert") or wheel_model_dir() is None:
        pytest.skip("LiteRT or the mediapipe wheel's Holistic models are not installed")
    video = shared_data / "video" / "webcam_signer.mp4"
    if not video.exists():
        pytest.skip(f"{video} is absent")
    engine = HolisticOptions(engine="litert")
    with HolisticExtractor.create_from_options(engine) as extractor:
        offline = extractor.extract_video(video).data
    seen: list = []
    options = LiveOptions(RecognizerOptions(onnx_dir, extractor=engine), drop_policy="block",
                          part_workers=2,
                          result_callback=lambda r, info: seen.append(info))  # fmt: skip
    with LiveRecognizer.create_from_options(options) as live:
        assert live.extractor.pipeline.options.part_workers == 2
        stats = play(video, live, realtime=False)
    frames = [info for info in seen if not info.stream_end]
    assert [info.frame_index for info in frames] == list(range(len(offline)))
    assert stats.dropped == 0 and stats.frames_recognized == len(offline)
    for index, info in enumerate(frames):
        np.testing.assert_allclose(info.landmarks, offline[index], atol=1e-5, err_msg=str(index))
