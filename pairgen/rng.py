"""Per-sample random generators: derived from the run seed and the sample's identity only,
so a sample's bytes do not depend on worker count, executor or the order of work."""
from __future__ import annotations

import hashlib

import numpy as np


def identity_words(identity: str) -> list[int]:
    """A stable 128-bit digest of the identity as four uint32 words (Python's built-in string hashing is salted per process)."""
    digest = hashlib.blake2b(identity.encode("utf-8"), digest_size=16).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def sample_rng(seed: int, identity: str) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), *identity_words(identity)])))
