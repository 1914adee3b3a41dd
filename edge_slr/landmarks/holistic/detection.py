"""SSD detection decoding for MediaPipe's BlazePose and BlazeFace detectors, in numpy.

Reproduces ``SsdAnchorsCalculator``, ``TensorsToDetectionsCalculator`` (sigmoid scores, boxes and
keypoints relative to anchors) and ``NonMaxSuppressionCalculator`` with the WEIGHTED algorithm
(overlapping detections are averaged, weighted by score), with the options of mediapipe 0.10.21's
``pose_detection_cpu`` and ``face_detection_short_range`` graphs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AnchorOptions:
    """SsdAnchorsCalculatorOptions (fixed-size anchors: only the centres matter)."""

    input_size: int
    strides: tuple[int, ...]
    num_layers: int
    anchors_per_layer: int = 2  # aspect ratio 1 plus the interpolated scale


@dataclass(frozen=True)
class DetectorSpec:
    """How one detector's raw output decodes (TensorsToDetectionsCalculatorOptions)."""

    anchors: AnchorOptions
    num_boxes: int
    num_keypoints: int
    scale: float  # x/y/w/h scale: the input size
    score_clip: float = 100.0
    nms_threshold: float = 0.3


POSE_DETECTOR = DetectorSpec(AnchorOptions(224, (8, 16, 32, 32, 32), 5), 2254, 4, 224.0)
FACE_DETECTOR = DetectorSpec(AnchorOptions(128, (8, 16, 16, 16), 4), 896, 6, 128.0)


@dataclass(frozen=True)
class Detections:
    """Decoded detections, best first after NMS: boxes (N, 4) as xmin, ymin, xmax, ymax,
    keypoints (N, K, 2), scores (N,), all normalised to the detector's input."""

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def ssd_anchors(options: AnchorOptions) -> np.ndarray:
    """Anchor centres ``(N, 2)`` (x, y) in the order the detector emits its boxes."""
    centres = []
    layer = 0
    strides = options.strides
    while layer < options.num_layers:
        same = layer
        while same < options.num_layers and strides[same] == strides[layer]:
            same += 1
        per_cell = options.anchors_per_layer * (same - layer)
        cells = math.ceil(options.input_size / strides[layer])
        grid = (np.arange(cells, dtype=np.float64) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        cell_centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cell_centres, per_cell, axis=0))
        layer = same
    return np.concatenate(centres, axis=0)


def decode(
    raw_boxes: np.ndarray,
    raw_scores: np.ndarray,
    anchors: np.ndarray,
    spec: DetectorSpec,
    min_score: float,
) -> Detections:
    """Raw detector outputs ``(1, N, C)`` and ``(1, N, 1)`` to the detections scoring at least
    ``min_score`` (sigmoid of the clipped logit)."""
    boxes = np.asarray(raw_boxes, dtype=np.float64).reshape(spec.num_boxes, -1)
    logits = np.asarray(raw_scores, dtype=np.float64).reshape(spec.num_boxes)
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -spec.score_clip, spec.score_clip)))
    keep = scores >= min_score
    boxes, scores, anchor = boxes[keep], scores[keep], anchors[keep]
    centre = boxes[:, 0:2] / spec.scale + anchor
    half = boxes[:, 2:4] / spec.scale / 2.0
    corners = np.concatenate([centre - half, centre + half], axis=1)
    count = spec.num_keypoints
    points = boxes[:, 4 : 4 + 2 * count].reshape(-1, count, 2) / spec.scale + anchor[:, None, :]
    return Detections(corners, points, scores)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box (4,) with many (N, 4) (xmin, ymin, xmax, ymax)."""
    low = np.maximum(box[:2], boxes[:, :2])
    high = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(high - low, 0.0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def weighted_nms(detections: Detections, threshold: float) -> Detections:
    """MediaPipe's weighted NMS: each kept detection is the score-weighted mean of the boxes
    and keypoints overlapping it by more than ``threshold`` IoU, and keeps its own score."""
    order = np.argsort(-detections.scores, kind="stable")
    boxes, points, scores = (detections.boxes[order], detections.keypoints[order],
                             detections.scores[order])  # fmt: skip
    out_boxes, out_points, out_scores = [], [], []
    while scores.shape[0]:
        overlap = iou(boxes[0], boxes) > threshold
        overlap[0] = True  # a box always overlaps itself (guards against empty boxes)
        weights = scores[overlap]
        total = weights.sum()
        out_boxes.append((boxes[overlap] * weights[:, None]).sum(axis=0) / total)
        out_points.append((points[overlap] * weights[:, None, None]).sum(axis=0) / total)
        out_scores.append(scores[0])
        boxes, points, scores = boxes[~overlap], points[~overlap], scores[~overlap]
    if not out_scores:
        return detections
    return Detections(np.stack(out_boxes), np.stack(out_points), np.asarray(out_scores))


def remove_letterbox(points: np.ndarray, padding: tuple[float, float, float, float]) -> np.ndarray:
    """Points (..., 2) normalised to a letterboxed input, moved to the un-padded image."""
    left, top, right, bottom = padding
    out = np.array(points, dtype=np.float64, copy=True)
    out[..., 0] = (out[..., 0] - left) / (1.0 - left - right)
    out[..., 1] = (out[..., 1] - top) / (1.0 - top - bottom)
    return out


def best_detection(
    raw_boxes: np.ndarray,
    raw_scores: np.ndarray,
    anchors: np.ndarray,
    spec: DetectorSpec,
    min_score: float,
) -> tuple[np.ndarray, float] | None:
    """Keypoints ``(K, 2)`` and score of the best detection after NMS, or None."""
    found = decode(raw_boxes, raw_scores, anchors, spec, min_score)
    if not len(found):
        return None
    kept = weighted_nms(found, spec.nms_threshold)
    return kept.keypoints[0], float(kept.scores[0])
