"""`edge-slr info`: version, Python, engines and extras, CPU flags and threads."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "info",
        help="show the version, installed engines, CPU flags and threads",
        description="Show edge-slr's version, Python, which engines and extras are importable "
        "(with versions), the CPU flags that decide engine speed and the thread settings.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--no-import-check",
        action="store_true",
        help="report installed versions without importing the engines (faster)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import os
    from dataclasses import asdict

    # TensorFlow's start-up chatter (CUDA plugins, oneDNN notes) would bury the report.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from edge_slr.runtimes.litert_rt import interpreter_report
    from edge_slr.system import components, machine_info

    machine = machine_info()
    parts = components(try_import=not args.no_import_check)
    tflite = interpreter_report(try_import=not args.no_import_check)
    if args.json:
        report = {
            "machine": machine.to_dict(),
            "components": [asdict(c) for c in parts],
            "tflite_interpreter": tflite,
        }
        print(json.dumps(report, indent=2))
        return 0
    print(f"edge-slr {machine.edge_slr_version}  (Python {machine.python}, {machine.platform})")
    print(f"CPU        {machine.cpu_model}  [{machine.machine}]")
    print(f"cores      {machine.usable_cpus} usable / {machine.logical_cpus} logical")
    flags = ", ".join(machine.cpu_flags) or "none of the tracked ones"
    print(f"CPU flags  {flags}")
    vnni = any(f in machine.cpu_flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))
    print(
        f"INT8 dot   {'VNNI/AMX present: INT8 kernels are fast' if vnni else 'no VNNI: INT8 gains are smaller'}"
    )
    threads = ", ".join(f"{k}={v}" for k, v in machine.thread_env.items()) or "engine defaults"
    print(f"threads    {threads}")
    print()
    print(f"{'component':<16}{'version':<14}{'importable':<12}extra")
    for c in parts:
        status = {True: "yes", False: "no", None: "not checked"}[c.importable]
        print(f"{c.name:<16}{c.version or '-':<14}{status:<12}[{c.extra}]")
        if c.error:
            print(f"{'':<16}  {c.error}")
    print()
    print(f"TFLite     {_interpreter_line(tflite)}")
    return 0


def _interpreter_line(report: dict) -> str:
    """Which interpreter the litert runtime uses (ai-edge-litert, tflite-runtime or tf.lite)."""
    installed = report["installed"]
    if report["used"] is None:
        why = report.get("error", "none installed")
        return f"no interpreter for the litert runtime ({why}); extras [tflite] or [tflite-runtime]"
    used = report["used"]
    others = ", ".join(f"{m} {i['version']}" for m, i in installed.items() if m != used)
    also = f"; also installed: {others}" if others else ""
    return f"litert runtime uses {used} {installed[used]['version']}{also}"
