"""Maintenance script: rebuild ``assets/face_template.json`` from real MediaPipe recordings.

Not used at run time. The synthetic signer's face is the average of real MediaPipe face meshes,
so that its 468 points (and the 40 lip points the feature presets keep) sit where MediaPipe puts
them. Run once, from the checkout, with ../shared/data present:

    python -m edge_slr.data.synth._build_face_asset

What it does: reads the MIT-licensed Holistic recordings listed in ``SOURCES`` with pose-format,
puts every frame's face into a head-centred frame (x from the right to the left outer eye
corner, y from forehead to chin, z towards the camera; unit = the outer-eye-corner distance),
takes the per-point median over all frames, makes it left-right symmetric, and stores it with
the ordered contours (face oval, eyes, eyebrows, lips) taken from MediaPipe's connection sets
and two body proportions measured on the same frames.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from edge_slr._optional import require
from edge_slr.paths import shared_data_dir

logger = logging.getLogger(__name__)

SOURCES = (  # MIT-licensed full Holistic recordings in ../shared/data/landmarks
    "segmentation/example.pose",
    "pose-format/example.pose",
    "pose-format/0ff215ef4f1f111e217e2cefee0adc77.pose",
    "pose-format/7bd6dd48722def3cf84258b96371cb1e.pose",
)
FACE = slice(33, 501)
RIGHT_EYE_OUTER, LEFT_EYE_OUTER, FOREHEAD, CHIN = 33, 263, 10, 152
OUT = Path(__file__).with_name("assets") / "face_template.json"


def _frames(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Face points (F, 468, 3) and shoulder/nose points (F, 3, 2) of the frames with a face."""
    pose_format = require("pose_format", "reading .pose recordings")
    pose = pose_format.Pose.read(path.read_bytes())
    data = np.asarray(pose.body.data.data, dtype=np.float64)[:, 0]
    conf = np.asarray(pose.body.confidence)[:, 0]
    width = float(pose.header.dimensions.width)
    keep = (conf[:, FACE] > 0).all(axis=1) & (conf[:, [0, 11, 12]] > 0).all(axis=1)
    face = data[keep, FACE, :3].copy()
    face[..., 2] *= width  # MediaPipe's face z is in units of the image width
    body = data[keep][:, [0, 11, 12], :2]
    return face, body


def _canonical(face: np.ndarray) -> np.ndarray:
    """Rotate/scale each frame's face into the head frame described in the module docstring."""
    x_axis = face[:, LEFT_EYE_OUTER] - face[:, RIGHT_EYE_OUTER]
    eye_distance = np.linalg.norm(x_axis, axis=-1, keepdims=True)
    x_axis /= eye_distance
    down = face[:, CHIN] - face[:, FOREHEAD]
    y_axis = down - np.sum(down * x_axis, axis=-1, keepdims=True) * x_axis
    y_axis /= np.linalg.norm(y_axis, axis=-1, keepdims=True)
    # Image z grows away from the camera; the head frame's z points towards it.
    z_axis = -np.cross(x_axis, y_axis)
    centre = face.mean(axis=1, keepdims=True)
    rel = (face - centre) / eye_distance[:, :, None]
    axes = np.stack([x_axis, y_axis, z_axis], axis=-1)  # (F, 3, 3), columns are the axes
    return np.einsum("fpc,fck->fpk", rel, axes)


def _symmetrise(template: np.ndarray) -> np.ndarray:
    """Average the template with its mirror image (points paired by nearest mirrored neighbour)."""
    mirrored = template * np.array([-1.0, 1.0, 1.0])
    distances = np.linalg.norm(template[:, None] - mirrored[None], axis=-1)
    partner = distances.argmin(axis=1)
    consistent = partner[partner] == np.arange(len(template))
    result = template.copy()
    result[consistent] = 0.5 * (template[consistent] + mirrored[partner[consistent]])
    # Unpaired points near the midline (nose tip, philtrum) are their own mirror image.
    midline = ~consistent & (np.abs(template[:, 0]) < 0.06)
    result[midline, 0] = 0.0
    logger.info("symmetrised %d of %d points", int(consistent.sum()), len(template))
    return result


def _loops(edges: frozenset[tuple[int, int]]) -> list[list[int]]:
    """Split an undirected edge set into ordered chains (closed loops repeat their first point)."""
    neighbours: dict[int, list[int]] = {}
    for a, b in sorted(edges):
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    unused = {tuple(sorted(e)) for e in edges}
    chains = []
    while unused:
        ends = [n for n, nb in sorted(neighbours.items()) if len(nb) == 1 and _has_edge(unused, n)]
        start = ends[0] if ends else min(n for e in unused for n in e)
        chain = [start]
        while True:
            step = [n for n in neighbours[chain[-1]] if tuple(sorted((chain[-1], n))) in unused]
            if not step:
                break
            unused.discard(tuple(sorted((chain[-1], step[0]))))
            chain.append(step[0])
        chains.append(chain)
    return chains


def _has_edge(edges: set, node: int) -> bool:
    return any(node in e for e in edges)


def build(shared: Path) -> dict:
    connections = require("mediapipe.python.solutions.face_mesh_connections", "face contours")
    faces, bodies = zip(*(_frames(shared / "landmarks" / name) for name in SOURCES), strict=True)
    face = np.concatenate(faces)
    body = np.concatenate(bodies)
    template = _symmetrise(np.median(_canonical(face), axis=0))
    eye_px = np.linalg.norm(face[:, LEFT_EYE_OUTER, :2] - face[:, RIGHT_EYE_OUTER, :2], axis=-1)
    shoulder_px = np.linalg.norm(body[:, 1] - body[:, 2], axis=-1)
    nose_height = 0.5 * (body[:, 1, 1] + body[:, 2, 1]) - body[:, 0, 1]
    contour_sets = {
        "face_oval": connections.FACEMESH_FACE_OVAL,
        "lips": connections.FACEMESH_LIPS,
        "left_eye": connections.FACEMESH_LEFT_EYE,
        "right_eye": connections.FACEMESH_RIGHT_EYE,
        "left_eyebrow": connections.FACEMESH_LEFT_EYEBROW,
        "right_eyebrow": connections.FACEMESH_RIGHT_EYEBROW,
        "nose": connections.FACEMESH_NOSE,
    }
    return {
        "about": (
            "Median MediaPipe face mesh of real signers (MIT-licensed recordings: "
            + ", ".join(SOURCES)
            + f"; {len(face)} frames), head frame: x right->left outer eye corner, y down, "
            "z towards the camera, unit = outer eye corner distance. Contours: MediaPipe "
            "face_mesh_connections (Apache-2.0). Built by edge_slr/data/synth/_build_face_asset.py."
        ),
        "template": np.round(template, 4).tolist(),
        "contours": {k: _loops(v) for k, v in contour_sets.items()},
        "shoulder_width_in_eye_distances": round(float(np.median(shoulder_px / eye_px)), 3),
        "nose_height_in_shoulder_widths": round(float(np.median(nose_height / shoulder_px)), 3),
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    shared = shared_data_dir()
    if shared is None:
        raise SystemExit("../shared/data is needed to rebuild the face template")
    asset = build(shared)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(asset, separators=(",", ":")) + "\n", encoding="utf-8")
    logger.info("wrote %s", OUT)


if __name__ == "__main__":
    main()
