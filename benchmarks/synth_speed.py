"""SignSynth speed: sentences per second on one core, with and without rendered frames.

Sentences are PHOENIX-2014-T train sentences when ../shared/data has them (durations from the
real alignments), else the built-in grammar's. One process, one BLAS thread; the generator is
warmed up first. Three numbers per run:

- landmarks only (synthesis in memory),
- landmarks written as a dataset sample (.npz, compression included),
- landmarks + rendered 112x112 frames, both written.

Writes benchmarks/results/synth_speed.md and .json.

    python benchmarks/synth_speed.py [--sentences 200] [--smoke]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: the number is per core
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_slr.data.dataset import DatasetWriter  # noqa: E402
from edge_slr.data.synth.generate import (  # noqa: E402
    SignSynth,
    SynthConfig,
    duration_model,
    sentences_for,  # noqa: E402
)
from edge_slr.paths import shared_data_dir  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def sentences_and_durations(count: int):
    shared = shared_data_dir()
    corpus = "phoenix2014t" if shared is not None and (shared / "phoenix2014t").is_dir() else None
    config = SynthConfig(corpus=corpus)
    return corpus or "builtin", sentences_for(config, "train")[:count], duration_model(config)


def measure(synth: SignSynth, sentences, mode: str, folder: Path) -> dict:
    writer = DatasetWriter(folder, {"name": "speed", "mode": mode})
    writer.start_split("train")
    signers = [synth.signer("train", i) for i in range(4)]
    frames_total = 0
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    for i, sentence in enumerate(sentences):
        sample = synth.synthesize(
            sentence.glosses, signers[i % 4], sample_id=sentence.id, frames=(mode == "frames")
        )
        frames_total += sample.landmarks.num_frames
        if mode != "memory":
            writer.write_sample("train", sentence.id, sample.landmarks, frames=sample.frames)
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    return {
        "mode": mode,
        "sentences": len(sentences),
        "frames": frames_total,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "sentences_per_cpu_s": round(len(sentences) / cpu, 2),
        "frames_per_cpu_s": round(frames_total / cpu, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="a few sentences, for CI")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="results folder (default: benchmarks/results)"
    )
    args = parser.parse_args()
    count = 6 if args.smoke else args.sentences
    source, sentences, durations = sentences_and_durations(count + 3)
    synth = SignSynth(seed=0, durations=durations)
    warmup, sentences = sentences[:3], sentences[3:]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        measure(synth, warmup, "frames", Path(tmp) / "warmup")
        for mode in ("memory", "npz", "frames"):
            frames_sentences = (
                sentences[: max(2, len(sentences) // 4)] if mode == "frames" else sentences
            )
            rows.append(measure(synth, frames_sentences, mode, Path(tmp) / mode))
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs"
    labels = {
        "memory": "landmarks, in memory",
        "npz": "landmarks, written (.npz)",
        "frames": "landmarks + 112x112 frames, written",
    }
    lines = [
        f"# SignSynth speed ({source} sentences, one process, one thread; {machine})",
        "",
        "| what | sentences | frames | CPU s | sentences / CPU s | frames / CPU s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {labels[r['mode']]} | {r['sentences']} | {r['frames']} | {r['cpu_s']} "
            f"| {r['sentences_per_cpu_s']} | {r['frames_per_cpu_s']} |"
        )
    text = "\n".join(lines)
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    name = "synth_speed_smoke" if args.smoke else "synth_speed"
    (args.results / f"{name}.md").write_text(text + "\n", encoding="utf-8")
    (args.results / f"{name}.json").write_text(
        json.dumps({"source": source, "machine": machine, "rows": rows}, indent=1) + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
