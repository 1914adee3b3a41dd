"""edge_slr.data: gloss corpora, PHOENIX-2014-T alignments, the gloss vocabulary, statistics.

Everything here needs only numpy. Names load on first use (:mod:`edge_slr._lazy`), so importing
one submodule does not read the others. The vocabulary lives with the device-side decoding
(:mod:`edge_slr.decoding.vocab`), which turns a model's output ids into glosses.
"""

from edge_slr._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "alignments": (
            "GlossDuration",
            "GlossSegment",
            "gloss_durations",
            "load_alignments",
            "load_gloss_durations",
        ),
        "corpora": (
            "SPLITS",
            "CorpusSpec",
            "Sample",
            "ScoringSpec",
            "available_corpora",
            "corpus_spec",
            "load_corpus",
        ),
        "stats": ("CorpusStats", "SplitStats", "corpus_stats"),
        "edge_slr.decoding.vocab": ("BLANK", "UNK", "OOVCount", "Vocabulary"),
    },
)
