"""Objective vectors, hypervolume reporting and NSGA-II variation shared by nsga2 and linas."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nascli.ga.fitness import MissingMetric, metric_value
from nascli.ga.pareto import crowded_better, hypervolume, non_dominated_sort
from nascli.ga.selection import choose_operator
from nascli.metrics import oriented

HV_REFERENCE = 1.1  # per objective, after scaling each to [0, 1] over every evaluated individual


def minimised(metrics: Mapping[str, Any], objectives: Sequence[str]) -> tuple[float, ...] | None:
    """The objective vector to minimise (maximised objectives negated); None if a metric is missing."""
    try:
        return tuple(-oriented(o, metric_value(metrics, o)) for o in objectives)
    except MissingMetric:
        return None


def binary_tournament(rank: Sequence[int], crowd: Sequence[float], rng: random.Random,
                      exclude: int | None = None) -> int:
    """Deb's binary tournament with the crowded-comparison operator (first drawn wins ties)."""
    choices = [i for i in range(len(rank)) if i != exclude] or list(range(len(rank)))
    a, b = rng.choice(choices), rng.choice(choices)
    return b if crowded_better((rank[b], crowd[b]), (rank[a], crowd[a])) else a


def offspring(genomes: Sequence[Any], ranking: tuple[Sequence[int], Sequence[float]],
              operators: Sequence[tuple[str, float]], vary: Callable[..., Any],
              rng: random.Random) -> tuple[str, tuple[int, ...], Any]:
    """One child: operator by configured probability, parent(s) by binary tournament on
    `ranking` = pareto.rank_and_crowding(points) of the parents (computed once per generation)."""
    rank, crowd = ranking
    operator = choose_operator(operators, rng)
    first = binary_tournament(rank, crowd, rng)
    parents = (first,) if operator != "crossover" else (first, binary_tournament(rank, crowd, rng, exclude=first))
    return operator, parents, vary(operator, [genomes[i] for i in parents], rng)


def front_report(points: Sequence[Sequence[float]], all_points: Sequence[Sequence[float]],
                 objectives: Sequence[str]) -> dict[str, Any]:
    """Indices of the non-dominated points and their hypervolume, each objective scaled to [0, 1]
    between the best and worst value over `all_points` (all evaluated individuals), reference 1.1."""
    if not points:
        return {"front": [], "hypervolume": None, "reference": None}
    front = non_dominated_sort(points)[0]
    lows = [min(p[m] for p in all_points) for m in range(len(objectives))]
    highs = [max(p[m] for p in all_points) for m in range(len(objectives))]
    spans = [(h - lo) or 1.0 for lo, h in zip(lows, highs)]
    scaled = [[(points[i][m] - lows[m]) / spans[m] for m in range(len(objectives))] for i in front]
    reference = {o: _raw(o, lows[m] + HV_REFERENCE * spans[m]) for m, o in enumerate(objectives)}
    return {"front": front, "hypervolume": hypervolume(scaled, [HV_REFERENCE] * len(objectives)),
            "reference": reference}


def _raw(objective: str, value: float) -> float:
    return -oriented(objective, value)
