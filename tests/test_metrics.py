"""PHOENIX-style scoring: normalisation rules, sclite alignment, corpus WER, STM/CTM files, CLI."""

from __future__ import annotations

import argparse
import json
import random
from functools import cache
from pathlib import Path

import pytest

from edge_slr.errors import FormatError, InputError
from edge_slr.metrics import (
    EMPTY,
    AlignmentCosts,
    CtmEntry,
    StmSegment,
    align,
    ctm_hypotheses,
    detect_format,
    error_breakdown,
    load_hypotheses,
    load_references,
    normalize_gloss,
    normalize_hypothesis,
    read_ctm,
    read_stm,
    score,
    write_ctm,
    write_stm,
)

# ---------------------------------------------------------------- normalisation, rule by rule


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # prefixes removed anywhere in the gloss
        ("loc-REGION", "REGION"),
        ("cl-KOMMEN", "KOMMEN"),
        ("qu-WAS", "WAS"),
        ("poss-EUCH", "EUCH"),
        ("lh-AUCH", "AUCH"),
        ("IX-loc-NORD", "IX-NORD"),
        ("LOC-NORD", "LOC-NORD"),  # the rules are case-sensitive
        # spelling fixes
        ("S0NNE", "SONNE"),
        ("HABEN2", "HABEN"),
        ("NICHT-HABEN2", "NICHT-HABEN"),
        # markers removed inside a gloss
        ("REGEN__PU__", "REGEN"),
        ("__EMOTION__WOLKE", "WOLKE"),
        ("SONNE__LEFTHAND__", "SONNE"),
        # a gloss ending in ZEIGEN gets -BILDSCHIRM
        ("ZEIGEN", "ZEIGEN-BILDSCHIRM"),
        ("ANZEIGEN", "ANZEIGEN-BILDSCHIRM"),
        ("ZEIGEN-BILDSCHIRM", "ZEIGEN-BILDSCHIRM"),
        ("ZEIGEN-ORT", "ZEIGEN-ORT"),
        # two capitals followed by RAUM lose the RAUM
        ("NORDRAUM", "NORD"),
        ("WESTRAUM", "WEST"),
        ("RAUM", "RAUM"),
        ("ARAUM", "ARAUM"),
        # -PLUSPLUS removed
        ("REGEN-PLUSPLUS", "REGEN"),
        # untouched
        ("__ON__", "__ON__"),
        ("__OFF__", "__OFF__"),
        ("WIE-AUSSEHEN", "WIE-AUSSEHEN"),
    ],
)
def test_each_gloss_rule(raw: str, expected: str) -> None:
    assert normalize_gloss(raw) == expected


@pytest.mark.parametrize(
    "raw", ["__EPENTHESIS__", "WORT__EPENTHESIS__", "__PU__", "__EMOTION__", "loc-", "-PLUSPLUS"]
)
def test_glosses_that_are_dropped(raw: str) -> None:
    assert normalize_gloss(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # __PU__ goes before -PLUSPLUS is looked for, so this becomes "-PLUSPLUS", then empty
        ("-PLUS__PU__PLUS", None),
        # the ZEIGEN rule runs before RAUM and -PLUSPLUS: they do not re-trigger it
        ("ZEIGENRAUM", "ZEIGEN"),
        ("ZEIGEN-PLUSPLUS", "ZEIGEN"),
        # prefix removal runs before the ZEIGEN rule and the spelling fixes
        ("loc-ZEIGEN", "ZEIGEN-BILDSCHIRM"),
        ("poss-S0NNE", "SONNE"),
        # removing a marker can assemble another one, which then drops the gloss
        ("X__EMOT__EMOTION__ION__", None),
        # the drop test runs after every rewrite: __PU__ inside a marker is removed first
        ("A__EPENT__PU__HESIS__", None),
    ],
)
def test_rule_order(raw: str, expected: str | None) -> None:
    assert normalize_gloss(raw) == expected


def test_empty_hypothesis_is_the_empty_token() -> None:
    assert normalize_hypothesis([]) == [EMPTY]
    assert normalize_hypothesis(["__EPENTHESIS__", "__PU__"]) == [EMPTY]
    assert normalize_hypothesis([""], corpus="csl-daily") == [EMPTY]


def test_repetitions_are_merged_after_normalisation() -> None:
    assert normalize_hypothesis(["REGEN", "REGEN", "SONNE", "REGEN"]) == ["REGEN", "SONNE", "REGEN"]
    assert normalize_hypothesis(["poss-EUCH", "EUCH"]) == ["EUCH"]
    # a dropped gloss between two equal ones leaves an immediate repetition
    assert normalize_hypothesis(["REGEN", "__EPENTHESIS__", "REGEN"]) == ["REGEN"]


def test_multi_gloss_rules_of_the_release_script_are_not_applied() -> None:
    # WIE AUSSEHEN join, spelled-letter join (A B -> A+B) and their variants stay separate
    assert normalize_hypothesis(["WIE", "AUSSEHEN"]) == ["WIE", "AUSSEHEN"]
    assert normalize_hypothesis(["A", "B", "C"]) == ["A", "B", "C"]
    assert normalize_hypothesis(["SCH", "A"]) == ["SCH", "A"]
    assert normalize_hypothesis(["NN", "B"]) == ["NN", "B"]
    result = score({"s": ["WIE", "AUSSEHEN"]}, {"s": ["WIE-AUSSEHEN"]})
    assert (result.substitutions, result.deletions, result.insertions) == (1, 0, 1)
    result = score({"s": ["A", "B"]}, {"s": ["A+B"]})
    assert result.errors == 2


def test_csl_daily_keeps_glosses_but_merges_and_fills_empty() -> None:
    raw = ["poss-EUCH", "HABEN2", "ZEIGEN", "他", "他", "NORDRAUM"]
    assert normalize_hypothesis(raw, corpus="csl-daily") == [
        "poss-EUCH",
        "HABEN2",
        "ZEIGEN",
        "他",
        "NORDRAUM",
    ]
    assert normalize_hypothesis([], corpus="csl-daily") == [EMPTY]


def test_reference_is_used_as_it_is() -> None:
    result = score({"s": ["poss-EUCH", "REGEN"]}, {"s": ["poss-EUCH", "REGEN"]})
    assert (result.substitutions, result.deletions, result.insertions) == (1, 0, 0)
    assert result.sentences[0].hypothesis == ("EUCH", "REGEN")
    assert result.sentences[0].raw_hypothesis == ("poss-EUCH", "REGEN")


def test_bad_scoring_input() -> None:
    with pytest.raises(InputError, match="unknown corpus 'phoenix'"):
        normalize_hypothesis(["A"], corpus="phoenix")
    with pytest.raises(InputError, match="got the string 'REGEN SONNE'"):
        score({"s": "REGEN SONNE"}, {"s": ["REGEN"]})
    with pytest.raises(InputError, match="contains whitespace"):
        normalize_hypothesis(["REGEN SONNE"])
    with pytest.raises(InputError, match="1 hypothesis ids are not in the references"):
        score({"s": ["A"], "other": ["B"]}, {"s": ["A"]})
    assert score({"s": ["A"], "other": ["B"]}, {"s": ["A"]}, allow_extra=True).wer == 0.0
    with pytest.raises(InputError, match="zero words"):
        score({"s": ["A"]}, {"s": []})


# ---------------------------------------------------------------- alignment


def test_alignment_ops_and_pairs() -> None:
    a = align(["A", "B", "C"], ["A", "X", "C", "D"])
    assert a.ops == ("C", "S", "C", "I")
    assert a.pairs == (("A", "A"), ("B", "X"), ("C", "C"), (None, "D"))
    assert (a.substitutions, a.deletions, a.insertions, a.cost) == (1, 0, 1, 7)
    a = align(["A", "B", "C"], ["C"])
    assert a.ops == ("D", "D", "C") and a.cost == 6


def test_substitution_costs_four_so_sub_beats_delete_plus_insert() -> None:
    assert align(["A"], ["B"]).ops == ("S",)  # 4 < 3 + 3


def test_tie_break_prefers_substitution_then_insertion() -> None:
    # two alignments cost 12: S S S (3 errors) and D D + I I around a match (4 errors)
    a = align(["A", "A", "B"], ["B", "C", "C"])
    assert a.cost == 12
    assert a.ops == ("S", "S", "S")
    a = align(["A", "A", "B"], ["B", "C", "C", "C"])
    assert a.ops == ("I", "S", "S", "S")


def _min_cost(ref: tuple[str, ...], hyp: tuple[str, ...], ins: int, dele: int, sub: int) -> int:
    @cache
    def best(i: int, j: int) -> int:
        if i == 0 or j == 0:
            return i * dele + j * ins
        diagonal = best(i - 1, j - 1) + (0 if ref[i - 1] == hyp[j - 1] else sub)
        return min(diagonal, best(i, j - 1) + ins, best(i - 1, j) + dele)

    return best(len(ref), len(hyp))


def test_alignment_is_minimal_and_consistent_on_random_sentences() -> None:
    rng = random.Random(7)
    costs = {"S": 4, "D": 3, "I": 3, "C": 0}
    for _ in range(300):
        ref = tuple(rng.choice("ABCD") for _ in range(rng.randint(0, 7)))
        hyp = tuple(rng.choice("ABCDE") for _ in range(rng.randint(0, 7)))
        a = align(ref, hyp)
        assert a.cost == _min_cost(ref, hyp, 3, 3, 4)
        assert a.cost == sum(costs[op] for op in a.ops)
        assert tuple(r for r, _ in a.pairs if r is not None) == ref
        assert tuple(h for _, h in a.pairs if h is not None) == hyp
        for op, (r, h) in zip(a.ops, a.pairs, strict=True):
            assert (op == "C") == (r == h)


def test_unit_cost_error_count_matches_jiwer() -> None:
    jiwer = pytest.importorskip("jiwer")
    rng = random.Random(3)
    unit = AlignmentCosts(insertion=1, deletion=1, substitution=1)
    for _ in range(200):
        ref = [rng.choice("ABCD") for _ in range(rng.randint(1, 8))]
        hyp = [rng.choice("ABCDE") for _ in range(rng.randint(1, 8))]
        out = jiwer.process_words(" ".join(ref), " ".join(hyp))
        expected = out.substitutions + out.deletions + out.insertions  # the edit distance
        assert align(ref, hyp, unit).errors == expected
        # sclite costs never find fewer errors than the plain edit distance
        assert align(ref, hyp).errors >= expected


def test_bad_costs() -> None:
    with pytest.raises(InputError, match="substitution must be a positive int"):
        AlignmentCosts(substitution=0)


# ---------------------------------------------------------------- corpus WER


def test_corpus_wer_sums_over_sentences_and_missing_is_empty() -> None:
    refs = {"a": ["A", "B", "C"], "b": ["D", "E"], "c": ["F", "G"]}
    hyps = {"a": ["A", "X", "C", "C"], "b": ["D", "D", "E"]}  # c missing
    result = score(hyps, refs)
    by_id = {s.id: s for s in result.sentences}
    assert [s.id for s in result.sentences] == ["a", "b", "c"]
    assert by_id["a"].alignment.ops == ("C", "S", "C")  # C C merged
    assert by_id["b"].errors == 0
    assert by_id["c"].hypothesis == (EMPTY,)
    assert by_id["c"].alignment.ops == ("D", "S")  # ties resolved from the end: sub first
    assert (result.substitutions, result.deletions, result.insertions) == (2, 1, 0)
    assert result.reference_words == 7
    assert result.wer == pytest.approx(3 / 7)
    assert "WER 42.86% (S 2, D 1, I 0" in result.summary()
    report = result.to_dict()
    assert report["sentences"][0]["ops"] == "CSC"
    json.dumps(report)


def test_error_breakdown_counts() -> None:
    refs = {"a": ["A", "B", "C"], "b": ["A", "B"], "c": ["C", "D"], "d": ["E"], "e": ["F"]}
    hyps = {"a": ["A", "X", "C"], "b": ["A", "X"], "c": ["C"], "d": ["E", "Q"], "e": ["Y"]}
    result = score(hyps, refs)
    breakdown = error_breakdown(result, top=None)
    assert breakdown.substitutions == ((("B", "X"), 2), (("F", "Y"), 1))
    assert breakdown.deletions == (("D", 1),)
    assert breakdown.insertions == (("Q", 1),)
    assert sum(c for _, c in breakdown.substitutions) == result.substitutions
    assert error_breakdown(result, top=1).substitutions == ((("B", "X"), 2),)
    assert error_breakdown(result, top=1).to_dict()["substitutions"] == [
        {"reference": "B", "hypothesis": "X", "count": 2}
    ]


# ---------------------------------------------------------------- STM / CTM files


def test_stm_round_trip(tmp_path: Path) -> None:
    segments = [StmSegment("s1", ("REGEN", "SONNE"), "Signer01"), StmSegment("s2", ("他",))]
    path = tmp_path / "ref.stm"
    write_stm(path, segments)
    back = read_stm(path)
    assert list(back.values()) == segments
    assert path.read_text(encoding="utf-8").splitlines()[1] == (
        "s1 1 Signer01 0.0 1.79769e+308 REGEN SONNE"
    )
    write_stm(path, {"x": ["A", "B"]})
    assert load_references(path) == {"x": ("A", "B")}


def test_stm_comments_blank_lines_and_label_field(tmp_path: Path) -> None:
    path = tmp_path / "ref.stm"
    path.write_text(
        ";; a comment\n\ns1 1 spk 0.0 1.79769e+308 <o,f0,male> A B\ns2 A spk 0 1 \n",
        encoding="utf-8",
    )
    segments = read_stm(path)
    assert segments["s1"].glosses == ("A", "B")
    assert segments["s2"].glosses == () and segments["s2"].channel == "A"


def test_ctm_round_trip_and_order_by_time(tmp_path: Path) -> None:
    entries = [
        CtmEntry("s1", "REGEN", 0.0, 0.04, confidence=0.75),
        CtmEntry("s1", "SONNE", 0.04, 0.08),
        CtmEntry("s2", "WIND", 1.2, 0.5, channel="1"),
    ]
    path = tmp_path / "hyp.ctm"
    write_ctm(path, entries)
    assert read_ctm(path) == entries
    path.write_text("s1 1 0.50 0.1 B\ns1 1 0.10 0.1 A\ns1 1 0.50 0.1 C\n", encoding="utf-8")
    assert ctm_hypotheses(read_ctm(path)) == {"s1": ("A", "B", "C")}
    write_ctm(path, {"s1": ["A", "A", "B"], "s2": []})
    assert load_hypotheses(path) == {"s1": ("A", "A", "B")}  # s2 is absent -> [EMPTY]


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("s1 1 spk 0.0\n", "STM line has 4 fields, expected at least 5", 1),
        ("s1 1 spk 0.0 1.0 A\ns2 1 spk abc 1.0 A\n", r"field 4 \(start time\).*'abc'", 2),
        ("s1 1 spk 0.0 nan A\n", r"field 5 \(end time\).*'nan'", 1),
        ("s1 1 spk 2.0 1.0 A\n", "end time 1.0 is before start time 2.0", 1),
        ("s1 1 spk 0 1 A\n;; c\ns1 1 spk 0 1 B\n", "'s1' repeats the one on line 1", 3),
    ],
)
def test_malformed_stm(tmp_path: Path, text: str, message: str, line: int) -> None:
    path = tmp_path / "bad.stm"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FormatError, match=message) as info:
        read_stm(path)
    assert info.value.line == line and info.value.path == path
    assert f"{path}, line {line}" in str(info.value)


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("s1 1 0.0 0.1\n", "CTM line has 4 fields, expected 5 or 6", 1),
        ("s1 1 0.0 0.1 A 0.9 extra\n", "CTM line has 7 fields", 1),
        ("s1 1 0.0 0.1 A\ns1 1 x 0.1 B\n", r"field 3 \(start time\).*'x'", 2),
        ("s1 1 0.0 short A\n", r"field 4 \(duration\).*'short'", 1),
        ("s1 1 0.0 -0.1 A\n", r"field 4 \(duration\) is negative: '-0.1'", 1),
        ("s1 1 0.0 0.1 A high\n", r"field 6 \(confidence\).*'high'", 1),
    ],
)
def test_malformed_ctm(tmp_path: Path, text: str, message: str, line: int) -> None:
    path = tmp_path / "bad.ctm"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FormatError, match=message) as info:
        read_ctm(path)
    assert info.value.line == line


def test_unreadable_files(tmp_path: Path) -> None:
    path = tmp_path / "latin1.stm"
    path.write_bytes("s1 1 spk 0 1 GR\xdcN\n".encode("latin-1"))
    with pytest.raises(FormatError, match="not UTF-8"):
        read_stm(path)
    empty = tmp_path / "empty.stm"
    empty.write_text(";; nothing\n", encoding="utf-8")
    with pytest.raises(FormatError, match="holds no segment"):
        load_references(empty)


def test_writing_rejects_glosses_with_spaces(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="gloss of s1"):
        write_ctm(tmp_path / "h.ctm", {"s1": ["A B"]})
    with pytest.raises(InputError, match="STM segment id"):
        write_stm(tmp_path / "r.stm", {"": ["A"]})


def test_detect_format(tmp_path: Path) -> None:
    ctm, stm, odd = tmp_path / "h.ctm", tmp_path / "h.stm", tmp_path / "h.txt"
    write_ctm(ctm, {"s1": ["A", "B"], "s2": ["C"]})
    write_stm(stm, {"s1": ["A", "B"], "s2": ["C"]})
    assert detect_format(ctm) == "ctm" and detect_format(stm) == "stm"
    assert load_hypotheses(stm) == load_hypotheses(ctm)
    # one gloss an id and a numeric gloss: either layout reads it, so the caller must say
    odd.write_text("s1 1 0.0 0.1 4\n", encoding="utf-8")
    with pytest.raises(FormatError, match="could be CTM or STM"):
        detect_format(odd)
    assert load_hypotheses(odd, "ctm") == {"s1": ("4",)}
    odd.write_text("s1 A B\n", encoding="utf-8")
    with pytest.raises(FormatError, match="neither"):
        load_hypotheses(odd)
    with pytest.raises(InputError, match="'auto', 'ctm' or 'stm'"):
        load_hypotheses(ctm, "json")


# ---------------------------------------------------------------- real data: the pipeline floor

CORPUS_STM = {
    "phoenix2014": ("phoenix2014", "phoenix2014-groundtruth-{split}.stm"),
    "phoenix2014t": ("phoenix2014t", "phoenix2014-T-groundtruth-{split}.stm"),
    "csl-daily": ("csl-daily", "CSL-Daily-groundtruth-{split}.stm"),
}


def _own_annotation_through_ctm(
    shared_data: Path, tmp_path: Path, corpus: str, split: str
) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    from edge_slr.data.corpora import load_corpus

    folder, stm_name = CORPUS_STM[corpus]
    stm = shared_data / folder / stm_name.format(split=split)
    if not stm.exists():
        pytest.skip(f"{stm} is absent")
    samples = load_corpus(corpus, shared_data / folder, split)
    ctm = tmp_path / f"{corpus}-{split}.ctm"
    write_ctm(ctm, {s.id: s.glosses for s in samples})
    return load_hypotheses(ctm), load_references(stm)


@pytest.mark.parametrize(
    ("corpus", "split", "wer_percent", "sdi"),
    [
        ("phoenix2014", "dev", 0.09, (0, 5, 0)),
        ("phoenix2014", "test", 0.15, (0, 10, 0)),
        ("phoenix2014t", "dev", 0.37, (13, 1, 0)),
        ("phoenix2014t", "test", 0.33, (9, 5, 0)),
    ],
)
def test_phoenix_annotations_scored_as_their_own_hypotheses(
    shared_data: Path,
    tmp_path: Path,
    corpus: str,
    split: str,
    wer_percent: float,
    sdi: tuple[int, int, int],
) -> None:
    hyps, refs = _own_annotation_through_ctm(shared_data, tmp_path, corpus, split)
    assert set(hyps) == set(refs)
    result = score(hyps, refs, corpus)
    assert (result.substitutions, result.deletions, result.insertions) == sdi
    assert round(100 * result.wer, 2) == wer_percent


@pytest.mark.parametrize("split", ["dev", "test"])
def test_csl_daily_floor_is_only_the_repetition_merge(
    shared_data: Path, tmp_path: Path, split: str
) -> None:
    hyps, refs = _own_annotation_through_ctm(shared_data, tmp_path, "csl-daily", split)
    assert hyps == {name: refs[name] for name in hyps}  # the STM holds the raw annotation
    repeats = sum(sum(a == b for a, b in zip(g, g[1:], strict=False)) for g in refs.values())
    result = score(hyps, refs, "csl-daily")
    assert repeats > 0
    assert (result.substitutions, result.deletions, result.insertions) == (0, repeats, 0)


# ---------------------------------------------------------------- edge-slr eval


def _run_eval(argv: list[str]) -> int:
    from edge_slr.cli import eval as eval_cli

    parser = argparse.ArgumentParser(prog="edge-slr")
    eval_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eval", *argv])
    return args.run(args)


def test_eval_cli_prints_wer_and_writes_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref, hyp, out = tmp_path / "ref.stm", tmp_path / "hyp.ctm", tmp_path / "out" / "r.json"
    write_stm(ref, {"a": ["A", "B", "C"], "b": ["D"], "c": ["E", "F"]})
    write_ctm(hyp, {"a": ["A", "X", "C"], "b": ["D", "G"]})
    assert _run_eval(["--hyp", str(hyp), "--ref", str(ref), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "WER 66.67% (S 2, D 1, I 1; 6 reference glosses, 3 sentences" in printed
    assert "1 reference sentences have no hypothesis" in printed
    assert "B -> X (1)" in printed
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["substitutions"] == 2 and report["reference_words"] == 6
    assert report["sentences"][2] == {
        "id": "c",
        "reference": ["E", "F"],
        "hypothesis": [EMPTY],
        "raw_hypothesis": [],
        "ops": "DS",
        "substitutions": 1,
        "deletions": 1,
        "insertions": 0,
    }


def test_eval_cli_on_real_stm_hypothesis(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stm = shared_data / "phoenix2014t" / "phoenix2014-T-groundtruth-dev.stm"
    if not stm.exists():
        pytest.skip(f"{stm} is absent")
    out = tmp_path / "report.json"
    argv = ["--hyp", str(stm), "--ref", str(stm), "--corpus", "phoenix2014t", "--json", str(out)]
    assert _run_eval(argv) == 0
    assert "WER 0.37% (S 13, D 1, I 0" in capsys.readouterr().out
    assert json.loads(out.read_text(encoding="utf-8"))["num_sentences"] == 519


def test_eval_cli_bad_input(tmp_path: Path) -> None:
    ref, hyp = tmp_path / "ref.stm", tmp_path / "hyp.ctm"
    write_stm(ref, {"a": ["A"]})
    hyp.write_text("a 1 0.0 oops A\n", encoding="utf-8")
    with pytest.raises(FormatError, match="duration"):
        _run_eval(["--hyp", str(hyp), "--ref", str(ref), "--hyp-format", "ctm"])
    write_ctm(hyp, {"z": ["A"]})
    with pytest.raises(InputError, match="not in the references"):
        _run_eval(["--hyp", str(hyp), "--ref", str(ref), "--json", str(tmp_path / "r.json")])
