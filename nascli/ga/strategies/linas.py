"""LINAS (Cummings et al., seed 003): NSGA-II over cheap predictors, then real evaluations.

Iteration 0 evaluates `evaluations_per_iteration` random individuals. Before iteration i >= 1,
one predictor per objective (ridge or RBF epsilon-SVR, nascli.ga.predictors) is trained on ALL
successful real evaluations so far, from genome features (`variation.features`); objectives that
are themselves features (params, flops) are taken exactly instead of predicted. NSGA-II then runs
for `predictor_generations` generations on predicted objectives only, starting from the best
real individuals; its final population, best first (front rank, then crowding), minus genomes
already evaluated, gives the next `evaluations_per_iteration` proposals (topped up with random
genomes if too few are new). `iterations` batches in total, key (0, iteration, slot).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nascli.ga.fitness import FitnessRule
from nascli.ga.pareto import rank_and_crowding, select_survivors
from nascli.ga.predictors import feature_row, make_predictor
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
from nascli.metrics import PRIMARY_METRICS, oriented

FILL_ATTEMPTS = 20  # random draws per missing proposal before accepting fewer


class LINAS(GenerationalStrategy):
    name = "linas"

    def __init__(self, evaluations_per_iteration: int, iterations: int, predictor_generations: int,
                 predictor: str, objectives: Sequence[str], operators: Mapping[str, float],
                 variation: Variation, seed: int) -> None:
        super().__init__(seed)
        if evaluations_per_iteration < 1 or iterations < 1 or predictor_generations < 1 or len(objectives) < 2:
            raise ValueError("linas needs evaluations_per_iteration, iterations, predictor_generations >= 1 "
                             "and at least two objectives")
        if variation.features is None:
            raise ValueError("linas needs genome features (Variation.features)")
        make_predictor(predictor)  # reject an unknown kind now, not after the first iteration
        self.size, self.iterations = evaluations_per_iteration, iterations
        self.inner_generations = predictor_generations
        self.predictor_kind, self.objectives = predictor, tuple(objectives)
        self.variation = variation
        self._operators = operator_table(operators)
        self.evaluated: list[Member] = []
        self._points: list[tuple[float, ...]] = []
        self._seen: set[Any] = set()
        self._features: dict[Any, Mapping[str, float]] = {}
        self._predicted: dict[tuple[int, ...], tuple[float, ...]] = {}  # key -> predicted minimised objectives
        self.prediction_errors: list[list[float]] = []  # per iteration: mean |predicted - real| per objective
        self.completed = -1
        self._issued = -1

    def _features_of(self, genome: Any) -> Mapping[str, float]:
        if genome not in self._features:
            if self.variation.features is None:
                raise ValueError("LINAS needs a variation with genome features")
            self._features[genome] = self.variation.features(genome)
        return self._features[genome]

    # -- proposing --------------------------------------------------------------------------
    def _make_ready(self, limit: int | None) -> list[Proposal]:
        ready: list[Proposal] = []
        while self._issued == self.completed and self.completed + 1 < self.iterations:
            iteration = self._issued = self.completed + 1
            first = iteration == 0 or not self.evaluated
            batch = self._random_batch(0, []) if first else self._predicted_batch(iteration)
            ready.extend(self._open_batch(0, iteration, batch))
        return ready

    def _random_batch(self, iteration: int, batch: list[Proposal]) -> list[Proposal]:
        rng = rng_for(self.seed, 0, iteration, "fill")
        for _ in range(FILL_ATTEMPTS * self.size):
            if len(batch) >= self.size:
                break
            genome = self.variation.random_init(rng)
            if genome not in self._seen:
                self._seen.add(genome)
                batch.append(Proposal((0, iteration, len(batch)), genome, (), "init"))
        return batch

    def _predicted_batch(self, iteration: int) -> list[Proposal]:
        predict = self._train()
        start = sorted(select_survivors(self._points, self.size))
        genomes = [self.evaluated[i].genome for i in start]
        points = [predict(g) for g in genomes]
        for generation in range(1, self.inner_generations + 1):
            children = []
            ranking = rank_and_crowding(points)
            for slot in range(self.size):
                rng = rng_for(self.seed, 0, iteration, "predictor-ga", generation, slot)
                children.append(offspring(genomes, ranking, self._operators, self.variation.vary, rng)[2])
            pool, pool_points = genomes + children, points + [predict(g) for g in children]
            keep = select_survivors(pool_points, self.size)  # best first
            genomes, points = [pool[i] for i in keep], [pool_points[i] for i in keep]
        batch: list[Proposal] = []
        for genome, point in zip(genomes, points):
            if genome in self._seen or len(batch) >= self.size:
                continue
            self._seen.add(genome)
            proposal = Proposal((0, iteration, len(batch)), genome, (), "predicted")
            self._predicted[proposal.key] = point
            batch.append(proposal)
        return self._random_batch(iteration, batch)

    def _train(self) -> Callable[[Any], tuple[float, ...]]:
        """A function genome -> predicted minimised objective vector."""
        names = sorted(self._features_of(self.evaluated[0].genome))
        rows = [feature_row(self._features_of(m.genome), names) for m in self.evaluated]
        models = {}
        for m, objective in enumerate(self.objectives):
            if objective not in names:
                models[objective] = make_predictor(self.predictor_kind).fit(rows, [p[m] for p in self._points])
        cache: dict[Any, tuple[float, ...]] = {}

        def predict(genome: Any) -> tuple[float, ...]:
            if genome not in cache:
                features = self._features_of(genome)
                row = feature_row(features, names)
                cache[genome] = tuple(
                    -oriented(o, features[o]) if o not in models else models[o].predict(row)
                    for o in self.objectives)
            return cache[genome]

        return predict

    # -- applying outcomes ------------------------------------------------------------------
    def _generation_complete(self, island: int, generation: int, results: list[tuple[Proposal, Outcome]]) -> None:
        errors: list[list[float]] = []
        for proposal, outcome in results:
            self._seen.add(proposal.genome)
            point = minimised(outcome.metrics, self.objectives) if outcome.status == "done" else None
            if point is None:
                continue
            self.evaluated.append(Member(proposal.key, proposal.genome, dict(outcome.metrics), generation, 0))
            self._points.append(point)
            if proposal.key in self._predicted:
                errors.append([abs(a - b) for a, b in zip(self._predicted.pop(proposal.key), point)])
        if errors:
            self.prediction_errors.append([sum(e[m] for e in errors) / len(errors)
                                           for m in range(len(self.objectives))])
        self.completed = generation

    def _budget_spent(self) -> bool:
        return self.completed + 1 >= self.iterations

    def _state(self) -> dict[str, Any]:
        report = front_report(self._points, self._points, self.objectives)
        primary = next((o for o in self.objectives if o in PRIMARY_METRICS), None)
        best = best_member(FitnessRule(primary=primary), self.evaluated) if primary else None
        return {"iteration": self.completed, "predictor": self.predictor_kind, "objectives": list(self.objectives),
                "evaluated": len(self.evaluated), "prediction_errors": self.prediction_errors,
                "front": [self.evaluated[i].to_json() for i in report["front"]],
                "hypervolume": report["hypervolume"], "hypervolume_reference": report["reference"],
                "best": best.to_json() if best else None}
