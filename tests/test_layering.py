"""The device side never imports training or conversion code (issue 14).

What runs where a model is deployed (the recognition package, the runtimes, CTC decoding, the
landmark extraction and the few top-level modules they use) must install and run without the
training and conversion stacks. The check reads the source, not what happens to be imported in
one run: every ``import`` and ``from ... import`` anywhere in a file (module level, inside
functions, under ``TYPE_CHECKING``), relative imports resolved, and ``import_module("...")`` calls
with a literal name. A second check follows edge_slr imports from the device side into the rest
of the package (a device module importing ``edge_slr.data``, whose ``__init__`` imported training
code, would depend on training all the same).

The one named exception: the torch reference runtime reads training checkpoints (a student's, a
torch corrector's), and it may do so only through their checkpoint loader modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edge_slr"
DEVICE_PACKAGES = ("recognition", "runtimes", "decoding", "landmarks")
# the top-level modules the device side uses
DEVICE_MODULES = (
    "__init__.py", "_optional.py", "errors.py", "metrics.py", "paths.py", "sidecar.py",
    "system.py", "_lazy.py",
)  # fmt: skip
FORBIDDEN = ("edge_slr.training", "edge_slr.converters")
CHECKPOINT_LOADERS = ("edge_slr.training.checkpoint", "edge_slr.training.corrector.checkpoint")
ALLOWED = {"edge_slr/runtimes/torch_rt.py": CHECKPOINT_LOADERS}
DYNAMIC_IMPORTS = ("import_module", "__import__")


def device_files(root: Path, packages: tuple[str, ...], modules: tuple[str, ...]) -> list[Path]:
    files = [p for name in packages for p in sorted((root / name).rglob("*.py"))]
    return files + [root / name for name in modules if (root / name).is_file()]


def module_name(path: Path, root: Path) -> str:
    """``edge_slr.runtimes.base`` for ``ROOT/runtimes/base.py``, the package for an __init__."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _from_base(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute dotted name) of everything ``path`` imports, wherever in the file.

    ``from a.b import c`` gives ``a.b.c``: ``c`` may be a submodule (``from edge_slr import
    training``), and a name inside a module lies within that module's name anyway.
    """
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(node, package)
            for alias in node.names:
                yield node.lineno, base if alias.name == "*" else f"{base}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args and _is_dynamic_import(node.func):
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield node.lineno, first.value


def _is_dynamic_import(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name in DYNAMIC_IMPORTS


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def bad_imports(
    path: Path, root: Path, forbidden: tuple[str, ...], allowed: Mapping[str, tuple[str, ...]]
) -> list[str]:
    """``file:line: import NAME`` for each forbidden import of ``path`` it is not allowed."""
    rel = path.relative_to(root.parent).as_posix()
    return [
        f"{rel}:{line}: import {target}"
        for line, target in sorted(imports(path, root))
        if within(target, forbidden) and not within(target, allowed.get(rel, ()))
    ]


def module_files(name: str, root: Path) -> list[Path]:
    """The files importing ``name`` runs: each package ``__init__`` on the way and the module
    itself (nothing for a name outside ``root``; a trailing class or function name is skipped)."""
    parts = name.split(".")
    if parts[0] != root.name:
        return []
    files = []
    for depth in range(1, len(parts) + 1):
        folder = root.joinpath(*parts[1:depth])
        if (folder / "__init__.py").is_file():
            files.append(folder / "__init__.py")
        elif folder.with_suffix(".py").is_file():
            files.append(folder.with_suffix(".py"))
            break
        else:
            break
    return files


def reached_bad_imports(
    start: list[Path],
    root: Path,
    forbidden: tuple[str, ...],
    allowed: Mapping[str, tuple[str, ...]],
) -> list[str]:
    """Forbidden imports anywhere in the code ``start`` imports, directly or not, each with the
    chain of imports that leads to it (allowed imports are not followed)."""
    chain: dict[Path, str] = {p: "" for p in start}
    queue, found = list(start), []
    while queue:
        path = queue.pop(0)
        rel = path.relative_to(root.parent).as_posix()
        for line, target in sorted(imports(path, root)):
            if within(target, forbidden):
                if not within(target, allowed.get(rel, ())):
                    found.append(f"{chain[path]}{rel}:{line}: import {target}")
                continue
            for file in module_files(target, root):
                if file not in chain:
                    chain[file] = f"{chain[path]}{rel}:{line} -> "
                    queue.append(file)
    return found


def test_device_side_never_imports_training_or_conversion_code() -> None:
    files = device_files(PACKAGE, DEVICE_PACKAGES, DEVICE_MODULES)
    assert len(files) > 30 and PACKAGE / "recognition" / "recognizer.py" in files
    found = [bad for path in files for bad in bad_imports(path, PACKAGE, FORBIDDEN, ALLOWED)]
    assert not found, "device-side code imports training or conversion code:\n" + "\n".join(found)


def test_the_exception_is_the_checkpoint_loaders_of_the_torch_runtime() -> None:
    assert (PACKAGE.parent / next(iter(ALLOWED))).is_file()
    for loader in CHECKPOINT_LOADERS:
        file = module_files(loader, PACKAGE)[-1]
        assert file.name == "checkpoint.py" and file.parent.is_relative_to(PACKAGE / "training")


def test_code_the_device_side_imports_never_imports_training_or_conversion_code() -> None:
    files = device_files(PACKAGE, DEVICE_PACKAGES, DEVICE_MODULES)
    found = reached_bad_imports(files, PACKAGE, FORBIDDEN, ALLOWED)
    assert not found, "the device side reaches training or conversion code:\n" + "\n".join(found)


PLANTED = {
    "__init__.py": "",
    "training/__init__.py": "",
    "training/checkpoint_io.py": "",
    "converters/__init__.py": "",
    "helper.py": "import os\n\nfrom pkg.converters import export\n",
    "device/__init__.py": "",
    "device/ok.py": "from pkg.training.checkpoint_io import load\nfrom . import nested\n",
    "device/nested.py": "import numpy as np\n",
    "device/in_function.py": "import os\n\n\ndef f():\n    from ..training import fit\n",
    "device/typing_only.py": (
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    import pkg.converters.job\n"
    ),
    "device/dynamic.py": (
        "import importlib\n\n\ndef g():\n    return importlib.import_module('pkg.training')\n"
    ),
    "device/indirect.py": "def h():\n    from pkg import helper\n",
    "device/parent.py": "from .. import training\n",
}


def test_the_checker_finds_planted_violations(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    for name, text in PLANTED.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, "utf-8")
    forbidden, allowed = (
        ("pkg.training", "pkg.converters"),
        {"pkg/device/ok.py": ("pkg.training.checkpoint_io",)},
    )
    files = device_files(root, ("device",), ())
    direct = [bad for path in files for bad in bad_imports(path, root, forbidden, allowed)]
    assert sorted(direct) == [
        "pkg/device/dynamic.py:5: import pkg.training",
        "pkg/device/in_function.py:5: import pkg.training.fit",
        "pkg/device/parent.py:1: import pkg.training",
        "pkg/device/typing_only.py:4: import pkg.converters.job",
    ]
    reached = reached_bad_imports(files, root, forbidden, allowed)
    assert "pkg/device/indirect.py:2 -> pkg/helper.py:3: import pkg.converters.export" in reached
    assert len(reached) == len(direct) + 1  # the allowed loader is neither reported nor followed
