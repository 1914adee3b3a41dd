"""torch DDP through torchrun, on the CPU with the gloo backend: 2 processes = 1 with 2x the batch.

Two processes with batch B each must train the weights that one process trains with a global
batch of 2B in two micro-batches of B (``train.grad_accumulation = 2``): that is the exact
single-process equivalent, because the student's BatchNorm normalises each process's (or
micro-batch's) own batch (SyncBatchNorm exists for CUDA only). The parameters are compared to
1e-5, not bit for bit: DDP divides each gradient by the world size and all-reduces the buckets,
one process adds two halves, and a future torch or a different gloo reduction order may round
the sums differently (on the 2-core dev machine they came out bit-identical). BatchNorm's running statistics are left out: under DDP they are rank 0's
(broadcast at every forward), in one process they saw both micro-batches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from conftest import TINY_TRAINING, synth_splits  # noqa: E402

from edge_slr.training.checkpoint import load_checkpoint  # noqa: E402
from edge_slr.training.config import load_config  # noqa: E402
from edge_slr.training.models import build_student  # noqa: E402

SETTINGS = [*TINY_TRAINING, "train.epochs=2", 'train.device="cpu"']


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few training sentences (two global batches of 4) and dev sentences."""
    return synth_splits(tmp_path_factory.mktemp("ddp") / "synth", train=(2, 4), dev=(1, 2))


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", "-m", "edge_slr", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_two_gloo_processes_train_the_weights_of_one_with_twice_the_batch(
    synth: Path, tmp_path: Path
) -> None:
    from edge_slr.training.train import train

    data = f"data.root={json.dumps(str(synth))}"
    ddp_out, one_out = tmp_path / "ddp", tmp_path / "one"
    sets = [f"--set={s}" for s in [*SETTINGS, data, f"train.out_dir={json.dumps(str(ddp_out))}"]]
    done = _torchrun(["train", "recognizer", "--no-progress", *sets], tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("best epoch") == 1  # rank 0 alone prints (and writes)

    config = load_config(None, [*SETTINGS, data, "train.grad_accumulation=2"])
    config = config.with_overrides([f"train.out_dir={json.dumps(str(one_out))}"])
    single = train(config)

    ddp = load_checkpoint(ddp_out / "last.pt")
    one = load_checkpoint(single.last_checkpoint)
    assert ddp.step == one.step >= 4  # global batches of 4, 2 epochs
    names = {name for name, _ in torch.nn.Module.named_parameters(one.build_model())}
    assert names and names <= set(one.state_dict)
    for name in sorted(names):
        torch.testing.assert_close(ddp.state_dict[name], one.state_dict[name], rtol=0, atol=1e-5)
    torch.manual_seed(0)  # the seed training starts from: the initial weights
    initial = build_student(one.dims).state_dict()
    moved = max(float((one.state_dict[n] - initial[n]).abs().max()) for n in names)
    assert moved > 1e-3  # four steps at lr 1e-2: far more than the tolerance
    ddp_history = json.loads((ddp_out / "history.json").read_text())
    for a, b in zip(ddp_history, single.history, strict=True):  # losses summed over ranks
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    assert (ddp_out / "log.csv").read_text().count("\n") == 3  # header + 2 epochs, one writer
    assert not list(ddp_out.glob("*rank*"))


def test_teacher_outputs_split_over_two_ranks_equal_one_process(tmp_path: Path) -> None:
    """Each rank runs the teacher on every other batch; rank 0 merges the shards."""
    import numpy as np

    from edge_slr.data.synth.generate import SynthConfig, build_split
    from edge_slr.decoding.vocab import Vocabulary
    from edge_slr.training.teacher.cache import TeacherCache, build_cache
    from edge_slr.training.teacher.checkpoint import save_teacher
    from edge_slr.training.teacher.corrnet import TeacherDims, build_teacher

    data = tmp_path / "video"
    build_split(SynthConfig(frame_size=32), data, "train", num_signers=1, limit=5, frames=True,
                progress=False)  # fmt: skip
    vocab = Vocabulary.load(data / "vocabulary.json")
    torch.manual_seed(0)
    dims = TeacherDims(num_classes=len(vocab), input_size=32, width=0.125, hidden=16, dropout=0.0)
    teacher = save_teacher(tmp_path / "t.pt", build_teacher(dims), vocabulary=vocab, config={})
    args = ["train", "teacher", "--cache", str(tmp_path / "shared"), "--checkpoint", str(teacher)]
    done = _torchrun([*args, "--data", str(data), "--device", "cpu", "--no-progress"], tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("cached in") == 1
    assert not list((tmp_path / "shared").glob("*rank*"))  # shards merged and removed
    build_cache(teacher, data, tmp_path / "single", batch_size=4, progress=False)
    shared = TeacherCache.open(tmp_path / "shared", data_root=data, teacher=teacher).split("train")
    single = TeacherCache.open(tmp_path / "single", data_root=data).split("train")
    assert len(single) >= 5 and set(shared) == set(single)
    for name, logits in single.items():  # same float16 values: each sample ran in the same batch
        np.testing.assert_allclose(shared[name].seq, logits.seq, atol=1e-3)
        np.testing.assert_allclose(shared[name].conv, logits.conv, atol=1e-3)
