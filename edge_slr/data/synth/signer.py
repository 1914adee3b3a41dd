"""Synthetic signers: body proportions, signing style, handedness, camera framing, appearance.

A signer is fully determined by (dataset seed, split, index) through a stable hash, so the
signers of different splits are different people: ``synth-test-00`` is never seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_slr.data.synth.config import SynthDifficulty
from edge_slr.data.synth.seeding import generator
from edge_slr.data.synth.skeleton import BodyProportions
from edge_slr.errors import InputError

SPLITS = ("train", "dev", "test")
LEFT_HANDED_SHARE = 0.12  # roughly the share of left-handed (left-dominant) signers
_SKIN = ((241, 194, 167), (224, 172, 130), (198, 134, 95), (160, 105, 70), (110, 72, 48))
_CLOTHES = ((30, 30, 38), (40, 46, 70), (60, 30, 35), (25, 55, 45), (70, 70, 75), (20, 20, 20))
_BACKGROUNDS = ((128, 128, 128), (150, 150, 145), (110, 115, 125), (170, 165, 150))


@dataclass(frozen=True)
class CameraSetup:
    """Where the signer sits in the image (normalised coordinates) and how the camera is turned."""

    scale: float  # shoulder width as a fraction of the image width
    centre: tuple[float, float]  # image position of the point between the shoulders
    yaw: float  # radians, body turned relative to the camera
    pitch: float
    roll: float
    distance: float  # metres from the camera (perspective strength)


@dataclass(frozen=True)
class Appearance:
    """Colours used by the renderer (RGB)."""

    skin: tuple[int, int, int]
    clothes: tuple[int, int, int]
    background: tuple[int, int, int]
    hair: tuple[int, int, int]


@dataclass(frozen=True)
class SignerProfile:
    """One synthetic signer."""

    id: str
    split: str
    left_handed: bool
    proportions: BodyProportions
    speed: float  # > 1 signs faster (shorter glosses)
    amplitude: float  # size of movements and signing space
    space_offset: tuple[float, float, float]  # where this signer's neutral space sits (m)
    laxness: float  # 0 crisp handshapes .. 0.3 lax
    transition_share: float  # share of a gloss segment spent moving in from the previous sign
    smoothness: float  # multiplier on coarticulation smoothing
    mouth_scale: float  # how strongly this signer mouths
    idle_location: str  # where the passive hand waits: "rest" (low) or "idle" (waist)
    jitter: float  # multiplier on tracking noise (lighting, clothing, camera quality)
    dropout: float  # multiplier on hand dropout rates
    camera: CameraSetup
    appearance: Appearance


def signer_id(split: str, index: int) -> str:
    return f"synth-{split}-{index:02d}"


def make_signer(
    seed: int,
    split: str,
    index: int,
    difficulty: SynthDifficulty,
    *,
    left_handed: bool | None = None,
) -> SignerProfile:
    """The ``index``-th signer of ``split`` for dataset seed ``seed`` (deterministic)."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; expected one of {SPLITS}")
    if not isinstance(index, int) or index < 0:
        raise InputError(f"signer index must be a non-negative integer, got {index!r}")
    rng = generator(seed, "signer", split, index)
    sv = difficulty.signer_variation

    def spread(sigma: float) -> float:
        """A multiplicative factor around 1 with log standard deviation sigma * variation."""
        return float(np.exp(np.clip(rng.normal(0.0, sigma * sv), -3 * sigma, 3 * sigma)))

    shoulder = 0.33 * spread(0.07)
    proportions = BodyProportions(
        shoulder_width=shoulder,
        upper_arm=0.31 * (shoulder / 0.33) * spread(0.05),
        forearm=0.27 * (shoulder / 0.33) * spread(0.05),
        palm=0.092 * (shoulder / 0.33) * spread(0.06),
        torso=0.46 * (shoulder / 0.33) * spread(0.05),
        hip_width=0.21 * (shoulder / 0.33) * spread(0.08),
        head_scale=spread(0.06),
        neck=float(np.clip(rng.normal(0.0, 0.012 * sv), -0.04, 0.04)),
    )
    if left_handed is None:
        left_handed = bool(rng.random() < LEFT_HANDED_SHARE)
    rotation = np.deg2rad(difficulty.camera_rotation)
    camera = CameraSetup(
        scale=float(
            np.clip(0.36 * np.exp(rng.normal(0.0, difficulty.camera_distance_spread)), 0.2, 0.6)
        ),
        centre=(float(0.5 + rng.normal(0.0, 0.03 * sv)), float(0.46 + rng.normal(0.0, 0.03 * sv))),
        yaw=float(rng.uniform(-1.0, 1.0) * rotation),
        pitch=float(rng.uniform(-0.5, 0.5) * rotation),
        roll=float(rng.uniform(-0.3, 0.3) * rotation),
        distance=float(rng.uniform(1.8, 3.5)),
    )
    appearance = Appearance(
        skin=_SKIN[int(rng.integers(len(_SKIN)))],
        clothes=_CLOTHES[int(rng.integers(len(_CLOTHES)))],
        background=_BACKGROUNDS[int(rng.integers(len(_BACKGROUNDS)))],
        hair=tuple(int(v) for v in rng.integers(10, 120, 3)),  # type: ignore[arg-type]
    )
    return SignerProfile(
        id=signer_id(split, index),
        split=split,
        left_handed=left_handed,
        proportions=proportions,
        speed=float(np.exp(rng.normal(0.0, difficulty.speed_spread))),
        amplitude=spread(0.12),
        space_offset=tuple(float(v) for v in rng.normal(0.0, 0.025 * sv, 3)),  # type: ignore[arg-type]
        laxness=float(np.clip(abs(rng.normal(0.0, 0.1 * sv)), 0.0, 0.3)),
        transition_share=float(np.clip(rng.normal(0.33, 0.05 * sv), 0.2, 0.5)),
        smoothness=spread(0.2),
        mouth_scale=float(np.clip(rng.normal(1.0, 0.2 * sv), 0.4, 1.5)),
        idle_location="rest" if rng.random() < 0.6 else "idle",
        jitter=spread(0.3),
        dropout=spread(0.4),
        camera=camera,
        appearance=appearance,
    )


def make_signers(
    seed: int, split: str, count: int, difficulty: SynthDifficulty
) -> list[SignerProfile]:
    """The first ``count`` signers of ``split``."""
    if not isinstance(count, int) or count < 1:
        raise InputError(f"the number of signers must be a positive integer, got {count!r}")
    return [make_signer(seed, split, i, difficulty) for i in range(count)]
