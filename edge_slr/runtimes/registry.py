"""Which runtime runs which model: the registry, and finding a model in a model directory.

This is the one place that chooses an engine. A runtime class registers itself with
:func:`register_runtime`; :func:`load_runtime` picks one from, in order:

1. ``runtime=`` (a registered name or an alias such as ``"onnx"`` or ``"tflite"``);
2. the model's sidecar (``engine.name`` recorded by the converter);
3. the model file's suffix.

A *model directory* (what ``edge-slr convert ... -o DIR`` fills, one call per target) holds
converted models, each with its sidecar ``NAME.json``; :func:`find_models` lists them and
:func:`choose_model` picks one for a kind ("student" or "corrector"), a runtime and a precision.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_slr._optional import is_available
from edge_slr.errors import FormatError, InputError
from edge_slr.runtimes.base import Runtime
from edge_slr.sidecar import FORMAT_NAME, SIDECAR_SUFFIX, ModelDescription, read_sidecar

logger = logging.getLogger(__name__)

_RUNTIMES: dict[str, type[Runtime]] = {}
ALIASES = {"onnx": "onnxruntime", "ort": "onnxruntime", "tflite": "litert", "ov": "openvino"}
# When nothing else decides: OpenVINO first, the torch reference last; within an engine the
# smallest verified precision first. Not a speed ranking: on the project's machines ONNX Runtime
# ran the student fastest (docs/engines.md, "Which engine runs the student fastest").
ENGINE_PREFERENCE = ("openvino", "onnxruntime", "litert", "torch")
# The corrector makes many small calls with changing lengths, where OpenVINO's per-call cost
# dominates. The PHOENIX-2014-T corrector (d=128, two stages), draft decoding, one thread, CPU ms
# a sentence (load ~10): ONNX Runtime 4.0 (INT8 3.1), LiteRT 3.3 (INT8 2.5), OpenVINO 26.7.
CORRECTOR_ENGINE_PREFERENCE = ("onnxruntime", "litert", "openvino", "torch")
PRECISION_PREFERENCE = ("int8", "fp16", "fp32")


def register_runtime(cls: type[Runtime], *, replace: bool = False) -> type[Runtime]:
    """Add a Runtime subclass under ``cls.name`` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Runtime)):
        raise InputError(f"register_runtime needs a Runtime subclass, got {cls!r}")
    for attr in ("name", "engine", "requires", "suffixes"):
        if not getattr(cls, attr, None):
            raise InputError(f"{cls.__name__} must set the class attribute {attr!r}")
    if cls.name in _RUNTIMES and _RUNTIMES[cls.name] is not cls and not replace:
        raise InputError(f"a runtime named {cls.name!r} is already registered")
    _RUNTIMES[cls.name] = cls
    return cls


def runtime_names() -> list[str]:
    """Every registered runtime, whether or not its engine is installed."""
    return list(_RUNTIMES)


def available_runtimes() -> list[str]:
    """Registered runtimes whose engine imports here."""
    return [name for name, cls in _RUNTIMES.items() if is_available(cls.requires)]


def get_runtime_class(name: str) -> type[Runtime]:
    key = ALIASES.get(name, name)
    if key not in _RUNTIMES:
        raise InputError(
            f"unknown runtime {name!r}; expected one of {runtime_names()} "
            f"(aliases {sorted(ALIASES)})"
        )
    return _RUNTIMES[key]


def runtime_for_engine(engine: str) -> type[Runtime] | None:
    for cls in _RUNTIMES.values():
        if cls.engine == engine:
            return cls
    return None


def runtimes_for_suffix(suffix: str) -> list[type[Runtime]]:
    """Runtimes that load ``suffix`` files; the engine that writes that format first."""
    found = [cls for cls in _RUNTIMES.values() if suffix in cls.suffixes]
    return sorted(found, key=lambda cls: cls.suffixes.index(suffix))


# -- model directories ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelEntry:
    """A model file found in a model directory, with its validated description."""

    path: Path
    description: ModelDescription

    @property
    def kind(self) -> str:
        return self.description.kind

    @property
    def engine(self) -> str:
        return str(self.description.engine.get("name", ""))

    @property
    def precision(self) -> str:
        return self.description.precision.weights


@dataclass(frozen=True)
class BrokenModel:
    """A model in a model directory whose sidecar (or file) does not check out."""

    path: Path
    kind: str | None  # the sidecar's "kind" when it is readable JSON, else None
    error: FormatError


def find_models(directory: str | Path, kind: str | None = None) -> list[ModelEntry]:
    """Every converted model in ``directory`` (sidecars of our format), optionally of one kind.

    Sidecars are validated; a broken or tampered one is left out (:func:`scan_models` lists
    those, :func:`choose_model` says why when it leaves nothing to run); JSON files of other
    formats are ignored.
    """
    return scan_models(directory, kind)[0]


def scan_models(
    directory: str | Path, kind: str | None = None
) -> tuple[list[ModelEntry], list[BrokenModel]]:
    """(the valid models of ``kind`` in ``directory``, the broken ones that may be of it)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"model directory not found: {directory}")
    entries, broken = [], []
    for sidecar in sorted(directory.glob(f"*{SIDECAR_SUFFIX}")):
        if not _is_our_sidecar(sidecar):
            continue
        model = sidecar.with_name(sidecar.name[: -len(SIDECAR_SUFFIX)])
        try:
            description = read_sidecar(sidecar)
        except FormatError as err:
            found = _declared_kind(sidecar)
            if kind is None or found in (None, kind):
                broken.append(BrokenModel(model, found, err))
            continue
        if kind is None or description.kind == kind:
            entries.append(ModelEntry(model, description))
    return entries, broken


def _declared_kind(sidecar: Path) -> str | None:
    try:
        found = json.loads(sidecar.read_text(encoding="utf-8")).get("kind")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def _is_our_sidecar(path: Path) -> bool:
    # A cheap look at the head: vocabulary.json, dataset.json and the like are not models. A
    # NAME.EXT.json beside a model file NAME.EXT that is not JSON at all is a broken sidecar
    # (read_sidecar then says so), not someone else's file.
    try:
        head = path.read_text(encoding="utf-8")[:200]
    except UnicodeDecodeError:
        return _beside_a_model(path)
    except OSError:
        return False
    if f'"{FORMAT_NAME}"' in head:
        return True
    if not _beside_a_model(path):
        return False
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return True
    return False


def _beside_a_model(sidecar: Path) -> bool:
    model = sidecar.with_name(sidecar.name[: -len(SIDECAR_SUFFIX)])
    suffixes = {s for cls in _RUNTIMES.values() for s in cls.suffixes}
    return model.suffix in suffixes and model.is_file()


def choose_model(
    directory: str | Path,
    kind: str = "student",
    runtime: str | None = None,
    precision: str | None = None,
) -> ModelEntry:
    """The model of ``kind`` to run from a model directory.

    With ``runtime``: models of that engine first, then others it can load (OpenVINO reads ONNX).
    Without: models whose engine is installed, in :data:`ENGINE_PREFERENCE` order
    (:data:`CORRECTOR_ENGINE_PREFERENCE` for a corrector). ``precision``
    ("fp32", "fp16", "int8") filters; otherwise :data:`PRECISION_PREFERENCE` orders.
    """
    entries, broken = scan_models(directory, kind)
    if not entries and broken:
        raise broken[0].error
    if not entries:
        raise FormatError(
            directory,
            f"no converted {kind} model here (expected NAME.EXT with a NAME.EXT.json sidecar, "
            "as written by `edge-slr convert ... -o DIR`)",
        )
    if precision is not None:
        entries = [e for e in entries if e.precision == precision]
        if not entries and broken:  # perhaps the broken one is that precision: say what broke
            raise broken[0].error
        if not entries:
            raise InputError(f"no {precision} {kind} model in {directory}")
    ranked = _rank(entries, runtime, kind)
    # A broken model that the requested runtime could have loaded: when nothing else can run,
    # that one was meant, so its error is the answer; otherwise it is skipped with a warning.
    loadable = [b for b in broken if runtime is None or b.path.suffix in _suffixes(runtime)]
    if not ranked and loadable:
        raise loadable[0].error
    for item in broken:
        logger.warning("skipped %s: %s", item.path.name, item.error)
    if not ranked:
        found = ", ".join(f"{e.path.name} ({e.engine})" for e in entries)
        wanted = (
            f"the {runtime} runtime"
            if runtime
            else f"the installed runtimes {available_runtimes()}"
        )
        raise InputError(f"no {kind} model in {directory} can run on {wanted}; found {found}")
    return ranked[0]


def _suffixes(runtime: str) -> tuple[str, ...]:
    return get_runtime_class(runtime).suffixes


def _rank(entries: list[ModelEntry], runtime: str | None, kind: str) -> list[ModelEntry]:
    def precision_rank(entry: ModelEntry) -> int:
        p = entry.precision
        return PRECISION_PREFERENCE.index(p) if p in PRECISION_PREFERENCE else 99

    if runtime is not None:
        cls = get_runtime_class(runtime)
        usable = [e for e in entries if e.path.suffix in cls.suffixes]
        return sorted(
            usable, key=lambda e: (e.engine != cls.engine, precision_rank(e), e.path.name)
        )
    installed = {_RUNTIMES[n].engine for n in available_runtimes()}
    usable = [e for e in entries if e.engine in installed]

    preference = CORRECTOR_ENGINE_PREFERENCE if kind == "corrector" else ENGINE_PREFERENCE

    def engine_rank(entry: ModelEntry) -> int:
        e = entry.engine
        return preference.index(e) if e in preference else 99

    return sorted(usable, key=lambda e: (engine_rank(e), precision_rank(e), e.path.name))


# -- loading ----------------------------------------------------------------------------------------


def resolve_model(
    model: str | Path, runtime: str | None = None, precision: str | None = None
) -> tuple[Path, ModelDescription | None]:
    """(model file, its description) for a model file, its sidecar, or a model directory."""
    path = Path(model)
    if path.is_dir():
        entry = choose_model(path, "student", runtime, precision)
        return entry.path, entry.description
    if path.name.endswith(SIDECAR_SUFFIX) and _is_our_sidecar(path):
        description = read_sidecar(path)
        return path.with_name(path.name[: -len(SIDECAR_SUFFIX)]), description
    if not path.exists():
        raise InputError(f"model not found: {path}")
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if sidecar.is_file():
        return path, read_sidecar(sidecar)
    return path, None


def pick_runtime_class(
    path: Path, description: ModelDescription | None, runtime: str | None
) -> type[Runtime]:
    if runtime is not None:
        return get_runtime_class(runtime)
    if description is not None:
        cls = runtime_for_engine(str(description.engine.get("name", "")))
        if cls is not None:
            return cls
    candidates = runtimes_for_suffix(path.suffix)
    if not candidates:
        known = sorted({s for cls in _RUNTIMES.values() for s in cls.suffixes})
        raise InputError(f"no runtime loads {path.name}: expected one of {known}")
    return candidates[0]


def load_runtime(
    model: str | Path,
    runtime: str | None = None,
    threads: int | None = None,
    *,
    precision: str | None = None,
    description: ModelDescription | None = None,
    **options: Any,
) -> Runtime:
    """Load a model on a runtime chosen by name, by its sidecar or by its file suffix.

    ``model`` is a model file, its sidecar or a model directory (then its student model is
    chosen, see :func:`choose_model`). ``threads`` sets the engine's intra-op threads (None:
    the engine's default). ``options`` go to the runtime class (e.g. OpenVINO's ``hint``).
    ``description`` describes the model file instead of its sidecar: a conversion verifies a
    model this way, with the description it writes once the model has passed.
    MissingDependencyError names the pip extra when the engine is not installed.
    """
    if description is not None:
        path = Path(model)
        if not path.is_file():
            raise InputError(f"model file not found: {path}")
    else:
        path, description = resolve_model(model, runtime, precision)
    cls = pick_runtime_class(path, description, runtime)
    return cls(path, threads=threads, description=description, **options)
