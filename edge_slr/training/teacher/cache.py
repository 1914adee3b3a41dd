"""Teacher outputs computed once, kept on disk, and refused when stale.

Distillation needs the teacher's conv-head and BiLSTM-head logits for every training sentence.
Running a video network every epoch costs far more than the student itself, so they are
precomputed (teacher in eval mode, unaugmented frames) into a cache folder::

    CACHE/cache.json    format, teacher checkpoint sha256, teacher dims, vocabulary sha256,
                        per split: dataset fingerprint and sample count
    CACHE/SPLIT.npz     "ID/conv" and "ID/seq": (T', V) float16 logits of each sample

The dataset fingerprint is the sha256 of vocabulary.json, the split's index.tsv (ids, signers,
frame counts, glosses) and dataset.json without its per-split summary; video pixels are not
hashed (too large), so a dataset regenerated with other settings is caught through dataset.json.
Opening a cache for another teacher checkpoint, another vocabulary or changed data raises
FormatError with what differs.

Under torchrun (``hardware`` with several ranks) each rank runs the teacher on every
``world_size``-th batch and writes ``SPLIT.rankR.npz``; after a barrier rank 0 merges the shards
into ``SPLIT.npz`` and writes cache.json, and every rank waits for it (the cache folder must be on
a file system all ranks see, as the run folder is).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr._optional import require
from edge_slr.errors import FormatError, InputError

logger = logging.getLogger(__name__)

FORMAT_NAME = "edge-slr-teacher-cache"
FORMAT_VERSION = 1
META_FILE = "cache.json"


@dataclass(frozen=True)
class TeacherLogits:
    conv: np.ndarray  # (T', V) conv-head logits
    seq: np.ndarray  # (T', V) BiLSTM-head logits


def dataset_fingerprint(root: str | Path, split: str) -> str:
    """sha256 of what identifies a split's samples (see the module notes)."""
    root = Path(root)
    digest = hashlib.sha256()
    for path in (root / "vocabulary.json", root / split / "index.tsv"):
        if not path.is_file():
            raise FormatError(path, "missing: not a dataset split folder")
        digest.update(path.read_bytes())
    description = root / "dataset.json"
    if description.is_file():
        data = json.loads(description.read_text(encoding="utf-8"))
        data.pop("splits", None)  # rewritten whenever any split is finished
        digest.update(json.dumps(data, sort_keys=True).encode())
    return digest.hexdigest()


def build_cache(
    teacher_path: str | Path,
    data_root: str | Path,
    out: str | Path,
    *,
    splits: Iterable[str] = ("train",),
    batch_size: int = 4,
    max_samples: int = 0,
    progress: bool = True,
    hardware: Any = None,
) -> Path:
    """Run the teacher over ``splits`` of ``data_root`` and write the cache folder ``out``
    (on ``hardware.device``, sharded over its ranks; see the module notes)."""
    torch = require("torch", "computing teacher outputs")
    tqdm = require("tqdm", "progress bars").tqdm
    from edge_slr.data.dataset import LandmarkDataset
    from edge_slr.decoding.vocab import Vocabulary
    from edge_slr.training.data import BucketBatchSampler
    from edge_slr.training.teacher.checkpoint import file_sha256, load_teacher
    from edge_slr.training.teacher.data import VideoDataset, collate_video

    model, checkpoint = load_teacher(teacher_path)
    device = hardware.device if hardware is not None else torch.device("cpu")
    rank, world = (hardware.ranks.rank, hardware.ranks.world_size) if hardware else (0, 1)
    model.to(device)
    vocab = checkpoint.vocab()
    data_vocab = Vocabulary.load(Path(data_root) / "vocabulary.json")
    if data_vocab.sha256 != vocab.sha256:
        raise InputError(
            f"the teacher {teacher_path} was trained with another vocabulary ({len(vocab)} "
            f"glosses) than {data_root} has ({len(data_vocab)}): its outputs cannot teach"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "teacher_sha256": file_sha256(teacher_path),
        "teacher": str(teacher_path),
        "teacher_dims": checkpoint.dims.to_dict(),
        "vocabulary_sha256": vocab.sha256,
        "data": str(data_root),
        "dtype": "float16",
        "splits": {},
    }
    for split in splits:
        dataset = VideoDataset(
            LandmarkDataset(data_root, split),
            vocab.with_oov("drop"),
            model.dims.input_size,
            output_length=model.dims.output_length,
            oov="drop",
            max_samples=max_samples,
            require_alignable=False,
        )
        arrays: dict[str, np.ndarray] = {}
        batches = BucketBatchSampler(dataset.lengths, batch_size, shuffle=False).batches()
        mine = batches[rank::world]
        with torch.no_grad():
            for indices in tqdm(mine, desc=f"teacher {split}", disable=not progress or rank):
                batch = collate_video([dataset[i] for i in indices])
                result = model(batch.frames.to(device), batch.lengths.to(device))
                for row, name in enumerate(batch.ids):
                    steps = int(result.lengths[row])
                    for key, logits in (("conv", result.conv_logits), ("seq", result.logits)):
                        values = logits[row, :steps].float().cpu().numpy()
                        arrays[f"{name}/{key}"] = values.astype(np.float16)
        if world > 1:
            _write_npz(out / f"{split}.rank{rank}.npz", arrays)
            hardware.barrier()
            if rank:
                continue
            arrays = {}
            for r in range(world):  # rank 0 merges the shards
                shard = out / f"{split}.rank{r}.npz"
                with np.load(shard, allow_pickle=False) as archive:
                    arrays |= {key: archive[key] for key in archive.files}
                shard.unlink()
        _write_npz(out / f"{split}.npz", arrays)
        meta["splits"][split] = {
            "fingerprint": dataset_fingerprint(data_root, split),
            "samples": len(arrays) // 2,
            "skipped_too_short": [name for name, _ in dataset.skipped],
        }
        logger.info("teacher cache: %s, %d samples -> %s", split, len(arrays) // 2, out)
    if rank == 0:
        (out / META_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    if hardware is not None:
        hardware.barrier()  # the cache is complete for every rank
    return out


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(tmp, path)  # a crash mid-write never leaves a half file behind


class TeacherCache:
    """A verified cache folder; ``cache.split("train")["ID"] -> TeacherLogits``."""

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path, self.meta = path, meta
        self._splits: dict[str, dict[str, TeacherLogits]] = {}

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        data_root: str | Path | None = None,
        splits: Iterable[str] | None = None,
        teacher: str | Path | None = None,
        vocabulary: Any = None,
    ) -> TeacherCache:
        """Open and check: FormatError when it is stale for the data, teacher or vocabulary."""
        path = Path(path)
        meta_path = path / META_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FormatError(meta_path, "not a teacher cache (no cache.json)") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise FormatError(meta_path, f"not JSON ({err})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
            raise FormatError(meta_path, f"not a teacher cache (format {FORMAT_NAME!r} expected)")
        if meta.get("version") != FORMAT_VERSION:
            raise FormatError(meta_path, f"cache version {meta.get('version')!r}")
        if teacher is not None:
            from edge_slr.training.teacher.checkpoint import file_sha256

            sha = file_sha256(teacher)
            if sha != meta.get("teacher_sha256"):
                raise FormatError(
                    meta_path,
                    f"stale: made by a teacher with sha256 {str(meta.get('teacher_sha256'))[:12]}, "
                    f"but {teacher} has {sha[:12]}",
                )
        if vocabulary is not None and vocabulary.sha256 != meta.get("vocabulary_sha256"):
            raise FormatError(meta_path, "made with another vocabulary than the student's")
        for split in splits if splits is not None else meta.get("splits", {}):
            recorded = meta.get("splits", {}).get(split)
            if recorded is None:
                raise FormatError(
                    meta_path, f"has no split {split!r} (it has {sorted(meta.get('splits', {}))})"
                )
            if data_root is not None:
                current = dataset_fingerprint(data_root, split)
                if current != recorded.get("fingerprint"):
                    raise FormatError(
                        meta_path,
                        f"stale: split {split!r} of {data_root} changed since the cache was "
                        f"made (fingerprint {current[:12]}, cache {recorded.get('fingerprint', '')[:12]})",
                    )
        return cls(path, meta)

    @property
    def teacher_dims(self) -> dict[str, Any]:
        return dict(self.meta.get("teacher_dims", {}))

    def split(self, name: str) -> dict[str, TeacherLogits]:
        """Every sample of ``name`` (read once, kept in memory as float16)."""
        if name not in self._splits:
            file = self.path / f"{name}.npz"
            try:
                with np.load(file, allow_pickle=False) as archive:
                    raw = {key: archive[key] for key in archive.files}
            except FileNotFoundError:
                raise FormatError(file, "teacher cache split file is missing") from None
            except (ValueError, OSError) as err:
                raise FormatError(file, f"not a readable cache file ({err})") from None
            ids = {key.rsplit("/", 1)[0] for key in raw}
            self._splits[name] = {i: TeacherLogits(raw[f"{i}/conv"], raw[f"{i}/seq"]) for i in ids}
        return self._splits[name]


def teacher_outputs(
    teacher: str | Path,
    data_root: str | Path,
    split: str,
    *,
    cache_dir: str | Path,
    vocabulary: Any = None,
    batch_size: int = 4,
    progress: bool = True,
    hardware: Any = None,
) -> TeacherCache:
    """The verified cache for ``teacher``: a cache folder as given, or for a checkpoint the
    cache in ``cache_dir`` (made now when missing or stale, split over ``hardware``'s ranks)."""
    teacher = Path(teacher)
    if teacher.is_dir():
        return TeacherCache.open(
            teacher, data_root=data_root, splits=[split], vocabulary=vocabulary
        )
    if not teacher.is_file():
        raise InputError(f"teacher {teacher} is neither a teacher checkpoint nor a cache folder")
    stale = None
    try:
        TeacherCache.open(
            cache_dir, data_root=data_root, splits=[split], teacher=teacher, vocabulary=vocabulary
        )
    except FormatError as err:
        stale = err.problem
    # Every rank must take the same branch: build_cache has barriers.
    rebuild = hardware.any(stale is not None) if hardware is not None else stale is not None
    if rebuild:
        logger.info("computing teacher outputs (%s)", stale or "stale on another rank")
        build_cache(
            teacher,
            data_root,
            cache_dir,
            splits=[split],
            batch_size=batch_size,
            progress=progress,
            hardware=hardware,
        )
    return TeacherCache.open(
        cache_dir, data_root=data_root, splits=[split], teacher=teacher, vocabulary=vocabulary
    )
