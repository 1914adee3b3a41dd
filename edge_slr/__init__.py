"""edge-slr: continuous sign language recognition on edge devices.

``import edge_slr`` needs only numpy; the recogniser and everything engine-specific load on use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Recognizer": "edge_slr.recognition.recognizer",
    "RecognizerOptions": "edge_slr.recognition.options",
    "RecognitionResult": "edge_slr.recognition.results",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edge_slr' has no attribute {name!r}")
