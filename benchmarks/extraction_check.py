"""MediaPipe Holistic extraction: agreement with a reference recording, and speed.

On the matched pair in ../shared/data (the AUTSL clip and the Holistic recording made from it):
per-part detection counts and agreement (fraction of frames where both agree that a part is
there or not) and the mean absolute x, y error (normalised coordinates) where both found it, for
a few option sets. Speed: decoding alone and decoding + Holistic, in ms per frame (median of
``--repeats`` runs), on the AUTSL clip (512x512) and the webcam clip (540x720).

Results go to benchmarks/results/extraction_check.json and .md.

    python benchmarks/extraction_check.py [--repeats 3] [--data ../shared/data]
    python benchmarks/extraction_check.py --smoke --results /tmp/out   # CI: a quick pass
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_slr.landmarks.extract import (  # noqa: E402
    HolisticExtractor,
    HolisticOptions,
    compare_landmarks,
)
from edge_slr.landmarks.io import load_landmarks  # noqa: E402
from edge_slr.landmarks.mediapipe_backends import import_mediapipe  # noqa: E402
from edge_slr.landmarks.video import open_frames  # noqa: E402
from edge_slr.paths import shared_data_dir  # noqa: E402
from edge_slr.system import machine_info  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
VIDEO = "video/autsl_signer0_sample1000_color.mp4"
REFERENCE = "landmarks/autsl/signer0_sample1000.pose"
TIMED_CLIPS = (VIDEO, "video/webcam_signer.mp4")
PARTS = ("pose", "face", "left_hand", "right_hand")
VARIANTS = {
    "video (default)": HolisticOptions(),
    "video, no smoothing": HolisticOptions(smooth_landmarks=False),
    "image mode": HolisticOptions(running_mode="image"),
    "video, confidence 0.3": HolisticOptions(
        min_detection_confidence=0.3, min_tracking_confidence=0.3
    ),
}


def agreement(data: Path, variants: dict[str, HolisticOptions] = VARIANTS) -> dict[str, dict]:
    reference = load_landmarks(data / REFERENCE)
    out = {}
    for name, options in variants.items():
        with HolisticExtractor.create_from_options(options) as extractor:
            seq = extractor.extract_video(data / VIDEO)
        parts = compare_landmarks(seq, reference, PARTS)
        # Pose error is dominated by the hidden legs; also report the visible points alone.
        parts["pose (visibility > 0.5)"] = compare_landmarks(seq, reference, ("pose",), 0.5)["pose"]
        out[name] = {part: vars(result) for part, result in parts.items()}
    return out


def speed(data: Path, repeats: int, clips: tuple[str, ...] = TIMED_CLIPS) -> dict[str, dict]:
    out = {}
    with HolisticExtractor.create_from_options(HolisticOptions()) as extractor:
        for clip in clips:
            path = data / clip
            if not path.exists():
                continue
            decode, total, frames = [], [], 0
            for _ in range(repeats):
                start = time.perf_counter()
                frames = sum(1 for _ in open_frames(path).frames())
                decode.append((time.perf_counter() - start) / frames)
                start = time.perf_counter()
                extractor.extract_video(path)
                total.append((time.perf_counter() - start) / frames)
            first = next(open_frames(path).frames())
            out[clip] = {
                "frames": frames,
                "size": f"{first.shape[1]}x{first.shape[0]}",
                "decode_ms_per_frame": round(1000 * statistics.median(decode), 2),
                "extract_ms_per_frame": round(1000 * statistics.median(total), 2),
                "extract_fps": round(1 / statistics.median(total), 1),
            }
    return out


def markdown(report: dict) -> str:
    machine, load = report["machine"], report["load_average_1min_at_start"]
    lines = [
        "# Holistic extraction check",
        "",
        f"mediapipe {report['mediapipe']}, {machine['cpu_model']}, {machine['usable_cpus']} "
        f"cores, 1-min load average {load} at start (above the core count, timings are "
        f"inflated by other work). Reference: `{REFERENCE}`.",
        "",
        "| options | part | frames found / reference | agreement | mean abs error (x, y) |",
        "|---|---|---|---|---|",
    ]
    for variant, parts in report["agreement"].items():
        for part, r in parts.items():
            error = "-" if r["mean_abs_error"] is None else f"{r['mean_abs_error']:.4f}"
            lines.append(
                f"| {variant} | {part} | {r['frames_found']} / {r['frames_reference']} of "
                f"{r['frames']} | {r['agreement']:.3f} | {error} |"
            )
    lines += ["", "| clip | size | frames | decode ms/frame | decode + Holistic ms/frame | fps |"]
    lines += ["|---|---|---|---|---|---|"]
    for clip, r in report["speed"].items():
        lines.append(
            f"| {clip} | {r['size']} | {r['frames']} | {r['decode_ms_per_frame']} | "
            f"{r['extract_ms_per_frame']} | {r['extract_fps']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results path without suffix (default: RESULTS/"
        "extraction_check, extraction_check_smoke with --smoke)",
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="results folder (default: benchmarks/results)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="default options, one repeat, one clip (CI)"
    )
    args = parser.parse_args()
    if args.out is None:
        args.out = args.results / ("extraction_check_smoke" if args.smoke else "extraction_check")
    variants = {"video (default)": VARIANTS["video (default)"]} if args.smoke else VARIANTS
    if args.data is None or not (args.data / VIDEO).exists():
        print(f"needs {VIDEO} and {REFERENCE} under --data (../shared/data)", file=sys.stderr)
        return 2
    import os

    report = {
        "mediapipe": import_mediapipe().__version__,
        "machine": vars(machine_info()),
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "smoke": args.smoke,
        "agreement": agreement(args.data, variants),
        "speed": speed(args.data, 1, (VIDEO,)) if args.smoke else speed(args.data, args.repeats),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=list) + "\n")
    text = markdown(report)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
