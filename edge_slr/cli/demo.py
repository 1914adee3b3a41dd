"""`edge-slr demo`: the whole chain on a small SignSynth dataset, in a few minutes on 2 cores.

    edge-slr demo                                  # runs/demo; cached stages are reused
    edge-slr demo --shared ../shared/data          # real sentences/timing and a real video
    edge-slr demo --targets openvino-int8,onnx,tflite
    edge-slr demo --fresh                          # rebuild every stage

Builds a SignSynth dataset (real PHOENIX-2014-T sentences and timing when the shared data is
there, else the built-in grammar), trains the student and the corrector briefly, converts the
student (openvino-int8 by default, verified against PyTorch), recognises the held-out test clips
and one real signer video with the Recognizer, and prints the benchmark table. Dataset, models
and checkpoints are cached in WORK (default runs/demo) by a key of their options; results go to
WORK/results/demo.json and WORK/results/benchmark.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

HELP = "run the whole chain once: SignSynth data, training, conversion, recognition, benchmark"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from edge_slr.demo.options import CORPUS_CHOICES, DEFAULT_WORK_DIR, DemoOptions

    d = DemoOptions.__dataclass_fields__
    p = subparsers.add_parser(
        "demo",
        help=HELP,
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--work-dir",
        type=Path,
        default=DEFAULT_WORK_DIR,
        metavar="DIR",
        help=f"where stages and results are kept (default {DEFAULT_WORK_DIR})",
    )
    p.add_argument("--fresh", action="store_true", help="delete the cached stages and rebuild")
    p.add_argument(
        "--shared",
        type=Path,
        metavar="DIR",
        help="real-data folder (default: EDGE_SLR_SHARED_DATA or ../shared/data); "
        "a missing folder means: run as on a bare machine",
    )
    p.add_argument(
        "--no-shared",
        action="store_true",
        help="ignore the shared data (built-in sentences, no video)",
    )
    p.add_argument(
        "--corpus",
        choices=CORPUS_CHOICES,
        default="auto",
        help="sentence source (auto: PHOENIX-2014-T when found, else built-in)",
    )
    p.add_argument(
        "--corpus-root",
        type=Path,
        metavar="DIR",
        help="your corpus folder (release layout) for --corpus",
    )
    p.add_argument(
        "--targets",
        default=",".join(d["targets"].default),
        metavar="T1,T2",
        help="conversion targets, comma-separated (default openvino-int8; "
        "the first one recognises)",
    )
    p.add_argument(
        "--video",
        type=Path,
        metavar="FILE",
        help="signer video to recognise (default: the shared webcam clip)",
    )
    sizes = p.add_argument_group("sizes")
    for name, help_text in (
        ("glosses", "vocabulary: the most frequent train glosses"),
        ("train_sentences", "student train clips"),
        ("eval_sentences", "dev and test clips each"),
        ("signers", "synthetic signers per split"),
        ("width", "student width (conv w,w,2w,2w; BiLSTM w)"),
        ("epochs", "student epochs"),
        ("corrector_width", "corrector d_model"),
        ("calibration_size", "INT8 calibration clips"),
        ("threads", "training and engine threads"),
        ("beam_width", "CTC beam width when recognising"),
        ("seed", "data and training seed"),
    ):
        sizes.add_argument(
            f"--{name.replace('_', '-')}",
            type=int,
            default=d[name].default,
            metavar="N",
            help=f"{help_text} (default {d[name].default})",
        )
    sizes.add_argument(
        "--corrector-minutes",
        type=float,
        default=d["corrector_minutes"].default,
        help=f"corrector training minutes per stage (default {d['corrector_minutes'].default})",
    )
    sizes.add_argument(
        "--max-wer-drop",
        type=float,
        default=d["max_wer_drop"].default,
        help=f"INT8 verification: allowed WER drop in points (default {d['max_wer_drop'].default})",
    )
    sizes.add_argument(
        "--min-agreement",
        type=float,
        default=d["min_agreement"].default,
        help="INT8 verification: gloss agreement with PyTorch (default "
        f"{d['min_agreement'].default})",
    )
    sizes.add_argument(
        "--lengths",
        default=",".join(map(str, d["lengths"].default)),
        help="benchmark input lengths in frames (default 50,100,200)",
    )
    sizes.add_argument("--difficulty", choices=("easy", "default", "hard"), default="default")
    sizes.add_argument(
        "--set",
        dest="student_set",
        action="append",
        default=[],
        metavar="TABLE.KEY=VALUE",
        help="override the student's training config, e.g. --set augment.flip_p=0.5 "
        "(repeatable; see edge-slr train recognizer)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)
    return p


def options_from_args(args: argparse.Namespace) -> Any:
    from edge_slr.demo.options import DemoOptions
    from edge_slr.errors import InputError

    try:
        lengths = tuple(int(x) for x in str(args.lengths).split(",") if x.strip())
    except ValueError:
        raise InputError(
            f"--lengths takes frame counts like 50,100,200, got {args.lengths!r}"
        ) from None
    return DemoOptions(
        work_dir=args.work_dir,
        shared=args.shared,
        use_shared=not args.no_shared,
        corpus=args.corpus,
        corpus_root=args.corpus_root,
        glosses=args.glosses,
        train_sentences=args.train_sentences,
        eval_sentences=args.eval_sentences,
        signers=args.signers,
        difficulty=args.difficulty,
        width=args.width,
        epochs=args.epochs,
        corrector_width=args.corrector_width,
        corrector_minutes=args.corrector_minutes,
        targets=tuple(t.strip() for t in args.targets.split(",") if t.strip()),
        calibration_size=args.calibration_size,
        max_wer_drop=args.max_wer_drop,
        min_agreement=args.min_agreement,
        video=args.video,
        lengths=lengths,
        beam_width=args.beam_width,
        threads=args.threads,
        seed=args.seed,
        fresh=args.fresh,
        progress=not args.no_progress,
        extra_student=tuple(args.student_set),
    )


def run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see training.train.prefer_passive_openmp
    # the engines' C++ log lines are quieted where they are imported (edge_slr._optional)
    from edge_slr.demo import run_demo

    options = options_from_args(args)
    with _progress_logging(verbose=getattr(args, "verbose", 0)):
        result = run_demo(options)
    print_result(result)
    return 0 if result.ok else 1


class _progress_logging:  # noqa: N801 - used as a context manager
    """edge_slr's log lines to stdout, plain, while the demo runs (stage lines and epochs)."""

    def __init__(self, verbose: int) -> None:
        self.logger = logging.getLogger("edge_slr")
        self.level = logging.DEBUG if verbose > 1 else logging.INFO
        self.handler = logging.StreamHandler(sys.stdout)
        self.handler.setFormatter(_Formatter())

    def __enter__(self) -> None:
        self.saved = (self.logger.level, self.logger.propagate)
        self.logger.setLevel(self.level)
        self.logger.propagate = False
        self.logger.addHandler(self.handler)

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.saved[0])
        self.logger.propagate = self.saved[1]


class _Formatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        import time

        self.started = time.perf_counter()

    def format(self, record: logging.LogRecord) -> str:
        import time

        clock = f"{time.perf_counter() - self.started:6.0f}s"
        level = "" if record.levelno == logging.INFO else f"{record.levelname}: "
        if record.name == "edge_slr.demo":
            return f"{clock} {level}{record.getMessage()}"
        return f"{clock}    {level}{record.getMessage()}  ({record.name.removeprefix('edge_slr.')})"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def print_result(result: Any) -> None:
    """The summary: every number here was measured by this run or by the run that cached it."""
    print("\n== edge-slr demo ==")
    print(f"sentences   {result.source}")
    for name in ("dataset", "student", "corrector"):
        stamp = result.stages.get(name)
        if stamp:
            print(f"{name:<11} {_stage_line(name, stamp['summary'])}{_made(stamp)}")
    for target, stamp in result.stages.items():
        if target.startswith("convert "):
            s = stamp["summary"]
            print(f"{'converted':<11} {target[8:]}: {s['model']} {s['size_bytes'] / 1e6:.2f} MB, "
                  f"verified against PyTorch ({_verification(s)}){_made(stamp)}")  # fmt: skip
    for target, reason in result.failed_targets.items():
        print(f"{'FAILED':<11} {target}: {reason}")
    held = result.held_out
    if held is not None:
        corrected = "" if held.wer_corrected is None else (
            f" -> {_pct(held.wer_corrected)} after correction")  # fmt: skip
        print(f"held-out    {held.sentences} test clips (unseen signers and sentences), "
              f"{held.model} on {held.runtime}:")  # fmt: skip
        print(f"            WER {_pct(held.wer)} (S {held.substitutions} D {held.deletions} "
              f"I {held.insertions} of {held.reference_glosses}){corrected}; "
              f"{held.ms_per_clip_p50:.1f} ms per clip (p50)")  # fmt: skip
        for example in held.examples:
            print(f"            ref  {example['reference']}")
            print(f"            hyp  {example['recognized']}")
            if example["corrected"] is not None:
                print(f"            cor  {example['corrected']}")
    _print_video(result)
    if result.benchmark is not None:
        print()
        print(result.benchmark.format_table())
    elif result.benchmark_note:
        print(f"benchmark   {result.benchmark_note}")
    timings = ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items())
    print(f"\ntotal       {result.seconds:.0f} s ({timings})")
    print(f"outputs     models {result.model_dir}, data {result.data_dir}, "
          f"results {result.work_dir / 'results'}")  # fmt: skip


def _print_video(result: Any) -> None:
    video = result.video
    if video is None:
        print(f"video       {result.video_note}")
        return
    t = video.timings
    print(f"video       {video.path}: {video.frames} frames at {video.fps:.1f} fps, a hand in "
          f"{100 * video.hands_seen:.0f}% of them")  # fmt: skip
    print(f"            recognised: {' '.join(video.recognized) or '(nothing)'}"
          + ("" if video.corrected is None else
             f"; corrected: {' '.join(video.corrected) or '(nothing)'}"))  # fmt: skip
    for warning in video.warnings:
        print(f"            warning: {warning}")
    print(f"            extraction {t['extraction_ms']:.0f} ms, recognition "
          f"{t['recognition_ms']:.1f} ms, correction {t['correction_ms']:.1f} ms")  # fmt: skip
    print(
        "            (a model trained on synthetic signers: these glosses show that the "
        "pipeline runs on real video, not what was signed)"
    )


def _verification(s: dict[str, Any]) -> str:
    limits = s.get("thresholds") or {}
    if s.get("wer_drop") is not None:
        return (
            f"{s['verification']}: WER drop {s['wer_drop']:+.2f} points "
            f"(limit {limits.get('max_wer_drop', '?')}), gloss agreement "
            f"{s['agreement']:.3f} (min {limits.get('min_agreement', '?')})"
        )
    if s.get("max_abs_diff") is not None:
        return f"{s['verification']}: max |logit diff| {s['max_abs_diff']:.1e}"
    return s["verification"]


def _made(stamp: dict[str, Any]) -> str:
    return f"  [cached, made in {stamp['seconds']:.0f} s]" if stamp["reused"] else (
        f"  [{stamp['seconds']:.0f} s]")  # fmt: skip


def _stage_line(name: str, s: dict[str, Any]) -> str:
    if name == "dataset":
        splits = s["splits"]
        return (f"{splits['train']['samples']} train / {splits['dev']['samples']} dev / "
                f"{splits['test']['samples']} test clips, {s['vocabulary']} glosses")  # fmt: skip
    if name == "student":
        speed, params = s.get("train_sequences_per_s"), s.get("parameters")
        return (f"{'?' if params is None else f'{params:,}'} parameters, best epoch {s['best_epoch']}, "
                f"{'n/a' if speed is None else f'{speed:.1f}'} clips/s; greedy WER dev "
                f"{_pct(s.get('dev_wer_greedy'))}, test {_pct(s.get('test_wer_greedy'))}")  # fmt: skip
    levels = s["held_out"]
    shown = ", ".join(
        f"{float(k):.0%}: {_pct(v['before'])} -> {_pct(v['after'])}" for k, v in levels.items()
    )
    return (f"2 stages x {s['parameters_per_stage']:,} parameters, {s['sentences']} train "
            f"sentences; held-out noisy train sentences {shown}")  # fmt: skip
