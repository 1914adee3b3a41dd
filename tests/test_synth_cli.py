"""`edge-slr data synth` on tiny runs: files, determinism, resumption, workers, corpus input."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from edge_slr.cli import synth as synth_cli
from edge_slr.data.dataset import LandmarkDataset
from edge_slr.errors import InputError
from edge_slr.landmarks.io import load_landmarks


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    synth_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["synth", "--no-progress", *argv])
    return args.run(args)


def files(root) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_tiny_run_builds_a_signer_independent_dataset(tmp_path, capsys):
    out = tmp_path / "ds"
    assert (
        run("--out", str(out), "--limit", "2", "--num-signers", "2", "--split", "train", "test")
        == 0
    )
    assert "train: 4 samples, 2 signers" in capsys.readouterr().out
    train, test = LandmarkDataset(out, "train"), LandmarkDataset(out, "test")
    assert len(train) == 4 and len(test) == 4
    assert not set(train.signers) & set(test.signers)
    item = train[0]
    assert item.landmarks.data.shape[1:] == (543, 4)
    assert item.glosses == tuple(item.landmarks.metadata["glosses"])
    assert all(g in train.vocabulary for e in test.samples for g in e.glosses)
    description = train.description
    assert description["generator"]["corpus"] == "builtin"
    assert description["splits"]["test"]["signers"] == ["synth-test-00", "synth-test-01"]


def test_same_arguments_give_byte_identical_datasets_and_resume_rewrites_nothing(tmp_path):
    args = ("--limit", "2", "--num-signers", "2", "--split", "dev", "--signers-per-sentence", "1")
    a, b = tmp_path / "a", tmp_path / "b"
    run("--out", str(a), *args)
    run("--out", str(b), *args)
    assert files(a) == files(b)
    assert len(LandmarkDataset(a, "dev")) == 2  # one signer per sentence, rotating
    assert LandmarkDataset(a, "dev").signers == ("synth-dev-00", "synth-dev-01")
    stamps = {p: p.stat().st_mtime_ns for p in (a / "dev").glob("*.npz")}
    victim = sorted(stamps)[0]
    victim.unlink()
    run("--out", str(a), *args)
    assert files(a) == files(b)  # the deleted sample is made again, identical
    for path, stamp in stamps.items():
        if path != victim:
            assert path.stat().st_mtime_ns == stamp  # complete samples were not rewritten
    run("--out", str(tmp_path / "c"), *args, "--seed", "1")
    assert files(tmp_path / "c") != files(a)


def test_worker_processes_give_the_same_bytes(tmp_path):
    args = ("--limit", "3", "--num-signers", "2", "--split", "test")
    run("--out", str(tmp_path / "one"), *args)
    run("--out", str(tmp_path / "two"), *args, "--workers", "2")
    assert files(tmp_path / "one") == files(tmp_path / "two")


def test_frames_and_pose_files_on_request(tmp_path):
    pytest.importorskip("cv2")
    pytest.importorskip("pose_format")
    out = tmp_path / "ds"
    run("--out", str(out), "--limit", "1", "--num-signers", "1", "--split", "train",
        "--frames", "--frame-size", "48", "--pose")  # fmt: skip
    data = LandmarkDataset(out, "train")
    frames = data.load_frames(0)
    assert frames.shape == (data.samples[0].num_frames, 48, 48, 3) and frames.std() > 10
    pose = load_landmarks(out / "train" / f"{data.samples[0].id}.pose")
    np.testing.assert_allclose(pose.coordinates, data[0].landmarks.coordinates, atol=1e-4)
    # Asking for frames later on a dataset made without them makes them (resume by file).
    run("--out", str(tmp_path / "plain"), "--limit", "1", "--num-signers", "1", "--split", "train")
    run("--out", str(tmp_path / "plain"), "--limit", "1", "--num-signers", "1", "--split", "train",
        "--frames")  # fmt: skip
    assert LandmarkDataset(tmp_path / "plain", "train").has_frames(0)


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="--num-signers must be a positive integer, got 0"):
        run("--out", str(tmp_path / "x"), "--num-signers", "0")
    with pytest.raises(InputError, match="between 1 and the number of signers \\(2\\), got 3"):
        run(
            "--out",
            str(tmp_path / "x"),
            "--num-signers",
            "2",
            "--signers-per-sentence",
            "3",
            "--limit",
            "1",
        )
    run("--out", str(tmp_path / "y"), "--limit", "1", "--num-signers", "1", "--split", "dev")
    with pytest.raises(InputError, match="already holds a different dataset"):
        run(
            "--out",
            str(tmp_path / "y"),
            "--limit",
            "1",
            "--num-signers",
            "1",
            "--split",
            "dev",
            "--difficulty",
            "hard",
        )


def test_real_corpus_sentences_and_splits(tmp_path, shared_data):
    if not (shared_data / "phoenix2014t").is_dir():
        pytest.skip("PHOENIX-2014-T annotations are absent")
    out = tmp_path / "ds"
    run(
        "--out",
        str(out),
        "--corpus",
        "phoenix2014t",
        "--split",
        "dev",
        "--limit",
        "2",
        "--num-signers",
        "1",
    )
    data = LandmarkDataset(out, "dev")
    from edge_slr.data.corpora import load_corpus

    real = load_corpus("phoenix2014t", shared_data / "phoenix2014t", "dev")[:2]
    assert [e.glosses for e in data.samples] == [s.glosses for s in real]
    assert [e.id.split("__")[0] for e in data.samples] == [s.id for s in real]
    assert len(data.vocabulary) == 1086  # blank + the 1085 train glosses of PHOENIX-2014-T
    assert data.description["generator"]["corpus"] == "phoenix2014t"
