"""Hypothesis normalisation used by the PHOENIX evaluation, gloss by gloss.

The rules follow the release's normalisation script as the open-source CSLR projects run it on a
CTM (one gloss per line). The script's multi-gloss rules (joining ``WIE AUSSEHEN``, joining
spelled letters ``A B`` -> ``A+B``, collapsing ``X X``) need two glosses on one line, so they
never act on a CTM; they are deliberately not implemented here. The STM reference is never
normalised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from edge_slr.errors import InputError

EMPTY = "[EMPTY]"

# corpus name -> whether the PHOENIX gloss rewrites apply. "plain" scores glosses as they are
# (for synthetic data); CSL-Daily is scored without rewrites too.
CORPORA: dict[str, bool] = {
    "phoenix2014": True,
    "phoenix2014t": True,
    "csl-daily": False,
    "plain": False,
}

# Applied in this order, each to every occurrence inside the gloss (sed's s,...,...,g).
_REMOVED_PREFIXES = ("loc-", "cl-", "qu-", "poss-", "lh-")
_REPLACEMENTS = (("S0NNE", "SONNE"), ("HABEN2", "HABEN"))
_REMOVED_MARKERS = ("__EMOTION__", "__PU__", "__LEFTHAND__")
_TWO_CAPITALS_RAUM = re.compile(r"([A-Z][A-Z])RAUM")
# A gloss still containing one of these after the rewrites is dropped.
_DROP_IF_CONTAINS = ("__LEFTHAND__", "__EPENTHESIS__", "__EMOTION__")


def check_corpus(corpus: str) -> str:
    """Return ``corpus`` when it names a known scoring rule set, else raise InputError."""
    if corpus not in CORPORA:
        raise InputError(
            f"unknown corpus {corpus!r} for scoring; expected one of {sorted(CORPORA)}"
        )
    return corpus


def normalize_gloss(gloss: str) -> str | None:
    """Apply the PHOENIX per-gloss rewrites; None when the gloss is dropped."""
    for prefix in _REMOVED_PREFIXES:
        gloss = gloss.replace(prefix, "")
    for old, new in _REPLACEMENTS:
        gloss = gloss.replace(old, new)
    for marker in _REMOVED_MARKERS:
        gloss = gloss.replace(marker, "")
    # The script appends to a gloss at the end of a CTM line, i.e. any gloss ending in ZEIGEN
    # (ANZEIGEN included).
    if gloss.endswith("ZEIGEN"):
        gloss += "-BILDSCHIRM"
    gloss = _TWO_CAPITALS_RAUM.sub(r"\1", gloss)
    gloss = gloss.replace("-PLUSPLUS", "")
    if not gloss or any(marker in gloss for marker in _DROP_IF_CONTAINS):
        return None
    return gloss


def merge_repetitions(glosses: Iterable[str]) -> list[str]:
    """Merge immediate repetitions: ``REGEN REGEN SONNE`` -> ``REGEN SONNE``."""
    merged: list[str] = []
    for gloss in glosses:
        if not merged or merged[-1] != gloss:
            merged.append(gloss)
    return merged


def check_glosses(glosses: Sequence[str], what: str) -> None:
    """Reject a bare string (it would be scored letter by letter) and glosses with whitespace."""
    if isinstance(glosses, str):
        raise InputError(
            f"{what}: expected a sequence of glosses, got the string {glosses[:60]!r}; "
            "split it into glosses first (e.g. text.split())"
        )
    for gloss in glosses:
        if not isinstance(gloss, str):
            raise InputError(f"{what}: glosses must be str, got {type(gloss).__name__} {gloss!r}")
        if gloss != gloss.strip() or any(ch.isspace() for ch in gloss):
            raise InputError(f"{what}: gloss {gloss!r} contains whitespace; expected one gloss")


def normalize_hypothesis(glosses: Sequence[str], corpus: str = "phoenix2014") -> list[str]:
    """The hypothesis exactly as the scorer compares it to the reference.

    PHOENIX corpora: per-gloss rewrites (:func:`normalize_gloss`), dropped glosses removed.
    Every corpus: empty glosses removed, ``[EMPTY]`` for an empty hypothesis, then immediate
    repetitions merged.
    """
    check_corpus(corpus)
    check_glosses(glosses, "hypothesis")
    if CORPORA[corpus]:
        kept = [g for g in (normalize_gloss(gloss) for gloss in glosses) if g is not None]
    else:
        kept = [gloss for gloss in glosses if gloss]
    return merge_repetitions(kept) if kept else [EMPTY]
