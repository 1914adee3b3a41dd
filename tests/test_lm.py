"""Gloss n-gram LM: modified Kneser-Ney training, ARPA writing and reading, scoring vs KenLM."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from edge_slr.decoding.lm import (
    LN10,
    FusedLM,
    FusionSettings,
    NgramLM,
    load_fused_lm,
    read_arpa,
    read_fusion_settings,
)
from edge_slr.errors import FormatError, InputError
from edge_slr.training.lm import (
    FALLBACK_DISCOUNTS,
    Discounts,
    train_corpus_lm,
    train_kneser_ney,
    write_arpa,
    write_fusion_settings,
)

GLOSSES = ("REGEN", "SONNE", "WIND", "NORD", "SUED", "MORGEN", "KALT", "WARM", "SCHNEE", "WOLKE")


def grammar_corpus(count: int, seed: int) -> list[tuple[str, ...]]:
    """Sentences with structure (a Markov chain over the glosses), so n-grams repeat."""
    rng = np.random.default_rng(seed)
    follow = rng.dirichlet(np.full(len(GLOSSES), 0.3), size=len(GLOSSES))
    sentences = []
    for _ in range(count):
        word = int(rng.integers(len(GLOSSES)))
        sentence = [GLOSSES[word]]
        for _ in range(int(rng.integers(0, 7))):
            word = int(rng.choice(len(GLOSSES), p=follow[word]))
            sentence.append(GLOSSES[word])
        sentences.append(tuple(sentence))
    return sentences


@pytest.fixture(scope="module")
def corpus_lms(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """ARPA files of orders 2-5 trained on one 300-sentence corpus."""
    out = tmp_path_factory.mktemp("lms")
    sentences = grammar_corpus(300, seed=1)
    return {n: write_arpa(train_kneser_ney(sentences, n), out / f"{n}.arpa") for n in range(2, 6)}


def probe_sentences() -> list[tuple[str, ...]]:
    """Held-out sentences: unseen n-grams and words the model has never seen."""
    return [*grammar_corpus(40, seed=2), ("REGEN", "HAGEL", "SONNE"), ("NEBEL",), ("WIND", "WIND")]


# ---------------------------------------------------------------- the estimate


def test_hand_computed_bigram_model(tmp_path: Path) -> None:
    # <s> A B </s>, <s> A </s>: too few counts of counts, so discounts 0.5 / 1 / 1.5 (fallback).
    # Unigrams (continuation counts A 1, B 1, </s> 2; total 4): gamma = (0.5+0.5+1)/4 = 0.5
    # over the uniform 1/4 (A, B, </s>, <unk>).
    model = train_kneser_ney([("A", "B"), ("A",)], order=2)
    assert all(d.fallback for d in model.discounts)
    assert (model.discounts[0].d1, model.discounts[0].d2) == FALLBACK_DISCOUNTS[:2]
    lm = read_arpa(write_arpa(model, tmp_path / "lm.arpa"))
    expected = {
        ((), "A"): 0.5 / 4 + 0.5 / 4,
        ((), "</s>"): 1 / 4 + 0.5 / 4,
        ((), "<unk>"): 0.5 / 4,
        (("A",), "B"): 0.5 / 2 + 0.5 * 0.25,  # a(A B) = 1, a(A .) = 2, gamma(A) = 1/2
        (("A",), "</s>"): 0.5 / 2 + 0.5 * 0.375,
        (("A",), "A"): 0.5 * 0.25,  # unseen: back-off to the unigram
        (("<s>",), "A"): (2 - 1) / 2 + 0.5 * 0.25,  # raw count 2 (nothing precedes <s>)
    }
    for (context, word), probability in expected.items():
        assert math.exp(lm.log_prob(context, word)) == pytest.approx(probability, rel=1e-6)


@pytest.mark.parametrize("order", [2, 3, 4, 5])
def test_every_context_is_a_distribution(corpus_lms: dict[int, Path], order: int) -> None:
    lm = read_arpa(corpus_lms[order])
    predicted = [w for w in lm.words if w != "<s>"]
    contexts = [(), ("<s>",), ("<s>", "REGEN"), ("SONNE", "WIND", "NORD"), ("HAGEL", "WIND")]
    contexts += [s[:i] for s in grammar_corpus(10, seed=3) for i in range(len(s))]
    for context in contexts:
        total = sum(math.exp(lm.log_prob(context, w)) for w in predicted)
        assert total == pytest.approx(1.0, abs=2e-5), context


def test_discounts_follow_the_counts_of_counts() -> None:
    counts = [1] * 50 + [2] * 20 + [3] * 10 + [4] * 6 + [9] * 3
    d = Discounts.estimate(counts)
    y = 50 / (50 + 2 * 20)
    assert (d.d1, d.d2, d.d3) == pytest.approx(
        (1 - 2 * y * 20 / 50, 2 - 3 * y * 10 / 20, 3 - 4 * y * 6 / 10)
    )
    assert not d.fallback
    assert Discounts.estimate([1, 1, 2]).fallback  # no count of 3: the fallback


def test_training_is_deterministic(tmp_path: Path) -> None:
    sentences = grammar_corpus(100, seed=4)
    first = write_arpa(train_kneser_ney(sentences, 3), tmp_path / "a.arpa").read_bytes()
    again = write_arpa(train_kneser_ney(list(reversed(sentences)), 3), tmp_path / "b.arpa")
    assert again.read_bytes() == first


@pytest.mark.parametrize(
    ("sentences", "order", "message"),
    [
        ([("A",)], 1, r"order must be an int in \[2, 6\] .*got 1"),
        ([("A",)], 7, "got 7"),
        ([], 3, "no sentences"),
        ([("A",), ()], 3, "sentence 1 must be a non-empty sequence"),
        ([("A B",)], 3, "without spaces"),
        ([("A", "</s>")], 3, "reserved token"),
    ],
)
def test_bad_training_input(sentences: list, order: int, message: str) -> None:
    with pytest.raises(InputError, match=message):
        train_kneser_ney(sentences, order)


# ---------------------------------------------------------------- querying vs KenLM


@pytest.mark.parametrize("order", [2, 3, 4, 5])
def test_scores_match_kenlm(corpus_lms: dict[int, Path], order: int) -> None:
    kenlm = pytest.importorskip("kenlm", reason="KenLM's query module (pip extra 'dev')")
    reference = kenlm.Model(str(corpus_lms[order]))
    lm = NgramLM.load(corpus_lms[order])
    for sentence in probe_sentences():
        words = [*sentence, "</s>"]
        expected = [score for score, _, _ in reference.full_scores(" ".join(sentence))]
        ours = [lm.log_prob(("<s>", *sentence[:i]), w) / LN10 for i, w in enumerate(words)]
        assert ours == pytest.approx(expected, abs=1e-5)
        total = reference.score(" ".join(sentence)) * LN10
        assert lm.sentence_log_prob(sentence) == pytest.approx(total, abs=1e-4)


def test_decoder_scorer_maps_token_ids_to_glosses(corpus_lms: dict[int, Path]) -> None:
    lm = read_arpa(corpus_lms[3])
    labels = ["<blank>", "REGEN", "SONNE", "HAGEL", "<unk>"]
    scorer = lm.scorer(labels, blank=0)
    assert scorer.max_log_prob == 0.0
    assert scorer((), 1) == pytest.approx(lm.log_prob(["<s>"], "REGEN"))
    assert scorer((1, 2), 1) == pytest.approx(lm.log_prob(["<s>", "REGEN", "SONNE"], "REGEN"))
    assert scorer((1, 2, 1, 2), 2) == pytest.approx(
        lm.log_prob(["SONNE", "REGEN", "SONNE"], "SONNE")
    )
    assert scorer((1, 3), 2) == pytest.approx(lm.log_prob(["REGEN", "HAGEL"], "SONNE"))
    unk = lm.log_prob(["<s>", "REGEN"], "<unk>")
    assert scorer((1,), 3) == scorer((1,), 4) == pytest.approx(unk)
    assert scorer.final((2,)) == pytest.approx(lm.log_prob(["<s>", "SONNE"], "</s>"))
    with pytest.raises(InputError, match="blank must index labels"):
        lm.scorer(labels, blank=5)


# ---------------------------------------------------------------- bad ARPA files

GOOD_ARPA = """\\data\\
ngram 1=4
ngram 2=2

\\1-grams:
-1.0\t<unk>
-99\t<s>\t-0.30103
-0.5\t</s>
-0.4\tA\t-0.2

\\2-grams:
-0.2\t<s> A
-0.1\tA </s>

\\end\\
"""


def test_good_arpa_reads(tmp_path: Path) -> None:
    path = tmp_path / "lm.arpa"
    path.write_text("a comment before the data\n\n" + GOOD_ARPA)
    lm = read_arpa(path)
    assert lm.order == 2 and lm.words == ("<unk>", "<s>", "</s>", "A")
    assert lm.log_prob(["<s>"], "A") == pytest.approx(-0.2 * LN10)
    assert lm.log_prob(["<s>"], "</s>") == pytest.approx((-0.30103 - 0.5) * LN10)
    assert lm.log_prob(["A"], "NEW") == pytest.approx((-0.2 - 1.0) * LN10)  # <unk>


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("\\end\\\n", "", r"ends after line 14; expected \\end\\ \(truncated\?\)"),
        ("-0.1\tA </s>\n\n\\end\\\n", "", r"expected 2 2-gram entries \(got 1\) \(truncated"),
        ("ngram 2=2", "ngram 2=3", r"line 15: the \\2-grams: section has 2 entries, .*announced 3"),
        ("ngram 2=2", "ngram 3=2", r"line 3: expected 'ngram 2=COUNT', got 'ngram 3=2'"),
        ("\\data\\", "\\dada\\", r"expected the \\data\\ header"),
        ("\\2-grams:", "\\3-grams:", r"line 11: expected '\\2-grams:'"),
        ("-0.4\tA\t-0.2", "-0.4\tA\t-0.2\tX", r"line 9: a 1-gram entry needs"),
        ("-0.4\tA", "high\tA", r"line 9: expected numbers"),
        ("-0.4\tA", "0.4\tA", r"line 9: expected a finite log10 probability <= 0"),
        ("-0.2\t<s> A", "-0.2\t<s> B", r"line 12: word 'B' is not among the unigrams"),
        ("-0.5\t</s>", "-0.5\tA", r"line 9: unigram 'A' listed twice"),
    ],
)
def test_bad_arpa_names_line_and_expectation(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in GOOD_ARPA
    path = tmp_path / "lm.arpa"
    path.write_text(GOOD_ARPA.replace(old, new, 1))
    with pytest.raises(FormatError, match=message):
        read_arpa(path)


def test_arpa_without_sentence_end(tmp_path: Path) -> None:
    path = tmp_path / "lm.arpa"
    path.write_text(GOOD_ARPA.replace("-0.5\t</s>", "-0.5\tB").replace("A </s>", "A B"))
    with pytest.raises(FormatError, match=r"must hold <s> and </s>; missing \['</s>'\]"):
        read_arpa(path)


def test_unreadable_arpa(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no such ARPA"):
        read_arpa(tmp_path / "missing.arpa")
    (tmp_path / "bin.arpa").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(FormatError, match="not UTF-8"):
        read_arpa(tmp_path / "bin.arpa")
    (tmp_path / "empty.arpa").write_text("")
    with pytest.raises(FormatError, match=r"expected the \\data\\ header"):
        read_arpa(tmp_path / "empty.arpa")


def test_missing_unk_scores_minus_100(tmp_path: Path) -> None:
    path = tmp_path / "lm.arpa"
    path.write_text(GOOD_ARPA.replace("ngram 1=4", "ngram 1=3").replace("-1.0\t<unk>\n", ""))
    lm = read_arpa(path)
    assert lm.log_prob(["A"], "NEW") == pytest.approx(-100 * LN10)
    scorer = lm.scorer(["<blank>", "A", "NEW"])
    assert scorer((), 2) == pytest.approx(-100 * LN10)
    assert scorer((2,), 1) == pytest.approx(lm.log_prob([], "A"))  # unknown context: cut there


# ---------------------------------------------------------------- fusion settings


def test_fusion_settings_round_trip(corpus_lms: dict[int, Path], tmp_path: Path) -> None:
    arpa = tmp_path / "lm.arpa"
    arpa.write_bytes(corpus_lms[3].read_bytes())
    assert read_fusion_settings(arpa) is None and load_fused_lm(tmp_path) is None
    write_fusion_settings(arpa, FusionSettings(0.4, 2.5), {"tuned_on": {"split": "dev"}})
    assert read_fusion_settings(arpa) == FusionSettings(0.4, 2.5)
    fused = load_fused_lm(tmp_path)
    assert isinstance(fused, FusedLM) and fused.settings == FusionSettings(0.4, 2.5)
    options = fused.beam_options(["<blank>", "REGEN"])
    assert options["lm_weight"] == 0.4 and options["insertion_bonus"] == 2.5
    assert options["lm"]((), 1) == pytest.approx(fused.lm.log_prob(["<s>"], "REGEN"))
    (tmp_path / "lm.arpa.json").write_text('{"fusion": {"lm_weight": -1, "insertion_bonus": 0}}')
    with pytest.raises(FormatError, match="'fusion' must hold numbers lm_weight >= 0"):
        read_fusion_settings(arpa)


@pytest.mark.parametrize(
    ("weight", "bonus", "message"),
    [
        (-0.1, 0.0, "lm_weight must be a finite number >= 0, got -0.1"),
        (math.nan, 0.0, "lm_weight"),
        (0.5, math.inf, "insertion_bonus must be a finite number, got inf"),
    ],
)
def test_bad_fusion_settings(weight: float, bonus: float, message: str) -> None:
    with pytest.raises(InputError, match=message):
        FusionSettings(weight, bonus)


# ---------------------------------------------------------------- real corpora


@pytest.mark.shared_data
def test_corpus_lm_sees_the_train_split_only(shared_data: Path, tmp_path: Path) -> None:
    from edge_slr.data.corpora import load_corpus

    root = shared_data / "phoenix2014t"
    if not root.is_dir():
        pytest.skip(f"phoenix2014t is absent from {shared_data}")
    arpa, description = train_corpus_lm("phoenix2014t", root, 3, tmp_path)
    train = {g for s in load_corpus("phoenix2014t", root, "train") for g in s.glosses}
    dev_only = {g for s in load_corpus("phoenix2014t", root, "dev") for g in s.glosses} - train
    lm = read_arpa(arpa)
    assert dev_only and not dev_only & set(lm.words)
    assert set(lm.words) == train | {"<s>", "</s>", "<unk>"}
    assert description["split"] == "train" and description["sentences"] == 7096
    assert description["source"]["name"] == "PHOENIX-2014-T.train.corpus.csv"


class FullPrefix:
    """The same scorer without ``context_size`` and ``max_log_prob``: the search hands it whole
    prefixes and skips nothing."""

    def __init__(self, scorer) -> None:  # type: ignore[no-untyped-def]
        self.scorer = scorer

    def __call__(self, prefix: tuple[int, ...], token: int) -> float:
        return self.scorer(prefix, token)

    def final(self, prefix: tuple[int, ...]) -> float:
        return self.scorer.final(prefix)


@pytest.mark.parametrize("order", [2, 4])
def test_fused_search_shortcuts_change_nothing(corpus_lms: dict[int, Path], order: int) -> None:
    from edge_slr.decoding import beam_search_nbest, log_softmax

    lm = read_arpa(corpus_lms[order])
    labels = ["<blank>", *GLOSSES, "HAGEL"]
    rng = np.random.default_rng(order)
    for _ in range(8):
        logits = rng.normal(size=(20, len(labels))) * 2.5
        logits[:, 0] += 1.0
        lp = log_softmax(logits)
        for weight, bonus in ((0.5, 1.0), (1.0, 2.5)):
            options = {"nbest": 3, "beam_width": 6, "lm_weight": weight, "insertion_bonus": bonus}
            scorer = lm.scorer(labels)
            fast = beam_search_nbest(lp, lm=scorer, labels=labels, **options)
            slow = beam_search_nbest(lp, lm=FullPrefix(scorer), labels=labels, **options)
            assert fast == slow
            for result in fast:  # lm_log_prob is the sentence's LM score, </s> included
                glosses = [labels[t] for t in result.tokens]
                assert result.lm_log_prob == pytest.approx(lm.sentence_log_prob(glosses))
