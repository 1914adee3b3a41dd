"""Import optional heavy dependencies where they are used, with an install hint when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from edge_slr.errors import MissingDependencyError

# module -> (pip extra that provides it, distribution name shown to the user)
EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("train", "torch"),
    "tqdm": ("train", "tqdm"),
    "matplotlib": ("train", "matplotlib"),
    "tensorflow": ("convert", "tensorflow"),
    "tf_keras": ("convert", "tf-keras"),
    "onnx": ("onnx", "onnx"),
    "onnxscript": ("convert", "onnxscript"),
    "onnxruntime": ("onnx", "onnxruntime"),
    "openvino": ("openvino", "openvino"),
    "nncf": ("openvino", "nncf"),
    "ai_edge_litert": ("tflite", "ai-edge-litert"),
    "mediapipe": ("mediapipe", "mediapipe"),
    "cv2": ("mediapipe", "opencv-contrib-python"),
    "pose_format": ("pose", "pose-format"),
    "pyarrow": ("pose", "pyarrow"),
}


def require(module: str, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install.

    ``module`` may be dotted (``"openvino.runtime"``); the extra is looked up by its top level.
    """
    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra, dist = EXTRAS.get(top, ("all", top))
        needed_for = f" for {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"{dist} is required{needed_for} but could not be imported ({exc}). "
            f"Install it with: pip install 'edge-slr[{extra}]' -c constraints.txt"
        ) from exc


def is_available(module: str) -> bool:
    """True when ``module`` imports (a missing or broken install is False)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
