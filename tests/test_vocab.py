"""The gloss vocabulary: stable ids, OOV policies, files and fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_slr.data.corpora import load_corpus
from edge_slr.decoding.vocab import BLANK, UNK, Vocabulary
from edge_slr.errors import FormatError, InputError

SENTENCES = [("REGEN", "SONNE", "REGEN"), ("WIND", "ABER", "SONNE"), ("__ON__", "REGEN")]


def test_blank_first_then_sorted_glosses() -> None:
    vocab = Vocabulary.from_sentences(SENTENCES)
    assert vocab.glosses == (BLANK, "ABER", "REGEN", "SONNE", "WIND", "__ON__")
    assert len(vocab) == 6 and vocab.blank_id == 0 and vocab.unk_id is None
    assert vocab.index("REGEN") == 2 and "WIND" in vocab and "HAGEL" not in vocab
    with pytest.raises(InputError, match="gloss 'HAGEL' is not in the vocabulary"):
        vocab.index("HAGEL")


def test_ids_do_not_depend_on_sentence_order() -> None:
    a = Vocabulary.from_sentences(SENTENCES)
    b = Vocabulary.from_sentences(list(reversed([tuple(reversed(s)) for s in SENTENCES])))
    assert a == b and hash(a) == hash(b) and a.sha256 == b.sha256
    c = Vocabulary.from_sentences([*SENTENCES, ("HAGEL",)])
    assert c != a and c.sha256 != a.sha256


def test_unk_policy_reserves_index_one() -> None:
    vocab = Vocabulary.from_sentences(SENTENCES, oov="unk")
    assert vocab.glosses[:2] == (BLANK, UNK) and vocab.unk_id == 1
    assert vocab.encode(["SONNE", "HAGEL", "WIND"]) == [4, 1, 5]
    assert vocab.decode([4, 1, 5]) == ["SONNE", UNK, "WIND"]
    assert vocab.decode([4, 1, 5], keep_unk=False) == ["SONNE", "WIND"]


def test_error_and_drop_policies_and_oov_counts() -> None:
    vocab = Vocabulary.from_sentences(SENTENCES)  # default policy: error
    with pytest.raises(InputError, match="gloss 'HAGEL' is not in the vocabulary.*'error'"):
        vocab.encode(["REGEN", "HAGEL"])
    assert vocab.encode(["REGEN", "HAGEL", "WIND"], oov="drop") == [2, 4]
    with pytest.raises(InputError, match="needs an '<unk>' entry"):
        vocab.encode(["HAGEL"], oov="unk")
    dropping = vocab.with_oov("drop")
    ids, oov = dropping.encode_many([["HAGEL", "REGEN"], ["HAGEL", "NEBEL"], ["WIND"]])
    assert ids == [[2], [], [4]]
    assert oov.types == {"HAGEL": 2, "NEBEL": 1} and oov.num_types == 2 and oov.num_tokens == 3
    assert vocab.count_oov([["HAGEL", "REGEN", "HAGEL"]]).num_tokens == 2
    with pytest.raises(InputError, match="unknown OOV policy 'ignore'"):
        vocab.encode(["REGEN"], oov="ignore")  # type: ignore[arg-type]


def test_blank_is_not_a_gloss() -> None:
    vocab = Vocabulary.from_sentences(SENTENCES, oov="unk")
    with pytest.raises(InputError, match="CTC blank and cannot be encoded"):
        vocab.encode([BLANK])
    with pytest.raises(InputError, match="reserved tokens"):
        Vocabulary.from_sentences([("A", UNK)])
    with pytest.raises(InputError, match="sequences of glosses, got the string"):
        Vocabulary.from_sentences(["REGEN SONNE"])  # type: ignore[list-item]
    with pytest.raises(InputError, match="got the string"):
        vocab.encode("REGEN")


def test_decode_blanks_and_bad_ids() -> None:
    vocab = Vocabulary.from_sentences(SENTENCES)
    ids = np.array([0, 2, 2, 0, 3], dtype=np.int64)
    assert vocab.decode(ids) == ["REGEN", "REGEN", "SONNE"]  # no CTC merge here
    assert vocab.decode(ids, keep_blank=True) == [BLANK, "REGEN", "REGEN", BLANK, "SONNE"]
    with pytest.raises(InputError, match=r"id 6 is outside the vocabulary \(0..5\)"):
        vocab.decode([6])
    with pytest.raises(InputError, match="ids must be integers"):
        vocab.decode(["x"])  # type: ignore[list-item]


def test_direct_construction_is_validated() -> None:
    with pytest.raises(InputError, match="index 0 must be the blank"):
        Vocabulary(("A", BLANK))
    with pytest.raises(InputError, match=r"duplicate entries \['A'\]"):
        Vocabulary((BLANK, "A", "A"))
    with pytest.raises(InputError, match="without spaces"):
        Vocabulary((BLANK, "A B"))
    with pytest.raises(InputError, match="needs an '<unk>' entry"):
        Vocabulary((BLANK, "A"), oov="unk")


def test_save_load_round_trip(tmp_path: Path) -> None:
    vocab = Vocabulary.from_sentences([("他", "今天", "年龄"), ("A",)], oov="unk")
    path = vocab.save(tmp_path / "vocabulary.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "edge-slr-vocabulary" and data["version"] == 1
    assert data["sha256"] == vocab.sha256 and data["size"] == len(vocab)
    loaded = Vocabulary.load(path)
    assert loaded == vocab and loaded.oov == "unk" and loaded.glosses == vocab.glosses
    assert Vocabulary.from_dict(vocab.to_dict()) == vocab


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not a JSON vocabulary file"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"format": "other", "version": 1}', "'format' must be 'edge-slr-vocabulary'"),
        ('{"format": "edge-slr-vocabulary", "version": 7, "glosses": []}', "unsupported version 7"),
        (
            '{"format": "edge-slr-vocabulary", "version": 1, "glosses": "A B"}',
            "'glosses' must be a list",
        ),
        (
            '{"format": "edge-slr-vocabulary", "version": 1, "glosses": ["A"]}',
            "index 0 must be the blank",
        ),
        (
            '{"format": "edge-slr-vocabulary", "version": 1, "glosses": ["<blank>", 3]}',
            "entry 1 must be a non-empty string",
        ),
        (
            '{"format": "edge-slr-vocabulary", "version": 1, "glosses": ["<blank>"], "oov": "x"}',
            "unknown OOV policy 'x'",
        ),
        (
            '{"format": "edge-slr-vocabulary", "version": 1, "glosses": ["<blank>", "A"], "size": 3}',
            "'size' says 3 but 2 glosses are listed",
        ),
    ],
)
def test_malformed_files(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "vocabulary.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FormatError, match=problem) as info:
        Vocabulary.load(path)
    assert info.value.path == path


def test_edited_file_fails_its_fingerprint(tmp_path: Path) -> None:
    path = Vocabulary.from_sentences(SENTENCES).save(tmp_path / "v.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    data["glosses"][1], data["glosses"][2] = data["glosses"][2], data["glosses"][1]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(FormatError, match="sha256 .* does not match the glosses"):
        Vocabulary.load(path)
    with pytest.raises(FormatError, match="does not exist"):
        Vocabulary.load(tmp_path / "missing.json")
    with pytest.raises(InputError, match="not a valid vocabulary"):
        Vocabulary.from_dict({"format": "edge-slr-vocabulary"})


@pytest.mark.parametrize(
    ("name", "folder", "size"),
    [("phoenix2014", "phoenix2014", 1231), ("phoenix2014t", "phoenix2014t", 1085)],
)
def test_real_train_vocabulary(shared_data: Path, name: str, folder: str, size: int) -> None:
    root = shared_data / folder
    if not root.is_dir():
        pytest.skip(f"{folder} is absent from {shared_data}")
    train = [s.glosses for s in load_corpus(name, root, "train")]
    vocab = Vocabulary.from_sentences(train, oov="unk")
    assert len(vocab) == size + 2  # blank and unk
    dev = [s.glosses for s in load_corpus(name, root, "dev")]
    ids, oov = vocab.encode_many(dev)
    assert sum(map(len, ids)) == sum(map(len, dev))
    assert oov.num_tokens == sum(ids_row.count(1) for ids_row in ids) > 0
    # shuffled sentence order gives the same ids
    rng = np.random.default_rng(0)
    shuffled = [train[i] for i in rng.permutation(len(train))]
    assert Vocabulary.from_sentences(shuffled, oov="unk").sha256 == vocab.sha256


def test_numpy_strings_are_stored_as_plain_str():
    import numpy as np

    from edge_slr.decoding.vocab import Vocabulary as V

    vocab = V.from_sentences([list(np.array(["B", "A"]))])
    assert all(type(g) is str for g in vocab.glosses)
    assert vocab.encode(["A", "B"]) == [1, 2]
