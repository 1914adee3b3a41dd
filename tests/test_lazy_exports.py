"""Package ``__init__``s that load their names on first use (edge_slr._lazy, issue 14).

The device path imports ``edge_slr.landmarks.extract`` and ``edge_slr.decoding.vocab``; their
packages must not pull the landmark file readers or the corpus loaders in with them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edge_slr._lazy import lazy_exports


def modules_after(code: str) -> set[str]:
    """The edge_slr modules a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return {m for m in json.loads(out.stdout.splitlines()[-1]) if m.startswith("edge_slr")}


def test_the_video_path_imports_no_landmark_file_readers_or_corpus_code() -> None:
    loaded = modules_after("import edge_slr.landmarks.extract, edge_slr.decoding.vocab")
    assert "edge_slr.landmarks.extract" in loaded and "edge_slr.decoding.vocab" in loaded
    unwanted = {
        "edge_slr.landmarks.io",
        "edge_slr.landmarks.parquet",
        "edge_slr.landmarks.pose_file",
        "edge_slr.data",
        "edge_slr.data.corpora",
        "edge_slr.metrics",
    }
    assert not loaded & unwanted


def test_package_names_still_resolve_and_load_their_module() -> None:
    loaded = modules_after(
        "from edge_slr.landmarks import read_pose, LandmarkSequence\n"
        "from edge_slr.data import Vocabulary, load_corpus\n"
        "import edge_slr.decoding.vocab as v\n"
        "assert Vocabulary is v.Vocabulary"
    )
    assert {"edge_slr.landmarks.pose_file", "edge_slr.data.corpora"} <= loaded
    assert "edge_slr.landmarks.parquet" not in loaded  # only what was asked for


def test_star_import_gives_every_listed_name() -> None:
    import edge_slr.data
    import edge_slr.landmarks

    for package in (edge_slr.landmarks, edge_slr.data):
        namespace: dict[str, object] = {}
        exec(f"from {package.__name__} import *", namespace)
        assert set(package.__all__) <= set(namespace)


def test_unknown_names_and_clashes_are_errors() -> None:
    import edge_slr.landmarks

    with pytest.raises(AttributeError, match="'edge_slr.landmarks' has no attribute 'nope'"):
        edge_slr.landmarks.nope  # noqa: B018
    with pytest.raises(ValueError, match="pkg exports 'x' from both pkg.a and pkg.b"):
        lazy_exports("pkg", {"a": ("x",), "b": ("x",)})
    names, getattr_ = lazy_exports("edge_slr", {"errors": ("InputError",)})
    assert names == ["InputError"] and getattr_("InputError").__name__ == "InputError"
