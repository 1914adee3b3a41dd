"""Handshapes as finger joint angles, the way sign phonology describes them.

A handshape is 20 angles (degrees here, radians in arrays): the thumb's carpometacarpal
abduction and opposition, its MCP and IP flexion, then for index, middle, ring and pinky the
MCP, PIP and DIP flexion and the MCP abduction (spread, positive towards the thumb).
:func:`edge_slr.data.synth.skeleton.hand_points` turns them into the 21 MediaPipe hand joints.

The inventory follows the common handshapes of European sign languages (B, 5, A, S, 1, V, ...),
ordered roughly by how often they occur, and signs draw from it with Zipf-like weights so that
many signs share a handshape, as in real lexicons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_slr.errors import InputError

NUM_ANGLES = 20
THUMB = slice(0, 4)  # cmc abduction, cmc opposition, mcp flexion, ip flexion
FINGERS = ("index", "middle", "ring", "pinky")


@dataclass(frozen=True)
class Handshape:
    """One named handshape: thumb (abd, opp, mcp, ip) and per finger (mcp, pip, dip, abd), degrees."""

    name: str
    thumb: tuple[float, float, float, float]
    index: tuple[float, float, float, float]
    middle: tuple[float, float, float, float]
    ring: tuple[float, float, float, float]
    pinky: tuple[float, float, float, float]

    def __post_init__(self) -> None:
        for part in ("thumb", *FINGERS):
            values = getattr(self, part)
            if len(values) != 4 or not all(-40.0 <= v <= 120.0 for v in values):
                raise InputError(
                    f"handshape {self.name!r}: {part} needs 4 angles in [-40, 120] degrees, "
                    f"got {values}"
                )

    def angles(self) -> np.ndarray:
        """The 20 joint angles in radians (float64)."""
        parts = [self.thumb, self.index, self.middle, self.ring, self.pinky]
        return np.deg2rad(np.asarray(parts, dtype=np.float64).reshape(NUM_ANGLES))


# Finger poses reused below: straight, fully bent into a fist, curved (C/O-like), hooked.
_STRAIGHT = (0.0, 0.0, 0.0)
_FIST = (88.0, 100.0, 55.0)
_CURVED = (35.0, 45.0, 25.0)
_ROUND = (45.0, 65.0, 35.0)
_HOOK = (15.0, 95.0, 65.0)
_BENT = (80.0, 5.0, 0.0)
# Thumb poses: along the palm, across the fingers, spread out, opposed to the fingertips.
_T_ALONG = (12.0, 8.0, 8.0, 5.0)
_T_ACROSS = (35.0, 65.0, 35.0, 25.0)
_T_OUT = (55.0, 0.0, 0.0, 0.0)
_T_OPPOSED = (45.0, 65.0, 20.0, 20.0)
_T_HALF = (40.0, 35.0, 10.0, 10.0)


def _shape(name: str, thumb: tuple, fingers: tuple, spread: tuple = (3, 0, -3, -6)) -> Handshape:
    """Build a handshape from a thumb pose, four (mcp, pip, dip) poses and the finger spread."""
    parts = [(*f, float(s)) for f, s in zip(fingers, spread, strict=True)]
    return Handshape(name, tuple(map(float, thumb)), *parts)  # type: ignore[arg-type]


SPREAD = (14, 0, -12, -24)
INVENTORY: tuple[Handshape, ...] = (
    _shape("B", _T_ALONG, (_STRAIGHT,) * 4),
    _shape("5", _T_OUT, (_STRAIGHT,) * 4, SPREAD),
    _shape("1", _T_ACROSS, (_STRAIGHT, _FIST, _FIST, _FIST)),
    _shape("A", _T_ALONG, (_FIST,) * 4),
    _shape("S", _T_ACROSS, (_FIST,) * 4),
    _shape("flat-O", _T_OPPOSED, ((50.0, 15.0, 5.0),) * 4),
    _shape("C", _T_HALF, (_CURVED,) * 4),
    _shape("O", _T_OPPOSED, (_ROUND,) * 4),
    _shape("V", _T_ACROSS, (_STRAIGHT, _STRAIGHT, _FIST, _FIST), (12, -8, -3, -6)),
    _shape("bent-B", _T_ALONG, (_BENT,) * 4),
    _shape("claw-5", _T_HALF, ((20.0, 60.0, 40.0),) * 4, SPREAD),
    _shape("L", _T_OUT, (_STRAIGHT, _FIST, _FIST, _FIST)),
    _shape("Y", _T_OUT, (_FIST, _FIST, _FIST, _STRAIGHT), (0, 0, -3, -28)),
    _shape("open-A", (40.0, 0.0, 0.0, 0.0), (_FIST,) * 4),
    _shape("X", _T_ACROSS, (_HOOK, _FIST, _FIST, _FIST)),
    _shape("F", _T_OPPOSED, ((40.0, 55.0, 30.0), _STRAIGHT, _STRAIGHT, _STRAIGHT), SPREAD),
    _shape("I", _T_ACROSS, (_FIST, _FIST, _FIST, _STRAIGHT), (0, 0, -3, -10)),
    _shape("W", _T_ACROSS, (_STRAIGHT, _STRAIGHT, _STRAIGHT, _FIST), (12, 0, -12, -6)),
    _shape("3", _T_OUT, (_STRAIGHT, _STRAIGHT, _FIST, _FIST), (12, -8, -3, -6)),
    _shape("4", _T_ACROSS, (_STRAIGHT,) * 4, SPREAD),
    _shape("H", _T_ACROSS, (_STRAIGHT, _STRAIGHT, _FIST, _FIST), (2, -2, -3, -6)),
    _shape("bent-V", _T_ACROSS, ((10.0, 85.0, 45.0), (10.0, 85.0, 45.0), _FIST, _FIST)),
    _shape("8", _T_OPPOSED, (_STRAIGHT, (55.0, 30.0, 10.0), _STRAIGHT, _STRAIGHT), SPREAD),
    _shape("bent-5", _T_OUT, (_BENT,) * 4, SPREAD),
)
_BY_NAME = {shape.name: shape for shape in INVENTORY}
# Zipf-like prior over the inventory: the first handshapes (B, 5, 1, A) are the most frequent.
FREQUENCY = 1.0 / (np.arange(len(INVENTORY)) + 2.0) ** 0.9
FREQUENCY = FREQUENCY / FREQUENCY.sum()
# Handshapes a passive non-dominant hand takes in two-handed asymmetric signs (base hands).
BASE_HANDSHAPES = ("B", "5", "1", "A", "S", "C")
# Closing/opening pairs for signs whose handshape changes during the movement.
CHANGES = (("5", "S"), ("5", "flat-O"), ("flat-O", "5"), ("S", "5"), ("C", "S"), ("L", "A"))


def handshape(name: str) -> Handshape:
    """The inventory handshape called ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(_BY_NAME)
        raise InputError(f"unknown handshape {name!r}; known: {known}") from None


def names() -> tuple[str, ...]:
    """All handshape names, most frequent first."""
    return tuple(_BY_NAME)


def angle_table() -> np.ndarray:
    """(num_handshapes, 20) radians, rows in :func:`names` order (cached arrays are copied)."""
    return np.stack([shape.angles() for shape in INVENTORY])


# A relaxed, slightly curved hand for rest positions (not a sign handshape, so not in INVENTORY).
RELAXED = _shape("relaxed", (30.0, 15.0, 10.0, 10.0), ((22.0, 30.0, 12.0),) * 4, (4, 0, -4, -8))
