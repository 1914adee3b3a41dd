"""Stable seeds: random generators keyed by strings, identical in every process and machine.

Python's ``hash()`` is salted per process, so it must never seed anything here; SHA-256 of the
parts (joined with a separator that cannot appear in ``str`` of an int) is used instead.
"""

from __future__ import annotations

import hashlib

import numpy as np


def stable_seed(*parts: object) -> int:
    """A 64-bit integer determined only by ``parts`` (compared by their ``str``)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def generator(*parts: object) -> np.random.Generator:
    """A numpy generator seeded by :func:`stable_seed` of ``parts``."""
    return np.random.Generator(np.random.PCG64(stable_seed(*parts)))
