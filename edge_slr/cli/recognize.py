"""`edge-slr recognize`: glosses from a video, a frame folder, a landmark file or a camera.

    edge-slr recognize clip.mp4 --model models/ [--runtime openvino] [--threads 2] [--beam 5]
    edge-slr recognize clip.pose --model models/ --json
    edge-slr recognize clip.mp4 --model models/ --overlay out.mp4
    edge-slr recognize --camera 0 --model models/ [--max-frames 900] [--overlay out.mp4]
    edge-slr recognize --camera clip.mp4 --model models/      # a video file played as a camera

INPUT is a video file or a frame folder (landmarks are extracted with MediaPipe Holistic) or a
.pose/.npz/.parquet landmark file. --model is a model directory as filled by `edge-slr convert`
(or a student .pt checkpoint); a corrector converted into it (or a corrector/ folder, with torch)
corrects each sentence unless --no-correct. With --camera, partial hypotheses are printed as frames arrive and
each sentence when a pause ends it; Ctrl-C (or --max-frames, or the end of a video file) ends the
stream. --camera takes an OpenCV camera index or a video file, which is then streamed frame by
frame with its own timestamps (a live camera's are the wall clock). Frames are put on the model's
frame rate (recorded in its sidecar) either way.
--overlay writes the video with the landmarks and the recognised glosses drawn on it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

LANDMARK_SUFFIXES = (".pose", ".npz", ".parquet")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "recognize",
        help="recognise glosses in a video, frame folder, landmark file or camera stream",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", nargs="?", type=Path, help="video, frame folder or landmark file")
    p.add_argument(
        "--camera", metavar="N|VIDEO", help="stream OpenCV camera N (or a video file) instead"
    )
    p.add_argument("--model", type=Path, required=True, help="model directory (or .pt checkpoint)")
    p.add_argument("--runtime", help="openvino, onnxruntime, litert or torch (default: chosen)")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"), help="which converted model")
    p.add_argument("--threads", type=int, help="engine threads (default: the engine's choice)")
    p.add_argument("--beam", type=int, default=1, help="CTC beam width (1 = greedy)")
    p.add_argument("--no-correct", action="store_true", help="skip the gloss corrector")
    p.add_argument("--fps", type=float, help="frame rate of frame folders / landmark arrays")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--overlay", type=Path, metavar="OUT.mp4", help="write an annotated video")
    p.add_argument("--max-frames", type=int, help="camera: stop after this many frames")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edge_slr.errors import InputError
    from edge_slr.recognizer import Recognizer, RecognizerOptions

    if (args.input is None) == (args.camera is None):
        raise InputError("give exactly one of INPUT or --camera N")
    if args.overlay is not None and args.overlay.suffix.lower() not in (".mp4", ".avi"):
        raise InputError(f"--overlay writes .mp4 or .avi files, got {args.overlay.name}")
    options = RecognizerOptions(
        model_dir=args.model,
        runtime=args.runtime,
        threads=args.threads,
        precision=args.precision,
        beam_width=args.beam,
        correct=not args.no_correct,
        **({"fps": args.fps} if args.fps else {}),
    )
    with Recognizer.create_from_options(options) as recognizer:
        if args.camera is not None:
            return run_camera(recognizer, args)
        result, landmarks = recognize_input(recognizer, args.input, args.fps)
        if args.overlay is not None:
            write_overlay(args.overlay, args.input, landmarks, result)
        print_result(recognizer, result, args.json)
    return 0


def recognize_input(recognizer: Any, path: Path, fps: float | None) -> tuple[Any, Any]:
    """(result, the landmarks it was recognised from)."""
    from edge_slr.landmarks import load_landmarks

    if path.suffix.lower() in LANDMARK_SUFFIXES:
        sequence = load_landmarks(path)
        return recognizer.recognize_landmarks(sequence, fps=fps), sequence
    result = recognizer.recognize_video(path, fps=fps)
    return result, result.landmarks


def print_result(recognizer: Any, result: Any, as_json: bool) -> None:
    model = recognizer.description.graph.file.name
    if as_json:
        out = {"model": model, "runtime": recognizer.runtime.name, **result.to_dict()}
        print(json.dumps(out, indent=1, ensure_ascii=False))
        return
    print(result.sentence or "(no glosses recognised)")
    spans = ", ".join(
        f"{g.gloss} {g.score:.2f} [{g.start_ms / 1000:.2f}-{g.end_ms / 1000:.2f} s]"
        for g in result.glosses
    )
    print(f"recognised: {spans or '-'}")
    if result.corrected is not None:
        print(f"corrected:  {' '.join(result.corrected) or '-'}")
    t = result.timings
    print(
        f"timings: extraction {t.extraction_ms:.1f} ms, recognition {t.recognition_ms:.1f} ms "
        f"(model {t.inference_ms:.1f} ms), correction {t.correction_ms:.1f} ms "
        f"[{model} on {recognizer.runtime.name}, {result.num_frames} frames]"
    )


def open_camera(camera: str) -> tuple[Any, float | None]:
    """(an opened cv2.VideoCapture, the file's frame rate, None for a live camera)."""
    from edge_slr._optional import require
    from edge_slr.errors import InputError

    cv2 = require("cv2", "reading a camera")
    if camera.isdigit():
        capture = cv2.VideoCapture(int(camera))
        if not capture.isOpened():
            raise InputError(f"camera {camera} cannot be opened (is one connected?)")
        return capture, None
    if not Path(camera).is_file():
        raise InputError(f"--camera takes a camera index or a video file, got {camera!r}")
    capture = cv2.VideoCapture(camera)
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    if not capture.isOpened() or not fps > 0:
        raise InputError(f"--camera {camera}: not a video OpenCV can play (frame rate {fps:g})")
    return capture, fps


def run_camera(recognizer: Any, args: argparse.Namespace) -> int:
    from edge_slr._optional import require

    cv2 = require("cv2", "reading a camera")
    capture, file_fps = open_camera(str(args.camera))
    writer, shown, frames = None, "", 0
    started = time.monotonic()
    last_ms = -1
    try:
        while args.max_frames is None or frames < args.max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if file_fps is not None:  # a file: its own clock
                stamp = int(frames * 1000 / file_fps)
            else:
                stamp = max(int((time.monotonic() - started) * 1000), last_ms + 1)
            last_ms = stamp
            result = recognizer.process_frame(rgb, stamp)
            frames += 1
            line = result.sentence
            if result.final:
                print(f"[{stamp / 1000:7.2f} s] {line}", flush=True)
                shown = ""
            elif line != shown:
                print(f"  ... {line}", file=sys.stderr, flush=True)
                shown = line
            if args.overlay is not None:
                rate = file_fps or recognizer.fps
                writer = writer or _writer(args.overlay, rgb.shape[1], rgb.shape[0], rate)
                points = result.landmarks.data[0]
                writer.write(cv2.cvtColor(draw(rgb, points, line), cv2.COLOR_RGB2BGR))
    except KeyboardInterrupt:
        pass
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    final = recognizer.finish()
    print_result(recognizer, final, args.json)
    return 0


# -- overlay --------------------------------------------------------------------------------------


def write_overlay(out: Path, source: Path, landmarks: Any, result: Any) -> Path:
    """The input video (or a black canvas for landmark files) with landmarks and glosses drawn."""
    from edge_slr._optional import require

    cv2 = require("cv2", "writing overlay videos")
    import numpy as np

    fps = float(landmarks.fps)
    frames: Any
    if source.suffix.lower() in LANDMARK_SUFFIXES:
        width = int(landmarks.metadata.get("image_width") or 512)
        height = int(landmarks.metadata.get("image_height") or 512)
        frames = (np.zeros((height, width, 3), np.uint8) for _ in range(landmarks.num_frames))
    else:
        from edge_slr.landmarks.video import open_frames

        frames = open_frames(source, fps).frames()
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    try:
        for index, rgb in enumerate(frames):
            if index >= landmarks.num_frames:
                break
            writer = writer or _writer(out, rgb.shape[1], rgb.shape[0], fps)
            text = " ".join(g.gloss for g in result.glosses if g.start_frame <= index)
            canvas = draw(rgb, landmarks.data[index], text, result.sentence)
            writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    finally:
        if writer is not None:
            writer.release()
    return out


def _writer(path: Path, width: int, height: int, fps: float) -> Any:
    from edge_slr._optional import require
    from edge_slr.errors import InputError

    cv2 = require("cv2", "writing overlay videos")
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix.lower() == ".mp4" else "MJPG"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (width, height))
    if not writer.isOpened():
        raise InputError(f"cannot write the overlay video {path}")
    return writer


# part -> (colour RGB, every n-th point drawn)
_STYLE = {"pose": ((80, 220, 80), 1), "face": ((200, 200, 200), 6),
          "left_hand": ((255, 120, 40), 1), "right_hand": ((40, 160, 255), 1)}  # fmt: skip


def draw(rgb: Any, points: Any, text: str, sentence: str = "") -> Any:
    """A copy of ``rgb`` with ``points`` (543, 4) and two lines of text drawn on it."""
    from edge_slr._optional import require
    from edge_slr.landmarks.layout import PART_SLICES

    cv2 = require("cv2", "drawing overlays")
    canvas = rgb.copy()
    height, width = canvas.shape[:2]
    if points is not None:
        for part, (colour, step) in _STYLE.items():
            for x, y, _, conf in points[PART_SLICES[part]][::step]:
                if conf > 0:
                    cv2.circle(canvas, (int(x * width), int(y * height)), 2, colour, -1)
    scale = max(0.4, width / 900)
    for row, line in ((height - 12, text), (int(28 * scale) + 4, sentence)):
        if line:
            cv2.putText(canvas, line, (8, row), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 4)
            cv2.putText(canvas, line, (8, row), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 0), 1)
    return canvas
