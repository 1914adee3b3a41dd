"""`edge-slr train lm` and `edge-slr evaluate --lm / --tune-lm` on real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_slr.cli.main import main
from edge_slr.decoding.lm import FusionSettings, read_arpa, read_fusion_settings
from edge_slr.training.lm import train_kneser_ney, write_arpa


@pytest.mark.shared_data
def test_train_lm_command(shared_data: Path, tmp_path: Path, capsys) -> None:
    root = shared_data / "phoenix2014"
    if not root.is_dir():
        pytest.skip(f"phoenix2014 is absent from {shared_data}")
    out = tmp_path / "lm"
    assert (
        main(
            [
                "train",
                "lm",
                "--corpus",
                "phoenix2014",
                "--root",
                str(root),
                "--order",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "3-gram LM of phoenix2014 train (5672 sentences)" in capsys.readouterr().out
    lm = read_arpa(out / "lm.arpa")
    description = json.loads((out / "lm.arpa.json").read_text())
    assert lm.order == 3 and description["ngrams"][0] == len(lm.words)
    assert description["corpus"] == "phoenix2014" and description["split"] == "train"


def test_train_lm_needs_a_corpus_folder(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "none"
    command = [
        "train",
        "lm",
        "--corpus",
        "csl-daily",
        "--root",
        str(missing),
        "--out",
        str(tmp_path),
    ]
    assert main(command) == 2
    assert f"{missing}: CSL-Daily root folder does not exist" in capsys.readouterr().err


def tiny_lm(tiny_student, folder: Path) -> Path:
    """A trigram LM of the tiny dataset's train sentences."""
    from edge_slr.data.dataset import LandmarkDataset

    train = LandmarkDataset(tiny_student.data, "train")
    sentences = [tuple(entry.glosses) for entry in train.samples]
    return write_arpa(train_kneser_ney(sentences, 3), folder / "lm.arpa")


def test_evaluate_tunes_the_lm_on_dev(tiny_student, tmp_path: Path, capsys) -> None:
    arpa = tiny_lm(tiny_student, tmp_path)
    common = [
        "evaluate",
        "--checkpoint",
        str(tiny_student.checkpoint),
        "--data",
        str(tiny_student.data),
        "--split",
        "dev",
        "--beam",
        "4",
        "--no-progress",
    ]
    assert main([*common, "-o", str(tmp_path / "plain")]) == 0
    plain = json.loads((tmp_path / "plain" / "dev.wer.json").read_text())["beam"]["wer"]
    capsys.readouterr()
    assert main([*common, "--lm", str(arpa), "--tune-lm", "dev", "-o", str(tmp_path / "lm")]) == 0
    printed = capsys.readouterr().out
    assert "tuned on dev (" in printed and "beam 4 + LM" in printed
    tuned = read_fusion_settings(arpa)
    assert isinstance(tuned, FusionSettings)
    fusion = json.loads((tmp_path / "lm.arpa.json").read_text())["fusion"]
    assert fusion["tuned_on"]["split"] == "dev" and len(fusion["trials"]) >= 2
    assert min(t["wer"] for t in fusion["trials"]) <= plain  # the grid holds the plain beam
    fused = json.loads((tmp_path / "lm" / "dev.wer.json").read_text())["beam"]["wer"]
    assert fused == pytest.approx(min(t["wer"] for t in fusion["trials"]))
    # the stored weights are used when none are given; explicit weights win
    assert main([*common, "--lm", str(arpa)]) == 0
    assert f"weight {tuned.lm_weight}, insertion bonus {tuned.insertion_bonus}" in (
        capsys.readouterr().out
    )
    assert main([*common, "--lm", str(arpa), "--lm-weight", "0.25"]) == 0
    assert f"weight 0.25, insertion bonus {tuned.insertion_bonus}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--lm-weight", "0.5"], "--lm-weight needs --lm FILE"),
        (["--tune-lm", "dev"], "--tune-lm needs --lm FILE"),
        (["--lm", "LM", "--beam", "0"], "--beam must be >= 1, got 0"),
        (["--lm", "LM", "--tune-lm", "dev", "--lm-weight", "1"], "give one or the other"),
        (["--lm", "LM"], "holds no tuned weights; pass --lm-weight"),
    ],
)
def test_evaluate_lm_bad_options(tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    arpa = write_arpa(train_kneser_ney([("A", "B"), ("B",)], 2), tmp_path / "lm.arpa")
    extra = [str(arpa) if e == "LM" else e for e in extra]
    command = ["evaluate", "--checkpoint", str(tmp_path / "x.pt"), "--data", str(tmp_path)]
    assert main([*command, *extra]) == 2
    assert message in capsys.readouterr().err
