"""Random search, the baseline of Hajewski et al. (seed 002): every individual is the seed genome
mutated `init_mutations` times (`variation.random_init`), nothing is learned from outcomes.

Budget: the evaluations the island GA would make with the same [ga] table,
islands x (population + generations x offspring_per_generation). Proposals go out in batches of
`population` (key (0, batch, slot)); the next batch is issued when the previous one is complete.
"""

from __future__ import annotations

from typing import Any

from nascli.ga.fitness import FitnessRule, has_metrics
from nascli.ga.rng import rng_for
from nascli.ga.strategies._population import best_member
from nascli.ga.strategies.base import GenerationalStrategy, Member, Outcome, Proposal, Variation


def island_ga_budget(islands: int, population: int, generations: int, offspring: int) -> int:
    return islands * (population + generations * offspring)


class RandomSearch(GenerationalStrategy):
    name = "random"

    def __init__(self, budget: int, batch_size: int, variation: Variation, seed: int,
                 fitness: FitnessRule | None = None) -> None:
        super().__init__(seed)
        if budget < 0 or batch_size < 1:
            raise ValueError("random search needs budget >= 0 and a batch size >= 1")
        self.budget, self.batch_size, self.variation = budget, batch_size, variation
        self.rule = fitness or FitnessRule()
        self.evaluated: list[Member] = []
        self._issued = 0
        self._batch = -1
        self._open = False

    def _make_ready(self, limit: int | None) -> list[Proposal]:
        if self._open or self._issued >= self.budget:
            return []
        self._batch += 1
        size = min(self.batch_size, self.budget - self._issued)
        proposals = [Proposal((0, self._batch, s), self.variation.random_init(rng_for(self.seed, 0,
                                                                                      self._batch, "random",
                                                                                      s)),
                              (), "random") for s in range(size)]
        self._issued += size
        self._open = True
        return self._open_batch(0, self._batch, proposals)

    def _generation_complete(self, island: int, generation: int, results: list[tuple[Proposal, Outcome]]) -> None:
        for proposal, outcome in results:
            if outcome.status == "done" and has_metrics(outcome.metrics, (self.rule.primary,)):
                self.evaluated.append(Member(proposal.key, proposal.genome, dict(outcome.metrics), generation, 0))
        self._open = False

    def _budget_spent(self) -> bool:
        return self._issued >= self.budget and not self._open

    def _state(self) -> dict[str, Any]:
        best = best_member(self.rule, self.evaluated)
        return {"budget": self.budget, "issued": self._issued, "batch": self._batch,
                "evaluated": len(self.evaluated), "best": best.to_json() if best else None}
