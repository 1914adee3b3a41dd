"""Self-supervised noise that imitates a recogniser's gloss errors (numpy only).

A clean train sentence becomes a noisy "hypothesis" by deleting, inserting, substituting, locally
swapping and repeating glosses. The number of errors in a sentence is drawn as
``Binomial(len, wer)``, and every error edits a different position of the clean sentence, so the
edit distance between the noisy and the clean sentence equals the number of errors drawn (a swap of
two different glosses counts as two). The corpus WER of the noise is therefore close to ``wer``.

Under the official PHOENIX scorer a repetition (``REGEN REGEN``) is merged and costs nothing; the
evaluation calibrates its noise rate against the scorer for that reason (see
``benchmarks/corrector_eval.py``).

Substitutions are drawn uniformly from the vocabulary, or, when a confusion table is given (for
example one learnt from a recogniser's real errors on train data), from the glosses the recogniser
confuses a gloss with, for a configurable share of the substitutions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from edge_slr.errors import FormatError, InputError

OPERATIONS = ("deletion", "insertion", "substitution", "swap", "repetition")


@dataclass(frozen=True)
class NoiseConfig:
    """How sentences are corrupted. Weights are relative shares of the error operations."""

    wer_min: float = 0.0  # per-sentence WER is drawn uniformly from [wer_min, wer_max]
    wer_max: float = 0.5
    clean_share: float = 0.2  # share of sentences left unaltered (meaning preservation)
    deletion: float = 0.3
    insertion: float = 0.2
    substitution: float = 0.3
    swap: float = 0.1  # local shuffling: two neighbouring glosses trade places
    repetition: float = 0.1  # a gloss is repeated (counts as an insertion)
    swap_window: int = 2  # a gloss moves at most this many places (1 = neighbours only)
    confusion_share: float = 0.7  # share of substitutions taken from the confusion table

    def __post_init__(self) -> None:
        if not 0.0 <= self.wer_min <= self.wer_max <= 1.0:
            raise InputError(
                f"noise WER range must satisfy 0 <= wer_min <= wer_max <= 1, "
                f"got wer_min={self.wer_min}, wer_max={self.wer_max}"
            )
        for name in ("clean_share", "confusion_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"noise {name} must be in [0, 1], got {value}")
        weights = self.weights()
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise InputError(
                f"noise operation weights must be >= 0 and not all zero, got "
                f"{dict(zip(OPERATIONS, weights, strict=True))}"
            )
        if self.swap_window < 1:
            raise InputError(f"noise swap_window must be >= 1, got {self.swap_window}")

    def weights(self) -> tuple[float, ...]:
        return tuple(float(getattr(self, op)) for op in OPERATIONS)

    @classmethod
    def from_dict(cls, values: Mapping[str, object]) -> NoiseConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"unknown noise option(s) {unknown}; expected some of {sorted(known)}")
        return cls(**values)  # type: ignore[arg-type]


ConfusionTable = Mapping[int, tuple[np.ndarray, np.ndarray]]  # id -> (candidate ids, probabilities)


class GlossNoise:
    """Corrupts token-id sentences; all randomness comes from the ``rng`` passed in (seeded)."""

    def __init__(
        self,
        config: NoiseConfig,
        frequencies: np.ndarray,
        confusion: ConfusionTable | None = None,
    ) -> None:
        """``frequencies[i]`` is how often token id ``i`` occurs in the train split.

        Ids with frequency 0 (padding, blank, specials, unseen glosses) are never inserted or
        substituted in; every id with a positive frequency is a candidate.
        """
        freq = np.asarray(frequencies, dtype=np.float64)
        if freq.ndim != 1 or np.any(freq < 0) or np.count_nonzero(freq) < 2:
            raise InputError(
                "noise frequencies must be a 1-D array of counts >= 0 with at least two "
                f"positive entries, got shape {freq.shape} with {np.count_nonzero(freq > 0)} positive"
            )
        self.config = config
        self.candidates = np.flatnonzero(freq > 0)
        self.insert_probs = freq[self.candidates] / freq[self.candidates].sum()
        self.confusion = dict(confusion or {})
        weights = np.asarray(config.weights())
        self.op_probs = weights / weights.sum()

    def sample_wer(self, rng: np.random.Generator) -> float:
        """A per-sentence noise rate; 0 for the configured share of clean sentences."""
        if rng.random() < self.config.clean_share:
            return 0.0
        return float(rng.uniform(self.config.wer_min, self.config.wer_max))

    def corrupt(
        self, tokens: Sequence[int], rng: np.random.Generator, wer: float | None = None
    ) -> list[int]:
        """A noisy copy of ``tokens``; ``wer`` None draws it with :meth:`sample_wer`."""
        clean = [int(t) for t in tokens]
        rate = self.sample_wer(rng) if wer is None else wer
        if not 0.0 <= rate <= 1.0:
            raise InputError(f"noise wer must be in [0, 1], got {rate}")
        if not clean or rate == 0.0:
            return clean
        budget = int(rng.binomial(len(clean), rate))
        edits = self._plan(clean, budget, rng)
        return self._apply(clean, edits, rng)

    def _plan(self, clean: list[int], budget: int, rng: np.random.Generator) -> dict[int, str]:
        """Which operation acts on which position; each position is edited at most once.

        Positions next to an edit are used last: neighbouring edits can merge (a deletion beside
        an insertion is one substitution), which would make the achieved WER fall short.
        """
        edits: dict[int, str] = {}
        free = [int(p) for p in rng.permutation(len(clean))]
        while budget > 0 and free:
            op = OPERATIONS[rng.choice(len(OPERATIONS), p=self.op_probs)]
            pos = self._take_position(free, edits)
            if op == "swap":
                partner = self._swap_partner(clean, pos, edits, rng)
                if partner is None or budget < 2:
                    op = "deletion"  # keep the error count: fall back to a one-error edit
                else:
                    free.remove(partner)
                    edits[partner] = f"swap:{pos}"
                    edits[pos] = f"swap:{partner}"
                    budget -= 2
                    continue
            edits[pos] = op
            budget -= 1
        return edits

    @staticmethod
    def _take_position(free: list[int], edits: dict[int, str]) -> int:
        for k, pos in enumerate(free):
            if pos - 1 not in edits and pos + 1 not in edits:
                return free.pop(k)
        return free.pop(0)

    def _swap_partner(
        self, clean: list[int], pos: int, edits: dict[int, str], rng: np.random.Generator
    ) -> int | None:
        window = self.config.swap_window
        options = [
            j
            for j in range(pos - window, pos + window + 1)
            if j != pos and 0 <= j < len(clean) and j not in edits and clean[j] != clean[pos]
        ]
        # A swap over a distance > 1 costs 2 edits only when the tokens in between are left alone;
        # neighbours are the common case of recogniser order errors anyway.
        options = [
            j
            for j in options
            if abs(j - pos) == 1 or all(k not in edits for k in range(min(j, pos), max(j, pos)))
        ]
        return int(rng.choice(options)) if options else None

    def _apply(
        self, clean: list[int], edits: dict[int, str], rng: np.random.Generator
    ) -> list[int]:
        out: list[int] = []
        for i, token in enumerate(clean):
            op = edits.get(i)
            if op is None:
                out.append(token)
            elif op == "deletion":
                pass
            elif op == "repetition":
                out += [token, token]
            elif op == "insertion":
                out.append(token)
                after = clean[i + 1] if i + 1 < len(clean) else None
                out.append(self._draw(rng, avoid=(token, after), source=None))
            elif op == "substitution":
                before = out[-1] if out else None
                after = clean[i + 1] if i + 1 < len(clean) else None
                out.append(self._draw(rng, avoid=(token, before, after), source=token))
            else:  # "swap:j": take the partner's gloss
                out.append(clean[int(op.split(":")[1])])
        return out

    def _draw(
        self, rng: np.random.Generator, avoid: tuple[int | None, ...], source: int | None
    ) -> int:
        """An inserted (frequency-weighted) or substituted gloss that differs from ``avoid``.

        Avoiding the neighbours keeps every edit a real error: an inserted copy of a neighbour
        would be a repetition, which the PHOENIX scorer merges away.
        """
        table = self.confusion.get(source) if source is not None else None
        for _ in range(20):
            if table is not None and rng.random() < self.config.confusion_share:
                ids, probs = table
                choice = int(ids[rng.choice(len(ids), p=probs)])
            elif source is None:
                choice = int(self.candidates[rng.choice(len(self.candidates), p=self.insert_probs)])
            else:  # substitution: uniform over the vocabulary
                choice = int(self.candidates[rng.integers(len(self.candidates))])
            if choice not in avoid:
                return choice
        return int(next(c for c in self.candidates if c not in avoid))


def load_confusion_table(
    source: str | Path | Mapping[str, Mapping[str, float]], gloss_to_id: Mapping[str, int]
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """A confusion table ``{reference gloss: {recognised gloss: count}}`` as token ids.

    ``source`` is that mapping or a JSON file holding it. Glosses outside the vocabulary and the
    diagonal (a gloss "confused" with itself) are dropped; counts become probabilities per gloss.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise FormatError(path, f"not valid JSON ({exc.msg})", exc.lineno) from exc
        if not isinstance(table, dict):
            raise FormatError(
                path, f"expected a JSON object of objects, got {type(table).__name__}"
            )
    else:
        path, table = Path("<dict>"), source
    result: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for ref, row in table.items():
        if not isinstance(row, Mapping):
            raise FormatError(path, f"entry {ref!r} must map glosses to counts, got {row!r}")
        if ref not in gloss_to_id:
            continue
        pairs = []
        for hyp, count in row.items():
            if not isinstance(count, (int, float)) or not math.isfinite(count) or count < 0:
                raise FormatError(path, f"count for {ref!r} -> {hyp!r} must be >= 0, got {count!r}")
            if hyp in gloss_to_id and hyp != ref and count > 0:
                pairs.append((gloss_to_id[hyp], float(count)))
        if pairs:
            ids = np.array([p[0] for p in pairs], dtype=np.int64)
            weights = np.array([p[1] for p in pairs])
            result[gloss_to_id[ref]] = (ids, weights / weights.sum())
    return result
