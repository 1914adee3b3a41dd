"""edge_slr.data: gloss corpora, PHOENIX-2014-T alignments, the gloss vocabulary, statistics.

Everything here needs only numpy.
"""

from edge_slr.data.alignments import (
    GlossDuration,
    GlossSegment,
    gloss_durations,
    load_alignments,
    load_gloss_durations,
)
from edge_slr.data.corpora import (
    SPLITS,
    CorpusSpec,
    Sample,
    ScoringSpec,
    available_corpora,
    corpus_spec,
    load_corpus,
)
from edge_slr.data.stats import CorpusStats, SplitStats, corpus_stats
from edge_slr.data.vocab import BLANK, UNK, OOVCount, Vocabulary

__all__ = [
    "BLANK",
    "SPLITS",
    "UNK",
    "CorpusSpec",
    "CorpusStats",
    "GlossDuration",
    "GlossSegment",
    "OOVCount",
    "Sample",
    "ScoringSpec",
    "SplitStats",
    "Vocabulary",
    "available_corpora",
    "corpus_spec",
    "corpus_stats",
    "gloss_durations",
    "load_alignments",
    "load_corpus",
    "load_gloss_durations",
]
