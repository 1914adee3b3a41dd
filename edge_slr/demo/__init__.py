"""The README's main command: ``make demo`` / ``edge-slr demo`` runs the whole chain once.

    from edge_slr.demo import DemoOptions, run_demo
    result = run_demo(DemoOptions(work_dir="runs/demo"))
    result.held_out.wer, result.benchmark.format_table()

Stages (each in its own module; the first four are cached by a key of their options):
:mod:`~edge_slr.demo.data` builds a small SignSynth dataset, :mod:`~edge_slr.demo.stages` trains
the student and the corrector and converts the student, :mod:`~edge_slr.demo.recognize` runs the
Recognizer on held-out clips and a real video, :mod:`~edge_slr.demo.run` ties them together and
calls :func:`edge_slr.benchmark.benchmark_models`. Importing this package needs only numpy.
"""

from edge_slr.demo.options import DEFAULT_WORK_DIR, DemoOptions
from edge_slr.demo.run import DemoResult, run_demo

__all__ = ["DEFAULT_WORK_DIR", "DemoOptions", "DemoResult", "run_demo"]
