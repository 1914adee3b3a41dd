"""Draft-verified greedy correction (edge_slr.recognition.correction.draft_greedy) and the chain.

Two kinds of model: a numpy "oracle" whose greedy output is known (to count decoder calls per
edit) and real torch corrector stages with random weights, whose draft decoding must give what
the stepwise decoding gives: the same proposals, gate measures and decisions.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edge_slr.decoding.vocab import CorrectorVocabulary, Vocabulary
from edge_slr.errors import InputError
from edge_slr.recognition.correction import StageGraphs, draft_greedy, run_stage
from edge_slr.recognition.correction_chain import GateConfig, GraphCorrector, sidecar_graphs

GLOSSES = [f"G{i}" for i in range(20)]
VOCAB = CorrectorVocabulary.from_sentences([GLOSSES])


def oracle(desired: list[int], max_len: int = 64) -> StageGraphs:
    """A stage that writes ``desired`` whatever its input (log-probs of a peaked softmax)."""
    size = len(VOCAB)

    def decode(tgt: np.ndarray, memory: np.ndarray, src: np.ndarray) -> np.ndarray:
        out = np.zeros((1, tgt.shape[1], size))
        for row in range(tgt.shape[1]):
            prefix = tgt[0, 1 : row + 1].tolist()
            on_track = prefix == desired[:row]
            nxt = desired[row] if on_track and row < len(desired) else VOCAB.eos_id
            out[0, row, nxt] = 5.0
        return out - np.log(np.exp(out).sum(-1, keepdims=True))

    return StageGraphs(lambda src: np.zeros((1, src.shape[1], 4)), decode, max_len)


def ids(*numbers: int) -> list[int]:
    return [VOCAB.encode([f"G{n}"])[0][0] for n in numbers]


def counted(graphs: StageGraphs) -> tuple[StageGraphs, list[int]]:
    """The graphs with their decoder calls recorded (one entry per call)."""
    calls: list[int] = []

    def decode(*args: np.ndarray) -> np.ndarray:
        calls.append(1)
        return graphs.decode(*args)

    return replace(graphs, decode=decode), calls


@pytest.mark.parametrize(
    ("source", "calls"),
    [
        (ids(1, 2, 3, 4, 5, 6), 1),  # kept: one call confirms every gloss and <eos>
        (ids(1, 2, 9, 4, 5, 6), 2),  # one substitution
        (ids(1, 2, 9, 3, 4, 5, 6), 2),  # an inserted gloss is dropped
        (ids(1, 2, 3, 3, 4, 5, 6), 2),  # a repetition is dropped
        (ids(1, 2, 4, 5, 6), 3),  # a missing gloss: written, then the guess is corrected
        (ids(9, 8, 7), 7),  # a rewrite: one call per gloss and <eos>, as plain greedy
    ],
)
def test_draft_decoding_gives_the_greedy_output_in_one_call_per_edit(source, calls) -> None:
    graphs, draft_calls = counted(oracle(ids(1, 2, 3, 4, 5, 6)))
    draft = draft_greedy(graphs, source, VOCAB)
    step_graphs, step_calls = counted(oracle(ids(1, 2, 3, 4, 5, 6)))
    step = run_stage(step_graphs, [source], VOCAB)
    assert draft.proposal == step.proposals[0] == ids(1, 2, 3, 4, 5, 6)
    assert len(draft_calls) == calls
    assert len(step_calls) == 6 + 3  # one per token and <eos>, plus two scoring calls
    assert draft.confidence == pytest.approx(step.confidence[0], abs=1e-9)
    if draft.proposal != source:
        margin = draft.logp_proposal - draft.logp_source
        assert margin == pytest.approx(step.margin[0], abs=1e-9)


def test_output_limit_and_bad_lengths() -> None:
    # a stage that never stops is cut at 2 * len + 4 glosses (correction.output_limit)
    endless = oracle(ids(*([1] * 60)), max_len=64)
    assert len(draft_greedy(endless, ids(1, 2), VOCAB).proposal) == 8
    assert len(run_stage(endless, [ids(1, 2)], VOCAB).proposals[0]) == 8
    with pytest.raises(InputError, match="at most 63 glosses, got 64"):
        draft_greedy(endless, ids(*([1] * 64)), VOCAB)
    # an empty input (a previous stage dropped everything) is decoded too, as Corrector does
    assert draft_greedy(endless, [], VOCAB).proposal == ids(1, 1, 1, 1)
    with pytest.raises(InputError, match="num_stages"):
        GraphCorrector([endless], VOCAB, [GateConfig()]).correct(["G1"], num_stages=2)
    with pytest.raises(InputError, match="one gate per stage"):
        GraphCorrector([endless], VOCAB, [])
    with pytest.raises(InputError, match="decoding"):
        GraphCorrector([endless], VOCAB, [GateConfig()], decoding="beam")
    with pytest.raises(InputError, match=r"max_len must be an integer >= 3 .*got 2"):
        StageGraphs(endless.encode, endless.decode, 2)


def test_gate_and_unknown_glosses_in_the_chain() -> None:
    fix = oracle(ids(1, 2, 3, 4))
    off = GateConfig(min_margin=float("inf"))  # rejects every change
    for decoding in ("draft", "step"):
        corrector = GraphCorrector([fix, fix], VOCAB, [off, GateConfig()], decoding)
        result = corrector.correct(["G1", "G2", "G9", "G4"])
        assert [s.accepted for s in result.stages] == [False, True]
        assert result.glosses == ("G1", "G2", "G3", "G4") and result.changed
        assert result.stages[0].output == ("G1", "G2", "G9", "G4")
        # over-long and empty sentences pass through untouched
        assert corrector.correct([]).glosses == () and corrector.correct([]).stages == ()
        long = ["G1"] * 64
        assert corrector.correct(long).glosses == tuple(long)
    # an unknown gloss is carried as <unk> and restored
    keep = oracle([VOCAB.unk_id, *ids(2)])
    out = GraphCorrector([keep], VOCAB, [GateConfig()]).correct(["NEU", "G2"])
    assert out.glosses == ("NEU", "G2") and not out.changed


def test_torch_stages_decode_as_the_training_code() -> None:
    torch = pytest.importorskip("torch")
    vocab = CorrectorVocabulary(Vocabulary.from_sentences([GLOSSES], oov="unk"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on a busy 2-core machine are many times slower
    try:
        _compare_with_training_decoding(torch, vocab)
    finally:
        torch.set_num_threads(threads)


def _compare_with_training_decoding(torch, vocab: CorrectorVocabulary) -> None:
    from edge_slr.training.corrector import Corrector, CorrectorDims, build_stages

    torch.manual_seed(3)
    dims = CorrectorDims(len(vocab), d_model=32, n_heads=2, encoder_layers=2, ff_dim=64)
    stages = build_stages(dims, vocab.pad_id)
    with torch.no_grad():  # lean towards copying, so that drafts are partly accepted
        for stage in stages:
            stage.copy_gate.bias.fill_(-3.0)
    gates = [GateConfig(min_confidence=0.05, max_edit_rate=1.0), GateConfig()]
    reference = Corrector(stages, vocab, gates)
    draft = GraphCorrector(reference.graphs(), vocab, gates)
    step = GraphCorrector(reference.graphs(), vocab, gates, "step")
    rng = np.random.default_rng(0)
    sentences = [list(rng.choice(GLOSSES, rng.integers(3, 12))) for _ in range(8)]
    batched = reference.correct_batch(sentences, batch_size=3)  # padded batches of the torch graphs
    for sentence, want in zip(sentences, batched, strict=True):
        one_by_one = (draft.correct(sentence), step.correct(sentence), reference.correct(sentence))
        for got in one_by_one:
            assert got.glosses == want.glosses
            for a, b in zip(got.stages, want.stages, strict=True):
                assert (a.proposal, a.accepted) == (b.proposal, b.accepted)
                assert a.confidence == pytest.approx(b.confidence, abs=1e-4)
                assert a.margin == pytest.approx(b.margin, abs=1e-3)
                assert a.edit_rate == b.edit_rate
        single = GraphCorrector(reference.graphs(), vocab, gates).correct(sentence, num_stages=1)
        assert single.stages[0].output == want.stages[0].output and len(single.stages) == 1
    # each call yields at least one token, and no scoring calls: fewer calls even at random
    assert draft.decoder_calls <= step.decoder_calls - 2 * 2 * 8


def test_early_exit_when_the_gate_must_keep_the_input() -> None:
    fix = oracle(ids(1, 2, 3, 4, 5, 6))
    sentence = ["G1", "G2", "G9", "G4", "G5", "G6"]
    for min_margin, accepted in ((1000.0, False), (1.0, True)):
        gates = [GateConfig(min_margin=min_margin)]
        fast = GraphCorrector([fix], VOCAB, gates)
        full = GraphCorrector([fix], VOCAB, gates, early_exit=False)
        a, b = fast.correct(sentence), full.correct(sentence)
        assert a.glosses == b.glosses
        assert a.stages[0].accepted == b.stages[0].accepted == accepted
        if accepted:  # nothing to stop: the same work
            assert fast.decoder_calls == full.decoder_calls == 2
        else:  # one call scores the input and shows the margin cannot reach 1000 nats
            assert (fast.decoder_calls, full.decoder_calls) == (1, 2)
            assert a.stages[0].margin < 1000.0
    # without the gate nothing stops early
    assert GraphCorrector([fix], VOCAB, gates).correct(sentence, gate=False).changed


def test_graph_files_from_a_sidecar() -> None:
    sidecar = {
        "graphs": [
            {"role": f"stage{i}.{part}", "file": {"name": f"c-stage{i}-{part}.onnx"}}
            for i in (1, 0)
            for part in ("decoder", "encoder")
        ],
    }
    assert sidecar_graphs(sidecar) == [
        ("c-stage0-encoder.onnx", "c-stage0-decoder.onnx"),
        ("c-stage1-encoder.onnx", "c-stage1-decoder.onnx"),
    ]
    with pytest.raises(InputError, match="no corrector graphs"):
        sidecar_graphs({"graphs": []})
