"""`import edge_slr` needs only numpy; a missing engine names the pip extra to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

HEAVY = {
    "torch": "train",
    "tensorflow": "convert",
    "openvino": "openvino",
    "nncf": "convert",
    "onnxruntime": "onnx",
    "onnx": "convert",
    "ai_edge_litert": "tflite",
    "mediapipe": "mediapipe",
    "cv2": "mediapipe",
    "pose_format": "pose",
    "pyarrow": "pose",
}


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_import_edge_slr_loads_no_engine():
    result = _run(
        """
        import sys, pkgutil, importlib
        import edge_slr, edge_slr.cli.main
        # every subpackage and module must import without pulling an engine
        for info in pkgutil.walk_packages(edge_slr.__path__, "edge_slr."):
            if info.name != "edge_slr.__main__":
                importlib.import_module(info.name)
        heavy = HEAVY_MODULES
        print(",".join(sorted(m for m in heavy if m in sys.modules)))
        """.replace("HEAVY_MODULES", repr(sorted(HEAVY)))
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"heavy modules imported: {result.stdout.strip()}"


@pytest.mark.parametrize("module,extra", sorted(HEAVY.items()))
def test_missing_engine_names_its_extra(module: str, extra: str):
    # sys.modules[name] = None makes every later `import name` raise ImportError, as if absent.
    result = _run(
        f"""
        import sys
        sys.modules[{module!r}] = None
        import edge_slr
        from edge_slr._optional import require
        from edge_slr.errors import MissingDependencyError
        try:
            require({module!r}, "a test")
        except MissingDependencyError as exc:
            assert isinstance(exc, ImportError)
            print(exc)
        else:
            raise SystemExit("no error raised")
        """
    )
    assert result.returncode == 0, result.stderr
    assert f"edge-slr[{extra}]" in result.stdout
    assert "for a test" in result.stdout


def test_cli_help_works_without_any_engine():
    blocked = "; ".join(f"sys.modules[{m!r}] = None" for m in HEAVY)
    result = _run(
        f"""
        import sys
        {blocked}
        from edge_slr.cli.main import main
        try:
            main(["--help"])
        except SystemExit as exc:
            sys.exit(exc.code)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "info" in result.stdout
