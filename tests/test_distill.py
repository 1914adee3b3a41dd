"""The three KD losses: KL at a temperature, switches and weights, teacher/student alignment."""

from __future__ import annotations

import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edge_slr.errors import InputError  # noqa: E402
from edge_slr.training.distill import (  # noqa: E402
    DistillConfig,
    Distiller,
    align_steps,
    kd_kl,
)
from edge_slr.training.models import StudentDims, build_student  # noqa: E402
from edge_slr.training.teacher.cache import TeacherLogits  # noqa: E402


def logits(*shape: int, seed: int = 0, scale: float = 3.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# -- the KL term --------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.5, 1.0, 8.0])
@pytest.mark.parametrize("include_blank", [False, True])
def test_kd_is_zero_for_identical_outputs_and_positive_otherwise(
    temperature: float, include_blank: bool
) -> None:
    a, b = logits(2, 6, 9, seed=1), logits(2, 6, 9, seed=2)
    kw = dict(temperature=temperature, include_blank=include_blank)
    assert float(kd_kl(a, a.clone(), **kw)) == pytest.approx(0.0, abs=1e-6)
    assert float(kd_kl(a, a + 4.0, **kw)) == pytest.approx(0.0, abs=1e-5)  # softmax shift-invariant
    assert float(kd_kl(a, b, **kw)) > 0.01


def test_kd_matches_the_definition() -> None:
    s, t = logits(1, 3, 5, seed=3), logits(1, 3, 5, seed=4)
    tau = 2.0
    p_t = torch.softmax(t / tau, -1)
    expected = (p_t * (p_t.log() - torch.log_softmax(s / tau, -1))).sum(-1).mean() * tau**2
    got = kd_kl(s, t, temperature=tau, include_blank=True)
    assert float(got) == pytest.approx(float(expected), rel=1e-5)


def test_temperature_softens_and_tends_to_logit_matching() -> None:
    s, t = logits(1, 4, 7, seed=5), logits(1, 4, 7, seed=6)
    plain = [float(kd_kl(s, t, temperature=tau, include_blank=True) / tau**2) for tau in (1, 4, 16)]
    assert plain[0] > plain[1] > plain[2]  # softer distributions are closer
    # Hinton et al.: for a large temperature, tau^2 * KL -> half the variance of the logit gap.
    gap = s - t
    limit = 0.5 * gap.var(dim=-1, unbiased=False).mean()
    assert float(kd_kl(s, t, temperature=1000.0, include_blank=True)) == pytest.approx(
        float(limit), rel=1e-2
    )


def test_kd_ignores_padding_and_the_blank_when_asked() -> None:
    s, t = logits(2, 5, 6, seed=7), logits(2, 5, 6, seed=8)
    lengths = torch.tensor([5, 3])
    base = kd_kl(s, t, lengths)
    s2, t2 = s.clone(), t.clone()
    s2[1, 3:] += logits(2, 6, seed=9)  # only padded steps change
    t2[1, 3:] -= 5.0
    assert float(kd_kl(s2, t2, lengths)) == pytest.approx(float(base), rel=1e-6)
    t3 = t.clone()
    t3[..., 0] += 10.0  # the blank class only
    assert float(kd_kl(s, t3, lengths)) == pytest.approx(float(base), rel=1e-6)
    assert float(kd_kl(s, t3, lengths, include_blank=True)) != pytest.approx(
        float(kd_kl(s, t, lengths, include_blank=True)), rel=1e-3
    )


def test_kd_gradients_reach_the_student_only() -> None:
    s = logits(1, 4, 6, seed=10).requires_grad_()
    t = logits(1, 4, 6, seed=11).requires_grad_()
    kd_kl(s, t).backward()
    assert s.grad is not None and float(s.grad.abs().sum()) > 0
    assert t.grad is None


def test_kd_refuses_bad_shapes_and_temperatures() -> None:
    with pytest.raises(InputError, match="one \\(B, T, V\\) shape"):
        kd_kl(logits(1, 4, 6), logits(1, 5, 6))
    with pytest.raises(InputError, match="temperature"):
        kd_kl(logits(1, 4, 6), logits(1, 4, 6), temperature=0.0)


# -- length alignment ---------------------------------------------------------------------------


def test_align_steps_policies() -> None:
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    assert align_steps(x, 6) is not None and np.array_equal(align_steps(x, 6), x)
    up = align_steps(x, 11)
    assert up.shape == (11, 2)
    np.testing.assert_allclose(up[[0, -1]], x[[0, -1]])  # ends stay put
    np.testing.assert_allclose(up[1], (x[0] + x[1]) / 2)  # linear in between
    down = align_steps(x, 3)
    np.testing.assert_allclose(down, np.stack([x[0], (x[2] + x[3]) / 2, x[5]]))  # at 0, 2.5, 5
    assert np.array_equal(align_steps(x, 4, "crop"), x[:4])
    assert np.array_equal(align_steps(x, 8, "crop"), x)  # shorter teacher: the caller masks
    with pytest.raises(InputError, match="teacher has 6 output steps, the student 5"):
        align_steps(x, 5, "error")
    with pytest.raises(InputError, match="at least 1"):
        align_steps(x, 0)


# -- switches, weights, the distiller -----------------------------------------------------------


def test_config_switches_weights_and_validation() -> None:
    assert not DistillConfig().enabled
    only_self = DistillConfig(self_kd=True)
    assert only_self.enabled and not only_self.needs_teacher
    assert only_self.weights() == {"self_kd": 25.0}
    paper = DistillConfig.paper("teacher.pt")
    assert paper.weights() == {"conv_kd": 25.0, "lstm_kd": 25.0, "self_kd": 25.0}
    with pytest.raises(InputError, match="need a teacher"):
        DistillConfig(conv_kd=True)
    with pytest.raises(InputError, match="length_policy"):
        DistillConfig(length_policy="stretch")
    with pytest.raises(InputError, match="temperature"):
        DistillConfig(temperature=-1.0)


@pytest.fixture()
def student_and_batch():
    torch.manual_seed(0)
    dims = StudentDims(num_classes=6, conv_channels=(8, 8, 16, 16), lstm_hidden=8, dropout=0.0)
    model = build_student(dims).eval()
    lengths = torch.tensor([40, 33])
    features = torch.randn(2, 40, 276)
    return model, features, lengths, ["a", "b"]


ONE_GLOSS = {"a": 1, "b": 1}  # gloss counts that leave the terms unscaled


def make_distiller(config: DistillConfig, teacher=None, counts=ONE_GLOSS) -> Distiller:
    return Distiller(config, teacher, gloss_counts=counts)


def teacher_from(out, scale: float = 1.0, shift: int = 0) -> dict[str, TeacherLogits]:
    """Teacher outputs made from a student output (optionally changed)."""
    table = {}
    for row, name in enumerate(["a", "b"]):
        steps = int(out.lengths[row]) + shift
        conv = out.aux_logits[row, :steps].detach().numpy() * scale
        seq = out.logits[row, :steps].detach().numpy() * scale
        table[name] = TeacherLogits(conv.astype(np.float16), seq.astype(np.float16))
    return table


def test_distiller_terms_follow_the_switches(student_and_batch) -> None:
    model, features, lengths, ids = student_and_batch
    out = model(features, lengths)
    teacher = teacher_from(out)
    combos = {
        (True, False, False): {"conv_kd"},
        (False, True, False): {"lstm_kd"},
        (False, False, True): {"self_kd"},
        (True, True, True): {"conv_kd", "lstm_kd", "self_kd"},
    }
    for (conv, lstm, self_), expected in combos.items():
        config = DistillConfig(teacher="t", conv_kd=conv, lstm_kd=lstm, self_kd=self_)
        terms = make_distiller(config, teacher).losses(out, ids)
        assert set(terms) == expected
    # The teacher *is* the student here: teacher terms vanish, self-KD does not.
    terms = make_distiller(DistillConfig.paper("t"), teacher).losses(out, ids)
    assert float(terms["conv_kd"].detach()) == pytest.approx(0.0, abs=1e-4)
    assert float(terms["lstm_kd"].detach()) == pytest.approx(0.0, abs=1e-4)
    assert float(terms["self_kd"].detach()) > 0
    other = make_distiller(DistillConfig.paper("t"), teacher_from(out, scale=-1.0)).losses(out, ids)
    assert float(other["conv_kd"].detach()) > 0.01 and float(other["lstm_kd"].detach()) > 0.01
    weighted = make_distiller(DistillConfig.paper("t", lstm_kd_weight=2.0), teacher).weighted(other)
    expected = 25.0 * other["conv_kd"] + 2.0 * other["lstm_kd"] + 25.0 * other["self_kd"]
    assert float(weighted.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)


def test_distiller_gradients_and_self_kd_target_is_detached(student_and_batch) -> None:
    model, features, lengths, ids = student_and_batch
    model.train()
    out = model(features, lengths)
    terms = make_distiller(DistillConfig(self_kd=True)).losses(out, ids)
    terms["self_kd"].backward()
    # Only the conv head learns from self-KD: the BiLSTM (the target side) gets no gradient.
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in model.lstm.parameters())
    assert float(model.conv[0].weight.grad.abs().sum()) > 0


def test_distiller_length_mismatch_handling(student_and_batch, caplog) -> None:
    model, features, lengths, ids = student_and_batch
    out = model(features, lengths)
    longer = teacher_from(out, shift=0)
    for name, entry in list(longer.items()):  # a teacher 3 steps longer (e.g. unfused frames)
        longer[name] = TeacherLogits(
            np.concatenate([entry.conv, entry.conv[-3:]]),
            np.concatenate([entry.seq, entry.seq[-3:]]),
        )
    with caplog.at_level(logging.WARNING, logger="edge_slr.training.distill"):
        distiller = make_distiller(DistillConfig.paper("t"), longer)
        terms = distiller.losses(out, ids)
    assert all(torch.isfinite(v) for v in terms.values())
    assert distiller.pop_stats() == {"samples": 2, "mismatched": 2}
    assert "teacher has" in caplog.text and "resampling" in caplog.text
    cropped = make_distiller(DistillConfig.paper("t", length_policy="crop"), longer).losses(
        out, ids
    )
    assert float(cropped["lstm_kd"].detach()) == pytest.approx(
        0.0, abs=1e-4
    )  # the same first steps
    with pytest.raises(InputError, match="length_policy 'error'"):
        make_distiller(DistillConfig.paper("t", length_policy="error"), longer).losses(out, ids)
    off_by_one = teacher_from(out, shift=-1)
    tolerant = make_distiller(DistillConfig.paper("t"), off_by_one)
    tolerant.losses(out, ids)
    assert tolerant.pop_stats()["mismatched"] == 0  # within max_length_mismatch


def test_distiller_errors(student_and_batch) -> None:
    model, features, lengths, ids = student_and_batch
    out = model(features, lengths)
    with pytest.raises(InputError, match="no teacher outputs"):
        make_distiller(DistillConfig.paper("t"))
    with pytest.raises(InputError, match="no sample 'b'"):
        make_distiller(DistillConfig.paper("t"), {"a": teacher_from(out)["a"]}).losses(out, ids)
    with pytest.raises(InputError, match="output lengths"):
        make_distiller(DistillConfig(self_kd=True)).losses(model(features), ids)


def test_kd_weight_is_relative_to_a_per_sentence_ctc(student_and_batch) -> None:
    """The paper's CTC:KD = 1:25 (VAC, CorrNet) is against CTCLoss(reduction='none').mean(), the
    sentence NLL; the loop's CTC is per gloss (reduction='mean'). Loop CTC + weighted KD must be
    VAC's loss / L, else KD is L times too heavy (the bug that made self-KD starve CTC)."""
    model, features, lengths, ids = student_and_batch
    model.train()
    out = model(features, lengths)
    glosses = 4
    targets = torch.tensor([1, 2, 3, 4, 2, 3, 4, 5])
    target_lengths = torch.tensor([glosses, glosses])
    log_probs = out.logits.log_softmax(-1).transpose(0, 1)
    args = (log_probs, targets, out.lengths, target_lengths)
    loop_ctc = torch.nn.functional.ctc_loss(*args, reduction="mean", zero_infinity=True)
    vac_ctc = torch.nn.functional.ctc_loss(*args, reduction="none", zero_infinity=True).mean()
    assert float(vac_ctc.detach()) == pytest.approx(glosses * float(loop_ctc.detach()), rel=1e-5)
    config = DistillConfig(self_kd=True)
    kd = make_distiller(config, counts={"a": glosses, "b": glosses})
    ours = loop_ctc + kd.weighted(kd.losses(out, ids))
    vac_kd = 25.0 * kd_kl(out.aux_logits, out.logits, out.lengths, temperature=8.0)
    assert float(ours.detach()) == pytest.approx(
        float((vac_ctc + vac_kd).detach()) / glosses, rel=1e-5
    )
    raw = Distiller(DistillConfig(self_kd=True, per_gloss_units=False)).losses(out, ids)
    assert float(raw["self_kd"].detach()) == pytest.approx(float(vac_kd.detach()) / 25.0, rel=1e-5)
    with pytest.raises(InputError, match="gloss count"):
        Distiller(config)
    with pytest.raises(InputError, match="no gloss count for sample 'b'"):
        make_distiller(config, counts={"a": 2}).losses(out, ids)


# -- the student's training loop with a teacher -------------------------------------------------


@pytest.fixture(scope="module")
def video_data(tmp_path_factory: pytest.TempPathFactory):
    """Two train and one dev SignSynth samples (built-in sentences) with 32 px video."""
    from edge_slr.data.synth.generate import SynthConfig, build_split

    root = tmp_path_factory.mktemp("kd") / "tiny"
    config = SynthConfig(frame_size=32)
    build_split(config, root, "train", num_signers=1, limit=2, frames=True, progress=False)
    build_split(config, root, "dev", num_signers=1, limit=1, frames=True, progress=False)
    return root


def test_train_recognizer_with_a_teacher_checkpoint(video_data, tmp_path) -> None:
    import argparse
    import json

    from edge_slr.cli import train_recognizer
    from edge_slr.decoding.vocab import Vocabulary
    from edge_slr.training.teacher.checkpoint import save_teacher
    from edge_slr.training.teacher.corrnet import TeacherDims, build_teacher

    vocab = Vocabulary.load(video_data / "vocabulary.json")
    torch.manual_seed(0)
    teacher = build_teacher(TeacherDims(len(vocab), input_size=32, width=0.125, hidden=16))
    teacher_path = save_teacher(tmp_path / "teacher.pt", teacher, vocabulary=vocab, config={})
    parser = argparse.ArgumentParser()
    train_recognizer.add_parser(parser.add_subparsers())
    sizes = ["model.conv_channels=[8,8,16,16]", "model.lstm_hidden=8", "data.test_split="]
    settings = [f"data.root={video_data}", f"train.out_dir={tmp_path / 'run'}", "train.epochs=1",
                "train.beam_width=0", "augment.flip_p=0", "augment.rotation_p=0",
                "augment.fusion_p=0", "train.num_threads=1", *sizes]  # fmt: skip
    argv = ["recognizer", "--teacher", str(teacher_path), "--no-progress"]
    args = parser.parse_args(argv + [x for s in settings for x in ("--set", s)])
    assert args.run(args) == 0
    run = tmp_path / "run"
    assert (run / "teacher-cache" / "cache.json").is_file()  # teacher outputs computed once
    row = json.loads((run / "history.json").read_text())[0]
    assert row["train_conv_kd"] > 0 and row["train_lstm_kd"] > 0 and row["train_self_kd"] > 0
    assert row["kd_length_mismatches"] == 0  # the teacher has the student's time axis
    config = json.loads((run / "config.json").read_text())["distill"]
    assert config["teacher"] == str(teacher_path) and config["conv_kd"] and config["self_kd"]
