"""Token ids of the corrector: the recogniser's gloss ids plus a few specials appended.

A gloss keeps the id it has in the recogniser's :class:`~edge_slr.data.vocab.Vocabulary`, so a
recognised id sequence is already corrector input. Id 0 (the CTC blank, which never survives CTC
decoding) doubles as padding. ``<bos>`` and ``<eos>`` follow the recogniser's ids, then ``<unk>``
when the recogniser vocabulary has none of its own.

Out-of-vocabulary glosses (a gloss of dev/test never seen in train) enter as ``<unk>``; the model
learns to copy ``<unk>`` through, and :meth:`CorrectorVocabulary.decode` puts the original glosses
back in their order, so an unknown gloss is never lost by the correction.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edge_slr.data.vocab import BLANK, UNK, Vocabulary
from edge_slr.errors import InputError

BOS = "<bos>"
EOS = "<eos>"


@dataclass(frozen=True)
class CorrectorVocabulary:
    """The recogniser vocabulary ``base`` with ``<bos>``, ``<eos>`` (and ``<unk>``) appended."""

    base: Vocabulary

    @functools.cached_property
    def tokens(self) -> tuple[str, ...]:  # cached: decode reads it for every sentence
        extra = (BOS, EOS) if self.base.unk_id is not None else (BOS, EOS, UNK)
        return self.base.glosses + extra

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def pad_id(self) -> int:
        return self.base.blank_id

    @property
    def bos_id(self) -> int:
        return len(self.base)

    @property
    def eos_id(self) -> int:
        return len(self.base) + 1

    @property
    def unk_id(self) -> int:
        unk = self.base.unk_id
        return len(self.base) + 2 if unk is None else unk

    @property
    def gloss_ids(self) -> range:
        """Ids of real glosses (what the corrector may write besides ``<unk>`` and ``<eos>``)."""
        first = 1 if self.base.unk_id is None else 2
        return range(first, len(self.base))

    def encode(self, glosses: Sequence[str]) -> tuple[list[int], list[str]]:
        """(ids, the out-of-vocabulary glosses that became ``<unk>``, in order)."""
        if isinstance(glosses, str):
            raise InputError(f"encode takes a sequence of glosses, got the string {glosses[:40]!r}")
        ids, unknown = [], []
        for gloss in glosses:
            if not isinstance(gloss, str) or not gloss or gloss != "".join(gloss.split()):
                raise InputError(
                    f"a gloss must be a non-empty string without spaces, got {gloss!r}"
                )
            if gloss in (BLANK, BOS, EOS) or gloss not in self.base or gloss == UNK:
                ids.append(self.unk_id)
                unknown.append(gloss)
            else:
                ids.append(self.base.index(gloss))
        return ids, unknown

    def decode(self, ids: Iterable[int], unknown: Sequence[str] = ()) -> list[str]:
        """Glosses of ``ids`` up to the first ``<eos>``; padding and ``<bos>`` are skipped.

        Each ``<unk>`` takes the next gloss of ``unknown`` (the input's OOV glosses); an
        ``<unk>`` with none left is dropped rather than written out as a made-up gloss.
        """
        tokens, pending, out = self.tokens, list(unknown), []
        for raw in ids:
            i = int(raw)
            if i == self.eos_id:
                break
            if not 0 <= i < len(tokens):
                raise InputError(
                    f"token id {i} is outside the corrector vocabulary (0..{len(self) - 1})"
                )
            if i in (self.pad_id, self.bos_id):
                continue
            if i == self.unk_id:
                if pending:
                    out.append(pending.pop(0))
                continue
            out.append(tokens[i])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base.to_dict(), "tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CorrectorVocabulary:
        if not isinstance(data, Mapping) or "base" not in data:
            raise InputError(
                f"not a corrector vocabulary: expected a mapping with 'base', got {data!r:.80}"
            )
        vocab = cls(Vocabulary.from_dict(data["base"]))
        stored = data.get("tokens")
        if stored is not None and tuple(stored) != vocab.tokens:
            raise InputError(
                "corrector vocabulary: stored 'tokens' disagree with its 'base' vocabulary"
            )
        return vocab

    @classmethod
    def from_sentences(cls, sentences: Iterable[Sequence[str]]) -> CorrectorVocabulary:
        """The vocabulary of train sentences, with ``<unk>`` (OOV policy "unk")."""
        return cls(Vocabulary.from_sentences(sentences, oov="unk"))
