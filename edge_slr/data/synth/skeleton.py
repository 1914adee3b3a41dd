"""Kinematics of the synthetic signer: 21-joint hands by forward kinematics, arms by two-bone IK.

Units are metres in the *body frame*: origin between the shoulders, +x towards the signer's
left (image right for a camera facing the signer), +y down, +z towards the camera. Everything
is vectorised over frames.

Hands are built as right hands in a local frame (x radial, towards the thumb; y distal, towards
the fingers; z dorsal, out of the back of the hand). A left hand is a right hand whose world
points are mirrored (x -> -x), so every hand specification is written for a right hand.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import ArrayLike

from edge_slr.errors import InputError

# MediaPipe hand joints: wrist, then thumb CMC/MCP/IP/tip, then MCP/PIP/DIP/tip of each finger.
HAND_BONES = (
    (0, 1), (1, 2), (2, 3), (3, 4),
    (0, 5), (5, 6), (6, 7), (7, 8),
    (0, 9), (9, 10), (10, 11), (11, 12),
    (0, 13), (13, 14), (14, 15), (15, 16),
    (0, 17), (17, 18), (18, 19), (19, 20),
    (5, 9), (9, 13), (13, 17),
)  # fmt: skip
FINGER_BONES = tuple(bone for bone in HAND_BONES[:20])  # the 20 bones that FK keeps rigid

# Reference right hand, palm length (wrist to middle MCP) 0.092 m; scaled per signer.
REFERENCE_PALM = 0.092
_MCP = np.array(
    [[0.024, 0.088, 0.0], [0.002, 0.092, 0.0], [-0.017, 0.086, 0.0], [-0.033, 0.077, 0.0]]
)
_PHALANGES = np.array(
    [[0.040, 0.024, 0.019], [0.045, 0.028, 0.020], [0.042, 0.026, 0.019], [0.032, 0.019, 0.017]]
)
_THUMB_CMC = np.array([0.024, 0.026, -0.010])
_THUMB_BONES = np.array([0.040, 0.032, 0.027])
_OPPOSITION = np.array([-0.25, 0.35, -0.90]) / np.linalg.norm([-0.25, 0.35, -0.90])
_THUMB_BEND = np.array([-0.75, 0.0, -0.65]) / np.linalg.norm([-0.75, 0.0, -0.65])

# MediaPipe pose indices used by the body model ("left" is the signer's left).
NOSE, LEFT_SHOULDER, RIGHT_SHOULDER = 0, 11, 12
LEFT_ELBOW, RIGHT_ELBOW, LEFT_WRIST, RIGHT_WRIST = 13, 14, 15, 16
LEFT_HIP, RIGHT_HIP = 23, 24


@dataclass(frozen=True)
class BodyProportions:
    """Body measurements of one signer, in metres (MediaPipe's joint centres, not skin).

    Defaults are the median of real MediaPipe recordings relative to the shoulder width
    (upper arm 0.94, forearm 0.82, palm 0.28, hip width 0.63, torso 1.4 shoulder widths).
    """

    shoulder_width: float = 0.33
    upper_arm: float = 0.31
    forearm: float = 0.27
    palm: float = REFERENCE_PALM
    torso: float = 0.46
    hip_width: float = 0.21
    head_scale: float = 1.0  # face size relative to the MediaPipe average for this shoulder width
    neck: float = 0.0  # extra height of the head above the shoulders (m), may be negative

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            low, high = (-0.08, 0.08) if f.name == "neck" else (0.02, 1.5)
            if not low <= value <= high:
                raise InputError(
                    f"BodyProportions.{f.name} must be in [{low}, {high}], got {value}"
                )


def cross(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Cross product over the last axis (np.cross is slow on small arrays)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return np.stack(
        [
            a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
            a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
            a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0],
        ],
        axis=-1,
    )


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def hand_points(angles: np.ndarray, palm: float = REFERENCE_PALM) -> np.ndarray:
    """Forward kinematics: joint angles (..., 20) radians -> 21 joints (..., 21, 3), local frame.

    Angle layout as in :mod:`edge_slr.data.synth.handshapes`. Bone lengths never change with the
    angles; ``palm`` scales the whole hand.
    """
    angles = np.asarray(angles, dtype=np.float64)
    if angles.shape[-1] != 20:
        raise InputError(f"hand angles need 20 values in the last axis, got shape {angles.shape}")
    lead = angles.shape[:-1]
    out = np.zeros((*lead, 21, 3))
    # Fingers: abduction turns the finger in the palm plane, flexion bends it palmwards (-z).
    finger = angles[..., 4:].reshape(*lead, 4, 4)
    flex = np.cumsum(finger[..., :3], axis=-1)  # (..., 4 fingers, 3 segments)
    abd = finger[..., 3:4]
    cos_f = np.cos(flex)
    seg = np.stack([cos_f * np.sin(abd), cos_f * np.cos(abd), -np.sin(flex)], axis=-1)
    chain = _MCP[:, None, :] + np.cumsum(_PHALANGES[..., None] * seg, axis=-2)
    out[..., 5::4, :] = _MCP
    for k in range(3):
        out[..., 6 + k :: 4, :] = chain[..., k, :]
    # Thumb: in-plane angle from the index side, opposition lifts it across the palm.
    plane = np.deg2rad(20.0) + angles[..., 0]
    base = np.stack([np.sin(plane), np.cos(plane), np.zeros_like(plane)], axis=-1)
    opp = angles[..., 1:2]
    meta = _unit(np.cos(opp) * base + np.sin(opp) * _OPPOSITION)
    bend = _unit(_THUMB_BEND - np.sum(_THUMB_BEND * meta, axis=-1, keepdims=True) * meta)
    mcp = angles[..., 2:3]
    ip = mcp + angles[..., 3:4]
    d2 = np.cos(mcp) * meta + np.sin(mcp) * bend
    d3 = np.cos(ip) * meta + np.sin(ip) * bend
    out[..., 1, :] = _THUMB_CMC
    out[..., 2, :] = _THUMB_CMC + _THUMB_BONES[0] * meta
    out[..., 3, :] = out[..., 2, :] + _THUMB_BONES[1] * d2
    out[..., 4, :] = out[..., 3, :] + _THUMB_BONES[2] * d3
    return out * (palm / REFERENCE_PALM)


def hand_rotation(distal: np.ndarray, palm_normal: np.ndarray) -> np.ndarray:
    """Rotations (..., 3, 3) taking the local hand frame to the body frame.

    ``distal`` is where the fingers point, ``palm_normal`` where the palm faces; the palm
    direction is made orthogonal to the finger direction (Gram-Schmidt).
    """
    y = _unit(np.asarray(distal, dtype=np.float64))
    p = np.asarray(palm_normal, dtype=np.float64)
    p = p - np.sum(p * y, axis=-1, keepdims=True) * y
    # A palm direction parallel to the fingers has no orthogonal part: fall back to "down".
    degenerate = np.linalg.norm(p, axis=-1, keepdims=True) < 1e-6
    p = np.where(degenerate, cross(y, [1.0, 0.0, 0.0]), p)
    z = -_unit(p)
    x = cross(y, z)
    return np.stack([x, y, z], axis=-1)


def rotate_about(vectors: np.ndarray, axis: ArrayLike, angle: ArrayLike) -> np.ndarray:
    """Rodrigues rotation of ``vectors`` (..., 3) about unit ``axis`` (..., 3) by ``angle`` (...)."""
    axis = _unit(np.asarray(axis, dtype=np.float64))
    angle = np.asarray(angle, dtype=np.float64)[..., None]
    cos, sin = np.cos(angle), np.sin(angle)
    dot = np.sum(axis * vectors, axis=-1, keepdims=True)
    return vectors * cos + cross(axis, vectors) * sin + axis * dot * (1.0 - cos)


def euler_matrices(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Rotations (..., 3, 3): roll about z, then pitch about x, then yaw about y (radians)."""
    yaw, pitch, roll = (np.asarray(a, dtype=np.float64) for a in (yaw, pitch, roll))
    cy, sy, cp, sp, cr, sr = (f(a) for a in (yaw, pitch, roll) for f in (np.cos, np.sin))
    one, zero = np.ones_like(cy), np.zeros_like(cy)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(*cy.shape, 3, 3)
    rx = np.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).reshape(*cy.shape, 3, 3)
    rz = np.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).reshape(*cy.shape, 3, 3)
    return ry @ rx @ rz


def two_bone_ik(
    shoulder: np.ndarray, target: np.ndarray, upper: float, fore: float, pole: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Elbow positions for wrists at ``target`` (T, 3); returns (elbow, reachable wrist).

    A target out of reach is pulled along the shoulder-target line to the arm's reach (the
    caller moves the hand with it); ``pole`` says where the elbow points (down, out, back).
    """
    d = target - shoulder
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    u = d / np.maximum(dist, 1e-9)
    reach = np.clip(dist, abs(upper - fore) + 0.02, 0.995 * (upper + fore))
    wrist = shoulder + u * reach
    along = (upper**2 - fore**2 + reach**2) / (2.0 * reach)
    height = np.sqrt(np.maximum(upper**2 - along**2, 0.0))
    bend = pole - np.sum(pole * u, axis=-1, keepdims=True) * u
    bend = _unit(bend)
    return shoulder + along * u + height * bend, wrist


def bone_lengths(
    points: np.ndarray, bones: tuple[tuple[int, int], ...] = FINGER_BONES
) -> np.ndarray:
    """Lengths (..., num_bones) of ``bones`` in hand points (..., 21, D)."""
    a, b = np.asarray(bones).T
    return np.linalg.norm(points[..., b, :] - points[..., a, :], axis=-1)
