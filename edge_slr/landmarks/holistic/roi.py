"""Rotated regions of interest: MediaPipe's rect calculators, affine crops and projection back.

A :class:`Rect` is MediaPipe's ``NormalizedRect``: centre, width and height normalised to the
image (so a square in pixels has ``width * W == height * H``) and a clockwise rotation in
radians. The functions here reproduce, in numpy, the calculators the Holistic graph chains
between its models (mediapipe 0.10.21, ``calculators/util`` and ``modules/holistic_landmark``):

- :func:`alignment_rect`: ``AlignmentPointsRectsCalculator`` (centre on one point, size twice
  the distance to another, rotation from the pair);
- :func:`bounding_rect`: ``DetectionsToRectsCalculator`` (axis-aligned box of points, rotation
  from two of them);
- :func:`transform_rect`: ``RectTransformationCalculator`` (shift, square, scale);
- :func:`hand_rect_from_pose`, :func:`hand_landmarks_rect`: the hand-specific ROI calculators;
- :func:`crop`: ``ImageToTensorCalculator`` (OpenCV path: rotated rect corners mapped onto the
  tensor corners, bilinear, letterbox padding when the aspect ratio is kept);
- :func:`project`: ``LandmarkLetterboxRemovalCalculator`` + ``LandmarkProjectionCalculator``.

Image sizes are ``(width, height)`` in pixels, as MediaPipe passes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge_slr._optional import require

Size = tuple[int, int]


@dataclass(frozen=True)
class Rect:
    """A rotated rectangle normalised to the image (MediaPipe's NormalizedRect)."""

    x_center: float
    y_center: float
    width: float
    height: float
    rotation: float = 0.0  # radians, clockwise in image coordinates (y down)


def normalize_radians(angle: float) -> float:
    """The angle moved into [-pi, pi) (MediaPipe's NormalizeRadians)."""
    return angle - 2.0 * math.pi * math.floor((angle + math.pi) / (2.0 * math.pi))


def rotation_between(start: np.ndarray, end: np.ndarray, size: Size, target: float) -> float:
    """Rotation that turns the start->end vector (normalised points) to ``target`` radians."""
    width, height = size
    dx = (float(end[0]) - float(start[0])) * width
    dy = (float(end[1]) - float(start[1])) * height
    return normalize_radians(target - math.atan2(-dy, dx))


def alignment_rect(start: np.ndarray, end: np.ndarray, size: Size, target_degrees: float) -> Rect:
    """Square (in pixels) centred on ``start`` with side twice the start-end distance."""
    width, height = size
    side = 2.0 * math.hypot(
        (float(end[0]) - float(start[0])) * width, (float(end[1]) - float(start[1])) * height
    )
    rotation = rotation_between(start, end, size, math.radians(target_degrees))
    return Rect(float(start[0]), float(start[1]), side / width, side / height, rotation)


def bounding_rect(
    points: np.ndarray, start: int, end: int, size: Size, target_degrees: float
) -> Rect:
    """Axis-aligned bounding box of ``points`` (N, >=2), rotated by the start->end direction."""
    xy = np.asarray(points, dtype=np.float64)[:, :2]
    low, high = xy.min(axis=0), xy.max(axis=0)
    centre = (low + high) / 2.0
    rotation = rotation_between(xy[start], xy[end], size, math.radians(target_degrees))
    return Rect(
        float(centre[0]),
        float(centre[1]),
        float(high[0] - low[0]),
        float(high[1] - low[1]),
        rotation,
    )


def transform_rect(
    rect: Rect,
    size: Size,
    scale: float,
    shift_y: float = 0.0,
    square_long: bool = True,
) -> Rect:
    """Shift along the rect's own y axis (by its height), make square on the long side, scale."""
    width, height = size
    x, y, w, h, r = rect.x_center, rect.y_center, rect.width, rect.height, rect.rotation
    if shift_y:
        # The shift is along the rotated y axis, computed in pixels (MediaPipe's formula).
        x += (-height * h * shift_y * math.sin(r)) / width
        y += (height * h * shift_y * math.cos(r)) / height
    if square_long:
        long_side = max(w * width, h * height)
        w, h = long_side / width, long_side / height
    return Rect(x, y, w * scale, h * scale, r)


def hand_rect_from_pose(
    wrist: np.ndarray, pinky: np.ndarray, index: np.ndarray, size: Size
) -> Rect:
    """HandDetectionsFromPoseToRectsCalculator: centre on the estimated middle finger knuckle,
    side twice the wrist-middle distance, rotated so the wrist->middle vector points up."""
    width, height = size
    middle = (2.0 * np.asarray(index[:2], np.float64) + np.asarray(pinky[:2], np.float64)) / 3.0
    side = 2.0 * math.hypot((middle[0] - wrist[0]) * width, (middle[1] - wrist[1]) * height)
    rotation = rotation_between(wrist, middle, size, math.pi / 2.0)
    return Rect(float(middle[0]), float(middle[1]), side / width, side / height, rotation)


# HandLandmarksToRectCalculator works on the palm subset of the 21 hand landmarks (wrist, thumb
# base, and the two lowest joints of each finger); within it, 4, 6 and 8 are the index, middle
# and ring knuckles whose mean with the wrist gives the rotation. Checked against the ROIs the
# 0.10.21 graph produces on a real clip.
PALM_POINTS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)
_HAND_ROT_WRIST, _HAND_ROT_A, _HAND_ROT_MIDDLE, _HAND_ROT_B = 0, 4, 6, 8


def hand_landmarks_rect(landmarks: np.ndarray, size: Size) -> Rect:
    """HandLandmarksToRectCalculator: the box of the palm points in the hand's own frame."""
    width, height = size
    pts = np.asarray(landmarks, dtype=np.float64)[list(PALM_POINTS), :2]
    a, b, mid = pts[_HAND_ROT_A], pts[_HAND_ROT_B], pts[_HAND_ROT_MIDDLE]
    target = ((a + b) / 2.0 + mid) / 2.0
    rotation = rotation_between(pts[_HAND_ROT_WRIST], target, size, math.pi / 2.0)
    centre = (pts.min(axis=0) + pts.max(axis=0)) / 2.0
    offset = (pts - centre) * (width, height)
    back = normalize_radians(-rotation)
    cos_b, sin_b = math.cos(back), math.sin(back)
    px = offset[:, 0] * cos_b - offset[:, 1] * sin_b
    py = offset[:, 0] * sin_b + offset[:, 1] * cos_b
    pcx, pcy = (px.max() + px.min()) / 2.0, (py.max() + py.min()) / 2.0
    cos_r, sin_r = math.cos(rotation), math.sin(rotation)
    cx = pcx * cos_r - pcy * sin_r + width * centre[0]
    cy = pcx * sin_r + pcy * cos_r + height * centre[1]
    return Rect(
        cx / width,
        cy / height,
        float(px.max() - px.min()) / width,
        float(py.max() - py.min()) / height,
        rotation,
    )


def whole_image_rect() -> Rect:
    return Rect(0.5, 0.5, 1.0, 1.0, 0.0)


def crop(
    image: np.ndarray,
    rect: Rect,
    out_size: int,
    value_range: tuple[float, float],
    keep_aspect: bool = True,
    zero_border: bool = False,
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The rect of ``image`` as a ``(1, S, S, 3)`` float32 tensor in ``value_range``.

    Returns the tensor and the letterbox padding (left, top, right, bottom) as fractions of the
    tensor, which :func:`project` removes. Outside the image the border pixels repeat
    (``zero_border``: black, as the pose detector's crop).
    """
    cv2 = require("cv2", "Holistic crops")
    height, width = image.shape[:2]
    cx, cy = rect.x_center * width, rect.y_center * height
    w, h = rect.width * width, rect.height * height
    padding = (0.0, 0.0, 0.0, 0.0)
    if keep_aspect and w > 0 and h > 0:
        # Grow the short side to the (square) tensor's aspect; the growth is letterbox padding.
        if h > w:
            pad = (1.0 - w / h) / 2.0
            padding, w = (pad, 0.0, pad, 0.0), h
        elif w > h:
            pad = (1.0 - h / w) / 2.0
            padding, h = (0.0, pad, 0.0, pad), w
    # The rect's corners (bottom-left, top-left, top-right, bottom-right, as cv::boxPoints
    # orders them) go onto the tensor's corners, as MediaPipe's OpenCV converter does.
    corners = cv2.boxPoints(((cx, cy), (w, h), math.degrees(rect.rotation)))
    s = float(out_size)
    target = np.array([[0.0, s], [0.0, 0.0], [s, 0.0], [s, s]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(corners.astype(np.float32), target)
    border = cv2.BORDER_CONSTANT if zero_border else cv2.BORDER_REPLICATE
    pixels = cv2.warpPerspective(
        image, matrix, (out_size, out_size), flags=cv2.INTER_LINEAR, borderMode=border
    )
    low, high = value_range
    tensor = pixels.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)
    return tensor[None], padding


def remove_letterbox(points: np.ndarray, padding: tuple[float, float, float, float]) -> np.ndarray:
    """Tensor-normalised points (N, >=2) to rect-normalised ones (z is scaled like x)."""
    left, top, right, bottom = padding
    out = np.array(points, dtype=np.float64, copy=True)
    sx, sy = 1.0 - left - right, 1.0 - top - bottom
    out[:, 0] = (out[:, 0] - left) / sx
    out[:, 1] = (out[:, 1] - top) / sy
    if out.shape[1] > 2:
        out[:, 2] = out[:, 2] / sx
    return out


def project(points: np.ndarray, rect: Rect) -> np.ndarray:
    """Rect-normalised points (N, 2 or 3) to image-normalised ones (z scaled by rect width)."""
    out = np.array(points, dtype=np.float64, copy=True)
    x, y = out[:, 0] - 0.5, out[:, 1] - 0.5
    cos_r, sin_r = math.cos(rect.rotation), math.sin(rect.rotation)
    out[:, 0] = (cos_r * x - sin_r * y) * rect.width + rect.x_center
    out[:, 1] = (sin_r * x + cos_r * y) * rect.height + rect.y_center
    if out.shape[1] > 2:
        out[:, 2] = out[:, 2] * rect.width
    return out


def unproject(points: np.ndarray, rect: Rect) -> np.ndarray:
    """Inverse of :func:`project` for x, y: image-normalised points to rect-normalised ones."""
    out = np.array(points, dtype=np.float64, copy=True)
    x = (out[:, 0] - rect.x_center) / rect.width
    y = (out[:, 1] - rect.y_center) / rect.height
    cos_r, sin_r = math.cos(rect.rotation), math.sin(rect.rotation)
    out[:, 0] = cos_r * x + sin_r * y + 0.5
    out[:, 1] = -sin_r * x + cos_r * y + 0.5
    if out.shape[1] > 2:
        out[:, 2] = out[:, 2] / rect.width
    return out


def tracking_keeps(
    prev: Rect,
    recrop: Rect,
    prev_landmarks: np.ndarray,
    size: Size,
    max_degrees: float,
    max_translation: float,
    max_scale: float,
    margin: float,
) -> bool:
    """RoiTrackingCalculator: keep the previous frame's rect while the re-crop rect stays close
    (rotation, translation and size within the limits) and still holds the previous landmarks."""
    width, height = size
    back = -recrop.rotation
    cos_b, sin_b = math.cos(back), math.sin(back)

    def turned(x: np.ndarray | float, y: np.ndarray | float) -> tuple:
        return x * width * cos_b - y * height * sin_b, x * width * sin_b + y * height * cos_b

    px, py = turned(prev.x_center, prev.y_center)
    rx, ry = turned(recrop.x_center, recrop.y_center)
    rw, rh = recrop.width * width, recrop.height * height
    diff = math.degrees(prev.rotation) - math.degrees(recrop.rotation)
    diff = diff - 360.0 if diff > 180.0 else diff + 360.0 if diff < -180.0 else diff
    if abs(diff) > max_degrees:
        return False
    if abs(px - rx) > rw * max_translation or abs(py - ry) > rh * max_translation:
        return False
    if abs(prev.width * width - rw) > rw * max_scale:
        return False
    if abs(prev.height * height - rh) > rh * max_scale:
        return False
    lx, ly = turned(prev_landmarks[:, 0], prev_landmarks[:, 1])
    half_w, half_h = rw * (1.0 + margin) / 2.0, rh * (1.0 + margin) / 2.0
    inside = (rx - half_w < lx) & (lx < rx + half_w) & (ry - half_h < ly) & (ly < ry + half_h)
    return bool(inside.all())
