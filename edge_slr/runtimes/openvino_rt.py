"""OpenVINO on the CPU: IR (``.xml`` + ``.bin``) or ONNX files, with latency/throughput hints.

- Compile settings: the sidecar's ``engine.config`` when the model was converted for OpenVINO,
  then ``hint`` ("LATENCY", "THROUGHPUT"), ``threads`` (``INFERENCE_NUM_THREADS``) and any extra
  ``config`` properties. With fewer threads than cores, ``ENABLE_CPU_PINNING`` defaults to NO
  (pinned, every such model runs on the first core, whichever thread calls it).
- Precision: floating-point layers run in the precision the model was verified with, which the
  sidecar records as ``INFERENCE_PRECISION_HINT`` (f32 unless the conversion verified bf16).
  Without that record (older sidecars, foreign models) it is f32: on CPUs with AVX512_BF16/AMX the
  plugin's default is bf16, which moves logits by about 1e-3 and changes INT8 decodes, so what
  was verified on one CPU would not be what runs on another. ``inference_precision="bf16"`` asks
  for bf16 explicitly (a warning says when that is not what was verified).
- Dynamic time: converted models keep batch and frames dynamic and compile once. A model with
  a fixed input shape (an IR saved with static shapes, e.g. for a fixed-length accelerator) is
  reshaped to each new input shape and recompiled; the last few compiled shapes are cached.
- ``run_many`` keeps several asynchronous requests in flight (what the THROUGHPUT hint is for).
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from edge_slr._optional import require
from edge_slr.errors import InputError
from edge_slr.runtimes.base import Feeds, Runtime, spec_from_dims
from edge_slr.runtimes.registry import register_runtime
from edge_slr.sidecar import TensorSpec

logger = logging.getLogger(__name__)

HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")
PRECISION_KEY = "INFERENCE_PRECISION_HINT"
INFERENCE_PRECISIONS = ("f32", "bf16")
EXACT_FP32 = {PRECISION_KEY: "f32"}
PINNING_KEY = "ENABLE_CPU_PINNING"
# OpenVINO 2026.4 CPU plugin: a compiled graph whose first inference has source length 1 reuses
# a wrong cached kernel for later lengths >= 16 (converters.corrector_export): correctors compile
# with the shape-specialised runtime cache off.
RUNTIME_CACHE_OFF = {"CPU_RUNTIME_CACHE_CAPACITY": "0"}
_SHAPE_CACHE = 4  # compiled models kept for static-shape IRs


@register_runtime
class OpenVINORuntime(Runtime):
    name = "openvino"
    engine = "openvino"
    requires = "openvino"
    suffixes = (".xml", ".onnx")
    description_text = "OpenVINO (CPU): IR or ONNX, latency/throughput hints"

    def _load(
        self,
        device: str = "CPU",
        hint: str | None = "LATENCY",
        config: dict[str, Any] | None = None,
        inference_precision: str | None = None,
    ) -> None:
        if hint is not None and hint not in HINTS:
            raise InputError(f"OpenVINO hint must be one of {HINTS} or None, got {hint!r}")
        if inference_precision is not None and inference_precision not in INFERENCE_PRECISIONS:
            raise InputError(
                f"inference_precision must be one of {INFERENCE_PRECISIONS} or None, got "
                f"{inference_precision!r}"
            )
        ov = require("openvino", "running OpenVINO models")
        self._core = ov.Core()
        self._model = self._core.read_model(str(self.model_path))
        self._device = device
        self._config = self._compile_config(hint, config, inference_precision)
        self._static = not all(port.get_partial_shape().is_dynamic for port in self._model.inputs)
        self._compiled: OrderedDict[tuple, Any] = OrderedDict()
        shapes = self._input_shapes(None)
        self._compile(shapes)

    def _compile_config(
        self, hint: str | None, extra: dict[str, Any] | None, precision: str | None
    ) -> dict[str, str]:
        desc = self.description
        config: dict[str, str] = {}
        if desc is not None and desc.engine.get("name") == self.engine:
            config = {k: str(v) for k, v in (desc.engine.get("config") or {}).items()}
        verified = config.setdefault(PRECISION_KEY, EXACT_FP32[PRECISION_KEY])
        if precision is not None and precision != verified:
            logger.warning(
                "%s was verified with %s inference; running it in %s as asked",
                self.model_path.name, verified, precision,
            )  # fmt: skip
            config[PRECISION_KEY] = precision
        if desc is not None and desc.kind == "corrector":
            for key, value in RUNTIME_CACHE_OFF.items():  # see RUNTIME_CACHE_OFF
                config.setdefault(key, value)
        if hint is not None:
            config["PERFORMANCE_HINT"] = hint
        if self.threads is not None:
            config["INFERENCE_NUM_THREADS"] = str(self.threads)
            if self.threads < (os.cpu_count() or 1):
                # fewer threads than cores: OpenVINO pins them to the first cores, so models run
                # from other threads (live extraction, a second stream) would share core 0
                config.setdefault(PINNING_KEY, "NO")
        config.update({k: str(v) for k, v in (extra or {}).items()})
        return config

    @property
    def config(self) -> dict[str, str]:
        """The properties the model was compiled with."""
        return dict(self._config)

    @property
    def inference_precision(self) -> str:
        """What the plugin really runs floating-point layers in, "f32", "bf16" or "f16" (a bf16
        hint falls back to f32 on CPUs without bf16 support)."""
        compiled, _ = next(reversed(self._compiled.values()))
        value = str(compiled.get_property(PRECISION_KEY)).lower()
        return "bf16" if "bf16" in value else "f16" if "f16" in value else "f32"

    def _engine_settings(self) -> dict[str, Any]:
        return {
            "device": self._device,
            "config": self.config,
            "inference_precision": self.inference_precision,
        }

    # -- shapes and compilation -------------------------------------------------------------------
    def _input_shapes(self, feeds: dict[str, np.ndarray] | None) -> tuple:
        """The compile key: () for a dynamic model, else the input shapes."""
        if not self._static:
            return ()
        if feeds is None:
            return tuple(
                tuple(p.get_partial_shape().to_shape()) if p.get_partial_shape().is_static else ()
                for p in self._model.inputs
            )
        return tuple(feeds[p.get_any_name()].shape for p in self._model.inputs)

    def _compile(self, shapes: tuple) -> Any:
        if shapes in self._compiled:
            self._compiled.move_to_end(shapes)
            return self._compiled[shapes]
        if shapes and all(shapes):
            current = tuple(
                tuple(p.get_partial_shape().to_shape()) if p.get_partial_shape().is_static else ()
                for p in self._model.inputs
            )
            if current != shapes:
                logger.debug("reshaping %s to %s", self.model_path.name, shapes)
                self._model.reshape(
                    {
                        p.get_any_name(): list(s)
                        for p, s in zip(self._model.inputs, shapes, strict=True)
                    }
                )
        compiled = self._core.compile_model(self._model, self._device, self._config)
        entry = (compiled, compiled.create_infer_request())
        self._compiled[shapes] = entry
        while len(self._compiled) > _SHAPE_CACHE:
            self._compiled.popitem(last=False)
        return entry

    # -- Runtime interface ------------------------------------------------------------------------
    def _engine_inputs(self) -> tuple[TensorSpec, ...]:
        return tuple(_spec(port, dynamic=self._static) for port in self._model.inputs)

    def _engine_outputs(self) -> tuple[TensorSpec, ...]:
        return tuple(_spec(port, dynamic=self._static) for port in self._model.outputs)

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        compiled, request = self._compile(self._input_shapes(feeds))
        result = request.infer(feeds)
        # The request reuses its output memory: copy before the next call overwrites it.
        return {port.get_any_name(): np.array(result[port]) for port in compiled.outputs}

    def run_many(self, batch: Sequence[Feeds]) -> list[np.ndarray]:
        if self._static or len(batch) < 2:
            return super().run_many(batch)
        compiled, _ = self._compile(())
        checked = [self._check_feeds(item) for item in batch]
        # As many requests in flight as the plugin finds useful (the THROUGHPUT hint raises it).
        count = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        requests = [compiled.create_infer_request() for _ in range(min(count, len(checked)))]
        primary = next(p for p in compiled.outputs if p.get_any_name() == self.primary_output)
        results = []
        for first in range(0, len(checked), len(requests)):
            active = list(zip(requests, checked[first : first + len(requests)], strict=False))
            for request, feeds in active:
                request.start_async(feeds)
            for request, _ in active:
                request.wait()
                results.append(np.array(request.get_tensor(primary).data))
        return results

    def _close(self) -> None:
        self._compiled.clear()
        self._model = None
        self._core = None


def _spec(port: Any, dynamic: bool) -> TensorSpec:
    """A port's spec; for a static-shape IR that is reshaped on demand every axis is dynamic
    except the last (features / classes), which reshaping never changes."""
    shape = port.get_partial_shape()
    dims = [-1 if d.is_dynamic else d.get_length() for d in shape]
    if dynamic:
        dims = [-1] * (len(dims) - 1) + dims[-1:]
    return spec_from_dims(port.get_any_name(), dims, port.get_element_type().to_dtype())
