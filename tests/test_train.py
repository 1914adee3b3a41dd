"""Student training: config, data pipeline, a real short training run, checkpoints, resume, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_TRAINING

torch = pytest.importorskip("torch")

from edge_slr.decoding.vocab import Vocabulary  # noqa: E402
from edge_slr.errors import FormatError, InputError  # noqa: E402
from edge_slr.landmarks.presets import get_preset  # noqa: E402
from edge_slr.training.checkpoint import load_checkpoint, load_student, save_checkpoint  # noqa: E402
from edge_slr.training.config import StudentConfig, load_config  # noqa: E402
from edge_slr.training.data import BucketBatchSampler, ctc_min_steps  # noqa: E402
from edge_slr.training.models import StudentDims, build_student  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# -- config ------------------------------------------------------------------------------------


def test_shipped_configs_load() -> None:
    for path in sorted((ROOT / "configs").glob("student-*.toml")):
        config = load_config(path)
        assert config.train.weight_decay == 1e-4 and config.train.lr in (1e-4, 1e-3)
        assert (config.augment.flip_p, config.augment.rotation_p, config.augment.fusion_p) == (
            0.5,
            0.3,
            0.2,
        )
        config.model.dims(num_classes=10, input_dim=276)  # sizes are consistent
    assert load_config(ROOT / "configs" / "student-paper.toml").train.lr == 1e-4
    assert StudentConfig().train.lr == 1e-4  # the paper's optimiser is the default


def test_config_overrides_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[train]\nepochs = 3\n[model]\nkernel_size = 7\n[data]\nroot = "x"\n')
    config = load_config(path, ["train.lr=3e-4", "model.conv_channels=[8,8,16,16]", "data.root=y"])
    assert (config.train.epochs, config.train.lr, config.model.kernel_size) == (3, 3e-4, 7)
    assert config.model.conv_channels == (8, 8, 16, 16) and config.data.root == "y"
    assert StudentConfig.from_dict(config.to_dict()) == config
    with pytest.raises(InputError, match="unknown train option\\(s\\) \\['lrr'\\]"):
        load_config(None, ["train.lrr=1"])
    with pytest.raises(InputError, match="lr: expected float"):
        load_config(None, ["train.lr=fast"])
    with pytest.raises(InputError, match="TABLE.KEY=VALUE"):
        load_config(None, ["epochs"])
    path.write_text("[train\nepochs = 3\n")
    with pytest.raises(FormatError, match="not valid TOML"):
        load_config(path)
    path.write_text("[train]\nepochs = 0\n")
    with pytest.raises(FormatError, match="epochs must be >= 1"):
        load_config(path)


# -- data pipeline -----------------------------------------------------------------------------


def test_ctc_min_steps_counts_repeats() -> None:
    assert ctc_min_steps([]) == 0
    assert ctc_min_steps([3, 4, 5]) == 3
    assert ctc_min_steps([3, 3, 4, 4, 4]) == 8


def test_bucket_sampler_is_deterministic_and_groups_lengths() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(30, 300, size=103)
    sampler = BucketBatchSampler(lengths, 4, bucket_width=5, seed=1)
    sampler.set_epoch(2)
    first = sampler.batches()
    assert first == sampler.batches()
    assert sorted(i for b in first for i in b) == list(range(103))
    sampler.set_epoch(3)
    assert sampler.batches() != first
    spread = np.mean([np.ptp(lengths[b]) for b in first])
    random_spread = np.mean([np.ptp(lengths[rng.permutation(103)[:4]]) for _ in range(50)])
    assert spread < random_spread / 2
    ordered = BucketBatchSampler(lengths, 4, shuffle=False).batches()
    assert [lengths[i] for b in ordered for i in b] == sorted(lengths)


# -- checkpoints -------------------------------------------------------------------------------


def test_checkpoint_round_trip_weights_only(tmp_path: Path) -> None:
    vocab = Vocabulary.from_sentences([["A", "B"], ["C"]])
    preset = get_preset("kdmslrt92")
    dims = StudentDims(num_classes=len(vocab), conv_channels=(8, 8, 16, 16), lstm_hidden=8)
    torch.manual_seed(0)
    model = build_student(dims).eval()
    config = StudentConfig().to_dict()
    path = save_checkpoint(
        tmp_path / "s.pt", model, vocabulary=vocab, preset=preset, config=config, epoch=3
    )
    raw = torch.load(path, weights_only=True)  # plain data only: no pickled classes
    assert raw["format"] == "edge-slr-student" and raw["dims"]["num_classes"] == 4
    loaded, checkpoint = load_student(path)
    assert checkpoint.dims == dims and checkpoint.epoch == 3
    assert checkpoint.vocab() == vocab and checkpoint.feature_preset() == preset
    assert checkpoint.config == config and checkpoint.versions["torch"] == torch.__version__
    x = torch.randn(1, 50, 276)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, model(x).logits)


def test_bad_checkpoints_are_format_errors(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(FormatError, match="weights-only"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(FormatError, match="not an edge-slr student checkpoint"):
        load_checkpoint(other)


# -- a real training run on tiny SignSynth data ------------------------------------------------

TINY = [*TINY_TRAINING, "train.batch_size=1", "train.final_lr_fraction=1.0", "train.beam_width=2"]


@pytest.fixture(scope="module")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six training and two dev/test samples of SignSynth's built-in sentences (a few seconds)."""
    from edge_slr.data.synth.generate import SynthConfig, build_split

    root = tmp_path_factory.mktemp("synth") / "tiny"
    config = SynthConfig()
    build_split(config, root, "train", num_signers=2, limit=3, progress=False)
    build_split(config, root, "dev", num_signers=1, limit=2, progress=False)
    build_split(config, root, "test", num_signers=1, limit=2, progress=False)
    return root


def tiny_config(root: Path, out: Path, *extra: str) -> StudentConfig:
    return load_config(None, [f"data.root={json.dumps(str(root))}", *TINY, *extra]).with_overrides(
        [f"train.out_dir={json.dumps(str(out))}"]
    )


def student_dataset(root: Path, **kwargs):
    from edge_slr.data.dataset import LandmarkDataset
    from edge_slr.training.data import StudentDataset

    source = LandmarkDataset(root, "train")
    dims = StudentDims(num_classes=len(source.vocabulary))
    preset = get_preset("kdmslrt92")
    return StudentDataset(
        source, source.vocabulary, preset, output_length=dims.output_length, **kwargs
    )


def test_augmentation_leaves_labels_and_reduced_points_change_nothing(tiny_synth: Path) -> None:
    from edge_slr.training.augment import AugmentConfig, augment

    plain = student_dataset(tiny_synth)
    augmented = student_dataset(tiny_synth, augment_config=AugmentConfig(flip_p=1.0, fusion_p=1.0))
    for i in range(len(plain)):
        a, b = plain[i], augmented[i]
        assert a.id == b.id and a.glosses == b.glosses
        np.testing.assert_array_equal(a.targets, b.targets)
        assert b.features.shape[1] == a.features.shape[1] == 276
        assert b.features.shape[0] < a.features.shape[0]  # fusion shortened it
    # Augmenting the reduced point set gives the features of augmenting all 543 points.
    recipe = AugmentConfig(flip_p=1.0, rotation_p=1.0, fusion_p=1.0, scale_p=1.0)
    reduced = student_dataset(tiny_synth, augment_config=recipe, seed=5)
    reduced.set_epoch(2)
    full = reduced.source[reduced.indices[1]].landmarks.data
    expected = reduced.preset.features(augment(full, recipe, np.random.default_rng([5, 2, 1])))
    np.testing.assert_allclose(reduced[1].features, expected, atol=1e-4)


def test_short_training_run_learns_and_writes_everything(tiny_synth: Path, tmp_path: Path) -> None:
    from edge_slr.training.train import train

    config = tiny_config(tiny_synth, tmp_path / "run", "train.epochs=6")
    result = train(config)
    losses = [row["train_loss"] for row in result.history]
    assert len(losses) == 6 and losses[-1] < 0.5 * losses[0]
    for name in ("best.pt", "last.pt", "log.csv", "history.json", "curves.png", "results.json"):
        assert (tmp_path / "run" / name).is_file(), name
    assert (tmp_path / "run" / "log.csv").read_text().count("\n") == 7  # header + 6 epochs
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(results) >= {"dev", "test", "best_epoch", "train_sequences_per_s"}
    assert results["test"]["wer_beam"] >= 0.0 and results["test"]["sentences"] == 2
    best = load_checkpoint(result.best_checkpoint)
    assert best.epoch == result.best_epoch and best.training is None
    assert best.config["train"]["epochs"] == 6 and best.preset["name"] == "kdmslrt92"


def test_resume_continues_from_the_saved_epoch(tiny_synth: Path, tmp_path: Path) -> None:
    from edge_slr.training.train import train

    straight = train(
        tiny_config(tiny_synth, tmp_path / "a", "train.epochs=2", "augment.rotation_p=1")
    )
    config = tiny_config(tiny_synth, tmp_path / "b", "train.epochs=2", "augment.rotation_p=1")
    first = train(config, stop_after=1)
    assert [row["epoch"] for row in first.history] == [1] and first.results == {}
    assert load_checkpoint(first.last_checkpoint).epoch == 1
    resumed = train(config, resume=True)
    assert [row["epoch"] for row in resumed.history] == [1, 2]
    a = load_checkpoint(straight.last_checkpoint).state_dict
    b = load_checkpoint(resumed.last_checkpoint).state_dict
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert resumed.history[1]["train_loss"] == pytest.approx(straight.history[1]["train_loss"])
    with pytest.raises(InputError, match="cannot resume"):
        train(tiny_config(tiny_synth, tmp_path / "c"), resume=True)


def test_cli_train_and_evaluate(tiny_synth: Path, tmp_path: Path) -> None:
    import argparse

    from edge_slr.cli import evaluate as evaluate_cli
    from edge_slr.cli import train_recognizer
    from edge_slr.metrics import read_ctm

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    train_recognizer.add_parser(sub)
    evaluate_cli.add_parser(sub)
    config = tmp_path / "tiny.toml"
    config.write_text(f'[data]\nroot = "{tiny_synth}"\n[train]\nepochs = 2\n')
    args = parser.parse_args(
        ["recognizer", "--config", str(config), "--no-progress"]
        + [f"--set={item}" for item in TINY + [f"train.out_dir={tmp_path / 'run'}"]]
    )
    assert args.run(args) == 0
    checkpoint = tmp_path / "run" / "best.pt"
    out = tmp_path / "eval"
    args = parser.parse_args(
        ["evaluate", "--checkpoint", str(checkpoint), "--data", str(tiny_synth), "--split",
         "test", "--beam", "3", "-o", str(out), "--no-progress"]
    )  # fmt: skip
    assert args.run(args) == 0
    report = json.loads((out / "test.wer.json").read_text())
    assert report["decoder"] == "beam" and report["corpus"] == "plain"
    assert report["beam"]["reference_words"] == sum(
        len(s["reference"]) for s in report["sentences"]
    )
    assert {e.id for e in read_ctm(out / "test.ctm")} <= {s["id"] for s in report["sentences"]}
    args = parser.parse_args(
        ["evaluate", "--checkpoint", str(tmp_path / "nope.pt"), "--data", str(tiny_synth)]
    )
    with pytest.raises(FormatError, match="does not exist"):
        args.run(args)


def test_evaluation_scores_too_short_sentences_as_empty(tiny_synth: Path, tmp_path: Path) -> None:
    import shutil

    from edge_slr.data.dataset import DatasetWriter, IndexEntry, LandmarkDataset
    from edge_slr.landmarks.sequence import LandmarkSequence
    from edge_slr.training.evaluate import evaluate_checkpoint

    root = tmp_path / "short"
    root.mkdir()
    shutil.copy(tiny_synth / "vocabulary.json", root / "vocabulary.json")
    source = LandmarkDataset(tiny_synth, "test")
    writer = DatasetWriter(root, {"name": "short-test", "corpus": "phoenix2014t"})
    writer.start_split("dev")
    entries = []
    for i, frames in enumerate((None, 20)):  # a whole sentence and a 20-frame clip (< 28)
        item = source[i]
        data = item.landmarks.data if frames is None else item.landmarks.data[:frames]
        writer.write_sample("dev", f"clip{i}", LandmarkSequence(data, item.landmarks.fps))
        entries.append(IndexEntry(f"clip{i}", item.signer, len(data), item.glosses))
    writer.finish_split("dev", entries, {})
    vocab = source.vocabulary
    dims = StudentDims(num_classes=len(vocab), conv_channels=(8, 8, 16, 16), lstm_hidden=8)
    checkpoint = save_checkpoint(
        tmp_path / "s.pt", build_student(dims), vocabulary=vocab, preset=get_preset("kdmslrt92"),
        config={},
    )  # fmt: skip
    result = evaluate_checkpoint(
        checkpoint, root, "dev", beam_width=0, out_dir=tmp_path / "out", progress=False
    )
    sentences = {s.id: s for s in result.greedy.sentences}
    assert set(sentences) == {"clip0", "clip1"} and result.greedy.corpus == "phoenix2014t"
    # nothing recognised: the empty hypothesis ([EMPTY]) makes every reference gloss an error
    assert sentences["clip1"].raw_hypothesis == ()
    assert sentences["clip1"].errors == len(entries[1].glosses)
    report = json.loads((tmp_path / "out" / "dev.wer.json").read_text())
    assert report["skipped_too_short"] == ["clip1"]
    assert report["greedy"]["reference_words"] == sum(len(e.glosses) for e in entries)
