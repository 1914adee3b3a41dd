"""Shared fixtures. Tests that need ../shared/data skip with a clear reason when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_slr.paths import shared_data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder (../shared/data); skips the test when this machine lacks it."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("../shared/data is absent (set EDGE_SLR_SHARED_DATA to its location)")
    return path


def shared_file(shared: Path, relative: str) -> Path:
    """A file inside the shared data folder; skips when that one file is missing."""
    path = shared / relative
    if not path.exists():
        pytest.skip(f"{relative} is absent from {shared}")
    return path
