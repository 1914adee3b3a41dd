"""Back-off n-gram language models over glosses, read from ARPA files; pure Python querying.

The ARPA format (the one SRILM, KenLM and IRSTLM read and write) lists, per order, each n-gram
with its log10 probability and, where it is the context of a longer n-gram, its log10 back-off
weight. Scoring a word ``w`` after a context ``h`` is the standard back-off recursion:
``p(w | h) = p_arpa(h w)`` when ``h w`` is listed, else ``bow(h) * p(w | h[1:])``. An
interpolated model (such as the modified Kneser-Ney ones ``edge-slr train lm`` writes) is stored
in the same form, so the recursion gives its exact interpolated probabilities.

:class:`NgramLM` holds the model in natural-log units (the CTC decoder's units);
:meth:`NgramLM.scorer` adapts it to the decoder's token ids (:class:`GlossLMScorer`, the
``lm`` argument of :func:`edge_slr.decoding.beam_search`). Words the model has never seen score
as ``<unk>``; a file without ``<unk>`` gives them log10 probability -100, as KenLM does.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from edge_slr.errors import FormatError, InputError

logger = logging.getLogger(__name__)

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
LN10 = math.log(10.0)
# What KenLM substitutes for the log10 probability of <unk> when an ARPA file has none.
MISSING_UNK_LOG10 = -100.0
_COUNT_LINE = re.compile(r"ngram\s+(\d+)\s*=\s*(\d+)$")
_SECTION_LINE = re.compile(r"\\(\d+)-grams:$")


@dataclass(frozen=True)
class NgramLM:
    """A back-off n-gram model: ``grams`` maps word-id tuples to (ln prob, ln back-off weight)."""

    order: int
    words: tuple[str, ...]
    grams: Mapping[tuple[int, ...], tuple[float, float]] = field(repr=False)
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.order, bool) or not isinstance(self.order, int) or self.order < 1:
            raise InputError(f"order must be an int >= 1, got {self.order!r}")
        index = {word: i for i, word in enumerate(self.words)}
        if len(index) != len(self.words):
            raise InputError("words must be unique")
        missing = [w for w in (BOS, EOS) if w not in index]
        if missing:
            raise InputError(f"the vocabulary must hold {BOS} and {EOS}; missing {missing}")
        for i in range(len(self.words)):
            if (i,) not in self.grams:
                raise InputError(f"word {self.words[i]!r} has no unigram entry")
        object.__setattr__(self, "_index", index)
        if UNK not in index:
            logger.warning(
                "the language model has no %s: unknown words get log10 probability %s",
                UNK,
                MISSING_UNK_LOG10,
            )

    @classmethod
    def load(cls, path: str | Path) -> NgramLM:
        """Read an ARPA file (see :func:`read_arpa`)."""
        return read_arpa(path)

    def word_id(self, word: str) -> int | None:
        """The model's id of ``word``; None when the model does not know it."""
        return self._index.get(word)

    def log_prob(self, context: Sequence[str], word: str) -> float:
        """ln p(word | context); ``context`` is the words before it, oldest first."""
        ids = tuple(self._id_or_unk(w) for w in context[max(len(context) - self.order + 1, 0) :])
        return self.id_log_prob(ids, self._id_or_unk(word))

    def sentence_log_prob(self, words: Sequence[str], bos: bool = True, eos: bool = True) -> float:
        """ln p(words), scored after ``<s>`` and up to ``</s>`` when ``bos`` / ``eos``."""
        context: list[str] = [BOS] if bos else []
        total = 0.0
        for word in [*words, EOS] if eos else words:
            total += self.log_prob(context, word)
            context.append(word)
        return total

    def id_log_prob(self, context: tuple[int | None, ...], word: int | None) -> float:
        """ln p(word | context) on word ids (``None``: a word the model does not know, which no
        n-gram holds: the history is cut there)."""
        if word is None:
            return MISSING_UNK_LOG10 * LN10
        keep = self.order - 1
        recent = context[len(context) - keep :] if len(context) > keep else context
        if None in recent:
            recent = recent[len(recent) - recent[::-1].index(None) :]
        known = cast(tuple[int, ...], recent)
        backoff = 0.0
        for start in range(len(known) + 1):
            entry = self.grams.get(known[start:] + (word,))
            if entry is not None:
                return backoff + entry[0]
            history = self.grams.get(known[start:])
            if history is not None:
                backoff += history[1]
        raise AssertionError("every word has a unigram entry")  # checked on construction

    def scorer(self, labels: Sequence[str | None], blank: int = 0) -> GlossLMScorer:
        """The decoder hook for a model whose token ``i`` is the gloss ``labels[i]``."""
        return GlossLMScorer(self, labels, blank)

    def _id_or_unk(self, word: str) -> int | None:
        found = self._index.get(word)
        return found if found is not None else self._index.get(UNK)


class GlossLMScorer:
    """An :class:`NgramLM` as the ``lm`` of :func:`edge_slr.decoding.beam_search`.

    Called as ``scorer(prefix_token_ids, token_id)`` it returns ln p(gloss | previous glosses,
    after ``<s>``); :meth:`final` scores ``</s>`` after a whole labelling. Scores are at most 0
    (:attr:`max_log_prob`), which lets the search skip prefixes that cannot enter the beam.
    Results are cached per (context, token): a search asks about the same few contexts often.
    """

    max_log_prob = 0.0

    def __init__(self, lm: NgramLM, labels: Sequence[str | None], blank: int = 0) -> None:
        if not 0 <= blank < len(labels):
            raise InputError(f"blank must index labels (0..{len(labels) - 1}), got {blank!r}")
        unk = lm.word_id(UNK)
        self._lm = lm
        self._ids: list[int | None] = [
            unk if label is None else lm._id_or_unk(label) for label in labels
        ]
        self._ids[blank] = None
        self._bos = lm.word_id(BOS)
        self._eos = lm.word_id(EOS)
        self._cache: dict[tuple[tuple[int, ...], int], float] = {}
        self.context_size = lm.order - 1  # the search hands over only the last n - 1 tokens

    def __call__(self, prefix: tuple[int, ...], token: int) -> float:
        return self._score(prefix, self._ids[token], token)

    def final(self, prefix: tuple[int, ...]) -> float:
        """ln p(</s> | the labelling ``prefix``)."""
        return self._score(prefix, self._eos, -1)

    def _score(self, prefix: tuple[int, ...], word: int | None, key: int) -> float:
        # keyed by the decoder's own token ids: a hit (most calls) maps nothing
        keep = self._lm.order - 1
        recent = prefix[len(prefix) - keep :] if len(prefix) > keep else prefix
        cached = self._cache.get((recent, key))
        if cached is None:
            context = tuple(self._ids[t] for t in recent)
            if len(prefix) < keep:  # the sentence start is part of the context
                context = (self._bos, *context)
            cached = self._lm.id_log_prob(context, word)
            self._cache[(recent, key)] = cached
        return cached


# -- ARPA reading ---------------------------------------------------------------------------


def read_arpa(path: str | Path) -> NgramLM:
    """Parse an ARPA file; FormatError names the line and what was expected there."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise FormatError(path, "no such ARPA language-model file") from None
    except UnicodeDecodeError as err:
        raise FormatError(path, f"not UTF-8 text ({err}); expected an ARPA file") from None
    reader = _ArpaReader(path, lines)
    counts = reader.header()
    words: dict[str, int] = {}
    grams: dict[tuple[int, ...], tuple[float, float]] = {}
    for n, count in enumerate(counts, start=1):
        reader.section(n)
        for number, fields in reader.entries(n, count):
            _add_entry(path, number, n, fields, words, grams)
    reader.end()
    try:
        return NgramLM(len(counts), tuple(words), grams)
    except InputError as err:
        raise FormatError(path, str(err)) from None


class _ArpaReader:
    """Walks the lines of an ARPA file in the order the format prescribes."""

    def __init__(self, path: Path, lines: list[str]) -> None:
        self.path, self.lines, self.at = path, lines, 0

    def _next(self, expected: str) -> tuple[int, str]:
        """(1-based line number, stripped text) of the next non-blank line."""
        while self.at < len(self.lines):
            self.at += 1
            text = self.lines[self.at - 1].strip()
            if text:
                return self.at, text
        raise FormatError(
            self.path,
            f"the file ends after line {len(self.lines)}; expected {expected} (truncated?)",
        )

    def header(self) -> list[int]:
        while True:  # text before \data\ is a comment in the format
            number, text = self._next("the \\data\\ header of an ARPA file")
            if text == "\\data\\":
                break
        counts: list[int] = []
        while True:
            number, text = self._next("'ngram N=COUNT' lines and the \\1-grams: section")
            if text.startswith("\\"):
                self.at = number - 1  # the first section: read it again in section()
                break
            match = _COUNT_LINE.match(text)
            if match is None or int(match[1]) != len(counts) + 1:
                raise FormatError(
                    self.path, f"expected 'ngram {len(counts) + 1}=COUNT', got {text!r}", number
                )
            counts.append(int(match[2]))
        if not counts:
            raise FormatError(self.path, "no 'ngram N=COUNT' line after \\data\\", self.at)
        return counts

    def section(self, n: int) -> None:
        number, text = self._next(f"the \\{n}-grams: section")
        match = _SECTION_LINE.match(text)
        if match is None or int(match[1]) != n:
            raise FormatError(self.path, f"expected '\\{n}-grams:', got {text!r}", number)

    def entries(self, n: int, count: int):  # type: ignore[no-untyped-def]
        for i in range(count):
            number, text = self._next(f"{count} {n}-gram entries (got {i})")
            if text.startswith("\\"):
                raise FormatError(
                    self.path,
                    f"the \\{n}-grams: section has {i} entries, the header announced {count}",
                    number,
                )
            yield number, text.split()

    def end(self) -> None:
        number, text = self._next("\\end\\")
        if text != "\\end\\":
            raise FormatError(
                self.path, f"expected \\end\\ after the last section, got {text!r}", number
            )


def _add_entry(
    path: Path,
    number: int,
    n: int,
    fields: list[str],
    words: dict[str, int],
    grams: dict[tuple[int, ...], tuple[float, float]],
) -> None:
    if len(fields) not in (n + 1, n + 2):
        raise FormatError(
            path,
            f"a {n}-gram entry needs 'log10-prob' and {n} word(s) and an optional back-off, "
            f"got {len(fields)} fields",
            number,
        )
    try:
        values = [float(fields[0])] + ([float(fields[-1])] if len(fields) == n + 2 else [0.0])
    except ValueError:
        raise FormatError(
            path, f"expected numbers for the probability and back-off, got {fields!r}", number
        ) from None
    if not all(math.isfinite(v) for v in values) or values[0] > 0:
        raise FormatError(
            path, f"expected a finite log10 probability <= 0 and back-off, got {fields!r}", number
        )
    if n == 1:
        if fields[1] in words:
            raise FormatError(path, f"unigram {fields[1]!r} listed twice", number)
        words[fields[1]] = len(words)
    try:
        key = tuple(words[w] for w in fields[1 : n + 1])
    except KeyError as err:
        raise FormatError(path, f"word {err.args[0]!r} is not among the unigrams", number) from None
    if key in grams:
        raise FormatError(path, f"{n}-gram {' '.join(fields[1 : n + 1])!r} listed twice", number)
    grams[key] = (values[0] * LN10, values[1] * LN10)


# -- fusion settings ------------------------------------------------------------------------

LM_FILE = "lm.arpa"  # the language model of a model folder, with its LM_FILE.json beside it


@dataclass(frozen=True)
class FusionSettings:
    """Shallow-fusion weights: rank = ln P_ctc + ``lm_weight`` ln P_lm + ``insertion_bonus`` n."""

    lm_weight: float
    insertion_bonus: float

    def __post_init__(self) -> None:
        weight, bonus = self.lm_weight, self.insertion_bonus
        if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
            raise InputError(f"lm_weight must be a finite number >= 0, got {weight!r}")
        if not (isinstance(bonus, (int, float)) and math.isfinite(bonus)):
            raise InputError(f"insertion_bonus must be a finite number, got {bonus!r}")


def description_path(arpa_path: str | Path) -> Path:
    """``NAME.arpa.json``: how the LM was trained and the fusion weights tuned for it."""
    path = Path(arpa_path)
    return path.with_name(path.name + ".json")


def read_fusion_settings(arpa_path: str | Path) -> FusionSettings | None:
    """The tuned weights stored beside an ARPA file (``fusion`` in its JSON); None if untuned."""
    import json

    path = description_path(arpa_path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise FormatError(path, f"not a JSON description of a language model ({err})") from None
    fusion = data.get("fusion") if isinstance(data, dict) else None
    if fusion is None:
        return None
    try:
        return FusionSettings(float(fusion["lm_weight"]), float(fusion["insertion_bonus"]))
    except (KeyError, TypeError, ValueError, InputError) as err:
        raise FormatError(
            path, f"'fusion' must hold numbers lm_weight >= 0 and insertion_bonus, got {fusion!r}"
        ) from err


@dataclass(frozen=True)
class FusedLM:
    """A language model with the weights to fuse it into the CTC beam search."""

    lm: NgramLM
    settings: FusionSettings

    def beam_options(self, labels: Sequence[str | None], blank: int = 0) -> dict[str, Any]:
        """Keyword arguments of :func:`edge_slr.decoding.beam_search` for a model's labels."""
        weight = self.settings.lm_weight
        return {
            "lm": self.lm.scorer(labels, blank) if weight > 0 else None,
            "lm_weight": weight,
            "insertion_bonus": self.settings.insertion_bonus,
        }


def load_fused_lm(model_dir: str | Path) -> FusedLM | None:
    """The model folder's ``lm.arpa`` with its tuned weights; None without a tuned LM there."""
    arpa = Path(model_dir) / LM_FILE
    if not arpa.is_file():
        return None
    settings = read_fusion_settings(arpa)
    if settings is None:
        logger.warning("%s has no tuned fusion weights (edge-slr evaluate --tune-lm): unused", arpa)
        return None
    return FusedLM(read_arpa(arpa), settings)
