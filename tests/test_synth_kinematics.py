"""SignSynth building blocks: hand forward kinematics, handshapes, arm IK, face blendshapes."""

from __future__ import annotations

import numpy as np
import pytest

from edge_slr.data.synth import handshapes
from edge_slr.data.synth.face import BLENDSHAPES, CHIN, LOWER_LIP, UPPER_LIP, load_face_model
from edge_slr.data.synth.skeleton import (
    FINGER_BONES,
    REFERENCE_PALM,
    bone_lengths,
    hand_points,
    hand_rotation,
    two_bone_ik,
)
from edge_slr.errors import InputError

TIPS = [4, 8, 12, 16, 20]


def test_bone_lengths_do_not_depend_on_joint_angles():
    rng = np.random.default_rng(0)
    angles = rng.uniform(-0.3, 1.8, size=(200, 20))
    lengths = bone_lengths(hand_points(angles))
    assert lengths.shape == (200, len(FINGER_BONES))
    np.testing.assert_allclose(lengths, lengths[:1].repeat(200, axis=0), atol=1e-12)
    # Plausible adult hand: phalanges 1.5-5 cm, wrist to middle knuckle = the palm length.
    assert lengths.min() > 0.015 and lengths.max() < 0.1
    points = hand_points(angles[0])
    assert np.linalg.norm(points[9] - points[0]) == pytest.approx(REFERENCE_PALM, rel=1e-3)


def test_hand_scales_with_palm_length():
    angles = handshapes.handshape("5").angles()
    small, large = hand_points(angles, palm=0.08), hand_points(angles, palm=0.10)
    np.testing.assert_allclose(large, small * 1.25, atol=1e-12)


def test_handshapes_are_distinct_and_anatomical():
    table = np.stack([hand_points(handshapes.handshape(n).angles()) for n in handshapes.names()])
    assert np.isfinite(table).all()
    flat = table.reshape(len(table), -1)
    distances = np.linalg.norm(flat[:, None] - flat[None], axis=-1)
    assert distances[~np.eye(len(table), dtype=bool)].min() > 0.01  # no two shapes coincide
    fingertip_reach = np.linalg.norm(table[:, TIPS[1:]] - table[:, :1], axis=-1).mean(axis=1)
    reach = dict(zip(handshapes.names(), fingertip_reach, strict=True))
    assert reach["B"] > reach["C"] > reach["S"]  # open > curved > fist
    # Flexion goes towards the palm (local -z), never through the back of the hand.
    fist = hand_points(handshapes.handshape("S").angles())
    assert (fist[TIPS[1:], 2] < 0).all()


def test_unknown_handshape_and_bad_angles_are_clear_errors():
    with pytest.raises(InputError, match="unknown handshape 'Q'"):
        handshapes.handshape("Q")
    with pytest.raises(InputError, match="20 values"):
        hand_points(np.zeros(19))


def test_hand_rotation_is_a_proper_rotation_pointing_the_fingers():
    rng = np.random.default_rng(1)
    distal, palm = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    rotation = hand_rotation(distal, palm)
    np.testing.assert_allclose(
        rotation @ rotation.transpose(0, 2, 1), np.eye(3)[None].repeat(50, 0), atol=1e-9
    )
    np.testing.assert_allclose(np.linalg.det(rotation), 1.0, atol=1e-9)
    unit = distal / np.linalg.norm(distal, axis=1, keepdims=True)
    np.testing.assert_allclose(rotation[:, :, 1], unit, atol=1e-9)  # local y = fingers
    # The palm (local -z) faces the requested side.
    assert (np.sum(-rotation[:, :, 2] * palm, axis=1) > 0).all()


def test_right_hand_palm_forward_has_thumb_towards_the_midline():
    # Fingers up, palm to the camera: a right hand's thumb is on the signer's left (+x).
    rotation = hand_rotation(np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, 1.0]))
    points = hand_points(handshapes.handshape("5").angles()) @ rotation.T
    assert points[4, 0] > points[20, 0] + 0.05


def test_two_bone_ik_keeps_the_arm_rigid():
    rng = np.random.default_rng(2)
    shoulder = np.array([-0.16, 0.0, 0.0])
    targets = shoulder + rng.normal(size=(100, 3)) * 0.3
    elbow, wrist = two_bone_ik(shoulder, targets, 0.31, 0.27, np.array([-0.3, 0.8, -0.5]))
    np.testing.assert_allclose(np.linalg.norm(elbow - shoulder, axis=1), 0.31, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(wrist - elbow, axis=1), 0.27, atol=1e-9)
    reachable = np.linalg.norm(targets - shoulder, axis=1) < 0.5
    np.testing.assert_allclose(wrist[reachable], targets[reachable], atol=1e-9)
    assert (elbow[:, 1] > shoulder[1] - 0.31).all()


def test_face_blendshapes_move_the_right_points():
    face = load_face_model()
    assert face.template.shape == (468, 3)
    neutral = face.points(np.zeros((1, len(BLENDSHAPES))))[0]
    np.testing.assert_allclose(neutral, face.template)

    def shape(name: str) -> np.ndarray:
        coefficients = np.zeros((1, len(BLENDSHAPES)))
        coefficients[0, BLENDSHAPES.index(name)] = 1.0
        return face.points(coefficients)[0] - neutral

    jaw = shape("jaw_open")
    assert jaw[CHIN, 1] > 0.15 and jaw[LOWER_LIP, 1] > 0.15 and abs(jaw[UPPER_LIP, 1]) < 0.05
    brows = face.chain_points("left_eyebrow")
    assert (shape("brow_raise")[brows, 1] < -0.05).all()  # up is -y
    assert np.abs(shape("brow_raise")[CHIN]).max() == 0
    eye = face.chain_points("left_eye")
    assert shape("blink")[eye, 1].max() > 0.01  # the upper lid comes down
