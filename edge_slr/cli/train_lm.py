"""`edge-slr train lm`: a gloss n-gram language model (ARPA) from a corpus's train split.

This module adds the ``lm`` subcommand to the ``train`` group, as the other trainable models do.
The same command rebuilds the LMs for the real corpora from the user's corpus folders: they are
not shipped with the package (see README, "Language models").
"""

from __future__ import annotations

import argparse
from pathlib import Path

CORPORA = ("phoenix2014", "phoenix2014t", "csl-daily")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "lm",
        help="train a gloss n-gram language model (ARPA) on a corpus's train split",
        description="Count the gloss n-grams of a corpus's train split (never dev/test), smooth "
        "them with interpolated modified Kneser-Ney and write OUT/lm.arpa (standard ARPA, "
        "readable by KenLM/SRILM) with OUT/lm.arpa.json (corpus, order, discounts). Put lm.arpa "
        "in a model folder and tune its weights with `edge-slr evaluate --lm ... --tune-lm dev`.",
    )
    p.add_argument("--corpus", required=True, choices=CORPORA, help="corpus to train on")
    p.add_argument(
        "--root",
        type=Path,
        metavar="DIR",
        help="corpus folder in its release layout (default: ../shared/data/CORPUS)",
    )
    p.add_argument("--order", type=int, default=4, metavar="N", help="n-gram order (default 4)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write")
    p.add_argument("--name", default="lm.arpa", help="ARPA file name (default lm.arpa)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edge_slr.data.corpora import corpus_spec
    from edge_slr.errors import InputError
    from edge_slr.paths import shared_data_dir
    from edge_slr.training.lm import train_corpus_lm

    root = args.root
    if root is None:
        shared = shared_data_dir()
        if shared is None:
            raise InputError(
                f"no corpus folder given for {args.corpus!r} and ../shared/data is absent; "
                "pass --root DIR (the corpus in its release layout)"
            )
        root = shared / (corpus_spec(args.corpus).shared_folder or args.corpus)
    arpa, description = train_corpus_lm(args.corpus, root, args.order, args.out, args.name)
    counts = ", ".join(f"{n}-grams {c}" for n, c in enumerate(description["ngrams"], start=1))
    print(f"{args.order}-gram LM of {args.corpus} train ({description['sentences']} sentences)")
    print(f"  {counts}")
    print(f"  written to {arpa} and {arpa.name}.json")
    return 0
