"""LiteRT / TFLite interpreters (ai-edge-litert, tflite-runtime, tf.lite) with dynamic time and INT8 I/O.

- Interpreter: the first installed of ``ai_edge_litert`` (the ``tflite`` extra), ``tflite_runtime``
  (the ``tflite-runtime`` extra: the last release, 2.14, is what many dev boards ship) and
  TensorFlow's ``tf.lite``; ``interpreter=`` picks one. Before loading, the model's op versions are
  checked against the interpreter's TensorFlow release (:mod:`edge_slr.runtimes.tflite_ops`): an
  op too new for it fails with one line naming the op, its version and the release it needs,
  instead of the engine's "Didn't find op for builtin opcode ...".
- Dynamic time: the converted students keep the frames axis dynamic (``shape_signature`` -1);
  the input is resized to each new length (``resize_tensor_input`` + ``allocate_tensors``),
  which is skipped while the length stays the same.
- Batch: the students are converted with batch 1 (that is what keeps T dynamic for the Keras
  LSTMs); a larger batch is run one sequence at a time and stacked.
- INT8 I/O: a model whose input or output tensors are integer-quantised (full-integer
  conversion with int8 I/O, for NPUs) still takes and returns float32 here: inputs are
  quantised with the tensor's scale and zero point, outputs dequantised.
- Names: tensors get the signature's names ("features"), and a single output takes the
  sidecar's name ("logits"), so every runtime of a model shows the same names.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_slr._optional import native_logs_filtered
from edge_slr.errors import InputError, MissingDependencyError
from edge_slr.runtimes import tflite_ops
from edge_slr.runtimes.base import Runtime, spec_from_dims
from edge_slr.runtimes.registry import register_runtime
from edge_slr.sidecar import TensorSpec

logger = logging.getLogger(__name__)

# (module, pip distribution, edge-slr extra), in the order they are tried.
INTERPRETERS = (
    ("ai_edge_litert", "ai-edge-litert", "tflite"),
    ("tflite_runtime", "tflite-runtime", "tflite-runtime"),
    ("tensorflow", "tensorflow", "convert"),
)
INTERPRETER_MODULES = tuple(module for module, _, _ in INTERPRETERS)


@dataclass(frozen=True)
class InterpreterInfo:
    """One TFLite interpreter package: its module, version and TensorFlow release."""

    module: str
    version: str
    interpreter_class: Any

    @property
    def release(self) -> str | None:
        """The TensorFlow release its kernels are (None for ai-edge-litert: own numbering)."""
        return None if self.module == "ai_edge_litert" else self.version

    @property
    def label(self) -> str:
        return f"{self.module} {self.version}"


def installed_interpreters() -> list[str]:
    """Interpreter modules present here, in preference order (found, not imported)."""
    return [m for m in INTERPRETER_MODULES if _present(m)]


def _present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken package, or one blocked in sys.modules
        return False


def interpreter_report(try_import: bool = True) -> dict[str, Any]:
    """Which TFLite interpreter the litert runtime uses here, and every one installed (versions
    from package metadata; ``try_import`` imports the one used to confirm it loads)."""
    import importlib.metadata

    installed = {}
    for module, dist, extra in INTERPRETERS:
        if not _present(module):
            continue
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = None
        installed[module] = {"version": version, "extra": extra}
    report: dict[str, Any] = {"used": next(iter(installed), None), "installed": installed}
    if try_import and installed:
        try:
            report["used"] = load_interpreter().module
        except MissingDependencyError as err:
            report["used"], report["error"] = None, str(err)
    return report


def load_interpreter(module: str | None = None) -> InterpreterInfo:
    """Import the TFLite interpreter ``module`` (None: the first installed of INTERPRETERS)."""
    if module is not None and module not in INTERPRETER_MODULES:
        raise InputError(
            f"interpreter must be one of {list(INTERPRETER_MODULES)} or None, got {module!r}"
        )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tried = []
    for name in [module] if module else installed_interpreters():
        try:
            package = importlib.import_module(name)
            cls = (
                package.lite.Interpreter
                if name == "tensorflow"
                else importlib.import_module(f"{name}.interpreter").Interpreter
            )
        except (ImportError, AttributeError) as err:
            tried.append(f"{name}: {err}")
            continue
        return InterpreterInfo(name, str(getattr(package, "__version__", "0")), cls)
    hint = " or ".join(f"pip install 'edge-slr[{extra}]'" for _, _, extra in INTERPRETERS[:2])
    wanted = module or " / ".join(INTERPRETER_MODULES)
    raise MissingDependencyError(
        f"a TFLite interpreter ({wanted}) is required for running TFLite models but none could "
        f"be imported ({'; '.join(tried) or 'none installed'}). Install one with: {hint} "
        "-c constraints.txt"
    )


@dataclass(frozen=True)
class _Tensor:
    """One input or output tensor of the interpreter and how to (de)quantise it."""

    name: str
    index: int
    signature: tuple[int, ...]  # -1 = dynamic
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.dtype.kind in "iu" and self.scale > 0

    @property
    def batch_one(self) -> bool:
        return len(self.signature) >= 2 and self.signature[0] == 1

    def spec(self) -> TensorSpec:
        # The caller sees float32 for quantised tensors and a free batch axis (see module doc).
        dims: list[int | str] = list(self.signature)
        if self.batch_one:
            dims[0] = "batch"
        return spec_from_dims(self.name, dims, np.float32 if self.quantized else self.dtype)

    def quantize(self, values: np.ndarray) -> np.ndarray:
        if not self.quantized:
            return values.astype(self.dtype, copy=False)
        info = np.iinfo(self.dtype)
        q = np.round(values / self.scale + self.zero_point)
        return np.clip(q, info.min, info.max).astype(self.dtype)

    def dequantize(self, values: np.ndarray) -> np.ndarray:
        if not self.quantized:
            return np.array(values)  # a copy: the interpreter reuses its buffers
        return ((values.astype(np.float32) - self.zero_point) * self.scale).astype(np.float32)


@register_runtime
class LiteRTRuntime(Runtime):
    name = "litert"
    engine = "litert"
    # The registry checks availability by importing ``requires``: the first interpreter present
    # (found without importing), so that tflite-runtime alone makes the runtime available.
    requires = next(iter(installed_interpreters()), "ai_edge_litert")
    suffixes = (".tflite",)
    description_text = "LiteRT / TFLite interpreter (ai-edge-litert, tflite-runtime or tf.lite), XNNPACK on the CPU"

    def _load(self, interpreter: str | None = None) -> None:
        self.interpreter = load_interpreter(interpreter)
        ops = tflite_ops.read_op_codes(self.model_path)
        if self.interpreter.release is not None:
            tflite_ops.check_runtime(
                self.model_path, self.interpreter.release, self.interpreter.label, ops
            )
        logger.debug("%s on %s", self.model_path.name, self.interpreter.label)
        self._interp = self.interpreter.interpreter_class(
            model_path=str(self.model_path), num_threads=self.threads
        )
        names_in, names_out = _signature_names(self._interp)
        names_in = names_in or {d["index"]: d["name"] for d in self._interp.get_input_details()}
        names_out = names_out or {d["index"]: d["name"] for d in self._interp.get_output_details()}
        if self.description is not None:
            names_out = _sidecar_names(names_out, self.description.graph.outputs)
            names_in = _sidecar_names(names_in, self.description.graph.inputs)
        self._in = [_tensor(d, names_in) for d in self._interp.get_input_details()]
        self._out = [_tensor(d, names_out) for d in self._interp.get_output_details()]
        # Nothing is allocated yet: the converted shape (T=1) is shorter than the receptive
        # field, so the first call sizes the tensors.
        self._shapes: dict[int, tuple[int, ...]] = {}
        self._invoked = False

    def _engine_settings(self) -> dict[str, Any]:
        return {
            "interpreter": self.interpreter.module,
            "interpreter_version": self.interpreter.version,
        }

    def _engine_inputs(self) -> tuple[TensorSpec, ...]:
        return tuple(t.spec() for t in self._in)

    def _engine_outputs(self) -> tuple[TensorSpec, ...]:
        return tuple(t.spec() for t in self._out)

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = {feeds[t.name].shape[0] for t in self._in if t.batch_one}
        if batch and max(batch) > 1:
            if len(batch) > 1:
                raise ValueError(f"inputs disagree on the batch size: {sorted(batch)}")
            rows = [
                self._invoke({k: v[i : i + 1] for k, v in feeds.items()}) for i in range(*batch)
            ]
            return {t.name: np.concatenate([r[t.name] for r in rows]) for t in self._out}
        return self._invoke(feeds)

    def _invoke(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        resized = False
        for t in self._in:
            shape = feeds[t.name].shape
            if self._shapes.get(t.index) != shape:
                self._interp.resize_tensor_input(t.index, list(shape))
                self._shapes[t.index] = shape
                resized = True
        if resized:
            self._interp.allocate_tensors()
        for t in self._in:
            self._interp.set_tensor(t.index, t.quantize(feeds[t.name]))
        if not self._invoked:  # the XNNPACK delegate announces itself on the first call
            with native_logs_filtered():
                self._interp.invoke()
            self._invoked = True
        else:
            self._interp.invoke()
        return {t.name: t.dequantize(self._interp.get_tensor(t.index)) for t in self._out}

    def _close(self) -> None:
        self._interp = None


def _tensor(detail: dict[str, Any], names: dict[int, str]) -> _Tensor:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return _Tensor(
        name=names.get(detail["index"], detail["name"]),
        index=int(detail["index"]),
        signature=tuple(int(d) for d in detail.get("shape_signature", detail["shape"])),
        dtype=np.dtype(detail["dtype"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )


def _signature_names(interp: Any) -> tuple[dict[int, str], dict[int, str]]:
    """Tensor index -> signature name ("features" rather than "serving_default_features:0")."""
    signatures = interp.get_signature_list()
    if len(signatures) != 1:
        return {}, {}
    runner = interp.get_signature_runner(next(iter(signatures)))
    inputs = {d["index"]: name for name, d in runner.get_input_details().items()}
    outputs = {d["index"]: name for name, d in runner.get_output_details().items()}
    return inputs, outputs


def _sidecar_names(names: dict[int, str], specs: tuple[TensorSpec, ...]) -> dict[int, str]:
    """With one tensor on both sides the sidecar's name is unambiguous: use it."""
    if len(names) == 1 and len(specs) == 1:
        return {next(iter(names)): specs[0].name}
    return names
