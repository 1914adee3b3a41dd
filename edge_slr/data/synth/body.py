"""The signer's body: location anchors, and the 543 Holistic points of every frame (body frame).

``body_anchors`` places the lexicon's named locations (chin, temple, chest, neutral space, ...)
on a given signer. ``assemble`` turns a :class:`~edge_slr.data.synth.motion.MotionPlan` into
``(T, 543, 3)`` points in metres: hands by forward kinematics, arms by IK from the shoulders,
the face mesh on a moving head, and MediaPipe's 33 pose points derived from all of these.
A left-handed signer is the mirror image of a right-handed one.
"""

from __future__ import annotations

import numpy as np

from edge_slr.data.synth.face import (
    LEFT_CHEEK,
    LEFT_EYE_INNER,
    LEFT_EYE_OUTER,
    LOWER_LIP,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    NOSE_TIP,
    RIGHT_CHEEK,
    RIGHT_EYE_INNER,
    RIGHT_EYE_OUTER,
    UPPER_LIP,
    FaceModel,
)
from edge_slr.data.synth.motion import REFERENCE_SHOULDER, HandTrack, MotionPlan
from edge_slr.data.synth.signer import SignerProfile
from edge_slr.data.synth.skeleton import euler_matrices, hand_points, hand_rotation, two_bone_ik
from edge_slr.landmarks.layout import FLIP_PERMUTATION, NUM_POINTS, PART_SLICES

POSE, FACE = PART_SLICES["pose"], PART_SLICES["face"]
LEFT_HAND, RIGHT_HAND = PART_SLICES["left_hand"], PART_SLICES["right_hand"]
_ELBOW_POLE = np.array([-0.35, 0.8, -0.5])  # elbows hang down, out and a little back
_NOSE_DEPTH = 0.10  # m: the nose tip is this far in front of the shoulder line
# Torso, neutral-space and rest anchors for a right hand at shoulder width 0.33 m.
_BODY_ANCHORS = {
    "chest": (-0.05, 0.14, 0.10),
    "chest_contra": (0.08, 0.12, 0.10),
    "stomach": (-0.02, 0.34, 0.12),
    "shoulder_ipsi": (-0.15, 0.01, 0.06),
    "shoulder_contra": (0.15, 0.01, 0.06),
    "neutral": (-0.08, 0.09, 0.30),
    "neutral_high": (-0.08, -0.06, 0.30),
    "neutral_low": (-0.06, 0.22, 0.28),
    "neutral_ipsi": (-0.22, 0.07, 0.26),
    "neutral_contra": (0.05, 0.09, 0.28),
    "neutral_far": (-0.06, 0.05, 0.40),
    "rest": (-0.09, 0.50, 0.17),
    "idle": (-0.14, 0.38, 0.18),
    "base": (-0.04, 0.15, 0.28),  # the passive hand of two-handed signs (mirrored coordinates)
    "on_base": (0.04, 0.09, 0.28),  # the dominant hand above the passive one
}
# Head anchors as targets in face-template units (x, y): the nearest front-surface mesh point.
_HEAD_TARGETS = {
    "forehead": (0.0, -0.75),
    "temple": (-0.62, -0.45),
    "eye": (-0.3, -0.15),
    "cheek": (-0.45, 0.15),
    "chin": (0.0, 0.82),
}
_SURFACE = 0.015  # m in front of the skin: a touching fingertip is not inside the head


_HEAD_INDEX_CACHE: dict[int, dict[str, int]] = {}


def _head_indices(face: FaceModel) -> dict[str, int]:
    """Mesh index of each head anchor (cached per face model; the model is immutable)."""
    if id(face) in _HEAD_INDEX_CACHE:
        return _HEAD_INDEX_CACHE[id(face)]
    t = face.template
    front = t[:, 2] > np.percentile(t[:, 2], 30)
    out = {}
    for name, (x, y) in _HEAD_TARGETS.items():
        d = np.hypot(t[:, 0] - x, t[:, 1] - y) + np.where(front, 0.0, 10.0)
        out[name] = int(np.argmin(d))
    _HEAD_INDEX_CACHE[id(face)] = out
    return out


def head_geometry(signer: SignerProfile, face: FaceModel) -> tuple[np.ndarray, float]:
    """(centre of the face mesh in the body frame, metres per face-template unit)."""
    p = signer.proportions
    unit = p.shoulder_width / face.shoulder_width_in_eye_distances * p.head_scale
    nose = face.template[NOSE_TIP]
    nose_y = -face.nose_height_in_shoulder_widths * p.shoulder_width - p.neck
    centre = np.array([0.0, nose_y - nose[1] * unit, _NOSE_DEPTH - nose[2] * unit])
    return centre, unit


def body_anchors(signer: SignerProfile, face: FaceModel) -> dict[str, np.ndarray]:
    """Named locations (metres, body frame, right-hand side) for this signer."""
    scale = signer.proportions.shoulder_width / REFERENCE_SHOULDER
    anchors = {k: np.asarray(v) * scale for k, v in _BODY_ANCHORS.items()}
    centre, unit = head_geometry(signer, face)
    t = face.template
    front = np.array([0.0, 0.0, _SURFACE])

    def on_face(local: np.ndarray) -> np.ndarray:
        return centre + unit * local + front

    for name, index in _head_indices(face).items():
        anchors[name] = on_face(t[index])
    anchors["nose"] = on_face(t[NOSE_TIP])
    anchors["mouth"] = on_face(0.5 * (t[UPPER_LIP] + t[LOWER_LIP]))
    anchors["ear"] = on_face(t[RIGHT_CHEEK] + np.array([-0.1, 0.05, -0.35]))
    chin = t[_head_indices(face)["chin"]]
    anchors["neck"] = on_face(chin + np.array([0.0, 0.45, -0.55]))
    return anchors


def _hand_world(
    track: HandTrack, signer: SignerProfile, shoulder: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Hand points (T, 21, 3) and elbows (T, 3) of a right hand following ``track``."""
    p = signer.proportions
    rotation = hand_rotation(track.distal, track.palm)
    local = hand_points(track.angles, p.palm)
    centre = 0.5 * (local[:, 0] + local[:, 9])
    centre[:, 2] -= 0.13 * p.palm  # the palm centre is on the palm side of the bones
    wrist = track.position - (rotation @ centre[..., None])[..., 0]
    elbow, reached = two_bone_ik(shoulder, wrist, p.upper_arm, p.forearm, _ELBOW_POLE)
    points = local @ rotation.transpose(0, 2, 1) + reached[:, None]
    return points, elbow


def assemble(plan: MotionPlan, signer: SignerProfile, face: FaceModel) -> np.ndarray:
    """All 543 points per frame, metres in the body frame: (T, 543, 3) float32."""
    p = signer.proportions
    frames = len(plan.face)
    out = np.zeros((frames, NUM_POINTS, 3), dtype=np.float32)
    half = 0.5 * p.shoulder_width
    # Shoulders lift a little when the dominant hand works high (a visible, real cue).
    lift = 0.02 * np.clip((0.15 - plan.dominant.position[:, 1]) / 0.3, 0.0, 1.0)
    right_shoulder = np.stack([np.full(frames, -half), -lift, np.zeros(frames)], axis=1)
    left_shoulder = np.stack([np.full(frames, half), -0.4 * lift, np.zeros(frames)], axis=1)
    dom, dom_elbow = _hand_world(plan.dominant, signer, right_shoulder)
    mirrored_shoulder = left_shoulder * np.array([-1.0, 1.0, 1.0])
    non, non_elbow = _hand_world(plan.nondominant, signer, mirrored_shoulder)
    non[..., 0] *= -1.0
    non_elbow[:, 0] *= -1.0
    out[:, RIGHT_HAND] = dom
    out[:, LEFT_HAND] = non
    face_points = _face_world(plan, signer, face)
    out[:, FACE] = face_points
    _pose_points(out, face_points, signer, face, left_shoulder, right_shoulder)
    out[:, 13], out[:, 14] = non_elbow, dom_elbow
    if signer.left_handed:
        out = out[:, FLIP_PERMUTATION] * np.array([-1.0, 1.0, 1.0], dtype=np.float32)
    return out


def _face_world(plan: MotionPlan, signer: SignerProfile, face: FaceModel) -> np.ndarray:
    centre, unit = head_geometry(signer, face)
    pivot = centre + np.array([0.0, 0.9, -0.6]) * unit  # the top of the neck
    local = face.points(plan.face) * np.float32(unit) + (centre - pivot).astype(np.float32)
    rotation = euler_matrices(plan.head[:, 0], plan.head[:, 1], plan.head[:, 2])
    return local @ rotation.transpose(0, 2, 1).astype(np.float32) + pivot.astype(np.float32)


def _pose_points(
    out: np.ndarray,
    face_points: np.ndarray,
    signer: SignerProfile,
    face: FaceModel,
    left_shoulder: np.ndarray,
    right_shoulder: np.ndarray,
) -> None:
    """Fill MediaPipe's 33 pose points from the face, arms, hands and a standing lower body."""
    p = signer.proportions
    f = face_points
    eye = {
        name: face.chain_points(name) for name in ("left_eye", "right_eye")
    }  # MediaPipe's eye point is the eye's centre
    _, unit = head_geometry(signer, face)
    out[:, 0] = f[:, NOSE_TIP]
    out[:, 1], out[:, 2], out[:, 3] = (
        f[:, LEFT_EYE_INNER],
        f[:, eye["left_eye"]].mean(axis=1),
        f[:, LEFT_EYE_OUTER],
    )
    out[:, 4], out[:, 5], out[:, 6] = (
        f[:, RIGHT_EYE_INNER],
        f[:, eye["right_eye"]].mean(axis=1),
        f[:, RIGHT_EYE_OUTER],
    )
    back = np.array([0.0, 0.05, -0.45]) * unit
    out[:, 7] = f[:, LEFT_CHEEK] + back + np.array([0.1 * unit, 0.0, 0.0])
    out[:, 8] = f[:, RIGHT_CHEEK] + back - np.array([0.1 * unit, 0.0, 0.0])
    out[:, 9], out[:, 10] = f[:, MOUTH_LEFT], f[:, MOUTH_RIGHT]
    out[:, 11], out[:, 12] = left_shoulder, right_shoulder
    for side, hand in ((1, LEFT_HAND), (0, RIGHT_HAND)):
        h = out[:, hand]
        out[:, 15 + (1 - side)] = h[:, 0]  # wrist
        out[:, 17 + (1 - side)] = h[:, 17]  # pinky knuckle
        out[:, 19 + (1 - side)] = 0.5 * (h[:, 5] + h[:, 6])  # index knuckle
        out[:, 21 + (1 - side)] = 0.5 * (h[:, 2] + h[:, 3])  # thumb
    hip = 0.5 * p.hip_width
    legs = {  # (x, y, z) per left point; the right one mirrors x
        23: (hip, p.torso, -0.02),
        25: (hip * 0.9, p.torso + 0.45, 0.04),
        27: (hip * 0.9, p.torso + 0.88, 0.0),
        29: (hip * 0.9, p.torso + 0.93, -0.05),
        31: (hip * 0.9, p.torso + 0.95, 0.12),
    }
    for left, (x, y, z) in legs.items():
        out[:, left] = (x, y, z)
        out[:, left + 1] = (-x, y, z)
