"""`edge-slr eval`: gloss error rate of recognised glosses against an STM reference."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_slr.metrics import ErrorBreakdown

SCORING_CORPORA = ("phoenix2014", "phoenix2014t", "csl-daily", "plain")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="score recognised glosses against an STM reference (WER with S/D/I)",
        description="Score hypotheses against an STM reference the way the PHOENIX evaluation "
        "does (hypothesis normalisation, [EMPTY], repetition merge, sclite costs 3/3/4), print "
        "the corpus WER with substitutions, deletions, insertions and the most frequent errors, "
        "and write a JSON report with every sentence's alignment.",
    )
    p.add_argument("--hyp", type=Path, required=True, help="hypotheses: CTM or STM-like file")
    p.add_argument("--ref", type=Path, required=True, help="reference STM file")
    p.add_argument(
        "--corpus",
        choices=SCORING_CORPORA,
        default="phoenix2014",
        help="scoring rules: the PHOENIX corpora rewrite hypothesis glosses, csl-daily and "
        "plain do not (default: %(default)s)",
    )
    p.add_argument(
        "--hyp-format",
        choices=("auto", "ctm", "stm"),
        default="auto",
        help="layout of --hyp (default: detected from its lines)",
    )
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to write the JSON report (default: HYP_STEM.wer.json in the current folder)",
    )
    p.add_argument("--top", type=int, default=10, help="how many frequent errors to list")
    p.add_argument(
        "--allow-extra",
        action="store_true",
        help="ignore hypothesis ids that the reference lacks (otherwise an error)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edge_slr.errors import InputError
    from edge_slr.metrics import error_breakdown, load_hypotheses, load_references, score

    if args.top < 0:
        raise InputError(f"--top must be >= 0, got {args.top}")
    references = load_references(args.ref)
    hypotheses = load_hypotheses(args.hyp, args.hyp_format)
    result = score(hypotheses, references, args.corpus, allow_extra=args.allow_extra)
    breakdown = error_breakdown(result, top=args.top)
    missing = sum(1 for name in references if name not in hypotheses)

    print(result.summary())
    if missing:
        print(f"{missing} reference sentences have no hypothesis (scored as [EMPTY])")
    _print_breakdown(breakdown)

    report = {
        "hypotheses": str(args.hyp),
        "references": str(args.ref),
        "missing_hypotheses": missing,
        **result.to_dict(per_sentence=False),
        "most_frequent_errors": breakdown.to_dict(),
        "sentences": [s.to_dict() for s in result.sentences],
    }
    out = args.json if args.json is not None else Path(f"{args.hyp.stem}.wer.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"report: {out}")
    return 0


def _print_breakdown(breakdown: ErrorBreakdown) -> None:
    rows = [
        ("substitutions", [f"{r} -> {h} ({c})" for (r, h), c in breakdown.substitutions]),
        ("deletions", [f"{g} ({c})" for g, c in breakdown.deletions]),
        ("insertions", [f"{g} ({c})" for g, c in breakdown.insertions]),
    ]
    for name, items in rows:
        if items:
            print(f"top {name}: " + ", ".join(items))
