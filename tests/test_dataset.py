"""The on-disk landmark dataset: writer/reader round trip, resumption, atomic files, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_slr.data.dataset import (
    INDEX_FILE,
    DatasetWriter,
    IndexEntry,
    LandmarkDataset,
    read_index,
    write_frames,
)
from edge_slr.decoding.vocab import Vocabulary
from edge_slr.errors import FormatError, InputError
from edge_slr.landmarks.sequence import LandmarkSequence

DESCRIPTION = {"name": "unit", "generator": {"seed": 1}}


def _sequence(frames: int, value: float) -> LandmarkSequence:
    data = np.zeros((frames, 543, 4), np.float32)
    data[..., :3] = value
    data[..., 3] = 1.0
    return LandmarkSequence(data, 25.0, {"value": value})


def _write(root, samples: dict[str, int], with_frames: bool = True) -> list[IndexEntry]:
    vocab = Vocabulary.from_sentences([("A", "B"), ("C",)])
    writer = DatasetWriter(root, DESCRIPTION, vocab)
    writer.start_split("train")
    entries = []
    for i, (sample_id, frames) in enumerate(samples.items()):
        video = np.full((frames, 8, 8, 3), i, np.uint8) if with_frames else None
        writer.write_sample("train", sample_id, _sequence(frames, i / 10), frames=video)
        entries.append(IndexEntry(sample_id, f"signer{i % 2}", frames, ("A", "B")))
    writer.finish_split("train", entries, {"note": "x"})
    return entries


def test_round_trip(tmp_path):
    entries = _write(tmp_path, {"s1": 5, "s2": 7, "s3": 3})
    data = LandmarkDataset(tmp_path, "train")
    assert len(data) == 3 and data.samples == entries
    assert data.signers == ("signer0", "signer1")
    item = data[1]
    assert (item.id, item.signer, item.glosses) == ("s2", "signer1", ("A", "B"))
    assert item.landmarks == _sequence(7, 0.1)
    assert data["s3"].landmarks.num_frames == 3
    frames = data.load_frames("s2")
    assert frames.shape == (7, 8, 8, 3) and (frames == 1).all()
    assert data.vocabulary.glosses == ("<blank>", "A", "B", "C")
    assert data.description["splits"]["train"]["samples"] == 3
    assert data.description["splits"]["train"]["frames_total"] == 15
    assert data.description["generator"] == {"seed": 1}


def test_missing_keys_and_splits_are_clear_errors(tmp_path):
    _write(tmp_path, {"s1": 4}, with_frames=False)
    data = LandmarkDataset(tmp_path, "train")
    with pytest.raises(KeyError, match="no sample 'nope'"):
        data["nope"]
    with pytest.raises(IndexError, match="out of range"):
        data[5]
    assert not data.has_frames(0)
    with pytest.raises(FormatError, match="frames file does not exist"):
        data.load_frames(0)
    with pytest.raises(InputError, match="no split 'test'; splits found: \\['train'\\]"):
        LandmarkDataset(tmp_path, "test")


def test_resume_skips_complete_samples_and_remakes_broken_ones(tmp_path):
    _write(tmp_path, {"s1": 5, "s2": 6})
    writer = DatasetWriter(tmp_path, DESCRIPTION)
    assert writer.complete_sample("train", "s1", frames=True, pose=False) == 5
    assert writer.complete_sample("train", "s1", frames=False, pose=True) is None  # no .pose yet
    assert writer.complete_sample("train", "s9", frames=False, pose=False) is None
    (tmp_path / "train" / "s2.npz").write_bytes(b"PK\x03\x04 truncated")
    assert writer.complete_sample("train", "s2", frames=False, pose=False) is None


def test_start_split_removes_unfinished_temporary_files(tmp_path):
    _write(tmp_path, {"s1": 2})
    stale = [tmp_path / "train" / "s2.npz.partial", tmp_path / "train" / "s3.frames.npz.partial"]
    for path in stale:
        path.write_bytes(b"half a file")
    DatasetWriter(tmp_path, DESCRIPTION).start_split("train")
    assert not any(p.exists() for p in stale)
    assert (tmp_path / "train" / "s1.npz").exists()


def test_writes_are_atomic(tmp_path, monkeypatch):
    writer = DatasetWriter(tmp_path, DESCRIPTION)
    writer.start_split("train")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", crash)
    with pytest.raises(OSError, match="disk full"):
        write_frames(tmp_path / "train" / "x.frames.npz", np.zeros((2, 4, 4, 3), np.uint8))
    assert not (tmp_path / "train" / "x.frames.npz").exists()  # nothing under the final name


def test_a_different_dataset_in_the_same_folder_is_refused(tmp_path):
    _write(tmp_path, {"s1": 2})
    with pytest.raises(InputError, match="already holds a different dataset .*generator"):
        DatasetWriter(tmp_path, {"name": "unit", "generator": {"seed": 2}})
    other_vocab = Vocabulary.from_sentences([("Z",)])
    with pytest.raises(InputError, match="another vocabulary"):
        DatasetWriter(tmp_path, DESCRIPTION, other_vocab)


def test_malformed_index_names_file_and_line(tmp_path):
    path = tmp_path / INDEX_FILE
    path.write_text("id\tsigner\tnum_frames\tglosses\ns1\tA\t12\tX Y\ns2\tA\tmany\tX\n")
    with pytest.raises(FormatError, match=r"index.tsv, line 3: num_frames must be a positive"):
        read_index(path)
    path.write_text("id\tsigner\tnum_frames\tglosses\ns1\tA\t12\n")
    with pytest.raises(FormatError, match="line 2: expected 4 tab-separated fields, got 3"):
        read_index(path)
    path.write_text("name\tglosses\n")
    with pytest.raises(FormatError, match="line 1: expected the header"):
        read_index(path)
    path.write_text("id\tsigner\tnum_frames\tglosses\ns1\tA\t2\tX\ns1\tA\t2\tX\n")
    with pytest.raises(FormatError, match="repeated"):
        read_index(path)


def test_index_length_mismatch_is_detected(tmp_path):
    _write(tmp_path, {"s1": 4})
    index = tmp_path / "train" / INDEX_FILE
    index.write_text(index.read_text().replace("\t4\t", "\t9\t"))
    with pytest.raises(FormatError, match="has 4 frames but index.tsv says 9"):
        LandmarkDataset(tmp_path, "train")[0]


def test_bad_sample_ids_and_frames_are_rejected(tmp_path):
    writer = DatasetWriter(tmp_path, DESCRIPTION)
    writer.start_split("train")
    with pytest.raises(InputError, match="sample id 'a/b'"):
        writer.write_sample("train", "a/b", _sequence(2, 0.0))
    with pytest.raises(InputError, match="3 video frames for 2 landmark frames"):
        writer.write_sample(
            "train", "ok", _sequence(2, 0.0), frames=np.zeros((3, 4, 4, 3), np.uint8)
        )
    with pytest.raises(InputError, match="uint8 of shape"):
        write_frames(tmp_path / "f.frames.npz", np.zeros((2, 4, 4), np.uint8))
    description = json.loads((tmp_path / "dataset.json").read_text())
    assert description["format"] == "edge-slr-landmark-dataset"
