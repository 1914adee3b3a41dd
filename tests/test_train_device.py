"""Device selection, mixed precision on the CPU, micro-batch plans, device-free checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_TRAINING

torch = pytest.importorskip("torch")

from edge_slr.errors import FormatError, InputError  # noqa: E402
from edge_slr.training.checkpoint import load_checkpoint  # noqa: E402
from edge_slr.training.config import load_config  # noqa: E402
from edge_slr.training.data import plan_steps  # noqa: E402
from edge_slr.training.hardware import (  # noqa: E402
    Hardware,
    OnDevice,
    Ranks,
    fp32_outputs,
    resolve_device,
)

TINY = list(TINY_TRAINING)


def test_device_names_resolve_or_fail_clearly() -> None:
    assert resolve_device(torch, "cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(torch, "auto").type == expected
    for bad in ("gpu", "cuda:x", "CPU", "cuda:"):
        with pytest.raises(InputError, match="auto, cpu, cuda or cuda:N"):
            resolve_device(torch, bad)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="sees no CUDA device"):
            resolve_device(torch, "cuda:0")
    else:
        with pytest.raises(InputError, match="does not exist"):
            resolve_device(torch, f"cuda:{torch.cuda.device_count()}")
    # torchrun: cuda means the process's local rank
    if torch.cuda.is_available():
        assert resolve_device(torch, "cuda", Ranks(0, 1, 0)).index == 0


def test_config_checks_device_amp_and_accumulation() -> None:
    config = load_config(
        None, ['train.device="cpu"', 'train.amp="bf16"', "train.grad_accumulation=4"]
    )
    assert (config.train.device, config.train.amp, config.train.grad_accumulation) == (
        "cpu",
        "bf16",
        4,
    )
    assert load_config(None).train.device == "auto" and load_config(None).train.amp == "none"
    with pytest.raises(InputError, match="amp must be one of"):
        load_config(None, ['train.amp="fp8"'])
    with pytest.raises(InputError, match="device must be"):
        load_config(None, ['train.device="tpu"'])
    with pytest.raises(InputError, match="grad_accumulation must be >= 1"):
        load_config(None, ["train.grad_accumulation=0"])
    with pytest.raises(InputError, match="num_workers must be >= 0"):
        load_config(None, ["train.num_workers=-1"])
    from edge_slr.training.corrector.config import load_config as corrector_config

    assert corrector_config(None, ['train.device="cpu"']).train.device == "cpu"
    with pytest.raises(InputError, match="device='tpu'"):
        corrector_config(None, ['train.device="tpu"'])


def test_fp16_needs_cuda_and_bf16_autocasts_on_the_cpu() -> None:
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="fp16' needs a CUDA device"):
            Hardware.create(torch, "cpu", "fp16")
    hw = Hardware.create(torch, "cpu", "bf16")
    layer = torch.nn.Linear(4, 3)
    with hw.autocast():
        out = layer(torch.ones(2, 4))
    assert out.dtype == torch.bfloat16  # autocast ran the matmul in bf16
    assert hw.scaler is None  # bf16 keeps fp32's range: no loss scaling
    from edge_slr.training.models import StudentOutput

    restored = fp32_outputs(StudentOutput(out, None, torch.tensor([3, 2])))
    assert restored.logits.dtype == torch.float32 and restored.lengths.dtype == torch.int64


def test_plan_steps_cuts_global_batches_into_weighted_micro_batches() -> None:
    batches = [list(range(10)), [10, 11, 12], [13]]
    losses = np.random.default_rng(0).random(14)  # one loss per sentence
    for world, accumulation in ((1, 1), (2, 1), (1, 2), (2, 3)):
        plans = [plan_steps(batches, rank, world, accumulation) for rank in range(world)]
        for step, batch in enumerate(batches):
            micro = [m for plan in plans for m in plan[step]]
            assert len(micro) == world * accumulation and all(indices for indices, _ in micro)
            assert {i for indices, _ in micro for i in indices} >= set(batch)  # short: repeats
            if len(batch) < world * accumulation:
                continue
            assert sorted(i for indices, _ in micro for i in indices) == sorted(batch)
            # what DDP computes: each rank sums weight x micro-batch mean, ranks are averaged
            ddp = sum(w * losses[indices].mean() for indices, w in micro) / world
            assert ddp == pytest.approx(losses[batch].mean(), rel=1e-12)
    assert plan_steps(batches) == [[(b, 1.0)] for b in batches]  # one process: unchanged


def test_on_device_returns_cpu_fp32_outputs() -> None:
    from edge_slr.training.models import StudentDims, build_student

    dims = StudentDims(num_classes=5, input_dim=12, conv_channels=(4, 4, 8, 8), lstm_hidden=4)
    model = build_student(dims)
    wrapped = OnDevice(model, torch.device("cpu")).eval()
    out = wrapped(torch.randn(2, 40, 12), torch.tensor([40, 30]), aux=False)
    assert out.logits.device.type == "cpu" and out.logits.dtype == torch.float32
    assert wrapped.dims == dims and not model.training


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edge_slr.data.synth.generate import SynthConfig, build_split

    root = tmp_path_factory.mktemp("device") / "synth"
    build_split(SynthConfig(), root, "train", num_signers=2, limit=3, progress=False)
    build_split(SynthConfig(), root, "dev", num_signers=1, limit=2, progress=False)
    return root


def _config(root: Path, out: Path, *extra: str):
    return load_config(
        None,
        [f"data.root={json.dumps(str(root))}", f"train.out_dir={json.dumps(str(out))}", *TINY]
        + list(extra),
    )


def test_bf16_training_on_the_cpu_learns_and_resumes_in_fp32(synth: Path, tmp_path: Path) -> None:
    from edge_slr.training.train import train

    config = _config(
        synth, tmp_path / "run", 'train.amp="bf16"', 'train.device="cpu"', "train.epochs=3"
    )
    first = train(config, stop_after=2)
    losses = [row["train_loss"] for row in first.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    saved = load_checkpoint(first.last_checkpoint)
    assert all(t.device.type == "cpu" for t in saved.state_dict.values())
    assert saved.state_dict["classifier.weight"].dtype == torch.float32  # master weights fp32
    assert saved.config["train"]["amp"] == "bf16"
    # the same run continues without AMP (as on another device): resume state is device-free
    fp32 = config.with_overrides(['train.amp="none"'])
    resumed = train(fp32, resume=True)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3]
    assert np.isfinite(resumed.history[-1]["train_loss"])


def test_cli_device_flag_sets_the_config(synth: Path, tmp_path: Path) -> None:
    import argparse

    from edge_slr.cli import train_recognizer

    parser = argparse.ArgumentParser()
    train_recognizer.add_parser(parser.add_subparsers())
    out = tmp_path / "cli"
    args = parser.parse_args(
        ["recognizer", "--device", "cpu", "--amp", "bf16", "--no-progress"]
        + [f"--set={s}" for s in TINY]
        + [
            f"--set=data.root={json.dumps(str(synth))}",
            f"--set=train.out_dir={json.dumps(str(out))}",
        ]
        + ["--set=train.epochs=1"]
    )
    assert args.run(args) == 0
    config = json.loads((out / "config.json").read_text())["train"]
    assert (config["device"], config["amp"]) == ("cpu", "bf16")
    args = parser.parse_args(["recognizer", "--device", "cuda:7", f"--set=data.root={synth}"])
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="sees no CUDA device"):
            args.run(args)
    with pytest.raises(FormatError):
        load_checkpoint(out / "missing.pt")
