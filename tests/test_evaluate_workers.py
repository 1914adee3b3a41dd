"""`edge-slr evaluate` on the local process pool and on a local Ray (2 CPUs): the same hypotheses,
WER and reports as the single-process evaluation; failed shards are retried, then reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from edge_slr.landmarks.presets import get_preset  # noqa: E402
from edge_slr.training.checkpoint import save_checkpoint  # noqa: E402
from edge_slr.training.evaluate import evaluate_checkpoint  # noqa: E402
from edge_slr.training.evaluate_workers import (  # noqa: E402
    EvaluationError,
    evaluate_checkpoint_on_workers,
    make_shards,
)
from edge_slr.training.models import StudentDims, build_student  # noqa: E402

BATCH = 2  # small batches: the ten sentences make several shards


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(dataset root, student checkpoint): ten SignSynth dev sentences and an untrained student
    (seeded: its hypotheses are arbitrary glosses, but the same in every process)."""
    from edge_slr.data.dataset import LandmarkDataset
    from edge_slr.data.synth.generate import SynthConfig, build_split

    root = tmp_path_factory.mktemp("synth") / "data"
    build_split(SynthConfig(), root, "dev", num_signers=2, limit=5, progress=False)
    vocab = LandmarkDataset(root, "dev").vocabulary
    torch.manual_seed(0)
    dims = StudentDims(num_classes=len(vocab), conv_channels=(8, 8, 16, 16), lstm_hidden=8)
    checkpoint = save_checkpoint(
        root.parent / "student.pt", build_student(dims), vocabulary=vocab,
        preset=get_preset("kdmslrt92"), config={},
    )  # fmt: skip
    return root, Path(checkpoint)


@pytest.fixture(scope="module")
def single(split, tmp_path_factory) -> tuple[object, Path]:
    root, checkpoint = split
    out = tmp_path_factory.mktemp("single")
    result = evaluate_checkpoint(
        checkpoint, root, "dev", beam_width=3, batch_size=BATCH, out_dir=out, progress=False
    )
    assert len(result.hypotheses["beam"]) >= 8
    assert any(result.hypotheses["beam"].values()), "the student recognises nothing to compare"
    return result, out


def _assert_same(result, reference, out: Path, reference_out: Path) -> None:
    assert result.hypotheses == reference.hypotheses  # both decoders, same sentence order
    assert result.greedy.to_dict() == reference.greedy.to_dict()
    assert result.beam.to_dict() == reference.beam.to_dict()
    assert result.loss == pytest.approx(reference.loss, rel=1e-6)
    assert list(result.decoded) == list(reference.decoded)
    for name, decoded in result.decoded.items():
        assert decoded.tokens == reference.decoded[name].tokens
        assert [(g.start, g.end) for g in decoded.glosses] == [
            (g.start, g.end) for g in reference.decoded[name].glosses
        ]
    for name in ("dev.stm", "dev.ctm", "dev.greedy.ctm"):
        assert (out / name).read_text() == (reference_out / name).read_text()
    report, expected = (json.loads((d / "dev.wer.json").read_text()) for d in (out, reference_out))
    assert report["sentences"] == expected["sentences"] and report["beam"] == expected["beam"]


def test_shards_are_whole_evaluation_batches_in_order() -> None:
    lengths = [50, 10, 40, 30, 20, 60, 70]
    shards = make_shards(lengths, batch_size=2, count=3)
    positions = [p for s in shards for p in s.positions]
    assert positions == sorted(range(len(lengths)), key=lambda p: lengths[p])  # batch order
    assert all(len(s.positions) % 2 == 0 for s in shards[:-1]) and len(shards) <= 3
    assert [s.frames for s in shards] == [sum(lengths[p] for p in s.positions) for s in shards]
    assert len(make_shards(lengths, batch_size=16, count=8)) == 1  # one batch: one shard


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_evaluation_on_workers_equals_the_single_process(
    executor: str, split, single, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if executor == "ray":
        request.getfixturevalue("local_ray")  # 2 CPUs
    root, checkpoint = split
    result = evaluate_checkpoint_on_workers(
        checkpoint, root, "dev", executor=executor, workers=2, beam_width=3, batch_size=BATCH,
        out_dir=tmp_path, progress=False,
    )  # fmt: skip
    _assert_same(result, single[0], tmp_path, single[1])


def test_lm_fusion_on_workers_equals_the_single_process(split, tmp_path: Path) -> None:
    from edge_slr.data.dataset import LandmarkDataset
    from edge_slr.decoding.lm import FusedLM, FusionSettings, read_arpa
    from edge_slr.training.lm import train_kneser_ney, write_arpa

    root, checkpoint = split
    sentences = [s.glosses for s in LandmarkDataset(root, "dev").samples]
    lm = read_arpa(write_arpa(train_kneser_ney(sentences, order=2), tmp_path / "lm.arpa"))
    fused = FusedLM(lm, FusionSettings(lm_weight=0.8, insertion_bonus=1.0))
    options = {"beam_width": 3, "batch_size": BATCH, "progress": False, "fused": fused}
    single = evaluate_checkpoint_on_workers(checkpoint, root, "dev", **options)
    pooled = evaluate_checkpoint_on_workers(checkpoint, root, "dev", workers=2, **options)
    plain = evaluate_checkpoint(checkpoint, root, "dev", beam_width=3, batch_size=BATCH)
    assert pooled.hypotheses == single.hypotheses
    assert pooled.beam.to_dict() == single.beam.to_dict()
    assert single.hypotheses["beam"] != plain.hypotheses["beam"], "the LM changed nothing"


def test_a_shard_that_keeps_failing_is_retried_then_reported(split, tmp_path: Path) -> None:
    import shutil

    root = Path(shutil.copytree(split[0], tmp_path / "data"))
    victim = sorted((root / "dev").glob("*.npz"))[0]
    victim.unlink()  # the index still lists it: its shard fails on every worker
    with pytest.raises(EvaluationError, match=r"failed after 2 attempt\(s\)") as caught:
        evaluate_checkpoint_on_workers(
            split[1], root, "dev", executor="local", workers=2, retries=1, batch_size=BATCH,
            progress=False,
        )  # fmt: skip
    assert victim.stem in str(caught.value)


def test_cli_evaluate_on_workers_writes_the_same_report(split, single, tmp_path: Path) -> None:
    from edge_slr.cli.main import main

    root, checkpoint = split
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(root), "--beam", "3"]
    argv += ["--batch-size", str(BATCH), "--no-progress", "-o", str(tmp_path)]
    assert main([*argv, "--workers", "2"]) == 0
    _assert_same_reports(tmp_path, single[1])
    assert main([*argv, "--workers", "0"]) == 2
    assert main([*argv, "--ray-address", "auto"]) == 2


def _assert_same_reports(out: Path, reference_out: Path) -> None:
    report, expected = (json.loads((d / "dev.wer.json").read_text()) for d in (out, reference_out))
    assert report["greedy"] == expected["greedy"] and report["beam"] == expected["beam"]
    assert (out / "dev.greedy.ctm").read_text() == (reference_out / "dev.greedy.ctm").read_text()
