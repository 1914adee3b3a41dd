"""How hard SignSynth data is: a frozen, validated set of knobs and three named presets.

``default`` is meant to leave headroom: signer-independent splits, natural variation of every
sign instance, MediaPipe-like tracking noise and hand dropouts at the rates measured on real
recordings (see benchmarks/synth_vs_real.py). ``easy`` turns the nuisance factors down (for
smoke tests and debugging a pipeline), ``hard`` turns them up.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from edge_slr.errors import InputError


@dataclass(frozen=True)
class SynthDifficulty:
    """Knobs of the generator; 1.0 is the calibrated default for the multipliers.

    - ``instance_variation``: how much each performance of a sign departs from its citation
      form (location, size, timing warp, hand tilt, finger angles).
    - ``signer_variation``: how different signers are (body proportions, signing-space size and
      offset, lax handshapes, camera framing).
    - ``speed_spread``: standard deviation of a signer's log speed factor.
    - ``tempo_variation``: multiplier on the within-gloss duration spread of the real alignments.
    - ``coarticulation``: Gaussian smoothing of the motion, in frames at 25 fps (blends the end of
      a sign into the next).
    - ``jitter``: multiplier on MediaPipe-like per-frame landmark noise.
    - ``dropout``: multiplier on how often hands go undetected (in and out of frame).
    - ``camera_rotation``: the largest camera yaw in degrees (pitch and roll are smaller).
    - ``camera_distance_spread``: log standard deviation of the signer's size in the image.
    - ``mouthing``: probability that a sign's mouthing is actually articulated.
    - ``rest_frames``: (min, max) rest frames before the first and after the last sign.
    """

    name: str = "default"
    instance_variation: float = 1.0
    signer_variation: float = 1.0
    speed_spread: float = 0.12
    tempo_variation: float = 1.0
    coarticulation: float = 1.5
    jitter: float = 1.0
    dropout: float = 1.0
    camera_rotation: float = 10.0
    camera_distance_spread: float = 0.12
    mouthing: float = 0.85
    rest_frames: tuple[int, int] = (3, 10)

    def __post_init__(self) -> None:
        limits = {
            "instance_variation": (0.0, 3.0),
            "signer_variation": (0.0, 3.0),
            "speed_spread": (0.0, 0.5),
            "tempo_variation": (0.0, 2.0),
            "coarticulation": (0.0, 6.0),
            "jitter": (0.0, 5.0),
            "dropout": (0.0, 5.0),
            "camera_rotation": (0.0, 45.0),
            "camera_distance_spread": (0.0, 0.5),
            "mouthing": (0.0, 1.0),
        }
        for name, (low, high) in limits.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"SynthDifficulty.{name} must be a number, got {value!r}")
            if not low <= value <= high:
                raise InputError(f"SynthDifficulty.{name} must be in [{low}, {high}], got {value}")
        low, high = self.rest_frames
        if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high <= 100):
            raise InputError(
                f"SynthDifficulty.rest_frames must be integers 0 <= min <= max <= 100, "
                f"got {self.rest_frames}"
            )

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["rest_frames"] = list(self.rest_frames)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SynthDifficulty:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown SynthDifficulty fields {unknown}; known: {sorted(known)}")
        values = dict(data)
        if "rest_frames" in values:
            values["rest_frames"] = tuple(values["rest_frames"])
        return cls(**values)


PRESETS: dict[str, SynthDifficulty] = {
    "easy": SynthDifficulty(
        name="easy",
        instance_variation=0.3,
        signer_variation=0.3,
        speed_spread=0.04,
        tempo_variation=0.4,
        coarticulation=1.0,
        jitter=0.3,
        dropout=0.2,
        camera_rotation=3.0,
        camera_distance_spread=0.04,
        mouthing=1.0,
    ),
    "default": SynthDifficulty(),
    "hard": SynthDifficulty(
        name="hard",
        instance_variation=1.6,
        signer_variation=1.6,
        speed_spread=0.2,
        tempo_variation=1.3,
        coarticulation=2.2,
        jitter=1.6,
        dropout=1.6,
        camera_rotation=20.0,
        camera_distance_spread=0.2,
        mouthing=0.6,
    ),
}


def get_difficulty(name: str) -> SynthDifficulty:
    """The named preset: ``easy``, ``default`` or ``hard``."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(
            f"unknown difficulty {name!r}; expected one of {sorted(PRESETS)}"
        ) from None
