"""Deterministic random generators keyed by (run seed, island, generation, purpose, ...).

Every random decision of a search draws from `rng_for(seed, *key)`, so the same decision gets the
same stream in every process and after every resume. The key is hashed with sha256, never with
Python's `hash()` (salted per process for strings).
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any


def stream_seed(seed: int, *key: Any) -> int:
    """A 64-bit integer derived from (seed, *key); key parts must be JSON-representable."""
    text = json.dumps([seed, *key], separators=(",", ":"), sort_keys=True, default=_reject)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def rng_for(seed: int, *key: Any) -> random.Random:
    """A fresh `random.Random` for one decision, e.g. `rng_for(seed, island, generation, "vary", slot)`."""
    return random.Random(stream_seed(seed, *key))


def _reject(value: Any) -> Any:
    # Only plain values give a stable key; repr() of arbitrary objects may hold memory addresses.
    raise TypeError(f"rng key parts must be str/int/float/bool/None/list, not {type(value).__name__}")
