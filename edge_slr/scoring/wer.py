"""Corpus word (gloss) error rate as the PHOENIX evaluation computes it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edge_slr.errors import InputError
from edge_slr.scoring.align import SCLITE_COSTS, Alignment, AlignmentCosts, align
from edge_slr.scoring.normalize import check_corpus, check_glosses, normalize_hypothesis


@dataclass(frozen=True)
class SentenceResult:
    """One scored sentence: the raw hypothesis and its alignment (normalised hypothesis)."""

    id: str
    raw_hypothesis: tuple[str, ...]
    alignment: Alignment

    @property
    def reference(self) -> tuple[str, ...]:
        return self.alignment.reference

    @property
    def hypothesis(self) -> tuple[str, ...]:
        return self.alignment.hypothesis

    @property
    def substitutions(self) -> int:
        return self.alignment.substitutions

    @property
    def deletions(self) -> int:
        return self.alignment.deletions

    @property
    def insertions(self) -> int:
        return self.alignment.insertions

    @property
    def errors(self) -> int:
        return self.alignment.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "reference": list(self.reference),
            "hypothesis": list(self.hypothesis),
            "raw_hypothesis": list(self.raw_hypothesis),
            "ops": "".join(self.alignment.ops),
            "substitutions": self.substitutions,
            "deletions": self.deletions,
            "insertions": self.insertions,
        }


@dataclass(frozen=True)
class WERResult:
    """Corpus-level result; ``wer`` is a fraction (multiply by 100 for percent)."""

    wer: float
    substitutions: int
    deletions: int
    insertions: int
    reference_words: int
    sentences: tuple[SentenceResult, ...]
    corpus: str = "phoenix2014"

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    def summary(self) -> str:
        return (
            f"WER {100 * self.wer:.2f}% (S {self.substitutions}, D {self.deletions}, "
            f"I {self.insertions}; {self.reference_words} reference glosses, "
            f"{len(self.sentences)} sentences, {self.corpus} rules)"
        )

    def to_dict(self, per_sentence: bool = True) -> dict[str, Any]:
        report: dict[str, Any] = {
            "corpus": self.corpus,
            "wer": self.wer,
            "wer_percent": round(100 * self.wer, 4),
            "substitutions": self.substitutions,
            "deletions": self.deletions,
            "insertions": self.insertions,
            "reference_words": self.reference_words,
            "num_sentences": len(self.sentences),
        }
        if per_sentence:
            report["sentences"] = [s.to_dict() for s in self.sentences]
        return report


def score(
    hypotheses: Mapping[str, Sequence[str]],
    references: Mapping[str, Sequence[str]],
    corpus: str = "phoenix2014",
    *,
    allow_extra: bool = False,
    costs: AlignmentCosts = SCLITE_COSTS,
) -> WERResult:
    """Score hypotheses (id -> glosses) against references (id -> glosses), sentence by sentence.

    The hypothesis is normalised (:func:`normalize_hypothesis`; missing ids become ``[EMPTY]``),
    the reference is used as it is. Every reference id is scored, in the reference's order.
    A hypothesis id absent from the references is an error unless ``allow_extra`` (it usually
    means the wrong split or reference file).
    """
    check_corpus(corpus)
    if isinstance(hypotheses, str) or not isinstance(hypotheses, Mapping):
        raise InputError(f"hypotheses must map id -> glosses, got {type(hypotheses).__name__}")
    if isinstance(references, str) or not isinstance(references, Mapping):
        raise InputError(f"references must map id -> glosses, got {type(references).__name__}")
    extra = [name for name in hypotheses if name not in references]
    if extra and not allow_extra:
        raise InputError(
            f"{len(extra)} hypothesis ids are not in the references (first: {extra[0]!r}); "
            "wrong split or reference file? Pass allow_extra=True to ignore them"
        )
    sentences = []
    for name, reference in references.items():
        check_glosses(reference, f"reference {name!r}")
        given = hypotheses.get(name, ())
        check_glosses(given, f"hypothesis {name!r}")
        raw = tuple(given)
        hyp = normalize_hypothesis(raw, corpus)
        sentences.append(SentenceResult(name, raw, align(reference, hyp, costs)))
    total = sum(len(s.reference) for s in sentences)
    if total == 0:
        raise InputError("the references hold no gloss: WER is undefined over zero words")
    subs = sum(s.substitutions for s in sentences)
    dels = sum(s.deletions for s in sentences)
    ins = sum(s.insertions for s in sentences)
    return WERResult((subs + dels + ins) / total, subs, dels, ins, total, tuple(sentences), corpus)


@dataclass(frozen=True)
class ErrorBreakdown:
    """The most frequent errors, each list sorted by count (then alphabetically)."""

    substitutions: tuple[tuple[tuple[str, str], int], ...]  # ((reference, hypothesis), count)
    deletions: tuple[tuple[str, int], ...]  # (reference gloss, count)
    insertions: tuple[tuple[str, int], ...]  # (hypothesis gloss, count)

    def to_dict(self) -> dict[str, Any]:
        return {
            "substitutions": [
                {"reference": r, "hypothesis": h, "count": c} for (r, h), c in self.substitutions
            ],
            "deletions": [{"reference": g, "count": c} for g, c in self.deletions],
            "insertions": [{"hypothesis": g, "count": c} for g, c in self.insertions],
        }


def error_breakdown(result: WERResult, top: int | None = 10) -> ErrorBreakdown:
    """Count substitution pairs, deleted and inserted glosses over all sentences."""
    if top is not None and top < 0:
        raise InputError(f"top must be >= 0 or None, got {top}")
    subs: Counter[tuple[str, str]] = Counter()
    dels: Counter[str] = Counter()
    ins: Counter[str] = Counter()
    for sentence in result.sentences:
        for op, (ref, hyp) in zip(sentence.alignment.ops, sentence.alignment.pairs, strict=True):
            if op == "S" and ref is not None and hyp is not None:
                subs[(ref, hyp)] += 1
            elif op == "D" and ref is not None:
                dels[ref] += 1
            elif op == "I" and hyp is not None:
                ins[hyp] += 1

    def most_common(counter: Counter) -> tuple:
        ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
        return tuple(ranked if top is None else ranked[:top])

    return ErrorBreakdown(most_common(subs), most_common(dels), most_common(ins))
