from __future__ import annotations

import json
import subprocess
import sys

from edge_slr.cli.main import main
from edge_slr.system import machine_info


def test_info_json_reports_machine_and_engines(capsys):
    assert main(["info", "--json", "--no-import-check"]) == 0
    report = json.loads(capsys.readouterr().out)
    machine = report["machine"]
    assert machine["usable_cpus"] >= 1
    assert machine["python"].count(".") == 2
    names = {c["name"]: c for c in report["components"]}
    assert names["numpy"]["version"] is not None
    assert {"torch", "openvino", "onnxruntime", "ai-edge-litert", "mediapipe"} <= set(names)
    assert all(c["extra"] for c in report["components"])


def test_cpu_flags_are_read_from_this_machine():
    flags = set(machine_info().cpu_flags)
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        text = f.read()
    if " avx2" in text:
        assert "avx2" in flags
    else:
        assert "avx2" not in flags


def test_python_dash_m_and_version():
    out = subprocess.run(
        [sys.executable, "-m", "edge_slr", "--version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0
    assert out.stdout.startswith("edge-slr ")
