"""SignSynth end to end: one sentence and one signer -> landmarks (and video), and whole datasets.

``SignSynth.synthesize`` runs the pipeline for one sample: lexicon signs and real-statistics
durations -> motion plan -> body kinematics -> camera -> MediaPipe-like tracking (and, on
request, rendered frames). Every random draw comes from a generator keyed by (seed, sample id,
signer id), so a sample is byte-identical whichever process makes it and in whatever order.

``build_split`` writes one split of a dataset in the layout of :mod:`edge_slr.data.dataset`,
one sample per (sentence, signer), with worker processes, a progress bar, and resumption
(samples whose files are complete are not made again).
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_slr._optional import is_available, require
from edge_slr.data.dataset import DatasetWriter, IndexEntry
from edge_slr.data.synth.body import assemble, body_anchors
from edge_slr.data.synth.camera import project, track
from edge_slr.data.synth.config import SynthDifficulty, get_difficulty
from edge_slr.data.synth.durations import FPS, DurationModel
from edge_slr.data.synth.face import load_face_model
from edge_slr.data.synth.lexicon import Lexicon
from edge_slr.data.synth.motion import plan_motion
from edge_slr.data.synth.render import Renderer
from edge_slr.data.synth.seeding import generator
from edge_slr.data.synth.sentences import (
    BuiltinGrammar,
    SentenceSpec,
    alignment_root,
    corpus_sentences,
)
from edge_slr.data.synth.signer import SignerProfile, make_signer
from edge_slr.errors import InputError
from edge_slr.landmarks.sequence import LandmarkSequence

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1  # bump when the same seed would give different data


@dataclass(frozen=True)
class SynthSample:
    """One synthetic recording and its ground truth."""

    id: str
    signer: str
    glosses: tuple[str, ...]
    landmarks: LandmarkSequence
    frames: np.ndarray | None  # (T, size, size, 3) uint8 RGB, when rendered
    spans: tuple[tuple[str, int, int], ...]  # (gloss, first frame, end frame) of every gloss


class SignSynth:
    """The synthetic signer generator (cheap to build; holds caches of signs and signers)."""

    def __init__(
        self,
        *,
        seed: int = 0,
        lexicon_seed: int = 0,
        difficulty: SynthDifficulty | str = "default",
        durations: DurationModel | None = None,
        frame_size: int = 112,
    ) -> None:
        if not isinstance(seed, int) or seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = seed
        self.difficulty = get_difficulty(difficulty) if isinstance(difficulty, str) else difficulty
        self.lexicon = Lexicon(lexicon_seed)
        self.durations = durations or DurationModel.builtin(lexicon_seed)
        self.frame_size = frame_size
        self.face = load_face_model()
        self._anchors: dict[SignerProfile, dict[str, np.ndarray]] = {}

    def signer(self, split: str, index: int, *, left_handed: bool | None = None) -> SignerProfile:
        """The ``index``-th signer of ``split`` (a different person in every split)."""
        return make_signer(self.seed, split, index, self.difficulty, left_handed=left_handed)

    def synthesize(
        self,
        glosses: Sequence[str],
        signer: SignerProfile,
        *,
        sample_id: str = "sample",
        frames: bool = False,
    ) -> SynthSample:
        """Landmarks (and, with ``frames``, video) of ``signer`` signing ``glosses``."""
        glosses = tuple(glosses)
        if not glosses or not all(isinstance(g, str) and g.strip() for g in glosses):
            raise InputError(
                f"glosses must be a non-empty sequence of non-empty strings, got {glosses!r}"
            )
        d = self.difficulty
        rng = generator(self.seed, "sample", sample_id, signer.id)
        signs = [self.lexicon.sign(g) for g in glosses]
        lengths = self.durations.sample(
            glosses,
            rng,
            speed=signer.speed,
            speed_spread=d.speed_spread,
            tempo_variation=d.tempo_variation,
        )
        if signer not in self._anchors:  # profiles are frozen and hashable
            self._anchors[signer] = body_anchors(signer, self.face)
        plan = plan_motion(signs, lengths, signer, self._anchors[signer], d, rng)
        clean = project(assemble(plan, signer, self.face), signer, rng)
        data = track(clean, signer, d, FPS, rng)
        spans = tuple((g, int(s), int(e)) for g, s, e in plan.spans)
        metadata = {
            "source_format": "signsynth",
            "generator_version": GENERATOR_VERSION,
            "sample_id": sample_id,
            "signer": signer.id,
            "left_handed": signer.left_handed,
            "glosses": list(glosses),
            "spans": [list(s) for s in spans],
            "seed": self.seed,
            "lexicon_seed": self.lexicon.seed,
            "difficulty": d.name,
            "image_width": self.frame_size,
            "image_height": self.frame_size,
        }
        video = None
        if frames:
            video = Renderer(self.face, signer.appearance, self.frame_size).render(clean)
        landmarks = LandmarkSequence(data, FPS, metadata)
        return SynthSample(sample_id, signer.id, glosses, landmarks, video, spans)


@dataclass(frozen=True)
class SynthConfig:
    """What ``edge-slr data synth`` builds (all of it is recorded in dataset.json)."""

    corpus: str | None = None  # None: the built-in grammar
    root: Path | None = None
    seed: int = 0
    lexicon_seed: int = 0
    difficulty: SynthDifficulty = field(default_factory=SynthDifficulty)
    frame_size: int = 112

    def __post_init__(self) -> None:
        if self.corpus is not None:
            from edge_slr.data.corpora import corpus_spec

            corpus_spec(self.corpus)  # InputError listing the known corpora
        if not isinstance(self.frame_size, int) or not 32 <= self.frame_size <= 1024:
            raise InputError(
                f"frame_size must be an integer in [32, 1024], got {self.frame_size!r}"
            )

    def description(self) -> dict:
        return {
            "corpus": self.corpus or "builtin",
            "seed": self.seed,
            "lexicon_seed": self.lexicon_seed,
            "difficulty": self.difficulty.to_dict(),
            "frame_size": self.frame_size,
            "generator_version": GENERATOR_VERSION,
        }


@functools.lru_cache(maxsize=4)
def _grammar(seed: int) -> BuiltinGrammar:
    return BuiltinGrammar(seed)


@functools.lru_cache(maxsize=16)
def _builtin_sentences(seed: int, split: str) -> tuple[SentenceSpec, ...]:
    return tuple(_grammar(seed).sentences(split))


def sentences_for(config: SynthConfig, split: str) -> list[SentenceSpec]:
    """The sentences of ``split``: the corpus's own, or the built-in grammar's."""
    if config.corpus is None:
        return list(_builtin_sentences(config.seed, split))
    return corpus_sentences(config.corpus, config.root, split)


def duration_model(config: SynthConfig) -> DurationModel:
    """Real per-gloss durations when PHOENIX-2014-T alignments are reachable, else built-in.

    The alignments name PHOENIX glosses, so only the two PHOENIX corpora use them; CSL-Daily and
    the built-in grammar draw every gloss's timing from the embedded summary statistics.
    """
    if config.corpus in ("phoenix2014", "phoenix2014t"):
        aligned = alignment_root(config.corpus, config.root)
        if aligned is not None:
            return DurationModel.from_alignments(aligned, config.lexicon_seed)
        logger.warning("no PHOENIX-2014-T alignments found: using built-in duration statistics")
    return DurationModel.builtin(config.lexicon_seed)


def vocabulary_sentences(config: SynthConfig) -> list[tuple[str, ...]]:
    """The train sentences the vocabulary is built from (the whole train split, not a limit)."""
    return [s.glosses for s in sentences_for(config, "train")]


def synth_for(config: SynthConfig, durations: DurationModel) -> SignSynth:
    """The synthesiser a dataset build uses (one per worker process)."""
    return SignSynth(
        seed=config.seed,
        lexicon_seed=config.lexicon_seed,
        difficulty=config.difficulty,
        durations=durations,
        frame_size=config.frame_size,
    )


# -- dataset building (worker processes) ------------------------------------------------------
_WORKER: dict = {}


def _init_worker(config: SynthConfig, durations: DurationModel, writer: DatasetWriter) -> None:
    _WORKER["synth"] = synth_for(config, durations)
    _WORKER["writer"] = writer


@dataclass(frozen=True)
class _Task:
    split: str
    sentence: SentenceSpec
    signer_index: int
    frames: bool
    pose: bool

    @property
    def sample_id(self) -> str:
        return f"{self.sentence.id}__s{self.signer_index:02d}"


def _run_task(task: _Task) -> tuple[IndexEntry, bool]:
    """Make (or find complete on disk) one sample; returns its index entry and whether made."""
    synth: SignSynth = _WORKER["synth"]
    writer: DatasetWriter = _WORKER["writer"]
    signer = synth.signer(task.split, task.signer_index)
    existing = writer.complete_sample(
        task.split, task.sample_id, frames=task.frames, pose=task.pose
    )
    if existing is not None:
        return IndexEntry(task.sample_id, signer.id, existing, task.sentence.glosses), False
    sample = synth.synthesize(
        task.sentence.glosses, signer, sample_id=task.sample_id, frames=task.frames
    )
    writer.write_sample(
        task.split, task.sample_id, sample.landmarks, frames=sample.frames, pose=task.pose
    )
    entry = IndexEntry(task.sample_id, signer.id, sample.landmarks.num_frames, sample.glosses)
    return entry, True


def plan_tasks(
    sentences: Sequence[SentenceSpec],
    split: str,
    num_signers: int,
    signers_per_sentence: int | None,
    frames: bool,
    pose: bool,
) -> list[_Task]:
    """One task per (sentence, signer); ``signers_per_sentence`` rotates a subset of signers."""
    k = num_signers if signers_per_sentence is None else signers_per_sentence
    if not 1 <= k <= num_signers:
        raise InputError(
            f"signers per sentence must be between 1 and the number of signers ({num_signers}), "
            f"got {k}"
        )
    return [
        _Task(split, sentence, (i * k + j) % num_signers, frames, pose)
        for i, sentence in enumerate(sentences)
        for j in range(k)
    ]


def _progress(items: Iterator, total: int, description: str) -> Iterator:
    if is_available("tqdm"):
        tqdm = require("tqdm")
        return iter(tqdm.tqdm(items, total=total, desc=description, unit="sample"))
    return items


def build_split(
    config: SynthConfig,
    out: str | Path,
    split: str,
    *,
    num_signers: int,
    signers_per_sentence: int | None = None,
    frames: bool = False,
    pose: bool = False,
    limit: int | None = None,
    workers: int = 1,
    progress: bool = True,
) -> list[IndexEntry]:
    """Write ``split`` of a SignSynth dataset under ``out`` and return its index entries."""
    if not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive integer, got {workers!r}")
    if limit is not None and limit < 1:
        raise InputError(f"limit must be a positive number of sentences, got {limit}")
    sentences = sentences_for(config, split)[:limit]
    if not sentences:
        raise InputError(f"split {split!r} has no sentences to synthesise")
    for sentence in sentences:  # index.tsv separates glosses by spaces: check before hours of work
        if any(not g or any(c.isspace() for c in g) for g in sentence.glosses):
            raise InputError(
                f"sentence {sentence.id}: glosses must be non-empty without spaces, got {sentence.glosses}"
            )
    from edge_slr.decoding.vocab import Vocabulary

    vocabulary = Vocabulary.from_sentences(vocabulary_sentences(config))
    writer = DatasetWriter(
        out, {"name": "signsynth", "generator": config.description()}, vocabulary
    )
    writer.start_split(split)
    durations = duration_model(config)
    tasks = plan_tasks(sentences, split, num_signers, signers_per_sentence, frames, pose)
    entries: list[IndexEntry] = []
    made = 0
    if workers == 1:
        _init_worker(config, durations, writer)
        results: Iterator = map(_run_task, tasks)
    else:
        context = multiprocessing.get_context("spawn")
        pool = context.Pool(workers, _init_worker, (config, durations, writer))
        results = pool.imap(_run_task, tasks, chunksize=4)
    try:
        iterator = _progress(results, len(tasks), f"synth {split}") if progress else results
        for entry, was_made in iterator:
            entries.append(entry)
            made += was_made
    finally:
        if workers > 1:
            pool.close()
            pool.join()
    signers = sorted({e.signer for e in entries})
    writer.finish_split(
        split,
        entries,
        {
            "sentences": len(sentences),
            "signers": signers,
            "signers_per_sentence": signers_per_sentence or num_signers,
            "frames": frames,
            "pose": pose,
        },
    )
    logger.info(
        "%s: %d samples (%d made, %d already complete)",
        split,
        len(entries),
        made,
        len(entries) - made,
    )
    return entries
