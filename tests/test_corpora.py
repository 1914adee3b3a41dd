"""Corpus loaders and PHOENIX-2014-T alignments: real data, release layouts, malformed files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_slr.data import alignments
from edge_slr.data.alignments import (
    GlossSegment,
    gloss_durations,
    load_alignments,
    load_gloss_durations,
    segments_from_states,
)
from edge_slr.data.corpora import available_corpora, corpus_spec, load_corpus
from edge_slr.errors import FormatError, InputError

P14_HEADER = "id|folder|signer|annotation"
P14T_HEADER = "name|video|start|end|speaker|orth|translation"
CSL_HEADER = "name\tsigner\tnum_frames\tgloss\ttext"


def write(path: Path, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_frames(folder: Path, count: int, suffix: str = ".png") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"images{i + 1:04d}{suffix}").write_bytes(b"")


def shared(shared_data: Path, folder: str) -> Path:
    path = shared_data / folder
    if not path.is_dir():
        pytest.skip(f"{folder} is absent from {shared_data}")
    return path


# -- registry ---------------------------------------------------------------------------------


def test_registry_names_and_scoring() -> None:
    assert available_corpora() == ("phoenix2014", "phoenix2014t", "csl-daily")
    assert corpus_spec("phoenix2014").scoring.gloss_rewrites
    assert corpus_spec("phoenix2014t").scoring.gloss_rewrites
    assert not corpus_spec("csl-daily").scoring.gloss_rewrites


def test_unknown_corpus_and_split(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"unknown corpus 'phoenix'.*phoenix2014, phoenix2014t"):
        load_corpus("phoenix", tmp_path, "train")
    with pytest.raises(InputError, match=r"unknown split 'val'.*train, dev, test"):
        load_corpus("phoenix2014", tmp_path, "val")
    with pytest.raises(InputError, match="no STM file for split 'train'"):
        corpus_spec("csl-daily").stm_path(tmp_path, "train")


# -- real data --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "folder", "sizes"),
    [
        ("phoenix2014", "phoenix2014", (5672, 540, 629)),
        ("phoenix2014t", "phoenix2014t", (7096, 519, 642)),
        ("csl-daily", "csl-daily", (18401, 1077, 1176)),
    ],
)
def test_real_split_sizes(shared_data: Path, name: str, folder: str, sizes: tuple) -> None:
    root = shared(shared_data, folder)
    for split, size in zip(("train", "dev", "test"), sizes, strict=True):
        samples = load_corpus(name, root, split)
        assert len(samples) == size
        assert len({s.id for s in samples}) == size
        assert all(s.split == split and s.glosses and s.source is None for s in samples)


def test_real_phoenix2014_sample(shared_data: Path) -> None:
    samples = load_corpus("phoenix2014", shared(shared_data, "phoenix2014"), "dev")
    first = samples[0]
    assert first.id == "01April_2010_Thursday_heute_default-1"
    assert first.signer == "Signer04"
    assert first.glosses[:3] == ("ICH", "OSTERN", "WETTER") and len(first.glosses) == 10
    assert first.text is None and first.num_frames is None
    # Some dev lines have doubled spaces between glosses; they must not create empty glosses.
    assert all("" not in s.glosses and all(g.strip() == g for g in s.glosses) for s in samples)


def test_real_phoenix2014t_sample_uses_alignment_frame_counts(shared_data: Path) -> None:
    root = shared(shared_data, "phoenix2014t")
    samples = load_corpus("phoenix2014t", root, "dev")
    first = samples[0]
    assert first.id == "11August_2010_Wednesday_tagesschau-2"
    assert first.glosses == ("DRUCK", "TIEF", "KOMMEN")
    assert first.text == "tiefer luftdruck bestimmt in den nächsten tagen unser wetter"
    assert first.signer == "Signer08"
    assert first.num_frames == 42  # from alignments/phoenix2014t.dev.align.tsv
    assert all(s.num_frames and s.num_frames > 0 for s in samples)


def test_real_csl_daily_sample(shared_data: Path) -> None:
    samples = load_corpus("csl-daily", shared(shared_data, "csl-daily"), "dev")
    assert samples[0].id == "S000020_P0000_T00"
    assert samples[0].signer == "0" and samples[0].num_frames == 54
    assert samples[0].glosses == ("他", "今天", "年龄", "4")
    assert samples[0].text == "他今年四岁。"


@pytest.mark.parametrize(
    ("name", "folder", "stm"),
    [
        ("phoenix2014", "phoenix2014", "phoenix2014-groundtruth-dev.stm"),
        ("phoenix2014t", "phoenix2014t", "phoenix2014-T-groundtruth-dev.stm"),
        ("csl-daily", "csl-daily", "CSL-Daily-groundtruth-dev.stm"),
    ],
)
def test_real_stm_paths(shared_data: Path, name: str, folder: str, stm: str) -> None:
    root = shared(shared_data, folder)
    path = corpus_spec(name).stm_path(root, "dev")
    assert path.name == stm and path.is_file()
    # every STM utterance id is a dev sample id
    ids = {s.id for s in load_corpus(name, root, "dev")}
    stm_ids = {line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line}
    assert stm_ids and stm_ids <= ids


# -- release layouts --------------------------------------------------------------------------


def test_phoenix2014_release_tree_with_frames(tmp_path: Path) -> None:
    base = tmp_path / "phoenix2014-release" / "phoenix-2014-multisigner"
    write(
        base / "annotations/manual/train.corpus.csv",
        P14_HEADER,
        "clipA|clipA/1/*.png|Signer01|REGEN  SONNE",
        "clipB|clipB/1/*.png|Signer02|WIND",
    )
    make_frames(base / "features/fullFrame-210x260px/train/clipA/1", 5)
    write(base / "evaluation/phoenix2014-groundtruth-dev.stm", "clipC 1 signer 0.0 1.0 X")
    a, b = load_corpus("phoenix2014", tmp_path, "train")
    assert a.glosses == ("REGEN", "SONNE") and a.signer == "Signer01"
    assert a.source == (base / "features/fullFrame-210x260px/train/clipA/1").resolve()
    assert a.num_frames == 5
    assert b.source is None and b.num_frames is None  # no frames on disk for clipB
    stm = corpus_spec("phoenix2014").stm_path(tmp_path, "dev")
    assert stm == (base / "evaluation/phoenix2014-groundtruth-dev.stm").resolve()


@pytest.mark.parametrize("frames_in", ["NAME", "NAME/1"])
@pytest.mark.parametrize("video_column", ["NAME/*.png", "NAME/1/*.png"])
def test_phoenix2014t_frame_folder_variants(
    tmp_path: Path, frames_in: str, video_column: str
) -> None:
    # The shared copy says NAME/*.png, the release NAME/1/*.png; the disk may hold either.
    base = tmp_path / "PHOENIX-2014-T"
    write(
        base / "annotations/manual/PHOENIX-2014-T.dev.corpus.csv",
        P14T_HEADER,
        f"clip|{video_column.replace('NAME', 'clip')}|-1|-1|Signer03|A B|ein satz",
    )
    frames = base / "features/fullFrame-210x260px/dev" / frames_in.replace("NAME", "clip")
    make_frames(frames, 7)
    (sample,) = load_corpus("phoenix2014t", tmp_path, "dev")
    assert sample.source == frames.resolve()
    assert sample.num_frames == 7
    assert sample.text == "ein satz" and sample.signer == "Signer03"


def test_landmark_file_is_the_source_when_no_frames(tmp_path: Path) -> None:
    write(tmp_path / "test.corpus.csv", P14_HEADER, "clip|clip/1/*.png|Signer01|REGEN")
    landmark = tmp_path / "landmarks/test/clip.npz"
    landmark.parent.mkdir(parents=True)
    landmark.write_bytes(b"")
    (sample,) = load_corpus("phoenix2014", tmp_path, "test")
    assert sample.source == landmark.resolve()


def test_csl_daily_frames_and_frame_count_column(tmp_path: Path) -> None:
    write(tmp_path / "csl-daily.train.tsv", CSL_HEADER, "S1_P0_T00\t3\t40\t你 好\t你好！")
    make_frames(tmp_path / "sentence/frames_512x512/S1_P0_T00", 4, ".jpg")
    (sample,) = load_corpus("csl-daily", tmp_path, "train")
    assert sample.source == (tmp_path / "sentence/frames_512x512/S1_P0_T00").resolve()
    assert sample.num_frames == 40  # the annotation's own count wins over the folder's 4 images


# -- bad input --------------------------------------------------------------------------------


def test_missing_annotation_names_the_paths_tried(tmp_path: Path) -> None:
    with pytest.raises(FormatError) as info:
        load_corpus("phoenix2014t", tmp_path, "train")
    message = str(info.value)
    assert "unknown PHOENIX-2014-T layout" in message
    assert str(tmp_path / "./annotations/manual/PHOENIX-2014-T.train.corpus.csv") in message
    assert "PHOENIX-2014-T/annotations/manual/PHOENIX-2014-T.train.corpus.csv" in message
    with pytest.raises(FormatError, match="root folder does not exist"):
        load_corpus("csl-daily", tmp_path / "nowhere", "train")
    with pytest.raises(FormatError, match="no CSL-Daily STM file 'CSL-Daily-groundtruth-test.stm'"):
        corpus_spec("csl-daily").stm_path(tmp_path, "test")


def test_wrong_number_of_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path / "dev.corpus.csv",
        P14_HEADER,
        "ok|ok/1/*.png|Signer01|REGEN",
        "bad|bad/1/*.png|REGEN SONNE",
    )
    with pytest.raises(FormatError) as info:
        load_corpus("phoenix2014", tmp_path, "dev")
    err = info.value
    assert err.path == path and err.line == 3
    assert "expected 4 '|'-separated fields (id|folder|signer|annotation), got 3" in str(err)
    assert "bad|bad/1/*.png|REGEN SONNE" in str(err)


def test_csv_of_another_corpus_is_a_layout_error(tmp_path: Path) -> None:
    # A PHOENIX-2014-T file renamed to the PHOENIX-2014 name: the header tells them apart.
    write(tmp_path / "train.corpus.csv", P14T_HEADER, "a|a/*.png|-1|-1|S|X|x")
    with pytest.raises(FormatError, match=r"line 1: expected the header 'id\|folder\|signer"):
        load_corpus("phoenix2014", tmp_path, "train")
    write(tmp_path / "csl-daily.dev.tsv", "")
    with pytest.raises(FormatError, match="expected the header"):
        load_corpus("csl-daily", tmp_path, "dev")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("S1\t0\tmany\t你 好\t你好", "field 'num_frames' must be a positive integer, got 'many'"),
        ("S1\t0\t0\t你 好\t你好", "field 'num_frames' must be a positive integer, got '0'"),
        ("S1\t0\t12\t \t你好", "empty 'gloss' field of 'S1'"),
        ("S1\t0\t12\t你\t你好\textra", "expected 5 tab-separated fields"),
    ],
)
def test_bad_csl_lines(tmp_path: Path, line: str, problem: str) -> None:
    write(tmp_path / "csl-daily.test.tsv", CSL_HEADER, line)
    with pytest.raises(FormatError, match="line 2: " + problem):
        load_corpus("csl-daily", tmp_path, "test")


def test_duplicate_ids_and_undecodable_file(tmp_path: Path) -> None:
    write(tmp_path / "csl-daily.dev.tsv", CSL_HEADER, "S1\t0\t9\tA\ta", "", "S1\t1\t9\tB\tb")
    with pytest.raises(FormatError, match="line 4: id 'S1' already used on line 2"):
        load_corpus("csl-daily", tmp_path, "dev")
    (tmp_path / "test.corpus.csv").write_bytes(P14_HEADER.encode() + b"\n\xff\xfe|x|y|z\n")
    with pytest.raises(FormatError, match="not UTF-8 text"):
        load_corpus("phoenix2014", tmp_path, "test")


# -- alignments -------------------------------------------------------------------------------

LEXICON = {0: "A", 1: "B", 5: "REGEN"}


def test_segments_split_on_class_change_silence_and_restart() -> None:
    # class 1 = states 4,5,6; class 5 = states 16,17,18 (REGEN signed twice: 18 -> 16 restarts)
    states = [0, 4, 5, 5, 6, 0, 16, 17, 18, 16, 17, 17, 18, 1, 2, 3, 3]
    assert segments_from_states(states, LEXICON) == [
        GlossSegment("B", 1, 5),
        GlossSegment("REGEN", 6, 9),
        GlossSegment("REGEN", 9, 13),
        GlossSegment("A", 13, 17),
    ]
    # staying in one state is one run, not a restart
    assert segments_from_states([1, 1, 1, 2, 3], LEXICON) == [GlossSegment("A", 0, 5)]
    assert segments_from_states([], LEXICON) == []


def test_unnamed_state_class_policies() -> None:
    states = [1, 2, 3, 31, 32, 33, 4]  # class 10 has no name
    assert [s.gloss for s in segments_from_states(states, LEXICON)] == ["A", "B"]
    named = segments_from_states(states, LEXICON, unknown="placeholder")
    assert named[1] == GlossSegment("<class:10>", 3, 6)
    with pytest.raises(InputError, match="state class 10 .*has no gloss name"):
        segments_from_states(states, LEXICON, unknown="error")
    with pytest.raises(InputError, match=">= 0"):
        segments_from_states([1, -2], LEXICON)


def write_alignment(root: Path, *rows: str) -> None:
    write(
        root / "alignments/state_lexicon.tsv",
        "class_k\tstates\tgloss\tvotes\tconflicting_votes",
        "0\t1,2,3\tA\t1\t0",
        "1\t4,5,6\tB\t1\t0",
    )
    write(root / "alignments/phoenix2014t.train.align.tsv", "name\tnum_frames\tstates", *rows)


def test_alignment_file_and_durations(tmp_path: Path) -> None:
    write_alignment(tmp_path, "c1\t6\t0 1 2 3 4 6", "c2\t9\t1 1 2 2 3 3 1 2 3")
    segments = load_alignments(tmp_path, "train")
    assert segments == {
        "c1": [GlossSegment("A", 1, 4), GlossSegment("B", 4, 6)],
        "c2": [GlossSegment("A", 0, 6), GlossSegment("A", 6, 9)],
    }
    durations = gloss_durations(segments)
    assert durations["A"].count == 3
    assert durations["A"].mean == pytest.approx(4.0)
    assert durations["A"].std == pytest.approx(np.std([3, 6, 3]))
    assert (durations["A"].min, durations["A"].max) == (3, 6)
    assert durations["B"].std == 0.0 and durations["B"].mean_seconds() == pytest.approx(2 / 25)
    assert alignments.read_frame_counts(tmp_path, "train") == {"c1": 6, "c2": 9}


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("c1\t5\t1 2 3", "num_frames says 5 but 3 states are given"),
        ("c1\t3\t1 x 3", "states must be integers"),
        ("c1\t3\t1 -2 3", "negative state -2"),
        ("c1\tthree\t1 2 3", "num_frames must be a positive integer, got 'three'"),
        ("c1\t3", "expected 3 tab-separated fields"),
    ],
)
def test_malformed_alignment_rows(tmp_path: Path, row: str, problem: str) -> None:
    write_alignment(tmp_path, row)
    with pytest.raises(FormatError, match="phoenix2014t.train.align.tsv, line 2: " + problem):
        load_alignments(tmp_path, "train")


def test_malformed_lexicon_and_missing_alignment(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no PHOENIX-2014-T alignment file .*tried"):
        load_alignments(tmp_path, "dev")
    lexicon = write(tmp_path / "lex.tsv", "class_k\tstates\tgloss", "2\t4,5,6\tB")
    with pytest.raises(FormatError, match="line 2: class 2 should own states \\[7, 8, 9\\]"):
        alignments.load_state_lexicon(lexicon)


def test_real_alignment_dev(shared_data: Path) -> None:
    root = shared(shared_data, "phoenix2014t")
    segments = load_alignments(root, "dev")
    samples = {s.id: s for s in load_corpus("phoenix2014t", root, "dev")}
    assert set(segments) == set(samples)
    assert segments["11August_2010_Wednesday_tagesschau-2"] == [
        GlossSegment("DRUCK", 2, 18),
        GlossSegment("TIEF", 18, 32),
        GlossSegment("KOMMEN", 32, 42),
    ]
    for name, clip in segments.items():
        ends = [0] + [s.end for s in clip]
        assert all(
            s.start >= e for s, e in zip(clip, ends[:-1], strict=True)
        )  # ordered, non-overlapping
        assert not clip or clip[-1].end <= samples[name].num_frames
        assert all(s.num_frames >= 3 for s in clip)  # a run walks through all three states
    # The orth column agrees exactly with the alignment for some clips (others use richer glosses).
    agree = sum([s.gloss for s in segments[n]] == list(samples[n].glosses) for n in segments)
    assert 50 < agree < len(segments)


def test_real_gloss_durations_train(shared_data: Path) -> None:
    root = shared(shared_data, "phoenix2014t")
    durations = load_gloss_durations(root, "train")
    regen = durations["REGEN"]
    assert regen.count > 1000 and 5 < regen.mean < 15 and regen.std > 0
    assert all(d.min >= 3 and d.count >= 1 for d in durations.values())
