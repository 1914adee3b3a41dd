"""OpenVINO INT8 Holistic models: NNCF post-training quantisation calibrated on real crops.

The calibration set is cut from real video frames. MediaPipe's own graph
(:class:`edge_slr.landmarks.extract.HolisticExtractor`, complexity 1, video mode) runs once over
each source to find the body, face and hands; each frame then gives every model the kind of
image it sees in Holistic::

    pose_detection  the whole frame letterboxed to 224 x 224, in [-1, 1]
    pose_landmark   a square around the 33 pose points (1.25 x their extent), 256, in [0, 1]
    hand_recrop     a square around each detected hand (2.6 x its extent: the loose ROI from
                    the pose's wrist points), 256, in [0, 1]
    hand_landmark   a square around each detected hand (2.0 x its extent), 224, in [0, 1]
    face_detection  a square around the face mesh (2.0 x its extent: the loose ROI from the
                    pose's face points), 128, in [-1, 1]
    face_landmark   a square around the face mesh (1.5 x its extent), 192, in [0, 1]

Squares are axis-aligned (Holistic rotates its ROIs; for activation statistics this does not
matter). NNCF's PERFORMANCE preset (symmetric INT8) quantises every layer but the regression
heads (:func:`head_layers`), which stay FP32. Every ``hold_out_every``-th frame (default 4th) is held out: those crops never enter
calibration and are used to verify the INT8 model against the FP32 IR (point error in
normalised crop units, flag agreement); the numbers go to the INT8 file's sidecar.

The landmarks of each source (the slow part) are cached next to the models
(``CACHE/calibration/<key>.npz``, keyed by the sources' names, sizes and mtimes), so building
again only decodes the frames and cuts the crops.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr.errors import InputError
from edge_slr.landmarks.holistic.models import (
    MODEL_ROLES,
    ROLE_SPECS,
    Artifact,
    compare_outputs,
    open_runtime,
    run_role,
    write_artifact_sidecar,
)
from edge_slr.landmarks.layout import PART_SLICES

logger = logging.getLogger(__name__)

# role -> (landmark parts it is cut around, square side / extent of the points)
CROP_RULES: dict[str, tuple[tuple[str, ...], float]] = {
    "pose_landmark": (("pose",), 1.25),
    "hand_recrop": (("left_hand", "right_hand"), 2.6),
    "hand_landmark": (("left_hand", "right_hand"), 2.0),
    "face_detection": (("face",), 2.0),
    "face_landmark": (("face",), 1.5),
}
# INT8 is accepted when the held-out crops agree with FP32 this well (normalised crop units).
MAX_MEAN_POINT_ERROR = 0.02
# Roles quantised with NNCF's accuracy control: (output whose mean must not drop, max drop).
# The pose model's presence flag is fragile in INT8: with plain quantisation its median on the
# webcam clip's crops fell from 1.0 to 0.86 and 12 % of the webcam frames lost the pose in the
# pipeline; accuracy control reverts the few layers responsible (2 of 105 here) to FP32.
ACCURACY_CONTROL: dict[str, tuple[str, float]] = {"pose_landmark": ("pose_flag", 0.01)}
MIN_FLAG_AGREEMENT = 0.95


@dataclass(frozen=True)
class CalibrationSet:
    """Real crops per role, uint8 (N, S, S, 3) RGB: ``calibration`` and ``held_out``."""

    calibration: dict[str, np.ndarray]
    held_out: dict[str, np.ndarray]
    sources: tuple[str, ...]
    frames: int

    def images(self, role: str, held_out: bool = False) -> list[np.ndarray]:
        """The role's crops as model inputs: (1, S, S, 3) float32 in the model's range."""
        crops = (self.held_out if held_out else self.calibration)[role]
        low, high = ROLE_SPECS[role].input_range
        return [(low + (high - low) * (c.astype(np.float32) / 255.0))[None] for c in crops]

    def describe(self) -> dict[str, Any]:
        return {
            "sources": list(self.sources),
            "frames": self.frames,
            "calibration_crops": {r: int(len(v)) for r, v in self.calibration.items()},
            "held_out_crops": {r: int(len(v)) for r, v in self.held_out.items()},
            "crops": "see edge_slr.landmarks.holistic.quantize",
        }


def calibration_set(
    sources: Sequence[str | Path],
    *,
    max_frames: int = 48,
    hold_out_every: int = 4,
    cache_dir: Path | None = None,
) -> CalibrationSet:
    """Crops for every role from real videos or frame folders (module doc).

    ``max_frames``: at most this many frames per source, evenly spaced. Needs the
    ``mediapipe`` extra the first time (the landmarks are cached in ``cache_dir``).
    """
    if isinstance(sources, (str, Path)):
        sources = [sources]
    if not sources:
        raise InputError("calibration needs at least one video file or frame folder")
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
        raise InputError(f"max_frames must be a positive int, got {max_frames!r}")
    if isinstance(hold_out_every, bool) or not isinstance(hold_out_every, int):
        raise InputError(f"hold_out_every must be an int >= 2, got {hold_out_every!r}")
    if hold_out_every < 2:
        raise InputError(f"hold_out_every must be an int >= 2, got {hold_out_every!r}")
    calib: dict[str, list[np.ndarray]] = {role: [] for role in MODEL_ROLES}
    held: dict[str, list[np.ndarray]] = {role: [] for role in MODEL_ROLES}
    total = 0
    for source in sources:
        frames, landmarks = _frames_and_landmarks(Path(source), max_frames, cache_dir)
        for index, (rgb, points) in enumerate(zip(frames, landmarks, strict=True)):
            target = held if index % hold_out_every == hold_out_every - 1 else calib
            for role, crops in crops_of_frame(rgb, points).items():
                target[role].extend(crops)
            total += 1
    empty = [role for role in MODEL_ROLES if not calib[role] or not held[role]]
    if empty:
        raise InputError(
            f"the calibration sources {[str(s) for s in sources]} gave no crops for {empty} "
            "(no such part was detected in the calibration or held-out frames): use videos "
            "that show a signer's body, face and hands"
        )
    return CalibrationSet(
        {r: np.stack(v) for r, v in calib.items()},
        {r: np.stack(v) for r, v in held.items()},
        tuple(Path(s).name for s in sources),
        total,
    )


def crops_of_frame(rgb: np.ndarray, points: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Each role's uint8 crops of one RGB frame, given its (543, 4) Holistic landmarks."""
    height, width = rgb.shape[:2]
    side = max(height, width)
    out: dict[str, list[np.ndarray]] = {
        "pose_detection": [_square(rgb, width / 2, height / 2, side, 224)]
    }
    for role, (parts, scale) in CROP_RULES.items():
        size = ROLE_SPECS[role].input_size
        out[role] = []
        for part in parts:
            block = points[PART_SLICES[part]]
            if not (block[:, 3] > 0).any():
                continue
            xy = block[:, :2] * np.array([width, height], np.float32)
            low, high = xy.min(axis=0), xy.max(axis=0)
            extent = float(max(high - low)) * scale
            if extent < 4:
                continue
            center = (low + high) / 2
            out[role].append(_square(rgb, float(center[0]), float(center[1]), extent, size))
    return out


def _square(rgb: np.ndarray, cx: float, cy: float, side: float, size: int) -> np.ndarray:
    """The axis-aligned square of ``side`` pixels around (cx, cy), resized to size x size;
    outside the frame is black (as MediaPipe's zero border)."""
    from edge_slr._optional import require

    cv2 = require("cv2", "cutting calibration crops")
    scale = size / side
    matrix = np.array(
        [[scale, 0, -(cx - side / 2) * scale], [0, scale, -(cy - side / 2) * scale]], np.float32
    )
    return cv2.warpAffine(
        rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def _frames_and_landmarks(
    source: Path, max_frames: int, cache_dir: Path | None
) -> tuple[list[np.ndarray], np.ndarray]:
    from edge_slr.landmarks.video import open_frames

    frames = list(open_frames(source).frames())
    if not frames:
        raise InputError(f"no frames decoded from {source}")
    cache = _landmark_cache(source, cache_dir)
    if cache is not None and cache.is_file():
        landmarks = np.load(cache)["landmarks"]
    else:
        landmarks = _extract(source)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(cache.stem + ".tmp.npz")
            np.savez_compressed(tmp, landmarks=landmarks, source=str(source))
            os.replace(tmp, cache)
    if len(landmarks) != len(frames):
        raise InputError(
            f"{source}: {len(frames)} frames but {len(landmarks)} landmark rows (changed?)"
        )
    keep = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).astype(int))
    return [frames[i] for i in keep], landmarks[keep]


def _extract(source: Path) -> np.ndarray:
    from edge_slr.landmarks.extract import HolisticExtractor, HolisticOptions

    logger.info("running MediaPipe Holistic on %s for calibration", source)
    options = HolisticOptions(running_mode="video", model_complexity=1)
    with HolisticExtractor.create_from_options(options) as extractor:
        return np.asarray(extractor.extract_video(source, on_no_person="keep").data)


def _landmark_cache(source: Path, cache_dir: Path | None) -> Path | None:
    if cache_dir is None:
        return None
    stat = source.stat()
    key = json.dumps([source.resolve().as_posix(), stat.st_size, stat.st_mtime_ns])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(cache_dir) / "calibration" / f"{source.stem}-{digest}.npz"


# -- quantisation --------------------------------------------------------------------------------


def build_int8(fp32: Artifact, path: Path, calibration: Any) -> Artifact:
    """NNCF INT8 of the FP32 IR ``fp32`` at ``path``, verified on held-out crops."""
    from edge_slr._optional import require
    from edge_slr.landmarks.holistic.models import OPENVINO_CONFIG, artifact_files

    role = fp32.role
    data = as_calibration(calibration, fp32.path.parent.parent)  # cache/<sha>/file -> cache
    ov = require("openvino", "quantising the Holistic models")
    nncf = require("nncf", "quantising the Holistic models")
    images = data.images(role)
    model = ov.Core().read_model(str(fp32.path))
    logger.info("quantising %s on %d real crops", role, len(images))
    heads = head_layers(model)
    options = {
        "subset_size": len(images),
        "preset": nncf.QuantizationPreset.PERFORMANCE,
        "ignored_scope": nncf.IgnoredScope(names=heads),
    }
    control = ACCURACY_CONTROL.get(role)
    if control is None:
        quantized = nncf.quantize(model, nncf.Dataset(images), **options)
    else:
        output, max_drop = control
        quantized = nncf.quantize_with_accuracy_control(
            model,
            nncf.Dataset(images),
            nncf.Dataset(images),
            validation_fn=_mean_output(output),
            max_drop=max_drop,
            drop_type=nncf.DropType.ABSOLUTE,
            **options,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.xml")
    ov.save_model(quantized, str(tmp), compress_to_fp16=False)
    for file, final in zip(artifact_files(tmp), artifact_files(path), strict=True):
        os.replace(file, final)
    verification = verify_int8(fp32, path, data.images(role, held_out=True))
    if not verification["passed"]:
        logger.warning("INT8 %s is less accurate than required: %s", role, verification)
    sidecar = write_artifact_sidecar(
        path,
        fp32.source,
        "openvino-int8",
        pruned=list(fp32.sidecar.get("pruned_outputs", [])),
        config=OPENVINO_CONFIG,
        verification=verification,
        calibration={
            **data.describe(),
            "kept_fp32": heads,
            "preset": "performance",
            "accuracy_control": None
            if control is None
            else {"metric": f"mean {control[0]} on the calibration crops", "max_drop": control[1]},
        },
    )
    return Artifact(role, "openvino-int8", path, fp32.source, sidecar)


_WEIGHTED = ("Convolution", "GroupConvolution", "MatMul")


def _mean_output(name: str) -> Any:
    """NNCF validation function: the mean of one output (a probability) over the data."""

    def validate(compiled: Any, data: Any) -> float:
        port = next(p for p in compiled.outputs if name in p.get_names())
        values = [float(np.ravel(compiled(item)[port])[0]) for item in data]
        return float(np.mean(np.clip(values, 0.0, 1.0)))

    return validate


def head_layers(model: Any) -> list[str]:
    """The last weighted layers before each output (the regression heads), kept in FP32.

    Quantising them costs most of the accuracy: on held-out real crops the hand recrop points
    moved 0.067 (normalised crop units) with every layer INT8 and 0.014 with the heads in FP32;
    hand landmarks 0.0072 -> 0.0058, face 0.0022 -> 0.0012, pose detection 0.014 -> 0.010.
    """
    names: set[str] = set()
    for result in model.get_results():
        stack, seen = [result.input_value(0).get_node()], set()
        while stack:
            node = stack.pop()
            if node.get_friendly_name() in seen:
                continue
            seen.add(node.get_friendly_name())
            if node.get_type_name() in _WEIGHTED:
                names.add(node.get_friendly_name())
                continue
            for port in node.inputs():
                source = port.get_source_output().get_node()
                if source.get_type_name() not in ("Constant", "Parameter"):
                    stack.append(source)
    return sorted(names)


def verify_int8(fp32: Artifact, path: Path, images: list[np.ndarray]) -> dict[str, Any]:
    """INT8 against the FP32 IR on held-out real crops (see models.compare_outputs)."""
    from edge_slr.landmarks.holistic.models import OPENVINO_CONFIG

    with open_runtime(fp32.path, "openvino", 1, config=OPENVINO_CONFIG) as reference:
        expected = run_role(reference, fp32.role, images, fp32.path)
    with open_runtime(path, "openvino", 1, config=OPENVINO_CONFIG) as runtime:
        got = run_role(runtime, fp32.role, images, path)
    result = compare_outputs(fp32.role, expected, got)
    mean, flags = result["mean_point_error"], result["flag_agreement"]
    passed = (mean is None or mean <= MAX_MEAN_POINT_ERROR) and (
        flags is None or flags >= MIN_FLAG_AGREEMENT
    )
    return {
        "reference": "openvino fp32 (pruned IR)",
        "images": "held-out real crops",
        **result,
        "tolerance": {
            "mean_point_error": MAX_MEAN_POINT_ERROR,
            "flag_agreement": MIN_FLAG_AGREEMENT,
        },
        "passed": bool(passed),
    }


def as_calibration(calibration: Any, cache_dir: Path) -> CalibrationSet:
    if isinstance(calibration, CalibrationSet):
        return calibration
    if calibration is None:
        raise InputError(
            "building the openvino-int8 Holistic models needs real calibration frames: pass "
            "calibration= video files or frame folders showing a signer (or a CalibrationSet) "
            "to build_holistic_models / load_holistic_models"
        )
    if isinstance(calibration, (str, Path)):
        calibration = [calibration]
    if not isinstance(calibration, Sequence) or not all(
        isinstance(c, (str, Path)) for c in calibration
    ):
        raise InputError(
            "calibration must be video files / frame folders or a CalibrationSet, got "
            f"{type(calibration).__name__}"
        )
    return calibration_set(calibration, cache_dir=cache_dir)
