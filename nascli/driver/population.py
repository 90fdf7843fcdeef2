"""The population mirror: the strategy's populations as individual rows, for reports.

Each child is an individual row at its key (island, generation, slot); a migrant also gets a copy
row on its destination island at slot MIGRANT_SLOT + n, carrying its source's result from the cache.
After every step the driver records migrations, who is no longer alive and the island generations,
in the step's own transaction.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from nascli.driver.events import MIGRANT_SLOT, MIGRATION_OPERATOR
from nascli.ga.strategies import Strategy, canonical_hash
from nascli.store import IndividualInfo, NewIndividual, Store

Key = tuple[int, int, int]


@dataclass
class PopulationChanges:
    """The strategy's population changes one write mirrors into the store."""


    migrations: list[dict[str, Any]]
    living: list[tuple[int, Any, list[Key]]]  # the strategy's populations
    decided: set[Key]  # told keys whose outcome the strategy has applied
    generation: int  # recorded as the dead's replaced generation
    generations: dict[int, int]  # island -> generation, the changed ones
    evicted: list[int] = field(default_factory=list)  # evaluations whose stored weights go (nascli.transfer)
    # filled by the write (it may run twice after a transient error: the last run counts)
    copies: list[tuple[int, Key, int]] = field(default_factory=list)  # (island, key, copy id)
    dead: set[int] = field(default_factory=set)  # individual ids leaving the populations




@dataclass
class PopulationMirror:
    """Which individual row stands for which strategy key on which island, and what is recorded."""

    store: Store
    run_id: str
    config_hash: str
    individual_ids: dict[Key, int] = field(default_factory=dict)  # a child's own row
    key_of_individual: dict[int, Key] = field(default_factory=dict)
    # (island, strategy key) -> the individual rows of that key on that island, oldest first: the
    # child's own row on its birth island, migrant copies on the islands they reached
    placed: dict[tuple[int, Key], list[int]] = field(default_factory=lambda: defaultdict(list))
    copy_ids: set[int] = field(default_factory=set)  # migrant copies: their cached evaluations are not told again
    step_copies: list[tuple[int, Key, int]] = field(default_factory=list)  # copies written, not yet committed
    marked_dead: set[int] = field(default_factory=set)  # individual ids recorded as no longer alive
    island_generations: dict[int, int] = field(default_factory=dict)
    migrations_recorded: int = 0

    def load(self, individuals: list[IndividualInfo], migrations_recorded: int) -> None:
        """The rows a run has (resume), in id order: a copy comes after its source."""
        for individual in individuals:
            if not individual.alive:
                self.marked_dead.add(individual.id)
            if individual.operator == MIGRATION_OPERATOR and individual.slot >= MIGRANT_SLOT:
                key = self.key_of_individual.get(individual.parents[0]) if individual.parents else None
                if key is not None:
                    self.copy_ids.add(individual.id)
                    self.key_of_individual[individual.id] = key
                    self.placed[(individual.island, key)].append(individual.id)
                continue
            key = (individual.island, individual.generation, individual.slot)
            self.record_child(key, individual.id)
        self.migrations_recorded = migrations_recorded

    def record_child(self, key: Key, individual_id: int) -> None:
        """A child's own row (written now, or found after a crash)."""
        if self.individual_ids.get(key) != individual_id:
            self.placed[(key[0], key)].append(individual_id)
        self.individual_ids[key] = individual_id
        self.key_of_individual[individual_id] = key

    def parent_rows(self, island: int, parents: tuple[Key, ...]) -> tuple[int, ...]:
        """The rows a child on `island` descends from (a parent that migrated there: its copy)."""
        return tuple(self.row_of(island, key) for key in parents if key in self.individual_ids)

    def changes(self, strategy: Strategy, told: set[Key], evicted: list[int] | None = None) -> PopulationChanges:
        """What changed in the strategy's populations since the last recorded write; `evicted`:
        stored weights that can no longer be a donor (nascli.transfer.Donors.evictable)."""
        migrations = [e for e in strategy.events if e.get("type") == "migration"][self.migrations_recorded:]
        living = strategy.living()
        # an outcome waiting for the rest of its generation is not decided: it may still enter
        decided = told - strategy.undecided()
        generation = max((g or 0) for _, g, _ in living) if living else 0
        generations = {island: g for island, g, _ in living
                       if isinstance(g, int) and self.island_generations.get(island) != g}
        return PopulationChanges(migrations, living, decided, generation, generations, evicted=list(evicted or []))

    def row_of(self, island: int, key: Key) -> int:
        """The individual row that stands for strategy key `key` on `island` (its newest migrant copy
        there, including copies this step is writing, else the key's own row)."""
        fresh = [copy_id for where, copied, copy_id in self.step_copies if (where, copied) == (island, key)]
        if fresh:
            return fresh[-1]
        rows = self.placed.get((island, key))
        return rows[-1] if rows else self.individual_ids[key]

    def write(self, changes: PopulationChanges) -> None:
        """The store writes of `changes` (inside the step's unit of work; may run twice after a
        transient error: the last run counts)."""
        placed = {where: list(rows) for where, rows in self.placed.items()}
        changes.copies = []
        arrivals: dict[tuple[int, int], int] = defaultdict(int)  # (island, generation) -> copies so far
        for event in changes.migrations:
            key, source, destination = tuple(event["key"]), event["from"], event["to"]
            rows = placed.get((source, key))
            source_id = rows[-1] if rows else self.individual_ids[key]
            self.store.record_migration(self.run_id, event["generation"], source, destination, source_id)
            copy_id = self._write_migrant_copy(event, source_id, arrivals)
            placed.setdefault((destination, key), []).append(copy_id)
            changes.copies.append((destination, key, copy_id))
        self.step_copies = list(changes.copies)  # children written next in this step descend from them
        alive: set[int] = set()
        for island, _, keys in changes.living:
            for key, count in _counts(keys).items():
                rows = placed.get((island, key)) or [self.individual_ids[key]]
                alive.update(rows[-count:])
        candidates = {self.individual_ids[k] for k in changes.decided} | self.copy_ids
        candidates |= {copy_id for _, _, copy_id in changes.copies}
        changes.dead = candidates - alive - self.marked_dead
        if changes.dead:
            self.store.mark_replaced(sorted(changes.dead), changes.generation)
        self.store.set_island_generations(self.run_id, changes.generations)
        self.store.evict_weights(self.run_id, changes.evicted)  # weights that can no longer be a donor

    def _write_migrant_copy(self, event: dict[str, Any], source_id: int, arrivals: dict[tuple[int, int], int]) -> int:
        """The migrant's copy on the destination island, with the source's result from the cache (no training)."""
        destination, generation = event["to"], event["generation"]
        slot = MIGRANT_SLOT + arrivals[(destination, generation)]
        arrivals[(destination, generation)] += 1
        genome_hash = canonical_hash(event["genome"])
        (copy_id,) = self.store.add_individuals(self.run_id, [NewIndividual(
            island=destination, generation=generation, slot=slot, genome=event["genome"], genome_hash=genome_hash,
            parents=(source_id,), operator=MIGRATION_OPERATOR)])
        cached = self.store.cached_result(self.run_id, genome_hash, self.config_hash)
        if cached is not None:  # a member has a finished evaluation; without one the copy simply has none
            self.store.record_cached_results(self.run_id, [(copy_id, cached)])
        return copy_id

    def written(self, changes: PopulationChanges) -> None:
        """Bring the mirror's memory in line with committed `changes`."""
        self.step_copies = []
        self.migrations_recorded += len(changes.migrations)
        for island, key, copy_id in changes.copies:
            self.placed[(island, key)].append(copy_id)
            self.copy_ids.add(copy_id)
            self.key_of_individual[copy_id] = key
        self.marked_dead |= changes.dead
        self.island_generations.update(changes.generations)


def _counts(keys: list[Key]) -> dict[Key, int]:
    counts: dict[Key, int] = defaultdict(int)
    for key in keys:
        counts[key] += 1
    return counts

