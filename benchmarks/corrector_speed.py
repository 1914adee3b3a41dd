"""Latency of the gloss corrector per sentence, torch eager vs the converted graphs, one thread.

The speed target of issue 6: <= 3 ms per 10-30 gloss sentence on this CPU after conversion.
Measured on dev sentences of 10-30 glosses corrupted by the model's noise model (rate 0.2, fixed
seed), batch 1, greedy decoding and the do-no-harm gates, stage 1 only and both stages (dual),
wall and process CPU time per sentence, for every engine:

- torch eager, ``Corrector.correct_batch`` (the training code's batched decoding at batch 1);
- torch eager / ONNX Runtime / OpenVINO through ``GraphCorrector`` with ``decoding="step"`` (one
  decoder call per output token plus two scoring calls: the plain way to run the exported
  encoder and decoder graphs), ``decoding="draft"`` (the input as a draft; see
  ``edge_slr.recognition.correction.draft_greedy``) and draft with the gate's early exit: before and after;
- a per-call breakdown: encoder and decoder call times per engine at the measured lengths.

Every row's outputs are compared with the torch eager reference (sentences with identical output).

    python benchmarks/corrector_speed.py --model runs/corrector-phoenix2014t \\
        [--onnx DIR] [--openvino DIR] [--count 200]
    python benchmarks/corrector_speed.py --smoke     # tiny random model, a few sentences (CI)

Without --onnx/--openvino the model is converted into a temporary folder first (the converters'
own verification included). Results: benchmarks/results/corrector_speed{_smoke}.{json,md}.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_slr.recognition.correction import StageGraphs  # noqa: E402
from edge_slr.recognition.correction_chain import GraphCorrector, sidecar_graphs  # noqa: E402
from edge_slr.system import machine_info  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SEED = 2014
TARGET_MS = 3.0
SOURCE: dict[str, int] = {}  # sentences taken per split
CLEAN_LENGTHS: list[int] = []  # their lengths before the noise


# -- engines -------------------------------------------------------------------------------------


def graph_files(folder: Path, suffix: str) -> list[tuple[Path, Path]]:
    """(encoder, decoder) files of every stage of the converted corrector in ``folder``."""
    for path in sorted(folder.glob("*.json")):
        sidecar = json.loads(path.read_text())
        if sidecar.get("source", {}).get("kind") == "corrector":
            pairs = sidecar_graphs(sidecar)
            if pairs[0][0].endswith(suffix):
                return [(folder / enc, folder / dec) for enc, dec in pairs]
    raise SystemExit(f"no corrector sidecar with {suffix} graphs in {folder}")


def ort_stages(folder: Path, max_len: int) -> list[StageGraphs]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3

    def session(path: Path) -> Any:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    stages = []
    for enc_path, dec_path in graph_files(folder, ".onnx"):
        enc, dec = session(enc_path), session(dec_path)
        stages.append(
            StageGraphs(
                lambda src, e=enc: e.run(None, {"src": src})[0],
                lambda tgt, mem, src, d=dec: d.run(None, {"tgt": tgt, "memory": mem, "src": src})[
                    0
                ],
                max_len,
            )
        )
    return stages


def ov_stages(folder: Path, max_len: int, cache_off: bool = True) -> list[StageGraphs]:
    import openvino as ov

    core = ov.Core()
    config: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": "f32",
        "INFERENCE_NUM_THREADS": 1,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
    }
    if cache_off:  # the converter's workaround for a wrong cached kernel (corrector_export)
        config["CPU_RUNTIME_CACHE_CAPACITY"] = "0"
    stages = []
    for enc_path, dec_path in graph_files(folder, ".xml"):
        enc = core.compile_model(str(enc_path), "CPU", config).create_infer_request()
        dec = core.compile_model(str(dec_path), "CPU", config).create_infer_request()

        def encode(src: np.ndarray, r: Any = enc) -> np.ndarray:
            r.infer({"src": src})
            return np.array(r.get_output_tensor(0).data)

        def decode(tgt: np.ndarray, mem: np.ndarray, src: np.ndarray, r: Any = dec) -> np.ndarray:
            r.infer({"tgt": tgt, "memory": mem, "src": src})
            return np.array(r.get_output_tensor(0).data)

        stages.append(StageGraphs(encode, decode, max_len))
    return stages


class StaticShapes:
    """OpenVINO with one compiled model per input shape: no dynamic-shape work per call.

    The encoder is compiled per source length S; the decoder per (S, T rounded up to 8), the
    target padded at its end (harmless: the causal mask keeps padding out of earlier rows, and
    only those rows are read). A deployment would compile S = 1..63 at load time; here the
    shapes the benchmark needs are compiled in an untimed pass (``compiled`` counts them).
    """

    def __init__(self, enc_path: Path, dec_path: Path, config: dict[str, Any], pad: int) -> None:
        import openvino as ov

        self.core, self.config, self.pad = ov.Core(), config, pad
        self.enc_model, self.dec_model = (
            self.core.read_model(enc_path),
            self.core.read_model(dec_path),
        )
        self.requests: dict[tuple[int, ...], Any] = {}
        self.compile_seconds = 0.0

    def _request(self, key: tuple[int, ...]) -> Any:
        if key not in self.requests:
            t0 = time.perf_counter()
            if len(key) == 1:
                model = self.enc_model.clone()
                model.reshape({"src": [1, key[0]]})
            else:
                model = self.dec_model.clone()
                d = self.dec_model.input("memory").get_partial_shape()[2].get_length()
                model.reshape({"tgt": [1, key[1]], "memory": [1, key[0], d], "src": [1, key[0]]})
            compiled = self.core.compile_model(model, "CPU", self.config)
            self.requests[key] = compiled.create_infer_request()
            self.compile_seconds += time.perf_counter() - t0
        return self.requests[key]

    def encode(self, src: np.ndarray) -> np.ndarray:
        r = self._request((src.shape[1],))
        r.infer({"src": src})
        return np.array(r.get_output_tensor(0).data)

    def decode(self, tgt: np.ndarray, mem: np.ndarray, src: np.ndarray) -> np.ndarray:
        length = tgt.shape[1]
        bucket = -(-length // 8) * 8
        if bucket > length:
            tgt = np.pad(tgt, ((0, 0), (0, bucket - length)), constant_values=self.pad)
        r = self._request((src.shape[1], bucket))
        r.infer({"tgt": tgt, "memory": mem, "src": src})
        return np.array(r.get_output_tensor(0).data[:, :length])


def ov_static_stages(
    folder: Path, max_len: int, pad: int
) -> tuple[list[StageGraphs], list[StaticShapes]]:
    config = {
        "INFERENCE_PRECISION_HINT": "f32",
        "INFERENCE_NUM_THREADS": 1,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
    }
    stages, shapes = [], []
    for enc_path, dec_path in graph_files(folder, ".xml"):
        shapes.append(StaticShapes(enc_path, dec_path, config, pad))
        stages.append(StageGraphs(shapes[-1].encode, shapes[-1].decode, max_len))
    return stages, shapes


def convert_to(model: Path, target: str, out: Path) -> Path:
    from edge_slr.converters import convert

    t0 = time.perf_counter()
    convert(model, target, out)
    print(f"  converted to {target} in {time.perf_counter() - t0:.0f} s: {out}", flush=True)
    return out


# -- data ----------------------------------------------------------------------------------------


def noisy_sentences(
    corrector: Any, model: Path, corpus: str, count: int, rate: float
) -> list[list[str]]:
    """Sentences of 10-30 glosses with the model's noise at ``rate``: the first ``count`` of
    dev, then of test when dev has fewer (PHOENIX-2014-T dev has about 100)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from corrector_eval import EvalNoise

    from edge_slr.data.corpora import corpus_spec, load_corpus
    from edge_slr.paths import shared_data_dir
    from edge_slr.training.corrector import load_checkpoint
    from edge_slr.training.corrector.noise import NoiseConfig

    shared = shared_data_dir()
    root = shared / corpus_spec(corpus).shared_folder
    pool = []
    for split in ("dev", "test"):
        clean = [list(s.glosses) for s in load_corpus(corpus, root, split)]
        taken = [s for s in clean if 10 <= len(s) <= 30][: count - len(pool)]
        SOURCE[split] = len(taken)
        pool += taken
    CLEAN_LENGTHS[:] = [len(s) for s in pool]
    train = [s.glosses for s in load_corpus(corpus, root, "train") if s.glosses]
    noise_cfg = NoiseConfig.from_dict(load_checkpoint(model)["config"].get("noise", {}))
    return EvalNoise(corrector, noise_cfg, train).corrupt(pool, rate, SEED)


def smoke_model(folder: Path) -> tuple[Path, list[list[str]]]:
    """A tiny untrained two-stage corrector on made-up glosses, and a few sentences."""
    import torch

    from edge_slr.training.corrector import (
        Corrector,
        CorrectorDims,
        CorrectorVocabulary,
        build_stages,
        save_corrector,
    )

    rng = np.random.default_rng(0)
    glosses = [f"G{i}" for i in range(40)]
    sentences = [list(rng.choice(glosses, rng.integers(10, 16))) for _ in range(6)]
    vocab = CorrectorVocabulary.from_sentences([glosses])
    torch.manual_seed(0)
    dims = CorrectorDims(len(vocab), d_model=32, n_heads=2, encoder_layers=2, ff_dim=64)
    save_corrector(folder, Corrector(build_stages(dims, vocab.pad_id), vocab), {})
    return folder, sentences


# -- timing --------------------------------------------------------------------------------------


def time_rows(
    correct: Any, sentences: list[list[str]], repeats: int, warmed: Any = None
) -> dict[str, Any]:
    """Per-sentence wall and CPU ms (the best of ``repeats`` runs per sentence) and outputs."""
    wall, cpu, outputs = [], [], []
    for s in sentences[:3]:
        correct(s)  # warm-up: first-call allocations, kernel compilation
    if warmed is not None:
        warmed()
    for s in sentences:
        best_w = best_c = float("inf")
        for _ in range(repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            result = correct(s)
            best_w = min(best_w, time.perf_counter() - w0)
            best_c = min(best_c, time.process_time() - c0)
        wall.append(1000 * best_w)
        cpu.append(1000 * best_c)
        outputs.append(list(result.glosses))
    return {
        "wall_ms_median": round(float(np.median(wall)), 3),
        "wall_ms_p90": round(float(np.percentile(wall, 90)), 3),
        "cpu_ms_median": round(float(np.median(cpu)), 3),
        "cpu_ms_p90": round(float(np.percentile(cpu, 90)), 3),
        "outputs": outputs,
    }


def call_breakdown(stage: StageGraphs, eos: int, bos: int, repeats: int = 50) -> dict[str, float]:
    """Median CPU ms of one encoder call (S=21) and decoder calls (T=1, 11, 21) of a stage."""
    src = np.full((1, 21), 5, dtype=np.int64)
    src[0, -1] = eos
    memory = stage.encode(src)
    out = {}

    def median_ms(fn: Any) -> float:
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.process_time()
            fn()
            times.append(1000 * (time.process_time() - t0))
        return round(float(np.median(times)), 4)

    out["encoder_S21_ms"] = median_ms(lambda: stage.encode(src))
    for t in (1, 11, 21):
        tgt = np.full((1, t), 5, dtype=np.int64)
        tgt[0, 0] = bos
        out[f"decoder_T{t}_ms"] = median_ms(lambda tgt=tgt: stage.decode(tgt, memory, src))
    return out


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch

    from edge_slr.training.corrector import load_corrector

    torch.set_num_threads(1)
    if args.smoke:
        model, sentences = smoke_model(work / "model")
        corpus = "smoke"
    else:
        model = Path(args.model)
    corrector = load_corrector(model)
    if not args.smoke:
        corpus = corrector.metadata.get("training", {}).get("corpus", "phoenix2014t")
        sentences = noisy_sentences(corrector, model, corpus, args.count, args.rate)
    max_len = corrector.stages[0].dims.max_len
    engines: dict[str, list[StageGraphs]] = {}
    engines["torch"] = corrector.graphs()
    skipped: dict[str, str] = {}
    for target, option, loader in (
        ("onnx", args.onnx, ort_stages),
        ("onnx-int8", args.onnx_int8, ort_stages),
        ("openvino", args.openvino, ov_stages),
        ("openvino-int8", args.openvino_int8, ov_stages),
    ):
        if target not in args.engines.split(","):
            continue
        try:
            folder = Path(option) if option else convert_to(model, target, work / target)
        except Exception as exc:  # noqa: BLE001 - a target that cannot convert is reported
            skipped[target] = f"{type(exc).__name__}: {exc}"
            print(f"  {target} skipped: {skipped[target]}", flush=True)
            continue
        engines[target] = loader(folder, max_len)
    static: dict[str, Any] = {}
    if "openvino" in engines:
        folder = Path(args.openvino) if args.openvino else work / "openvino"
        if args.openvino_cache:
            engines["openvino-cache-on"] = ov_stages(folder, max_len, cache_off=False)
        stages, shapes = ov_static_stages(folder, max_len, corrector.vocab.pad_id)
        t0 = time.perf_counter()
        for method in ("step", "draft"):  # compile every shape the timed runs will meet
            warm = GraphCorrector(stages, corrector.vocab, corrector.gates, method, False)
            for s in sentences:
                warm.correct(s)
        engines["openvino-static"] = stages
        static = {
            "compiled_models": sum(len(x.requests) for x in shapes),
            "compile_seconds": round(sum(x.compile_seconds for x in shapes), 1),
            "warm_pass_seconds": round(time.perf_counter() - t0, 1),
        }
        print(f"  openvino-static: {static}", flush=True)

    vocab, gates = corrector.vocab, corrector.gates
    rows = []
    reference: dict[str, list[list[str]]] = {}
    for stages_used, label in ((1, "stage 1"), (len(corrector.stages), "dual")):
        ref = time_rows(
            lambda s, n=stages_used: corrector.correct_batch([s], num_stages=n)[0],
            sentences,
            args.repeats,
        )
        reference[label] = ref.pop("outputs")
        rows.append({"engine": "torch", "decoding": "correct_batch", "stages": label, **ref})
        print(f"  {rows[-1]}", flush=True)
        for engine, stages in engines.items():
            for method, early_exit in (("step", False), ("draft", False), ("draft+exit", True)):
                if method == "step" and engine in args.no_step.split(","):
                    continue
                runner = GraphCorrector(stages, vocab, gates, method.split("+")[0], early_exit)
                timed = time_rows(
                    lambda s, r=runner, n=stages_used: r.correct(s, num_stages=n),
                    sentences,
                    args.repeats,
                    warmed=lambda r=runner: setattr(r, "decoder_calls", 0),
                )
                outputs = timed.pop("outputs")
                calls = runner.decoder_calls / (len(sentences) * args.repeats)
                rows.append(
                    {
                        "engine": engine,
                        "decoding": method,
                        "stages": label,
                        **timed,
                        "decoder_calls_mean": round(calls, 2),
                        "same_as_reference": sum(
                            a == b for a, b in zip(outputs, reference[label], strict=True)
                        ),
                    }
                )
                print(f"  {rows[-1]}", flush=True)
    breakdown = {
        name: call_breakdown(stages[0], vocab.eos_id, vocab.bos_id)
        for name, stages in engines.items()
    }
    lengths = [len(s) for s in sentences]
    clean_lengths = CLEAN_LENGTHS or lengths
    return {
        "model": str(model),
        "corpus": corpus,
        "dims": corrector.stages[0].dims.to_dict(),
        "sentences": len(sentences),
        "from_splits": dict(SOURCE) or {"smoke": len(sentences)},
        "glosses_mean": round(float(np.mean(clean_lengths)), 2),
        "glosses_range": [int(min(clean_lengths)), int(max(clean_lengths))],
        "noisy_glosses_mean": round(float(np.mean(lengths)), 2),
        "noisy_glosses_range": [int(min(lengths)), int(max(lengths))],
        "noise_rate": args.rate,
        "repeats": args.repeats,
        "threads": 1,
        "target_ms": TARGET_MS,
        "rows": rows,
        "call_breakdown": breakdown,
        "openvino_static": static,
        "skipped_engines": skipped,
        "machine": machine_info().to_dict(),
        "loadavg_before": list(args.loadavg_before),
        "loadavg_after": list(os.getloadavg()),
        "versions": versions(),
    }


def versions() -> dict[str, str]:
    out = {}
    for name in ("torch", "onnxruntime", "openvino"):
        try:
            module = __import__(name)
            out[name] = getattr(module, "__version__", "") or module.get_version()
        except Exception:  # noqa: BLE001 - a missing engine is reported, not fatal
            out[name] = "missing"
    return out


def to_markdown(r: dict[str, Any]) -> str:
    d = r["dims"]
    lines = [
        "# Gloss corrector latency per sentence (batch 1, greedy + gates, one thread)",
        "",
        f"Model `{r['model']}` ({r['corpus']}): {d['stages']} stages, d={d['d_model']}, "
        f"{d['encoder_layers']} encoder / {d['decoder_layers']} decoder layer(s), vocabulary "
        f"{d['vocab_size']}. {r['sentences']} sentences ("
        + ", ".join(f"{n} {split}" for split, n in r["from_splits"].items())
        + f") of {r['glosses_range'][0]}-{r['glosses_range'][1]} glosses (mean "
        f"{r['glosses_mean']}; after noise at rate {r['noise_rate']}: "
        f"{r['noisy_glosses_range'][0]}-{r['noisy_glosses_range'][1]}, mean "
        f"{r['noisy_glosses_mean']}); per sentence the best of {r['repeats']} runs. Target: <= "
        f"{r['target_ms']} ms.",
        "",
        "`step`: one decoder call per output token + two teacher-forced scoring calls (the plain "
        "way to run the exported graphs, = the training code's decoding); `draft`: the input as "
        "a draft, verified in one decoder call per edit (edge_slr.recognition.correction.draft_greedy); "
        "`draft+exit`: and a stage stops as soon as its gate's margin limit is out of reach "
        "(same output). "
        "`correct_batch`: the training code's batched step-by-step decoding at batch 1 (what "
        "`Corrector.correct` ran before this change; it now uses draft decoding). 'same' = "
        "sentences whose output equals torch `correct_batch`'s.",
        "",
        "| engine | decoding | stages | wall ms median | wall ms p90 | CPU ms median | "
        "CPU ms p90 | decoder calls | same |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        met = " **<= 3**" if row["cpu_ms_median"] <= r["target_ms"] else ""
        lines.append(
            f"| {row['engine']} | {row['decoding']} | {row['stages']} | "
            f"{row['wall_ms_median']:.2f} | {row['wall_ms_p90']:.2f} | "
            f"{row['cpu_ms_median']:.2f}{met} | {row['cpu_ms_p90']:.2f} | "
            f"{row.get('decoder_calls_mean', '')} | "
            f"{row.get('same_as_reference', r['sentences'])}/{r['sentences']} |"
        )
    if r.get("openvino_static"):
        st = r["openvino_static"]
        lines += [
            "",
            "`openvino-static`: the same IR compiled once per input shape (encoder per source "
            "length S, decoder per S and target length rounded up to 8, the target padded at its "
            f"end); the {st['compiled_models']} shapes these sentences need were compiled before "
            f"timing ({st['compile_seconds']} s of compilation): a deployment would compile the "
            "shapes it allows at load time. `openvino`: dynamic shapes with the converter's "
            "runtime-cache workaround (CPU_RUNTIME_CACHE_CAPACITY=0)"
            + (
                "; `openvino-cache-on`: without it."
                if "openvino-cache-on" in r["call_breakdown"]
                else "."
            ),
        ]
    lines += [
        "",
        "Per-call cost of stage 1 (median CPU ms; S = source tokens, T = target tokens):",
        "",
        "| engine | " + " | ".join(next(iter(r["call_breakdown"].values()))) + " |",
        "|---|" + "---|" * len(next(iter(r["call_breakdown"].values()))),
    ]
    for name, calls in r["call_breakdown"].items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in calls.values()) + " |")
    lines += ["", *limits(r)]
    for name, why in r.get("skipped_engines", {}).items():
        lines += ["", f"Not measured: {name} ({why})."]
    m = r["machine"]
    lines += [
        "",
        f"Machine: {m.get('cpu_model')}, {m.get('logical_cpus')} CPUs; load "
        f"average before {r['loadavg_before'][0]:.1f}, after {r['loadavg_after'][0]:.1f} (the "
        "machine was shared; CPU ms is the process CPU time, wall includes waiting for a core). "
        f"Versions: {', '.join(f'{k} {v}' for k, v in r['versions'].items())}.",
        "",
    ]
    return "\n".join(lines)


def limits(r: dict[str, Any]) -> list[str]:
    """Where the time of dual draft+exit goes: graph calls at the per-call costs vs the rest."""
    rows = {
        (x["engine"], x["decoding"], x["stages"]): x for x in r["rows"] if "decoder_calls_mean" in x
    }
    out = [
        "What limits dual `draft+exit` (per sentence: 2 encoder calls + the mean decoder calls "
        "at the stage-1 per-call CPU costs above, S=21/T=11, measured by repeating one call; "
        "'other' is what the calls cost on top in the real flow (a new shape every call, four "
        "graphs' weights taking turns in the caches) plus the Python work of decoding, gates "
        "and vocabulary, which alone is about 0.06 ms per sentence: measured with replayed "
        "graph outputs on CSL-Daily):",
        "",
        "| engine | CPU ms median | encoders ms | decoder calls x ms | other ms |",
        "|---|---|---|---|---|",
    ]
    for name, calls in r["call_breakdown"].items():
        row = rows.get((name, "draft+exit", "dual"))
        if row is None:
            continue
        enc = 2 * calls["encoder_S21_ms"]
        dec = row["decoder_calls_mean"] * calls["decoder_T11_ms"]
        out.append(
            f"| {name} | {row['cpu_ms_median']:.2f} | {enc:.2f} | "
            f"{row['decoder_calls_mean']} x {calls['decoder_T11_ms']:.2f} = {dec:.2f} | "
            f"{row['cpu_ms_median'] - enc - dec:.2f} |"
        )
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="runs/corrector-phoenix2014t", help="corrector folder")
    p.add_argument("--onnx", help="converted ONNX corrector folder (default: convert now)")
    p.add_argument("--openvino", help="converted OpenVINO corrector folder (default: convert now)")
    p.add_argument("--onnx-int8", help="converted ONNX INT8 corrector folder")
    p.add_argument("--openvino-int8", help="converted OpenVINO INT8 corrector folder")
    p.add_argument(
        "--engines",
        default="onnx,onnx-int8,openvino,openvino-int8",
        help="converted engines to measure (comma-separated)",
    )
    p.add_argument("--openvino-cache", action="store_true", help="also OpenVINO with its cache")
    p.add_argument("--no-step", default="", help="engines to measure without the 'step' rows")
    p.add_argument("--count", type=int, default=200, help="dev sentences of 10-30 glosses")
    p.add_argument("--rate", type=float, default=0.2, help="noise rate")
    p.add_argument("--repeats", type=int, default=3, help="runs per sentence (best kept)")
    p.add_argument("--tag", default="", help="suffix of the result files")
    p.add_argument("--smoke", action="store_true", help="tiny random model, few sentences (CI)")
    args = p.parse_args()
    args.loadavg_before = os.getloadavg()
    if args.smoke:
        args.repeats = 1
    with tempfile.TemporaryDirectory(prefix="corrector-speed-") as tmp:
        result = run(args, Path(tmp))
    for row in result["rows"]:
        row.pop("outputs", None)
    stem = "corrector_speed" + ("_smoke" if args.smoke else "") + args.tag
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(to_markdown(result))
    print(to_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
