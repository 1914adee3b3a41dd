"""The Recognizer uses a model folder's tuned gloss LM (lm.arpa + lm.arpa.json) in its beam search."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_slr.decoding import beam_search, log_softmax
from edge_slr.decoding.lm import FusedLM, FusionSettings, read_arpa
from edge_slr.training.lm import train_kneser_ney, write_arpa, write_fusion_settings


@pytest.fixture(scope="module")
def onnx_model(tiny_student, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnxruntime")
    from edge_slr.converters import convert

    out = tmp_path_factory.mktemp("lm-model")
    convert(tiny_student.checkpoint, "onnx", out)
    return out


def test_recognizer_decodes_with_the_tuned_lm(onnx_model: Path, tiny_student, tmp_path) -> None:
    from edge_slr import Recognizer
    from edge_slr.data.dataset import LandmarkDataset

    folder = tmp_path / "model"
    shutil.copytree(onnx_model, folder)
    rng = np.random.default_rng(3)
    with Recognizer.create_from_model_dir(folder, beam_width=6) as plain:
        labels = plain.labels
        cases = [log_softmax(rng.normal(size=(12, len(labels))) * 3) for _ in range(10)]
        plain_results = [plain.decode(lp) for lp in cases]
    train = LandmarkDataset(tiny_student.data, "train")
    arpa = write_arpa(
        train_kneser_ney([tuple(s.glosses) for s in train.samples], 3), folder / "lm.arpa"
    )
    # an untuned LM is not used: the Recognizer decodes as before
    with Recognizer.create_from_model_dir(folder, beam_width=6) as untuned:
        assert [untuned.decode(lp) for lp in cases] == plain_results
    settings = FusionSettings(1.5, 1.0)
    write_fusion_settings(arpa, settings, {"tuned_on": {"split": "dev"}})
    options = FusedLM(read_arpa(arpa), settings).beam_options(labels)
    expected = [beam_search(lp, 6, labels=labels, **options) for lp in cases]
    assert expected != plain_results  # the weights are strong enough to change something
    with Recognizer.create_from_model_dir(folder, beam_width=6) as fused:
        assert [fused.decode(lp) for lp in cases] == expected
