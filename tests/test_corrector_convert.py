"""The gloss corrector converted to every target of the table, verified, with complete sidecars.

A tiny corrector is really trained (40 steps, seeded) on sentences of six glosses; the held-out
and calibration sentences come from a tiny corpus folder in the PHOENIX-2014-T layout (train and
dev annotation files), corrupted with the corrector's own noise model. Each test converts it
(verification runs the graphs through edge_slr.runtimes, as deployed) and then runs the
artifact's graphs with the engine itself: log-probabilities and corrections are compared with the
PyTorch corrector.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edge_slr.converters import convert  # noqa: E402
from edge_slr.errors import InputError  # noqa: E402
from edge_slr.sidecar import read_sidecar  # noqa: E402

GLOSSES = ("RAIN", "SUN", "WIND", "SNOW", "NORTH", "SOUTH")
HEADER = "name|video|start|end|speaker|orth|translation"
# The tiny model (d=32) over 24 dev sentences: one changed gloss moves the WER by ~1.4 points, so
# INT8 conversions are checked against wider, explicitly configured bounds than the defaults.
INT8_BOUNDS = {"max_wer_drop": 5.0, "min_agreement": 0.9}
TINY = [
    "model.d_model=32", "model.n_heads=2", "model.ff_dim=64", "model.encoder_layers=1",
    "model.dropout=0.0", "train.max_steps=40", "train.batch_size=32", "train.threads=1",
    "train.learning_rate=3e-3", "train.warmup_steps=5", "train.eval_every=20",
    "train.log_every=20", "train.holdout=0.1", "train.gate_levels=[0.0, 0.2]",
]  # fmt: skip


def sentences(count: int, seed: int) -> list[tuple[str, ...]]:
    rng = np.random.default_rng(seed)
    return [
        tuple(str(g) for g in rng.choice(GLOSSES, size=int(rng.integers(2, 5)), replace=False))
        for _ in range(count)
    ]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PHOENIX-2014-T-layout annotation folder: 200 train and 24 dev sentences."""
    root = tmp_path_factory.mktemp("corpus")
    for split, count, seed in (("train", 200, 0), ("dev", 24, 1)):
        rows = [HEADER] + [
            f"{split}{i:03d}|{split}{i:03d}/1/*.png|-1|-1|Signer0{i % 3}|{' '.join(s)}|text"
            for i, s in enumerate(sentences(count, seed))
        ]
        (root / f"PHOENIX-2014-T.{split}.corpus.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def corrector(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edge_slr.training.corrector import load_config, train_corrector

    out = tmp_path_factory.mktemp("corrector")
    config = load_config(None, [*TINY, "train.corpus=phoenix2014t", f"train.root={corpus}"])
    train_corrector(config, out, sentences=[g for g in sentences(200, 0)])
    return out


def reference(folder: Path) -> object:
    from edge_slr.training.corrector import load_corrector

    return load_corrector(folder)


def check_sidecar(result: object, target: str, precision: str) -> dict:
    description = read_sidecar(result.sidecar_path)  # type: ignore[attr-defined]
    data = description.to_dict()
    assert description.kind == "corrector" and description.target == target
    roles = [g.role for g in description.graphs]
    assert roles == ["stage0.encoder", "stage0.decoder", "stage1.encoder", "stage1.decoder"]
    assert description.precision.weights == precision
    assert set(data["source"]["special_ids"]) == {"pad", "bos", "eos", "unk"}
    assert data["source"]["dims"]["d_model"] == 32 and len(data["source"]["gates"]) == 2
    assert set(GLOSSES) <= set(description.vocab().glosses)
    assert {"edge_slr", "torch"} <= set(data["versions"])
    verification = data["verification"]
    assert verification["passed"] and verification["sequences"] == 24
    assert verification["heldout"]["source"] == "corpus phoenix2014t"
    assert verification["heldout"]["wer_input"] > 0  # the noise model really corrupted them
    return data


def interpreter_difference(files: dict[str, Path], ids: list[int], corr: object) -> float:
    """Max |log-prob difference| of both stages' graphs run on the LiteRT interpreter directly
    and the PyTorch stages, teacher-forced on ``ids`` (source and target)."""
    from ai_edge_litert.interpreter import Interpreter

    vocab = corr.vocab  # type: ignore[attr-defined]
    src = np.array([ids + [vocab.eos_id]], dtype=np.int64)
    tgt = np.array([[vocab.bos_id] + ids], dtype=np.int64)
    worst = 0.0
    for index, stage in enumerate(corr.stages):  # type: ignore[attr-defined]
        enc, dec = (
            Interpreter(model_path=str(files[f"stage{index}.{r}"])).get_signature_runner()
            for r in ("encoder", "decoder")
        )
        memory = enc(src=src)["memory"]
        got = dec(tgt=tgt, memory=memory, src=src)["log_probs"]
        with torch.no_grad():
            want_memory = stage.encode(torch.from_numpy(src))
            want = stage.decode(torch.from_numpy(tgt), want_memory, torch.from_numpy(src))
        worst = max(worst, float(np.abs(memory - want_memory.numpy()).max()))
        finite = np.isfinite(want.numpy())
        worst = max(worst, float(np.abs(got - want.numpy())[finite].max()))
    return worst


@pytest.fixture(scope="module")
def tflite_fp32(corrector: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("tensorflow")
    pytest.importorskip("ai_edge_litert")
    return convert(corrector, "tflite", tmp_path_factory.mktemp("tflite"), calibration=corpus)


def check_tflite(result: object, corrector: Path, target: str) -> None:
    int8 = target.endswith("int8")
    data = check_sidecar(result, target, "int8" if int8 else "fp32")
    folder = result.sidecar_path.parent  # type: ignore[attr-defined]
    assert result.sidecar_path.name == ("corrector-int8" if int8 else "corrector") + ".tflite.json"  # type: ignore[attr-defined]
    files = {g.role: folder / g.file.name for g in result.description.graphs}  # type: ignore[attr-defined]
    assert all(f.suffix == ".tflite" and f.is_file() for f in files.values())
    assert tuple(data["graphs"][0]["inputs"][0]["shape"]) == (1, "source")
    verification = data["verification"]
    assert "FULLY_CONNECTED" in data["details"]["ops"]["stage0.decoder"]
    if int8:
        assert verification["agreement"] >= 0.9 and verification["wer_drop"] <= 5.0
        assert verification["thresholds"] == INT8_BOUNDS
    else:
        assert verification["max_abs_diff"] <= 1e-3 and verification["sentence_agreement"] == 1.0
    assert verification["runtime"]["runtime"] == "litert"  # verified as deployed
    # Independently of the converter: the interpreter's graphs compute torch's (FP32) on
    # sentences of several lengths, the longest beyond anything seen at conversion time.
    corr = reference(corrector)
    vocab = corr.vocab  # type: ignore[attr-defined]
    rng = np.random.default_rng(3)
    for length in (1, 4, 9, 20):
        ids = [int(i) for i in rng.choice(list(vocab.gloss_ids), size=length)]
        difference = interpreter_difference(files, ids, corr)
        assert int8 or difference <= 1e-3, (length, difference)


def test_corrector_converts_to_tflite(tflite_fp32: object, corrector: Path) -> None:
    check_tflite(tflite_fp32, corrector, "tflite")


@pytest.mark.slow
def test_corrector_converts_to_tflite_int8(corrector: Path, corpus: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    pytest.importorskip("ai_edge_litert")
    result = convert(corrector, "tflite-int8", tmp_path, calibration=corpus, **INT8_BOUNDS)
    check_tflite(result, corrector, "tflite-int8")
    assert result.description.precision.activations == "fp32"  # dynamic range


def test_runtime_corrector_runs_the_tflite_graphs(tflite_fp32: object, corrector: Path) -> None:
    """The registry's LiteRT runtime runs the converted graphs like the torch corrector."""
    runtimes = pytest.importorskip("edge_slr.runtimes.corrector")
    corr = reference(corrector)
    noisy = [s[:-1] + ("RAIN", "RAIN") for s in sentences(6, 5)] + [("SUN",), ()]
    with runtimes.RuntimeCorrector(tflite_fp32.model_path) as converted:  # type: ignore[attr-defined]
        assert converted.name == "litert"
        for glosses in noisy:
            want = corr.correct(glosses)  # type: ignore[attr-defined]
            assert converted.correct(glosses).glosses == want.glosses
            assert converted.correct(glosses, gate=False).glosses == (
                corr.correct(glosses, gate=False).glosses  # type: ignore[attr-defined]
            )


def test_corrector_calibration_folder_must_hold_sentences(corrector: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="neither a landmark dataset folder"):
        convert(corrector, "onnx", tmp_path / "out", calibration=tmp_path / "empty")


def test_corrector_tflite_rejects_student_options(corrector: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="apply to the student"):
        convert(corrector, "tflite", tmp_path, full_integer=False, fused_lstm=True)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["onnx-int8", "openvino-int8"])
def test_corrector_converts_to_int8(corrector: Path, corpus: Path, tmp_path: Path, target: str):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    result = convert(corrector, target, tmp_path, calibration=corpus, **INT8_BOUNDS)
    data = check_sidecar(result, target, "int8")
    verification = data["verification"]
    assert verification["agreement"] >= 0.9 and verification["wer_drop"] <= 5.0
    assert data["precision"]["kept_fp32"]
    if target == "openvino-int8":
        calibration = data["calibration"]
        assert calibration["split"] == "train" and calibration["sentences"] == 200
        assert len(calibration["noise_per_stage"]) == 2
        assert data["engine"]["config"]["CPU_RUNTIME_CACHE_CAPACITY"] == "0"
        attempts = data["details"]["attempts"]  # the first verified quantisation policy is kept
        assert attempts[0]["policy"] == "full" and attempts[-1]["passed"]
        assert data["details"]["policy"] == attempts[-1]["policy"]
    else:
        assert "MatMulInteger" in data["details"]["ops"]["stage0.encoder"]


def test_probe_difference_counts_nan_as_infinite() -> None:
    """A graph that returns NaN must fail the FP32 bound (Python's max(0.0, nan) is 0.0)."""
    from edge_slr.converters.corrector_verify import _diff

    assert _diff(np.array([[1.0, np.nan]]), np.array([[1.0, 2.0]])) == float("inf")
    assert _diff(np.array([[-np.inf, 2.5]]), np.array([[-np.inf, 2.0]])) == 0.5
    assert _diff(np.zeros((1, 2)), np.zeros((1, 3))) == float("inf")
