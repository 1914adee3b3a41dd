"""The model description written beside every converted model, and read back by runtimes.

A converted model ``DIR/student-int8.xml`` gets ``DIR/student-int8.xml.json``: everything a runtime
needs to feed it and to trust it, without the checkpoint or the training code::

    format, format_version   "edge-slr-model", 1
    kind                     "student" (landmark features -> CTC logits) or "corrector"
    target, engine           conversion target ("openvino-int8") and engine (name, version,
                             the compile settings the verification used)
    graphs                   one per model file: role, file (name, size, sha256), optional weights
                             file (OpenVINO .bin), input and output tensors (names, shapes with
                             named dynamic axes, dtype)
    sequence_output          which output is the CTC sequence head; ``output_kind`` logits|log_probs
    vocabulary               the gloss vocabulary (Vocabulary.to_dict(), with its sha256)
    preset                   the landmark feature preset, normalisation included (students)
    temporal                 stride, receptive field, minimum input length and the output-length
                             rule, so a runtime can size buffers and reject short inputs
    precision                weights/activations precision and what stayed FP32
    fps                      (students, optional) the frame rate the model was trained at;
                             sidecars written before it existed read as DEFAULT_FPS (25, the
                             PHOENIX rate): :attr:`ModelDescription.frame_rate`
    source                   checkpoint file name, sha256, epoch, training metrics
    calibration, verification, options, details (engine ops, ...), versions

:func:`read_sidecar` checks all of it, including that the model files still have the recorded
size and sha256, and raises :class:`~edge_slr.errors.FormatError` on any mismatch.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_slr.errors import FormatError, InputError

FORMAT_NAME = "edge-slr-model"
FORMAT_VERSION = 1
SIDECAR_SUFFIX = ".json"
KINDS = ("student", "corrector")
OUTPUT_KINDS = ("logits", "log_probs")
PRECISIONS = ("fp32", "fp16", "int8")
# The frame rate of a student whose sidecar does not record one (written before the field
# existed): RWTH-PHOENIX-Weather and SignSynth are 25 fps.
DEFAULT_FPS = 25.0
_HASH_CHUNK = 1 << 20


# A file whose last change is older than this when it is hashed is "settled": a later change
# gives it another modification or status-change time, so (inode, size, mtime, ctime) identifies
# its content. A file changed within this margin could change again within the same timestamp
# tick (coarse kernel clocks; FAT keeps 2 s), so it is hashed every time (git's "racy" rule).
SETTLED_SECONDS = 2.0
_HASHES: dict[tuple[str, int, int, int, int, int], str] = {}
_HASHES_KEPT = 256


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's content, hashed once while the file stays unchanged.

    Every model load validates its sidecar, and one Recognizer reads the sidecars of a model
    directory several times (student, corrector, choosing between them); settled files are
    therefore remembered by (path, device, inode, size, mtime, ctime) instead of read again.
    """
    path = Path(path)
    key = (str(path.resolve()), *_identity(path))
    cached = _HASHES.get(key)
    if cached is not None:
        return cached
    digest = _hash_file(path)
    changed = max(key[-2:]) / 1e9  # mtime, ctime
    if time.time() - changed > SETTLED_SECONDS and _identity(path) == key[1:]:
        if len(_HASHES) >= _HASHES_KEPT:
            _HASHES.pop(next(iter(_HASHES)))
        _HASHES[key] = digest
    return digest


def _identity(path: Path) -> tuple[int, int, int, int, int]:
    """What changes when a file's content can have changed (not its access time)."""
    info = path.stat()
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_path(model_path: str | Path) -> Path:
    """Where the description of ``model_path`` lives: the model's file name plus ``.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + SIDECAR_SUFFIX)


# -- schema -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileInfo:
    """A file beside the sidecar (by name, never by absolute path: the folder may move)."""

    name: str
    size: int
    sha256: str

    @classmethod
    def of(cls, path: str | Path) -> FileInfo:
        path = Path(path)
        return cls(path.name, path.stat().st_size, file_sha256(path))

    def check(self, folder: Path) -> None:
        """FormatError when the file is missing, truncated or changed since conversion."""
        path = folder / self.name
        if not path.is_file():
            raise FormatError(path, "model file named by the sidecar does not exist")
        size = path.stat().st_size
        if size != self.size:
            raise FormatError(
                path,
                f"size is {size} bytes but the sidecar recorded {self.size} "
                "(truncated or replaced since conversion)",
            )
        digest = file_sha256(path)
        if digest != self.sha256:
            raise FormatError(
                path, f"sha256 {digest} does not match the sidecar's {self.sha256} (file changed)"
            )


@dataclass(frozen=True)
class TensorSpec:
    """An input or output; a string in ``shape`` names a dynamic axis ("batch", "frames")."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(self.shape))
        for dim in self.shape:
            if not (isinstance(dim, str) and dim) and not (isinstance(dim, int) and dim >= 1):
                raise InputError(f"tensor {self.name!r}: bad dimension {dim!r} in {self.shape}")

    @property
    def dynamic_axes(self) -> dict[int, str]:
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}


@dataclass(frozen=True)
class GraphSpec:
    """One model file and its signature. Students have one graph, "recognizer"."""

    role: str
    file: FileInfo
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    weights: FileInfo | None = None  # a separate weights file (OpenVINO .bin)

    def files(self) -> list[FileInfo]:
        return [self.file] + ([self.weights] if self.weights is not None else [])


@dataclass(frozen=True)
class TemporalSpec:
    """How the student maps input frames to output steps.

    ``output_length(T)`` applies ``blocks`` times: lose ``frames_lost_per_block`` frames to
    unpadded convolutions, then pool by ``pool`` (floor). ``min_input_length`` frames give one
    step; ``receptive_field`` is how many input frames one output step sees.
    """

    stride: int
    receptive_field: int
    min_input_length: int
    frames_lost_per_block: int
    pool: int = 2
    blocks: int = 2

    @classmethod
    def two_blocks(cls, kernel_size: int, padding: str, min_input_length: int) -> TemporalSpec:
        """The student's geometry: two blocks of two ``kernel_size`` convolutions ("valid" or
        "same" padding) and a 2-pool, each block widening the field by 2 (k - 1) + 1 steps of
        its input stride."""
        lost = 0 if padding == "same" else 2 * (kernel_size - 1)
        field, jump = 1, 1
        for _ in range(2):
            field += (2 * (kernel_size - 1) + 1) * jump
            jump *= 2
        return cls(
            stride=jump,
            receptive_field=field,
            min_input_length=min_input_length,
            frames_lost_per_block=lost,
            pool=2,
            blocks=2,
        )

    def output_length(self, num_frames: int) -> int:
        length = int(num_frames)
        for _ in range(self.blocks):
            length = (length - self.frames_lost_per_block) // self.pool
        return max(length, 0)


@dataclass(frozen=True)
class PrecisionSpec:
    weights: str  # fp32 | fp16 | int8
    activations: str  # fp32 | int8 (dynamic-range INT8 keeps float activations)
    kept_fp32: tuple[str, ...] = ()  # layers or op types left in floating point
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kept_fp32", tuple(self.kept_fp32))
        for value in (self.weights, self.activations):
            if value not in PRECISIONS:
                raise InputError(f"precision {value!r} is not one of {PRECISIONS}")


@dataclass(frozen=True)
class ModelDescription:
    kind: str
    target: str
    engine: dict[str, Any]  # name, version, config (compile settings the verification used)
    graphs: tuple[GraphSpec, ...]
    sequence_output: str
    output_kind: str
    vocabulary: dict[str, Any]
    precision: PrecisionSpec
    source: dict[str, Any]
    preset: dict[str, Any] | None = None
    temporal: TemporalSpec | None = None
    calibration: dict[str, Any] | None = None
    verification: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    fps: float | None = None  # training frame rate (students); None: unknown, see frame_rate
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "graphs", tuple(self.graphs))
        if self.kind not in KINDS:
            raise InputError(f"kind {self.kind!r} is not one of {KINDS}")
        if self.output_kind not in OUTPUT_KINDS:
            raise InputError(f"output_kind {self.output_kind!r} is not one of {OUTPUT_KINDS}")
        if not self.graphs:
            raise InputError("a model description needs at least one graph")
        if self.kind == "student" and (self.preset is None or self.temporal is None):
            raise InputError("a student description needs its landmark preset and temporal spec")
        if self.fps is not None:
            fps = self.fps
            if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= 1000:
                raise InputError(f"fps must be a frame rate in (0, 1000] or null, got {fps!r}")
            object.__setattr__(self, "fps", float(fps))

    # -- convenience for runtimes ----------------------------------------------------------
    @property
    def graph(self) -> GraphSpec:
        """The main graph (a student's only one)."""
        return self.graphs[0]

    @property
    def input(self) -> TensorSpec:
        return self.graph.inputs[0]

    @property
    def output(self) -> TensorSpec:
        for spec in self.graph.outputs:
            if spec.name == self.sequence_output:
                return spec
        return self.graph.outputs[0]

    @property
    def feature_dim(self) -> int:
        return int(self.input.shape[-1])

    @property
    def frame_rate(self) -> float:
        """The frame rate the model expects: the recorded ``fps``, else :data:`DEFAULT_FPS`."""
        return self.fps if self.fps is not None else DEFAULT_FPS

    def output_length(self, num_frames: int) -> int:
        if self.temporal is None:
            raise InputError(f"a {self.kind} model has no temporal spec")
        return self.temporal.output_length(num_frames)

    def vocab(self) -> Any:
        """The recogniser :class:`~edge_slr.decoding.vocab.Vocabulary` (for a corrector, its base)."""
        from edge_slr.decoding.vocab import Vocabulary

        data = self.vocabulary if self.kind == "student" else self.vocabulary["base"]
        return Vocabulary.from_dict(data)

    def feature_preset(self) -> Any:
        from edge_slr.landmarks.presets import preset_from_dict

        if self.preset is None:
            raise InputError(f"a {self.kind} model has no landmark preset")
        return preset_from_dict(self.preset)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        order = ["format", "format_version", "kind", "target"]
        return {**{k: data[k] for k in order}, **{k: v for k, v in data.items() if k not in order}}


# -- writing and reading ------------------------------------------------------------------------


def write_sidecar(description: ModelDescription, model_path: str | Path) -> Path:
    """Write ``description`` beside ``model_path`` (atomically) and return the sidecar's path."""
    path = sidecar_path(model_path)
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps(description.to_dict(), indent=1, ensure_ascii=False, default=_json_default)
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a sidecar")


def read_sidecar(path: str | Path, *, check_files: bool = True) -> ModelDescription:
    """Read and validate a sidecar (or the sidecar of a model file).

    FormatError names the file and what is wrong: not JSON, another format or version, a missing
    or mistyped field, a vocabulary whose sha256 does not match its glosses, a preset that does
    not give the input's feature size, or (with ``check_files``) a model file that is missing or
    whose size or sha256 changed since conversion.
    """
    path = Path(path)
    if path.suffix != SIDECAR_SUFFIX:  # a model file: its sidecar is beside it
        path = sidecar_path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FormatError(
            path, "model sidecar does not exist (was the model converted by edge-slr?)"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FormatError(path, f"not a JSON sidecar ({err})") from None
    try:
        description = _parse(data)
        _check_consistency(description)
    except (InputError, KeyError, TypeError, ValueError) as err:
        raise FormatError(path, f"invalid model description: {_describe(err)}") from None
    if check_files:
        for graph in description.graphs:
            for info in graph.files():
                info.check(path.parent)
    return description


def _describe(err: Exception) -> str:
    if isinstance(err, KeyError):
        return f"missing field {err}"
    return str(err)


def _parse(data: Any) -> ModelDescription:
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT_NAME:
        raise ValueError(f"'format' must be {FORMAT_NAME!r}, got {data.get('format')!r}")
    if data.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"format_version {data.get('format_version')!r}; this edge-slr reads {FORMAT_VERSION}"
        )
    graphs = tuple(_graph(g) for g in _typed(data, "graphs", list))
    temporal = data.get("temporal")
    return ModelDescription(
        kind=_typed(data, "kind", str),
        target=_typed(data, "target", str),
        engine=_typed(data, "engine", dict),
        graphs=graphs,
        sequence_output=_typed(data, "sequence_output", str),
        output_kind=_typed(data, "output_kind", str),
        vocabulary=_typed(data, "vocabulary", dict),
        precision=PrecisionSpec(**_typed(data, "precision", dict)),
        source=_typed(data, "source", dict),
        preset=data.get("preset"),
        temporal=TemporalSpec(**temporal) if temporal is not None else None,
        calibration=data.get("calibration"),
        verification=_typed(data, "verification", dict),
        options=_typed(data, "options", dict),
        details=_typed(data, "details", dict),
        versions=_typed(data, "versions", dict),
        fps=data.get("fps"),
    )


def _typed(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data[key]
    if not isinstance(value, kind):
        raise TypeError(f"field {key!r} must be a {kind.__name__}, got {type(value).__name__}")
    return value


def _file(data: Any) -> FileInfo:
    info = FileInfo(**data)
    if not isinstance(info.size, int) or not isinstance(info.sha256, str) or len(info.sha256) != 64:
        raise ValueError(f"file entry {data!r} needs an integer size and a sha256 hex digest")
    if Path(info.name).name != info.name:
        raise ValueError(
            f"file entry names {info.name!r}: only a file beside the sidecar is allowed"
        )
    return info


def _graph(data: dict[str, Any]) -> GraphSpec:
    weights = data.get("weights")
    return GraphSpec(
        role=data["role"],
        file=_file(data["file"]),
        inputs=tuple(TensorSpec(**t) for t in data["inputs"]),
        outputs=tuple(TensorSpec(**t) for t in data["outputs"]),
        weights=_file(weights) if weights is not None else None,
    )


def _check_consistency(description: ModelDescription) -> None:
    """Cross-field checks: vocabulary sha256 and size, preset and input feature size."""
    vocab = description.vocab()  # InputError when the sha256 does not match the glosses
    names = {spec.name for graph in description.graphs for spec in graph.outputs}
    if description.sequence_output not in names:
        raise ValueError(
            f"sequence_output {description.sequence_output!r} is not an output of "
            f"{', '.join(g.file.name for g in description.graphs)} ({sorted(names)})"
        )
    if description.kind != "student":
        tokens = description.vocabulary.get("tokens")
        for graph in description.graphs:
            for spec in graph.outputs:
                if (
                    spec.name == description.sequence_output
                    and tokens is not None
                    and spec.shape[-1] != len(tokens)
                ):
                    raise ValueError(
                        f"{graph.role} outputs {spec.shape[-1]} classes but the vocabulary has "
                        f"{len(tokens)} tokens"
                    )
        return
    preset = description.feature_preset()
    if description.feature_dim != preset.num_features:
        raise ValueError(
            f"input feature size {description.feature_dim} does not match preset "
            f"{preset.name!r} ({preset.num_features} features)"
        )
    classes = description.output.shape[-1]
    if classes != len(vocab):
        raise ValueError(
            f"output has {classes} classes but the vocabulary has {len(vocab)} entries"
        )
