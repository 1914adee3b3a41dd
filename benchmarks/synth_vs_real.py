"""Compare SignSynth landmark statistics with real MediaPipe recordings.

Real: every ``.pose`` recording under ../shared/data/landmarks with at least 20 frames (PHOENIX
style, AUTSL, the pose-format and segmentation examples, the Swiss-German lexicon signs).
Synthetic: the built-in grammar at the default difficulty, signers of the test split.

Statistics, all in shoulder widths (so image size and camera distance cancel out):
- hand speed: wrist displacement per second between consecutive frames with the hand;
- hand-to-face distance: wrist to nose;
- fraction of frames in which each hand is detected;
- jitter: |x_t - (x_{t-1} + x_{t+1}) / 2| of the nose, and of the hand points relative to the
  wrist (finger noise), over runs of three frames with the part detected.

Writes benchmarks/results/synth_vs_real.md (table) and synth_vs_real.png (histograms).

    python benchmarks/synth_vs_real.py [--sentences 60] [--signers 6] [--smoke]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_slr.data.synth.generate import SignSynth  # noqa: E402
from edge_slr.data.synth.sentences import BuiltinGrammar  # noqa: E402
from edge_slr.landmarks.io import load_landmarks  # noqa: E402
from edge_slr.landmarks.sequence import LandmarkSequence  # noqa: E402
from edge_slr.paths import shared_data_dir  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
NOSE, LEFT_SHOULDER, RIGHT_SHOULDER = 0, 11, 12
HANDS = {"left": 501, "right": 522}
METRICS = ("hand_speed", "hand_face_distance", "nose_jitter", "hand_jitter")


def sequence_stats(seq: LandmarkSequence) -> dict[str, np.ndarray] | None:
    """Per-frame statistics of one recording (None when it has no shoulders to measure with)."""
    width = float(seq.metadata.get("image_width") or 1.0)
    height = float(seq.metadata.get("image_height") or width)
    xy = seq.coordinates[..., :2].astype(np.float64) * np.array([1.0, height / width])
    conf = seq.confidence
    shoulders = (conf[:, LEFT_SHOULDER] > 0) & (conf[:, RIGHT_SHOULDER] > 0)
    if shoulders.sum() < 5:
        return None
    sw = float(
        np.median(
            np.linalg.norm(xy[shoulders, LEFT_SHOULDER] - xy[shoulders, RIGHT_SHOULDER], axis=-1)
        )
    )
    nose_ok = conf[:, NOSE] > 0
    out: dict[str, list] = {m: [] for m in METRICS}
    for name, start in HANDS.items():
        present = conf[:, start] > 0
        out[f"present_{name}"] = [present.mean()]
        wrist = xy[:, start]
        pair = present[1:] & present[:-1]
        out["hand_speed"].append(
            np.linalg.norm(np.diff(wrist, axis=0), axis=-1)[pair] * seq.fps / sw
        )
        both = present & nose_ok
        out["hand_face_distance"].append(np.linalg.norm(wrist - xy[:, NOSE], axis=-1)[both] / sw)
        rel = xy[:, start : start + 21] - wrist[:, None]
        triple = present[2:] & present[1:-1] & present[:-2]
        second = np.linalg.norm(rel[1:-1] - 0.5 * (rel[2:] + rel[:-2]), axis=-1).mean(axis=1)
        out["hand_jitter"].append(second[triple] / sw)
    triple = nose_ok[2:] & nose_ok[1:-1] & nose_ok[:-2]
    nose = xy[:, NOSE]
    out["nose_jitter"].append(
        np.linalg.norm(nose[1:-1] - 0.5 * (nose[2:] + nose[:-2]), axis=-1)[triple] / sw
    )
    return {
        k: np.concatenate([np.atleast_1d(np.asarray(v, float)) for v in vals])
        for k, vals in out.items()
    }


def pooled(stats: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    keys = stats[0].keys()
    return {k: np.concatenate([s[k] for s in stats]) for k in keys}


def real_stats() -> tuple[dict[str, np.ndarray], int]:
    shared = shared_data_dir()
    if shared is None:
        raise SystemExit("../shared/data is needed for the real recordings")
    stats = []
    for path in sorted((shared / "landmarks").rglob("*.pose")):
        seq = load_landmarks(path)
        if seq.num_frames >= 20 and (s := sequence_stats(seq)) is not None:
            stats.append(s)
    return pooled(stats), len(stats)


def synth_stats(
    sentences: int, signers: int, difficulty: str = "default"
) -> tuple[dict[str, np.ndarray], list]:
    synth = SignSynth(seed=0, difficulty=difficulty)
    grammar = BuiltinGrammar(0).sentences("test")[:sentences]
    people = [synth.signer("test", i) for i in range(signers)]
    stats, samples = [], []
    for i, sentence in enumerate(grammar):
        sample = synth.synthesize(sentence.glosses, people[i % signers], sample_id=sentence.id)
        samples.append(sample)
        stats.append(sequence_stats(sample.landmarks))
    return pooled(stats), samples


def summary(values: np.ndarray) -> str:
    if values.size == 0:
        return "n/a"
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return f"{p50:.3f} [{p10:.3f}-{p90:.3f}]"


def table(real: dict, synth: dict, files: int, sequences: int) -> str:
    rows = [
        "| statistic (shoulder widths) | real median [p10-p90] | SignSynth median [p10-p90] |",
        "|---|---|---|",
    ]
    labels = {
        "hand_speed": "hand speed (per second)",
        "hand_face_distance": "wrist-nose distance",
        "nose_jitter": "nose jitter (per frame)",
        "hand_jitter": "hand jitter (per frame, wrist-relative)",
    }
    for key, label in labels.items():
        rows.append(f"| {label} | {summary(real[key])} | {summary(synth[key])} |")
    for side in ("left", "right"):
        key = f"present_{side}"
        rows.append(
            f"| frames with {side} hand (mean over recordings) | {real[key].mean():.2f} | {synth[key].mean():.2f} |"
        )
    rows.append(
        f"\nReal: {files} recordings from ../shared/data/landmarks; SignSynth: {sequences} sentences."
    )
    return "\n".join(rows)


def plot(real: dict, synth: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 5, figsize=(18, 3.4))
    ranges = {
        "hand_speed": (0, 6),
        "hand_face_distance": (0, 3),
        "nose_jitter": (0, 0.02),
        "hand_jitter": (0, 0.06),
    }
    for ax, (key, (lo, hi)) in zip(axes[:4], ranges.items(), strict=True):
        bins = np.linspace(lo, hi, 40)
        ax.hist(np.clip(real[key], lo, hi), bins, density=True, alpha=0.55, label="real")
        ax.hist(np.clip(synth[key], lo, hi), bins, density=True, alpha=0.55, label="SignSynth")
        ax.set_title(key.replace("_", " "))
    sides = ["left", "right"]
    x = np.arange(2)
    axes[4].bar(x - 0.2, [real[f"present_{s}"].mean() for s in sides], 0.4, label="real")
    axes[4].bar(x + 0.2, [synth[f"present_{s}"].mean() for s in sides], 0.4, label="SignSynth")
    axes[4].set_xticks(x, [f"{s} hand" for s in sides])
    axes[4].set_title("fraction of frames with hand")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=80)
    parser.add_argument("--signers", type=int, default=8)
    parser.add_argument("--difficulty", default="default")
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI (few sentences)")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="results folder (default: benchmarks/results)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.smoke:
        args.sentences, args.signers = 6, 2
    real, files = real_stats()
    synth, samples = synth_stats(args.sentences, args.signers, args.difficulty)
    text = table(real, synth, files, len(samples))
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    name = "synth_vs_real_smoke" if args.smoke else "synth_vs_real"
    (args.results / f"{name}.md").write_text(
        f"# SignSynth vs real MediaPipe recordings ({args.difficulty} difficulty)\n\n{text}\n",
        encoding="utf-8",
    )
    plot(real, synth, args.results / f"{name}.png")
    print(f"wrote {args.results / name}.md and .png")


if __name__ == "__main__":
    main()
