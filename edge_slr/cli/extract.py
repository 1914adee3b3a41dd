"""`edge-slr extract`: MediaPipe Holistic landmarks from videos, frame folders or a whole corpus.

Plain inputs:   edge-slr extract clip.mp4 frames/NAME/ -o OUT [--format pose]
A folder tree:  edge-slr extract PHOENIX/features/fullFrame-210x260px -o OUT  (OUT/SPLIT/ID.npz)
A corpus split: edge-slr extract --corpus phoenix2014t --root DIR --split train --out OUT
On a cluster:   ... --executor ray --ray-address auto --workers 16
To storage:     edge-slr extract DIR -o s3://bucket/landmarks  (any fsspec URL; file:///... too)

Corpus outputs are a landmark dataset (edge_slr.data.dataset): OUT/SPLIT/ID.npz,
OUT/SPLIT/index.tsv, OUT/dataset.json and OUT/vocabulary.json (train glosses).
Runs are resumable: extraction_manifest.jsonl next to the outputs records each input's size and
time and the extractor's options, and a re-run skips what is done and unchanged. Failures are
retried (--retries), then listed with their reason, printed and in extraction_summary.json.
Exit status 0 when nothing failed, 1 otherwise.
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
    p.add_argument(
        "-o",
        "--out",
        required=True,
        help="output folder, or an fsspec URL (s3://..., file:///...; pip extra 'cluster' and "
        "the protocol's package, e.g. s3fs) for plain inputs",
    )
    p.add_argument("--corpus", help="corpus name (phoenix2014, phoenix2014t, csl-daily)")
    p.add_argument("--root", type=Path, help="corpus root folder (with --corpus)")
    p.add_argument(
        "--split",
        nargs="+",
        choices=("train", "dev", "test"),
        help="split(s) of the corpus (default: every split whose annotation file is there)",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="extractors in parallel: processes or Ray actors"
    )
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local: processes on this machine (default); ray: Ray actors (pip extra 'cluster')",
    )
    p.add_argument(
        "--ray-address",
        help="Ray cluster address ('auto': the running cluster; default: $RAY_ADDRESS, "
        "else a local Ray)",
    )
    p.add_argument("--threads-per-worker", type=int, default=1, help="threads each worker uses")
    p.add_argument("--retries", type=int, default=2, help="retries of a failed video (default 2)")
    p.add_argument(
        "--sha256", action="store_true", help="identify inputs by content, not size and time"
    )
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
    g.add_argument(
        "--engine",
        choices=("auto", "mediapipe", "openvino", "openvino-int8", "litert", "onnxruntime"),
        default="auto",
        help="what runs the Holistic models: MediaPipe's graph, or the same models on an "
        "edge-slr runtime (default auto: the fastest installed, LiteRT, then OpenVINO, then the "
        "graph; the choice is printed)",
    )
    g.add_argument(
        "--calibration",
        nargs="+",
        type=Path,
        metavar="VIDEO",
        help="openvino-int8 / onnxruntime: build (once, into the cache) the engine's models "
        "first; INT8 is calibrated on crops of these real videos (needs the convert extra)",
    )
    g.add_argument(
        "--holistic-models",
        type=Path,
        metavar="DIR",
        help="folder with the Holistic .tflite files (default: the mediapipe wheel's)",
    )
    g.add_argument(
        "--part-workers",
        type=int,
        choices=(1, 2, 3),
        default=1,
        help="edge-slr engines: threads for the hands and face of one frame (default 1; 2 "
        "overlaps them on two cores when one video is extracted at a time)",
    )
    g.add_argument(
        "--hand-model",
        choices=("full", "lite"),
        default="full",
        help="edge-slr engines: the wheel's full hand model (default, as the graph) or its lite "
        "one (about half the hand cost, less accurate)",
    )
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
    args.out = _check_out(args.out)
    for name in ("workers", "threads_per_worker"):
        if getattr(args, name) < 1:
            flag = "--" + name.replace("_", "-")
            raise InputError(f"{flag} must be >= 1, got {getattr(args, name)}")
    if args.retries < 0:
        raise InputError(f"--retries must be >= 0, got {args.retries}")
    if args.ray_address is not None and args.executor != "ray":
        raise InputError("--ray-address needs --executor ray")
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
        **_engine_options(args),
    )
    print(f"extraction engine: {options.engine}", file=sys.stderr)
    if args.calibration:
        _build_models(options, args.calibration)
    if args.corpus:
        return _run_corpus(args, options)
    return _run_inputs(args, options)


def _build_models(options: Any, calibration: list[Path]) -> None:
    """Build the engine's Holistic models into the cache (a no-op when they are there)."""
    from edge_slr.errors import InputError

    if options.engine not in ("openvino-int8", "onnxruntime"):
        raise InputError(
            f"--calibration builds openvino-int8 or onnxruntime models; the engine is "
            f"{options.engine!r}"
        )
    from edge_slr.landmarks.holistic.models import build_holistic_models

    built = build_holistic_models(
        options.engine, model_dir=options.model_dir, calibration=[str(p) for p in calibration]
    )
    for role, artifact in built.items():
        print(f"  {role}: {artifact.path}", file=sys.stderr)


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """engine, model_dir, threads for HolisticOptions; options only MediaPipe's graph has keep
    "auto" on the graph."""
    engine = args.engine
    graph_only = (
        args.model_complexity != 1 or args.refine_face or args.pose_model or args.task_model
    )
    if engine == "auto" and graph_only:
        engine = "mediapipe"
    return {
        "engine": engine,
        "model_dir": args.holistic_models,
        "threads": args.threads_per_worker,
        "part_workers": args.part_workers,
        "hand_model": args.hand_model,
    }


def _run_inputs(args: argparse.Namespace, options: Any) -> int:
    from edge_slr.landmarks.batch import SUMMARY_NAME, jobs_for_inputs, run_batch
    from edge_slr.landmarks.storage import join

    jobs = jobs_for_inputs(args.inputs, args.out, suffix=f".{args.format}", fps=args.fps)
    jobs = jobs[: args.limit] if args.limit else jobs
    summary = run_batch(jobs, options, **_run_options(args))
    path = summary.write_json(join(args.out, SUMMARY_NAME), {"options": options.to_dict()})
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


def _check_out(out: str) -> Any:
    """-o as a local Path or a URL; a path must be a folder or where one can be made (not a
    file, nor inside a file)."""
    from edge_slr.errors import InputError
    from edge_slr.landmarks.storage import as_target, is_url

    if is_url(out):
        return as_target(out)
    local = Path(out)
    for path in (local, *local.parents):
        if path.exists():
            if not path.is_dir():
                where = "is" if path == local else f"(a parent of {local}) is"
                raise InputError(f"-o/--out must be a folder, but {path} {where} an existing file")
            break
    return local


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "workers": args.workers,
        "executor": args.executor,
        "ray_address": args.ray_address,
        "threads_per_worker": args.threads_per_worker,
        "retries": args.retries,
        "sha256": args.sha256,
        "on_no_person": "keep" if args.keep_no_person else "raise",
        "overwrite": args.overwrite,
        "progress": not args.no_progress,
    }


def _report(summary: Any, path: Path | str) -> int:
    totals = summary.to_dict()
    speed = f", {totals['ms_per_frame']} ms/frame" if totals["ms_per_frame"] else ""
    print(
        f"extracted {totals['done']}, skipped {totals['skipped']} (already done), "
        f"failed {totals['failed']} in {totals['seconds']} s{speed}"
    )
    if totals["frames_extracted"]:
        retried = f", {totals['retried']} retried" if totals["retried"] else ""
        print(
            f"{totals['frames_extracted']} frames, {totals['frames_per_second']} frames/s on "
            f"{len(totals['per_worker'])} worker(s) ({totals['executor']}){retried}"
        )
        for worker, row in totals["per_worker"].items():
            print(
                f"  {worker}: {row['videos']} videos, {row['frames']} frames, "
                f"{row['frames_per_second']} frames/s"
            )
    for failure in summary.failures[:MAX_LISTED_FAILURES]:
        print(f"  FAILED {failure.id}: {failure.error_type}: {failure.error}", file=sys.stderr)
    if len(summary.failures) > MAX_LISTED_FAILURES:
        hidden = len(summary.failures) - MAX_LISTED_FAILURES
        print(f"  ... and {hidden} more, see {path}", file=sys.stderr)
    print(f"summary: {path}")
    return 1 if summary.failures else 0
