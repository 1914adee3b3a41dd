"""Where batch outputs go: a folder on this machine, or any fsspec URL.

A target is a local :class:`~pathlib.Path`, or a ``str`` URL (``file:///data/out``,
``memory://out``, ``s3://bucket/out``, ``gs://...``: whatever protocol fsspec and its backend
package, e.g. s3fs, provide; credentials come from the backend's usual configuration). Plain paths
need nothing beyond the standard library; URLs need fsspec (the ``cluster`` extra).

Writes are atomic on both: a file is written under a hidden temporary name in its own folder and
then moved into place (``os.replace`` locally; for a URL, written locally, uploaded next to the
target and ``fs.mv``-ed onto it: a rename on file systems, a server-side copy on object stores,
where an object appears whole or not at all). Readers never see a half-written file; a temporary
left by a killed writer matches :data:`PARTIAL` and is removed by :func:`remove_partials`.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from edge_slr._optional import require
from edge_slr.errors import InputError, MissingDependencyError

Target = Path | str
# Temporaries: ours (".NAME.partial-PID.npz") and the landmark writers' own ("X.npz.partial").
PARTIAL = re.compile(r"^(\..+\.partial-\d+(\.(npz|pose|json|jsonl))?|.+\.(npz|pose)\.partial)$")


def is_url(target: Target) -> bool:
    return isinstance(target, str) and "://" in target


def as_target(out: str | Path) -> Target:
    """A local Path, or a URL (checked: its protocol must be available here)."""
    if not is_url(out):
        return Path(out)
    url = str(out).rstrip("/")
    filesystem(url)  # an unknown protocol or a missing backend fails here, before any work
    return url


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec file system, path inside it) of a URL."""
    fsspec = require("fsspec", "output to a URL")
    try:
        return fsspec.core.url_to_fs(url)  # type: ignore[no-any-return]
    except ImportError as err:  # the protocol's backend (s3fs, gcsfs, ...) is not installed
        raise MissingDependencyError(f"{url}: {err}") from err
    except ValueError as err:
        raise InputError(f"{url}: not a URL fsspec can open ({err})") from err


def join(folder: Target, relative: str) -> Target:
    """``folder/relative`` (``relative`` in POSIX form)."""
    return f"{folder}/{relative}" if is_url(folder) else Path(folder) / relative


def parent(target: Target) -> Target:
    return str(target).rsplit("/", 1)[0] if is_url(target) else Path(target).parent


def relative_to(target: Target, folder: Target) -> str:
    """``target``'s path below ``folder`` (POSIX form), as the manifest keys outputs."""
    if is_url(target):
        prefix = f"{folder}/"
        if not str(target).startswith(prefix):
            raise InputError(f"{target} is not inside {folder}")
        return str(target)[len(prefix) :]
    return Path(os.path.relpath(target, folder)).as_posix()


def common_folder(folders: Iterable[Target]) -> Target:
    """The deepest folder that holds all ``folders`` (on one file system)."""
    folders = list(folders)
    if not any(is_url(f) for f in folders):
        return Path(os.path.commonpath([str(f) for f in folders]))
    protocols = {str(f).split("://", 1)[0] for f in folders}
    if len(protocols) != 1 or not all(is_url(f) for f in folders):
        raise InputError(f"outputs must be on one file system, got {sorted(map(str, folders))}")
    protocol = protocols.pop()
    rests = [str(f).split("://", 1)[1] for f in folders]
    split = [r.split("/") for r in rests]
    common = []
    for parts in zip(*split, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return f"{protocol}://{'/'.join(common)}"


def exists(target: Target) -> bool:
    if is_url(target):
        fs, path = filesystem(str(target))
        return bool(fs.exists(path))
    return Path(target).exists()


def makedirs(folder: Target) -> None:
    if is_url(folder):
        fs, path = filesystem(str(folder))
        fs.makedirs(path, exist_ok=True)
    else:
        Path(folder).mkdir(parents=True, exist_ok=True)


def partial_name(name: str) -> str:
    """The temporary name of ``name`` while it is written: hidden, and the same suffix, so the
    writer that dispatches on the suffix picks the right format."""
    stem, dot, suffix = name.rpartition(".")
    stem, suffix = (stem, f".{suffix}") if dot and stem else (name, "")
    return f".{stem}.partial-{os.getpid()}{suffix}"


def save_atomic(target: Target, write: Callable[[Path], None]) -> None:
    """``write(local_path)`` a file, then move it onto ``target`` in one step."""
    if not is_url(target):
        target = Path(target)
        partial = target.with_name(partial_name(target.name))
        try:
            write(partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return
    fs, path = filesystem(str(target))
    name = path.rsplit("/", 1)[-1]
    remote_partial = f"{path.rsplit('/', 1)[0]}/{partial_name(name)}"
    with tempfile.TemporaryDirectory(prefix="edge-slr-") as tmp:
        local = Path(tmp) / name
        write(local)
        try:
            fs.put_file(str(local), remote_partial)
            fs.mv(remote_partial, path)
        finally:
            if fs.exists(remote_partial):
                fs.rm(remote_partial)


def write_text_atomic(target: Target, text: str) -> None:
    def write(local: Path) -> None:
        local.write_text(text, "utf-8")

    save_atomic(target, write)


def read_text(target: Target) -> str | None:
    """The file's text, or None when it does not exist."""
    if is_url(target):
        fs, inside = filesystem(str(target))
        if not fs.exists(inside):
            return None
        return bytes(fs.cat_file(inside)).decode("utf-8", errors="replace")
    path = Path(target)
    return path.read_text("utf-8", errors="replace") if path.exists() else None


def remove_partials(folder: Target) -> list[str]:
    """Delete the temporaries a killed writer left in ``folder``; returns their names."""
    if is_url(folder):
        fs, path = filesystem(str(folder))
        names = [p.rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)]
        removed = [n for n in names if PARTIAL.match(n) and fs.isfile(f"{path}/{n}")]
        for name in removed:
            fs.rm(f"{path}/{name}")
        return removed
    removed = []
    for entry in Path(folder).iterdir():
        if PARTIAL.match(entry.name) and entry.is_file():
            entry.unlink(missing_ok=True)
            removed.append(entry.name)
    return removed
