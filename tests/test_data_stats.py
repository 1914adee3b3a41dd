"""Corpus statistics against the published counts, and the `edge-slr data stats` command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from edge_slr.cli import data as data_cli
from edge_slr.data.stats import corpus_stats
from edge_slr.errors import FormatError, InputError


def corpus_root(shared_data: Path, folder: str) -> Path:
    path = shared_data / folder
    if not path.is_dir():
        pytest.skip(f"{folder} is absent from {shared_data}")
    return path


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="edge-slr")
    subparsers = parser.add_subparsers(dest="command", required=True)
    data_cli.add_parser(subparsers)
    return parser.parse_args(argv)


def test_phoenix2014_published_counts(shared_data: Path) -> None:
    stats = corpus_stats("phoenix2014", corpus_root(shared_data, "phoenix2014"))
    assert [s.sentences for s in stats.splits] == [5672, 540, 629]
    assert stats.vocabulary == 1295  # the published figure is the union of all splits
    assert stats.train_vocabulary == 1231
    train, dev, test = stats.splits
    assert train.oov_types == train.oov_tokens == 0
    assert (dev.oov_types, dev.oov_tokens, test.oov_types, test.oov_tokens) == (29, 38, 41, 45)
    assert train.tokens == 65227 and train.signers == 9
    assert train.frames is None  # the shared copy has no frames and no frame counts


def test_phoenix2014t_published_counts(shared_data: Path) -> None:
    stats = corpus_stats("phoenix2014t", corpus_root(shared_data, "phoenix2014t"))
    assert [s.sentences for s in stats.splits] == [7096, 519, 642]
    assert stats.train_vocabulary == 1085  # the published figure counts train only
    assert stats.vocabulary == 1115  # dev/test add 30 glosses unseen in train
    assert [s.oov_types for s in stats.splits] == [0, 12, 19]
    assert stats.split("dev").frames == 55775  # frame counts come from the alignment file


def test_csl_daily_published_counts(shared_data: Path) -> None:
    stats = corpus_stats("csl-daily", corpus_root(shared_data, "csl-daily"))
    assert [s.sentences for s in stats.splits] == [18401, 1077, 1176]
    # On this copy every dev/test gloss is also in train: 2000 is both union and train size.
    assert stats.vocabulary == stats.train_vocabulary == 2000
    assert [s.oov_tokens for s in stats.splits] == [0, 0, 0]
    assert stats.split("train").signers == 10


def test_counts_on_a_small_corpus(tmp_path: Path) -> None:
    header = "name\tsigner\tnum_frames\tgloss\ttext"
    files = {
        "train": ["a\t1\t10\tX Y X\tt", "b\t2\t5\tY\tt"],
        "dev": ["c\t1\t7\tX Z Z W\tt"],
        "test": ["d\t3\t3\tY\tt"],
    }
    for split, rows in files.items():
        (tmp_path / f"csl-daily.{split}.tsv").write_text("\n".join([header, *rows]) + "\n", "utf-8")
    stats = corpus_stats("csl-daily", tmp_path)
    train, dev, test = stats.splits
    assert (train.sentences, train.tokens, train.vocabulary, train.signers) == (2, 4, 2, 2)
    assert (dev.tokens, dev.vocabulary, dev.oov_types, dev.oov_tokens) == (4, 3, 2, 3)
    assert (test.oov_types, test.frames) == (0, 3)
    assert (stats.vocabulary, stats.train_vocabulary) == (4, 2)
    only_dev = corpus_stats("csl-daily", tmp_path, splits=("dev",))
    assert [s.split for s in only_dev.splits] == ["dev"] and only_dev.split("dev") == dev
    with pytest.raises(InputError, match="no statistics for split 'test'"):
        only_dev.split("test")
    with pytest.raises(InputError, match="unknown splits \\['valid'\\]"):
        corpus_stats("csl-daily", tmp_path, splits=("valid",))


def test_cli_prints_table_and_writes_json(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = corpus_root(shared_data, "phoenix2014t")
    out = tmp_path / "reports" / "stats.json"
    args = parse(
        "data", "stats", "--corpus", "phoenix2014t", "--root", str(root), "--json", str(out)
    )
    assert args.run(args) == 0
    printed = capsys.readouterr().out
    assert "PHOENIX-2014-T (phoenix2014t)" in printed
    rows = {line.split()[0]: line.split() for line in printed.splitlines()[2:5]}
    assert rows["train"][1:4] == ["7096", "55247", "1085"]
    assert rows["dev"][1] == "519" and rows["test"][1] == "642"
    assert "1115 glosses over train, dev, test, 1085 in train" in printed
    report = json.loads(out.read_text())
    assert report["corpus"] == "phoenix2014t" and report["train_vocabulary"] == 1085
    assert [s["sentences"] for s in report["splits"]] == [7096, 519, 642]


def test_cli_errors(tmp_path: Path) -> None:
    args = parse("data", "stats", "--corpus", "csl-daily", "--root", str(tmp_path))
    with pytest.raises(FormatError, match="unknown CSL-Daily layout: no train annotation file"):
        data_cli.run(args)
    with pytest.raises(SystemExit):
        parse("data", "stats", "--corpus", "phoenix2015", "--root", str(tmp_path))
    with pytest.raises(SystemExit):
        parse("data")  # a nested command is required


def test_cli_lists_every_registered_corpus() -> None:
    from edge_slr.data.corpora import available_corpora

    assert set(data_cli.CORPORA) == set(available_corpora())


def test_cli_defaults_to_the_shared_copy(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus_root(shared_data, "csl-daily")
    args = parse("data", "stats", "--corpus", "csl-daily")
    assert args.run(args) == 0
    assert "18401" in capsys.readouterr().out
