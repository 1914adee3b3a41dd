"""A converted gloss corrector run through the runtime registry: numpy decoding, no torch.

``edge-slr convert CORRECTOR_DIR --target onnx|openvino|... -o DIR`` writes one encoder and one
decoder graph per stage (``stage0.encoder``, ``stage0.decoder``, ...) and a sidecar
``corrector[-int8].EXT.json`` that lists them with the vocabulary, the dims and the tuned
"do no harm" gates. :class:`RuntimeCorrector` loads every graph on the engine the sidecar names
(or the one asked for) and corrects with the device side's one decoder
(:class:`edge_slr.recognition.correction_chain.GraphCorrector`), exactly as the torch corrector
of the training code does:

- greedy decoding by default verifies the input as a draft (one decoder call per edit instead of
  one per token, the same output; a stage that its gate is sure to reject stops early, so its
  recorded proposal may be unfinished); ``decoding="step"`` decodes token by token and scores
  with two teacher-forced passes; ``beam_size > 1`` runs beam search;
- a stage whose proposal its gate rejects passes its input through;
- empty and over-long sentences pass through untouched; unknown glosses come back in order.

Sentences are decoded one at a time (batch 1: the exported graphs take no padding mask), which
is what the torch corrector's batched decoding equals (its tests check that).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr.decoding.vocab import CorrectorVocabulary
from edge_slr.errors import FormatError, InputError
from edge_slr.recognition.correction import StageGraphs
from edge_slr.recognition.correction_chain import DECODINGS, GateConfig, GraphCorrector
from edge_slr.runtimes.base import Runtime
from edge_slr.runtimes.registry import (
    choose_model,
    find_models,
    get_runtime_class,
    pick_runtime_class,
)
from edge_slr.sidecar import ModelDescription, read_sidecar

logger = logging.getLogger(__name__)

CORRECTOR_FOLDER = "corrector"  # a model directory's torch corrector folder
CORRECTOR_CHECKPOINT = "corrector.pt"


class _Stage:
    """One stage's encoder and decoder graphs on a runtime."""

    def __init__(self, encoder: Runtime, decoder: Runtime) -> None:
        self.encoder, self.decoder = encoder, decoder

    def encode(self, src: np.ndarray) -> np.ndarray:
        return self.encoder.run({"src": src})

    def decode(self, tgt: np.ndarray, memory: np.ndarray, src: np.ndarray) -> np.ndarray:
        out = self.decoder.run({"tgt": tgt, "memory": memory, "src": src})
        return np.asarray(out, dtype=np.float32)

    def close(self) -> None:
        self.encoder.close()
        self.decoder.close()


class RuntimeCorrector(GraphCorrector):
    """A converted corrector (see the module doc): its stages' graphs on one engine,
    corrected by :class:`GraphCorrector` (``correct``, ``correct_batch``)."""

    def __init__(
        self,
        model_path: str | Path,
        description: ModelDescription | None = None,
        *,
        runtime: str | None = None,
        threads: int | None = None,
        decoding: str = "draft",
        **options: Any,
    ) -> None:
        if decoding not in DECODINGS:
            raise InputError(f"decoding must be one of {DECODINGS}, got {decoding!r}")
        self.model_path = Path(model_path)
        self.description = description or read_sidecar(self.model_path)
        if self.description.kind != "corrector":
            raise FormatError(self.model_path, f"is a {self.description.kind}, not a corrector")
        desc = self.description
        try:
            vocab = CorrectorVocabulary.from_dict(desc.vocabulary)
            max_len = _max_len(desc.source["dims"])
            gates = [GateConfig.from_dict(g) for g in desc.source["gates"]]
        except (InputError, KeyError, TypeError, ValueError) as err:
            raise FormatError(self.model_path, f"corrector sidecar lacks a usable {err}") from None
        self.runtime_class = pick_runtime_class(self.model_path, desc, runtime)
        self.stages = self._load_stages(threads, options)
        if len(gates) != len(self.stages):
            self.close()
            raise FormatError(
                self.model_path, f"sidecar has {len(self.stages)} stages but {len(gates)} gates"
            )
        # batch 1 (padded=False): the exported graphs take no padding mask
        graphs = [StageGraphs(st.encode, st.decode, max_len) for st in self.stages]
        super().__init__(graphs, vocab, gates, decoding)

    def _load_stages(self, threads: int | None, options: dict[str, Any]) -> list[_Stage]:
        graphs = {g.role: g for g in self.description.graphs}
        stages: list[_Stage] = []
        index = 0
        try:
            while f"stage{index}.encoder" in graphs:
                pair = []
                for role in ("encoder", "decoder"):
                    spec = graphs.get(f"stage{index}.{role}")
                    if spec is None:
                        raise FormatError(self.model_path, f"sidecar lacks stage{index}.{role}")
                    path = self.model_path.parent / spec.file.name
                    # the graph first: runtimes take tensor names from description.graph
                    others = tuple(g for g in self.description.graphs if g is not spec)
                    described = replace(self.description, graphs=(spec, *others))
                    pair.append(
                        self.runtime_class(path, threads=threads, description=described, **options)
                    )
                stages.append(_Stage(*pair))
                index += 1
        except BaseException:
            for stage in stages:
                stage.close()
            raise
        if not stages:
            raise FormatError(self.model_path, "sidecar lists no stage0.encoder graph")
        return stages

    @property
    def name(self) -> str:
        return self.runtime_class.name

    # -- life cycle --------------------------------------------------------------------------
    def close(self) -> None:
        for stage in getattr(self, "stages", []):
            stage.close()

    def __enter__(self) -> RuntimeCorrector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<RuntimeCorrector {self.model_path.name} on {self.runtime_class.name}, "
            f"{len(getattr(self, 'stages', []))} stages>"
        )


def load_runtime_corrector(
    model: str | Path,
    runtime: str | None = None,
    threads: int | None = None,
    *,
    precision: str | None = None,
    **options: Any,
) -> RuntimeCorrector:
    """A converted corrector from its sidecar, its (virtual) model path or a model directory.

    In a directory the corrector is chosen like a recogniser (:func:`choose_model`): the engine
    asked for, else the installed engine the sidecar names, fastest first.
    """
    path = Path(model)
    if path.is_dir():
        entry = choose_model(path, "corrector", runtime, precision)
        return RuntimeCorrector(entry.path, entry.description, runtime=runtime, threads=threads,
                                **options)  # fmt: skip
    if path.name.endswith(".json"):
        path = path.with_name(path.name[: -len(".json")])
    return RuntimeCorrector(path, runtime=runtime, threads=threads, **options)


# -- the corrector of a model directory ------------------------------------------------------


def find_corrector(model_dir: Path) -> Path | None:
    """The torch corrector folder of a model directory: ``DIR/corrector/`` or ``DIR`` itself."""
    if not model_dir.is_dir():
        return None
    for folder in (model_dir / CORRECTOR_FOLDER, model_dir):
        if (folder / CORRECTOR_CHECKPOINT).is_file():
            return folder
    return None


def load_corrector(
    model_dir: Path,
    description: ModelDescription | None,
    *,
    runtime: str | None = None,
    threads: int | None = None,
    precision: str | None = None,
    runtime_options: Mapping[str, Any] | None = None,
) -> Any:
    """The corrector of ``model_dir``, None when it has none.

    A converted corrector runs on ``runtime`` when it has a model for it, else on an installed
    engine its sidecar names (:func:`edge_slr.runtimes.choose_model`); ``precision`` is
    preferred when such a corrector exists. The torch corrector folder is used with
    ``runtime="torch"``, or when no converted corrector exists (MissingDependencyError without
    torch).
    """
    model_dir = Path(model_dir)
    converted = find_models(model_dir, "corrector") if model_dir.is_dir() else []
    folder = find_corrector(model_dir)
    torch_wanted = runtime is not None and get_runtime_class(runtime).name == "torch"
    if converted and not (torch_wanted and folder is not None):
        corrector = _load_converted(model_dir, converted, runtime, threads, precision,
                                    runtime_options or {})  # fmt: skip
    elif folder is not None:
        from edge_slr.runtimes.torch_rt import load_torch_corrector

        corrector = load_torch_corrector(folder)  # MissingDependencyError without torch
    else:
        return None
    if description is not None:
        ours, theirs = set(description.vocab().glosses), set(corrector.vocab.base.glosses)
        unknown = len(ours - theirs - {"<blank>"})
        if unknown:
            logger.warning(
                "%d of the recogniser's glosses are unknown to the corrector in %s "
                "(they pass through it unchanged)", unknown, folder or model_dir,
            )  # fmt: skip
    return corrector


def _load_converted(
    model_dir: Path,
    entries: list[Any],
    runtime: str | None,
    threads: int | None,
    precision: str | None,
    runtime_options: Mapping[str, Any],
) -> Any:
    if precision is not None and not any(e.precision == precision for e in entries):
        precision = None  # the recogniser's precision; the corrector has other ones
    if runtime is not None and get_runtime_class(runtime).name == "torch":
        runtime = None
    try:
        entry = choose_model(model_dir, "corrector", runtime, precision)
    except InputError:
        if runtime is None:
            raise
        # no corrector converted for this runtime: any installed engine the sidecars name
        entry = choose_model(model_dir, "corrector", None, precision)
        logger.info("no %s corrector in %s: using %s", runtime, model_dir, entry.path.name)
        runtime = None
    same_engine = runtime is not None
    options = dict(runtime_options) if same_engine else {}
    corrector = RuntimeCorrector(
        entry.path, entry.description, runtime=runtime, threads=threads, **options
    )
    logger.info("corrector %s on %s", entry.path.name, corrector.name)
    return corrector


def _max_len(dims: Mapping[str, Any]) -> int:
    """The stages' position limit from the sidecar's dims (the only size decoding needs)."""
    value = dims["max_len"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 3:
        raise ValueError(f"dims.max_len (an integer >= 3, got {value!r})")
    return value
