"""Weighted edit-distance alignment of a hypothesis against a reference (sclite costs).

Costs: insertion 3, deletion 3, substitution 4, match 0, as sclite and the Python scorers of the
open-source CSLR projects use them. Ties between equally cheap moves are broken in a fixed order,
substitution (or match) first, then insertion, then deletion, so the S/D/I split of an alignment
is deterministic and agrees with those scorers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge_slr.errors import InputError

CORRECT, SUBSTITUTION, DELETION, INSERTION = "C", "S", "D", "I"


@dataclass(frozen=True)
class AlignmentCosts:
    """Move costs of the alignment; the default is sclite's."""

    insertion: int = 3
    deletion: int = 3
    substitution: int = 4

    def __post_init__(self) -> None:
        for name in ("insertion", "deletion", "substitution"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise InputError(f"alignment cost {name} must be a positive int, got {value!r}")


SCLITE_COSTS = AlignmentCosts()


@dataclass(frozen=True)
class Alignment:
    """One sentence aligned: ``ops[k]`` relates ``pairs[k] = (reference gloss, hypothesis gloss)``.

    ``ops`` are "C" (correct), "S", "D" (hypothesis side None) and "I" (reference side None).
    """

    reference: tuple[str, ...]
    hypothesis: tuple[str, ...]
    ops: tuple[str, ...]
    pairs: tuple[tuple[str | None, str | None], ...]
    cost: int

    @property
    def substitutions(self) -> int:
        return self.ops.count(SUBSTITUTION)

    @property
    def deletions(self) -> int:
        return self.ops.count(DELETION)

    @property
    def insertions(self) -> int:
        return self.ops.count(INSERTION)

    @property
    def errors(self) -> int:
        return len(self.ops) - self.ops.count(CORRECT)


def align(
    reference: Sequence[str], hypothesis: Sequence[str], costs: AlignmentCosts = SCLITE_COSTS
) -> Alignment:
    """Minimum-cost alignment of ``hypothesis`` to ``reference`` with deterministic ties."""
    ref, hyp = tuple(reference), tuple(hypothesis)
    n, m = len(ref), len(hyp)
    # cost[i][j]: cheapest alignment of ref[:i] with hyp[:j]; move[i][j]: last move taken.
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    move = [[""] * (m + 1) for _ in range(n + 1)]
    for j in range(1, m + 1):
        cost[0][j], move[0][j] = j * costs.insertion, INSERTION
    for i in range(1, n + 1):
        cost[i][0], move[i][0] = i * costs.deletion, DELETION
        for j in range(1, m + 1):
            if ref[i - 1] == hyp[j - 1]:
                # A match is never worse than any other last move (triangle inequality).
                cost[i][j], move[i][j] = cost[i - 1][j - 1], CORRECT
                continue
            candidates = (
                (cost[i - 1][j - 1] + costs.substitution, SUBSTITUTION),
                (cost[i][j - 1] + costs.insertion, INSERTION),
                (cost[i - 1][j] + costs.deletion, DELETION),
            )
            # min() keeps the first of equal costs: the fixed tie order S, I, D.
            cost[i][j], move[i][j] = min(candidates, key=lambda c: c[0])
    return Alignment(ref, hyp, *_backtrace(ref, hyp, move), cost=cost[n][m])


def _backtrace(
    ref: tuple[str, ...], hyp: tuple[str, ...], move: list[list[str]]
) -> tuple[tuple[str, ...], tuple[tuple[str | None, str | None], ...]]:
    ops: list[str] = []
    pairs: list[tuple[str | None, str | None]] = []
    i, j = len(ref), len(hyp)
    while i > 0 or j > 0:
        op = move[i][j]
        ops.append(op)
        if op in (CORRECT, SUBSTITUTION):
            pairs.append((ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif op == INSERTION:
            pairs.append((None, hyp[j - 1]))
            j -= 1
        else:
            pairs.append((ref[i - 1], None))
            i -= 1
    return tuple(reversed(ops)), tuple(reversed(pairs))
