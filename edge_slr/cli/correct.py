"""`edge-slr correct "GLOSS GLOSS ..." --model DIR`: correct recognised gloss sentences."""

from __future__ import annotations

import argparse
import json
import sys

from edge_slr.errors import InputError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "correct",
        help="correct recognised gloss sentences with a trained corrector",
        description="Correct gloss sentences (glosses separated by spaces) with a corrector "
        "trained by `edge-slr train corrector`. Each sentence is one argument; with --input, one "
        "sentence per line of a file ('-' reads standard input). Prints one corrected sentence "
        "per line, or JSON with each stage's proposal, confidence and gate decision.",
    )
    p.add_argument("sentences", nargs="*", metavar="SENTENCE", help='e.g. "MORGEN REGEN NORD"')
    p.add_argument("--model", required=True, metavar="DIR", help="corrector directory or .pt file")
    p.add_argument("--input", metavar="FILE", help="read sentences from FILE, one per line")
    p.add_argument("--beam", type=int, default=1, metavar="N", help="beam width (1 = greedy)")
    p.add_argument(
        "--stages", type=int, default=None, metavar="N", help="use only the first N stages"
    )
    p.add_argument(
        "--no-gate",
        action="store_true",
        help="accept every proposal (switch off the do-no-harm confidence gate)",
    )
    p.add_argument("--json", action="store_true", help="print JSON details")
    p.add_argument("--threads", type=int, default=1, metavar="N", help="torch threads (default 1)")
    p.set_defaults(run=run)


def _read_sentences(args: argparse.Namespace) -> list[list[str]]:
    lines = list(args.sentences)
    if args.input:
        if args.input == "-":
            try:
                lines += sys.stdin.read().splitlines()
            except UnicodeDecodeError as err:
                raise InputError(
                    f"standard input is not UTF-8 text ({err.reason} at offset {err.start}); "
                    "expected one gloss sentence per line"
                ) from None
        else:
            lines += _read_text_lines(args.input)
    sentences = [line.split() for line in lines]
    if not sentences:
        raise InputError('no sentence given: pass "GLOSS GLOSS ..." or --input FILE')
    return sentences


def _read_text_lines(path: str) -> list[str]:
    from edge_slr.errors import FormatError

    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().splitlines()
    except UnicodeDecodeError as err:
        raise FormatError(
            path,
            f"not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); "
            "expected one gloss sentence per line",
        ) from None


def run(args: argparse.Namespace) -> int:
    from edge_slr._optional import require
    from edge_slr.training.corrector.checkpoint import load_corrector

    if args.beam < 1:
        raise InputError(f"--beam must be >= 1, got {args.beam}")
    if args.threads < 1:
        raise InputError(f"--threads must be >= 1, got {args.threads}")
    sentences = _read_sentences(args)
    require("torch", "the gloss corrector").set_num_threads(args.threads)
    corrector = load_corrector(args.model)
    if args.stages is not None and not 1 <= args.stages <= len(corrector.stages):
        raise InputError(f"--stages must be in 1..{len(corrector.stages)}, got {args.stages}")
    results = corrector.correct_batch(
        sentences, beam_size=args.beam, gate=not args.no_gate, num_stages=args.stages
    )
    if args.json:
        print(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=1))
    else:
        for result in results:
            print(" ".join(result.glosses))
    return 0
