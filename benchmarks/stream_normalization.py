"""Streaming vs offline recognition of long single-signer inputs: per-window vs running normalisation.

A stream sees each window of frames only; the offline recogniser sees the whole recording and
normalises it by the medians of its shoulder centre and width. The stream used to normalise every
window by that window's own medians ("window"); it now keeps running medians over the stream so
far ("running", edge_slr.recognition.stream.RunningShoulders). This script measures both against offline
recognition of the same input:

- streams: ``--sentences`` consecutive sentences of one signer of a landmark dataset split,
  concatenated (SignSynth: a signer keeps their framing), ``--streams`` per signer;
- conditions: ``clean``, and ``shoulders-hidden``: both shoulders undetected for
  ``--hidden-seconds`` in the middle (a webcam that frames the signer tightly, someone leaning);
- per condition and mode: the WER against the reference glosses, and the disagreement with the
  offline recognition of the same input (the WER of the stream's glosses against the offline
  ones), summed over the streams.

    python benchmarks/stream_normalization.py --model runs/student-default/best.pt \\
        --data runs/signsynth-phoenix2014t --split test
    python benchmarks/stream_normalization.py --smoke   # two short streams (CI)

--model is a model directory or a student checkpoint (the torch reference). Results:
benchmarks/results/stream_normalization{_smoke}.{json,md}, with the machine and load.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_slr.landmarks.layout import LEFT_SHOULDER, RIGHT_SHOULDER  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
MODES = ("window", "running")


def make_streams(data_dir: Path, split: str, sentences: int, streams: int) -> list[dict]:
    """Consecutive sentences of one signer, concatenated: {signer, data, glosses}."""
    from edge_slr.data.dataset import LandmarkDataset

    dataset = LandmarkDataset(data_dir, split)
    by_signer: dict[str, list[int]] = {}
    for i, entry in enumerate(dataset.samples):
        by_signer.setdefault(entry.signer, []).append(i)
    out = []
    for signer, indices in sorted(by_signer.items()):
        for k in range(streams):
            chunk = indices[k * sentences : (k + 1) * sentences]
            if len(chunk) < sentences:
                break
            items = [dataset[i] for i in chunk]
            out.append(
                {
                    "signer": signer,
                    "data": np.concatenate([item.landmarks.data for item in items]),
                    "glosses": tuple(g for item in items for g in item.glosses),
                    "fps": items[0].landmarks.fps,
                }
            )
    return out


def hide_shoulders(data: np.ndarray, seconds: float, fps: float) -> np.ndarray:
    hidden = data.copy()
    count = int(seconds * fps)
    start = max(0, (len(data) - count) // 2)
    hidden[start : start + count, [LEFT_SHOULDER, RIGHT_SHOULDER]] = 0.0
    return hidden


def stream(rec: Any, data: np.ndarray, fps: float) -> tuple[str, ...]:
    """Every sentence the stream finished (at 60 glosses without a pause), in order."""
    rec.reset()
    for i, frame in enumerate(data):
        rec.process_landmarks(frame, i * 1000.0 / fps)
    rec.finish()
    return tuple(g for sentence in rec.sentences for g in sentence.recognized)


def errors(hypothesis: tuple, reference: tuple) -> tuple[int, int]:
    from edge_slr.metrics import align

    return align(list(reference), list(hypothesis)).errors, len(reference)


def measure(model: Path, streams: list[dict], hidden_seconds: float) -> dict[str, Any]:
    from edge_slr.recognition.recognizer import Recognizer

    rows: dict[str, dict[str, list[int]]] = {}
    seconds = {mode: 0.0 for mode in MODES}
    offline_rec = Recognizer.create_from_model_dir(model, max_single_pass_frames=10**7)
    recs = {
        mode: Recognizer.create_from_model_dir(model, pause_ms=1e9, stream_normalization=mode)
        for mode in MODES
    }
    try:
        for item in streams:
            for condition in ("clean", "shoulders-hidden"):
                data = item["data"]
                if condition != "clean":
                    data = hide_shoulders(data, hidden_seconds, item["fps"])
                offline = offline_rec.recognize_landmarks(data, fps=item["fps"]).recognized
                row = rows.setdefault(condition, {})
                _add(row, "offline.wer", errors(offline, item["glosses"]))
                for mode, rec in recs.items():
                    started = time.perf_counter()
                    streamed = stream(rec, data, item["fps"])
                    seconds[mode] += time.perf_counter() - started
                    _add(row, f"{mode}.wer", errors(streamed, item["glosses"]))
                    _add(row, f"{mode}.vs_offline", errors(streamed, offline))
    finally:
        offline_rec.close()
        for rec in recs.values():
            rec.close()
    table = {
        condition: {key: round(100 * e / max(n, 1), 2) for key, (e, n) in row.items()}
        for condition, row in rows.items()
    }
    return {"percent": table, "stream_seconds": {k: round(v, 2) for k, v in seconds.items()}}


def _add(row: dict[str, list[int]], key: str, value: tuple[int, int]) -> None:
    total = row.setdefault(key, [0, 0])
    total[0] += value[0]
    total[1] += value[1]


def smoke_model(folder: Path) -> tuple[Path, Path]:
    """A tiny SignSynth dataset and a student trained on it for two epochs."""
    from edge_slr.data.dataset import DatasetWriter, IndexEntry
    from edge_slr.data.synth.generate import SignSynth
    from edge_slr.decoding.vocab import Vocabulary
    from edge_slr.training.config import load_config
    from edge_slr.training.train import train

    glosses = ("RAIN", "SUN", "WIND", "SNOW")
    rng, synth = np.random.default_rng(0), SignSynth(seed=0)
    writer = DatasetWriter(folder, {"name": "smoke"}, Vocabulary.from_sentences([glosses]))
    for split, count in (("train", 16), ("dev", 8)):
        writer.start_split(split)
        entries = []
        for i in range(count):
            sentence = tuple(rng.choice(glosses, size=2, replace=False))
            signer = synth.signer(split, i % 2)
            sample = synth.synthesize(sentence, signer, sample_id=f"{split}-{i}")
            writer.write_sample(split, f"{split}-{i}", sample.landmarks)
            entries.append(
                IndexEntry(f"{split}-{i}", signer.id, sample.landmarks.num_frames, sentence)
            )
        writer.finish_split(split, entries, {})
    overrides = [
        f"data.root={json.dumps(str(folder))}", 'data.test_split=""',
        "model.conv_channels=[16,16,32,32]", "model.lstm_hidden=16", "train.epochs=2",
        "train.batch_size=8", "train.beam_width=0", "train.num_threads=1",
        "train.progress=false", f"train.out_dir={json.dumps(str(folder / 'run'))}",
    ]  # fmt: skip
    return train(load_config(None, overrides)).best_checkpoint, folder


def write(result: dict[str, Any], stem: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "# Streaming vs offline: per-window vs running shoulder normalisation",
        "",
        f"Model `{result['model']}`, data `{result['data']}` split `{result['split']}`: "
        f"{result['streams']} streams of {result['sentences']} consecutive sentences of one "
        f"signer ({result['frames']} frames in all); `shoulders-hidden`: both shoulders "
        f"undetected for {result['hidden_seconds']} s in the middle of each stream. "
        "WER against the reference glosses and disagreement with the offline recognition of "
        "the same input (WER of the stream's glosses against the offline ones), in %.",
        "",
        "| condition | offline WER | window WER | running WER | window vs offline "
        "| running vs offline |",
        "|---|---|---|---|---|---|",
    ]
    for condition, row in result["percent"].items():
        lines.append(
            f"| {condition} | {row['offline.wer']} | {row['window.wer']} | "
            f"{row['running.wer']} | {row['window.vs_offline']} | {row['running.vs_offline']} |"
        )
    m = result["machine"]
    lines += [
        "",
        f"Streaming time (all streams, both conditions): {result['stream_seconds']} s. "
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; load average "
        f"{m['load_before']} before, {m['load_after']} after ({result['seconds']} s).",
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="model directory or student checkpoint")
    parser.add_argument("--data", type=Path, help="landmark dataset folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--sentences", type=int, default=10, help="sentences per stream")
    parser.add_argument("--streams", type=int, default=5, help="streams per signer")
    parser.add_argument("--hidden-seconds", type=float, default=8.0)
    parser.add_argument("--smoke", action="store_true", help="tiny model, two short streams")
    args = parser.parse_args(argv)
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="stream-norm-") as tmp:
        if args.smoke:
            args.model, args.data = smoke_model(Path(tmp))
            args.split, args.sentences, args.streams, args.hidden_seconds = "dev", 4, 1, 4.0
        if args.model is None or args.data is None:
            parser.error("--model and --data are required (or --smoke)")
        streams = make_streams(args.data, args.split, args.sentences, args.streams)
        measured = measure(args.model, streams, args.hidden_seconds)
    result = {
        "model": str(args.model) if not args.smoke else "smoke",
        "data": str(args.data) if not args.smoke else "smoke",
        "split": args.split,
        "sentences": args.sentences,
        "streams": len(streams),
        "frames": int(sum(len(s["data"]) for s in streams)),
        "hidden_seconds": args.hidden_seconds,
        **measured,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": load_before,
            "load_after": [round(x, 2) for x in os.getloadavg()],
        },
    }
    write(result, "stream_normalization_smoke" if args.smoke else "stream_normalization")
    print(json.dumps(result["percent"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
