"""A deterministic sign for every gloss, built from shared phonological components.

Each gloss gets a sign drawn with a random generator seeded by a stable hash (SHA-256) of the
lexicon seed and the gloss string, so the same gloss always looks the same, on any machine and
in any process. A sign is a handshape (maybe changing), a location relative to the body, a palm
orientation, a movement and a two-handed form, plus mouthing and eyebrows; as in real lexicons
these come from small inventories with skewed frequencies, and half of the signs belong to a
family: a root sign with one component changed (a minimal pair) or, for some, the root's manual
form told apart only by mouthing. Neighbours in the lexicon are genuinely confusable.

Annotation variants of PHOENIX (``loc-X``, ``X-PLUSPLUS``, ``HABEN2``, ...) are derived from the
sign of their base gloss, as they are in the language: close, but not always identical.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import numpy as np

from edge_slr.data.synth import handshapes
from edge_slr.data.synth.seeding import generator
from edge_slr.errors import InputError

HAND_FORMS = ("one", "mirrored", "alternating", "parallel", "base")
HAND_FORM_WEIGHTS = (0.55, 0.14, 0.07, 0.06, 0.18)
MOVEMENTS = ("hold", "straight", "arc", "circle", "repeat", "zigzag", "twist", "wiggle", "approach")
MOVEMENT_WEIGHTS = (0.08, 0.22, 0.12, 0.12, 0.18, 0.05, 0.08, 0.06, 0.09)
HEAD_LOCATIONS = ("chin", "forehead", "mouth", "temple", "cheek", "nose", "eye", "ear", "neck")
TORSO_LOCATIONS = ("chest", "chest_contra", "shoulder_contra", "stomach", "shoulder_ipsi")
NEUTRAL_LOCATIONS = (
    "neutral",
    "neutral_high",
    "neutral_low",
    "neutral_ipsi",
    "neutral_contra",
    "neutral_far",
)
LOCATION_CLASS_WEIGHTS = {"head": 0.33, "torso": 0.17, "neutral": 0.50}
# Orientations of a right hand: (finger direction, palm direction), body frame.
ORIENTATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "up_out": ((0, -1, 0), (0, 0, 1)),
    "up_contra": ((0, -1, 0), (1, 0, 0)),
    "up_in": ((0, -1, 0), (0, 0, -1)),
    "fwd_down": ((0, 0, 1), (0, 1, 0)),
    "fwd_up": ((0, 0, 1), (0, -1, 0)),
    "fwd_contra": ((0, 0, 1), (1, 0, 0)),
    "contra_down": ((1, 0, 0), (0, 1, 0)),
    "contra_in": ((1, 0, 0), (0, 0, -1)),
    "contra_up": ((1, 0, 0), (0, -1, 0)),
    "diag_in": ((0.6, -0.8, 0), (0, 0, -1)),
    "diag_out": ((0.6, -0.8, 0), (0, 0, 1)),
}
_ORIENTATIONS_FOR = {
    "head": ("up_in", "contra_in", "diag_in", "up_contra", "fwd_contra"),
    "torso": ("contra_in", "up_in", "diag_in", "fwd_down", "up_contra"),
    "neutral": tuple(ORIENTATIONS),
    "base": ("contra_down", "fwd_down", "up_contra", "contra_in", "fwd_contra"),
}
# Movement directions for a right hand (contra = towards the signer's left = +x).
DIRECTIONS = {
    "up": (0, -1, 0),
    "down": (0, 1, 0),
    "contra": (1, 0, 0),
    "ipsi": (-1, 0, 0),
    "forward": (0, 0, 1),
    "back": (0, 0, -1),
    "up_contra": (0.7, -0.7, 0),
    "down_contra": (0.7, 0.7, 0),
    "forward_down": (0, 0.6, 0.8),
    "forward_contra": (0.6, 0, 0.8),
}
PLANES = {"frontal": (0, 0, 1), "horizontal": (0, 1, 0), "sagittal": (1, 0, 0)}
NUM_FAMILIES = 64  # family roots that minimal pairs are derived from
FAMILY_SHARE = 0.5  # share of signs derived from a family root
# Share of family members with the root's manual form: told apart only by their mouthing, as
# many DGS signs are.
HOMONYM_SHARE = 0.2
_VARIANT_PREFIXES = ("loc-", "cl-", "poss-", "lh-", "qu-")
_SPECIAL = {"__ON__": "on", "__OFF__": "off"}


@dataclass(frozen=True)
class Movement:
    """What the hand does during a sign (sizes in metres, at a shoulder width of 0.33 m)."""

    kind: str
    direction: tuple[float, float, float] = (0.0, 0.0, 0.0)
    size: float = 0.0
    repetitions: int = 1
    plane: tuple[float, float, float] = (0.0, 0.0, 1.0)  # circle plane normal / arc bulge axis

    def __post_init__(self) -> None:
        if self.kind not in MOVEMENTS:
            raise InputError(f"unknown movement {self.kind!r}; expected one of {MOVEMENTS}")
        if not 0.0 <= self.size <= 0.5 or not 1 <= self.repetitions <= 4:
            raise InputError(
                f"movement size must be in [0, 0.5] m and repetitions in [1, 4], "
                f"got {self.size} and {self.repetitions}"
            )


@dataclass(frozen=True)
class HandSpec:
    """One hand of a sign, written for a right hand (a left hand is mirrored)."""

    handshape: str
    end_handshape: str
    location: str
    offset: tuple[float, float, float]  # metres from the location anchor
    orientation: str
    movement: Movement
    contact: bool  # a fingertip, not the palm centre, goes to the location


@dataclass(frozen=True)
class SignSpec:
    """The citation form of one gloss."""

    gloss: str
    form: str  # one of HAND_FORMS, or "on"/"off" for the PHOENIX start/end markers
    dominant: HandSpec
    nondominant: HandSpec | None
    mouthing: tuple[tuple[float, float, float], ...]  # (jaw, spread, round) targets
    brows: float  # -1 furrowed .. +1 raised
    nod: float  # head nod amplitude, radians


def _pick(rng: np.random.Generator, options, weights=None) -> str:
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        weights = weights / weights.sum()
    return options[int(rng.choice(len(options), p=weights))]


def _zipf(n: int, exponent: float = 0.8) -> np.ndarray:
    w = 1.0 / (np.arange(n) + 2.0) ** exponent
    return w / w.sum()


class Lexicon:
    """Deterministic signs for glosses: ``Lexicon(seed).sign("REGEN")``.

    ``seed`` is the lexicon (vocabulary) seed: two lexicons with the same seed give identical
    signs for every gloss; another seed is another sign language.
    """

    def __init__(self, seed: int = 0) -> None:
        if not isinstance(seed, int) or seed < 0:
            raise InputError(f"lexicon seed must be a non-negative integer, got {seed!r}")
        self.seed = seed
        self._cache: dict[str, SignSpec] = {}

    def sign(self, gloss: str) -> SignSpec:
        if not isinstance(gloss, str) or not gloss.strip():
            raise InputError(f"a gloss must be a non-empty string, got {gloss!r}")
        if gloss not in self._cache:
            self._cache[gloss] = self._make(gloss)
        return self._cache[gloss]

    def _make(self, gloss: str) -> SignSpec:
        rng = generator(self.seed, "sign", gloss)
        if gloss in _SPECIAL:
            return _marker_sign(gloss, _SPECIAL[gloss])
        base, variant = split_variant(gloss)
        if variant is not None:
            return _apply_variant(self.sign(base), gloss, variant, rng)
        if rng.random() < FAMILY_SHARE:
            root = _draw_sign(generator(self.seed, "family", int(rng.integers(NUM_FAMILIES))))
            if rng.random() >= HOMONYM_SHARE:
                root = _change_one_component(root, rng)
            mouthing = mouthing_for(gloss, rng, always=True)
            return dataclasses.replace(root, gloss=gloss, mouthing=mouthing)
        sign = _draw_sign(rng)
        return dataclasses.replace(sign, gloss=gloss, mouthing=mouthing_for(gloss, rng))


def split_variant(gloss: str) -> tuple[str, str | None]:
    """``("REGEN", "plusplus")`` for ``REGEN-PLUSPLUS``; ``(gloss, None)`` for a plain gloss."""
    for prefix in _VARIANT_PREFIXES:
        if gloss.startswith(prefix) and len(gloss) > len(prefix):
            return gloss[len(prefix) :], prefix[:-1]
    if gloss.endswith("-PLUSPLUS") and len(gloss) > len("-PLUSPLUS"):
        return gloss[: -len("-PLUSPLUS")], "plusplus"
    match = re.fullmatch(r"(.*[A-Za-z])\d", gloss)
    if match:
        return match.group(1), "number"
    return gloss, None


def _draw_hand(rng: np.random.Generator, location_class: str, location: str) -> HandSpec:
    names = handshapes.names()
    shape = names[int(rng.choice(len(names), p=handshapes.FREQUENCY))]
    end = shape
    if rng.random() < 0.15:
        shape, end = handshapes.CHANGES[int(rng.integers(len(handshapes.CHANGES)))]
    kind = _pick(rng, MOVEMENTS, MOVEMENT_WEIGHTS)
    direction = DIRECTIONS[_pick(rng, tuple(DIRECTIONS))]
    size = float(rng.uniform(0.04, 0.13)) if kind not in ("hold", "wiggle") else 0.02
    if kind in ("circle",):
        size = float(rng.uniform(0.03, 0.07))
    reps = int(rng.integers(2, 4)) if kind in ("repeat", "zigzag", "circle", "twist") else 1
    plane = PLANES[_pick(rng, tuple(PLANES))]
    contact = location_class in ("head", "torso") and rng.random() < 0.7
    if contact and kind in ("straight", "arc") and rng.random() < 0.5:
        kind = "approach"
    offset = tuple(float(v) for v in rng.normal(0.0, 0.015, 3))
    return HandSpec(
        handshape=shape,
        end_handshape=end,
        location=location,
        offset=offset,  # type: ignore[arg-type]
        orientation=_pick(rng, _ORIENTATIONS_FOR[location_class]),
        movement=Movement(kind, direction, size, reps, plane),  # type: ignore[arg-type]
        contact=contact,
    )


def _draw_location(rng: np.random.Generator, form: str) -> tuple[str, str]:
    if form == "base":
        return "neutral", "on_base"
    weights = dict(LOCATION_CLASS_WEIGHTS)
    if form != "one":  # two-handed signs are mostly made in front of the body
        weights = {"head": 0.12, "torso": 0.12, "neutral": 0.76}
    location_class = _pick(rng, tuple(weights), tuple(weights.values()))
    options = {"head": HEAD_LOCATIONS, "torso": TORSO_LOCATIONS, "neutral": NEUTRAL_LOCATIONS}
    chosen = options[location_class]
    return location_class, chosen[int(rng.choice(len(chosen), p=_zipf(len(chosen))))]


def _draw_sign(rng: np.random.Generator) -> SignSpec:
    form = _pick(rng, HAND_FORMS, HAND_FORM_WEIGHTS)
    location_class, location = _draw_location(rng, form)
    dominant = _draw_hand(rng, location_class, location)
    nondominant = None
    if form in ("mirrored", "alternating"):
        nondominant = dominant
    elif form == "parallel":
        d = dominant.movement.direction
        nondominant = dataclasses.replace(
            dominant,
            movement=dataclasses.replace(dominant.movement, direction=(-d[0], d[1], d[2])),
        )
    elif form == "base":
        shape = _pick(rng, handshapes.BASE_HANDSHAPES)
        nondominant = HandSpec(
            handshape=shape,
            end_handshape=shape,
            location="base",
            offset=(0.0, 0.0, 0.0),
            orientation=_pick(rng, _ORIENTATIONS_FOR["base"]),
            movement=Movement("hold", size=0.02),
            contact=False,
        )
        dominant = dataclasses.replace(dominant, orientation=_pick(rng, _ORIENTATIONS_FOR["base"]))
    roll = rng.random()
    brows = float(rng.uniform(0.5, 1.0)) if roll < 0.15 else -0.8 if roll < 0.23 else 0.0
    nod = float(rng.uniform(0.04, 0.10)) if rng.random() < 0.12 else 0.0
    return SignSpec("", form, dominant, nondominant, (), brows, nod)


def _change_one_component(sign: SignSpec, rng: np.random.Generator) -> SignSpec:
    """A minimal pair of ``sign``: the same sign with one component re-drawn."""
    component = _pick(rng, ("handshape", "location", "movement", "orientation", "direction"))
    fresh = _draw_hand(rng, "neutral", sign.dominant.location)
    d = sign.dominant
    if component == "handshape":
        d = dataclasses.replace(d, handshape=fresh.handshape, end_handshape=fresh.end_handshape)
    elif component == "location" and sign.form != "base":
        location_class, location = _draw_location(rng, sign.form)
        d = dataclasses.replace(d, location=location, contact=location_class != "neutral")
    elif component == "movement":
        d = dataclasses.replace(d, movement=fresh.movement)
    elif component == "orientation":
        d = dataclasses.replace(d, orientation=_pick(rng, tuple(ORIENTATIONS)))
    else:
        d = dataclasses.replace(
            d, movement=dataclasses.replace(d.movement, direction=fresh.movement.direction)
        )
    nondominant = sign.nondominant
    if sign.form in ("mirrored", "alternating"):
        nondominant = d
    return dataclasses.replace(sign, dominant=d, nondominant=nondominant)


def _apply_variant(base: SignSpec, gloss: str, variant: str, rng: np.random.Generator) -> SignSpec:
    """Derive an annotation variant from its base sign (e.g. ``X-PLUSPLUS`` repeats X)."""
    d = base.dominant
    if variant == "plusplus":
        d = dataclasses.replace(
            d, movement=dataclasses.replace(d.movement, kind="repeat", repetitions=3)
        )
    elif variant in ("loc", "poss"):
        shift = 0.08 if rng.random() < 0.5 else -0.08
        d = dataclasses.replace(d, offset=(d.offset[0] + shift, d.offset[1], d.offset[2]))
        if variant == "poss":
            d = dataclasses.replace(d, handshape="B", end_handshape="B", orientation="up_out")
    elif variant == "cl":
        shape = _pick(rng, ("B", "5", "C", "1"))
        d = dataclasses.replace(d, handshape=shape, end_handshape=shape)
    elif variant == "qu":
        return dataclasses.replace(base, gloss=gloss, brows=-0.8)
    else:  # lh- and numbered variants: the same sign with one component changed
        return dataclasses.replace(_change_one_component(base, rng), gloss=gloss)
    nondominant = d if base.form in ("mirrored", "alternating") else base.nondominant
    return dataclasses.replace(base, gloss=gloss, dominant=d, nondominant=nondominant)


def _marker_sign(gloss: str, form: str) -> SignSpec:
    """PHOENIX's __ON__/__OFF__: the hands rise from (or sink to) the rest position."""
    hand = HandSpec(
        handshape="B",
        end_handshape="B",
        location="neutral_low",
        offset=(0.0, 0.0, 0.0),
        orientation="contra_in",
        movement=Movement("straight", DIRECTIONS["down" if form == "off" else "up"], 0.12),
        contact=False,
    )
    return SignSpec(gloss, "mirrored", hand, hand, (), 0.0, 0.0)


# Mouth targets (jaw, spread, round) of letters: vowels open the mouth, bilabials close it.
_VISEMES = {
    "A": (0.75, 0.25, 0.0),
    "E": (0.45, 0.6, 0.0),
    "I": (0.25, 0.85, 0.0),
    "O": (0.5, 0.0, 0.8),
    "U": (0.25, 0.0, 1.0),
    "Y": (0.25, 0.0, 0.9),
}
_CLOSED = (0.0, 0.1, 0.0)
_CONSONANT = (0.2, 0.3, 0.0)


def mouthing_for(
    gloss: str, rng: np.random.Generator, *, always: bool = False
) -> tuple[tuple[float, float, float], ...]:
    """The mouth targets of a sign's mouthing, spelled from the gloss (most signs have one).

    Like real mouthing of the spoken word, only the first syllables are articulated: up to
    three vowels with the consonant clusters between them reduced to closed or neutral lips.
    Non-Latin glosses (CSL-Daily) map each character to a vowel target. A quarter of signs have
    no mouthing unless ``always`` (family members need theirs to be told apart).
    """
    if rng.random() > 0.75 and not always:
        return ()
    letters = re.sub(r"[^A-Za-z]", "", gloss).upper()
    if not letters:
        keys = sorted(_VISEMES)
        return tuple(_VISEMES[keys[ord(ch) % len(keys)]] for ch in gloss[:3] if not ch.isspace())
    targets: list[tuple[float, float, float]] = []
    vowels = 0
    for ch in letters:
        target = _VISEMES.get(ch) or (_CLOSED if ch in "MBP" else _CONSONANT)
        if targets and targets[-1] == target:
            continue
        targets.append(target)
        vowels += ch in _VISEMES
        if vowels == 3:
            break
    return tuple(targets)
