"""Package ``__init__``s whose names load on first use (PEP 562).

A package that re-exports its submodules' names eagerly makes every import of one submodule run
all of them: the device path importing ``edge_slr.landmarks.extract`` would read the ``.pose``
and ``.parquet`` readers too. With :func:`lazy_exports` a package lists what it exports, and a
name's module is imported when the name is first looked up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[list[str], Callable[[str], Any]]:
    """``(__all__, __getattr__)`` for ``package``, from ``{submodule: names it exports}``.

    Submodules are relative to ``package`` (``"io"``) or absolute (``"edge_slr.decoding.vocab"``).
    """
    where: dict[str, str] = {}
    for module, names in exports.items():
        target = module if "." in module else f"{package}.{module}"
        for name in names:
            if name in where:
                raise ValueError(f"{package} exports {name!r} from both {where[name]} and {target}")
            where[name] = target

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(where[name]), name)

    return sorted(where), __getattr__
