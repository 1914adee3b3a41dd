"""The gloss vocabularies: the recogniser's gloss <-> id mapping saved next to every model, and
the corrector's, which appends its few special tokens to it.

Ids are stable: index 0 is the CTC blank ``<blank>``; when the OOV policy is ``"unk"``, index 1 is
``<unk>``; then every gloss of the training sentences sorted by its string (Python's code-point
order). The same corpus therefore always gives the same ids, whatever order its files list the
sentences in. The ``sha256`` fingerprint covers exactly this id -> gloss list, so a model can
check that the vocabulary it is given is the one it was trained with.

OOV policy (what ``encode`` does with a gloss not in the vocabulary):
``"error"`` raises InputError naming it, ``"unk"`` maps it to ``<unk>``, ``"drop"`` removes it.

:class:`CorrectorVocabulary`: a gloss keeps its recogniser id, so a recognised id sequence is
already corrector input. Id 0 (the CTC blank, which never survives CTC decoding) doubles as
padding; ``<bos>`` and ``<eos>`` follow the recogniser's ids, then ``<unk>`` when the recogniser
vocabulary has none of its own. Out-of-vocabulary glosses (a gloss of dev/test never seen in
train) enter as ``<unk>``; the model learns to copy ``<unk>`` through, and
:meth:`CorrectorVocabulary.decode` puts the original glosses back in their order, so an unknown
gloss is never lost by the correction.

This lives with decoding because the device turns ids into glosses with it; ``edge_slr.data``
re-exports the recogniser's vocabulary for the training side.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edge_slr.errors import FormatError, InputError

BLANK = "<blank>"
UNK = "<unk>"
BOS = "<bos>"  # the corrector's specials
EOS = "<eos>"
FORMAT_NAME = "edge-slr-vocabulary"
FORMAT_VERSION = 1

OOVPolicy = Literal["error", "unk", "drop"]
OOV_POLICIES: tuple[str, ...] = ("error", "unk", "drop")


@dataclass(frozen=True)
class OOVCount:
    """Out-of-vocabulary glosses seen while encoding: ``types`` maps each to its count."""

    types: Mapping[str, int]

    @property
    def num_types(self) -> int:
        return len(self.types)

    @property
    def num_tokens(self) -> int:
        return sum(self.types.values())


class _Malformed(Exception):
    """A vocabulary description that cannot be used; turned into InputError or FormatError."""


@dataclass(frozen=True)
class Vocabulary:
    """Gloss vocabulary; ``glosses[i]`` is the gloss of id ``i`` and ``glosses[0]`` is the blank."""

    glosses: tuple[str, ...]
    oov: OOVPolicy = "error"
    _index: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        # Plain str only: numpy.str_ entries (e.g. from rng.choice) would not survive
        # torch.load(weights_only=True) of a checkpoint that stores this vocabulary.
        glosses = tuple(str(g) if isinstance(g, str) else g for g in self.glosses)
        try:
            _validate(glosses, self.oov)
        except _Malformed as err:
            raise InputError(str(err)) from None
        object.__setattr__(self, "glosses", glosses)
        object.__setattr__(self, "_index", {g: i for i, g in enumerate(self.glosses)})

    @classmethod
    def from_sentences(
        cls, sentences: Iterable[Sequence[str]], *, oov: OOVPolicy = "error"
    ) -> Vocabulary:
        """Vocabulary of every gloss in ``sentences`` (a train split), in sorted order."""
        seen: set[str] = set()
        for sentence in sentences:
            if isinstance(sentence, str):
                raise InputError(
                    f"sentences must be sequences of glosses, got the string {sentence[:40]!r}"
                )
            seen.update(sentence)
        specials = [BLANK, UNK] if oov == "unk" else [BLANK]
        clash = seen & {BLANK, UNK}
        if clash:
            raise InputError(f"the sentences use the reserved tokens {sorted(clash)}")
        return cls(tuple(specials + sorted(seen)), oov)

    # -- lookup -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.glosses)

    def __contains__(self, gloss: object) -> bool:
        return gloss in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self.glosses)

    @property
    def blank_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int | None:
        return self._index.get(UNK)

    def index(self, gloss: str) -> int:
        """Id of ``gloss``; InputError when it is not in the vocabulary (no OOV policy here)."""
        try:
            return self._index[gloss]
        except KeyError:
            raise InputError(
                f"gloss {gloss!r} is not in the vocabulary ({len(self)} entries)"
            ) from None

    def with_oov(self, oov: OOVPolicy) -> Vocabulary:
        """The same ids with another OOV policy (``"unk"`` needs an ``<unk>`` entry)."""
        return Vocabulary(self.glosses, oov)

    # -- encoding ---------------------------------------------------------------------------
    def encode(self, glosses: Sequence[str], *, oov: OOVPolicy | None = None) -> list[int]:
        """Ids of ``glosses``; OOV glosses follow ``oov`` (default: the vocabulary's policy)."""
        return self._encode(glosses, self._policy(oov), Counter())

    def encode_many(
        self, sentences: Iterable[Sequence[str]], *, oov: OOVPolicy | None = None
    ) -> tuple[list[list[int]], OOVCount]:
        """Encode several sentences and count the OOV glosses met (none with ``"error"``)."""
        policy, counter = self._policy(oov), Counter[str]()
        encoded = [self._encode(sentence, policy, counter) for sentence in sentences]
        return encoded, OOVCount(dict(counter))

    def count_oov(self, sentences: Iterable[Sequence[str]]) -> OOVCount:
        """OOV glosses of ``sentences`` relative to this vocabulary, with their counts."""
        counter = Counter(g for s in sentences for g in s if g not in self._index)
        return OOVCount(dict(counter))

    def _policy(self, oov: OOVPolicy | None) -> OOVPolicy:
        policy = self.oov if oov is None else oov
        if policy not in OOV_POLICIES:
            raise InputError(f"unknown OOV policy {policy!r}; expected one of {OOV_POLICIES}")
        if policy == "unk" and UNK not in self._index:
            raise InputError(f"OOV policy 'unk' needs an {UNK!r} entry, this vocabulary has none")
        return policy

    def _encode(self, glosses: Sequence[str], policy: str, oov_counter: Counter[str]) -> list[int]:
        if isinstance(glosses, str):
            raise InputError(f"encode takes a sequence of glosses, got the string {glosses[:40]!r}")
        ids = []
        for gloss in glosses:
            i = self._index.get(gloss)
            if i is None or i == 0:
                if gloss == BLANK:
                    raise InputError(f"{BLANK!r} is the CTC blank and cannot be encoded")
                if policy == "error":
                    raise InputError(
                        f"gloss {gloss!r} is not in the vocabulary ({len(self)} entries; "
                        "OOV policy 'error': use oov='unk' or 'drop' to accept it)"
                    )
                oov_counter[gloss] += 1
                if policy == "drop":
                    continue
                i = self._index[UNK]
            ids.append(i)
        return ids

    def decode(
        self, ids: Iterable[int], *, keep_blank: bool = False, keep_unk: bool = True
    ) -> list[str]:
        """Glosses of ``ids``. Blanks are dropped unless ``keep_blank``; ``<unk>`` is kept as the
        string ``"<unk>"`` unless ``keep_unk`` is False. No CTC repeat merging happens here."""
        glosses = []
        for raw in ids:
            try:
                i = int(raw)
            except (TypeError, ValueError):
                raise InputError(f"ids must be integers, got {raw!r}") from None
            if not 0 <= i < len(self.glosses):
                raise InputError(f"id {i} is outside the vocabulary (0..{len(self) - 1})")
            if (i == 0 and not keep_blank) or (i == self.unk_id and not keep_unk):
                continue
            glosses.append(self.glosses[i])
        return glosses

    # -- identity and files -----------------------------------------------------------------
    @property
    def sha256(self) -> str:
        """Hex digest of the id -> gloss list (the OOV policy does not change ids, so is left out)."""
        canonical = json.dumps(list(self.glosses), ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "blank": BLANK,
            "oov": self.oov,
            "size": len(self),
            "sha256": self.sha256,
            "glosses": list(self.glosses),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vocabulary:
        try:
            return _parse(data)
        except _Malformed as err:
            raise InputError(f"not a valid vocabulary: {err}") from None

    def save(self, path: str | Path) -> Path:
        """Write the vocabulary as UTF-8 JSON (atomically: a temporary file then a rename)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n", "utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """Read a file written by :meth:`save`; FormatError naming the file when it is malformed."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FormatError(path, "vocabulary file does not exist") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise FormatError(path, f"not a JSON vocabulary file ({err})") from None
        try:
            return _parse(data)
        except _Malformed as err:
            raise FormatError(path, str(err)) from None


def _validate(glosses: tuple[Any, ...], oov: Any) -> None:
    if oov not in OOV_POLICIES:
        raise _Malformed(f"unknown OOV policy {oov!r}; expected one of {OOV_POLICIES}")
    if not glosses or glosses[0] != BLANK:
        first = glosses[0] if glosses else None
        raise _Malformed(f"index 0 must be the blank {BLANK!r}, got {first!r}")
    for i, gloss in enumerate(glosses):
        if not isinstance(gloss, str) or not gloss or gloss != "".join(gloss.split()):
            raise _Malformed(f"entry {i} must be a non-empty string without spaces, got {gloss!r}")
    counts = Counter(glosses)
    duplicates = sorted(g for g, c in counts.items() if c > 1)
    if duplicates:
        raise _Malformed(f"duplicate entries {duplicates[:10]}")
    if oov == "unk" and UNK not in counts:
        raise _Malformed(f"OOV policy 'unk' needs an {UNK!r} entry")


def _parse(data: Any) -> Vocabulary:
    if not isinstance(data, Mapping):
        raise _Malformed(f"expected a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT_NAME:
        raise _Malformed(f"'format' must be {FORMAT_NAME!r}, got {data.get('format')!r}")
    if data.get("version") != FORMAT_VERSION:
        raise _Malformed(
            f"unsupported version {data.get('version')!r}; this edge-slr reads {FORMAT_VERSION}"
        )
    glosses = data.get("glosses")
    if not isinstance(glosses, list):
        raise _Malformed(f"'glosses' must be a list, got {type(glosses).__name__}")
    oov = data.get("oov", "error")
    _validate(tuple(glosses), oov)
    vocab = Vocabulary(tuple(glosses), oov)
    if data.get("size", len(vocab)) != len(vocab):
        raise _Malformed(f"'size' says {data['size']!r} but {len(vocab)} glosses are listed")
    stored = data.get("sha256")
    if stored is not None and stored != vocab.sha256:
        raise _Malformed(f"sha256 {stored!r} does not match the glosses ({vocab.sha256!r})")
    return vocab


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
