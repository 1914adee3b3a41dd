"""Rendered RGB video of the synthetic signer, for training the video teacher.

Frames are drawn from the *clean* projected points (what the camera sees, before tracking noise
and dropouts, so a hand MediaPipe lost is still visible in the video): background, torso and
arms in clothing colour, neck, hair, the face with eyebrows, eyes, nose and lips (the mouth
opening is visible), and both hands as palms plus finger segments. Arms and hands are drawn
far-to-near by depth. Uses OpenCV (anti-aliased, sub-pixel) through ``require("cv2")``.
"""

from __future__ import annotations

import numpy as np

from edge_slr._optional import require
from edge_slr.data.synth.face import FaceModel
from edge_slr.data.synth.signer import Appearance
from edge_slr.errors import InputError
from edge_slr.landmarks.layout import FACE_OFFSET, PART_SLICES

_SHIFT = 4  # cv2 fixed-point bits: coordinates are drawn with 1/16 pixel precision
_ONE = 1 << _SHIFT
_PALM = (0, 1, 5, 9, 13, 17)
_FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c * factor, 0, 255)) for c in colour)  # type: ignore[return-value]


class Renderer:
    """Draws frames of ``size`` x ``size`` pixels for one signer's appearance."""

    def __init__(self, face: FaceModel, appearance: Appearance, size: int = 112) -> None:
        if not isinstance(size, int) or not 32 <= size <= 1024:
            raise InputError(f"frame size must be an integer in [32, 1024] pixels, got {size!r}")
        self.cv2 = require("cv2", "rendering SignSynth video frames")
        self.face, self.look, self.size = face, appearance, size
        self.contours = {
            name: [np.asarray(c) + FACE_OFFSET for c in chains]
            for name, chains in face.contours.items()
        }

    def render(self, points: np.ndarray) -> np.ndarray:
        """(T, 543, 3) normalised points -> (T, size, size, 3) uint8 RGB frames."""
        if points.ndim != 3 or points.shape[1:] != (543, 3):
            raise InputError(f"render needs (T, 543, 3) points, got shape {points.shape}")
        frames = np.empty((len(points), self.size, self.size, 3), dtype=np.uint8)
        for t, frame_points in enumerate(points):
            frames[t] = self._frame(frame_points)
        return frames

    def _px(self, xy: np.ndarray) -> np.ndarray:
        return np.round(xy[..., :2] * self.size * _ONE).astype(np.int32)

    def _frame(self, p: np.ndarray) -> np.ndarray:
        cv2, look = self.cv2, self.look
        img = np.empty((self.size, self.size, 3), dtype=np.uint8)
        img[:] = look.background
        shoulder = float(np.linalg.norm(p[11, :2] - p[12, :2])) * self.size
        width = lambda fraction: max(1, int(round(fraction * shoulder)))  # noqa: E731
        aa = cv2.LINE_AA
        # Torso: shoulders (widened to the deltoids) down to the hips.
        out = (p[11, :2] - p[12, :2]) * 0.22  # towards the signer's left
        torso = np.stack(
            [p[11, :2] + out, p[23, :2] + 0.4 * out, p[24, :2] - 0.4 * out, p[12, :2] - out]
        )
        cv2.fillPoly(img, [self._px(torso)], look.clothes, aa, _SHIFT)
        # Neck, hair and face.
        chin = p[FACE_OFFSET + 152, :2]
        neck_base = 0.5 * (p[11, :2] + p[12, :2])
        cv2.line(
            img,
            tuple(self._px(chin)),
            tuple(self._px(neck_base)),
            _shade(look.skin, 0.85),
            width(0.28),
            aa,
            _SHIFT,
        )
        face_centre = p[FACE_OFFSET : FACE_OFFSET + 468, :2].mean(axis=0)
        forehead = p[FACE_OFFSET + 10, :2]
        hair_radius = int(np.linalg.norm(forehead - chin) * self.size * 0.55 * _ONE)
        hair_centre = self._px(0.6 * face_centre + 0.4 * forehead)
        cv2.circle(img, tuple(hair_centre), hair_radius, look.hair, -1, aa, _SHIFT)
        for chain in self.contours["face_oval"]:
            cv2.fillPoly(img, [self._px(p[chain])], look.skin, aa, _SHIFT)
        self._features(img, p, width)
        # Arms and hands, the farther one first.
        arms = [(11, 13, 15, PART_SLICES["left_hand"]), (12, 14, 16, PART_SLICES["right_hand"])]
        arms.sort(key=lambda arm: -float(p[arm[2], 2]))
        sleeve, seam = _shade(look.clothes, 1.3), _shade(look.clothes, 0.55)
        for shoulder_i, elbow_i, wrist_i, hand in arms:
            arm = self._px(p[[shoulder_i, elbow_i, wrist_i]])
            # A darker outline keeps the arm visible in front of same-coloured clothing.
            cv2.polylines(img, [arm], False, seam, width(0.22), aa, _SHIFT)
            cv2.polylines(img, [arm], False, sleeve, width(0.16), aa, _SHIFT)
            self._hand(img, p[hand], width)
        return img

    def _features(self, img: np.ndarray, p: np.ndarray, width) -> None:
        cv2, aa, look = self.cv2, self.cv2.LINE_AA, self.look
        dark = _shade(look.hair, 0.6)
        for name in ("left_eyebrow", "right_eyebrow"):
            for chain in self.contours[name]:
                cv2.polylines(img, [self._px(p[chain])], False, dark, width(0.025), aa, _SHIFT)
        for name in ("left_eye", "right_eye"):
            for chain in self.contours[name]:
                cv2.fillPoly(img, [self._px(p[chain])], (235, 235, 230), aa, _SHIFT)
                centre = self._px(p[chain].mean(axis=0))
                cv2.circle(
                    img, tuple(centre), max(_ONE, width(0.025) * _ONE), (40, 30, 25), -1, aa, _SHIFT
                )
        for chain in self.contours["nose"]:
            cv2.polylines(img, [self._px(p[chain])], False, _shade(look.skin, 0.8), 1, aa, _SHIFT)
        outer, inner = sorted(self.contours["lips"], key=lambda c: -np.ptp(p[c, 0]))[:2]
        cv2.fillPoly(img, [self._px(p[outer])], (170, 70, 75), aa, _SHIFT)
        cv2.fillPoly(img, [self._px(p[inner])], (50, 15, 20), aa, _SHIFT)

    def _hand(self, img: np.ndarray, h: np.ndarray, width) -> None:
        cv2, aa, skin = self.cv2, self.cv2.LINE_AA, self.look.skin
        edge = _shade(skin, 0.7)
        cv2.fillPoly(img, [self._px(h[list(_PALM)])], skin, aa, _SHIFT)
        chains = [self._px(h[list(finger)]) for finger in _FINGERS]
        cv2.polylines(img, chains, False, edge, width(0.07), aa, _SHIFT)  # outline first
        cv2.polylines(img, chains, False, skin, width(0.045), aa, _SHIFT)
