"""The extraction manifest: which landmark file was made from which input, by which extractor.

One JSON object a line in ``extraction_manifest.jsonl`` next to the outputs, keyed by the output
path relative to the manifest's folder. Only the driver of a run writes it (workers return their
outcomes), one line per finished video, flushed and fsync'ed, so a killed driver loses at most the
line it was writing; a torn last line is ignored when read. A record says:

- the input: path, size and modification time (a frame folder: the sum of its images' sizes and
  the newest of their times) and, on request, its sha256;
- the extractor: engine, options and the sha256 of every model file the options name, plus the
  mediapipe version;
- the result: status ("done" or "failed"), frames, attempts, the worker and the error if any.

A re-run skips an output whose record is "done", whose file exists and whose input and extractor
are unchanged; anything else runs again. An output without a record (its driver was killed between
the worker's atomic write and the manifest line) is redone, so each input is in the folder once.

On an fsspec URL (:mod:`edge_slr.landmarks.storage`) there is no appending nor locking that every
file system offers (object stores have neither): the records are written as a whole, atomically,
at most every :data:`REMOTE_FLUSH_SECONDS` and when the run ends, so a killed driver redoes the
outputs of its last seconds, and two runs into one URL at the same time are the user's to avoid.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from edge_slr.errors import InputError
from edge_slr.landmarks import storage

logger = logging.getLogger(__name__)

MANIFEST_NAME = "extraction_manifest.jsonl"
REMOTE_FLUSH_SECONDS = 30.0
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class SourceSignature:
    """What identifies an input's content: size and mtime, and the sha256 when asked for."""

    size: int
    mtime_ns: int
    sha256: str | None = None

    def matches(self, record: dict[str, Any]) -> bool:
        if record.get("source_size") != self.size:
            return False
        if self.sha256 is not None and record.get("source_sha256") is not None:
            return bool(record["source_sha256"] == self.sha256)  # content decides, not the time
        return bool(record.get("source_mtime_ns") == self.mtime_ns)


def source_files(source: Path) -> list[Path]:
    """The files an input consists of: the video itself, or the images of a frame folder/glob."""
    from edge_slr.landmarks.video import IMAGE_SUFFIXES

    if "*" in source.name:
        folder, pattern = source.parent, source.name
    elif source.is_dir():
        folder, pattern = source, "*"
        if not any(_is_image(p, IMAGE_SUFFIXES) for p in folder.iterdir()):
            folder = source / "1"  # the PHOENIX release layout NAME/1/*.png
    else:
        return [source] if source.is_file() else []
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(pattern) if _is_image(p, IMAGE_SUFFIXES))


def source_signature(source: Path | None, sha256: bool = False) -> SourceSignature | None:
    """The signature of an input, or None when it is missing (the job will fail and say why)."""
    if source is None:
        return None
    files = source_files(source)
    if not files:
        return None
    stats = [p.stat() for p in files]
    digest = _sha256_files(files) if sha256 else None
    return SourceSignature(sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats), digest)


def extractor_description(options: Any) -> dict[str, Any]:
    """Engine, options and model hashes of a HolisticOptions (or any options dataclass).

    Generic on purpose: every Path-valued option that names a file is hashed, so a new model
    option (or another engine's model files) is covered without changes here.
    """
    described: dict[str, Any] = {
        "extractor": "mediapipe-holistic",
        "engine": getattr(options, "engine", None) or getattr(options, "backend", None),
        "options": options.to_dict(),
        "mediapipe": _version("mediapipe"),
    }
    hashes = {}
    for field in fields(options):
        value = getattr(options, field.name)
        if isinstance(value, Path) and value.is_file():
            hashes[field.name] = _sha256_files([value])
    model_hashes = getattr(options, "model_hashes", None)
    if callable(model_hashes):  # an engine that knows its own model files
        hashes.update(model_hashes())
    described["model_sha256"] = hashes
    return json.loads(json.dumps(described, sort_keys=True, default=str))


class Manifest:
    """Records of one output folder; open it with ``with Manifest.open(folder) as m``.

    In a local folder the open manifest holds an exclusive lock on its file: a second run writing
    into the same folder at the same time is refused instead of interleaving with this one.
    """

    def __init__(
        self, path: storage.Target, records: dict[str, dict[str, Any]], handle: Any
    ) -> None:
        self.path = path
        self.folder = storage.parent(path)
        self.records = records
        self._handle = handle  # None: a URL, written whole (see the module doc)
        self._flushed = time.monotonic()
        self._dirty = False

    @classmethod
    def open(cls, folder: str | Path) -> Manifest:
        if storage.is_url(folder):
            url = storage.as_target(folder)
            storage.makedirs(url)
            path = storage.join(url, MANIFEST_NAME)
            return cls(path, _parse_records(storage.read_text(path) or "", path), None)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / MANIFEST_NAME
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise InputError(
                f"another extraction is writing into {folder} (its manifest {path} is locked); "
                "wait for it to finish or choose another output folder"
            ) from None
        return cls(path, _parse_records(storage.read_text(path) or "", path), handle)

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def key(self, output: storage.Target) -> str:
        return storage.relative_to(output, self.folder)

    def get(self, output: storage.Target) -> dict[str, Any] | None:
        return self.records.get(self.key(output))

    def add(self, record: dict[str, Any]) -> None:
        """Append one record (``record["output"]`` is the output path) durably."""
        output = record["output"]
        key = self.key(output if storage.is_url(output) else Path(output))
        record = {**record, "output": key}
        self.records[key] = record
        if self._handle is None:
            self._dirty = True
            if time.monotonic() - self._flushed >= REMOTE_FLUSH_SECONDS:
                self.compact()
            return
        self._handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def compact(self) -> None:
        """Rewrite the file with the last record of each output (atomically)."""
        lines = [json.dumps(r, ensure_ascii=False, default=str) for r in self.records.values()]
        storage.write_text_atomic(self.path, "".join(line + "\n" for line in lines))
        self._flushed, self._dirty = time.monotonic(), False

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()  # releases the lock
            self._handle = None
        elif self._dirty:
            self.compact()


def _parse_records(text: str, path: storage.Target) -> dict[str, dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
            key = record["output"]
        except (ValueError, KeyError, TypeError):
            # A driver killed while writing leaves a torn last line: that video is redone.
            logger.warning("%s, line %d: unreadable record ignored", path, number)
            continue
        records[key] = record
    return records


def _sha256_files(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        if len(files) > 1:
            digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _is_image(path: Path, suffixes: tuple[str, ...]) -> bool:
    return path.suffix.lower() in suffixes and path.is_file()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
