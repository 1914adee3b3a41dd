"""`edge-slr train recognizer --qat --init best.pt`: fine-tune a trained student with QAT.

The student's own training loop (edge_slr.training.train) runs on the QatStudent of
edge_slr.training.qat: same data, losses, evaluation and checkpoints; the checkpoints hold the
plain student's weights plus the ``quantization`` entry the INT8 converters read. The dev WER
logged during the run is the simulated INT8 model's; OUT/results.json evaluates best.pt in
floating point, as for every student (the INT8 artifact's WER comes from its conversion).
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr.errors import InputError
from edge_slr.training.qat import QatOptions, build_qat_student, calibrate

logger = logging.getLogger(__name__)

# A short fine-tune at a tenth of the original learning rate, evaluated every epoch.
QAT_EPOCHS = 3
QAT_LR_FRACTION = 0.1


def qat_config(init: str | Path, config_path: str | Path | None, overrides: list[str]) -> Any:
    """The run's StudentConfig: ``config_path`` (else the one stored in ``init``), with QAT
    defaults (OUT = INIT_DIR/qat, 3 epochs, a tenth of the learning rate), then ``overrides``."""
    from edge_slr.training.checkpoint import load_checkpoint
    from edge_slr.training.config import StudentConfig, load_config

    init = Path(init)
    if config_path is not None:
        base = load_config(config_path)
    else:
        stored = load_checkpoint(init).config
        if not stored:
            raise InputError(f"{init} stores no training config: give one with --config")
        base = StudentConfig.from_dict(stored, where=str(init))
    defaults = [
        f'train.out_dir="{init.parent / "qat"}"',
        f"train.epochs={QAT_EPOCHS}",
        f"train.lr={base.train.lr * QAT_LR_FRACTION}",
        "train.eval_every=1",
    ]
    return base.with_overrides(defaults + list(overrides))


def train_qat(
    config: Any,
    init: str | Path,
    options: QatOptions | None = None,
    *,
    resume: bool = False,
    stop_after: int | None = None,
) -> Any:
    """Fine-tune the student in ``init`` with fake quantisation; returns the TrainResult."""
    from edge_slr.training import train as student_training
    from edge_slr.training.loop import run_training

    options = options or QatOptions()
    setup = partial(_setup, config, Path(init), options)
    fit = partial(student_training._train, config)
    return run_training(
        config.train,
        "quantization-aware training",
        setup,
        fit,
        resume=resume,
        stop_after=stop_after,
    )


def _setup(config: Any, init: Path, options: QatOptions) -> Any:
    from edge_slr.training import train as student_training
    from edge_slr.training.checkpoint import load_student

    built = student_training._setup(config)
    student, checkpoint = load_student(init)
    if checkpoint.dims != built.model.dims:
        raise InputError(
            f"--init {init} holds a student with dims {checkpoint.dims.to_dict()}; the config "
            f"asks for {built.model.dims.to_dict()}"
        )
    if checkpoint.vocab().sha256 != built.vocab.sha256:
        raise InputError(f"--init {init} was trained on another vocabulary than {config.data.root}")
    sequences = calibration_features(config, built.preset, options.calibration_sequences)
    ranges = calibrate(student, sequences, options)
    logger.info("QAT activation ranges: %s", {k: (r.low, r.high) for k, r in ranges.items()})
    built.model = build_qat_student(student, ranges, options)
    return built


def calibration_features(config: Any, preset: Any, limit: int) -> list[np.ndarray]:
    """Up to ``limit`` training sequences, evenly spaced over the split, as preset features."""
    from edge_slr.data.dataset import LandmarkDataset

    dataset = LandmarkDataset(Path(config.data.root), config.data.train_split)
    dims = config.model.dims(num_classes=2, input_dim=preset.num_features)
    shortest = dims.min_input_length
    usable = [i for i, e in enumerate(dataset.samples) if e.num_frames >= shortest]
    if not usable:
        raise InputError(f"{config.data.root}: no training sequence of >= {shortest} frames")
    picked = np.unique(np.linspace(0, len(usable) - 1, min(limit, len(usable))).round().astype(int))
    return [preset.features(dataset[usable[i]].landmarks) for i in picked]
