"""Parent and survivor selection: roulette wheel (fitness proportionate, Klos Eq. 1) and tournament.

Pure; every function takes the `random.Random` it draws from. Weights are non-negative floats;
when every weight is zero the wheel is uniform (nothing to prefer).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def roulette_index(weights: Sequence[float], rng: random.Random) -> int:
    """Index i drawn with probability w_i / sum(w) (Klos Eq. 1). One draw of `rng.random()`."""
    if not weights:
        raise ValueError("roulette wheel needs at least one weight")
    if any(w < 0 or w != w for w in weights):
        raise ValueError(f"roulette weights must be non-negative numbers, got {list(weights)}")
    total = sum(weights)
    if total <= 0:
        return rng.randrange(len(weights))
    point = rng.random() * total
    running = 0.0
    for index, weight in enumerate(weights):
        running += weight
        if point < running:
            return index
    # Floating-point rounding can leave `point` just above the running sum: last positive weight.
    return max(i for i, w in enumerate(weights) if w > 0)


def roulette_sample(weights: Sequence[float], k: int, rng: random.Random) -> list[int]:
    """k distinct indices, each drawn by roulette among those not drawn yet (in draw order)."""
    if k > len(weights):
        raise ValueError(f"cannot draw {k} distinct items from {len(weights)}")
    remaining = list(range(len(weights)))
    chosen: list[int] = []
    for _ in range(k):
        pick = roulette_index([weights[i] for i in remaining], rng)
        chosen.append(remaining.pop(pick))
    return chosen


def _greater(a: Any, b: Any) -> bool:
    return bool(a > b)


def tournament_index(keys: Sequence[T], size: int, rng: random.Random,
                     better: Callable[[T, T], bool] | None = None) -> int:
    """Sample `size` distinct indices uniformly, return the best one (first sampled wins ties).

    `better(a, b)` says whether key a beats key b; default `a > b`.
    """
    if not keys:
        raise ValueError("tournament needs at least one contestant")
    sample = rng.sample(range(len(keys)), min(size, len(keys)))
    beats = better or _greater
    best = sample[0]
    for index in sample[1:]:
        if beats(keys[index], keys[best]):
            best = index
    return best


def choose_operator(probabilities: Sequence[tuple[str, float]], rng: random.Random) -> str:
    """An operator name drawn by its configured probability (names in the given, fixed order)."""
    names = [name for name, _ in probabilities]
    return names[roulette_index([p for _, p in probabilities], rng)]
