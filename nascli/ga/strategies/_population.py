"""Population helpers shared by the single-objective strategies (Klos fitness on a list of Members)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from nascli.ga.fitness import FitnessRule
from nascli.ga.selection import roulette_index, roulette_sample, tournament_index
from nascli.ga.strategies.base import Key, Member


def secondary_mode(rule: FitnessRule, population: Sequence[Member]) -> bool:
    return rule.secondary_mode([m.metrics for m in population])


def worst_index(rule: FitnessRule, population: Sequence[Member], mode: bool) -> int:
    """Index of the lowest-fitness member; the first one in population order on ties."""
    keys = [rule.key(m.metrics, mode) for m in population]
    return min(range(len(keys)), key=lambda i: (keys[i], i))


def worst_key(rule: FitnessRule, population: Sequence[Member], among: Callable[[Key], bool] | None) -> Key | None:
    """Key of the lowest-fitness member among those whose key `among` accepts (all when None),
    under the whole population's fitness mode; None when it accepts none."""
    mode = secondary_mode(rule, population)
    candidates = [m for m in population if among is None or among(m.key)]
    return candidates[worst_index(rule, candidates, mode)].key if candidates else None


def ranked(rule: FitnessRule, population: Sequence[Member], mode: bool) -> list[int]:
    """Indices best first; ties keep population order."""
    keys = [rule.key(m.metrics, mode) for m in population]
    return sorted(range(len(keys)), key=lambda i: (tuple(-k for k in keys[i]), i))


def best_member(rule: FitnessRule, members: Sequence[Member]) -> Member | None:
    """The best by the primary metric (ties: the earlier one); what a report calls 'best'. A child
    the stop rule ended (`stopped_at_epoch`) never is: None when every member was stopped."""
    trained = [(i, m) for i, m in enumerate(members) if "stopped_at_epoch" not in m.metrics]
    if not trained:
        return None
    return max(trained, key=lambda im: (rule.primary_value(im[1].metrics), -im[0]))[1]


def select_parents(rule: FitnessRule, pool: Sequence[Member], count: int, rng: random.Random, *,
                   method: str = "roulette", tournament_size: int = 2, mode: bool = False) -> list[Member]:
    """`count` parents from `pool`, distinct while the pool allows (a pool of one gives it twice)."""
    if not pool:
        raise ValueError("no individuals to select parents from")
    distinct = min(count, len(pool))
    if method == "roulette":
        weights = [rule.weight(m.metrics, mode) for m in pool]
        picks = roulette_sample(weights, distinct, rng) if distinct > 1 else [roulette_index(weights, rng)]
    elif method == "tournament":
        remaining = list(range(len(pool)))
        picks = []
        for _ in range(distinct):
            keys = [rule.key(pool[i].metrics, mode) for i in remaining]
            picks.append(remaining.pop(tournament_index(keys, tournament_size, rng)))
    else:
        raise ValueError(f"unknown selection method {method!r} (roulette|tournament)")
    parents = [pool[i] for i in picks]
    while len(parents) < count:
        parents.append(parents[-1])
    return parents
