"""One interface over the inference engines: OpenVINO, ONNX Runtime, LiteRT and a torch reference.

    from edge_slr.runtimes import available_runtimes, load_runtime

    available_runtimes()                         # ['openvino', 'onnxruntime', 'litert', 'torch']
    with load_runtime("models/", runtime="openvino", threads=2) as runtime:
        logits = runtime.run(features[None])     # (1, T, F) float32 -> (1, T', V)

A converted gloss corrector (an encoder and a decoder graph per stage) runs on the same engines
through :class:`RuntimeCorrector` (``load_runtime_corrector("models/")``), decoding in numpy.

Each engine lives in its own module and registers its :class:`Runtime` subclass; the registry
(:mod:`edge_slr.runtimes.registry`) is the only place that chooses between them. Importing this
package needs only numpy: an engine is imported when a model is loaded on it.
"""

from __future__ import annotations

# The built-in engines register themselves on import (their engine modules load lazily).
from edge_slr.runtimes import litert_rt, onnxruntime_rt, openvino_rt, torch_rt  # noqa: F401
from edge_slr.runtimes.base import InferenceError, Runtime
from edge_slr.runtimes.corrector import RuntimeCorrector, load_runtime_corrector
from edge_slr.runtimes.registry import (
    ModelEntry,
    available_runtimes,
    choose_model,
    find_models,
    get_runtime_class,
    load_runtime,
    register_runtime,
    runtime_names,
)

__all__ = [
    "InferenceError",
    "ModelEntry",
    "Runtime",
    "RuntimeCorrector",
    "available_runtimes",
    "choose_model",
    "find_models",
    "get_runtime_class",
    "load_runtime",
    "load_runtime_corrector",
    "register_runtime",
    "runtime_names",
]
