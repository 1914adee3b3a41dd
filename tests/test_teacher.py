"""The CorrNet-style video teacher: time axis, modules, loss, checkpoints, output cache, training."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edge_slr.errors import FormatError, InputError  # noqa: E402
from edge_slr.training.models import StudentDims, build_student  # noqa: E402
from edge_slr.training.teacher.cache import (  # noqa: E402
    TeacherCache,
    build_cache,
    dataset_fingerprint,
    teacher_outputs,
)
from edge_slr.training.teacher.checkpoint import (  # noqa: E402
    load_teacher,
    load_teacher_checkpoint,
    save_teacher,
)
from edge_slr.training.teacher.config import load_teacher_config  # noqa: E402
from edge_slr.training.teacher.correlation import (  # noqa: E402
    build_correlation_block,
    neighbour_index,
)
from edge_slr.training.teacher.corrnet import (  # noqa: E402
    TeacherDims,
    build_teacher,
    corrnet_loss,
    edge_trim_for,
)
from edge_slr.training.teacher.data import VideoDataset, collate_video, resize_frames  # noqa: E402
from edge_slr.training.teacher.resnet import (  # noqa: E402
    build_resnet18,
    load_backbone_weights,
    stage_channels,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(input_size=32, width=0.125, hidden=16, dropout=0.0)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models on a shared CPU: one thread avoids oversubscription (much faster here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_teacher(num_classes: int = 7, **overrides: object):
    torch.manual_seed(0)
    return build_teacher(TeacherDims(num_classes=num_classes, **(TINY | overrides)))


def random_frames(lengths: list[int], size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (len(lengths), max(lengths), size, size, 3), generator=g).to(
        torch.uint8
    )


# -- time axis ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", [3, 5, 7, 9])
def test_output_lengths_match_the_student_for_every_length(kernel: int) -> None:
    student = StudentDims(num_classes=5, kernel_size=kernel)
    teacher = TeacherDims(num_classes=5, edge_trim=edge_trim_for(kernel))
    assert teacher.min_input_length == student.min_input_length
    for frames in range(student.min_input_length, 400):
        assert teacher.output_length(frames) == student.output_length(frames), frames
    same_s = StudentDims(num_classes=5, padding="same")
    same_t = TeacherDims(num_classes=5, temporal_padding="same", edge_trim=edge_trim_for(5, "same"))
    assert all(same_t.output_length(t) == same_s.output_length(t) for t in range(28, 300))


def test_model_outputs_align_with_the_student_model() -> None:
    student = build_student(StudentDims(num_classes=7, conv_channels=(8, 8, 16, 16), lstm_hidden=8))
    teacher = tiny_teacher().eval()
    lengths = [28, 29, 30, 31, 45, 61]
    with torch.no_grad():
        out = teacher(random_frames(lengths), torch.tensor(lengths))
        s_out = student.eval()(torch.zeros(len(lengths), max(lengths), 276), torch.tensor(lengths))
    assert out.logits.shape == out.conv_logits.shape == s_out.logits.shape
    assert out.lengths.tolist() == s_out.lengths.tolist()
    assert out.lengths.tolist() == [teacher.dims.output_length(t) for t in lengths]


def test_bad_inputs_and_dims_are_refused() -> None:
    teacher = tiny_teacher()
    with pytest.raises(InputError, match="shorter than the teacher's receptive field"):
        teacher(random_frames([27]), torch.tensor([27]))
    with pytest.raises(InputError, match="teacher input must be frames"):
        teacher(random_frames([40], size=48), torch.tensor([40]))
    with pytest.raises(InputError, match="lengths must be"):
        teacher(random_frames([40]), torch.tensor([41]))
    with pytest.raises(InputError, match="corr_stages"):
        TeacherDims(num_classes=5, corr_stages=(0, 2))
    with pytest.raises(InputError, match="same"):
        TeacherDims(num_classes=5, temporal_padding="same")  # edge_trim 2 makes no sense there
    with pytest.raises(InputError, match="width multiplier"):
        TeacherDims(num_classes=5, width=0.0)
    with pytest.raises(InputError, match="kernel below 3"):
        edge_trim_for(1)


# -- modules ------------------------------------------------------------------------------------


def test_neighbour_index_stays_inside_each_sequence() -> None:
    lengths = torch.tensor([3, 1, 2])
    assert neighbour_index(torch, lengths, 1).tolist() == [1, 2, 2, 3, 5, 5]
    assert neighbour_index(torch, lengths, -1).tolist() == [0, 0, 1, 3, 4, 4]


def test_correlation_block_shapes_gradients_and_identity_start() -> None:
    torch.manual_seed(0)
    block = build_correlation_block(16, reduction=4)
    lengths = torch.tensor([5, 3])
    x = torch.randn(8, 16, 4, 4, requires_grad=True)
    assert torch.equal(block(x, lengths), x)  # alpha starts at 0: the ResNet path is intact
    correlation = block.correlation(x, lengths)
    attention = block.identification(x, lengths)
    assert correlation.shape == attention.shape == x.shape
    assert float(attention.detach().abs().max()) < 0.5  # sigmoid - 0.5
    with torch.no_grad():
        block.alpha.fill_(1.0)
    block(x, lengths).square().sum().backward()
    for name, param in block.named_parameters():
        assert param.grad is not None and float(param.grad.abs().sum()) > 0, name
    assert float(x.grad.abs().sum()) > 0


def test_correlation_uses_only_each_sequences_own_frames() -> None:
    torch.manual_seed(0)
    block = build_correlation_block(8, reduction=2)
    with torch.no_grad():
        block.alpha.fill_(1.0)
    a, b = torch.randn(6, 8, 3, 3), torch.randn(4, 8, 3, 3)
    together = block(torch.cat([a, b]), torch.tensor([6, 4]))
    alone = block(a, torch.tensor([6]))
    assert torch.allclose(together[:6], alone, atol=1e-5)
    changed = block(torch.cat([a, b + 5.0]), torch.tensor([6, 4]))
    assert torch.allclose(changed[:6], together[:6], atol=1e-5)  # b never leaks into a


def test_teacher_output_does_not_depend_on_batch_companions() -> None:
    teacher = tiny_teacher().eval()
    with torch.no_grad():
        for block in teacher.correlations.values():
            block.alpha.fill_(0.5)
        frames = random_frames([40, 33])
        both = teacher(frames, torch.tensor([40, 33]))
        first = teacher(frames[:1], torch.tensor([40]))
    steps = int(first.lengths[0])
    assert torch.allclose(both.logits[0, :steps], first.logits[0, :steps], atol=1e-4)


def test_corrnet_loss_combines_its_three_terms() -> None:
    teacher = tiny_teacher()
    out = teacher(random_frames([40, 36]), torch.tensor([40, 36]))
    targets, target_lengths = torch.tensor([1, 2, 3, 4, 5]), torch.tensor([3, 2])
    terms = corrnet_loss(out, targets, target_lengths, conv_weight=0.5, self_kd_weight=10.0)
    assert set(terms) == {"seq_ctc", "conv_ctc", "self_kd", "total"}
    expected = terms["seq_ctc"] + 0.5 * terms["conv_ctc"] + 10.0 * terms["self_kd"]
    assert torch.allclose(terms["total"], expected)
    assert all(torch.isfinite(v) and float(v.detach()) >= 0 for v in terms.values())


# -- ResNet backbone ----------------------------------------------------------------------------


def test_resnet_widths_shapes_and_weight_loading(tmp_path: Path) -> None:
    assert stage_channels(1.0) == (64, 128, 256, 512)
    assert stage_channels(0.25) == (16, 32, 64, 128)
    net = build_resnet18(0.25, "small")
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 128)
    names = set(net.state_dict())
    assert {"conv1.weight", "layer1.0.conv1.weight", "layer4.1.bn2.running_mean"} <= names
    other = build_resnet18(0.25, "small")
    path = tmp_path / "r18.pth"
    torch.save(net.state_dict() | {"fc.weight": torch.zeros(3, 128)}, path)  # fc is ignored
    load_backbone_weights(other, path)
    assert all(
        torch.equal(a, b)
        for a, b in zip(net.state_dict().values(), other.state_dict().values(), strict=True)
    )
    with pytest.raises(FormatError, match="does not fit"):
        load_backbone_weights(build_resnet18(0.5, "small"), path)
    with pytest.raises(InputError, match="stem"):
        build_resnet18(1.0, "huge")


# -- data ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def video_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two train and one dev SignSynth samples (built-in sentences) with 32 px video."""
    from edge_slr.data.synth.generate import SynthConfig, build_split

    root = tmp_path_factory.mktemp("video") / "tiny"
    config = SynthConfig(frame_size=32)
    build_split(config, root, "train", num_signers=1, limit=2, frames=True, progress=False)
    build_split(config, root, "dev", num_signers=1, limit=1, frames=True, progress=False)
    return root


def test_video_dataset_resizes_augments_and_batches(video_data: Path) -> None:
    from edge_slr.data.dataset import LandmarkDataset

    source = LandmarkDataset(video_data, "train")
    dims = TeacherDims(num_classes=len(source.vocabulary), **TINY)
    plain = VideoDataset(source, source.vocabulary, 24, output_length=dims.output_length)
    moved = VideoDataset(
        source, source.vocabulary, 24, output_length=dims.output_length, shift=3, jitter=0.2
    )
    example = plain[0]
    assert example.frames.shape == (source.samples[0].num_frames, 24, 24, 3)
    assert example.frames.dtype == np.uint8
    assert moved[0].frames.shape == example.frames.shape
    assert not np.array_equal(moved[0].frames, example.frames)
    assert np.array_equal(moved[0].frames, moved[0].frames)  # deterministic per (seed, epoch)
    assert np.array_equal(moved.frame(0, 5), moved[0].frames[5])  # one frame, same augmentation
    mirrored = VideoDataset(
        source, source.vocabulary, 24, output_length=dims.output_length, flip_p=1
    )
    assert np.array_equal(mirrored[0].frames, example.frames[:, :, ::-1])
    batch = collate_video([plain[0], plain[1]])
    assert batch.frames.shape[0] == 2 and batch.lengths.tolist() == plain.lengths[:2]
    assert batch.target_lengths.sum() == len(batch.targets)
    with pytest.raises(InputError, match="uint8"):
        resize_frames(np.zeros((2, 8, 8, 3), np.float32), 4)


def test_video_dataset_needs_frames(tmp_path: Path) -> None:
    from edge_slr.data.dataset import LandmarkDataset
    from edge_slr.data.synth.generate import SynthConfig, build_split

    build_split(SynthConfig(), tmp_path / "d", "dev", num_signers=1, limit=1, progress=False)
    source = LandmarkDataset(tmp_path / "d", "dev")
    with pytest.raises(InputError, match="no video frames"):
        VideoDataset(source, source.vocabulary, 32, output_length=lambda t: t // 4)


def test_training_steps_reduce_the_loss(video_data: Path) -> None:
    from edge_slr.data.dataset import LandmarkDataset

    source = LandmarkDataset(video_data, "train")
    # 16 px keeps this to seconds; hidden 64 because the cosine classifier bounds the BiLSTM
    # head's logits by the norm of its (tanh) features, and 16 dims cannot make peaky outputs.
    teacher = tiny_teacher(len(source.vocabulary), input_size=16, hidden=64)
    dataset = VideoDataset(source, source.vocabulary, 16, output_length=teacher.dims.output_length)
    batch = collate_video([dataset[i] for i in range(len(dataset))])
    optimizer = torch.optim.Adam(teacher.parameters(), lr=1e-2)
    totals, ctcs = [], []
    for _ in range(8):
        terms = corrnet_loss(
            teacher(batch.frames, batch.lengths), batch.targets, batch.target_lengths
        )
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
        totals.append(float(terms["total"].detach()))
        ctcs.append(float(terms["seq_ctc"].detach()))
    assert totals[-1] < 0.8 * totals[0], totals
    assert ctcs[-1] < 0.6 * ctcs[0], ctcs


# -- checkpoints and the output cache -----------------------------------------------------------


@pytest.fixture(scope="module")
def saved_teacher(video_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edge_slr.decoding.vocab import Vocabulary

    vocab = Vocabulary.load(video_data / "vocabulary.json")
    teacher = tiny_teacher(len(vocab))
    with torch.no_grad():
        for block in teacher.correlations.values():
            block.alpha.fill_(0.3)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    return save_teacher(path, teacher, vocabulary=vocab, config={"note": "test"}, epoch=3)


def test_checkpoint_round_trip(saved_teacher: Path, tmp_path: Path) -> None:
    model, checkpoint = load_teacher(saved_teacher)
    assert checkpoint.epoch == 3 and checkpoint.config == {"note": "test"}
    again, _ = load_teacher(saved_teacher)
    frames = random_frames([30])
    with torch.no_grad():
        assert torch.equal(model(frames).logits, again(frames).logits)
    bad = tmp_path / "student.pt"
    torch.save({"format": "edge-slr-student", "version": 1}, bad)
    with pytest.raises(FormatError, match="not an edge-slr teacher checkpoint"):
        load_teacher_checkpoint(bad)
    with pytest.raises(FormatError, match="does not exist"):
        load_teacher_checkpoint(tmp_path / "missing.pt")


def test_cache_round_trip_and_stale_refusal(
    video_data: Path, saved_teacher: Path, tmp_path: Path
) -> None:
    from edge_slr.data.dataset import LandmarkDataset

    cache_dir = build_cache(saved_teacher, video_data, tmp_path / "cache", progress=False)
    cache = TeacherCache.open(cache_dir, data_root=video_data, teacher=saved_teacher)
    entries = cache.split("train")
    source = LandmarkDataset(video_data, "train")
    assert set(entries) == {s.id for s in source.samples}
    model, _ = load_teacher(saved_teacher)
    first = source.samples[0]
    frames = torch.from_numpy(resize_frames(source.load_frames(0), 32))[None]
    with torch.no_grad():
        out = model(frames)
    assert entries[first.id].seq.shape == tuple(out.logits.shape[1:])
    np.testing.assert_allclose(entries[first.id].seq, out.logits[0].numpy(), atol=2e-2, rtol=1e-2)
    np.testing.assert_allclose(
        entries[first.id].conv, out.conv_logits[0].numpy(), atol=2e-2, rtol=1e-2
    )

    other = tmp_path / "other.pt"  # another teacher: same dims, other weights
    teacher, checkpoint = load_teacher(saved_teacher)
    with torch.no_grad():
        next(teacher.parameters()).add_(1.0)
    save_teacher(other, teacher, vocabulary=checkpoint.vocab(), config={})
    with pytest.raises(FormatError, match="stale: made by a teacher"):
        TeacherCache.open(cache_dir, teacher=other)
    with pytest.raises(FormatError, match="has no split 'dev'"):
        TeacherCache.open(cache_dir, splits=["dev"])
    from edge_slr.decoding.vocab import Vocabulary

    foreign = Vocabulary.from_sentences([["A", "B"]])
    with pytest.raises(FormatError, match="another vocabulary"):
        TeacherCache.open(cache_dir, vocabulary=foreign)
    stranger = save_teacher(
        tmp_path / "stranger.pt", tiny_teacher(len(foreign)), vocabulary=foreign, config={}
    )
    with pytest.raises(InputError, match="another vocabulary"):
        build_cache(stranger, video_data, tmp_path / "never", progress=False)

    index = video_data / "train" / "index.tsv"
    original = index.read_text()
    before = dataset_fingerprint(video_data, "train")
    try:
        index.write_text("\n".join(original.splitlines()[:-1]) + "\n")  # a sample removed
        assert dataset_fingerprint(video_data, "train") != before
        with pytest.raises(FormatError, match="stale: split 'train'"):
            TeacherCache.open(cache_dir, data_root=video_data)
    finally:
        index.write_text(original)
    # A checkpoint given as the teacher: a stale cache folder is rebuilt, a fresh one reused.
    reused = teacher_outputs(other, video_data, "train", cache_dir=cache_dir, progress=False)
    assert reused.meta["teacher_sha256"] != cache.meta["teacher_sha256"]
    with pytest.raises(FormatError, match="not a teacher cache"):
        TeacherCache.open(tmp_path)


# -- config and CLI -----------------------------------------------------------------------------


def test_configs_load_and_overrides(tmp_path: Path) -> None:
    for path in sorted((ROOT / "configs").glob("teacher-*.toml")):
        config = load_teacher_config(path)
        config.model.dims(num_classes=10)
    config = load_teacher_config(None, ["model.width=0.5", "train.epochs=2", "loss.temperature=4"])
    assert (config.model.width, config.train.epochs, config.loss.temperature) == (0.5, 2, 4.0)
    assert config.train.lr == 1e-3  # the teacher's default, not the student's
    path = tmp_path / "t.toml"
    path.write_text("[train]\nbatch_size = 2\n")
    assert load_teacher_config(path).train.lr == 1e-3
    with pytest.raises(InputError, match="unknown table"):
        load_teacher_config(None, ["nope.x=1"])
    path.write_text("[loss]\ntemperature = 0\n")
    with pytest.raises(FormatError, match="temperature"):
        load_teacher_config(path)


def test_cli_parser_and_cache_arguments() -> None:
    from edge_slr.cli import train_teacher

    parser = argparse.ArgumentParser()
    train_teacher.add_parser(parser.add_subparsers())
    args = parser.parse_args(["teacher", "--cache", "out"])
    with pytest.raises(InputError, match="--cache needs --checkpoint"):
        args.run(args)


@pytest.mark.slow
def test_train_teacher_end_to_end(video_data: Path, tmp_path: Path) -> None:
    from edge_slr.training.teacher.train import train_teacher

    overrides = [f"data.root={video_data}", f"train.out_dir={tmp_path / 'run'}", "train.epochs=2",
                 "train.beam_width=2", "train.progress=false", "data.test_split=",
                 "model.input_size=32", "model.width=0.125", "model.hidden=16"]  # fmt: skip
    result = train_teacher(load_teacher_config(None, overrides))
    assert result.best_checkpoint.exists() and (tmp_path / "run" / "results.json").exists()
    assert len(result.history) == 2 and "dev" in result.results
    resumed = train_teacher(
        load_teacher_config(None, overrides[:2] + ["train.epochs=3"] + overrides[3:]), resume=True
    )
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3]


def test_frame_labels_and_backbone_pretraining(video_data: Path) -> None:
    from edge_slr.data.dataset import LandmarkDataset
    from edge_slr.training.teacher.pretrain import PretrainConfig, frame_labels, pretrain_backbone

    source = LandmarkDataset(video_data, "train")
    vocab = source.vocabulary
    item = source[0]
    labels = frame_labels(item.landmarks.metadata, item.landmarks.num_frames, vocab)
    gloss, start, end = item.landmarks.metadata["spans"][0]
    assert labels[start] == labels[end - 1] == vocab.index(gloss) and labels[0] == 0
    with pytest.raises(InputError, match="needs the frame span"):
        frame_labels({}, 10, vocab)
    with pytest.raises(InputError, match="pretrain epochs"):
        PretrainConfig(epochs=-1)
    torch.manual_seed(0)
    teacher = tiny_teacher(len(vocab), input_size=16)
    dataset = VideoDataset(source, vocab, 16, output_length=teacher.dims.output_length, shift=1)
    config = PretrainConfig(epochs=4, frames_per_sentence=24, batch_size=16, lr=1e-2)
    history = pretrain_backbone(dataset, teacher.backbone, len(vocab), config)
    assert len(history) == 4 and history[-1]["loss"] < history[0]["loss"], history
