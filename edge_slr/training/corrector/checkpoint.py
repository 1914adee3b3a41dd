"""Self-describing corrector checkpoints, loadable with ``torch.load(weights_only=True)``.

A model directory holds:

- ``corrector.pt``: a plain dict of tensors, numbers, strings, lists and dicts (no pickled
  classes, so ``weights_only=True`` loads it): format name and version, dims, the corrector
  vocabulary (with the recogniser's vocabulary inside), the training config, the gates, library
  versions and one state dict per stage;
- ``vocabulary.json``: the recogniser vocabulary as :meth:`Vocabulary.save` writes it, for tools
  that only need the glosses;
- ``model.json``: a human-readable summary (everything but the weights).
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from edge_slr import __version__
from edge_slr._optional import require
from edge_slr.decoding.vocab import CorrectorVocabulary
from edge_slr.errors import FormatError
from edge_slr.recognition.correction_chain import GateConfig
from edge_slr.training.corrector.decode import Corrector
from edge_slr.training.corrector.model import CorrectorDims, build_stages

FORMAT_NAME = "edge-slr-corrector"
FORMAT_VERSION = 1
CHECKPOINT_FILE = "corrector.pt"


def versions() -> dict[str, str]:
    torch = require("torch", "corrector checkpoints")
    return {
        "edge_slr": __version__,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
    }


def save_corrector(
    directory: str | Path,
    corrector: Corrector,
    config: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``corrector`` into ``directory`` (created); returns the checkpoint path."""
    torch = require("torch", "corrector checkpoints")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dims: CorrectorDims = corrector.stages[0].dims
    description = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "dims": dims.to_dict(),
        "vocabulary": corrector.vocab.to_dict(),
        "gates": [g.to_dict() for g in corrector.gates],
        "config": _plain(config or {}),
        "metadata": _plain({**corrector.metadata, **(extra or {})}),
        "versions": versions(),
    }
    # Tensors are cloned to contiguous CPU memory so the file does not depend on where they lived.
    states = [
        {k: v.detach().cpu().clone() for k, v in m.state_dict().items()} for m in corrector.stages
    ]
    path = directory / CHECKPOINT_FILE
    tmp = path.with_name(path.name + ".tmp")
    torch.save({**description, "stages": states}, tmp)
    tmp.replace(path)
    corrector.vocab.base.save(directory / "vocabulary.json")
    (directory / "model.json").write_text(
        json.dumps(description, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict of a file or model directory, checked for format and version."""
    torch = require("torch", "corrector checkpoints")
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise FormatError(path, "corrector checkpoint does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise FormatError(
            path, f"not a readable torch checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise FormatError(path, f"not an edge-slr corrector checkpoint (format {found!r})")
    if data.get("format_version") != FORMAT_VERSION:
        raise FormatError(
            path,
            f"checkpoint format version {data.get('format_version')!r}; "
            f"this edge-slr reads version {FORMAT_VERSION}",
        )
    return data


def load_corrector(path: str | Path) -> Corrector:
    """A ready-to-use :class:`Corrector` from a checkpoint file or model directory."""
    data = load_checkpoint(path)
    try:
        # Checkpoints written before copy attention existed were trained without it.
        dims = CorrectorDims.from_dict({"copy_attention": False, **data["dims"]})
        vocab = CorrectorVocabulary.from_dict(data["vocabulary"])
        gates = [GateConfig.from_dict(g) for g in data["gates"]]
        if len(vocab) != dims.vocab_size:
            raise ValueError(f"vocabulary has {len(vocab)} tokens, dims say {dims.vocab_size}")
        if len(data["stages"]) != dims.stages:
            raise ValueError(f"{len(data['stages'])} stage weights stored, dims say {dims.stages}")
        stages = build_stages(dims, vocab.pad_id)
        for model, state in zip(stages, data["stages"], strict=True):
            model.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise FormatError(Path(path), f"inconsistent corrector checkpoint: {exc}") from None
    return Corrector(stages, vocab, gates, metadata=data.get("metadata"))


def _plain(value: Any) -> Any:
    """Config and metadata reduced to JSON-like types (tuples -> lists, paths -> strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
