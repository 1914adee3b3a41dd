"""A converted gloss corrector run through the runtime registry: numpy decoding, no torch.

``edge-slr convert CORRECTOR_DIR --target onnx|openvino|... -o DIR`` writes one encoder and one
decoder graph per stage (``stage0.encoder``, ``stage0.decoder``, ...) and a sidecar
``corrector[-int8].EXT.json`` that lists them with the vocabulary, the dims and the tuned
"do no harm" gates. :class:`RuntimeCorrector` loads every graph on the engine the sidecar names
(or the one asked for) and does what :class:`edge_slr.training.corrector.Corrector` does, with
the same semantics, in numpy:

- per stage: encode the source once, then greedy (or beam) decoding of the growing target, with
  ``<pad>``/``<bos>`` banned and the output length capped by ``output_limit``. Greedy decoding
  by default verifies the input as a draft (:mod:`edge_slr.training.corrector.draft`: one decoder
  call per edit instead of one per token, the same output; a stage that its gate is sure to
  reject stops early, so its recorded proposal may be unfinished); ``decoding="step"`` decodes
  token by token and scores with two teacher-forced passes, exactly as the torch corrector;
- the gate's three measures from teacher-forced scores of the proposal and of the unchanged
  input: confidence, margin (0 when nothing changed) and edit rate; a stage whose proposal is
  rejected passes its input through;
- empty and over-long sentences pass through untouched; unknown glosses come back in order.

Sentences are decoded one at a time (batch 1: the exported graphs take no padding mask), which
is what the torch corrector's batched decoding equals (its tests check that).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_slr.errors import FormatError, InputError
from edge_slr.runtimes.base import Runtime
from edge_slr.runtimes.registry import (
    choose_model,
    find_models,
    get_runtime_class,
    pick_runtime_class,
)
from edge_slr.sidecar import ModelDescription, read_sidecar
from edge_slr.training.corrector.decode import (
    Correction,
    GateConfig,
    StageResult,
    batch_stage_count,
    edit_rate,
    output_limit,
)
from edge_slr.training.corrector.draft import DraftCorrector, StageGraphs
from edge_slr.training.corrector.model import CorrectorDims
from edge_slr.training.corrector.vocabulary import CorrectorVocabulary

logger = logging.getLogger(__name__)

DECODINGS = ("draft", "step")
CORRECTOR_FOLDER = "corrector"  # a model directory's torch corrector folder
CORRECTOR_CHECKPOINT = "corrector.pt"


@dataclass(frozen=True)
class _Proposal:
    ids: list[int]
    confidence: float
    margin: float
    edit_rate: float


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


class RuntimeCorrector:
    """A converted corrector (see the module doc); the torch Corrector's correcting interface."""

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
        self.decoding = decoding
        self.model_path = Path(model_path)
        self.description = description or read_sidecar(self.model_path)
        if self.description.kind != "corrector":
            raise FormatError(self.model_path, f"is a {self.description.kind}, not a corrector")
        desc = self.description
        try:
            self.vocab = CorrectorVocabulary.from_dict(desc.vocabulary)
            self.dims = CorrectorDims.from_dict(desc.source["dims"])
            self.gates = [GateConfig.from_dict(g) for g in desc.source["gates"]]
        except (InputError, KeyError, TypeError, ValueError) as err:
            raise FormatError(self.model_path, f"corrector sidecar lacks a usable {err}") from None
        self.max_glosses = self.dims.max_len - 1
        self.runtime_class = pick_runtime_class(self.model_path, desc, runtime)
        self.stages = self._load_stages(threads, options)
        if len(self.gates) != len(self.stages):
            self.close()
            raise FormatError(
                self.model_path,
                f"sidecar has {len(self.stages)} stages but {len(self.gates)} gates",
            )
        graphs = [StageGraphs(st.encode, st.decode, self.dims.max_len) for st in self.stages]
        self._draft = DraftCorrector(graphs, self.vocab, self.gates, "draft", early_exit=True)

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

    # -- correcting --------------------------------------------------------------------------
    def correct(
        self, glosses: Sequence[str], *, beam_size: int = 1, gate: bool = True
    ) -> Correction:
        """Correct one recognised sentence (a sequence of gloss strings)."""
        return self.correct_batch([glosses], beam_size=beam_size, gate=gate)[0]

    def correct_batch(
        self,
        sentences: Sequence[Sequence[str]],
        *,
        beam_size: int = 1,
        gate: bool = True,
        num_stages: int | None = None,
    ) -> list[Correction]:
        """Correct many sentences; ``num_stages`` uses only the first stages."""
        if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
            raise InputError(f"beam_size must be an integer >= 1, got {beam_size!r}")
        count = batch_stage_count(sentences, num_stages, len(self.stages))
        if beam_size == 1 and self.decoding == "draft":
            return [self._draft.correct(s, gate=gate, num_stages=count) for s in sentences]
        return [self._correct_one(s, count, beam_size, gate) for s in sentences]

    def _correct_one(
        self, glosses: Sequence[str], count: int, beam_size: int, gate: bool
    ) -> Correction:
        ids, unknown = self.vocab.encode(list(glosses))
        if not 0 < len(ids) <= self.max_glosses:
            return Correction(input=tuple(glosses), glosses=tuple(glosses))
        history = []
        for stage, gate_cfg in zip(self.stages[:count], self.gates[:count], strict=True):
            proposal = self._propose(stage, ids, beam_size)
            check = gate_cfg if gate else GateConfig(enabled=False)
            accepted = check.accepts(proposal.confidence, proposal.margin, proposal.edit_rate)
            history.append(
                StageResult(
                    tuple(self.vocab.decode(ids, unknown)),
                    tuple(self.vocab.decode(proposal.ids, unknown)),
                    bool(accepted),
                    proposal.confidence,
                    proposal.margin,
                    proposal.edit_rate,
                )
            )
            if accepted:
                ids = proposal.ids
        return Correction(
            input=tuple(glosses),
            glosses=tuple(self.vocab.decode(ids, unknown)),
            stages=tuple(history),
        )

    def _propose(self, stage: _Stage, ids: list[int], beam_size: int) -> _Proposal:
        src = np.array([list(ids) + [self.vocab.eos_id]], dtype=np.int64)
        memory = stage.encode(src)
        if beam_size == 1:
            proposal = self._greedy(stage, src, memory, len(ids))
        else:
            proposal = self._beam(stage, src, memory, len(ids), beam_size)
        logp_prop, length = self._score(stage, src, memory, proposal)
        logp_src, _ = self._score(stage, src, memory, ids)
        rate = edit_rate(ids, proposal)
        margin = 0.0 if rate == 0 else logp_prop - logp_src  # unchanged: nothing to decide
        return _Proposal(proposal, float(np.exp(logp_prop / length)), float(margin), rate)

    def _next(self, stage: _Stage, ys: list[list[int]], memory: np.ndarray, src: np.ndarray):
        """(rows, V) float32 log-probabilities of the token after each row of ``ys``."""
        rows = len(ys)
        logp = stage.decode(
            np.array(ys, dtype=np.int64),
            np.repeat(memory, rows, axis=0),
            np.repeat(src, rows, axis=0),
        )[:, -1].copy()
        logp[:, [self.vocab.pad_id, self.vocab.bos_id]] = -np.inf
        return logp

    def _greedy(self, stage: _Stage, src: np.ndarray, memory: np.ndarray, n: int) -> list[int]:
        limit, eos = output_limit(n, self.dims), self.vocab.eos_id
        out = [self.vocab.bos_id]
        for step in range(limit + 1):
            token = eos if step >= limit else int(np.argmax(self._next(stage, [out], memory, src)))
            if token == eos:
                break
            out.append(token)
        return out[1:]

    def _beam(
        self,
        stage: _Stage,
        src: np.ndarray,
        memory: np.ndarray,
        n: int,
        beam_size: int,
        length_penalty: float = 1.0,
    ) -> list[int]:
        """As ``training.corrector.decode.beam_decode``: a finished hypothesis leaves the beam."""
        limit, eos = output_limit(n, self.dims), self.vocab.eos_id
        finished: list[tuple[float, list[int]]] = []
        ys, scores, alive = [[self.vocab.bos_id]], np.zeros(1, np.float32), beam_size
        for step in range(limit + 1):
            logp = self._next(stage, ys, memory, src)
            if step == limit:  # out of room: only <eos> may follow
                keep = logp[:, eos].copy()
                logp[:] = -np.inf
                logp[:, eos] = keep
            total = (scores[:, None] + logp).ravel()
            k = min(alive, int(np.isfinite(total).sum()))
            rows, new_scores = [], []
            for flat in np.argsort(-total, kind="stable")[:k]:
                row, token = divmod(int(flat), logp.shape[1])
                value = float(total[flat])
                tokens = ys[row][1:] + [token]
                if token == eos:
                    finished.append((value / (len(tokens) ** length_penalty), tokens[:-1]))
                else:
                    rows.append(ys[row] + [token])
                    new_scores.append(value)
            alive = len(rows)
            if not alive:
                break
            ys, scores = rows, np.array(new_scores, np.float32)
        return max(finished, key=lambda f: f[0])[1] if finished else []

    def _score(
        self, stage: _Stage, src: np.ndarray, memory: np.ndarray, target: list[int]
    ) -> tuple[float, int]:
        """Teacher-forced log P(target + <eos> | source) and its number of tokens."""
        tgt_in = np.array([[self.vocab.bos_id] + list(target)], dtype=np.int64)
        tgt_out = list(target) + [self.vocab.eos_id]
        logp = stage.decode(tgt_in, memory, src)[0].astype(np.float64)
        top = logp.max(axis=-1, keepdims=True)  # log_softmax, as the torch scorer applies
        logp = logp - (top + np.log(np.exp(logp - top).sum(axis=-1, keepdims=True)))
        return float(logp[np.arange(len(tgt_out)), tgt_out].sum()), len(tgt_out)

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
        from edge_slr.training.corrector import load_corrector as load_torch_corrector

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
