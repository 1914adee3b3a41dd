"""Benchmark results: rows, the report (table, JSON, markdown) and its schema.

One :class:`BenchmarkRow` per model file x runtime (the model's format and precision come with
it). A row that could not be measured, or whose WER is above ``--floor-wer``, is *failed* and
carries the reason; the table marks it and a legend below lists the reasons. The JSON written by
:meth:`BenchmarkReport.to_json` is what ``edge-slr benchmark --compare`` reads back.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_slr.errors import FormatError, InputError

SCHEMA = "edge-slr-benchmark"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Latency:
    """Batch-1 latency of one input length: ``runs`` timed calls after warm-up."""

    frames: int
    p50_ms: float
    p90_ms: float
    mean_ms: float
    runs: int
    min_ms: float | None = None  # the least disturbed call: a useful floor on a busy machine

    @property
    def fps(self) -> float:
        """Input frames per second at the median latency."""
        return self.frames * 1000.0 / self.p50_ms if self.p50_ms > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fps": round(self.fps, 1)}


@dataclass(frozen=True)
class BenchmarkRow:
    """One model file on one runtime. ``status`` is "ok" or "failed" (then ``reason`` says why)."""

    model_dir: str
    model: str  # file name in model_dir ("" when the directory itself failed)
    format: str  # conversion target: onnx, openvino-int8, ...
    runtime: str
    precision: str  # weights precision: fp32, fp16, int8
    status: str = "ok"
    reason: str = ""
    activations: str = ""
    size_mb: float | None = None
    threads: int | None = None
    load_s: float | None = None
    peak_rss_mb: float | None = None
    rss_before_load_mb: float | None = None
    latency: tuple[Latency, ...] = ()
    wer: float | None = None  # fraction (0.185 = 18.5 %)
    wer_detail: dict[str, Any] | None = None  # S/D/I/N, sentences, corpus, decoder
    sentence_ms: float | None = None  # mean Recognizer time per data sentence (features+model+CTC)
    flops_per_frame: float | None = None  # analytic, see edge_slr.benchmark.flops
    peak_fraction: float | None = None  # achieved FLOP/s at the longest length / CPU peak
    student_dims: dict[str, Any] | None = None  # the sidecar's source.dims (for the FLOPs)
    notes: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.status != "ok"

    def latency_at(self, frames: int) -> Latency | None:
        return next((lat for lat in self.latency if lat.frames == frames), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["latency"] = [lat.to_dict() for lat in self.latency]
        data["notes"] = list(self.notes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkRow:
        values = dict(data)
        values["latency"] = tuple(
            Latency(**{k: v for k, v in lat.items() if k != "fps"}) for lat in data["latency"]
        )
        values["notes"] = tuple(data.get("notes", ()))
        return cls(**values)


@dataclass(frozen=True)
class BenchmarkReport:
    """Everything one ``edge-slr benchmark`` run measured on one machine."""

    machine: dict[str, Any]
    settings: dict[str, Any]
    rows: tuple[BenchmarkRow, ...]
    pipeline: tuple[dict[str, Any], ...] = ()
    created: str = ""
    label: str = ""  # the machine's short name in comparisons (default: its CPU model)

    @property
    def failed(self) -> tuple[BenchmarkRow, ...]:
        return tuple(row for row in self.rows if row.failed)

    def comparisons(self) -> dict[str, Any]:
        from edge_slr.benchmark.analysis import comparisons

        return comparisons(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "created": self.created,
            "label": self.label or short_cpu(self.machine),
            "machine": self.machine,
            "settings": self.settings,
            "rows": [row.to_dict() for row in self.rows],
            "comparisons": self.comparisons(),
            "pipeline": list(self.pipeline),
        }

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: Any, source: str | Path = "<dict>") -> BenchmarkReport:
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise FormatError(source, f"not an edge-slr benchmark result (schema {SCHEMA!r})")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise FormatError(
                source,
                f"benchmark schema version {data.get('schema_version')!r}; this edge-slr "
                f"reads {SCHEMA_VERSION}",
            )
        try:
            rows = tuple(BenchmarkRow.from_dict(row) for row in data["rows"])
            return cls(
                machine=dict(data["machine"]),
                settings=dict(data["settings"]),
                rows=rows,
                pipeline=tuple(data.get("pipeline", ())),
                created=str(data.get("created", "")),
                label=str(data.get("label", "")),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise FormatError(source, f"invalid benchmark result: {err!r}") from None

    @classmethod
    def load(cls, path: str | Path) -> BenchmarkReport:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FormatError(path, "benchmark result file does not exist") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise FormatError(path, f"not JSON ({err})") from None
        return cls.from_dict(data, path)

    def format_table(self) -> str:
        from edge_slr.benchmark.tables import format_report

        return format_report(self)

    def to_markdown(self) -> str:
        from edge_slr.benchmark.tables import format_report

        return format_report(self, markdown=True)

    def plot(self, path: str | Path) -> Path:
        from edge_slr.benchmark.plot import plot_reports

        return plot_reports([self], path)


@dataclass(frozen=True)
class BenchmarkSettings:
    """The measuring options, validated, recorded in every report.

    ``floor_wer`` is in percent (20 = 20 % WER). ``budget_s`` bounds the timed calls of one
    length (at least 3 calls are always made); ``row_timeout_s`` bounds a whole row.
    """

    lengths: tuple[int, ...] = (50, 100, 200)
    warmup: int = 3
    runs: int = 20
    budget_s: float = 10.0
    threads: int | None = None
    data_dir: str | None = None
    split: str = "test"
    max_sentences: int | None = None
    beam_width: int = 1
    floor_wer: float | None = None
    isolate: bool = True
    row_timeout_s: float = 1800.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "lengths", tuple(self.lengths))
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", str(self.data_dir))
        if not self.lengths or any(_bad_int(n) for n in self.lengths):
            raise InputError(f"lengths must be positive frame counts, got {list(self.lengths)}")
        for name in ("runs", "beam_width"):
            if _bad_int(getattr(self, name)):
                raise InputError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if _bad_int(self.warmup, minimum=0):
            raise InputError(f"warmup must be an integer >= 0, got {self.warmup!r}")
        for name in ("threads", "max_sentences"):
            value = getattr(self, name)
            if value is not None and _bad_int(value):
                raise InputError(f"{name} must be a positive integer or None, got {value!r}")
        for name in ("budget_s", "row_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InputError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.floor_wer is not None:
            if not isinstance(self.floor_wer, (int, float)) or not 0 <= self.floor_wer <= 100:
                raise InputError(f"floor_wer is a WER in percent (0-100), got {self.floor_wer!r}")
            if self.data_dir is None:
                raise InputError("a WER floor needs data to measure the WER on (--data DIR)")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["lengths"] = list(self.lengths)
        return data


def _bad_int(value: Any, minimum: int = 1) -> bool:
    return isinstance(value, bool) or not isinstance(value, int) or value < minimum


def short_cpu(machine: dict[str, Any]) -> str:
    """A short name for a machine: its CPU model without the vendor noise."""
    model = str(machine.get("cpu_model", "") or machine.get("machine", "cpu"))
    for noise in ("(R)", "(TM)", "CPU", "Processor", "with Radeon Graphics"):
        model = model.replace(noise, "")
    model = model.split("@")[0]
    return " ".join(model.split()) or "cpu"
