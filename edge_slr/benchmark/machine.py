"""The machine in a benchmark header: CPU, flags, cores, clock, load, engine versions, peak FLOP/s.

Built on :mod:`edge_slr.system` (standard library only: engines are not imported, their versions
come from the installed distributions' metadata).

The peak FLOP/s is an *assumption*, stated in the output: cores x clock x FP32 FLOPs per cycle
per core, where FLOPs per cycle follow the widest SIMD the flags show, with two FMA units
(an FMA = 2 FLOPs): AVX-512 64 on Intel (two 512-bit FMA ports) and 32 on AMD (Zen 4 runs
512-bit FMAs as two 256-bit halves), AVX2+FMA 32, AVX 16, SSE 8, Arm NEON 16 (two 128-bit FMA
units), otherwise 8. The clock is the highest the kernel reports (cpufreq maximum, else the
highest "cpu MHz", else the "@ x.xGHz" of the model name); turbo and throttling are ignored.
"""

from __future__ import annotations

import os
import platform
import re
import socket
from pathlib import Path
from typing import Any

from edge_slr.system import _version, machine_info

# distributions whose versions a benchmark records (engines and what changes their speed)
ENGINE_DISTRIBUTIONS = (
    "numpy", "onnxruntime", "openvino", "ai-edge-litert", "tensorflow", "torch", "mediapipe",
    "opencv-contrib-python",
)  # fmt: skip


def cpu_clock_ghz() -> tuple[float | None, str]:
    """The CPU clock in GHz and where it came from."""
    cpufreq = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    try:
        return int(cpufreq.read_text().strip()) / 1e6, "cpufreq cpuinfo_max_freq"
    except (OSError, ValueError):
        pass
    mhz, model = [], ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "cpu MHz":
                mhz.append(float(value))
            elif key.strip() == "model name" and not model:
                model = value
    except (OSError, ValueError):
        pass
    if mhz:
        return max(mhz) / 1000.0, "/proc/cpuinfo cpu MHz (highest)"
    found = re.search(r"@\s*([0-9.]+)\s*GHz", model)
    if found:
        return float(found.group(1)), "CPU model name"
    return None, "unknown"


def flops_per_cycle(flags: tuple[str, ...], cpu_model: str) -> tuple[int, str]:
    """Assumed FP32 FLOPs per cycle per core, and the reason (see the module doc)."""
    amd = "AMD" in cpu_model.upper()
    if "avx512f" in flags:
        if amd:
            return 32, "AVX-512 on AMD: 512-bit FMA as two 256-bit halves, 2 units"
        return 64, "AVX-512: two 512-bit FMA units"
    if "avx2" in flags and "fma" in flags:
        return 32, "AVX2: two 256-bit FMA units"
    if "avx" in flags:
        return 16, "AVX: one 256-bit add + one multiply"
    if "asimd" in flags:
        return 16, "Arm NEON: two 128-bit FMA units"
    if "sse4_2" in flags:
        return 8, "SSE: 128-bit add + multiply"
    return 8, "unknown SIMD: 8 assumed"


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def describe_machine() -> dict[str, Any]:
    """The machine as a JSON-ready dict (CPU, flags, cores, clock, peak, load, versions)."""
    info = machine_info().to_dict()
    info["cpu_flags"] = list(info["cpu_flags"])
    ghz, clock_source = cpu_clock_ghz()
    per_cycle, per_cycle_reason = flops_per_cycle(tuple(info["cpu_flags"]), info["cpu_model"])
    info.update(
        hostname=socket.gethostname(),
        os=platform.system(),
        clock_ghz=None if ghz is None else round(ghz, 3),
        clock_source=clock_source,
        flops_per_cycle=per_cycle,
        flops_per_cycle_reason=per_cycle_reason,
        load_average=load_average(),
        memory_gb=_memory_gb(),
        engines={
            name: version
            for name in ENGINE_DISTRIBUTIONS
            if (version := _version(name)) is not None
        },
    )
    return info


def int8_factor(machine: dict[str, Any]) -> int:
    """INT8 ops per cycle relative to FP32 FLOPs: 4 with dot-product instructions (VNNI, AMX,
    Arm dotprod: four 8-bit products per 32-bit lane and instruction), else 2."""
    flags = set(machine.get("cpu_flags", ()))
    return 4 if flags & {"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"} else 2


def _cores(machine: dict[str, Any], threads: int | None) -> int:
    usable = int(machine.get("usable_cpus") or 1)
    return usable if threads is None else max(1, min(int(threads), usable))


def peak_gflops(
    machine: dict[str, Any], threads: int | None, precision: str = "fp32"
) -> float | None:
    """Assumed peak of ``threads`` cores (None: every usable core) in GFLOP/s (INT8: GOP/s)."""
    ghz = machine.get("clock_ghz")
    if not ghz:
        return None
    peak = _cores(machine, threads) * float(ghz) * int(machine.get("flops_per_cycle") or 8)
    return peak * int8_factor(machine) if precision == "int8" else peak


def peak_assumption(machine: dict[str, Any], threads: int | None) -> str:
    """One sentence stating how the peak was computed (printed under the table)."""
    peak = peak_gflops(machine, threads)
    if peak is None:
        return "CPU peak FLOP/s unknown (no clock reported)"
    return (
        f"assumed FP32 peak {peak:.1f} GFLOP/s = {_cores(machine, threads)} cores x "
        f"{machine['clock_ghz']:.2f} GHz ({machine.get('clock_source')}) x "
        f"{machine.get('flops_per_cycle')} FLOPs/cycle ({machine.get('flops_per_cycle_reason')}); "
        f"INT8-weight rows against {int8_factor(machine)}x that (INT8 ops/cycle); "
        "1 logical CPU counted as 1 core"
    )


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None
