"""SignSynth end to end: layout, determinism, kinematic plausibility, signers, rendering."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge_slr.data.synth import SignSynth, SynthDifficulty, get_difficulty
from edge_slr.data.synth.body import assemble, body_anchors
from edge_slr.data.synth.motion import plan_motion
from edge_slr.data.synth.seeding import generator
from edge_slr.data.synth.skeleton import FINGER_BONES
from edge_slr.errors import InputError
from edge_slr.landmarks.io import save_landmarks
from edge_slr.landmarks.layout import FLIP_PERMUTATION, PART_SLICES

SENTENCE = ("TOMORROW", "NORTH", "RAIN", "STRONG", "TEMPERATURE", "TWELVE", "DEGREE")
LEFT, RIGHT = PART_SLICES["left_hand"], PART_SLICES["right_hand"]
NO_NOISE = SynthDifficulty(name="clean", jitter=0.0, dropout=0.0, camera_rotation=0.0)


@pytest.fixture(scope="module")
def synth() -> SignSynth:
    return SignSynth(seed=3)


@pytest.fixture(scope="module")
def sample(synth):
    return synth.synthesize(SENTENCE, synth.signer("train", 0, left_handed=False), sample_id="s0")


def test_output_follows_the_canonical_layout(sample):
    seq = sample.landmarks
    assert seq.data.shape[1:] == (543, 4) and seq.data.dtype == np.float32
    assert seq.fps == 25.0
    conf = seq.confidence
    assert (conf >= 0).all() and (conf <= 1).all()
    assert (conf[:, PART_SLICES["face"]] == 1).all()  # the face is always found
    assert (conf[:, PART_SLICES["pose"]] > 0).all()  # pose points always carry a visibility
    for hand in (LEFT, RIGHT):
        missing = conf[:, hand.start] == 0
        assert (conf[missing, hand] == 0).all()  # a hand is present or absent as a whole
        assert (seq.data[missing, hand, :3] == 0).all()  # missing: zeros, never NaN
    head_and_shoulders = seq.data[:, :13, :2]
    assert head_and_shoulders.min() > 0.0 and head_and_shoulders.max() < 1.0
    arms = seq.data[:, 13:23, :2]  # arms leave the image only at the bottom (hands at rest)
    assert arms[..., 0].min() > 0.0 and arms[..., 0].max() < 1.0 and arms[..., 1].min() > 0.0
    assert np.isfinite(seq.data).all()


def test_ground_truth_spans_and_metadata(sample):
    meta = sample.landmarks.metadata
    assert meta["glosses"] == list(SENTENCE) and meta["signer"] == "synth-train-00"
    spans = sample.spans
    assert [g for g, _, _ in spans] == list(SENTENCE)
    starts, ends = [s for _, s, _ in spans], [e for _, _, e in spans]
    assert starts[0] > 0 and ends[-1] < sample.landmarks.num_frames  # rest frames around
    assert starts[1:] == ends[:-1] and all(e - s >= 3 for _, s, e in spans)


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path, synth):
    signer = synth.signer("dev", 1)
    paths = []
    for i, seed in enumerate((3, 3, 4)):
        other = SignSynth(seed=seed)
        out = other.synthesize(SENTENCE, other.signer("dev", 1), sample_id="x")
        paths.append(tmp_path / f"{i}.npz")
        save_landmarks(paths[-1], out.landmarks)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    # The sample id is part of the seed: two samples of one sentence differ.
    a = synth.synthesize(SENTENCE, signer, sample_id="a").landmarks.data
    b = synth.synthesize(SENTENCE, signer, sample_id="b").landmarks.data
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_hand_bones_keep_their_length_over_time():
    synth = SignSynth(seed=0, difficulty=NO_NOISE)
    seq = synth.synthesize(SENTENCE, synth.signer("train", 2), sample_id="b").landmarks
    for hand in (LEFT, RIGHT):
        points = seq.data[:, hand]
        present = points[:, 0, 3] > 0
        assert present.mean() > 0.3
        a, b = np.asarray(FINGER_BONES).T
        lengths = np.linalg.norm(points[present][:, b, :3] - points[present][:, a, :3], axis=-1)
        relative = lengths / lengths.sum(axis=1, keepdims=True)  # the camera distance cancels
        spread = relative.std(axis=0) / relative.mean(axis=0)
        assert spread.max() < 0.06, spread.max()  # rigid up to perspective (see the next test)
        shoulders = np.linalg.norm(seq.data[present, 11, :2] - seq.data[present, 12, :2], axis=-1)
        palm = lengths[:, 8] / shoulders  # wrist -> middle knuckle, real MediaPipe: ~0.23-0.34
        assert 0.2 < np.median(palm) < 0.4


def test_body_frame_skeleton_is_rigid(synth):
    signer = synth.signer("train", 1)
    rng = generator(0, "test")
    signs = [synth.lexicon.sign(g) for g in SENTENCE]
    lengths = synth.durations.sample(SENTENCE, rng)
    plan = plan_motion(
        signs, lengths, signer, body_anchors(signer, synth.face), synth.difficulty, rng
    )
    points = assemble(plan, signer, synth.face)
    p = signer.proportions
    for shoulder, elbow, wrist in ((11, 13, 15), (12, 14, 16)):
        upper = np.linalg.norm(points[:, elbow] - points[:, shoulder], axis=-1)
        fore = np.linalg.norm(points[:, wrist] - points[:, elbow], axis=-1)
        np.testing.assert_allclose(upper, p.upper_arm, rtol=1e-4)
        np.testing.assert_allclose(fore, p.forearm, rtol=1e-4)
    a, b = np.asarray(FINGER_BONES).T
    for hand in (LEFT, RIGHT):  # in metres, before the camera: exactly rigid
        bones = np.linalg.norm(points[:, hand][:, b] - points[:, hand][:, a], axis=-1)
        np.testing.assert_allclose(bones, bones[:1].repeat(len(bones), 0), rtol=1e-4)


def test_left_handed_signer_is_the_mirror_image(synth):
    right = synth.signer("test", 0, left_handed=False)
    left = dataclasses.replace(right, left_handed=True)
    rng = generator(1, "mirror")
    signs = [synth.lexicon.sign(g) for g in SENTENCE]
    lengths = synth.durations.sample(SENTENCE, rng)
    plan = plan_motion(
        signs, lengths, right, body_anchors(right, synth.face), synth.difficulty, rng
    )
    a, b = assemble(plan, right, synth.face), assemble(plan, left, synth.face)
    np.testing.assert_allclose(b, a[:, FLIP_PERMUTATION] * np.array([-1.0, 1.0, 1.0]), atol=1e-6)

    def travelled_and_height(seq, hand):
        wrist = seq.coordinates[:, hand.start, :2]
        return np.linalg.norm(np.diff(wrist, axis=0), axis=-1).sum(), wrist[:, 1].mean()

    # In the output the dominant hand moves more and works higher (smaller y) than the passive.
    easy = SignSynth(seed=0, difficulty=NO_NOISE)
    for handed, dominant, passive in ((False, RIGHT, LEFT), (True, LEFT, RIGHT)):
        person = easy.signer("test", 0, left_handed=handed)
        for i in range(3):
            seq = easy.synthesize(SENTENCE[i:], person, sample_id=f"m{i}").landmarks
            path_d, height_d = travelled_and_height(seq, dominant)
            path_p, height_p = travelled_and_height(seq, passive)
            assert path_d > 1.1 * path_p and height_d < height_p - 0.05


def test_splits_have_disjoint_signers(synth):
    people = {
        split: [synth.signer(split, i) for i in range(6)] for split in ("train", "dev", "test")
    }
    ids = {split: {p.id for p in group} for split, group in people.items()}
    assert not ids["train"] & ids["dev"] and not ids["train"] & ids["test"]
    assert not ids["dev"] & ids["test"]
    bodies = [p.proportions for group in people.values() for p in group]
    assert len({b.shoulder_width for b in bodies}) == len(bodies)  # every signer is another person
    assert synth.signer("train", 0) == SignSynth(seed=3).signer("train", 0)
    assert synth.signer("train", 0) != SignSynth(seed=4).signer("train", 0)


def test_difficulty_controls_noise_and_dropouts():
    def nose_jitter_and_presence(name: str) -> tuple[float, float]:
        synth = SignSynth(seed=0, difficulty=name)
        jitter, presence = [], []
        for i in range(4):
            seq = synth.synthesize(SENTENCE, synth.signer("train", i), sample_id=f"d{i}").landmarks
            nose = seq.coordinates[:, 0, :2]
            jitter.append(
                np.median(np.linalg.norm(nose[1:-1] - 0.5 * (nose[2:] + nose[:-2]), axis=-1))
            )
            presence.append(seq.present("right_hand").mean() + seq.present("left_hand").mean())
        return float(np.mean(jitter)), float(np.mean(presence))

    easy, hard = nose_jitter_and_presence("easy"), nose_jitter_and_presence("hard")
    assert easy[0] < hard[0]
    assert easy[1] > hard[1]
    default = SignSynth(seed=0).synthesize(SENTENCE, SignSynth(seed=0).signer("train", 0))
    assert 0.2 < default.landmarks.present("right_hand").mean() < 1.0  # hands do get lost


def test_difficulty_validation():
    with pytest.raises(InputError, match="jitter must be in"):
        SynthDifficulty(jitter=-1.0)
    with pytest.raises(InputError, match="rest_frames"):
        SynthDifficulty(rest_frames=(5, 2))
    with pytest.raises(InputError, match="unknown difficulty"):
        get_difficulty("impossible")
    assert SynthDifficulty.from_dict(get_difficulty("hard").to_dict()) == get_difficulty("hard")


def test_bad_input_is_a_clear_error(synth):
    with pytest.raises(InputError, match="non-empty sequence"):
        synth.synthesize([], synth.signer("train", 0))
    with pytest.raises(InputError, match="unknown split"):
        synth.signer("validation", 0)


def test_frames_show_the_signer(synth):
    pytest.importorskip("cv2")
    out = synth.synthesize(SENTENCE[:3], synth.signer("train", 0), sample_id="f", frames=True)
    frames = out.frames
    assert frames.shape == (out.landmarks.num_frames, 112, 112, 3) and frames.dtype == np.uint8
    assert frames.std() > 20  # not a blank image
    motion = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    assert (motion > 0).mean() > 0.5  # the signer moves
    # The face is drawn where the landmarks put it: skin colour around the nose.
    nose = out.landmarks.coordinates[5, 0, :2] * 112
    x, y = int(nose[0]), int(nose[1])
    patch = frames[5, y - 2 : y + 3, x - 2 : x + 3].reshape(-1, 3).astype(int)
    skin = np.array(synth.signer("train", 0).appearance.skin)
    assert np.abs(patch - skin).sum(axis=1).min() < 60
    bigger = SignSynth(seed=3, frame_size=64).synthesize(
        SENTENCE[:1], synth.signer("train", 0), frames=True
    )
    assert bigger.frames.shape[1:] == (64, 64, 3)
