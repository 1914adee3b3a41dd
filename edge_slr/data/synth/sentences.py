"""Where SignSynth's sentences come from: a real corpus, or a built-in grammar that needs none.

With a corpus (PHOENIX-2014, PHOENIX-2014-T, CSL-Daily) every sentence of the requested split
is used as it is, with its id, so synthetic train/dev/test keep the corpus's own splits and
vocabulary. Without one, :class:`BuiltinGrammar` generates weather-forecast sentences (the
domain of PHOENIX) in its own English gloss vocabulary, with sentence lengths matching the
PHOENIX-2014-T annotation (7.8 +- 3.4 glosses) and split sizes of PHOENIX-2014-T.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_slr.data.synth.seeding import generator
from edge_slr.errors import InputError
from edge_slr.paths import shared_data_dir

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
BUILTIN_SPLIT_SIZES = {"train": 7096, "dev": 519, "test": 642}  # as PHOENIX-2014-T
SENTENCE_LENGTH = (7.8, 3.4)  # PHOENIX-2014-T train annotation: glosses per sentence


@dataclass(frozen=True)
class SentenceSpec:
    """One sentence to synthesise: its id (from the corpus, or generated) and glosses."""

    id: str
    split: str
    glosses: tuple[str, ...]


_WORDS: dict[str, tuple[str, ...]] = {
    "time": (
        "TOMORROW", "TODAY", "TONIGHT", "MORNING", "EVENING", "AFTERNOON", "NIGHT", "WEEKEND",
        "NOW", "LATER", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY",
        "SUNDAY", "NEXT-WEEK",
    ),
    "region": (
        "NORTH", "SOUTH", "WEST", "EAST", "COAST", "MOUNTAIN", "VALLEY", "RIVER", "ISLAND",
        "LAKE", "CITY", "COUNTRY", "BORDER", "NORTHWEST", "SOUTHEAST", "ALPS", "SEA",
    ),
    "weather": (
        "RAIN", "SUN", "CLOUD", "SNOW", "SHOWER", "FOG", "THUNDERSTORM", "STORM", "HAIL",
        "FROST", "ICE", "DRIZZLE", "SLEET", "HEAT", "MIST", "BLIZZARD",
    ),
    "quality": (
        "STRONG", "WEAK", "HEAVY", "LIGHT", "FRIENDLY", "DRY", "WET", "CLEAR", "MILD", "COLD",
        "WARM", "HOT", "COOL", "CHANGEABLE", "SUNNY", "CLOUDY", "WINDY", "SLIPPERY",
    ),
    "verb": (
        "COME", "STAY", "MOVE", "CHANGE", "INCREASE", "DECREASE", "SPREAD", "CLEAR-UP",
        "DEVELOP", "ARRIVE", "DISAPPEAR", "CONTINUE", "BEGIN", "END", "RETURN",
    ),
    "modal": ("POSSIBLE", "EXPECT", "PROBABLY", "MAYBE", "CERTAIN", "SOMETIMES", "OFTEN"),
    "amount": ("MUCH", "LITTLE", "MORE", "LESS", "FEW", "ALL", "SOME", "VERY"),
    "number": (
        "ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "TEN",
        "ELEVEN", "TWELVE", "THIRTEEN", "FOURTEEN", "FIFTEEN", "SIXTEEN", "SEVENTEEN",
        "EIGHTEEN", "NINETEEN", "TWENTY", "THIRTY",
    ),
    "direction": ("FROM-WEST", "FROM-EAST", "FROM-NORTH", "FROM-SOUTH", "TOWARDS", "AROUND"),
    "link": ("ALSO", "BUT", "THEN", "AFTER", "BEFORE", "AGAIN", "UNTIL", "MEANWHILE"),
    "open": ("HELLO", "GOOD-EVENING", "WEATHER", "FORECAST", "NEWS", "LOOK", "DEAR", "VIEWER"),
    "close": ("GOODBYE", "NICE", "HAVE", "ENJOY", "SEE-YOU", "THANK-YOU", "DAY", "WEEK"),
    "measure": ("TEMPERATURE", "DEGREE", "MINUS", "PLUS", "MAXIMUM", "MINIMUM", "TO", "AROUND-NUM"),
    "wind": ("WIND", "GUST", "BREEZE", "CALM", "KILOMETRE", "HOUR", "SPEED"),
    "pressure": ("HIGH", "LOW", "PRESSURE", "AIR", "AREA", "ZONE", "FRONT", "WAVE"),
    "misc": (
        "SKY", "GROUND", "ROAD", "DANGER", "WARNING", "ATTENTION", "PLACE", "REGION", "PART",
        "SAME", "DIFFERENT", "WHOLE", "HALF", "FIRST", "LAST", "TIME", "RAINBOW", "MOON",
    ),
}  # fmt: skip


def _cumulative_zipf(n: int) -> np.ndarray:
    """Cumulative Zipf-like weights: the first words of a category are the most frequent."""
    w = 1.0 / (np.arange(n) + 1.5) ** 0.8
    return np.cumsum(w / w.sum())


_CUMULATIVE = {category: _cumulative_zipf(len(words)) for category, words in _WORDS.items()}


class BuiltinGrammar:
    """A small generative grammar of weather-forecast gloss sentences (no corpus needed).

    Deterministic: sentence ``i`` of a split depends only on (seed, split, i). Dev and test
    sentences never repeat a train sentence, as in a real corpus.
    """

    def __init__(self, seed: int = 0, sizes: dict[str, int] | None = None) -> None:
        self.seed = seed
        self._train: set[tuple[str, ...]] | None = None
        self.sizes = dict(BUILTIN_SPLIT_SIZES if sizes is None else sizes)
        for split in SPLITS:
            if self.sizes.get(split, 0) < 1:
                raise InputError(
                    f"builtin grammar split sizes need train/dev/test >= 1, got {sizes}"
                )

    @staticmethod
    def vocabulary_glosses() -> tuple[str, ...]:
        """Every gloss the grammar can produce, sorted."""
        return tuple(sorted({g for words in _WORDS.values() for g in words}))

    def sentences(self, split: str) -> list[SentenceSpec]:
        if split not in SPLITS:
            raise InputError(f"unknown split {split!r}; expected one of {SPLITS}")
        seen: set[tuple[str, ...]] = set()
        if split != "train":
            if self._train is None:
                self._train = {s.glosses for s in self.sentences("train")}
            seen = set(self._train)
        out = []
        for i in range(self.sizes[split]):
            attempt = 0
            while True:
                glosses = self._sentence(generator(self.seed, "grammar", split, i, attempt))
                if glosses not in seen:
                    break
                attempt += 1
            if split != "train":
                seen.add(glosses)
            out.append(SentenceSpec(f"builtin-{split}-{i:05d}", split, glosses))
        return out

    def _sentence(self, rng: np.random.Generator) -> tuple[str, ...]:
        mean, std = SENTENCE_LENGTH
        # Clauses overshoot the drawn length by about one gloss on average; aim a little lower.
        target = int(np.clip(round(rng.normal(mean - 1.0, std)), 1, 25))
        words: list[str] = []
        if rng.random() < 0.12:
            words += self._clause(rng, "opening")
        while len(words) < target:
            if words and rng.random() < 0.35:
                words.append(self._word(rng, "link"))
            kind = int(np.searchsorted(_CLAUSE_CUMULATIVE, rng.random(), side="right"))
            words += self._clause(rng, _CLAUSES[min(kind, len(_CLAUSES) - 1)])
        if rng.random() < 0.06:
            words += self._clause(rng, "closing")
        return tuple(words[: target + 1])

    def _word(self, rng: np.random.Generator, category: str) -> str:
        options = _WORDS[category]
        index = int(np.searchsorted(_CUMULATIVE[category], rng.random(), side="right"))
        return options[min(index, len(options) - 1)]

    def _maybe(self, rng: np.random.Generator, category: str, p: float) -> list[str]:
        return [self._word(rng, category)] if rng.random() < p else []

    def _clause(self, rng: np.random.Generator, kind: str) -> list[str]:
        w, m = self._word, self._maybe
        if kind == "weather":
            return (
                m(rng, "time", 0.5) + m(rng, "region", 0.6) + m(rng, "amount", 0.15)
                + [w(rng, "weather")] + m(rng, "quality", 0.45) + m(rng, "verb", 0.35)
                + m(rng, "modal", 0.25)
            )  # fmt: skip
        if kind == "temperature":
            numbers = [w(rng, "number")]
            if rng.random() < 0.5:
                numbers += ["TO", w(rng, "number")]
            return (
                ["TEMPERATURE"] + m(rng, "region", 0.6) + m(rng, "measure", 0.3)
                + numbers + (["DEGREE"] if rng.random() < 0.6 else [])
            )  # fmt: skip
        if kind == "wind":
            return (
                ["WIND"] + m(rng, "direction", 0.5) + [w(rng, "quality")] + m(rng, "region", 0.4)
                + m(rng, "wind", 0.3) + m(rng, "modal", 0.2)
            )  # fmt: skip
        if kind == "pressure":
            return (
                [w(rng, "pressure"), "PRESSURE"] + m(rng, "pressure", 0.3) + [w(rng, "verb")]
                + m(rng, "direction", 0.6) + m(rng, "region", 0.3)
            )  # fmt: skip
        if kind == "change":
            return (
                m(rng, "time", 0.6) + [w(rng, "weather"), w(rng, "link")] + m(rng, "time", 0.3)
                + [w(rng, "weather")] + m(rng, "quality", 0.3)
            )  # fmt: skip
        if kind == "misc":
            return (
                m(rng, "time", 0.4)
                + [w(rng, "misc")]
                + m(rng, "quality", 0.5)
                + m(rng, "misc", 0.4)
            )
        if kind == "opening":
            return [w(rng, "open")] + m(rng, "open", 0.5) + m(rng, "time", 0.5)
        return [w(rng, "close")] + m(rng, "close", 0.6)


_CLAUSES = ("weather", "temperature", "wind", "pressure", "change", "misc")
_CLAUSE_CUMULATIVE = np.cumsum([0.42, 0.16, 0.12, 0.08, 0.12, 0.10])


def default_corpus_root(name: str) -> Path:
    """``../shared/data/<folder>`` of a known corpus; InputError when it is not there."""
    from edge_slr.data.corpora import corpus_spec

    spec = corpus_spec(name)
    shared = shared_data_dir()
    if shared is None or spec.shared_folder is None or not (shared / spec.shared_folder).is_dir():
        raise InputError(
            f"no --root given for corpus {name!r} and ../shared/data/{spec.shared_folder} is not "
            f"present; pass the corpus folder with --root"
        )
    return shared / spec.shared_folder


def corpus_sentences(name: str, root: str | Path | None, split: str) -> list[SentenceSpec]:
    """Every sentence of ``split`` of a real corpus (ids and splits kept)."""
    from edge_slr.data.corpora import load_corpus

    root = default_corpus_root(name) if root is None else Path(root)
    samples = load_corpus(name, root, split)
    return [SentenceSpec(s.id, split, tuple(s.glosses)) for s in samples if s.glosses]


def alignment_root(name: str, root: str | Path | None) -> Path | None:
    """Where PHOENIX-2014-T alignments for durations are, or None (built-in durations then)."""
    candidates = []
    if name == "phoenix2014t" and root is not None:
        candidates.append(Path(root))
    if root is not None:
        candidates.append(Path(root).parent / "phoenix2014t")
    shared = shared_data_dir()
    if shared is not None:
        candidates.append(shared / "phoenix2014t")
    for candidate in candidates:
        if (candidate / "alignments").is_dir():
            return candidate
    return None
