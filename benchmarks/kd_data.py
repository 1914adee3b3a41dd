"""The SignSynth PHOENIX-2014-T subset that the distillation benchmark trains on (with video).

A video teacher on the full PHOENIX-2014-T vocabulary (1085 glosses, 7096 sentences) does not
train on a shared 2-core CPU in hours, so the benchmark uses a documented subset:

* the ``top_glosses`` most frequent glosses of the PHOENIX-2014-T train annotation;
* every train/dev/test sentence made only of those glosses (real sentences, real splits), the
  first ``max_train`` of train, all of dev and test (or ``max_eval``);
* SignSynth signers, different in every split (signer-independent), one signer per sentence,
  real per-gloss durations from the PHOENIX-2014-T alignments, 112 x 112 RGB frames;
* the vocabulary of the selected train sentences (a dev/test gloss is always in it).

    python benchmarks/kd_data.py --out runs/kd-data --top-glosses 80 --max-train 600
    python benchmarks/kd_data.py --smoke --out /tmp/kd-data-smoke     # CI: a tiny one

The folder is an ordinary edge-slr dataset (edge_slr.data.dataset); ``dataset.json`` records the
selection. Building is resumable: complete samples are not made again.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_OUT = ROOT / "runs" / "kd-data"

logger = logging.getLogger("kd_data")

SPLITS = ("train", "dev", "test")
_WORKER: dict = {}


def select_sentences(
    corpus_root: Path, top_glosses: int, max_train: int, max_eval: int
) -> dict[str, list]:
    """PHOENIX-2014-T sentences of each split whose glosses are all among the most frequent."""
    from edge_slr.data.synth.sentences import corpus_sentences

    sentences = {s: corpus_sentences("phoenix2014t", corpus_root, s) for s in SPLITS}
    counts = Counter(g for s in sentences["train"] for g in s.glosses)
    keep = {g for g, _ in counts.most_common(top_glosses)}
    chosen = {s: [x for x in sentences[s] if set(x.glosses) <= keep] for s in SPLITS}
    chosen["train"] = chosen["train"][:max_train] if max_train else chosen["train"]
    for split in ("dev", "test"):
        chosen[split] = chosen[split][:max_eval] if max_eval else chosen[split]
    return chosen


def _init(config, durations, writer) -> None:  # noqa: ANN001 - worker set-up
    from edge_slr.data.synth.generate import synth_for

    _WORKER["synth"] = synth_for(config, durations)
    _WORKER["writer"] = writer


def _make(task: tuple[str, object, int]):  # noqa: ANN202
    from edge_slr.data.dataset import IndexEntry

    split, sentence, signer_index = task
    synth, writer = _WORKER["synth"], _WORKER["writer"]
    signer = synth.signer(split, signer_index)
    sample_id = f"{sentence.id}__s{signer_index:02d}"
    done = writer.complete_sample(split, sample_id, frames=True, pose=False)
    if done is not None:
        return IndexEntry(sample_id, signer.id, done, sentence.glosses)
    sample = synth.synthesize(sentence.glosses, signer, sample_id=sample_id, frames=True)
    writer.write_sample(split, sample_id, sample.landmarks, frames=sample.frames)
    return IndexEntry(sample_id, signer.id, sample.landmarks.num_frames, sample.glosses)


def build(
    out: Path,
    *,
    corpus_root: Path,
    top_glosses: int = 80,
    max_train: int = 600,
    max_eval: int = 0,
    signers: dict[str, int] | None = None,
    frame_size: int = 112,
    workers: int = 1,
) -> Path:
    """Write the subset dataset to ``out`` (resumable) and return ``out``."""
    from edge_slr.data.dataset import DatasetWriter
    from edge_slr.data.synth.generate import SynthConfig, duration_model
    from edge_slr.decoding.vocab import Vocabulary

    signers = signers or {"train": 4, "dev": 2, "test": 2}
    chosen = select_sentences(corpus_root, top_glosses, max_train, max_eval)
    config = SynthConfig(corpus="phoenix2014t", root=corpus_root, frame_size=frame_size)
    vocabulary = Vocabulary.from_sentences(s.glosses for s in chosen["train"])
    selection = {
        "rule": "PHOENIX-2014-T sentences made only of the most frequent train glosses",
        "top_glosses": top_glosses,
        "max_train": max_train,
        "max_eval": max_eval,
        "signers": signers,
        "signers_per_sentence": 1,
    }
    description = {
        "name": "signsynth-kd-subset",
        "generator": config.description(),
        "selection": selection,
    }
    writer = DatasetWriter(out, description, vocabulary)
    durations = duration_model(config)
    for split in SPLITS:
        writer.start_split(split)
        tasks = [(split, s, i % signers[split]) for i, s in enumerate(chosen[split])]
        started = time.perf_counter()
        if workers > 1:
            pool = multiprocessing.get_context("spawn").Pool(
                workers, _init, (config, durations, writer)
            )
            with pool:
                entries = pool.map(_make, tasks, chunksize=4)
        else:
            _init(config, durations, writer)
            entries = [_make(t) for t in tasks]
        writer.finish_split(
            split,
            entries,
            {
                "sentences": len(tasks),
                "signers": sorted({e.signer for e in entries}),
                "frames": True,
            },
        )
        logger.info(
            "%s: %d samples, %d frames in %.0f s",
            split,
            len(entries),
            sum(e.num_frames for e in entries),
            time.perf_counter() - started,
        )
    return out


def main() -> int:
    from edge_slr.paths import shared_data_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="dataset folder (default: runs/kd-data; with --smoke a new temporary folder)",
    )
    parser.add_argument("--corpus-root", type=Path, default=None)
    parser.add_argument("--top-glosses", type=int, default=80)
    parser.add_argument("--max-train", type=int, default=600)
    parser.add_argument("--max-eval", type=int, default=0)
    parser.add_argument("--frame-size", type=int, default=112)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--smoke", action="store_true", help="10 glosses, a few sentences, 32 x 32 frames (CI)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.top_glosses, args.max_train, args.max_eval, args.frame_size = 10, 8, 4, 32
    if args.out is None:
        args.out = Path(tempfile.mkdtemp(prefix="kd-data-smoke-")) if args.smoke else DEFAULT_OUT
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    corpus_root = args.corpus_root or shared_data_dir() / "phoenix2014t"
    out = build(
        args.out,
        corpus_root=corpus_root,
        top_glosses=args.top_glosses,
        max_train=args.max_train,
        max_eval=args.max_eval,
        frame_size=args.frame_size,
        workers=args.workers,
    )
    print(f"dataset in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
