"""The synthetic signer's face: a real MediaPipe mesh template plus a few linear blendshapes.

The 468-point template is the median face of real MediaPipe recordings (see
``_build_face_asset.py``), in a head frame whose unit is the distance between the outer eye
corners: x from the signer's right to left eye, y down, z towards the camera. Mouthing, eyebrow
movement and blinks are linear blendshapes built procedurally on that template (a jaw rotation
for the lower face, lip spreading/rounding, brow raise/furrow, eyelid closing), so a frame's
face is ``template + coefficients @ basis``: one small matrix product per sequence.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_slr.errors import FormatError

ASSET = Path(__file__).with_name("assets") / "face_template.json"
NUM_FACE_POINTS = 468
BLENDSHAPES = ("jaw_open", "lips_spread", "lips_round", "brow_raise", "brow_furrow", "blink")
# Face-mesh indices used as anchors (MediaPipe numbering; "left" is the signer's left).
NOSE_TIP, FOREHEAD, CHIN = 1, 10, 152
RIGHT_EYE_OUTER, RIGHT_EYE_INNER, LEFT_EYE_INNER, LEFT_EYE_OUTER = 33, 133, 362, 263
MOUTH_RIGHT, MOUTH_LEFT, UPPER_LIP, LOWER_LIP = 61, 291, 13, 14
RIGHT_CHEEK, LEFT_CHEEK = 234, 454  # outermost face-oval points at cheek level


@dataclass(frozen=True)
class FaceModel:
    """Template, blendshape basis and drawing contours of the synthetic face."""

    template: np.ndarray  # (468, 3) float32 head frame, unit = outer eye corner distance
    basis: np.ndarray  # (len(BLENDSHAPES), 468 * 3) float32 displacement per unit coefficient
    contours: dict[str, tuple[tuple[int, ...], ...]]  # ordered index chains for drawing
    shoulder_width_in_eye_distances: float
    nose_height_in_shoulder_widths: float

    def points(self, coefficients: np.ndarray) -> np.ndarray:
        """Face points (T, 468, 3) for blendshape coefficients (T, len(BLENDSHAPES))."""
        offsets = coefficients.astype(np.float32) @ self.basis
        return self.template[None] + offsets.reshape(len(coefficients), NUM_FACE_POINTS, 3)

    def chain_points(self, name: str) -> np.ndarray:
        """All indices of the contour group ``name`` (e.g. ``"lips"``), sorted and unique."""
        return np.unique(np.concatenate([np.asarray(c) for c in self.contours[name]]))


@functools.lru_cache(maxsize=1)
def load_face_model(path: str | Path = ASSET) -> FaceModel:
    """Read the packaged face template and build its blendshapes (cached)."""
    path = Path(path)
    try:
        asset = json.loads(path.read_text(encoding="utf-8"))
        template = np.asarray(asset["template"], dtype=np.float64)
        contours = {
            name: tuple(tuple(int(i) for i in chain) for chain in chains)
            for name, chains in asset["contours"].items()
        }
        ratios = (
            float(asset["shoulder_width_in_eye_distances"]),
            float(asset["nose_height_in_shoulder_widths"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise FormatError(path, f"not a usable face template ({err})") from None
    if template.shape != (NUM_FACE_POINTS, 3):
        raise FormatError(path, f"template must be (468, 3), got {template.shape}")
    model = FaceModel(template, np.zeros((0, NUM_FACE_POINTS * 3)), contours, *ratios)
    basis = np.stack([shape.reshape(-1) for shape in _blendshapes(model)]).astype(np.float32)
    # float32: the face is most of every frame's points; half the memory traffic of float64.
    return FaceModel(template.astype(np.float32), basis, contours, *ratios)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _blendshapes(model: FaceModel) -> list[np.ndarray]:
    """The displacement fields of BLENDSHAPES, in order, each (468, 3)."""
    t = model.template
    upper, lower, corners = _lip_parts(model)
    in_lips = np.zeros(len(t), bool)
    in_lips[np.concatenate([upper, lower, corners])] = True
    mouth_centre = 0.5 * (t[UPPER_LIP] + t[LOWER_LIP])
    return [
        _jaw_open(t, in_lips, upper, lower, corners, mouth_centre[1]),
        _lips_spread(t, in_lips, mouth_centre),
        _lips_round(t, in_lips, mouth_centre),
        *_brows(model),
        _blink(model),
    ]


def _lip_parts(model: FaceModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper-lip, lower-lip and mouth-corner indices, from the two closed lip contours."""
    t = model.template
    upper, lower, corners = [], [], []
    for chain in model.contours["lips"]:
        loop = list(chain[:-1]) if chain[0] == chain[-1] else list(chain)
        xs = t[loop, 0]
        a, b = sorted((int(np.argmin(xs)), int(np.argmax(xs))))
        arcs = (loop[a + 1 : b], loop[b + 1 :] + loop[:a])
        first_is_upper = t[arcs[0], 1].mean() < t[arcs[1], 1].mean()
        upper += arcs[0] if first_is_upper else arcs[1]
        lower += arcs[1] if first_is_upper else arcs[0]
        corners += [loop[a], loop[b]]
    return np.array(upper), np.array(lower), np.array(corners)


def _jaw_open(
    t: np.ndarray,
    in_lips: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    corners: np.ndarray,
    mouth_y: float,
) -> np.ndarray:
    """Drop the lower face (chin, lower lip): down and slightly back, fading at the sides."""
    drop = np.array([0.0, 0.24, -0.05])  # a wide-open mouth at coefficient 1
    below = _smoothstep((t[:, 1] - mouth_y) / 0.15)
    sides = 1.0 - _smoothstep((np.abs(t[:, 0]) - 0.35) / 0.4)
    weight = below * sides
    weight[upper] = -0.08  # the upper lip lifts a little as the mouth opens
    weight[lower] = 1.0
    weight[corners] = 0.45
    return weight[:, None] * drop[None]


def _lips_spread(t: np.ndarray, in_lips: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Stretch the lips sideways (as in /i/ and /e/) and pull the corners back a little."""
    shift = np.zeros_like(t)
    shift[in_lips, 0] = 0.22 * (t[in_lips, 0] - centre[0])
    shift[in_lips, 2] = -0.03 * np.abs(t[in_lips, 0] - centre[0]) / 0.27
    return shift


def _lips_round(t: np.ndarray, in_lips: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Purse the lips (as in /o/ and /u/): narrower, rounder and pushed forward."""
    shift = np.zeros_like(t)
    shift[in_lips, 0] = -0.35 * (t[in_lips, 0] - centre[0])
    shift[in_lips, 1] = 0.25 * (t[in_lips, 1] - centre[1])
    shift[in_lips, 2] = 0.10
    return shift


def _brows(model: FaceModel) -> tuple[np.ndarray, np.ndarray]:
    """Eyebrow raise (brows and the skin above them move up) and furrow (in and down)."""
    t = model.template
    brows = np.concatenate(
        [model.chain_points("left_eyebrow"), model.chain_points("right_eyebrow")]
    )
    brow_y = t[brows, 1].mean()
    # Skin between the brows and the hairline follows the brows, fading towards the hairline.
    above = (t[:, 1] < brow_y + 0.05) & (np.abs(t[:, 0]) < 0.75)
    weight = np.where(above, 1.0 - _smoothstep((brow_y - t[:, 1]) / 0.45), 0.0)
    weight[brows] = 1.0
    raise_ = np.zeros_like(t)
    raise_[:, 1] = -0.12 * weight
    furrow = np.zeros_like(t)
    furrow[:, 0] = -0.06 * np.sign(t[:, 0]) * weight * (np.abs(t[:, 0]) < 0.45)
    furrow[:, 1] = 0.05 * weight
    return raise_, furrow


def _blink(model: FaceModel) -> np.ndarray:
    """Close both eyes: upper-lid points move down to the line between the eye corners."""
    t = model.template
    shift = np.zeros_like(t)
    for eye in ("left_eye", "right_eye"):
        idx = model.chain_points(eye)
        corners = idx[np.argsort(t[idx, 0])[[0, -1]]]
        line_y = t[corners, 1].mean()
        upper = idx[t[idx, 1] < line_y]
        lower = idx[t[idx, 1] > line_y]
        shift[upper, 1] = 0.9 * (line_y - t[upper, 1])
        shift[lower, 1] = 0.1 * (line_y - t[lower, 1])
    return shift
