"""The gloss corrector: model shapes, a short real training run, gate, decoding, checkpoints, CLI.

One tiny corrector is trained once per module on real PHOENIX-2014-T train sentences (a few
seconds); the tests that need a trained model share it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edge_slr.decoding.vocab import Vocabulary  # noqa: E402
from edge_slr.errors import FormatError, InputError  # noqa: E402
from edge_slr.recognition.correction import run_stage, score_targets  # noqa: E402
from edge_slr.training.corrector import (  # noqa: E402
    Corrector,
    CorrectorDims,
    CorrectorVocabulary,
    GateConfig,
    beam_decode,
    build_model,
    greedy_decode,
    load_checkpoint,
    load_config,
    load_corrector,
    save_corrector,
    train_corrector,
)
from edge_slr.training.corrector.decode import torch_graphs  # noqa: E402

TINY = [
    "model.d_model=64",
    "model.n_heads=4",
    "model.ff_dim=128",
    "model.encoder_layers=2",
    "model.dropout=0.0",
    "train.max_steps=150",
    "train.max_minutes=10",
    "train.batch_size=32",
    "train.learning_rate=3e-3",
    "train.warmup_steps=20",
    "train.eval_every=50",
    "train.log_every=50",
    "train.holdout=0.1",
    "train.gate_levels=[0.0, 0.2]",
    "train.stage2_model_share=0.3",
    "noise.wer_max=0.3",
]


def small_dims(**kw) -> CorrectorDims:
    return CorrectorDims(
        **{
            "vocab_size": 30,
            "d_model": 32,
            "n_heads": 4,
            "ff_dim": 64,
            "encoder_layers": 2,
            "dropout": 0.0,
            **kw,
        }
    )


# -- model ----------------------------------------------------------------------------------
def test_dims_are_validated() -> None:
    with pytest.raises(InputError, match="divisible"):
        small_dims(d_model=30, n_heads=4)
    with pytest.raises(InputError, match="encoder_layers"):
        small_dims(encoder_layers=0)
    with pytest.raises(InputError, match="unknown model option"):
        CorrectorDims.from_dict({"vocab_size": 9, "width": 3})


def test_default_dims_are_the_edge_size() -> None:
    dims = CorrectorDims(vocab_size=1100)
    assert (dims.d_model, dims.encoder_layers, dims.decoder_layers, dims.stages) == (256, 4, 1, 2)
    params = sum(p.numel() for p in build_model(dims).parameters())
    assert 3_000_000 < params < 6_000_000


def test_shapes_causality_and_padding() -> None:
    torch.manual_seed(0)
    model = build_model(small_dims()).eval()
    src = torch.randint(1, 30, (3, 7))
    tgt = torch.randint(1, 30, (3, 5))
    memory = model.encode(src)
    assert memory.shape == (3, 7, 32)
    logits = model.decode(tgt, memory, src)
    assert logits.shape == (3, 5, 30)
    assert torch.allclose(model(src, tgt), logits)
    # a later target token never changes the logits of earlier positions
    changed = tgt.clone()
    changed[:, -1] = (changed[:, -1] % 29) + 1
    assert torch.allclose(model.decode(changed, memory, src)[:, :-1], logits[:, :-1], atol=1e-5)
    # a padded batch gives the same logits as the sentence alone
    short = src[:1, :4]
    padded = torch.cat([short, torch.zeros(1, 3, dtype=torch.long)], 1)
    alone = model(short, tgt[:1])
    batched = model(padded, tgt[:1], padded == 0)
    assert torch.allclose(alone, batched, atol=1e-5)


def test_vocabulary_keeps_recogniser_ids_and_restores_unknown_glosses() -> None:
    base = Vocabulary.from_sentences([["REGEN", "SONNE"], ["WIND"]])
    vocab = CorrectorVocabulary(base)
    ids, unknown = vocab.encode(["SONNE", "HAGEL", "WIND", "NEBEL"])
    assert ids[0] == base.index("SONNE") and ids[2] == base.index("WIND")
    assert ids[1] == ids[3] == vocab.unk_id and unknown == ["HAGEL", "NEBEL"]
    assert vocab.decode(ids, unknown) == ["SONNE", "HAGEL", "WIND", "NEBEL"]
    assert vocab.decode(ids + [vocab.eos_id, ids[0]], unknown) == [
        "SONNE",
        "HAGEL",
        "WIND",
        "NEBEL",
    ]
    assert vocab.pad_id == 0 and len({vocab.bos_id, vocab.eos_id, vocab.unk_id}) == 3
    # a recogniser vocabulary without <unk> gets one appended
    plain = CorrectorVocabulary(Vocabulary.from_sentences([["A", "B"]]))
    assert plain.tokens[-3:] == ("<bos>", "<eos>", "<unk>") and plain.unk_id == len(plain) - 1
    assert CorrectorVocabulary.from_dict(vocab.to_dict()) == vocab
    with pytest.raises(InputError, match="string"):
        vocab.encode("SONNE WIND")


# -- training on real sentences ----------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(shared_data: Path, tmp_path_factory) -> tuple[Corrector, dict, Path, list]:
    from edge_slr.data.corpora import load_corpus

    samples = load_corpus("phoenix2014t", shared_data / "phoenix2014t", "train")
    sentences = [s.glosses for s in samples if s.glosses][:200]
    out = tmp_path_factory.mktemp("corrector")
    config = load_config(None, TINY)
    corrector, report = train_corrector(config, out, sentences=sentences)
    return corrector, report, out, sentences


def test_short_training_reduces_loss_and_tunes_gates(trained) -> None:
    corrector, report, _, _ = trained
    assert len(report["stages"]) == 2
    first_stage, second_stage = report["stages"]
    history = first_stage["history"]
    assert history[0]["step"] == 0 and first_stage["steps"] == 150
    assert history[-1]["val_loss"] < 0.7 * history[0]["val_loss"], history
    # stage 2 starts from stage 1's weights and trains on other inputs: it ran, that is all
    # this tiny run can show (its gate decides whether it is used)
    assert second_stage["steps"] == 150 and np.isfinite(second_stage["val_loss"])
    for tuning in report["gate_tuning"]:
        for row in tuning["levels"].values():  # the gate never harms the held-out sentences
            assert row["after"] <= row["before"] + 1e-9
    assert len(corrector.gates) == 2


def test_gate_keeps_the_input_when_not_confident(trained) -> None:
    corrector, _, _, sentences = trained
    noisy = [list(s[1:]) + [s[0]] for s in sentences[:20]]  # rotated: the model will change them
    ungated = corrector.correct_batch(noisy, gate=False)
    assert any(r.changed for r in ungated)
    strict = Corrector(corrector.stages, corrector.vocab, [GateConfig(min_confidence=1.0)] * 2)
    for result, sentence in zip(strict.correct_batch(noisy), noisy, strict=True):
        assert result.glosses == tuple(sentence) and not result.changed
        assert all(not s.accepted for s in result.stages if s.proposal != s.input)
    # the threshold decides: just below the proposal's confidence it passes, just above it not
    # (1e-4 margins: a batch of one and a padded batch of 20 differ by float rounding)
    threshold = ungated[0].stages[0].confidence
    below = Corrector(corrector.stages[:1], corrector.vocab, [GateConfig(threshold - 1e-4)])
    assert below.correct(noisy[0]).stages[0].accepted
    assert below.correct(noisy[0]).glosses == ungated[0].stages[0].proposal
    above = Corrector(corrector.stages[:1], corrector.vocab, [GateConfig(threshold + 1e-4)])
    assert not above.correct(noisy[0]).stages[0].accepted
    assert above.correct(noisy[0]).glosses == tuple(noisy[0])


def test_gate_bounds_the_size_of_a_change(trained) -> None:
    corrector, _, _, sentences = trained
    noisy = [list(s[1:]) + [s[0]] for s in sentences[:20]]
    ungated = corrector.correct_batch(noisy, gate=False, num_stages=1)
    changed = [r for r in ungated if r.changed]
    assert changed and all(r.stages[0].edit_rate > 0 for r in changed)
    rate = changed[0].stages[0].edit_rate
    tight = Corrector(
        corrector.stages[:1], corrector.vocab, [GateConfig(max_edit_rate=rate - 1e-6)]
    )
    loose = Corrector(corrector.stages[:1], corrector.vocab, [GateConfig(max_edit_rate=rate)])
    assert tight.correct(changed[0].input).glosses == changed[0].input
    assert loose.correct(changed[0].input).glosses == changed[0].glosses
    assert (
        GateConfig.from_dict(GateConfig(0.5, 2.0, max_edit_rate=0.25).to_dict()).max_edit_rate
        == 0.25
    )
    with pytest.raises(InputError, match="max_edit_rate"):
        GateConfig(max_edit_rate=-1.0)


def test_unknown_glosses_survive_correction(trained) -> None:
    corrector, _, _, sentences = trained
    sentence = list(sentences[3]) + ["GANZ-NEUES-WORT"]
    result = corrector.correct(sentence, gate=False)
    # whatever the model proposes, the unknown gloss is never replaced by a made-up one
    known = set(corrector.vocab.base) - {"<blank>", "<unk>"}
    assert all(g in known or g == "GANZ-NEUES-WORT" for g in result.glosses)
    assert result.glosses.count("GANZ-NEUES-WORT") <= 1
    strict = Corrector(corrector.stages, corrector.vocab, [GateConfig(min_margin=float("inf"))] * 2)
    assert strict.correct(sentence).glosses == tuple(sentence)


def test_beam_one_equals_greedy_and_wider_beams_score_at_least_as_well(trained) -> None:
    corrector, _, _, sentences = trained
    model, vocab = corrector.stages[0], corrector.vocab
    sources = [vocab.encode(list(s))[0] for s in sentences[:12]]
    sources = [s[:-1] for s in sources if len(s) > 1]  # a missing last gloss to restore
    greedy = greedy_decode(model, sources, vocab)
    assert [beam_decode(model, s, vocab, beam_size=1) for s in sources] == greedy
    beam = [beam_decode(model, s, vocab, beam_size=4) for s in sources]

    def normalised(outputs):
        logp, n = score_targets(torch_graphs(model), sources, outputs, vocab)
        return logp / n

    assert normalised(beam).mean() >= normalised(greedy).mean() - 1e-6
    with pytest.raises(InputError, match="beam_size"):
        beam_decode(model, sources[0], vocab, beam_size=0)


def test_single_stage_use_is_the_first_stage_of_the_chain(trained) -> None:
    corrector, _, _, sentences = trained
    batch = [list(s[1:]) for s in sentences[40:50]]
    dual = corrector.correct_batch(batch, gate=False)
    single = corrector.correct_batch(batch, gate=False, num_stages=1)
    assert [r.glosses for r in single] == [r.stages[0].output for r in dual]
    assert all(len(r.stages) == 1 for r in single)
    with pytest.raises(InputError, match="num_stages"):
        corrector.correct_batch(batch, num_stages=3)


def test_batched_greedy_equals_one_by_one(trained) -> None:
    corrector, _, _, sentences = trained
    vocab, model = corrector.vocab, corrector.stages[1]
    sources = [vocab.encode(list(s))[0] for s in sentences[20:30]]
    batched = greedy_decode(model, sources, vocab)
    assert batched == [greedy_decode(model, [s], vocab)[0] for s in sources]


def test_checkpoint_round_trip_with_weights_only(trained, tmp_path) -> None:
    corrector, _, out, sentences = trained
    raw = torch.load(out / "corrector.pt", weights_only=True)
    assert raw["format"] == "edge-slr-corrector"
    assert raw["dims"]["d_model"] == 64 and raw["dims"]["stages"] == 2
    assert raw["config"]["train"]["max_steps"] == 150
    assert set(raw["versions"]) >= {"edge_slr", "torch"}
    assert Vocabulary.load(out / "vocabulary.json") == corrector.vocab.base
    assert json.loads((out / "model.json").read_text())["vocabulary"]["tokens"][0] == "<blank>"
    loaded = load_corrector(out)
    assert loaded.gates == corrector.gates
    batch = [list(s) for s in sentences[:15]]
    assert [r.glosses for r in loaded.correct_batch(batch)] == [
        r.glosses for r in corrector.correct_batch(batch)
    ]
    again = save_corrector(tmp_path / "copy", loaded)
    assert load_checkpoint(again)["gates"] == raw["gates"]


def test_bad_checkpoints_are_clear_errors(tmp_path) -> None:
    with pytest.raises(FormatError, match="does not exist"):
        load_corrector(tmp_path / "missing")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(FormatError, match="junk.pt"):
        load_corrector(junk)
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(FormatError, match="not an edge-slr corrector"):
        load_corrector(other)


def test_config_overrides_and_errors(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[train]\ncorpus = "phoenix2014"\nmax_minutes = 3\n[model]\nd_model = 128\n')
    config = load_config(path, ["train.max_minutes=1.5", "noise.clean_share=0.4"])
    assert config.train.corpus == "phoenix2014" and config.train.max_minutes == 1.5
    assert config.noise.clean_share == 0.4 and config.dims(50).d_model == 128
    with pytest.raises(InputError, match="(?i)table.key=value"):
        load_config(None, ["max_minutes=3"])
    with pytest.raises(InputError, match="unknown train option"):
        load_config(None, ["train.epochs=3"])
    with pytest.raises(InputError, match="corpus"):
        load_config(None, ["train.corpus=wsj"])
    bounded = load_config(None, ["train.stage2_pool_sentences=500", "train.gate_min_gain=0.001"])
    assert bounded.train.stage2_pool_sentences == 500 and bounded.train.gate_min_gain == 0.001
    with pytest.raises(InputError, match="gate_min_gain=-0.1"):
        load_config(None, ["train.gate_min_gain=-0.1"])
    with pytest.raises(InputError, match="stage2_pool_sentences=-1"):
        load_config(None, ["train.stage2_pool_sentences=-1"])
    broken = tmp_path / "broken.toml"
    broken.write_text("[train\n")
    with pytest.raises(FormatError, match="broken.toml"):
        load_config(broken)


def test_shipped_configs_load() -> None:
    configs = sorted(Path(__file__).parents[1].joinpath("configs").glob("corrector-*.toml"))
    assert configs
    for path in configs:
        load_config(path)


# -- command line ----------------------------------------------------------------------------
def _cli(module, argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    module.add_parser(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.run(args)


def test_cli_correct(trained, capsys, tmp_path) -> None:
    from edge_slr.cli import correct

    corrector, _, out, sentences = trained
    sentence = " ".join(sentences[5])
    assert _cli(correct, ["correct", sentence, "--model", str(out)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == " ".join(corrector.correct(sentence.split()).glosses)
    listing = tmp_path / "in.txt"
    listing.write_text(sentence + "\n" + " ".join(sentences[6]) + "\n")
    assert (
        _cli(
            correct,
            ["correct", "--input", str(listing), "--model", str(out), "--json", "--beam", "3"],
        )
        == 0
    )
    details = json.loads(capsys.readouterr().out)
    assert len(details) == 2 and len(details[0]["stages"]) == 2
    with pytest.raises(InputError, match="no sentence"):
        _cli(correct, ["correct", "--model", str(out)])
    with pytest.raises(InputError, match="--stages"):
        _cli(correct, ["correct", "A", "--model", str(out), "--stages", "3"])


def test_cli_train_corrector(shared_data, tmp_path, capsys) -> None:
    from edge_slr.cli import train_corrector as cli

    out = tmp_path / "model"
    argv = [
        "corrector",
        "--corpus",
        "phoenix2014",
        "--root",
        str(shared_data / "phoenix2014"),
        "--out",
        str(out),
    ]
    argv += [a for t in TINY for a in ("--set", t)]
    confusion = tmp_path / "confusion.json"
    confusion.write_text(json.dumps({"REGEN": {"SONNE": 2, "WOLKE": 1}}))
    argv += ["--set", "train.max_steps=20", "--set", "train.limit_sentences=60"]
    argv += ["--set", "model.stages=1", "--set", f"train.confusion_table={str(confusion)!r}"]
    assert _cli(cli, argv) == 0
    printed = capsys.readouterr().out
    assert "stage 1: 20 steps" in printed and "held-out noise 20%" in printed
    stored = load_checkpoint(out)["config"]["train"]
    assert stored["corpus"] == "phoenix2014" and stored["confusion_table"] == str(confusion)
    assert len(load_corrector(out).stages) == 1
    retune = ["corrector", "--out", str(out), "--retune-gates", "--set", "train.gate_copies=2"]
    assert _cli(cli, retune) == 0
    assert "tuned again" in capsys.readouterr().out
    assert load_checkpoint(out)["config"]["train"]["gate_copies"] == 2
    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2]")
    argv[-1] = f"train.confusion_table={str(broken)!r}"
    with pytest.raises(FormatError, match="broken.json"):
        _cli(cli, argv)


@pytest.mark.slow
def test_stage_exports_with_the_dynamo_onnx_exporter(tmp_path) -> None:
    """Encoder and decoder export with dynamic batch and lengths (what the converters rely on)."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    model = build_model(small_dims()).eval()

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stage = model

        def forward(self, src):
            return self.stage.encode(src)

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stage = model

        def forward(self, tgt, memory, src):
            return self.stage.decode_last(tgt, memory, src)

    batch, src_len, tgt_len = (torch.export.Dim(n, max=64) for n in ("batch", "src_len", "tgt_len"))
    src, tgt = torch.randint(1, 30, (2, 9)), torch.randint(1, 30, (2, 4))
    memory = model.encode(src).detach()
    torch.onnx.export(
        Encoder(),
        (src,),
        tmp_path / "enc.onnx",
        dynamo=True,
        dynamic_shapes={"src": {0: batch, 1: src_len}},
    )
    torch.onnx.export(
        Decoder(),
        (tgt, memory, src),
        tmp_path / "dec.onnx",
        dynamo=True,
        dynamic_shapes={
            "tgt": {0: batch, 1: tgt_len},
            "memory": {0: batch, 1: src_len},
            "src": {0: batch, 1: src_len},
        },
    )
    enc = ort.InferenceSession(str(tmp_path / "enc.onnx"))
    dec = ort.InferenceSession(str(tmp_path / "dec.onnx"))
    for b, s, t in ((1, 5, 1), (3, 20, 12)):
        src, tgt = torch.randint(1, 30, (b, s)), torch.randint(1, 30, (b, t))
        with torch.no_grad():
            want_mem = model.encode(src)
            want = model.decode_last(tgt, want_mem, src)
        got_mem = enc.run(None, {enc.get_inputs()[0].name: src.numpy()})[0]
        names = [i.name for i in dec.get_inputs()]
        got = dec.run(None, {names[0]: tgt.numpy(), names[1]: got_mem, names[2]: src.numpy()})[0]
        assert np.abs(got_mem - want_mem.numpy()).max() < 1e-4
        assert np.abs(got - want.numpy()).max() < 1e-4


def test_gate_tuning_switches_off_a_stage_whose_gain_is_noise(trained) -> None:
    from edge_slr.training.corrector.gate import tune_gate

    corrector, _, _, sentences = trained
    model, vocab = corrector.stages[0], corrector.vocab
    refs = [tuple(s) for s in sentences[:30]]
    clean = [vocab.encode(list(s))[0] for s in refs]
    inputs = {0.0: clean, 0.3: [ids[1:] + ids[:1] for ids in clean]}  # rotated: to be fixed
    # batches are cut from length-sorted sentences, results come back in input order
    mixed, graphs = inputs[0.3][::-1], torch_graphs(model)
    batched = run_stage(graphs, mixed, vocab, batch_size=4)
    assert batched.proposals == run_stage(graphs, mixed, vocab, batch_size=1).proposals
    usual = tune_gate(model, vocab, refs, inputs, "phoenix2014t", 0.0)
    gain = np.mean(list(usual.before.values())) - np.mean(list(usual.after.values()))
    strict = tune_gate(model, vocab, refs, inputs, "phoenix2014t", 0.0, min_gain=gain + 1e-3)
    assert strict.gate.min_margin == float("inf") and strict.after == strict.before
    if gain > 0:  # a gain at least min_gain keeps the usual gate
        kept = tune_gate(model, vocab, refs, inputs, "phoenix2014t", 0.0, min_gain=gain / 2)
        assert kept.gate == usual.gate
