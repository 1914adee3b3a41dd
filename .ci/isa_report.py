"""Print which instruction set each engine actually uses in this process's environment.

`make test-isa` runs the numeric tests under several ISA limits; this report, printed before
each run, shows that the limit took effect (each engine's own report, not the variables):

- torch: ``torch.backends.cpu.get_cpu_capability()`` (ATen kernels; ``ATEN_CPU_CAPABILITY``) and
  oneDNN's ``isa`` line (convolutions, LSTMs; ``ONEDNN_MAX_CPU_ISA``);
- OpenVINO: the ``primitiveType`` its CPU plugin chose for a convolution (its own oneDNN fork
  honours ``ONEDNN_MAX_CPU_ISA``, e.g. ``brgconv_avx2_f32`` -> ``jit_sse42_f32``);
- ONNX Runtime (MLAS) and LiteRT (XNNPACK) choose kernels from CPUID with no switch, so they run
  the machine's full ISA in every configuration; that is stated, not hidden.
"""

from __future__ import annotations

import os
import subprocess
import sys


def torch_report() -> str:
    code = (
        "import torch; torch.set_num_threads(1); torch.nn.LSTM(8, 8)(torch.randn(3, 1, 8)); "
        "print('capability', torch.backends.cpu.get_cpu_capability())"
    )
    env = {**os.environ, "ONEDNN_VERBOSE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    lines = (out.stdout + out.stderr).splitlines()
    isa = next((line.split("isa:")[1] for line in lines if "isa:" in line), "?")
    capability = next((line.split()[1] for line in lines if line.startswith("capability")), "?")
    return f"torch {capability}, oneDNN {isa}"


def openvino_report() -> str:
    import numpy as np
    import openvino as ov

    ops = ov.opset13
    x = ops.parameter([1, 16, 32], np.float32, name="x")
    conv = ops.convolution(x, ops.constant(np.ones((16, 16, 3), np.float32)), [1], [0], [0], [1])
    compiled = ov.Core().compile_model(
        ov.Model([conv], [x]), "CPU", {"INFERENCE_NUM_THREADS": "1"}
    )
    kinds = {
        op.get_rt_info()["primitiveType"].astype(str)
        for op in compiled.get_runtime_model().get_ops()
        if op.get_rt_info()["layerType"].astype(str) == "Convolution"
    }
    return f"OpenVINO convolution {', '.join(sorted(kinds))}"


def main() -> None:
    limits = {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if k in os.environ}
    flags = open("/proc/cpuinfo").read().split("flags", 1)[1].split("\n", 1)[0].split()
    simd = [f for f in flags if f.startswith(("avx", "amx", "fma", "sse4"))]
    print(f"isa limits: {limits or 'none (full ISA)'}; CPU flags: {' '.join(simd)}")
    print(f"  {torch_report()}")
    print(f"  {openvino_report()}")
    print("  ONNX Runtime (MLAS) and LiteRT (XNNPACK): full ISA (no switch)")


if __name__ == "__main__":
    main()
