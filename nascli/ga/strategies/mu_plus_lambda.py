"""(mu + lambda) evolution of Hajewski et al. (seed 002, Alg. 1-3) on one population.

Generation 0: mu random individuals. Generation g: parents are visited in population order
(best first); each parent p gets a random partner o != p; with probability 1/2 each of p and o
is replaced by a mutated clone (operator drawn from the configured mutation probabilities), and
crossover of the two is forced (Alg. 2). Mutated clones and the crossover child are offspring;
offspring stop at lambda = `offspring_per_generation`. A candidate whose genome equals a parent's
or an earlier offspring's is not proposed (the genotype cache would answer it anyway, seed 002
Alg. 1 lines 6-9); after a bounded number of attempts the generation may have fewer children.
When the generation is evaluated the best mu of parents + successful children survive
(Klos fitness rule, ties keep the older individual).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nascli.ga.fitness import FitnessRule, has_metrics
from nascli.ga.rng import rng_for
from nascli.ga.selection import choose_operator
from nascli.ga.strategies import _population as pop
from nascli.ga.strategies.base import (
    MUTATIONS,
    GenerationalStrategy,
    Key,
    Member,
    Outcome,
    Proposal,
    Variation,
    operator_table,
)

ATTEMPTS_PER_CHILD = 4  # bound on candidate draws per wanted child (duplicates are skipped)


def mutation_table(probabilities: Mapping[str, float]) -> list[tuple[str, float]]:
    """The configured mutation probabilities (crossover left out); all zero -> adjust only."""
    if sum(float(probabilities.get(name, 0.0)) for name in MUTATIONS) <= 0:
        return [("adjust", 1.0)]
    return operator_table(probabilities, MUTATIONS)


class MuPlusLambda(GenerationalStrategy):
    name = "mu-plus-lambda"

    def __init__(self, mu: int, lam: int, generations: int, operators: Mapping[str, float],
                 variation: Variation, seed: int, fitness: FitnessRule | None = None) -> None:
        super().__init__(seed)
        if mu < 1 or lam < 1 or generations < 0:
            raise ValueError("mu-plus-lambda needs population >= 1, offspring_per_generation >= 1, generations >= 0")
        self.mu, self.lam, self.generations = mu, lam, generations
        self.variation = variation
        self.rule = fitness or FitnessRule()
        self._mutations = mutation_table(operators)
        self.population: list[Member] = []
        self.completed = -1
        self._issued = -1
        self.skipped_duplicates = 0

    def _make_ready(self, limit: int | None) -> list[Proposal]:
        ready: list[Proposal] = []
        while self._issued == self.completed and self.completed < self.generations:
            generation = self.completed + 1
            self._issued = generation
            ready.extend(self._open_batch(0, generation, self._generation(generation)))  # empty -> completes now
        return ready

    def _generation(self, generation: int) -> list[Proposal]:
        if generation == 0 or not self.population:
            count = self.mu if generation == 0 else self.lam
            return [Proposal((0, generation, s), self.variation.random_init(rng_for(self.seed, 0, generation,
                                                                                    "init", s)),
                             (), "init") for s in range(count)]
        rng = rng_for(self.seed, 0, generation, "vary")
        seen = {m.genome for m in self.population}
        children: list[Proposal] = []

        def offer(genome: Any, parents: tuple[Key, ...], operator: str) -> None:
            if len(children) >= self.lam:
                return
            if genome in seen:
                self.skipped_duplicates += 1
                return
            seen.add(genome)
            children.append(Proposal((0, generation, len(children)), genome, parents, operator))

        members = self.population
        for attempt in range(ATTEMPTS_PER_CHILD * self.lam):
            if len(children) >= self.lam:
                break
            p = members[attempt % len(members)]
            others = [m for m in members if m is not p] or [p]
            o = others[rng.randrange(len(others))]
            p_genome, o_genome = p.genome, o.genome
            if rng.random() < 0.5:
                operator = choose_operator(self._mutations, rng)
                p_genome = self.variation.vary(operator, [p.genome], rng)
                offer(p_genome, (p.key,), operator)
            if rng.random() < 0.5:
                operator = choose_operator(self._mutations, rng)
                o_genome = self.variation.vary(operator, [o.genome], rng)
                offer(o_genome, (o.key,), operator)
            offer(self.variation.vary("crossover", [p_genome, o_genome], rng), (p.key, o.key), "crossover")
        return children

    def _generation_complete(self, island: int, generation: int, results: list[tuple[Proposal, Outcome]]) -> None:
        pool = list(self.population)
        for proposal, outcome in results:
            if outcome.status == "done" and has_metrics(outcome.metrics, self.rule.needed_metrics):
                pool.append(Member(proposal.key, proposal.genome, dict(outcome.metrics), generation, 0))
        mode = pop.secondary_mode(self.rule, pool)
        self.population = [pool[i] for i in pop.ranked(self.rule, pool, mode)[: self.mu]]
        self.completed = generation

    def _budget_spent(self) -> bool:
        return self.completed >= self.generations

    def worst_living(self, island: int, among: Callable[[Key], bool] | None = None) -> Key | None:
        if len(self.population) < self.mu:
            return None
        return pop.worst_key(self.rule, self.population, among)

    def _state(self) -> dict[str, Any]:
        mode = pop.secondary_mode(self.rule, self.population)
        best = pop.best_member(self.rule, self.population)
        return {"generation": self.completed, "mu": self.mu, "lambda": self.lam,
                "skipped_duplicates": self.skipped_duplicates,
                "population": [m.to_json(fitness=list(self.rule.key(m.metrics, mode))) for m in self.population],
                "best": best.to_json() if best else None}
