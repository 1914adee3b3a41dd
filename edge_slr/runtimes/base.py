"""The engine-independent interface every runtime implements.

A :class:`Runtime` owns one loaded model file on one engine. It is created by
:func:`edge_slr.runtimes.load_runtime` (which picks the engine) or directly from a class of the
registry, used as a context manager, and fed numpy arrays::

    with load_runtime("models/student-int8.xml") as runtime:
        logits = runtime.run(features[None])       # (1, T, F) float32 -> (1, T', V)

The base class does everything that does not depend on the engine: it checks every input against
the model's input specs (names, rank, fixed sizes, dtype, finite values, the student's minimum
length) so that bad input gets an :class:`~edge_slr.errors.InputError` naming the tensor instead
of an error deep inside an engine, and it turns engine failures into :class:`InferenceError`.
Subclasses implement :meth:`_load`, :meth:`_infer`, :meth:`_close` and the engine's own specs.
"""

from __future__ import annotations

import abc
import functools
import inspect
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from edge_slr._optional import native_logs_filtered
from edge_slr.errors import EdgeSLRError, FormatError, InputError
from edge_slr.sidecar import TensorSpec

if TYPE_CHECKING:
    from edge_slr.sidecar import ModelDescription

logger = logging.getLogger(__name__)

Feeds = np.ndarray | Mapping[str, np.ndarray]

# dtype kinds an input may be cast from without changing its meaning (float64 -> float32 is fine,
# a float for an integer token input is not).
_SAFE_KINDS = {"f": "f", "i": "iu", "u": "u", "b": "b"}


class InferenceError(EdgeSLRError, RuntimeError):
    """The engine failed on input that passed the checks (names the engine and the shapes)."""


class Runtime(abc.ABC):
    """One model file loaded on one inference engine.

    Class attributes describe the engine for the registry: ``name`` (what users pass as
    ``runtime=``), ``engine`` (the name converters record in a sidecar's ``engine.name``),
    ``requires`` (the module that must import) and ``suffixes`` (model files it can load).
    """

    name: ClassVar[str]
    engine: ClassVar[str]
    requires: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]
    description_text: ClassVar[str] = ""

    def __init__(
        self,
        model_path: str | Path,
        *,
        threads: int | None = None,
        description: ModelDescription | None = None,
        **options: Any,
    ) -> None:
        self.model_path = Path(model_path)
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise InputError(f"threads must be a positive int or None, got {threads!r}")
        if not self.model_path.is_file():
            raise InputError(f"model file not found: {self.model_path}")
        if self.model_path.suffix not in self.suffixes:
            raise InputError(
                f"the {self.name} runtime loads {'/'.join(self.suffixes)} files, got "
                f"{self.model_path.name}"
            )
        self.threads = threads
        self.description = description
        self._closed = False
        self._check_options(options)
        try:
            with native_logs_filtered():  # engines log C++ lines while they load (LiteRT, OpenVINO)
                self._load(**options)
        except EdgeSLRError:
            raise
        except Exception as err:  # a file the engine cannot parse: one line, not its traceback
            raise FormatError(
                self.model_path,
                f"cannot be loaded by {self.name} {engine_version(self.requires)}: "
                f"{first_line(err)}",
            ) from err
        logger.debug("%s runtime loaded %s (threads=%s)", self.name, self.model_path, threads)

    def _check_options(self, options: dict[str, Any]) -> None:
        accepted = [
            name
            for name, p in inspect.signature(self._load).parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise InputError(
                f"the {self.name} runtime takes the options {accepted or 'none'}, got {unknown}"
            )

    # -- what subclasses implement -------------------------------------------------------------
    @abc.abstractmethod
    def _load(self, **options: Any) -> None:  # subclasses name their options (checked above)
        """Load and compile the model; InputError for an option the engine does not take."""

    @abc.abstractmethod
    def _engine_inputs(self) -> tuple[TensorSpec, ...]:
        """Input specs as the engine reports them (dynamic sizes as names)."""

    @abc.abstractmethod
    def _engine_outputs(self) -> tuple[TensorSpec, ...]:
        """Output specs as the engine reports them."""

    @abc.abstractmethod
    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run checked, correctly typed inputs; return every output by name."""

    def _close(self) -> None:  # noqa: B027 - optional hook: most engines free on garbage collection
        """Release engine resources."""

    # -- public interface ------------------------------------------------------------------------
    # Cached: the specs are fixed once the model is loaded, and run() checks feeds against them
    # on every call.
    @functools.cached_property
    def inputs(self) -> tuple[TensorSpec, ...]:
        """Input specs; the sidecar's axis names ("batch", "frames") where it has them."""
        return _named_like(self._engine_inputs(), self._sidecar_specs("inputs"))

    @functools.cached_property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return _named_like(self._engine_outputs(), self._sidecar_specs("outputs"))

    @property
    def primary_output(self) -> str:
        """The output :meth:`run` returns: the sidecar's sequence output, else the first."""
        names = [spec.name for spec in self._engine_outputs()]
        if self.description is not None and self.description.sequence_output in names:
            return self.description.sequence_output
        return names[0]

    @property
    def settings(self) -> dict[str, Any]:
        """What this model was loaded with, as the engine applies it: ``threads`` and the
        engine's own settings. A conversion records the settings its verification ran with
        (``verification.runtime``); loading the model the same way gives the same settings."""
        return {"runtime": self.name, "threads": self.threads, **self._engine_settings()}

    def _engine_settings(self) -> dict[str, Any]:
        """Engine-specific load settings (compile properties, session options)."""
        return {}

    @property
    def closed(self) -> bool:
        return self._closed

    def run(self, inputs: Feeds) -> np.ndarray:
        """Run the model and return its primary output.

        ``inputs`` is one array (models with one input) or a mapping of input names to arrays.
        """
        return self.run_all(inputs)[self.primary_output]

    def run_all(self, inputs: Feeds) -> dict[str, np.ndarray]:
        """Run the model and return every output by name."""
        if self._closed:
            raise InputError(f"this {self.name} runtime is closed; load the model again")
        feeds = self._check_feeds(inputs)
        try:
            outputs = self._infer(feeds)
        except EdgeSLRError:
            raise
        except Exception as err:  # engines raise their own types (RuntimeError, ValueError, ...)
            shapes = {name: tuple(a.shape) for name, a in feeds.items()}
            raise InferenceError(
                f"{self.name} failed to run {self.model_path.name} on inputs {shapes}: {err}"
            ) from err
        return {name: np.asarray(value) for name, value in outputs.items()}

    def run_many(self, batch: Sequence[Feeds]) -> list[np.ndarray]:
        """The primary output of each input set, in order (engines may overlap the requests)."""
        return [self.run(item) for item in batch]

    def close(self) -> None:
        if not self._closed:
            self._close()
            self._closed = True

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"threads={self.threads}"
        return f"<{type(self).__name__} {self.model_path.name} {state}>"

    # -- input checks -----------------------------------------------------------------------------
    def _check_feeds(self, inputs: Feeds) -> dict[str, np.ndarray]:
        specs = self._engine_inputs()
        if isinstance(inputs, np.ndarray):
            if len(specs) != 1:
                names = [s.name for s in specs]
                raise InputError(
                    f"{self.model_path.name} has {len(specs)} inputs {names}: pass a mapping "
                    "of input names to arrays"
                )
            inputs = {specs[0].name: inputs}
        if not isinstance(inputs, Mapping):
            raise InputError(
                f"inputs must be a numpy array or a mapping of names to arrays, got "
                f"{type(inputs).__name__}"
            )
        expected = {s.name for s in specs}
        unknown, missing = sorted(set(inputs) - expected), sorted(expected - set(inputs))
        if unknown or missing:
            raise InputError(
                f"{self.model_path.name} takes inputs {sorted(expected)}; got unknown "
                f"{unknown} and missing {missing}"
            )
        named = {s.name: s for s in self.inputs}
        return {s.name: self._check_array(named[s.name], inputs[s.name]) for s in specs}

    def _check_array(self, spec: TensorSpec, value: Any) -> np.ndarray:
        if not isinstance(value, np.ndarray):
            raise InputError(
                f"input {spec.name!r} must be a numpy array, got {type(value).__name__}"
            )
        want = np.dtype(spec.dtype)
        if value.ndim != len(spec.shape):
            raise InputError(
                f"input {spec.name!r} must have {len(spec.shape)} dimensions {spec.shape}, got "
                f"shape {value.shape}"
            )
        for axis, (size, dim) in enumerate(zip(value.shape, spec.shape, strict=True)):
            if isinstance(dim, int) and size != dim:
                raise InputError(
                    f"input {spec.name!r} axis {axis} must be {dim} (shape {spec.shape}), got "
                    f"shape {value.shape}"
                )
            if size == 0:
                raise InputError(f"input {spec.name!r} is empty (shape {value.shape})")
        if value.dtype != want:
            if value.dtype.kind not in _SAFE_KINDS.get(want.kind, want.kind):
                raise InputError(f"input {spec.name!r} must be {want}, got dtype {value.dtype}")
            value = value.astype(want)
        if want.kind == "f" and not np.isfinite(value).all():
            index = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
            raise InputError(
                f"input {spec.name!r} holds {int((~np.isfinite(value)).sum())} NaN/inf values "
                f"(first at index {index}); expected finite features"
            )
        self._check_length(spec, value)
        return np.ascontiguousarray(value)

    def _check_length(self, spec: TensorSpec, value: np.ndarray) -> None:
        """A student input shorter than its receptive field gives no output step: say so."""
        desc = self.description
        if desc is None or desc.kind != "student" or desc.temporal is None or value.ndim != 3:
            return
        frames, needed = value.shape[1], desc.temporal.min_input_length
        if frames < needed:
            raise InputError(
                f"input {spec.name!r} has {frames} frames; this model needs at least {needed} "
                f"(its receptive field) to produce one output step"
            )

    def _sidecar_specs(self, which: str) -> tuple[TensorSpec, ...]:
        if self.description is None:
            return ()
        return tuple(getattr(self.description.graph, which))


def _named_like(
    engine: tuple[TensorSpec, ...], sidecar: tuple[TensorSpec, ...]
) -> tuple[TensorSpec, ...]:
    """Engine specs with the sidecar's names for dynamic axes (the engine knows only '?')."""
    by_name = {s.name: s for s in sidecar}
    out = []
    for spec in engine:
        ref = by_name.get(spec.name)
        if ref is None or len(ref.shape) != len(spec.shape):
            out.append(spec)
            continue
        shape = tuple(
            r if isinstance(e, str) and isinstance(r, str) else e
            for e, r in zip(spec.shape, ref.shape, strict=True)
        )
        out.append(TensorSpec(spec.name, shape, spec.dtype))
    return tuple(out)


def engine_version(module: str) -> str:
    """The installed version of an engine's distribution (``module`` is its import name)."""
    from importlib import metadata

    from edge_slr._optional import EXTRAS

    dist = EXTRAS.get(module.split(".")[0], ("", module.split(".")[0]))[1]
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "(version unknown)"


# "Exception from src/inference/src/cpp/core.cpp:84:": OpenVINO's C++ source locations
_SOURCE_LOCATION = re.compile(r"(Exception from )?\S+\.(c|cc|cpp|h|hpp):\d+:?")


def first_line(err: BaseException) -> str:
    """The first line of an exception's message that says something (engines append pages of
    context and OpenVINO starts with C++ source locations)."""
    for line in str(err).splitlines():
        line = line.strip()
        if line and not _SOURCE_LOCATION.fullmatch(line):
            return line
    return type(err).__name__


def dynamic_name(axis: int) -> str:
    """Name of an unnamed dynamic axis."""
    return f"dim{axis}"


def spec_from_dims(name: str, dims: Sequence[Any], dtype: Any) -> TensorSpec:
    """A TensorSpec from an engine's dims, where -1, None, 0 or a string mark a dynamic axis."""
    shape: list[int | str] = []
    for axis, dim in enumerate(dims):
        if isinstance(dim, str) and dim:
            shape.append(dim)
        elif dim is None or isinstance(dim, str) or int(dim) < 1:
            shape.append(dynamic_name(axis))
        else:
            shape.append(int(dim))
    return TensorSpec(name, tuple(shape), np.dtype(dtype).name)
