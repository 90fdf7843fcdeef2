"""NSGA-II (Deb et al. 2002) over real evaluations: e.g. validation accuracy (max) vs parameters,
FLOPs or latency (min) — `objectives` from [nsga2], default [fitness.primary, fitness.secondary].

Generation 0: N random individuals. Generation g: N children, each from an operator drawn with
the configured probabilities and parent(s) by binary tournament on (front rank, crowding
distance). Once evaluated, parents + successful children are sorted into fronts and the next N
survive (whole fronts, the last one by crowding distance). Individuals missing an objective
(failed, or a metric not measured) never enter. `snapshot()` reports the final front and its
hypervolume (objectives scaled to [0, 1] over all evaluations, reference point 1.1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nascli.ga.fitness import FitnessRule
from nascli.ga.pareto import rank_and_crowding, select_survivors
from nascli.ga.rng import rng_for
from nascli.ga.strategies._multi import front_report, minimised, offspring
from nascli.ga.strategies._population import best_member
from nascli.ga.strategies.base import (
    GenerationalStrategy,
    Member,
    Outcome,
    Proposal,
    Variation,
    operator_table,
)
from nascli.metrics import PRIMARY_METRICS


class NSGA2(GenerationalStrategy):
    name = "nsga2"

    def __init__(self, population: int, generations: int, objectives: Sequence[str], operators: Mapping[str, float],
                 variation: Variation, seed: int) -> None:
        super().__init__(seed)
        if population < 1 or generations < 0 or len(objectives) < 2:
            raise ValueError("nsga2 needs population >= 1, generations >= 0 and at least two objectives")
        if any(o.startswith("test_") for o in objectives):
            raise ValueError("objectives must not use test metrics")
        self.size, self.generations, self.objectives = population, generations, tuple(objectives)
        self.variation = variation
        self._operators = operator_table(operators)
        self.population: list[Member] = []
        self._points: list[tuple[float, ...]] = []
        self.all_points: list[tuple[float, ...]] = []  # every successful evaluation, for the HV scale
        self.completed = -1
        self._issued = -1

    def _make_ready(self, limit: int | None) -> list[Proposal]:
        if self._issued != self.completed or self.completed >= self.generations:
            return []
        generation = self._issued = self.completed + 1
        ranking = rank_and_crowding(self._points)
        return self._open_batch(0, generation, [self._child(generation, s, ranking) for s in range(self.size)])

    def _child(self, generation: int, slot: int, ranking: tuple[list[int], list[float]]) -> Proposal:
        rng = rng_for(self.seed, 0, generation, "vary", slot)
        if generation == 0 or not self.population:
            return Proposal((0, generation, slot), self.variation.random_init(rng), (), "init")
        operator, parents, genome = offspring([m.genome for m in self.population], ranking,
                                              self._operators, self.variation.vary, rng)
        return Proposal((0, generation, slot), genome, tuple(self.population[i].key for i in parents), operator)

    def _generation_complete(self, island: int, generation: int, results: list[tuple[Proposal, Outcome]]) -> None:
        pool, points = list(self.population), list(self._points)
        for proposal, outcome in results:
            point = minimised(outcome.metrics, self.objectives) if outcome.status == "done" else None
            if point is not None:
                pool.append(Member(proposal.key, proposal.genome, dict(outcome.metrics), generation, 0))
                points.append(point)
                self.all_points.append(point)
        survivors = sorted(select_survivors(points, self.size))
        self.population = [pool[i] for i in survivors]
        self._points = [points[i] for i in survivors]
        self.completed = generation

    def _budget_spent(self) -> bool:
        return self.completed >= self.generations

    def _state(self) -> dict[str, Any]:
        report = front_report(self._points, self.all_points, self.objectives)
        primary = next((o for o in self.objectives if o in PRIMARY_METRICS), None)
        best = best_member(FitnessRule(primary=primary), self.population) if primary else None
        return {"generation": self.completed, "objectives": list(self.objectives),
                "population": [m.to_json() for m in self.population],
                "front": [self.population[i].to_json() for i in report["front"]],
                "hypervolume": report["hypervolume"], "hypervolume_reference": report["reference"],
                "best": best.to_json() if best else None}
