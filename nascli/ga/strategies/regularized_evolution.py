"""Regularized (aging) evolution, asynchronous (Real et al.; DeepHyper's parallel version, seed 004
Alg. 1): a new child whenever a worker frees up.

While the population holds fewer than P members, children are random (`variation.random_init`);
afterwards a child is a mutation of the best of `tournament_size` distinct members sampled
uniformly. Each finished evaluation is appended on arrival; when more than P members are held the
OLDEST is discarded (not the worst). Failed evaluations never enter. Budget: P + generations
children.

Keys: (0, c, slot) where c = outcomes consumed when the child was asked and slot numbers the
children asked at that point. So the log says exactly which population each child saw, and
`nascli.driver.replay` re-folds it: issue the children of consumption point c, then consume outcome c, ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nascli.ga.fitness import FitnessRule, has_metrics
from nascli.ga.rng import rng_for
from nascli.ga.selection import choose_operator, tournament_index
from nascli.ga.strategies import _population as pop
from nascli.ga.strategies.base import Key, Member, Outcome, Proposal, Strategy, Variation
from nascli.ga.strategies.mu_plus_lambda import mutation_table


class RegularizedEvolution(Strategy):
    name = "regularized-evolution"
    asynchronous = True

    def __init__(self, population: int, generations: int, tournament_size: int, operators: Mapping[str, float],
                 variation: Variation, seed: int, fitness: FitnessRule | None = None) -> None:
        super().__init__(seed)
        if population < 1 or generations < 0 or tournament_size < 1:
            raise ValueError("regularized evolution needs population >= 1, generations >= 0, tournament_size >= 1")
        self.size, self.tournament_size = population, tournament_size
        self.budget = population + generations
        self.variation = variation
        self.rule = fitness or FitnessRule()
        self._mutations = mutation_table(operators)
        self.population: list[Member] = []  # oldest first
        self.best: Member | None = None
        self.issued = 0
        self._slot_point = 0  # consumption point the next slot number belongs to
        self._slot = 0

    def _make_ready(self, limit: int | None) -> list[Proposal]:
        if self._slot_point != self.evaluations_told:
            self._slot_point, self._slot = self.evaluations_told, 0
        made: list[Proposal] = []
        while len(made) < (limit or 0) and self.issued < self.budget:
            made.append(self._child((0, self.evaluations_told, self._slot)))
            self._slot += 1
            self.issued += 1
        return made

    def _child(self, key: Key) -> Proposal:
        rng = rng_for(self.seed, *key[:2], "child", key[2])
        if len(self.population) < self.size:
            return Proposal(key, self.variation.random_init(rng), (), "init")
        mode = pop.secondary_mode(self.rule, self.population)
        keys = [self.rule.key(m.metrics, mode) for m in self.population]
        parent = self.population[tournament_index(keys, self.tournament_size, rng)]
        operator = choose_operator(self._mutations, rng)
        return Proposal(key, self.variation.vary(operator, [parent.genome], rng), (parent.key,), operator)

    def _receive(self, proposal: Proposal, outcome: Outcome) -> None:
        if outcome.status != "done" or not has_metrics(outcome.metrics, self.rule.needed_metrics):
            return
        member = Member(proposal.key, proposal.genome, dict(outcome.metrics), self.evaluations_told, 0)
        self.population.append(member)
        while len(self.population) > self.size:
            self.population.pop(0)  # aging: the oldest goes, whatever its fitness
        if self.best is None or self.rule.primary_value(member.metrics) > self.rule.primary_value(self.best.metrics):
            self.best = member

    def _budget_spent(self) -> bool:
        return self.issued >= self.budget

    def _state(self) -> dict[str, Any]:
        mode = pop.secondary_mode(self.rule, self.population)
        return {"issued": self.issued, "budget": self.budget, "population_size": self.size,
                "population": [m.to_json(fitness=list(self.rule.key(m.metrics, mode))) for m in self.population],
                "best": self.best.to_json() if self.best else None}
