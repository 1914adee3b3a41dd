"""Shared fixtures. Tests that need ../shared/data skip with a clear reason when it is absent.

``tiny_student`` (and :func:`build_tiny_student` for modules loaded by path) is the one tiny
student trained for real per test session, shared by the conversion, runtime and recognizer tests.
``device_venv`` installs edge-slr with some extras into a fresh virtual environment (a device or
a board without the training and conversion packages).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edge_slr.paths import shared_data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder (../shared/data); skips the test when this machine lacks it."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("../shared/data is absent (set EDGE_SLR_SHARED_DATA to its location)")
    return path


def shared_file(shared: Path, relative: str) -> Path:
    """A file inside the shared data folder; skips when that one file is missing."""
    path = shared / relative
    if not path.exists():
        pytest.skip(f"{relative} is absent from {shared}")
    return path


# --set overrides of a tiny student that trains in seconds (test_train, test_train_device, test_ddp)
TINY_TRAINING = (
    "model.conv_channels=[16,16,32,32]",
    "model.lstm_hidden=16",
    "model.lstm_layers=1",
    "model.dropout=0.0",
    "train.batch_size=2",
    "train.lr=1e-2",
    "train.beam_width=0",
    "train.num_threads=1",
    "train.progress=false",
)


def synth_splits(root: Path, **splits: tuple[int, int]) -> Path:
    """A SignSynth dataset of the built-in sentences in ``root``: ``train=(signers, sentences)``
    and so on for every split named (a few seconds for a handful of sentences)."""
    from edge_slr.data.synth.generate import SynthConfig, build_split

    for split, (signers, limit) in splits.items():
        build_split(SynthConfig(), root, split, num_signers=signers, limit=limit, progress=False)
    return root


# -- the tiny trained student (test_convert, test_runtimes, test_recognizer, test_device_install) --

TINY_GLOSSES = ("RAIN", "SUN", "WIND", "SNOW", "NORTH", "SOUTH")
TINY_SPLITS = (("train", 160), ("dev", 48))
TINY_DEV_SENTENCES = dict(TINY_SPLITS)["dev"]
TINY_EPOCHS = 30


@dataclass(frozen=True)
class TinyStudent:
    data: Path  # landmark dataset (train/dev splits)
    checkpoint: Path  # the student trained on it by edge_slr.training.train


def make_tiny_dataset(root: Path, seed: int = 0) -> None:
    """A small SignSynth dataset: 6 glosses, sentences of 2-3 of them, 4 signers per split."""
    from edge_slr.data.dataset import DatasetWriter, IndexEntry
    from edge_slr.data.synth.generate import SignSynth
    from edge_slr.decoding.vocab import Vocabulary

    rng = np.random.default_rng(seed)
    synth = SignSynth(seed=seed)
    vocab = Vocabulary.from_sentences([TINY_GLOSSES])
    writer = DatasetWriter(root, {"name": "tiny-test", "generator": {"corpus": "builtin"}}, vocab)
    for split, count in TINY_SPLITS:
        writer.start_split(split)
        entries = []
        for i in range(count):
            size = int(rng.integers(2, 4))
            glosses = tuple(rng.choice(TINY_GLOSSES, size=size, replace=False))
            signer = synth.signer(split, i % 8)
            sample_id = f"{split}-{i:03d}"
            sample = synth.synthesize(glosses, signer, sample_id=sample_id)
            writer.write_sample(split, sample_id, sample.landmarks)
            entries.append(IndexEntry(sample_id, signer.id, sample.landmarks.num_frames, glosses))
        writer.finish_split(split, entries, {})


def train_tiny_student(root: Path, epochs: int = TINY_EPOCHS) -> Path:
    """Train a tiny student; its best checkpoint.

    Its quality must sit far from every bound a test puts on it, on any x86-64 CPU: the weights
    depend on the CPU's float kernels (torch picks AVX-512/AMX paths on one machine and AVX2 on
    another), so a model near a threshold passes on one CPU and fails on the next. 160 train
    sentences over 8 signers and 30 epochs give 2.6-5.3% dev WER (measured on an AVX2 AMD EPYC,
    full ISA and ATen without SIMD; `make test-isa`), and 48 dev sentences (~120 glosses) keep one
    gloss from deciding an agreement test. About 30 s on one core.
    """
    from edge_slr.training.config import load_config
    from edge_slr.training.train import train

    overrides = [
        f"data.root={json.dumps(str(root))}",
        'data.test_split=""',
        "model.conv_channels=[32,32,64,64]",
        "model.lstm_hidden=32",
        "model.dropout=0.0",
        "augment.flip_p=0.0",
        "augment.rotation_p=0.0",
        "augment.fusion_p=0.0",
        "train.batch_size=8",
        "train.lr=8e-3",
        f"train.epochs={epochs}",
        "train.eval_every=5",
        "train.beam_width=0",
        "train.num_threads=1",
        "train.progress=false",
        f"train.out_dir={json.dumps(str(root / 'run'))}",
    ]
    return train(load_config(None, overrides)).best_checkpoint


def build_tiny_student(base: Path) -> TinyStudent:
    """Build the tiny student once per test session (the result stays in ``base``)."""
    root = base / "tiny-student"
    student = TinyStudent(root / "data", root / "data" / "run" / "best.pt")
    if (root / "done").exists():
        return student
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)  # two threads on a shared 2-core machine stall in OpenMP barriers
    make_tiny_dataset(student.data)
    assert train_tiny_student(student.data) == student.checkpoint
    (root / "done").touch()
    return student


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory: pytest.TempPathFactory) -> TinyStudent:
    """A tiny student trained for real on a tiny SignSynth dataset (skips without torch)."""
    return build_tiny_student(tmp_path_factory.getbasetemp())


# -- a device install (test_device_install, test_tflite_device_install) ------------------------

ROOT = Path(__file__).resolve().parents[1]


def run_checked(*command: str | Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``command``; fail the test with the end of its stderr when it exits non-zero."""
    result = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{command}: {result.stderr[-2000:]}"
    return result


@pytest.fixture
def device_venv(tmp_path: Path) -> Callable[[str], Path]:
    """``device_venv("onnx,openvino")``: a fresh virtual environment under ``tmp_path`` with
    edge-slr and those extras installed as a user would (pip with its dependencies, versions
    from constraints.txt); returns its python. Needs pip's package index (or a local mirror)."""

    def install(extras: str) -> Path:
        venv = tmp_path / "device"
        run_checked(sys.executable, "-m", "venv", venv)
        python = venv / "bin" / "python"
        pip = (python, "-m", "pip", "install", "-q", "--disable-pip-version-check")
        run_checked(*pip, "-c", ROOT / "constraints.txt", f"{ROOT}[{extras}]")
        return python

    return install


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs for one test module (skips without ray)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
