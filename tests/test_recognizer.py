"""Recognizer: offline, windowed and streaming recognition, corrections, videos and the CLI.

Uses the tiny student trained and converted by test_runtimes.py (shared through the session's
temporary folder), so recognition is real: about 20 % dev WER on SignSynth sentences.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_slr.errors import FormatError, InputError
from edge_slr.recognition.options import RecognizerOptions
from edge_slr.recognition.recognizer import Recognizer

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

# The trained models come from test_runtimes.py (tests/ is not a package: load it by path).
_spec = importlib.util.spec_from_file_location(
    "_runtime_models", Path(__file__).with_name("test_runtimes.py")
)
runtime_models = sys.modules.setdefault("_runtime_models", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(runtime_models)
GLOSSES = runtime_models.GLOSSES


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory):
    return runtime_models.trained_models(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def dev(models) -> list:
    from edge_slr.data.dataset import LandmarkDataset

    dataset = LandmarkDataset(models.data, "dev")
    return [dataset[i] for i in range(len(dataset))]


@pytest.fixture(scope="module")
def onnx_dir(models, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory holding only the ONNX recogniser."""
    out = tmp_path_factory.mktemp("onnx-model")
    for name in ("student.onnx", "student.onnx.json"):
        shutil.copy(models.model_dir / name, out / name)
    return out


def wer(hypotheses: list, items: list) -> float:
    from edge_slr.metrics import score

    refs = {str(i): item.glosses for i, item in enumerate(items)}
    return score({str(i): h for i, h in enumerate(hypotheses)}, refs).wer


def check_spans(result, frames: int) -> None:
    previous_end = 0
    for g in result.glosses:
        assert g.gloss in GLOSSES and 0.0 < g.score <= 1.0
        assert previous_end <= g.start_frame < g.end_frame <= frames, g
        assert g.start_ms < g.end_ms
        previous_end = g.start_frame


# -- options ---------------------------------------------------------------------------------------


def test_options_are_validated() -> None:
    cases = {
        "beam_width must be a positive integer, got 0": dict(beam_width=0),
        "precision must be one of": dict(precision="int4"),
        "unknown runtime 'tensorrt'": dict(runtime="tensorrt"),
        "window_hop must be a positive integer": dict(window_hop=-2),
        r"fps must be a frame rate in \[1, 1000\] frames/s, got 0": dict(fps=0),
        "extractor must be HolisticOptions": dict(extractor={"model_complexity": 1}),
    }
    for message, options in cases.items():
        with pytest.raises(InputError, match=message):
            RecognizerOptions(model_dir="models", **options)
    with pytest.raises(InputError, match="must be RecognizerOptions"):
        Recognizer.create_from_options({"model_dir": "models"})  # type: ignore[arg-type]


def test_window_geometry_is_checked_against_the_model(onnx_dir: Path) -> None:
    with pytest.raises(InputError, match="shorter than the model's receptive field \\(28"):
        Recognizer.create_from_model_dir(onnx_dir, window_frames=20, window_hop=4)
    with pytest.raises(InputError, match="multiples of the model's stride \\(4\\)"):
        Recognizer.create_from_model_dir(onnx_dir, window_frames=130)
    with pytest.raises(InputError, match="use hop <= 84 or a longer window"):
        Recognizer.create_from_model_dir(onnx_dir, window_frames=128, window_hop=96)


# -- offline recognition -----------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino", "litert"])
def test_every_runtime_recognizes_like_the_torch_reference(models, dev, runtime: str) -> None:
    if runtime == "litert" and not (models.model_dir / "student.tflite").exists():
        pytest.skip("no TFLite model (TensorFlow missing)")
    with Recognizer.create_from_model_dir(models.checkpoint) as reference:
        expected = [reference.recognize_landmarks(item.landmarks).recognized for item in dev]
    with Recognizer.create_from_model_dir(models.model_dir, runtime=runtime, threads=1) as rec:
        assert rec.runtime.name == runtime and not rec.has_corrector
        results = [rec.recognize_landmarks(item.landmarks) for item in dev]
    assert [r.recognized for r in results] == expected
    assert wer([r.recognized for r in results], dev) < 0.35  # the model learned the task
    for item, result in zip(dev, results, strict=True):
        check_spans(result, item.landmarks.num_frames)
        assert (
            result.final
            and result.corrected is None
            and result.sentence == " ".join(result.recognized)
        )
        t = result.timings
        assert t.inference_ms > 0 and t.features_ms > 0 and t.extraction_ms == 0.0
        assert t.total_ms == pytest.approx(t.recognition_ms + t.correction_ms)


def test_arrays_sequences_and_features_agree(onnx_dir: Path, dev) -> None:
    sequence = dev[0].landmarks  # 25 fps, the model's rate
    doubled = np.repeat(np.asarray(sequence.data), 2, axis=0)  # the same motion at 50 fps
    with Recognizer.create_from_model_dir(onnx_dir) as rec:
        assert rec.fps == 25.0  # recorded in the sidecar at conversion
        from_sequence = rec.recognize_landmarks(sequence)
        from_array = rec.recognize_landmarks(doubled, fps=50.0)  # resampled to 25 fps
        from_features = rec.recognize_features(rec._preset.features(sequence))
    assert from_sequence.recognized == from_array.recognized == from_features.recognized
    assert from_sequence.glosses, "expected at least one gloss"
    assert from_array.num_frames == len(doubled)
    for first, fast in zip(from_sequence.glosses, from_array.glosses, strict=True):
        # spans count the input's frames: frame f of the sequence is frame 2f of the doubled one
        assert (fast.start_frame, fast.end_frame) == (
            2 * first.start_frame,
            2 * first.end_frame - 1,
        )
        assert (fast.start_ms, fast.end_ms) == pytest.approx((first.start_ms, first.end_ms))
    as_json = json.loads(json.dumps(from_sequence.to_dict()))
    assert as_json["recognized"] == list(from_sequence.recognized)
    assert set(as_json["timings"]) >= {"extraction_ms", "recognition_ms", "correction_ms"}


def test_bad_landmarks_get_clear_errors(onnx_dir: Path, dev) -> None:
    good = np.asarray(dev[0].landmarks.data)
    nan = good.copy()
    nan[3, 520, 0] = np.nan
    nan[3, 520, 3] = 1.0
    cases = {
        "LandmarkSequence or a \\(T, 543, 4\\) numpy array, got list": good.tolist(),
        "543": good[:, :500],
        "numeric array, got dtype bool": good > 0,
        "frame 3": nan,
        "10 frames are too few to recognise: this model needs at least 28": good[:10],
        "no point is present|no landmark": np.zeros_like(good),
    }
    with Recognizer.create_from_model_dir(onnx_dir) as rec:
        for message, value in cases.items():
            with pytest.raises(InputError, match=message):
                rec.recognize_landmarks(value)
        with pytest.raises(InputError, match="features must be a \\(T, 276\\) array"):
            rec.recognize_features(good)
    with pytest.raises(InputError, match="Recognizer is closed"):
        rec.recognize_landmarks(good)


def test_beam_search_decoding(onnx_dir: Path, dev) -> None:
    with Recognizer.create_from_model_dir(onnx_dir, beam_width=8) as rec:
        beam = [rec.recognize_landmarks(item.landmarks) for item in dev]
    with Recognizer.create_from_model_dir(onnx_dir) as rec:
        greedy = [rec.recognize_landmarks(item.landmarks).recognized for item in dev]
    assert wer([r.recognized for r in beam], dev) <= wer(greedy, dev) + 0.05
    for item, result in zip(dev, beam, strict=True):
        check_spans(result, item.landmarks.num_frames)


# -- windows and streaming --------------------------------------------------------------------------


def stream(rec: Recognizer, data: np.ndarray, period_ms: float = 40.0) -> tuple[list, object]:
    """Feed frames one by one: (results of every call, final result)."""
    results = [rec.process_landmarks(frame, i * period_ms) for i, frame in enumerate(data)]
    return results, rec.finish()


def test_long_input_goes_through_windows_like_a_stream(onnx_dir: Path, dev) -> None:
    data = np.concatenate([item.landmarks.data for item in dev[:8]])  # about 500 frames
    with Recognizer.create_from_model_dir(onnx_dir, max_single_pass_frames=10**6) as rec:
        single = rec.recognize_landmarks(data)
    with Recognizer.create_from_model_dir(onnx_dir, max_single_pass_frames=100) as rec:
        windowed = rec.recognize_landmarks(data)
    with Recognizer.create_from_model_dir(onnx_dir, pause_ms=1e9) as rec:  # no pause ends it
        calls, streamed = stream(rec, data)
    # windows normalised by the whole recording: as one pass; the stream by its medians so far
    assert wer([windowed.recognized], [_Single(single.recognized)]) <= 0.15  # measured 0.0
    assert wer([streamed.recognized], [_Single(single.recognized)]) <= 0.15  # measured 0.067
    assert not any(r.final for r in calls)
    check_spans(windowed, len(data))
    assert wer([windowed.recognized], [_Joined(dev[:8])]) < 0.6


class _Joined:
    def __init__(self, items: list) -> None:
        self.glosses = tuple(g for item in items for g in item.glosses)


class _Single:
    def __init__(self, glosses: tuple) -> None:
        self.glosses = glosses


def test_a_stream_within_one_window_equals_offline(onnx_dir: Path, dev) -> None:
    item = dev[1]
    with Recognizer.create_from_model_dir(onnx_dir, window_frames=256) as rec:
        offline = rec.recognize_landmarks(item.landmarks)
        calls, final = stream(rec, item.landmarks.data)
    assert final.final and final.recognized == offline.recognized
    assert [g.start_frame for g in final.glosses] == [g.start_frame for g in offline.glosses]
    assert all(not r.final and r.glosses == () for r in calls)  # no window completed yet


def test_stream_gives_partials_then_sentences_at_pauses(onnx_dir: Path, dev) -> None:
    first, second = dev[2].landmarks.data, dev[3].landmarks.data
    nobody = np.zeros((150, 543, 4), np.float32)  # 6 s with no one in view
    data = np.concatenate([first, nobody, second])
    with Recognizer.create_from_model_dir(onnx_dir, window_frames=96, window_hop=16) as rec:
        calls, last = stream(rec, data)
        history = rec.sentences
    finals = [(i, r) for i, r in enumerate(calls) if r.final]
    assert len(finals) == 1, [r.recognized for _, r in finals]
    index, sentence = finals[0]
    assert len(first) < index < len(first) + len(nobody)  # ended during the pause
    assert sentence.recognized and sentence.stable == len(sentence.glosses)
    assert all(g.end_frame <= len(first) + 24 for g in sentence.glosses)
    assert last.final and last.recognized
    assert all(g.start_frame >= len(first) + len(nobody) - 24 for g in last.glosses)
    # the stream's sentences, kept after finish()
    assert [r.recognized for r in history] == [sentence.recognized, last.recognized]
    partial = [r for r in calls[: len(first) + 40] if r.glosses and not r.final]
    assert partial, "expected partial hypotheses while the first sentence was signed"
    for r in partial:
        assert 0 <= r.stable <= len(r.glosses) and r.corrected is None


def test_stream_timestamps_and_reset(onnx_dir: Path, dev) -> None:
    frames = dev[0].landmarks.data
    with Recognizer.create_from_model_dir(onnx_dir) as rec:
        rec.process_landmarks(frames[0], 100)
        with pytest.raises(InputError, match="timestamps must strictly increase: got 100 ms"):
            rec.process_landmarks(frames[1], 100)
        with pytest.raises(InputError, match="finite number >= 0"):
            rec.process_landmarks(frames[1], float("nan"))
        with pytest.raises(InputError, match="one frame \\(543, 4\\)"):
            rec.process_landmarks(frames[:2], 140)
        rec.reset()
        rec.process_landmarks(frames[0], 0)  # a new stream may start at 0 again


def test_stream_memory_stays_bounded(onnx_dir: Path, dev) -> None:
    sentences = [item.landmarks.data for item in dev]
    data = np.concatenate(sentences * 3)  # about 4000 frames, nearly three minutes at 25 fps
    with Recognizer.create_from_model_dir(onnx_dir, pause_ms=1e9) as rec:
        plan = rec.window_plan
        for i, frame in enumerate(data):
            result = rec.process_landmarks(frame, i * 40)
            if i % 500 == 0:
                state = rec._stream
                assert len(state.frames) <= plan.window
                assert state.decoder._pending <= 256
                assert len(state.decoder.sentence) <= 60  # a sentence is ended at 60 glosses
        assert rec._stream.total == len(data) and len(rec.sentences) >= 1
        assert result.num_frames == len(data)


# -- correction -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corrected_dir(onnx_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ONNX recogniser plus a tiny corrector trained on sentences of the same glosses."""
    from edge_slr.training.corrector import load_config, train_corrector

    out = tmp_path_factory.mktemp("with-corrector")
    for path in onnx_dir.iterdir():
        shutil.copy(path, out / path.name)
    rng = np.random.default_rng(0)
    sentences = [
        tuple(str(g) for g in rng.choice(GLOSSES, size=int(rng.integers(2, 4)), replace=False))
        for _ in range(200)
    ]
    tiny = [
        "model.d_model=32", "model.n_heads=2", "model.ff_dim=64", "model.encoder_layers=1",
        "model.dropout=0.0", "train.max_steps=40", "train.batch_size=32", "train.threads=1",
        "train.learning_rate=3e-3", "train.warmup_steps=5", "train.eval_every=20",
        "train.log_every=20", "train.holdout=0.1", "train.gate_levels=[0.0, 0.2]",
    ]  # fmt: skip
    train_corrector(load_config(None, tiny), out / "corrector", sentences=sentences)
    return out


def test_corrector_runs_after_recognition(corrected_dir: Path, dev) -> None:
    with Recognizer.create_from_model_dir(corrected_dir) as rec:
        assert rec.has_corrector
        result = rec.recognize_landmarks(dev[0].landmarks)
        _, streamed = stream(rec, dev[0].landmarks.data)
    assert result.corrected is not None and result.correction is not None
    assert result.correction.input == result.recognized
    assert len(result.correction.stages) == 2 and result.timings.correction_ms > 0
    assert result.sentence == " ".join(result.corrected)
    assert streamed.corrected is not None
    with Recognizer.create_from_model_dir(corrected_dir, correct=False) as rec:
        assert not rec.has_corrector
        plain = rec.recognize_landmarks(dev[0].landmarks)
    assert plain.corrected is None and plain.timings.correction_ms == 0.0
    assert plain.recognized == result.recognized


# -- videos and frames ---------------------------------------------------------------------------------


def test_video_and_live_frames(shared_data: Path, onnx_dir: Path) -> None:
    pytest.importorskip("mediapipe")
    from edge_slr.landmarks.video import open_frames

    video = shared_data / "video" / "autsl_signer0_sample1000_color.mp4"
    if not video.exists():
        pytest.skip(f"{video} is absent")
    with Recognizer.create_from_model_dir(onnx_dir) as rec:
        result = rec.recognize_video(video)
        assert result.num_frames == 43 and result.landmarks.num_frames == 43
        assert result.timings.extraction_ms > 0 and result.timings.inference_ms > 0
        check_spans(result, 43)
        source = open_frames(video)
        live = [rec.process_frame(rgb, int(i * 1000 / source.fps)) for i, rgb in
                enumerate(source.frames())]  # fmt: skip
        assert all(r.timings.extraction_ms > 0 and r.landmarks.num_frames == 1 for r in live)
        # the live landmarks are the video-mode landmarks of the same frames
        np.testing.assert_allclose(live[20].landmarks.data[0], result.landmarks.data[20], atol=1e-5)
        with pytest.raises(InputError, match="timestamps must strictly increase"):
            rec.process_frame(np.zeros((64, 64, 3), np.uint8), 0)
        final = rec.finish()
        assert final.recognized == result.recognized  # 43 frames: one window, as offline
        with pytest.raises(InputError, match="dtype uint8"):
            rec.process_frame(np.zeros((64, 64, 3), np.float32), 10)


def test_videos_without_a_person_or_frames(tmp_path: Path, onnx_dir: Path) -> None:
    pytest.importorskip("mediapipe")
    import cv2

    black = tmp_path / "black.avi"
    writer = cv2.VideoWriter(str(black), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (96, 96))
    for _ in range(12):
        writer.write(np.zeros((96, 96, 3), np.uint8))
    writer.release()
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with Recognizer.create_from_model_dir(onnx_dir) as rec:
        with pytest.raises(InputError, match="no person detected in any of the 12 frames"):
            rec.recognize_video(black)
        with pytest.raises(FormatError, match="empty.mp4"):
            rec.recognize_video(empty)
        with pytest.raises(InputError, match="not found"):
            rec.recognize_video(tmp_path / "missing.mp4")


# -- command line -------------------------------------------------------------------------------------


def cli(*argv: str) -> int:
    from edge_slr.cli import recognize

    parser = argparse.ArgumentParser(prog="edge-slr")
    recognize.add_parser(parser.add_subparsers())
    args = parser.parse_args(["recognize", *argv])
    return args.run(args)


def test_cli_recognizes_a_landmark_file(onnx_dir: Path, dev, tmp_path: Path, capsys) -> None:
    from edge_slr.landmarks import save_landmarks

    path = tmp_path / "clip.npz"
    save_landmarks(path, dev[0].landmarks)
    assert cli(str(path), "--model", str(onnx_dir), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["runtime"] == "onnxruntime" and out["model"] == "student.onnx"
    with Recognizer.create_from_model_dir(onnx_dir) as rec:
        assert out["recognized"] == list(rec.recognize_landmarks(dev[0].landmarks).recognized)
    assert cli(str(path), "--model", str(onnx_dir), "--runtime", "openvino", "--beam", "4") == 0
    text = capsys.readouterr().out
    assert "recognised:" in text and "student.onnx on openvino" in text


def test_cli_overlay_and_errors(onnx_dir: Path, dev, tmp_path: Path) -> None:
    import cv2

    from edge_slr.landmarks import save_landmarks

    path = tmp_path / "clip.npz"
    save_landmarks(path, dev[0].landmarks)
    out = tmp_path / "overlay.mp4"
    assert cli(str(path), "--model", str(onnx_dir), "--overlay", str(out)) == 0
    capture = cv2.VideoCapture(str(out))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == dev[0].landmarks.num_frames
    with pytest.raises(InputError, match="exactly one of INPUT or --camera"):
        cli("--model", str(onnx_dir))
    with pytest.raises(InputError, match="camera 97 could not be opened"):
        cli("--camera", "97", "--model", str(onnx_dir))
    with pytest.raises(InputError, match="--overlay writes .mp4 or .avi"):
        cli(str(path), "--model", str(onnx_dir), "--overlay", str(tmp_path / "x.gif"))
