"""A converted corrector in the Recognizer: numpy decoding over the runtime registry, no torch.

One tiny corrector is trained per session on real PHOENIX-2014-T train sentences plus sentences of
the tiny student's glosses (so it can correct that student's output), and converted to ONNX once.
Its corrections through ONNX Runtime and through OpenVINO (reading the ONNX graphs) must equal
the PyTorch corrector's on real noisy sentences: gated, ungated, with beam search, and with gates
that accept some proposals and reject others.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_GLOSSES, build_tiny_student

from edge_slr.errors import FormatError, InputError

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

TINY = [
    "model.d_model=32", "model.n_heads=2", "model.ff_dim=64", "model.encoder_layers=1",
    "model.dropout=0.0", "train.max_steps=80", "train.batch_size=32", "train.threads=1",
    "train.learning_rate=3e-3", "train.warmup_steps=10", "train.eval_every=40",
    "train.log_every=40", "train.holdout=0.1", "train.gate_levels=[0.0, 0.2]",
    "noise.wer_max=0.3",
]  # fmt: skip
LEVELS = (0.1, 0.2, 0.3, 0.4)


def build_corrector(base: Path, shared: Path) -> Path:
    """A model directory with the tiny corrector converted to ONNX (and its torch folder)."""
    from edge_slr.converters import convert
    from edge_slr.data.corpora import load_corpus
    from edge_slr.training.corrector import load_config, train_corrector

    root = base / "converted-corrector"
    if (root / "done").exists():
        return root
    torch.set_num_threads(1)
    train = [s.glosses for s in load_corpus("phoenix2014t", shared / "phoenix2014t", "train")]
    rng = np.random.default_rng(0)
    tiny = [tuple(rng.choice(TINY_GLOSSES, size=int(rng.integers(2, 4)), replace=False))
            for _ in range(100)]  # fmt: skip
    sentences = [s for s in train if s][:200] + [tuple(str(g) for g in s) for s in tiny]
    train_corrector(load_config(None, TINY), root / "corrector", sentences=sentences)
    convert(root / "corrector", "onnx", root)
    (root / "done").touch()
    return root


@pytest.fixture(scope="module")
def corrector_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_corrector(tmp_path_factory.getbasetemp(), shared_data)


@pytest.fixture(scope="module")
def reference(corrector_dir: Path):
    from edge_slr.training.corrector import load_corrector

    return load_corrector(corrector_dir / "corrector")


@pytest.fixture(scope="module")
def noisy(shared_data: Path, reference) -> list[list[str]]:
    """Real dev sentences (and a few tiny-gloss ones) corrupted at 10-40 % WER."""
    from edge_slr.data.corpora import load_corpus
    from edge_slr.training.corrector.noise import GlossNoise, NoiseConfig

    vocab = reference.vocab
    freq = np.zeros(len(vocab))
    for s in load_corpus("phoenix2014t", shared_data / "phoenix2014t", "train")[:500]:
        for token in vocab.encode(s.glosses)[0]:
            freq[token] += 1
    dev = [s.glosses for s in load_corpus("phoenix2014t", shared_data / "phoenix2014t", "dev")]
    sentences = [s for s in dev if s][:16] + [("RAIN", "SUN", "SUN"), ("NORTH", "WIND", "SNOW")]
    noise, rng = GlossNoise(NoiseConfig(), freq), np.random.default_rng(1)
    out = []
    for i, sentence in enumerate(sentences):
        ids, unknown = vocab.encode(list(sentence))
        corrupted = noise.corrupt(ids, rng, wer=LEVELS[i % len(LEVELS)])
        out.append(vocab.decode(corrupted, unknown) or list(sentence))
    return out + [[], ["NEVER-SEEN-GLOSS", "REGEN"]]


def same(converted: list, expected: list) -> None:
    """Identical corrections; every stage's decision and measures as the torch stages'."""
    assert [c.glosses for c in converted] == [c.glosses for c in expected]
    for got, want in zip(converted, expected, strict=True):
        assert len(got.stages) == len(want.stages)
        for a, b in zip(got.stages, want.stages, strict=True):
            assert (a.input, a.proposal, a.accepted) == (b.input, b.proposal, b.accepted)
            assert a.edit_rate == pytest.approx(b.edit_rate)
            assert a.margin == pytest.approx(b.margin, abs=1e-3)
            assert a.confidence == pytest.approx(b.confidence, abs=1e-4)


@pytest.mark.parametrize(
    "runtime", ["onnxruntime", pytest.param("openvino", marks=pytest.mark.slow)]
)  # OpenVINO runs the same ONNX graphs; the Recognizer test below uses it too (draft decoding)
def test_converted_corrector_equals_torch_on_real_noisy_sentences(
    corrector_dir: Path, reference, noisy: list, runtime: str
) -> None:
    pytest.importorskip(runtime)
    from edge_slr.runtimes import RuntimeCorrector, load_runtime_corrector

    expected = reference.correct_batch(noisy)
    few = noisy[:6] if runtime == "openvino" else noisy  # OpenVINO: slow per call (see registry)
    with load_runtime_corrector(corrector_dir, runtime, decoding="step") as converted:
        assert isinstance(converted, RuntimeCorrector) and converted.name == runtime
        assert converted.max_glosses == reference.max_glosses
        gated = converted.correct_batch(few)
        ungated = converted.correct_batch(few, gate=False)
        beam = converted.correct_batch(noisy[:6], beam_size=3, gate=False)
        first = converted.correct_batch(noisy[:6], num_stages=1, gate=False)
    same(gated, expected[: len(few)])
    same(ungated, reference.correct_batch(few, gate=False))
    same(beam, reference.correct_batch(noisy[:6], beam_size=3, gate=False))
    same(first, reference.correct_batch(noisy[:6], num_stages=1, gate=False))
    assert sum(c.changed for c in ungated) >= len(few) // 2  # the stages do propose changes
    # the default: the input as a draft (and early exit): the same corrections and decisions
    with load_runtime_corrector(corrector_dir, runtime) as converted:
        assert converted.decoding == "draft"
        drafted, drafted_ungated = (
            converted.correct_batch(noisy),
            converted.correct_batch(few, gate=False),
        )
    same(drafted_ungated, reference.correct_batch(few, gate=False))
    assert [c.glosses for c in drafted] == [c.glosses for c in expected]
    assert drafted[-2].glosses == () and drafted[-2].stages == ()  # empty: passed through
    assert drafted[-1].glosses[0] == "NEVER-SEEN-GLOSS"  # an unknown gloss comes back
    accepted = [[s.accepted for s in c.stages] for c in expected]
    assert [[s.accepted for s in c.stages] for c in drafted] == accepted


def test_gates_that_accept_some_proposals_decide_alike(
    corrector_dir: Path, reference, noisy: list
) -> None:
    """Gates between the observed measures: the same proposals pass in numpy and in torch."""
    from edge_slr.runtimes import RuntimeCorrector, choose_model
    from edge_slr.training.corrector import Corrector, GateConfig

    ungated = reference.correct_batch(noisy, gate=False)
    margins = np.sort([s.margin for c in ungated for s in c.stages if s.edit_rate > 0])
    middle = margins[len(margins) // 4 : 3 * len(margins) // 4 + 1]
    widest = int(np.argmax(np.diff(middle)))  # a limit far from every observed margin
    gate = GateConfig(0.0, float(middle[widest : widest + 2].mean()), max_edit_rate=0.5)
    gates = [gate, gate]
    torch_gated = Corrector(reference.stages, reference.vocab, gates).correct_batch(noisy)
    accepted = [s.accepted for c in torch_gated for s in c.stages]
    assert any(accepted) and not all(accepted)
    entry = choose_model(corrector_dir, "corrector", "onnxruntime")
    description = replace(
        entry.description,
        source={**entry.description.source, "gates": [g.to_dict() for g in gates]},
    )
    with RuntimeCorrector(entry.path, description, runtime="onnxruntime", decoding="step") as step:
        same(step.correct_batch(noisy), torch_gated)
    with RuntimeCorrector(entry.path, description, runtime="onnxruntime") as drafted:
        got = drafted.correct_batch(noisy)
    assert [c.glosses for c in got] == [c.glosses for c in torch_gated]
    assert [s.accepted for c in got for s in c.stages] == accepted


def test_bad_requests_and_sidecars(corrector_dir: Path, tmp_path: Path) -> None:
    from edge_slr.runtimes import load_runtime_corrector

    with load_runtime_corrector(corrector_dir / "corrector.onnx.json") as converted:
        with pytest.raises(InputError, match="got a string"):
            converted.correct_batch("REGEN SONNE")
        with pytest.raises(InputError, match="beam_size must be an integer >= 1, got 0"):
            converted.correct(["REGEN"], beam_size=0)
        with pytest.raises(InputError, match="num_stages must be in 1..2, got 3"):
            converted.correct_batch([["REGEN"]], num_stages=3)
    broken = tmp_path / "broken"
    shutil.copytree(corrector_dir, broken, ignore=shutil.ignore_patterns("corrector"))
    sidecar = broken / "corrector.onnx.json"
    data = json.loads(sidecar.read_text())
    data["source"].pop("gates")
    sidecar.write_text(json.dumps(data))
    with pytest.raises(FormatError, match="corrector sidecar lacks a usable 'gates'"):
        load_runtime_corrector(broken)
    with pytest.raises(FormatError, match="no converted corrector model here"):
        load_runtime_corrector(tmp_path)


# -- in the Recognizer -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(corrector_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny student (ONNX) with the converted corrector only: no corrector.pt."""
    from edge_slr.converters import convert

    student = build_tiny_student(tmp_path_factory.getbasetemp())
    out = tmp_path_factory.mktemp("student-and-converted-corrector")
    convert(student.checkpoint, "onnx", out)
    for path in corrector_dir.glob("corrector*.onnx*"):
        shutil.copy(path, out / path.name)
    return out


def test_recognizer_corrects_with_the_converted_corrector(
    model_dir: Path, corrector_dir: Path, reference, tmp_path_factory, caplog
) -> None:
    from edge_slr.data.dataset import LandmarkDataset
    from edge_slr.recognition.recognizer import Recognizer
    from edge_slr.runtimes import RuntimeCorrector

    student = build_tiny_student(tmp_path_factory.getbasetemp())
    dev = LandmarkDataset(student.data, "dev")
    items = [dev[i] for i in range(6)]
    with caplog.at_level(logging.WARNING), Recognizer.create_from_model_dir(model_dir) as rec:
        assert isinstance(rec.corrector, RuntimeCorrector) and rec.has_corrector
        results = [rec.recognize_landmarks(item.landmarks) for item in items]
        streamed = rec.process_landmarks(items[0].landmarks.data[0], 0)
    assert "unknown to the corrector" not in caplog.text  # it knows the student's glosses
    assert not streamed.final
    expected = reference.correct_batch([list(r.recognized) for r in results])
    for result, want in zip(results, expected, strict=True):
        assert result.correction is not None and result.timings.correction_ms > 0
        assert result.correction.input == result.recognized
        assert result.corrected == want.glosses
        assert [s.accepted for s in result.correction.stages] == [s.accepted for s in want.stages]
    # OpenVINO reads the ONNX corrector when asked to run everything on OpenVINO
    pytest.importorskip("openvino")
    with Recognizer.create_from_model_dir(model_dir, runtime="openvino") as rec:
        assert rec.corrector.name == "openvino" and rec.runtime.name == "openvino"
        assert rec.recognize_landmarks(items[0].landmarks).corrected == results[0].corrected
    with Recognizer.create_from_model_dir(model_dir, correct=False) as rec:
        assert rec.corrector is None


def test_torch_folder_is_used_only_when_asked_or_alone(
    model_dir: Path, corrector_dir: Path, tmp_path: Path
) -> None:
    from edge_slr.runtimes import RuntimeCorrector
    from edge_slr.runtimes.corrector import load_corrector
    from edge_slr.training.corrector import Corrector

    both = tmp_path / "both"
    shutil.copytree(model_dir, both)
    shutil.copytree(corrector_dir / "corrector", both / "corrector")
    converted = load_corrector(both, None)
    assert isinstance(converted, RuntimeCorrector)
    converted.close()
    assert isinstance(load_corrector(both, None, runtime="torch"), Corrector)
    for path in both.glob("corrector*.onnx*"):
        path.unlink()
    assert isinstance(load_corrector(both, None), Corrector)
    assert load_corrector(tmp_path, None) is None


ENGINE_MODULES = {"onnxruntime": "onnxruntime", "openvino": "openvino", "litert": "ai_edge_litert"}


def engine_folder(corrector_dir: Path, runtime: str) -> Path:
    """The converted corrector an engine runs: the ONNX graphs, for LiteRT a TFLite conversion
    (a TensorFlow rebuild of the stages, batch 1)."""
    if runtime != "litert":
        return corrector_dir
    pytest.importorskip("tensorflow")
    from edge_slr.converters import convert

    out = corrector_dir.parent / "tflite-corrector"
    if not (out / "done").exists():
        convert(corrector_dir / "corrector", "tflite", out)
        (out / "done").touch()
    return out


@pytest.mark.parametrize(
    "runtime",
    [
        "onnxruntime",
        pytest.param("openvino", marks=pytest.mark.slow),
        pytest.param("litert", marks=pytest.mark.slow),
    ],
)
def test_torch_and_every_engine_decode_alike_through_the_one_decoder(
    corrector_dir: Path, reference, noisy: list, runtime: str
) -> None:
    """Greedy (draft and stepwise, gated and not) and beam search over the torch stages (padded
    batches) and over an engine's graphs (batch 1): the same corrections and decisions."""
    pytest.importorskip(ENGINE_MODULES[runtime])
    from edge_slr.recognition.correction_chain import GraphCorrector
    from edge_slr.runtimes import load_runtime_corrector

    few = noisy[:6] if runtime == "openvino" else noisy  # OpenVINO: slow per call (see registry)
    with load_runtime_corrector(engine_folder(corrector_dir, runtime), runtime) as converted:
        assert converted.name == runtime
        for decoding in ("draft", "step"):
            # no early exit: a rejected stage's proposal is then complete, as torch's
            engine = GraphCorrector(
                converted.graphs, converted.vocab, converted.gates, decoding, early_exit=False
            )
            torch_stages = reference.graph_corrector(decoding)
            for gate in (True, False):
                same(
                    engine.correct_batch(few, gate=gate), torch_stages.correct_batch(few, gate=gate)
                )
        beam = converted.correct_batch(noisy[:6], beam_size=3, gate=False)
    same(beam, reference.correct_batch(noisy[:6], beam_size=3, gate=False))
    assert sum(c.changed for c in beam) >= 2  # the stages do propose changes
