"""From a gloss sequence to per-frame hand, face and head tracks (the signer's "motor plan").

Timeline of one sentence: rest frames, then for every gloss its segment of ``duration`` frames
(the first part is the transition from the previous sign, the rest the sign's own movement),
then a return to rest and rest frames. Hand states are keyframed per frame during each sign's
movement; transitions are filled with minimum-jerk interpolation, and a Gaussian low-pass over
the whole track blends neighbouring signs (coarticulation). All positions are in the body frame
of :mod:`edge_slr.data.synth.skeleton` (metres), written for a right hand; the non-dominant
hand's track is in mirrored coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_slr.data.synth import handshapes
from edge_slr.data.synth.config import SynthDifficulty
from edge_slr.data.synth.face import BLENDSHAPES
from edge_slr.data.synth.lexicon import ORIENTATIONS, HandSpec, SignSpec
from edge_slr.data.synth.signer import SignerProfile
from edge_slr.data.synth.skeleton import cross, hand_points, hand_rotation, rotate_about

REFERENCE_SHOULDER = 0.33  # movement sizes and anchors in the lexicon assume this shoulder width
_REST_ORIENTATION = ((1.0, 0.0, 0.2), (0.0, -0.5, -1.0))  # fingers to the midline, palm up/in
_NEUTRAL_MOUTH = np.array([0.08, 0.15, 0.0])


@dataclass
class HandTrack:
    """Per-frame state of one hand: palm-centre position, finger and palm directions, angles."""

    position: np.ndarray  # (T, 3)
    distal: np.ndarray  # (T, 3)
    palm: np.ndarray  # (T, 3)
    angles: np.ndarray  # (T, 20)

    @classmethod
    def empty(cls, frames: int) -> HandTrack:
        return cls(*(np.full((frames, n), np.nan) for n in (3, 3, 3, 20)))

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.position, self.distal, self.palm, self.angles


@dataclass
class MotionPlan:
    """Everything the body model needs for one sentence, frame by frame."""

    dominant: HandTrack
    nondominant: HandTrack  # mirrored coordinates (a right hand's view of the left hand)
    face: np.ndarray  # (T, len(BLENDSHAPES)) blendshape coefficients
    head: np.ndarray  # (T, 3) yaw, pitch, roll in radians
    spans: list[tuple[str, int, int]]  # (gloss, start, end) frame spans, end exclusive


def _ease(u: np.ndarray) -> np.ndarray:
    """Minimum-jerk profile 0 -> 1."""
    return u * u * u * (10.0 - 15.0 * u + 6.0 * u * u)


def _orthogonal(v: np.ndarray) -> np.ndarray:
    other = np.array([0.0, 0.0, 1.0]) if abs(v[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    w = cross(v, other)
    return w / np.linalg.norm(w)


class _Instance:
    """Random but signer-consistent realisation of citation forms (one per sentence)."""

    def __init__(
        self,
        signer: SignerProfile,
        anchors: dict[str, np.ndarray],
        difficulty: SynthDifficulty,
        rng: np.random.Generator,
    ) -> None:
        self.signer, self.anchors, self.difficulty, self.rng = signer, anchors, difficulty, rng
        self.scale = signer.proportions.shoulder_width / REFERENCE_SHOULDER
        self.angle_table = {n: handshapes.handshape(n).angles() for n in handshapes.names()}
        self.relaxed = handshapes.RELAXED.angles()

    def hand(self, spec: HandSpec, frames: int, phase: float = 0.0) -> tuple[np.ndarray, ...]:
        """(position, distal, palm, angles) of ``spec``'s movement over ``frames`` frames."""
        d, rng, var = self.difficulty, self.rng, self.difficulty.instance_variation
        u = (np.arange(frames) + 0.5) / frames
        warp = np.exp(rng.normal(0.0, 0.15 * var))  # some signers/instances move early or late
        u = u**warp
        amplitude = self.signer.amplitude * np.exp(rng.normal(0.0, 0.12 * var)) * self.scale
        distal0, palm0 = (np.asarray(v, float) for v in ORIENTATIONS[spec.orientation])
        axis = rng.normal(size=3)
        tilt = rng.normal(0.0, 0.10 * var)  # radians: the hand is never held exactly the same
        distal0 = rotate_about(distal0, axis, tilt)
        palm0 = rotate_about(palm0, axis, tilt)
        offset, twist, wiggle = self._movement(spec, u, amplitude, phase)
        distal = np.broadcast_to(distal0, (frames, 3)).copy()
        palm = rotate_about(np.broadcast_to(palm0, (frames, 3)), distal, twist)
        angles = self._angles(spec, u, wiggle, d)
        location = self.anchors[spec.location] + np.asarray(spec.offset) * self.scale
        location = location + rng.normal(0.0, 0.012 * var * self.scale, 3)
        if not spec.location.startswith(("on_base", "base")):
            location = location + np.asarray(self.signer.space_offset) * self.scale
        if spec.contact:
            location = location - self._contact_shift(angles[-1], distal0, palm0)
        return location + offset, distal, palm, angles

    def _movement(
        self, spec: HandSpec, u: np.ndarray, amplitude: float, phase: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = spec.movement
        direction = np.asarray(m.direction, float)
        size = m.size * amplitude
        zero = np.zeros_like(u)
        s = _ease(u)
        reps = m.repetitions
        cyc = (u + phase) % 1.0
        offset: np.ndarray = np.zeros((len(u), 3))
        twist, wiggle = zero, zero
        if m.kind == "hold":
            offset = np.outer(np.sin(np.pi * s), [0.0, 0.0, 0.012 * amplitude])
        elif m.kind == "straight":
            offset = np.outer(s - 0.5, direction * size)
        elif m.kind == "approach":  # the hand arrives at the location from the front
            offset = np.outer(1.0 - s, np.array([0.0, -0.2, 1.0]) * size * 0.6)
        elif m.kind == "arc":
            bulge = np.asarray(m.plane, float)
            bulge = bulge - bulge @ direction * direction
            if np.linalg.norm(bulge) < 1e-6:
                bulge = _orthogonal(direction)
            bulge = bulge / np.linalg.norm(bulge)
            offset = np.outer(s - 0.5, direction * size) + np.outer(
                np.sin(np.pi * s), bulge * 0.35 * size
            )
        elif m.kind == "circle":
            normal = np.asarray(m.plane, float)
            e1 = _orthogonal(normal)
            e2 = cross(normal, e1)
            angle = 2.0 * np.pi * (reps * u + phase)
            offset = size * (np.outer(np.cos(angle), e1) + np.outer(np.sin(angle), e2))
        elif m.kind == "repeat":
            wave = 0.5 - 0.5 * np.cos(2.0 * np.pi * reps * cyc)
            offset = np.outer(wave, direction * size * 0.5)
        elif m.kind == "zigzag":
            side = _orthogonal(direction)
            offset = np.outer(s - 0.5, direction * size) + np.outer(
                np.sin(2.0 * np.pi * reps * cyc), side * 0.2 * size
            )
        elif m.kind == "twist":
            twist = 0.9 * np.sin(np.pi * reps * cyc)
        elif m.kind == "wiggle":
            wiggle = np.sin(2.0 * np.pi * 3.0 * cyc)
        return offset, twist, wiggle

    def _angles(
        self, spec: HandSpec, u: np.ndarray, wiggle: np.ndarray, d: SynthDifficulty
    ) -> np.ndarray:
        start = self.angle_table[spec.handshape]
        end = self.angle_table[spec.end_handshape]
        w = np.clip((u - 0.25) / 0.5, 0.0, 1.0)[:, None]
        angles = (1.0 - w) * start + w * end
        lax = self.signer.laxness
        angles = (1.0 - lax) * angles + lax * self.relaxed
        angles = angles + self.rng.normal(0.0, 0.06 * d.instance_variation, 20)
        if wiggle.any():
            # Fingers flutter at the MCP joints, each finger a little out of phase.
            for f in range(4):
                angles[:, 4 + 4 * f] += 0.35 * np.roll(wiggle, 2 * f)
        return angles

    def _contact_shift(
        self, angles: np.ndarray, distal: np.ndarray, palm: np.ndarray
    ) -> np.ndarray:
        """Palm centre -> fingertip vector, so that the fingertip (not the palm) touches."""
        points = hand_points(angles, self.signer.proportions.palm)
        tip = points[8] if angles[5] < 0.6 else points[12]  # index tip when it is extended
        centre = 0.5 * (points[0] + points[9]) + np.array([0.0, 0.0, -0.012])
        rotation = hand_rotation(distal, palm)
        return rotation @ (tip - centre)

    def rest(self, frames: int, location: str) -> tuple[np.ndarray, ...]:
        position = self.anchors[location] + self.rng.normal(0.0, 0.01 * self.scale, 3)
        position = position + np.outer(np.linspace(-1.0, 1.0, frames), [0.0, 0.004, 0.0])
        distal, palm = (np.asarray(v, float) for v in _REST_ORIENTATION)
        tile = (frames, 1)
        return position, np.tile(distal, tile), np.tile(palm, tile), np.tile(self.relaxed, tile)


def _fill(track: HandTrack, start: int, values: tuple[np.ndarray, ...]) -> None:
    n = len(values[0])
    for target, value in zip(track.arrays(), values, strict=True):
        target[start : start + n] = value


def _interpolate_gaps(track: HandTrack) -> None:
    """Minimum-jerk interpolation across the frames that no piece filled (NaN rows)."""
    known = ~np.isnan(track.position[:, 0])
    idx = np.flatnonzero(known)
    frames = np.arange(len(known))
    # For each frame: the previous and next known frame, and the eased fraction between them.
    prev = idx[np.clip(np.searchsorted(idx, frames, side="right") - 1, 0, len(idx) - 1)]
    nxt = idx[np.clip(np.searchsorted(idx, frames, side="left"), 0, len(idx) - 1)]
    span = np.maximum(nxt - prev, 1)
    s = _ease(np.clip((frames - prev) / span, 0.0, 1.0))[:, None]
    for array in track.arrays():
        filled = (1.0 - s) * array[prev] + s * array[nxt]
        array[~known] = filled[~known]


def smooth(array: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass along axis 0 with edge padding (sigma in frames; 0 = unchanged)."""
    if sigma <= 0.05 or len(array) < 2:
        return array
    radius = int(np.ceil(3.0 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate(
        [np.repeat(array[:1], radius, 0), array, np.repeat(array[-1:], radius, 0)]
    )
    out = np.zeros_like(array)
    for k, weight in enumerate(kernel):
        out += weight * padded[k : k + len(array)]
    return out


def plan_motion(
    signs: list[SignSpec],
    durations: list[int],
    signer: SignerProfile,
    anchors: dict[str, np.ndarray],
    difficulty: SynthDifficulty,
    rng: np.random.Generator,
) -> MotionPlan:
    """Lay out a sentence on the timeline and build its hand, face and head tracks."""
    inst = _Instance(signer, anchors, difficulty, rng)
    lead = int(rng.integers(difficulty.rest_frames[0], difficulty.rest_frames[1] + 1))
    back = int(rng.integers(6, 11))
    trail = int(rng.integers(difficulty.rest_frames[0], difficulty.rest_frames[1] + 1))
    total = lead + sum(durations) + back + trail
    dom, non = HandTrack.empty(total), HandTrack.empty(total)
    for track, loc in ((dom, "rest"), (non, "rest")):
        _fill(track, 0, inst.rest(lead, loc))
        _fill(track, total - trail, inst.rest(trail, loc))
    spans, cursor = [], lead
    two_handed: list[tuple[int, int]] = []
    for sign, duration in zip(signs, durations, strict=True):
        share = np.clip(signer.transition_share + rng.normal(0.0, 0.05), 0.15, 0.6)
        transition = int(np.clip(round(duration * share), 1, max(duration - 2, 1)))
        moving = duration - transition
        start = cursor + transition
        _fill(dom, start, inst.hand(sign.dominant, moving))
        if sign.nondominant is not None:
            phase = 0.5 if sign.form == "alternating" else 0.0
            _fill(non, start, inst.hand(sign.nondominant, moving, phase))
            two_handed.append((start, start + moving))
        spans.append((sign.gloss, cursor, cursor + duration))
        cursor += duration
    _idle_nondominant(non, inst, two_handed, lead, total - trail - back)
    for track in (dom, non):
        _interpolate_gaps(track)
    sigma = difficulty.coarticulation * signer.smoothness
    for track in (dom, non):
        track.position = smooth(track.position, sigma)
        track.angles = smooth(track.angles, sigma)
        track.distal = smooth(track.distal, sigma)
        track.palm = smooth(track.palm, sigma)
    face = _face_track(signs, spans, total, signer, difficulty, rng)
    head = _head_track(signs, spans, total, rng)
    return MotionPlan(dom, non, face, head, spans)


def _idle_nondominant(
    track: HandTrack, inst: _Instance, busy: list[tuple[int, int]], first: int, last: int
) -> None:
    """Between two-handed signs the passive hand drops to its idle place if there is time."""
    edges = [first, *[t for span in busy for t in span], last]
    for gap_start, gap_end in zip(edges[0::2], edges[1::2], strict=True):
        gap = gap_end - gap_start
        if gap < 16:
            continue  # too short: the hand stays up and the gap is interpolated
        margin = min(10, gap // 3)
        _fill(track, gap_start + margin, inst.rest(gap - 2 * margin, inst.signer.idle_location))


def _face_track(
    signs: list[SignSpec],
    spans: list[tuple[str, int, int]],
    total: int,
    signer: SignerProfile,
    difficulty: SynthDifficulty,
    rng: np.random.Generator,
) -> np.ndarray:
    """Mouthing keyframes inside each sign, eyebrow plateaus, and random blinks."""
    times, mouth = [0.0], [_NEUTRAL_MOUTH]
    brows = np.zeros(total)
    for sign, (_, start, end) in zip(signs, spans, strict=True):
        length = end - start
        if sign.mouthing and rng.random() < difficulty.mouthing:
            k = len(sign.mouthing)
            for i, target in enumerate(sign.mouthing):
                times.append(start + length * (0.25 + 0.65 * (i + 0.5) / k))
                mouth.append(np.asarray(target) * signer.mouth_scale)
        times.append(end - 0.5)
        mouth.append(_NEUTRAL_MOUTH)
        brows[start:end] = sign.brows
    times.append(total - 1.0)
    mouth.append(_NEUTRAL_MOUTH)
    frames = np.arange(total)
    t, m = np.asarray(times), np.asarray(mouth)
    order = np.argsort(t, kind="stable")
    coeffs = np.zeros((total, len(BLENDSHAPES)))
    for c in range(3):
        coeffs[:, c] = np.interp(frames, t[order], m[order, c])
    coeffs[:, 3] = np.clip(brows, 0.0, None)
    coeffs[:, 4] = np.clip(-brows, 0.0, None)
    coeffs = smooth(coeffs, 1.5)
    blink = np.zeros(total)
    at = float(rng.uniform(5, 60))
    while at < total:
        centre = int(at)
        for k, value in zip(range(-2, 3), (0.4, 0.9, 1.0, 0.7, 0.3), strict=True):
            if 0 <= centre + k < total:
                blink[centre + k] = max(blink[centre + k], value)
        at += rng.uniform(40, 130)
    coeffs[:, 5] = blink
    return coeffs


def _head_track(
    signs: list[SignSpec], spans: list[tuple[str, int, int]], total: int, rng: np.random.Generator
) -> np.ndarray:
    """Slow idle head sway plus nods for signs that have one (yaw, pitch, roll in radians)."""
    head = smooth(np.cumsum(rng.normal(0.0, 0.006, (total, 3)), axis=0), 6.0)
    head -= head.mean(axis=0)
    for sign, (_, start, end) in zip(signs, spans, strict=True):
        if sign.nod:
            u = np.linspace(0.0, 1.0, end - start)
            head[start:end, 1] += sign.nod * np.sin(np.pi * u) ** 2
    return head
