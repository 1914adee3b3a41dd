"""Train a gloss n-gram language model (interpolated modified Kneser-Ney) and write it as ARPA.

Why the estimation is computed here from counts instead of through a library: no maintained
Python package trains this model and writes ARPA with the pinned stack. NLTK's ``lm`` has only
Kneser-Ney with one fixed discount (not the modified, count-of-counts estimated discounts), no
ARPA output and per-query recursion far too slow for tuning; KenLM's trainer (``lmplz``) is a
C++ program that needs CMake and Boost, and its pip package is the query module alone. So this
module follows Chen and Goodman's interpolated modified Kneser-Ney as KenLM's ``lmplz``
estimates it, and the tests check the written file against KenLM's query module and that every
context's distribution sums to one.

The estimate, for order N over sentences padded as ``<s> w1 .. wk </s>``:

- counts: N-grams keep their raw counts; a lower-order n-gram gets its continuation count (the
  number of distinct words seen before it), except n-grams that begin with ``<s>``, which
  nothing can precede, and keep their raw counts;
- discounts per order from the counts of counts t1..t4 of those counts:
  ``Y = t1 / (t1 + 2 t2)``, ``D1 = 1 - 2Y t2/t1``, ``D2 = 2 - 3Y t3/t2``, ``D3+ = 3 - 4Y t4/t3``;
  where a corpus is too small for them (a t is 0, or a D leaves (0, k]) the fixed fallback
  0.5, 1, 1.5 is used, as ``lmplz --discount_fallback`` does;
- ``p(w | h) = (a(hw) - D(a(hw))) / a(h.) + gamma(h) p(w | h')`` with ``h'`` the context
  without its first word, ``gamma(h) = (D1 N1(h.) + D2 N2(h.) + D3+ N3+(h.)) / a(h.)``, and at
  the bottom the uniform distribution over the words, ``</s>`` and ``<unk>``.

In ARPA form each seen n-gram stores its interpolated probability and each context stores
``gamma(h)`` as its back-off weight: the back-off recursion then gives exactly the interpolated
model. ``<s>`` is never predicted (log10 probability -99, as KenLM writes it).
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_slr.decoding.lm import BOS, EOS, UNK, FusionSettings, description_path
from edge_slr.errors import InputError

logger = logging.getLogger(__name__)

FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)
BOS_LOG10 = -99.0  # <s> is only a context; KenLM writes this value for it
LM_FORMAT = "edge-slr-lm"
MAX_ORDER = 6  # the order KenLM's query module is built for by default


@dataclass(frozen=True)
class Discounts:
    """Modified Kneser-Ney discounts of one order: for counts 1, 2 and 3 or more."""

    d1: float
    d2: float
    d3: float
    fallback: bool = False

    def __post_init__(self) -> None:
        for k, value in enumerate((self.d1, self.d2, self.d3), start=1):
            if not 0.0 < value <= k:
                raise InputError(f"discount D{k} must lie in (0, {k}], got {value!r}")

    def of(self, count: int) -> float:
        return self.d1 if count == 1 else self.d2 if count == 2 else self.d3

    @classmethod
    def estimate(cls, counts: Iterable[int]) -> Discounts:
        """Chen and Goodman's estimate from the counts of counts; the fallback where it fails."""
        t = Counter(c for c in counts if c <= 4)
        t1, t2, t3, t4 = (t[k] for k in (1, 2, 3, 4))
        if min(t1, t2, t3) > 0:
            y = t1 / (t1 + 2 * t2)
            values = (1 - 2 * y * t2 / t1, 2 - 3 * y * t3 / t2, 3 - 4 * y * t4 / t3)
            if all(0.0 < v <= k for k, v in enumerate(values, start=1)):
                return cls(*values)
        logger.info(
            "counts of counts %s too few for modified Kneser-Ney discounts: fallback %s",
            (t1, t2, t3, t4),
            FALLBACK_DISCOUNTS,
        )
        return cls(*FALLBACK_DISCOUNTS, fallback=True)


@dataclass(frozen=True)
class TrainedLM:
    """Log10 probabilities and back-off weights per n-gram (word tuples), and the estimate."""

    order: int
    probs: dict[tuple[str, ...], float]
    backoffs: dict[tuple[str, ...], float]
    discounts: tuple[Discounts, ...]  # per order, unigrams first
    sentences: int
    tokens: int

    def counts(self) -> list[int]:
        return [sum(1 for g in self.probs if len(g) == n) for n in range(1, self.order + 1)]


def train_kneser_ney(sentences: Sequence[Sequence[str]], order: int = 3) -> TrainedLM:
    """An interpolated modified Kneser-Ney model of ``sentences`` (gloss sequences)."""
    if isinstance(order, bool) or not isinstance(order, int) or not 2 <= order <= MAX_ORDER:
        raise InputError(
            f"order must be an int in [2, {MAX_ORDER}] (KenLM reads bigram models and up), "
            f"got {order!r}"
        )
    reserved = {BOS, EOS, UNK}
    for i, sentence in enumerate(sentences):
        if not sentence or any(
            not isinstance(w, str) or not w or w.split() != [w] for w in sentence
        ):
            raise InputError(
                f"sentence {i} must be a non-empty sequence of glosses without spaces, "
                f"got {sentence!r}"
            )
        if reserved.intersection(sentence):
            raise InputError(f"sentence {i} holds a reserved token {sorted(reserved)}: {sentence}")
    if not sentences:
        raise InputError("no sentences to train a language model on")
    adjusted = _adjusted_counts(sentences, order)
    discounts = tuple(Discounts.estimate(adjusted[n].values()) for n in range(order))
    probs, backoffs = _interpolate(adjusted, discounts)
    tokens = sum(len(s) for s in sentences)
    return TrainedLM(order, probs, backoffs, discounts, len(sentences), tokens)


def _adjusted_counts(
    sentences: Sequence[Sequence[str]], order: int
) -> list[dict[tuple[str, ...], int]]:
    """Per order (index n-1): raw counts at the top, continuation counts below it."""
    raw: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order)]
    for sentence in sentences:
        padded = (BOS, *sentence, EOS)
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                raw[n - 1][padded[i : i + n]] += 1
    adjusted: list[dict[tuple[str, ...], int]] = [dict(raw[-1])]
    for n in range(order - 1, 0, -1):
        left = Counter(gram[1:] for gram in raw[n])  # distinct words seen before each n-gram
        adjusted.insert(0, {g: (c if g[0] == BOS else left[g]) for g, c in raw[n - 1].items()})
    adjusted[0].pop((BOS,), None)  # <s> is never predicted
    return adjusted


def _interpolate(
    adjusted: list[dict[tuple[str, ...], int]], discounts: tuple[Discounts, ...]
) -> tuple[dict[tuple[str, ...], float], dict[tuple[str, ...], float]]:
    """Interpolated probabilities (log10) of every seen n-gram, back-offs (log10) of contexts."""
    probs: dict[tuple[str, ...], float] = {}
    backoffs: dict[tuple[str, ...], float] = {}
    linear: dict[tuple[str, ...], float] = {}  # probabilities of the order below, not logs
    uniform = 1.0 / (len(adjusted[0]) + (0 if (UNK,) in adjusted[0] else 1))
    for n, counts in enumerate(adjusted, start=1):
        by_context: dict[tuple[str, ...], list[tuple[tuple[str, ...], int]]] = defaultdict(list)
        for gram, count in counts.items():
            by_context[gram[:-1]].append((gram, count))
        current: dict[tuple[str, ...], float] = {}
        for context, grams in by_context.items():
            total = sum(c for _, c in grams)
            d = discounts[n - 1]
            gamma = sum(d.of(c) for _, c in grams) / total
            for gram, count in grams:
                lower = uniform if n == 1 else linear[gram[1:]]
                current[gram] = (count - d.of(count)) / total + gamma * lower
            if n == 1:
                current[(UNK,)] = gamma * uniform
            else:
                backoffs[context] = math.log10(gamma)
        probs.update({g: math.log10(p) for g, p in current.items()})
        linear = current
    probs[(BOS,)] = BOS_LOG10
    return probs, backoffs


def write_arpa(model: TrainedLM, path: str | Path) -> Path:
    """Write ``model`` in ARPA format (sorted, so the same corpus gives the same bytes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\\data\\"]
    lines += [f"ngram {n}={c}" for n, c in enumerate(model.counts(), start=1)]
    for n in range(1, model.order + 1):
        lines += ["", f"\\{n}-grams:"]
        for gram in sorted(g for g in model.probs if len(g) == n):
            entry = f"{model.probs[gram]:.7g}\t{' '.join(gram)}"
            if gram in model.backoffs:
                entry += f"\t{model.backoffs[gram]:.7g}"
            lines.append(entry)
    lines += ["", "\\end\\", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def lm_description(model: TrainedLM, **source: Any) -> dict[str, Any]:
    """What goes into ``NAME.arpa.json`` beside the model: the estimate and where it came from."""
    return {
        "format": LM_FORMAT,
        "order": model.order,
        "smoothing": "interpolated modified Kneser-Ney",
        "ngrams": model.counts(),
        "discounts": [
            {"d1": d.d1, "d2": d.d2, "d3+": d.d3, "fallback": d.fallback} for d in model.discounts
        ],
        "sentences": model.sentences,
        "tokens": model.tokens,
        **source,
    }


def write_description(description: dict[str, Any], arpa_path: str | Path) -> Path:
    out = description_path(arpa_path)
    out.write_text(json.dumps(description, indent=1, ensure_ascii=False) + "\n", "utf-8")
    return out


def write_fusion_settings(
    arpa_path: str | Path, settings: FusionSettings, tuning: dict[str, Any]
) -> Path:
    """Store tuned weights in the LM's JSON description, where the Recognizer reads them."""
    path = description_path(arpa_path)
    description: dict[str, Any] = {"format": LM_FORMAT}
    if path.is_file():
        description = json.loads(path.read_text(encoding="utf-8"))
    description["fusion"] = {
        "lm_weight": settings.lm_weight,
        "insertion_bonus": settings.insertion_bonus,
        **tuning,
    }
    return write_description(description, arpa_path)


def train_corpus_lm(
    corpus: str, root: str | Path, order: int, out_dir: str | Path, name: str = "lm.arpa"
) -> tuple[Path, dict[str, Any]]:
    """Train on ``corpus``'s train split under ``root`` (never dev/test); write ARPA + JSON."""
    from edge_slr.data.corpora import corpus_spec, load_corpus
    from edge_slr.sidecar import file_sha256

    samples = load_corpus(corpus, root, "train")
    model = train_kneser_ney([s.glosses for s in samples], order)
    arpa = write_arpa(model, Path(out_dir) / name)
    annotation = corpus_spec(corpus).locate(root, "train")[1]
    source = {"name": annotation.name, "sha256": file_sha256(annotation)}
    description = lm_description(model, corpus=corpus, split="train", source=source)
    write_description(description, arpa)
    logger.info("%s: %d-gram LM of %d train sentences in %s", corpus, order, len(samples), arpa)
    return arpa, description
