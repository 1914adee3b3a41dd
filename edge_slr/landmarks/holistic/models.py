"""MediaPipe Holistic's own models on edge-slr's runtimes: find, validate, build, cache, load.

The six ``.tflite`` files of the mediapipe 0.10.21 wheel (``mediapipe/modules/...``) that
Holistic runs at model complexity 1, one Runtime each, with their outputs under stable names::

    with load_holistic_models("openvino-int8", threads=1, calibration=videos) as models:
        out = models.run("hand_landmark", crop[None])   # (1, 224, 224, 3) float32 in [0, 1]
        out["landmarks"], out["hand_flag"], out["handedness"]

Roles (:data:`MODEL_ROLES`, checked against ``Interpreter.get_input_details/get_output_details``
of each file and the MediaPipe graphs; every input is ``(1, S, S, 3)`` float32 RGB, NHWC)::

    role            file (in mediapipe/modules/)                 S, range     outputs: shape
    pose_detection  pose_detection/pose_detection.tflite         224, [-1, 1]  boxes (1, 2254, 12)
                                                                               scores (1, 2254, 1)
    pose_landmark   pose_landmark/pose_landmark_full.tflite      256, [0, 1]   landmarks (1, 195)
                                                                               pose_flag (1, 1)
                                                                               heatmap (1, 64, 64, 39)
    hand_recrop     holistic_landmark/hand_recrop.tflite         256, [0, 1]   landmarks (1, 4)
    hand_landmark   hand_landmark/hand_landmark_full.tflite      224, [0, 1]   landmarks (1, 63)
                                                                               hand_flag (1, 1)
                                                                               handedness (1, 1)
    face_detection  face_detection/face_detection_short_range    128, [-1, 1]  boxes (1, 896, 16)
                    .tflite                                                    scores (1, 896, 1)
    face_landmark   face_landmark/face_landmark.tflite           192, [0, 1]   landmarks (1, 1404)
                                                                               face_flag (1, 1)

What the values are (the models' raw outputs; no engine applies any activation here):

- detection ``boxes``: per anchor, in input pixels (224 / 128) relative to the anchor: dx, dy,
  w, h, then keypoints (x, y) (4 for pose, 6 for face); ``scores``: logits (apply a sigmoid).
- pose ``landmarks``: 39 x (x, y, z, visibility, presence) in crop pixels (256); visibility and
  presence are logits. ``pose_flag`` is already a probability. ``heatmap``: logits, the graph
  refines the points with it (RefineLandmarksFromHeatmap, kernel 7); ``pose_heatmap=False``
  prunes it (about 15 % faster pose model, unrefined points).
- hand_recrop ``landmarks``: 2 points (x, y) in crop pixels (256). The file's own output is
  (1, 1, 1, 4): reshaped here.
- hand ``landmarks``: 21 x (x, y, z) in crop pixels (224); ``hand_flag`` and ``handedness``
  are probabilities (MediaPipe's label map is "Left, Right").
- face ``landmarks``: 468 x (x, y, z) in crop pixels (192); ``face_flag`` is a LOGIT (the graph
  applies a sigmoid; the file's outputs are (1, 1, 1, 1404) and (1, 1, 1, 1): reshaped here).

Outputs Holistic does not use are pruned on the engines that allow it (OpenVINO, ONNX): pose
landmark's segmentation (1, 256, 256, 1) and world landmarks (1, 117), hand world landmarks
(1, 63); LiteRT computes them and they are dropped.

Engines (:data:`ENGINES`): ``litert`` runs the ``.tflite`` files as they are; ``openvino``
converts them to pruned FP32 IR (``INFERENCE_PRECISION_HINT`` f32, recorded in the sidecar);
``openvino-int8`` quantises that IR with NNCF on real crops (:mod:`.quantize`);
``onnxruntime`` runs ONNX files made by tf2onnx (:mod:`.onnx_export`; building them needs the
``convert`` extra), except pose detection, which tf2onnx cannot convert: that one runs on LiteRT
(:data:`ONNX_UNSUPPORTED`, recorded in ``info``). Built files go to the cache
(``cache_dir=``, else ``$EDGE_SLR_CACHE/holistic`` or ``~/.cache/edge-slr/holistic``), in
``<source sha256[:16]>/<role>-<engine>.<ext>``, each with a JSON sidecar beside it (source name
and sha256, engine, builder versions, precision, pruned outputs, input spec, calibration,
verification, edge-slr version, every file's size and sha256); an artifact whose sidecar does not
match (other source, other builder version, truncated or changed file) is rebuilt.

The model files are found in ``model_dir=`` (a folder holding the six files, flat or in the
wheel's ``modules/`` layout) or in the installed mediapipe wheel, located without importing
mediapipe, so a device install with only the ``openvino`` or ``tflite`` extra works from a
copied model folder. Each file must be a TFLite flatbuffer whose sha256 is that of the 0.10.21
wheel; another version is refused (``allow_unknown_models=True`` proceeds with a warning).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr.errors import FormatError, InputError, MissingDependencyError
from edge_slr.sidecar import file_sha256

logger = logging.getLogger(__name__)

ENGINES = ("openvino", "openvino-int8", "litert", "onnxruntime")
MODEL_ROLES = (
    "pose_detection",
    "pose_landmark",
    "hand_recrop",
    "hand_landmark",
    "face_detection",
    "face_landmark",
)
# Outputs the graph uses that a caller may drop for speed (load_holistic_models(pose_heatmap=)).
OPTIONAL_OUTPUTS = {"pose_landmark": ("heatmap",)}
MEDIAPIPE_VERSION = "0.10.21"
# The roles openvino-int8 quantises by default: those where INT8 is both faster and within the
# issue's error bounds on the 2-core EPYC (AVX2, no VNNI), measured one thread each: hand
# landmark 8.2 ms INT8 vs 10.5 FP32; pose landmark 9.8 vs 12.3 but its points drift (pose error
# 0.066 on the webcam clip against 0.0096 FP32), so it stays FP32; hand recrop (1.5 vs 0.8 ms),
# face landmark (3.3 vs 1.6) and face detection (1.8 vs 1.4) are slower in INT8 without VNNI.
# On CPUs with VNNI/AMX more roles gain: pass int8_roles=MODEL_ROLES there.
DEFAULT_INT8_ROLES = ("hand_landmark",)


@dataclass(frozen=True)
class RoleSpec:
    """One Holistic model file: where it lives, its input, and its outputs in file order.

    ``outputs`` are (stable name, shape) in the order of the file's outputs; ``used`` are the
    stable names Holistic reads (the rest is pruned where the engine allows).
    """

    role: str
    path: str  # relative to mediapipe/modules
    sha256: str
    size: int
    input_size: int
    input_range: tuple[float, float]
    outputs: tuple[tuple[str, tuple[int, ...]], ...]
    used: tuple[str, ...]

    @property
    def file_name(self) -> str:
        return Path(self.path).name

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, self.input_size, self.input_size, 3)

    def output_shape(self, name: str) -> tuple[int, ...]:
        return dict(self.outputs)[name]


ROLE_SPECS: dict[str, RoleSpec] = {
    spec.role: spec
    for spec in (
        RoleSpec(
            "pose_detection",
            "pose_detection/pose_detection.tflite",
            "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
            2959046,
            224,
            (-1.0, 1.0),
            (("boxes", (1, 2254, 12)), ("scores", (1, 2254, 1))),
            ("boxes", "scores"),
        ),
        RoleSpec(
            "pose_landmark",
            "pose_landmark/pose_landmark_full.tflite",
            "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
            6440512,
            256,
            (0.0, 1.0),
            (
                ("landmarks", (1, 195)),
                ("pose_flag", (1, 1)),
                ("segmentation", (1, 256, 256, 1)),
                ("heatmap", (1, 64, 64, 39)),
                ("world_landmarks", (1, 117)),
            ),
            ("landmarks", "pose_flag", "heatmap"),
        ),
        RoleSpec(
            "hand_recrop",
            "holistic_landmark/hand_recrop.tflite",
            "67d996ce96f9d36fe17d2693022c6da93168026ab2f028f9e2365398d8ac7d5d",
            123792,
            256,
            (0.0, 1.0),
            (("landmarks", (1, 4)),),
            ("landmarks",),
        ),
        RoleSpec(
            "hand_landmark",
            "hand_landmark/hand_landmark_full.tflite",
            "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3",
            5478917,
            224,
            (0.0, 1.0),
            (
                ("landmarks", (1, 63)),
                ("hand_flag", (1, 1)),
                ("handedness", (1, 1)),
                ("world_landmarks", (1, 63)),
            ),
            ("landmarks", "hand_flag", "handedness"),
        ),
        RoleSpec(
            "face_detection",
            "face_detection/face_detection_short_range.tflite",
            "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
            229714,
            128,
            (-1.0, 1.0),
            (("boxes", (1, 896, 16)), ("scores", (1, 896, 1))),
            ("boxes", "scores"),
        ),
        RoleSpec(
            "face_landmark",
            "face_landmark/face_landmark.tflite",
            "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
            1242398,
            192,
            (0.0, 1.0),
            (("landmarks", (1, 1404)), ("face_flag", (1, 1))),
            ("landmarks", "face_flag"),
        ),
    )
}


# -- finding and validating the model files --------------------------------------------------------


# The wheel's hand_landmark_lite.tflite: the same input and outputs as the full hand model at
# about half its cost (5.8 ms vs 10.3 ms a call on LiteRT, busy 2-core EPYC), less accurate.
# HolisticOptions(hand_model="lite"); MediaPipe's own Holistic graph always runs the full model.
HAND_MODELS = ("full", "lite")
HAND_LITE_SPEC = replace(
    ROLE_SPECS["hand_landmark"],
    path="hand_landmark/hand_landmark_lite.tflite",
    sha256="048edd3645c9bf7397d19a9f6e3a42957d6e414c9bea6598030a2e9b624156e6",
    size=2071597,
)


def check_hand_model(value: object) -> str:
    if value not in HAND_MODELS:
        raise InputError(f"hand_model must be one of {HAND_MODELS}, got {value!r}")
    return str(value)


@dataclass(frozen=True)
class ModelFile:
    """A validated source ``.tflite`` file of one role."""

    role: str
    path: Path
    sha256: str
    known: bool  # the sha256 is the mediapipe 0.10.21 file's
    used: tuple[str, ...] = ()  # the outputs to keep (default: the role's ``used``)

    def __post_init__(self) -> None:
        if not self.used:
            object.__setattr__(self, "used", ROLE_SPECS[self.role].used)

    @property
    def variant(self) -> str:
        """ "" or "-no<output>" for each optional output dropped (part of the artifact name)."""
        dropped = [n for n in OPTIONAL_OUTPUTS.get(self.role, ()) if n not in self.used]
        return "".join(f"-no{name}" for name in dropped)

    @property
    def pruned(self) -> list[str]:
        return [name for name, _ in ROLE_SPECS[self.role].outputs if name not in self.used]

    def info(self) -> dict[str, Any]:
        return {"file": self.path.name, "sha256": self.sha256, "known": self.known}


def wheel_model_dir() -> Path | None:
    """``mediapipe/modules`` of the installed wheel, found without importing mediapipe."""
    try:
        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "modules"
        if folder.is_dir():
            return folder
    return None


def find_model_files(
    model_dir: str | Path | None = None,
    *,
    allow_unknown_models: bool = False,
    pose_heatmap: bool = True,
    hand_model: str = "full",
) -> dict[str, ModelFile]:
    """The Holistic model files, validated, by role (:data:`MODEL_ROLES`); ``hand_model``
    "lite" takes ``hand_landmark_lite.tflite`` for the hand_landmark role (:data:`HAND_MODELS`).

    ``model_dir``: a folder with the files flat (``pose_detection.tflite``, ...) or in the wheel's
    layout (``pose_detection/pose_detection.tflite``, ...); None: the installed mediapipe wheel.
    """
    if model_dir is None:
        folder = wheel_model_dir()
        if folder is None:
            raise MissingDependencyError(
                "the Holistic model files come from the mediapipe wheel, which is not installed: "
                "install it (pip install 'edge-slr[mediapipe]' -c constraints.txt) or pass "
                "model_dir= a folder holding the five .tflite files "
                f"({', '.join(s.file_name for s in ROLE_SPECS.values())})"
            )
    else:
        folder = Path(model_dir)
        if not folder.is_dir():
            raise InputError(f"model_dir {str(model_dir)!r} is not a folder")
    specs = dict(ROLE_SPECS)
    if check_hand_model(hand_model) == "lite":
        specs["hand_landmark"] = HAND_LITE_SPEC
    files = {
        role: validate_model_file(_locate(folder, spec), spec, allow_unknown_models)
        for role, spec in specs.items()
    }
    if not pose_heatmap:
        pose = files["pose_landmark"]
        used = tuple(n for n in pose.used if n != "heatmap")
        files["pose_landmark"] = ModelFile(pose.role, pose.path, pose.sha256, pose.known, used)
    return files


def _locate(folder: Path, spec: RoleSpec) -> Path:
    for candidate in (folder / spec.path, folder / spec.file_name):
        if candidate.is_file():
            return candidate
    raise FormatError(
        folder / spec.file_name,
        f"the {spec.role} model is missing (expected {spec.file_name} or {spec.path} here, "
        f"the file of the mediapipe {MEDIAPIPE_VERSION} wheel)",
    )


def validate_model_file(path: Path, spec: RoleSpec, allow_unknown: bool = False) -> ModelFile:
    """FormatError for a file that is not a TFLite model, truncated, or of another version."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise FormatError(
            path, f"not a TFLite model (no TFL3 identifier in its header, {len(head)}+ bytes)"
        )
    size = path.stat().st_size
    digest = file_sha256(path)
    known = digest == spec.sha256
    if not known:
        problem = (
            f"sha256 {digest} ({size} bytes) is not the mediapipe {MEDIAPIPE_VERSION} "
            f"{spec.file_name} (sha256 {spec.sha256}, {spec.size} bytes)"
        )
        if size < spec.size:
            problem += "; the file looks truncated"
        if not allow_unknown:
            raise FormatError(path, problem + "; pass allow_unknown_models=True to try it anyway")
        logger.warning("%s: %s; using it anyway (allow_unknown_models=True)", path, problem)
    return ModelFile(spec.role, path, digest, known)


# -- the loaded set ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HolisticModelSet:
    """One Runtime per role; :meth:`run` returns the stable output names (module doc).

    ``info`` per role: source file, sha256, engine, precision, artifact and verification.
    """

    engine: str
    runtimes: Mapping[str, Any]  # role -> edge_slr.runtimes.Runtime
    info: dict[str, Any] = field(default_factory=dict)
    # role -> {engine output name: stable name}
    output_names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # role -> the stable outputs run() returns (default: the role's ``used``)
    used: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # role -> how its runtime was opened (file, runtime name, threads, options): replicate()
    opened: Mapping[str, tuple[Path, str, int | None, dict[str, Any]]] = field(default_factory=dict)

    def run(self, role: str, image: np.ndarray) -> dict[str, np.ndarray]:
        """Run ``role`` on ``image`` ((1, S, S, 3) float32 in the model's range, module doc)."""
        spec = ROLE_SPECS.get(role)
        if spec is None or role not in self.runtimes:
            raise InputError(f"unknown Holistic model role {role!r}; expected one of {MODEL_ROLES}")
        if not isinstance(image, np.ndarray) or image.shape != spec.input_shape:
            got = image.shape if isinstance(image, np.ndarray) else type(image).__name__
            raise InputError(
                f"the {role} model takes a {spec.input_shape} float32 image in "
                f"{list(spec.input_range)}, got {got}"
            )
        raw = self.runtimes[role].run_all(image)
        names = self.output_names.get(role, {})
        used = self.used.get(role, spec.used)
        out = {}
        for engine_name, value in raw.items():
            stable = names.get(engine_name, engine_name)
            if stable in used:
                out[stable] = value.reshape(spec.output_shape(stable))
        return out

    def replicate(self, roles: tuple[str, ...]) -> HolisticModelSet:
        """A set of ``roles`` on fresh runtimes (same files, engine settings and threads).

        A runtime serves one call at a time: two threads that run the same role at once (both
        hands of a frame) each need their own. The caller closes the replica."""
        missing = [role for role in roles if role not in self.opened]
        if missing or not roles:
            raise InputError(
                f"cannot replicate roles {list(roles)}: loaded here {list(self.opened)}"
            )
        runtimes: dict[str, Any] = {}
        try:
            for role in roles:
                path, runtime_name, threads, options = self.opened[role]
                runtimes[role] = open_runtime(path, runtime_name, threads, **options)
        except BaseException:
            for runtime in runtimes.values():
                runtime.close()
            raise
        keep = {role: self.output_names[role] for role in roles if role in self.output_names}
        used = {role: self.used[role] for role in roles if role in self.used}
        opened = {role: self.opened[role] for role in roles}
        info = {role: self.info[role] for role in roles if role in self.info}
        return HolisticModelSet(self.engine, runtimes, info, keep, used, opened)

    def close(self) -> None:
        for runtime in self.runtimes.values():
            runtime.close()

    def __enter__(self) -> HolisticModelSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- loading and building ---------------------------------------------------------------------------

# engine -> (runtime name, precision, artifact suffix)
_ENGINE_RUNTIME = {
    "litert": ("litert", "fp32", ".tflite"),
    "openvino": ("openvino", "fp32", ".xml"),
    "openvino-int8": ("openvino", "int8", ".xml"),
    "onnxruntime": ("onnxruntime", "fp32", ".onnx"),
}
# What the builders install (distribution names): an artifact built by other versions is rebuilt.
_BUILDERS = {"openvino": ("openvino",), "openvino-int8": ("openvino", "nncf"), "onnxruntime": ()}
# The ONNX file runs on any ONNX Runtime; the converter's version only matters where it is
# installed (a device without tf2onnx keeps using the file it was given).
_OPTIONAL_BUILDERS = {"onnxruntime": ("tf2onnx",)}
# Roles the onnxruntime set runs on LiteRT instead (said in its info and logged).
ONNX_UNSUPPORTED = {
    "pose_detection": "tf2onnx 1.17 cannot read its sparse FP16 weights (DENSIFY ops): "
    "'cannot reshape array of size 96 into shape (16,1,1,24)'"
}
OPENVINO_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}  # bf16 is not verified here
# Load-time only (not part of what was verified): OpenVINO pins the thread of every compiled
# model with INFERENCE_NUM_THREADS=1 to the same first core (seen in /proc on the 2-core EPYC:
# Cpus_allowed_list 0 for both hands' models), so models run from different threads, or two
# extractors, queue on one core while the other idles. Unpinned, the OS spreads them.
OPENVINO_RUN_CONFIG = {"ENABLE_CPU_PINNING": "NO"}
# How each engine's files are made: a cached file of another recipe is rebuilt.
RECIPES = {
    "openvino": "ov.convert_model, pruned outputs, FP32 IR (1)",
    "openvino-int8": "nncf PERFORMANCE on real crops, heads FP32, pose flag accuracy control (2)",
    "onnxruntime": "tf2onnx.from_tflite opset 17, pruned outputs (1)",
}
SIDECAR_FORMAT = "edge-slr-holistic-model"
SIDECAR_VERSION = 1


def load_holistic_models(
    engine: str,
    *,
    model_dir: Path | None = None,
    cache_dir: Path | None = None,
    threads: int | None = 1,
    allow_unknown_models: bool = False,
    calibration: Any = None,
    pose_heatmap: bool = True,
    int8_roles: tuple[str, ...] = DEFAULT_INT8_ROLES,
    hand_model: str = "full",
) -> HolisticModelSet:
    """Load the five Holistic models on ``engine`` (one of :data:`ENGINES`).

    Engines other than ``litert`` run the artifacts in the cache, built first when missing or
    stale (:func:`build_holistic_models`; ``openvino-int8`` needs ``calibration`` for that, see
    :func:`edge_slr.landmarks.holistic.quantize.calibration_set`). ``pose_heatmap=False`` drops
    the pose model's heatmap (the graph refines pose points with it; without it the pose model
    runs about 15 % faster and the points are unrefined). ``int8_roles`` (``openvino-int8``):
    the roles quantised (:data:`DEFAULT_INT8_ROLES`); the others run their FP32 IR (recorded as
    a fallback in ``info``). ``hand_model``: "full" (the graph's) or "lite" (:data:`HAND_MODELS`).
    """
    _check_engine(engine)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)):
        raise InputError(f"threads must be a positive int or None, got {threads!r}")
    artifacts = build_holistic_models(
        engine,
        model_dir=model_dir,
        cache_dir=cache_dir,
        calibration=calibration,
        allow_unknown_models=allow_unknown_models,
        pose_heatmap=pose_heatmap,
        int8_roles=int8_roles,
        hand_model=hand_model,
    )
    runtimes: dict[str, Any] = {}
    names: dict[str, dict[str, str]] = {}
    opened: dict[str, tuple[Path, str, int | None, dict[str, Any]]] = {}
    try:
        for role, artifact in artifacts.items():
            runtime_name = _ENGINE_RUNTIME[artifact.engine][0]  # a fallback may differ
            options = {}
            if runtime_name == "openvino":
                options = {"config": {**artifact.config, **OPENVINO_RUN_CONFIG}}
            runtime = open_runtime(artifact.path, runtime_name, threads, **options)
            runtimes[role] = runtime
            opened[role] = (artifact.path, runtime_name, threads, options)
            names[role] = _map_outputs(role, [s.name for s in runtime.outputs], artifact.path)
    except BaseException:
        for runtime in runtimes.values():
            runtime.close()
        raise
    info = {role: artifact.info() for role, artifact in artifacts.items()}
    used = {role: artifact.source.used for role, artifact in artifacts.items()}
    return HolisticModelSet(engine, runtimes, info, names, used, opened)


@dataclass(frozen=True)
class Artifact:
    """A model file an engine runs, with its sidecar's content (the source file for litert)."""

    role: str
    engine: str
    path: Path
    source: ModelFile
    sidecar: dict[str, Any]

    @property
    def config(self) -> dict[str, str]:
        return dict(self.sidecar.get("config") or {})

    def info(self) -> dict[str, Any]:
        return {
            **self.source.info(),
            "engine": self.engine,
            "artifact": str(self.path),
            "precision": self.sidecar.get("precision", _ENGINE_RUNTIME[self.engine][1]),
            "fallback": self.sidecar.get("fallback"),
            "pruned_outputs": self.sidecar.get("pruned_outputs", []),
            "verification": self.sidecar.get("verification", {}),
        }


def build_holistic_models(
    engine: str,
    *,
    model_dir: Path | None = None,
    cache_dir: Path | None = None,
    calibration: Any = None,
    roles: tuple[str, ...] = MODEL_ROLES,
    rebuild: bool = False,
    allow_unknown_models: bool = False,
    pose_heatmap: bool = True,
    int8_roles: tuple[str, ...] = DEFAULT_INT8_ROLES,
    hand_model: str = "full",
) -> dict[str, Artifact]:
    """Build (or find in the cache) the ``engine`` files of ``roles``; returns them by role.

    The prebuild step for devices (``edge-slr`` would call it from a command such as
    ``edge-slr extract --engine openvino-int8 --calibration VIDEO...``). ``calibration``
    (``openvino-int8`` only): video files / frame folders, or a CalibrationSet, used only when the
    INT8 files must be built. ``rebuild`` rebuilds even valid cached files. ``int8_roles``
    (``openvino-int8``): the roles to quantise; the others get their FP32 IR.
    """
    _check_engine(engine)
    unknown = [role for role in roles if role not in ROLE_SPECS]
    if unknown or not roles:
        raise InputError(f"roles must be among {MODEL_ROLES}, got {list(roles)}")
    sources = find_model_files(
        model_dir,
        allow_unknown_models=allow_unknown_models,
        pose_heatmap=pose_heatmap,
        hand_model=hand_model,
    )
    if engine == "litert":
        return {role: _litert_artifact(sources[role]) for role in roles}
    fallback: dict[str, Artifact] = {}
    if engine == "onnxruntime":
        fallback = {r: _onnx_fallback(sources[r]) for r in roles if r in ONNX_UNSUPPORTED}
    elif engine == "openvino-int8":
        if any(r not in ROLE_SPECS for r in int8_roles):
            raise InputError(f"int8_roles must be among {MODEL_ROLES}, got {list(int8_roles)}")
        fp32_roles = tuple(r for r in roles if r not in int8_roles)
        if fp32_roles:
            fallback = build_holistic_models(
                "openvino",
                cache_dir=cache_dir,
                roles=fp32_roles,
                model_dir=_model_dir_of(sources),
                allow_unknown_models=True,  # the sources passed the check above
                pose_heatmap=pose_heatmap,
                hand_model=hand_model,
            )
            for artifact in fallback.values():
                artifact.sidecar["fallback"] = {"engine": "openvino", "reason": "not in int8_roles"}
    roles = tuple(r for r in roles if r not in fallback)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    artifacts: dict[str, Artifact] = {}
    missing = []
    for role in roles:
        path = artifact_path(cache, sources[role], engine)
        sidecar = None if rebuild else read_artifact_sidecar(path, sources[role], engine)
        if sidecar is None:
            missing.append(role)
        else:
            artifacts[role] = Artifact(role, engine, path, sources[role], sidecar)
    if missing:
        built = _build(engine, {r: sources[r] for r in missing}, cache, calibration)
        artifacts.update(built)
    artifacts.update(fallback)
    return {role: artifacts[role] for role in MODEL_ROLES if role in artifacts}


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise InputError(f"unknown Holistic engine {engine!r}; expected one of {ENGINES}")


def _onnx_fallback(source: ModelFile) -> Artifact:
    """The .tflite on LiteRT for a role tf2onnx cannot convert (ONNX_UNSUPPORTED)."""
    from edge_slr._optional import require

    reason = ONNX_UNSUPPORTED[source.role]
    require("ai_edge_litert", f"the {source.role} model of the onnxruntime set ({reason})")
    artifact = _litert_artifact(source)
    artifact.sidecar["fallback"] = {"engine": "litert", "reason": reason}
    return artifact


def _litert_artifact(source: ModelFile) -> Artifact:
    spec = ROLE_SPECS[source.role]
    sidecar = {"precision": "fp32", "pruned_outputs": [], "input": _input_spec(spec)}
    return Artifact(source.role, "litert", source.path, source, sidecar)


def _build(
    engine: str, sources: dict[str, ModelFile], cache: Path, calibration: Any
) -> dict[str, Artifact]:
    if engine == "openvino-int8":
        from edge_slr.landmarks.holistic.quantize import as_calibration, build_int8

        calibration = as_calibration(calibration, cache)  # once for every role
        fp32 = build_holistic_models(
            "openvino",
            cache_dir=cache,
            roles=tuple(sources),
            model_dir=_model_dir_of(sources),
            allow_unknown_models=True,  # the sources passed the check above
            pose_heatmap=not any(s.variant for s in sources.values()),
        )
        return {
            role: build_int8(fp32[role], artifact_path(cache, sources[role], engine), calibration)
            for role in sources
        }
    if engine == "onnxruntime":
        from edge_slr.landmarks.holistic.onnx_export import build_onnx

        return {
            role: build_onnx(source, artifact_path(cache, source, engine))
            for role, source in sources.items()
        }
    return {
        role: build_openvino(source, artifact_path(cache, source, engine))
        for role, source in sources.items()
    }


def _model_dir_of(sources: dict[str, ModelFile]) -> Path | None:
    """The folder the sources were found in, so a nested build finds the same files."""
    source = next(iter(sources.values()))
    spec = ROLE_SPECS[source.role]
    if source.path.parent.name == Path(spec.path).parent.name:
        return source.path.parent.parent
    return source.path.parent


# -- the cache and its sidecars ---------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$EDGE_SLR_CACHE/holistic`` or ``~/.cache/edge-slr/holistic``."""
    root = os.environ.get("EDGE_SLR_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "edge-slr"
    return base / "holistic"


def artifact_path(cache: Path, source: ModelFile, engine: str) -> Path:
    """``CACHE/<source sha256[:16]>/<role>-<engine>[<variant>]<suffix>``."""
    suffix = _ENGINE_RUNTIME[engine][2]
    return cache / source.sha256[:16] / f"{source.role}-{engine}{source.variant}{suffix}"


def sidecar_of(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def artifact_files(path: Path) -> list[Path]:
    """The files that make up an artifact (an IR's .xml and .bin)."""
    return [path, path.with_suffix(".bin")] if path.suffix == ".xml" else [path]


def builder_versions(engine: str) -> dict[str, str]:
    """Versions of the libraries that build ``engine`` files (installed ones only)."""
    from importlib import metadata

    versions = {}
    for dist in _BUILDERS.get(engine, ()) + _OPTIONAL_BUILDERS.get(engine, ()):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            if dist in _BUILDERS.get(engine, ()):
                versions[dist] = "not installed"
    return versions


def write_artifact_sidecar(
    path: Path,
    source: ModelFile,
    engine: str,
    *,
    pruned: list[str],
    config: dict[str, str] | None = None,
    verification: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
    extra_versions: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Describe a built artifact beside it (atomically); returns the sidecar's content."""
    import json

    from edge_slr import __version__
    from edge_slr.sidecar import FileInfo

    spec = ROLE_SPECS[source.role]
    data = {
        "format": SIDECAR_FORMAT,
        "format_version": SIDECAR_VERSION,
        "role": source.role,
        "engine": engine,
        "precision": _ENGINE_RUNTIME[engine][1],
        "recipe": RECIPES[engine],
        "source": {**source.info(), "mediapipe_version": MEDIAPIPE_VERSION},
        "files": [vars(FileInfo.of(p)) for p in artifact_files(path)],
        "input": _input_spec(spec),
        "outputs": {name: list(spec.output_shape(name)) for name in source.used},
        "pruned_outputs": pruned,
        "config": config or {},
        "versions": {
            **builder_versions(engine),
            **(extra_versions or {}),
            "edge_slr": __version__,
        },
        "calibration": calibration,
        "verification": verification or {},
    }
    target = sidecar_of(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_json_default) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return data


def read_artifact_sidecar(path: Path, source: ModelFile, engine: str) -> dict[str, Any] | None:
    """The sidecar of a cached artifact when it is still valid, else None (rebuild; the reason is
    logged): missing or unreadable, another source sha256 or builder version, or a file whose
    size or sha256 changed (a truncated copy)."""
    import json

    sidecar = sidecar_of(path)
    if not sidecar.is_file():
        return None
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
        problem = _sidecar_problem(data, path, source, engine)
    except (OSError, ValueError, KeyError, TypeError) as err:
        problem = f"unreadable sidecar ({err})"
    if problem:
        logger.info("rebuilding %s: %s", path, problem)
        return None
    return data


def _sidecar_problem(data: Any, path: Path, source: ModelFile, engine: str) -> str | None:
    from edge_slr.sidecar import file_sha256

    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        return "not an edge-slr Holistic model sidecar"
    if data.get("format_version") != SIDECAR_VERSION or data.get("engine") != engine:
        return f"format {data.get('format_version')} / engine {data.get('engine')!r} differ"
    if data["source"]["sha256"] != source.sha256:
        return f"built from another source file (sha256 {data['source']['sha256']})"
    if data.get("recipe") != RECIPES[engine]:
        return f"made by recipe {data.get('recipe')!r}, now {RECIPES[engine]!r}"
    if data.get("pruned_outputs") != source.pruned:
        return f"pruned {data.get('pruned_outputs')}, wanted {source.pruned}"
    recorded = data.get("versions", {})
    for dist, version in builder_versions(engine).items():
        if dist in recorded and recorded[dist] != version:
            return f"built with {dist} {recorded[dist]}, {version} is installed"
    names = [p.name for p in artifact_files(path)]
    files = {f["name"]: f for f in data["files"]}
    for name in names:
        file = path.parent / name
        if name not in files or not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != files[name]["size"]:
            return f"{name} has {file.stat().st_size} bytes, the sidecar says {files[name]['size']}"
        if file_sha256(file) != files[name]["sha256"]:
            return f"{name} changed since it was built (sha256)"
    return None


def _input_spec(spec: RoleSpec) -> dict[str, Any]:
    return {
        "shape": list(spec.input_shape),
        "dtype": "float32",
        "layout": "NHWC RGB",
        "range": list(spec.input_range),
    }


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a sidecar")


# -- OpenVINO FP32 ----------------------------------------------------------------------------------


def convert_pruned_openvino(source: ModelFile) -> tuple[Any, list[str]]:
    """``ov.convert_model`` of the .tflite, outputs Holistic does not use removed and the kept
    ones renamed to the stable names; returns (ov.Model, pruned stable names)."""
    from edge_slr._optional import require

    ov = require("openvino", "converting the Holistic models to OpenVINO IR")
    spec = ROLE_SPECS[source.role]
    model = ov.convert_model(str(source.path))
    outputs = list(model.outputs)
    if len(outputs) != len(spec.outputs):
        names = [sorted(o.get_names()) for o in outputs]
        raise FormatError(
            source.path, f"has outputs {names}; expected {len(spec.outputs)} ({spec.outputs})"
        )
    kept = []
    for port, (name, shape) in zip(outputs, spec.outputs, strict=True):
        got = tuple(port.get_partial_shape().to_shape())
        if int(np.prod(got)) != int(np.prod(shape)):
            raise FormatError(source.path, f"output {name} has shape {got}, expected {shape}")
        if name in source.used:
            port.get_tensor().set_names({name})
            kept.append(port)
    pruned = source.pruned
    return ov.Model(kept, model.get_parameters(), source.role), pruned


def build_openvino(source: ModelFile, path: Path) -> Artifact:
    """The pruned FP32 IR of ``source`` at ``path``, verified against LiteRT, with its sidecar."""
    from edge_slr._optional import require

    ov = require("openvino", "converting the Holistic models to OpenVINO IR")
    model, pruned = convert_pruned_openvino(source)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.xml")
    ov.save_model(model, str(tmp), compress_to_fp16=False)
    for file, final in zip(artifact_files(tmp), artifact_files(path), strict=True):
        os.replace(file, final)
    logger.info("built %s (pruned %s)", path, pruned or "nothing")
    verification = verify_against_litert(source, path, "openvino", OPENVINO_CONFIG)
    sidecar = write_artifact_sidecar(
        path,
        source,
        "openvino",
        pruned=pruned,
        config=OPENVINO_CONFIG,
        verification=verification,
    )
    return Artifact(source.role, "openvino", path, source, sidecar)


# -- comparing outputs ----------------------------------------------------------------------------

# role -> (points output, values per point, flag output or None, flag is a logit)
_POINTS = {
    "pose_detection": ("boxes", 12, "scores", True),
    "face_detection": ("boxes", 16, "scores", True),
    "pose_landmark": ("landmarks", 5, "pose_flag", False),
    "hand_recrop": ("landmarks", 2, None, False),
    "hand_landmark": ("landmarks", 3, "hand_flag", False),
    "face_landmark": ("landmarks", 3, "face_flag", True),
}


def probe_images(role: str, count: int = 3, seed: int = 0) -> list[np.ndarray]:
    """Deterministic smooth test images in the role's input range (for engine agreement checks
    where no real crops are at hand; real crops are better and used by the INT8 verification)."""
    spec = ROLE_SPECS[role]
    rng = np.random.default_rng(seed)
    size = spec.input_size
    images = []
    for _ in range(count):
        coarse = rng.random((8, 8, 3)).astype(np.float32)
        image = np.kron(coarse, np.ones((size // 8, size // 8, 1), np.float32))
        image += 0.05 * rng.standard_normal(image.shape).astype(np.float32)
        low, high = spec.input_range
        images.append((low + (high - low) * np.clip(image, 0, 1))[None].astype(np.float32))
    return images


def compare_outputs(
    role: str, reference: list[dict[str, np.ndarray]], other: list[dict[str, np.ndarray]]
) -> dict[str, Any]:
    """Agreement of two engines' stable outputs on the same inputs.

    Point errors are in normalised crop units (pixels / input size), x and y only, over the
    inputs where the reference's flag says the part is present (all for hand_recrop) and, for
    pose landmarks, over the points the reference finds visible (off-crop legs are noise); for
    pose detection, over the boxes and keypoints of anchors whose reference score passes 0.5. Flag
    agreement: the share of inputs where both sides agree on present / absent (flag > 0.5).
    """
    name, per_point, flag, is_logit = _POINTS[role]
    size = float(ROLE_SPECS[role].input_size)
    errors: list[np.ndarray] = []
    agree = []
    for ref, oth in zip(reference, other, strict=True):
        present_ref, present_oth = True, True
        if flag is not None:
            ref_flag, oth_flag = (_probability(o[flag], is_logit) > 0.5 for o in (ref, oth))
            present_ref, present_oth = bool(ref_flag.any()), bool(oth_flag.any())
            agree.append(present_ref == present_oth)
        if role in ("pose_detection", "face_detection"):
            rows = _probability(ref["scores"], True)[0, :, 0] > 0.5
            xy = [o["boxes"][0, rows].reshape(-1, 2) for o in (ref, oth)]
        else:
            if not present_ref:
                continue
            rows = slice(None)
            if role == "pose_landmark":  # points the reference sees (visibility logit > 0)
                rows = ref[name].reshape(-1, per_point)[:, 3] > 0
            xy = [o[name].reshape(-1, per_point)[rows, :2] for o in (ref, oth)]
        if len(xy[0]):
            errors.append(np.abs(xy[0] - xy[1]) / size)
    points = np.concatenate(errors) if errors else np.zeros((0, 2))
    return {
        "inputs": len(reference),
        "compared_points": int(len(points)),
        "max_point_error": float(points.max()) if len(points) else None,
        "mean_point_error": float(points.mean()) if len(points) else None,
        "flag_agreement": float(np.mean(agree)) if agree else None,
    }


def _probability(value: np.ndarray, is_logit: bool) -> np.ndarray:
    value = np.asarray(value, np.float64)
    return 1.0 / (1.0 + np.exp(-np.clip(value, -100, 100))) if is_logit else value


def run_role(runtime: Any, role: str, images: list[np.ndarray], path: Path) -> list[dict]:
    """Stable outputs of one loaded Runtime on each image."""
    spec = ROLE_SPECS[role]
    names = _map_outputs(role, [s.name for s in runtime.outputs], path)
    results = []
    for image in images:
        raw = runtime.run_all(image)
        results.append(
            {
                names[k]: v.reshape(spec.output_shape(names[k]))
                for k, v in raw.items()
                if names[k] in spec.used
            }
        )
    return results


def verify_against_litert(
    source: ModelFile, path: Path, runtime_name: str, config: dict[str, str] | None = None
) -> dict[str, Any]:
    """Compare a built FP32 artifact with the .tflite on LiteRT (the reference) on probe images;
    skipped (and said so) when LiteRT is not installed."""
    from edge_slr._optional import is_available

    if not is_available("ai_edge_litert"):
        return {"reference": "litert", "skipped": "ai-edge-litert is not installed"}
    images = probe_images(source.role)
    with open_runtime(source.path, "litert", 1) as reference:
        expected = run_role(reference, source.role, images, source.path)
    options = {"config": config} if config else {}
    with open_runtime(path, runtime_name, 1, **options) as runtime:
        got = run_role(runtime, source.role, images, path)
    result = compare_outputs(source.role, expected, got)
    raw_max = max(
        float(np.abs(e[k] - g[k]).max())
        for e, g in zip(expected, got, strict=True)
        for k in e
        if k in g
    )
    return {
        "reference": "litert",
        "images": "probe_images (synthetic)",
        **result,
        "max_abs_diff": raw_max,
    }


def open_runtime(path: Path, runtime: str, threads: int | None, **options: Any) -> Any:
    """A Runtime of the registry on ``path``. Not ``load_runtime``: that would read our
    sidecar beside the file as a student/corrector model description."""
    from edge_slr.runtimes import get_runtime_class

    return get_runtime_class(runtime)(path, threads=threads, **options)


def _map_outputs(role: str, engine_names: list[str], path: Path) -> dict[str, str]:
    """Engine output names -> stable names: names already stable (our IR and ONNX files) map to
    themselves; the .tflite's own names map by position in the file's output order."""
    spec = ROLE_SPECS[role]
    stable = [name for name, _ in spec.outputs]
    if set(engine_names) <= set(stable):
        return {name: name for name in engine_names}
    if len(engine_names) == len(stable):
        return dict(zip(engine_names, stable, strict=True))
    raise FormatError(
        path,
        f"the {role} model has outputs {engine_names}; expected {len(stable)} outputs "
        f"({', '.join(stable)})",
    )
