"""PHOENIX-style scoring: normalisation, sclite alignment, corpus WER, STM/CTM files.

:mod:`edge_slr.metrics` re-exports the public names.
"""
