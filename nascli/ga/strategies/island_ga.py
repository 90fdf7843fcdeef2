"""Island-model steady-state GA of Klos et al. (seed 000, Sec. 3.1, Alg. 1, Table 5).

Per island a population of N. Generation 0: N individuals, each the seed genome mutated
`init_mutations` times (`variation.random_init`). Generation g >= 1: `offspring_per_generation`
children, each made by an operator drawn with the configured probabilities from parent(s)
chosen by roulette wheel (or tournament) among members of age >= `min_parent_age`
(age = g - birth generation; when nobody is old enough the oldest members are eligible). Once
the whole generation is evaluated, each child in slot order is appended while the island is not
full, else replaces the worst member if it is strictly better (`worst-if-better`; with
`ga.replacement = "aging"` it always enters and the oldest member leaves). Failed or
incomplete evaluations never enter a population.

Migration: after every generation g with g % period == 0 (not after the last one), at a barrier
across all islands: per source island the best `candidates` share is pre-selected, of those
max(1, fraction x N) are drawn by roulette (distinct), sent to the destination of Klos Alg. 1
(see nascli.ga.islands) as copies, each replacing the destination's worst member. Emigrants are
chosen from the pre-migration populations of all islands before anyone arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from nascli.ga.fitness import FitnessRule, has_metrics
from nascli.ga.islands import migration_plan, share_count
from nascli.ga.rng import rng_for
from nascli.ga.selection import choose_operator, roulette_sample
from nascli.ga.strategies import _population as pop
from nascli.ga.strategies.base import (
    GenerationalStrategy,
    Key,
    Member,
    Outcome,
    Proposal,
    Variation,
    operator_table,
)

REPLACEMENTS = ("worst-if-better", "aging")


@dataclass(frozen=True)
class IslandSettings:
    islands: int = 5
    population: int = 20
    generations: int = 1000
    offspring_per_generation: int = 1
    min_parent_age: int = 1
    selection: str = "roulette"
    replacement: str = "worst-if-better"  # or "aging": a child always enters, the oldest member leaves
    tournament_size: int = 5
    operators: Mapping[str, float] = field(default_factory=lambda: {
        "insert": 0.2, "switch": 0.1, "delete": 0.2, "adjust": 0.4, "crossover": 0.1})
    migration_period: int = 20
    migration_candidates: float = 0.30
    migration_fraction: float = 0.05
    migration_datasets: int = 1
    fitness: FitnessRule = field(default_factory=FitnessRule)

    def __post_init__(self) -> None:
        for name in ("islands", "population", "offspring_per_generation", "min_parent_age",
                     "migration_period", "migration_datasets"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.generations < 0:
            raise ValueError("generations must be >= 0")
        if self.replacement not in REPLACEMENTS:
            raise ValueError(f"replacement must be one of {REPLACEMENTS}, not {self.replacement!r}")


class IslandGA(GenerationalStrategy):
    name = "island-ga"

    def __init__(self, settings: IslandSettings, variation: Variation, seed: int) -> None:
        super().__init__(seed)
        self.settings = settings
        self.variation = variation
        self.rule = settings.fitness
        self._operators = operator_table(settings.operators)
        n = settings.islands
        self.populations: list[list[Member]] = [[] for _ in range(n)]
        self.completed = [-1] * n  # last generation whose outcomes were applied, per island
        self._issued = [-1] * n
        self._migrated_through = 0  # last migration generation that has been carried out
        self.m_l = 0  # Alg. 1 state: the previous migration destination (1-based, 0 = none yet)
        self.unusable = 0  # 'done' outcomes lacking a metric the fitness needs

    # -- proposing --------------------------------------------------------------------------
    def _make_ready(self, limit: int | None) -> list[Proposal]:
        ready: list[Proposal] = []
        for island in range(self.settings.islands):
            done = self.completed[island]
            if self._issued[island] != done or done >= self.settings.generations:
                continue
            if self._is_migration_generation(done) and self._migrated_through < done:
                continue  # at the barrier until every island has reached it
            generation = done + 1
            self._issued[island] = generation
            ready.extend(self._open_batch(island, generation, self._generation(island, generation)))
        return ready

    def _generation(self, island: int, generation: int) -> list[Proposal]:
        if generation == 0:
            return [self._initial(island, slot) for slot in range(self.settings.population)]
        return [self._child(island, generation, slot) for slot in range(self.settings.offspring_per_generation)]

    def _initial(self, island: int, slot: int) -> Proposal:
        rng = rng_for(self.seed, island, 0, "init", slot)
        return Proposal((island, 0, slot), self.variation.random_init(rng), (), "init")

    def _child(self, island: int, generation: int, slot: int) -> Proposal:
        rng = rng_for(self.seed, island, generation, "vary", slot)
        members = self.populations[island]
        if not members:  # every earlier evaluation failed: start over from the seed genome
            return Proposal((island, generation, slot), self.variation.random_init(rng), (), "init")
        operator = choose_operator(self._operators, rng)
        parents = pop.select_parents(
            self.rule, self._eligible(members, generation), 2 if operator == "crossover" else 1, rng,
            method=self.settings.selection, tournament_size=self.settings.tournament_size,
            mode=pop.secondary_mode(self.rule, members))
        genome = self.variation.vary(operator, [p.genome for p in parents], rng)
        return Proposal((island, generation, slot), genome, tuple(p.key for p in parents), operator)

    def _eligible(self, members: list[Member], generation: int) -> list[Member]:
        old_enough = [m for m in members if generation - m.birth >= self.settings.min_parent_age]
        if old_enough:
            return old_enough
        oldest = min(m.birth for m in members)
        return [m for m in members if m.birth == oldest]

    # -- applying outcomes ------------------------------------------------------------------
    def _generation_complete(self, island: int, generation: int,
                             results: list[tuple[Proposal, Outcome]]) -> None:
        for proposal, outcome in results:
            if outcome.status != "done":
                continue
            if not has_metrics(outcome.metrics, self.rule.needed_metrics):
                self.unusable += 1
                continue
            member = Member(proposal.key, proposal.genome, dict(outcome.metrics), generation, island)
            self._insert_if_better(island, member)
        self.completed[island] = generation
        if self._is_migration_generation(generation) and min(self.completed) >= generation:
            self._migrate(generation)

    def _insert_if_better(self, island: int, child: Member) -> bool:
        members = self.populations[island]
        if len(members) < self.settings.population:
            members.append(child)
            return True
        if self.settings.replacement == "aging":  # regularized evolution's rule (Real et al.)
            oldest = min(range(len(members)), key=lambda i: members[i].birth)
            del members[oldest]
            members.append(child)
            return True
        mode = pop.secondary_mode(self.rule, members)
        worst = pop.worst_index(self.rule, members, mode)
        if self.rule.key(child.metrics, mode) > self.rule.key(members[worst].metrics, mode):
            members[worst] = child
            return True
        return False

    # -- migration --------------------------------------------------------------------------
    def _is_migration_generation(self, generation: int) -> bool:
        s = self.settings
        return s.islands > 1 and 1 <= generation < s.generations and generation % s.migration_period == 0

    def _migrate(self, generation: int) -> None:
        s = self.settings
        pairs, self.m_l = migration_plan(s.islands, s.migration_datasets, self.m_l)
        moves: list[tuple[int, int, Member]] = []
        for source, destination in pairs:
            members = self.populations[source]
            if not members:
                continue
            mode = pop.secondary_mode(self.rule, members)
            candidates = pop.ranked(self.rule, members, mode)[: share_count(s.migration_candidates, len(members))]
            count = min(share_count(s.migration_fraction, s.population), len(candidates))
            rng = rng_for(self.seed, source, generation, "migrate")
            weights = [self.rule.weight(members[i].metrics, mode) for i in candidates]
            for pick in roulette_sample(weights, count, rng):
                moves.append((source, destination, members[candidates[pick]]))
        for source, destination, migrant in moves:
            replaced = self._receive_migrant(destination, migrant)
            self.events.append({"type": "migration", "generation": generation, "from": source,
                                "to": destination, "key": list(migrant.key), "genome": str(migrant.genome),
                                "replaced": list(replaced.key) if replaced else None})
        self._migrated_through = generation

    def _receive_migrant(self, island: int, migrant: Member) -> Member | None:
        copy = Member(migrant.key, migrant.genome, migrant.metrics, migrant.birth, migrant.origin)
        members = self.populations[island]
        if len(members) < self.settings.population:
            members.append(copy)
            return None
        worst = pop.worst_index(self.rule, members, pop.secondary_mode(self.rule, members))
        replaced, members[worst] = members[worst], copy
        return replaced

    # -- reporting --------------------------------------------------------------------------
    def _budget_spent(self) -> bool:
        return min(self.completed) >= self.settings.generations

    def worst_living(self, island: int, among: Callable[[Key], bool] | None = None) -> Key | None:
        members = self.populations[island]
        if len(members) < self.settings.population:
            return None
        return pop.worst_key(self.rule, members, among)

    def living(self) -> list[tuple[int, Any, list[Key]]]:
        return [(island, self.completed[island], [cast(Key, tuple(m.key)) for m in members])
                for island, members in enumerate(self.populations)]

    def _state(self) -> dict[str, Any]:
        islands = []
        everyone: list[Member] = []
        for island, members in enumerate(self.populations):
            mode = pop.secondary_mode(self.rule, members)
            best = pop.best_member(self.rule, members)
            islands.append({
                "island": island, "generation": self.completed[island], "fitness_mode":
                "secondary" if mode else "primary",
                "population": [m.to_json(fitness=list(self.rule.key(m.metrics, mode))) for m in members],
                "best": best.to_json() if best else None})
            everyone.extend(members)
        best = pop.best_member(self.rule, everyone)
        return {"islands": islands, "best": best.to_json() if best else None, "m_l": self.m_l,
                "migrations": [e for e in self.events if e["type"] == "migration"], "unusable": self.unusable}
