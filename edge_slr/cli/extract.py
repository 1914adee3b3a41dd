"""`edge-slr extract`: MediaPipe Holistic landmarks from videos, frame folders or a whole corpus.

Plain inputs:   edge-slr extract clip.mp4 frames/NAME/ -o OUT [--format pose]
A corpus split: edge-slr extract --corpus phoenix2014t --root DIR --split train --out OUT

Corpus outputs are a landmark dataset (edge_slr.data.dataset): OUT/SPLIT/ID.npz,
OUT/SPLIT/index.tsv, OUT/dataset.json and OUT/vocabulary.json (train glosses).
Runs are resumable (finished files are skipped) and every failure is listed with its reason,
printed and in extraction_summary.json. Exit status 0 when nothing failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

MAX_LISTED_FAILURES = 20


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "extract",
        help="extract MediaPipe Holistic landmarks from videos, frame folders or a corpus",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", type=Path, help="video files or frame folders")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--corpus", help="corpus name (phoenix2014, phoenix2014t, csl-daily)")
    p.add_argument("--root", type=Path, help="corpus root folder (with --corpus)")
    p.add_argument(
        "--split",
        nargs="+",
        choices=("train", "dev", "test"),
        help="split(s) of the corpus (default: every split whose annotation file is there)",
    )
    p.add_argument("--workers", type=int, default=1, help="extraction processes (default 1)")
    p.add_argument(
        "--format", choices=("npz", "pose"), default="npz", help="file format for plain inputs"
    )
    p.add_argument("--fps", type=float, help="frame rate of frame folders (default 25)")
    p.add_argument("--limit", type=int, help="only the first N inputs of each split")
    p.add_argument("--overwrite", action="store_true", help="redo files that already exist")
    p.add_argument(
        "--keep-no-person",
        action="store_true",
        help="write all-zero landmarks for inputs where nobody is detected (default: a failure)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("MediaPipe Holistic")
    g.add_argument("--model-complexity", type=int, choices=(0, 1, 2), default=1)
    g.add_argument("--min-detection-confidence", type=float, default=0.5)
    g.add_argument("--min-tracking-confidence", type=float, default=0.5)
    g.add_argument("--static-image-mode", action="store_true", help="every frame on its own")
    g.add_argument("--no-smooth", action="store_true", help="no landmark smoothing")
    g.add_argument("--refine-face", action="store_true", help="refined face mesh (468 kept)")
    g.add_argument("--pose-model", type=Path, help="local pose model for complexity 0/2")
    g.add_argument("--task-model", type=Path, help="holistic_landmarker.task: use the Tasks API")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edge_slr.errors import InputError
    from edge_slr.landmarks.extract import HolisticOptions
    from edge_slr.landmarks.video import MAX_FPS

    if bool(args.inputs) == bool(args.corpus):
        raise InputError("give either video files/frame folders or --corpus NAME --root DIR")
    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be >= 1, got {args.limit}")
    if args.fps is not None and not 0 < args.fps <= MAX_FPS:
        raise InputError(f"--fps must be in (0, {MAX_FPS:g}], got {args.fps}")
    options = HolisticOptions(
        running_mode="image" if args.static_image_mode else "video",
        model_complexity=args.model_complexity,
        min_detection_confidence=args.min_detection_confidence,
        min_tracking_confidence=args.min_tracking_confidence,
        smooth_landmarks=not args.no_smooth,
        refine_face_landmarks=args.refine_face,
        pose_model_path=args.pose_model,
        task_model_path=args.task_model,
    )
    if args.corpus:
        return _run_corpus(args, options)
    return _run_inputs(args, options)


def _run_inputs(args: argparse.Namespace, options: Any) -> int:
    from edge_slr.landmarks.batch import SUMMARY_NAME, jobs_for_inputs, run_batch

    jobs = jobs_for_inputs(args.inputs, args.out, suffix=f".{args.format}", fps=args.fps)
    jobs = jobs[: args.limit] if args.limit else jobs
    summary = run_batch(jobs, options, **_run_options(args))
    path = summary.write_json(args.out / SUMMARY_NAME, {"options": options.to_dict()})
    return _report(summary, path)


def _run_corpus(args: argparse.Namespace, options: Any) -> int:
    from edge_slr.data.corpora import SPLITS
    from edge_slr.errors import InputError
    from edge_slr.landmarks.batch import SUMMARY_NAME, extract_corpus_split

    if args.root is None:
        raise InputError("--corpus needs --root DIR (the corpus release folder)")
    if args.format != "npz":
        raise InputError("corpus extraction writes the dataset layout (.npz); drop --format")
    status = 0
    for split in args.split or _present_splits(args.corpus, args.root, SPLITS):
        summary = extract_corpus_split(
            args.corpus,
            args.root,
            split,
            args.out,
            options,
            limit=args.limit,
            fps=args.fps,
            **_run_options(args),
        )
        extra = {"corpus": args.corpus, "split": split, "options": options.to_dict()}
        path = summary.write_json(args.out / split / SUMMARY_NAME, extra)
        print(f"{args.corpus} {split}: landmark dataset in {args.out} (index {split}/index.tsv)")
        status = max(status, _report(summary, path))
    return status


def _present_splits(corpus: str, root: Path, splits: tuple[str, ...]) -> list[str]:
    from edge_slr.data.corpora import corpus_spec
    from edge_slr.errors import FormatError

    present = []
    for split in splits:
        try:
            corpus_spec(corpus).locate(root, split)
        except FormatError:
            continue
        present.append(split)
    if not present:
        corpus_spec(corpus).locate(root, splits[0])  # raises the reader's own clear error
    return present


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "workers": args.workers,
        "on_no_person": "keep" if args.keep_no_person else "raise",
        "overwrite": args.overwrite,
        "progress": not args.no_progress,
    }


def _report(summary: Any, path: Path) -> int:
    totals = summary.to_dict()
    speed = f", {totals['ms_per_frame']} ms/frame" if totals["ms_per_frame"] else ""
    print(
        f"extracted {totals['done']}, skipped {totals['skipped']} (already done), "
        f"failed {totals['failed']} in {totals['seconds']} s{speed}"
    )
    for failure in summary.failures[:MAX_LISTED_FAILURES]:
        print(f"  FAILED {failure.id}: {failure.error_type}: {failure.error}", file=sys.stderr)
    if len(summary.failures) > MAX_LISTED_FAILURES:
        hidden = len(summary.failures) - MAX_LISTED_FAILURES
        print(f"  ... and {hidden} more, see {path}", file=sys.stderr)
    print(f"summary: {path}")
    return 1 if summary.failures else 0
