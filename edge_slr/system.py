"""What this machine is: CPU model and flags, cores and threads, installed engines.

Used by `edge-slr info` and by every benchmark header, so that a number always comes with the
machine that produced it. Only the standard library is imported here.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import sys
from dataclasses import asdict, dataclass, field

import edge_slr
from edge_slr._optional import EXTRAS, require

# CPU features that decide INT8 and FP32 speed of the engines (VNNI = INT8 dot products).
RELEVANT_CPU_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni",
    "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "sve",
)  # fmt: skip

# (label, import name, distribution name): the engines and libraries `info` reports.
COMPONENTS = (
    ("numpy", "numpy", "numpy"),
    ("torch", "torch", "torch"),
    ("onnx", "onnx", "onnx"),
    ("onnxruntime", "onnxruntime", "onnxruntime"),
    ("openvino", "openvino", "openvino"),
    ("nncf", "nncf", "nncf"),
    ("tensorflow", "tensorflow", "tensorflow"),
    ("tf-keras", "tf_keras", "tf-keras"),
    ("ai-edge-litert", "ai_edge_litert", "ai-edge-litert"),
    ("tflite-runtime", "tflite_runtime", "tflite-runtime"),
    ("mediapipe", "mediapipe", "mediapipe"),
    ("opencv", "cv2", "opencv-contrib-python"),
    ("pose-format", "pose_format", "pose-format"),
    ("pyarrow", "pyarrow", "pyarrow"),
    ("ray", "ray", "ray"),
)


@dataclass(frozen=True)
class Component:
    name: str
    version: str | None  # installed distribution version, None when not installed
    importable: bool | None  # None when the import was not tried
    extra: str  # the pip extra that provides it
    error: str | None = None


@dataclass(frozen=True)
class MachineInfo:
    edge_slr_version: str
    python: str
    platform: str
    machine: str
    cpu_model: str
    cpu_flags: tuple[str, ...]
    logical_cpus: int
    usable_cpus: int
    thread_env: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _cpuinfo() -> tuple[str, set[str]]:
    """CPU model name and feature flags from /proc/cpuinfo (Linux); best effort elsewhere."""
    model = platform.processor() or platform.machine()
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags


def machine_info() -> MachineInfo:
    """Describe this machine (no heavy imports)."""
    model, flags = _cpuinfo()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    thread_vars = (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "TF_NUM_INTRAOP_THREADS",
    )
    return MachineInfo(
        edge_slr_version=edge_slr.__version__,
        python=sys.version.split()[0],
        platform=platform.platform(),
        machine=platform.machine(),
        cpu_model=model,
        cpu_flags=tuple(f for f in RELEVANT_CPU_FLAGS if f in flags),
        logical_cpus=os.cpu_count() or 1,
        usable_cpus=usable or 1,
        thread_env={k: os.environ[k] for k in thread_vars if k in os.environ},
    )


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def components(try_import: bool = True) -> list[Component]:
    """Installed engines with versions; with ``try_import`` each is really imported (slow: TF)."""
    found = []
    for name, module, dist in COMPONENTS:
        version = _version(dist)
        extra = EXTRAS.get(module, ("core", dist))[0]
        importable, error = None, None
        if try_import and version is not None:
            try:
                require(module)  # quietly: engines print C++ log lines on import
                importable = True
            except Exception as exc:  # a broken install must be reported, not crash `info`
                importable, error = False, f"{type(exc).__name__}: {exc}"
        elif version is None:
            importable = False
        found.append(Component(name, version, importable, extra, error))
    return found
