"""Where the shared real data lives (never inside the package).

``EDGE_SLR_SHARED_DATA`` wins; otherwise ``../shared/data`` relative to the working directory or
to the source checkout is used when it exists.
"""

from __future__ import annotations

import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """The shared real-data folder, or None when it is not present on this machine."""
    env = os.environ.get("EDGE_SLR_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd().parent / "shared" / "data", _CHECKOUT.parent / "shared" / "data"]
    for path in candidates:
        if path.is_dir():
            return path
    return None
