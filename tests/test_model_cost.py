"""benchmarks/model_cost.py: its two FLOP counts agree, and its ratios say what they compare.

The smoke run itself is covered by tests/test_benchmark_scripts.py; this checks the numbers the
script reports: torch's FlopCounterMode does not see aten::lstm on CPU, so the script adds the
LSTM gate matrices from forward hooks. For the student that total must equal the independent
analytic count of edge_slr.benchmark.flops; for the teacher (no analytic count) the hook term
must equal the BiLSTM's own formula over the teacher's output steps, counted once.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "model_cost.py"


@pytest.fixture(scope="module")
def model_cost():
    spec = importlib.util.spec_from_file_location("benchmarks_model_cost", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_student_flops_match_the_analytic_count(model_cost) -> None:
    torch = pytest.importorskip("torch")
    from edge_slr.benchmark.flops import student_flops
    from edge_slr.training.models import StudentDims, build_student

    small = dict(num_classes=9, conv_channels=(8, 8, 24, 24), lstm_hidden=12)
    for dims in (
        StudentDims(**small),
        StudentDims(**small, lstm_layers=1, pre_lstm="linear", padding="same"),
    ):
        model = build_student(dims).eval()
        x = torch.randn(1, 60, dims.input_dim)
        flops = model_cost.count_flops(torch, model, lambda m=model, x=x: m(x, None, aux=False))
        assert flops["lstm_hooks"] > 0
        assert flops["total"] == student_flops(dims.to_dict(), 60)


def test_teacher_lstm_flops_follow_its_output_steps(model_cost) -> None:
    torch = pytest.importorskip("torch")
    from edge_slr.training.teacher.corrnet import TeacherDims, build_teacher

    dims = TeacherDims(num_classes=7, input_size=32, width=0.25, hidden=16)
    model = build_teacher(dims).eval()
    frames = torch.randint(0, 256, (1, 40, 32, 32, 3), dtype=torch.uint8)
    flops = model_cost.count_flops(torch, model, lambda: model(frames))
    steps, h = dims.output_length(40), dims.hidden // 2
    lstm = sum(2 * 2 * steps * 4 * h * ((dims.hidden if i == 0 else 2 * h) + h) for i in range(2))
    parts = flops["by_module"]
    assert parts["lstm"] == lstm  # packed: the counter sees it, so no hook term is added
    assert flops["lstm_hooks"] == 0 and flops["total"] == flops["flop_counter"]
    assert sum(parts.values()) == flops["flop_counter"]
    assert parts["backbone"] > flops["flop_counter"] / 2


def test_ratios_leave_out_flops_that_are_not_counted(model_cost) -> None:
    def subject(name: str, role: str, ms: float, flops: int | None, **info):
        s = model_cost.Subject(name, role, info, {})
        s.wall[100], s.cpu[100] = [ms], [ms / 2]
        if flops is not None:
            s.flops[100] = {"total": flops}
        return s

    subjects = [
        subject("landmark extraction", "front end", 40.0, None),
        subject("teacher (trained)", "teacher", 500.0, 10**10),
        subject("student (trained, torch)", "student", 10.0, 10**8),
        subject("deployed a", "student", 4.0, None, model="a"),
        subject("deployed b", "student", 2.0, None, model="b"),
    ]
    subjects[3].flops[100] = subjects[4].flops[100] = {"analytic": 10**8}
    found = {(r["teacher"], r["student"]): r for r in model_cost.ratios(subjects, [100])}
    direct = found[("teacher (trained)", "deployed b")]  # the fastest deployed form
    assert direct["latency_ratio"] == 250.0 and direct["flops_ratio"] == 100.0
    assert direct["cpu_ratio"] == 250.0
    end_to_end = found[("teacher (trained)", "landmark extraction + deployed b")]
    assert end_to_end["student_ms"] == 42.0 and end_to_end["flops_ratio"] is None
    assert "MediaPipe" in end_to_end["flops_ratio_note"]
