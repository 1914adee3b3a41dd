"""`edge-slr train MODEL`: one group for the trainable models; each lives in its own module."""

from __future__ import annotations

import argparse
import importlib

# model -> module of edge_slr.cli that registers `edge-slr train <model>`
TRAINABLE = {
    "recognizer": "train_recognizer",
    "teacher": "train_teacher",
    "corrector": "train_corrector",
    "lm": "train_lm",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train the recogniser (student), the video teacher or the gloss corrector",
        description="Train a model from a TOML config (see configs/); --set key=value overrides.",
    )
    nested = p.add_subparsers(dest="train_model", metavar="MODEL")
    nested.required = True
    for module in TRAINABLE.values():
        importlib.import_module(f"edge_slr.cli.{module}").add_parser(nested)
