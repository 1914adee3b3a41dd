"""`edge-slr recognize`: glosses from a video, a frame folder, a landmark file or a camera.

    edge-slr recognize clip.mp4 --model models/ [--runtime openvino] [--threads 2] [--beam 5]
    edge-slr recognize clip.pose --model models/ --json
    edge-slr recognize clip.mp4 --model models/ --overlay out.mp4
    edge-slr recognize --camera 0 --model models/ [--max-frames 900] [--overlay out.mp4]
    edge-slr recognize --camera clip.mp4 --model models/      # a video file played as a camera

INPUT is a video file or a frame folder (landmarks are extracted with MediaPipe Holistic) or a
.pose/.npz/.parquet landmark file. --model is a model directory as filled by `edge-slr convert` (or
a student .pt checkpoint); a corrector converted into it (or a corrector/ folder, with torch)
corrects each sentence unless --no-correct. With --camera, partial hypotheses are printed as frames
arrive and each sentence when a pause ends it; Ctrl-C (or --max-frames, or the end of a video file)
ends the stream. --camera takes an OpenCV camera index or a video file, which is then played at its
own frame rate in real time, as a camera would deliver it. The live pipeline
(edge_slr.recognition.live) extracts landmarks and recognises on two workers; when extraction falls
behind, --drop-policy skip-oldest drops frames and counts them, block waits. Live fps, dropped
frames and latency are shown on the terminal and in the overlay. Frames are put on the model's frame
rate (recorded in its sidecar). --overlay writes the video with the landmarks and the recognised
glosses drawn on it.
Input with nothing usable to recognise (nobody, no hand in any frame, landmarks no camera could
give) still prints its glosses, with a warning on stderr and in the JSON's "warnings".
Arguments (--beam at most 256, --fps in 1..1000, the --overlay path) are checked before the
model loads. The engines' own C++ log lines are hidden; `edge-slr -v recognize ...` shows them.
"""

from __future__ import annotations

import argparse
import contextlib
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
    p.add_argument(
        "--drop-policy",
        choices=("skip-oldest", "block"),
        default="skip-oldest",
        help="--camera: when extraction falls behind, drop the oldest waiting frame (counted and "
        "shown) or wait for it (default skip-oldest, as a live camera must)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edge_slr.recognition.options import RecognizerOptions
    from edge_slr.recognition.recognizer import Recognizer

    check_args(args)
    options = RecognizerOptions(
        model_dir=args.model,
        runtime=args.runtime,
        threads=args.threads,
        precision=args.precision,
        beam_width=args.beam,
        correct=not args.no_correct,
        fps=args.fps,
    )
    with Recognizer.create_from_options(options) as recognizer:
        if args.camera is not None:
            return run_camera(recognizer, args)
        result, landmarks = recognize_input(recognizer, args.input, args.fps)
        for warning in result.warnings:  # nothing usable in the input: say so, on stderr
            print(f"edge-slr recognize: warning: {warning}", file=sys.stderr)
        if args.overlay is not None:
            write_overlay(args.overlay, args.input, landmarks, result)
        print_result(recognizer, result, args.json)
    return 0


def check_args(args: argparse.Namespace) -> None:
    """Every argument checked before a model loads or a frame is extracted."""
    from edge_slr.errors import InputError
    from edge_slr.recognition.options import MAX_BEAM_WIDTH, check_fps

    if (args.input is None) == (args.camera is None):
        raise InputError("give exactly one of INPUT or --camera N")
    if args.input is not None and not args.input.exists():
        raise InputError(f"input not found: {args.input}")
    if not 1 <= args.beam <= MAX_BEAM_WIDTH:
        raise InputError(f"--beam must be in 1..{MAX_BEAM_WIDTH} (1 = greedy), got {args.beam}")
    if args.fps is not None:
        check_fps(args.fps, "--fps")
    if args.max_frames is not None:
        if args.camera is None:
            raise InputError(f"--max-frames {args.max_frames} applies to --camera only")
        if args.max_frames < 1:
            raise InputError(f"--max-frames must be a positive frame count, got {args.max_frames}")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads must be a positive integer, got {args.threads}")
    if args.overlay is not None:
        if args.overlay.suffix.lower() not in (".mp4", ".avi"):
            raise InputError(f"--overlay writes .mp4 or .avi files, got {args.overlay.name}")
        check_writable(args.overlay, "--overlay")


def check_writable(path: Path, flag: str) -> None:
    """InputError unless ``path`` can be written (its nearest existing ancestor a writable
    folder, the path itself not a folder), so a bad output path fails before the work."""
    import os

    from edge_slr.errors import InputError

    if path.is_dir():
        raise InputError(f"{flag} {path} is a folder; expected a file name to write")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{flag} {path} exists and is not writable")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{flag} {path} cannot be written: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{flag} {path} cannot be written: {parent} is not writable")


def recognize_input(recognizer: Any, path: Path, fps: float | None) -> tuple[Any, Any]:
    """(result, the landmarks it was recognised from)."""
    from edge_slr.landmarks import load_landmarks

    if path.suffix.lower() in LANDMARK_SUFFIXES:
        sequence = load_landmarks(path, fps=fps)  # a file without a rate (GISLR parquet) needs it
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


def run_camera(recognizer: Any, args: argparse.Namespace) -> int:
    """--camera N|FILE through the live pipeline (edge_slr.recognition.live): extraction and
    recognition on two workers; a file plays at its own frame rate, as a camera would. Ctrl+C
    ends the stream."""
    from edge_slr.errors import InputError
    from edge_slr.recognition.live import LiveRecognizer, play

    camera = str(args.camera)
    source: int | Path = int(camera) if camera.isdigit() else Path(camera)
    if isinstance(source, Path) and not source.exists():
        raise InputError(f"--camera takes a camera index or a video file, got {camera!r}")
    view = _LiveView(args.overlay)
    live = LiveRecognizer.create_from_recognizer(
        recognizer, drop_policy=args.drop_policy, result_callback=view.on_result
    )
    try:
        with live:
            view.live = live
            with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C ends the stream, then finish
                play(source, live, realtime=True, max_frames=args.max_frames, finish=False)
            final = live.finish()
            stats = live.stats()
    finally:
        view.close()
    print(
        f"live: {stats.frames_in} frames, {stats.dropped} dropped, "
        f"{stats.sustained_fps or 0:.1f} fps sustained, CPU {stats.cpu_percent or 0:.0f}%, "
        f"capture->result p50 {stats.frame_latency_p50_ms or 0:.0f} ms, "
        f"glass-to-gloss p50 {_ms_text(stats.glass_to_gloss_p50_ms)}",
        file=sys.stderr,
    )
    print_result(recognizer, final, args.json)
    return 0


def _ms_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


class _LiveView:
    """Prints partial and final hypotheses and a status line; draws the overlay. Runs on the
    live pipeline's recognition worker (edge_slr.recognition.live result callback)."""

    STATUS_EVERY_S = 1.0

    def __init__(self, overlay: Path | None) -> None:
        self.live: Any = None
        self._overlay = overlay
        self._writer: Any = None
        self._shown = ""
        self._status = ""
        self._next_status = 0.0

    def on_result(self, result: Any, info: Any) -> None:
        line = result.sentence
        if result.final:
            print(f"[{info.timestamp_ms / 1000:7.2f} s] {line}", flush=True)
            self._shown = ""
        elif line != self._shown:
            print(f"  ... {line}", file=sys.stderr, flush=True)
            self._shown = line
        now = time.monotonic()
        if now >= self._next_status and self.live is not None:  # stats() costs ~1 ms
            stats = self.live.stats()
            self._status = (f"{stats.recent_fps or 0:.1f} fps  dropped {stats.dropped}  "
                            f"latency {info.latency_ms:.0f} ms")  # fmt: skip
            print(f"  [live] {self._status}", file=sys.stderr, flush=True)
            self._next_status = now + self.STATUS_EVERY_S
        if self._overlay is not None and info.image is not None:
            self._draw(info.image, info.landmarks, line)

    def _draw(self, rgb: Any, points: Any, line: str) -> None:
        from edge_slr._optional import require

        cv2 = require("cv2", "writing overlay videos")
        if self._writer is None:
            self._writer = _writer(self._overlay, rgb.shape[1], rgb.shape[0], 30.0)
        canvas = draw(rgb, points, line, self._status)
        self._writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


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
