"""Camera and tracker: body-frame metres -> MediaPipe-like normalised landmarks.

``project`` films the signer with a pinhole camera (per-signer framing and rotation plus a slow
sway) and returns MediaPipe's coordinate conventions: x, y as fractions of a square image,
z as depth in the scale of x (negative = nearer), relative to the hip centre for pose points,
to the wrist for each hand and to the face centre for the face mesh.

``track`` then plays MediaPipe Holistic: temporally correlated jitter (whole-part and per-point),
hands that go undetected for stretches (more often when they move fast, are near the face or
leave the image), and pose visibilities. Rates are calibrated against the real recordings in
../shared/data/landmarks (benchmarks/synth_vs_real.py reports the comparison).
"""

from __future__ import annotations

import numpy as np

from edge_slr.data.synth.config import SynthDifficulty
from edge_slr.data.synth.motion import smooth
from edge_slr.data.synth.signer import SignerProfile
from edge_slr.data.synth.skeleton import euler_matrices
from edge_slr.landmarks.layout import NUM_POINTS, PART_SLICES

POSE, FACE = PART_SLICES["pose"], PART_SLICES["face"]
HANDS = (PART_SLICES["left_hand"], PART_SLICES["right_hand"])
POSE_DEPTH_GAIN = 3.0  # MediaPipe's pose z is about 3x a metric depth in x units
# Pose visibility by point: head and shoulders always seen, hips half hidden, legs off-screen.
_VISIBILITY = np.array(
    [0.999] * 11 + [0.998, 0.998] + [0.96, 0.96, 0.93, 0.93] + [0.9] * 6 + [0.8, 0.8]
    + [0.03, 0.03, 0.01, 0.01] + [0.003] * 4
)  # fmt: skip
# Tracking noise, standard deviation in shoulder widths at jitter 1.0 (calibrated: see module doc).
_NOISE = {
    "face_shift": 0.0005,
    "face_point": 0.0004,
    "head_pose_point": 0.0008,  # pose points 0-10 (nose, eyes, ears, mouth) are stable
    "pose_point": 0.0040,  # shoulders, arms, hips
    "hand_shift": 0.0035,
    "hand_point": 0.0035,
}
_OUTLIER_RATE = 0.05  # frames in which a hand's shape estimate is badly off
_OUTLIER_GAIN = 4.0
_QUANTUM = np.float32(2**15)
_DEPTH_NOISE = 2.0  # z is noisier than x and y
_DROPOUT_START = 0.028  # per-frame chance that a visible hand is lost, slow hand far from the face
_DROPOUT_LENGTH = 5.0  # mean frames a lost hand stays lost


def project(points: np.ndarray, signer: SignerProfile, rng: np.random.Generator) -> np.ndarray:
    """(T, 543, 3) body-frame metres -> (T, 543, 3) normalised image x, y and MediaPipe z."""
    cam = signer.camera
    frames = len(points)
    sway = smooth(np.cumsum(rng.normal(0.0, 0.002, (frames, 3)), axis=0), 8.0)
    sway -= sway.mean(axis=0)
    rotation = euler_matrices(cam.yaw + sway[:, 0], cam.pitch + sway[:, 1], cam.roll + sway[:, 2])
    rotated = points.astype(np.float32) @ rotation.transpose(0, 2, 1).astype(np.float32)
    depth = np.float32(cam.distance) - rotated[..., 2]  # distance from the camera along its axis
    focal = cam.scale * cam.distance / signer.proportions.shoulder_width  # image widths per metre
    ratio = np.float32(focal) / depth  # image widths per metre at each point's depth
    out = np.empty_like(rotated)
    out[..., 0] = np.float32(cam.centre[0]) + rotated[..., 0] * ratio
    out[..., 1] = np.float32(cam.centre[1]) + rotated[..., 1] * ratio
    # z: depth behind the part's reference point, at the reference point's image scale.
    hips = 0.5 * (depth[:, 23] + depth[:, 24])
    pose_scale = np.float32(POSE_DEPTH_GAIN * focal) / hips
    out[:, POSE, 2] = (depth[:, POSE] - hips[:, None]) * pose_scale[:, None]
    face_depth = depth[:, FACE].mean(axis=1, keepdims=True)
    out[:, FACE, 2] = (depth[:, FACE] - face_depth) * (np.float32(focal) / face_depth)
    for hand in HANDS:
        wrist = depth[:, hand.start : hand.start + 1]
        out[:, hand, 2] = (depth[:, hand] - wrist) * (np.float32(focal) / wrist)
    return out


def _correlated_noise(
    rng: np.random.Generator, shape: tuple[int, ...], rho: float = 0.35
) -> np.ndarray:
    """Unit-variance AR(1) noise along axis 0 (MediaPipe's outputs are slightly smoothed)."""
    white = rng.standard_normal(shape, dtype=np.float32)
    out = np.empty(shape, dtype=np.float32)
    out[0] = white[0]
    keep, scale = np.float32(rho), np.float32(np.sqrt(1.0 - rho * rho))
    for t in range(1, shape[0]):
        out[t] = keep * out[t - 1] + scale * white[t]
    return out


def _jitter(clean: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    frames = len(clean)
    noisy = clean.copy()
    depth = np.array([1.0, 1.0, _DEPTH_NOISE])
    depth = depth.astype(np.float32)
    # Per-point noise is white; the whole-part shifts are correlated over time (below).
    noise = rng.standard_normal((frames, NUM_POINTS, 3), dtype=np.float32)
    noise *= depth
    shift = _correlated_noise(rng, (frames, 3, 3)) * depth  # face, left hand, right hand
    noisy[:, FACE] += amount * (
        _NOISE["face_point"] * noise[:, FACE] + _NOISE["face_shift"] * shift[:, None, 0]
    )
    noisy[:, :11] += amount * _NOISE["head_pose_point"] * noise[:, :11]
    noisy[:, 11:33] += amount * _NOISE["pose_point"] * noise[:, 11:33]
    for k, hand in enumerate(HANDS, start=1):
        outlier = 1.0 + (_OUTLIER_GAIN - 1.0) * (rng.random(frames) < _OUTLIER_RATE)
        noisy[:, hand] += amount * (
            _NOISE["hand_point"] * outlier[:, None, None] * noise[:, hand]
            + _NOISE["hand_shift"] * shift[:, None, k]
        )
    return noisy


def _hand_detected(
    clean: np.ndarray,
    hand: slice,
    scale: float,
    rate: float,
    fps: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """(T,) bool: a two-state (tracked / lost) chain whose loss rate grows with speed."""
    points = clean[:, hand, :2]
    inside = ((points >= 0.0) & (points <= 1.0)).all(axis=-1).mean(axis=1) >= 0.7
    wrist = points[:, 0]
    speed = np.linalg.norm(np.diff(wrist, axis=0, prepend=wrist[:1]), axis=-1) * fps / scale
    nose = clean[:, 0, :2]
    near_face = np.linalg.norm(wrist - nose, axis=-1) / scale < 0.45
    # A hand resting low (in the lap, partly cut off by the frame) is easily missed.
    low = (wrist[:, 1] - 0.5 * (clean[:, 11, 1] + clean[:, 12, 1])) / scale > 0.9
    p_lose = (
        rate
        * _DROPOUT_START
        * (1.0 + 0.8 * np.maximum(speed - 1.0, 0.0) + 2.0 * near_face + 3.0 * low)
    )
    p_lose = np.clip(p_lose, 0.0, 0.5)
    p_find = 1.0 / _DROPOUT_LENGTH
    draws = rng.random(len(points))
    tracked = np.empty(len(points), bool)
    state = True
    for t in range(len(points)):
        state = draws[t] >= p_lose[t] if state else draws[t] < p_find
        tracked[t] = state
    return tracked & inside


def track(
    clean: np.ndarray,
    signer: SignerProfile,
    difficulty: SynthDifficulty,
    fps: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Noisy MediaPipe-like landmarks (T, 543, 4) float32 from clean projected points."""
    scale = signer.camera.scale
    amount = difficulty.jitter * signer.jitter * scale  # shoulder widths -> image widths
    noisy = _jitter(clean, amount, rng)
    frames = len(clean)
    out = np.zeros((frames, NUM_POINTS, 4), dtype=np.float32)
    # Coordinates are kept to 2^-15 of the image (0.03 px at 1000 px, far below the tracking
    # noise): the zeroed low mantissa bits make the stored files about a third smaller.
    out[..., :3] = np.round(noisy * _QUANTUM) / _QUANTUM
    out[:, FACE, 3] = 1.0
    inside = ((clean[:, POSE, :2] >= 0.0) & (clean[:, POSE, :2] <= 1.0)).all(axis=-1)
    visibility = _VISIBILITY[None] * np.where(inside, 1.0, 0.35)
    visibility = visibility + rng.normal(0.0, 0.015, visibility.shape) * (visibility > 0.5)
    out[:, POSE, 3] = np.clip(visibility, 0.0005, 1.0)
    rate = difficulty.dropout * signer.dropout
    for hand in HANDS:
        detected = _hand_detected(clean, hand, scale, rate, fps, rng)
        out[:, hand, 3] = detected[:, None].astype(np.float32)
        out[~detected, hand, :3] = 0.0
    return out
