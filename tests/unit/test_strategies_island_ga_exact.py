"""Island GA, exactly: every proposal from its documented stream and the population it saw, the
snapshot field by field, the migration barrier and events, worst_living and living."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_strategies_support import TOY, evaluate

from nascli.ga.fitness import FitnessRule
from nascli.ga.islands import migration_plan, share_count
from nascli.ga.rng import rng_for
from nascli.ga.selection import choose_operator, roulette_sample
from nascli.ga.strategies import _population as pop
from nascli.ga.strategies.base import Member, Outcome, Proposal, operator_table
from nascli.ga.strategies.island_ga import IslandGA, IslandSettings

OPERATORS = {"insert": 0.3, "delete": 0.2, "switch": 0.2, "crossover": 0.3}  # no adjust: toy_vary's fallback


def member(key, acc, params, birth=0, origin=None):
    return Member(key, (params,), {"val_accuracy": acc, "params": params}, birth, key[0] if origin is None else origin)


def expected_proposal(ga: IslandGA, populations: list[list[Member]], key) -> tuple:
    """(genome, parents, operator) as the module docstring says, from the populations at ask time."""
    island, generation, slot = key
    s = ga.settings
    if generation == 0:
        return TOY.random_init(rng_for(ga.seed, island, 0, "init", slot)), (), "init"
    rng = rng_for(ga.seed, island, generation, "vary", slot)
    members = populations[island]
    if not members:
        return TOY.random_init(rng), (), "init"
    operator = choose_operator(operator_table(s.operators), rng)
    old_enough = [m for m in members if generation - m.birth >= s.min_parent_age]
    eligible = old_enough or [m for m in members if m.birth == min(m.birth for m in members)]
    parents = pop.select_parents(s.fitness, eligible, 2 if operator == "crossover" else 1, rng, method=s.selection,
                                 tournament_size=s.tournament_size,
                                 mode=s.fitness.secondary_mode([m.metrics for m in members]))
    return TOY.vary(operator, [p.genome for p in parents], rng), tuple(p.key for p in parents), operator


def expected_state(ga: IslandGA, unusable: int) -> dict:
    rule, islands, everyone = ga.rule, [], []
    for island, members in enumerate(ga.populations):
        mode = rule.secondary_mode([m.metrics for m in members])
        best = pop.best_member(rule, members)
        islands.append({"island": island, "generation": ga.completed[island],
                        "fitness_mode": "secondary" if mode else "primary",
                        "population": [m.to_json(fitness=list(rule.key(m.metrics, mode))) for m in members],
                        "best": best.to_json() if best else None})
        everyone.extend(members)
    best = pop.best_member(rule, everyone)
    return {"islands": islands, "best": best.to_json() if best else None, "m_l": ga.m_l,
            "migrations": list(ga.events), "unusable": unusable}


def outcome_of(proposal: Proposal, kind: str) -> Outcome:
    done = evaluate(proposal, fail_if=lambda g: False)
    if kind == "failed":
        return Outcome(proposal.key, "failed", dict(done.metrics) if proposal.key[2] % 2 else {})
    if kind == "missing-primary":
        return Outcome(proposal.key, "done", {k: v for k, v in done.metrics.items() if k != "val_accuracy"})
    return done


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), islands=st.integers(1, 3), population=st.integers(1, 4),
       generations=st.integers(0, 5), offspring=st.integers(1, 3), min_age=st.integers(1, 3),
       selection=st.sampled_from(["roulette", "tournament"]), tournament=st.integers(1, 4),
       replacement=st.sampled_from(["worst-if-better", "aging"]), threshold=st.sampled_from([None, 0.0, 0.3]),
       order_seed=st.integers(0, 10**6))
def test_every_proposal_and_snapshot_is_exact(seed, islands, population, generations, offspring, min_age, selection,
                                              tournament, replacement, threshold, order_seed):
    ga = IslandGA(IslandSettings(islands=islands, population=population, generations=generations,
                                 offspring_per_generation=offspring, min_parent_age=min_age, selection=selection,
                                 tournament_size=tournament, replacement=replacement, operators=OPERATORS,
                                 migration_period=1, migration_fraction=0.5,
                                 fitness=FitnessRule(threshold=threshold)), TOY, seed)
    order = random.Random(order_seed)
    inflight: list[Proposal] = []
    unusable: list = []  # keys of 'done' outcomes without the primary metric
    while not ga.finished:
        populations = [list(members) for members in ga.populations]
        new = ga.ask()
        for proposal in new:
            assert (proposal.genome, proposal.parents, proposal.operator) == expected_proposal(
                ga, populations, proposal.key)
        inflight.extend(new)
        outcome = outcome_of(inflight.pop(order.randrange(len(inflight))),
                             order.choice(["done", "done", "done", "failed", "missing-primary"]))
        if outcome.status == "done" and "val_accuracy" not in outcome.metrics:
            unusable.append(outcome.key)
        ga.tell(outcome)
        state = ga.snapshot()  # a generation's outcomes count once it is applied
        applied = sum(1 for island, generation, _ in unusable if generation <= ga.completed[island])
        assert {key: state[key] for key in ("islands", "best", "m_l", "migrations", "unusable")} == expected_state(
            ga, applied)
    if islands == 1:
        assert ga.events == [] and ga.m_l == 0


def test_generation_applies_every_usable_outcome_after_failed_and_unusable_ones():
    ga = IslandGA(IslandSettings(islands=2, population=4, generations=1, operators=OPERATORS,
                                 fitness=FitnessRule(threshold=None)), TOY, 2)
    assert ga.snapshot()["unusable"] == 0 and ga.snapshot()["m_l"] == 0
    kinds = ["failed", "missing-primary", "done", "missing-primary"]
    for proposal in ga.ask():
        ga.tell(outcome_of(proposal, kinds[proposal.key[2]]))
    assert ga.snapshot()["unusable"] == 4  # two per island
    for island, members in enumerate(ga.populations):
        assert [(m.key, m.birth, m.origin) for m in members] == [((island, 0, 2), 0, island)]


def test_migration_waits_at_the_barrier_for_every_island():
    ga = IslandGA(IslandSettings(islands=2, population=2, generations=3, migration_period=1, operators=OPERATORS,
                                 fitness=FitnessRule(threshold=None)), TOY, 4)
    for proposal in ga.ask():
        ga.tell(evaluate(proposal, fail_if=lambda g: False))
    first = ga.ask()
    assert sorted({p.key[:2] for p in first}) == [(0, 1), (1, 1)]
    for proposal in first:
        if proposal.key[0] == 0:
            ga.tell(evaluate(proposal, fail_if=lambda g: False))
    assert ga.ask() == []  # island 0 finished generation 1, a migration generation: it waits for island 1
    for proposal in first:
        if proposal.key[0] == 1:
            ga.tell(evaluate(proposal, fail_if=lambda g: False))
    assert [e["generation"] for e in ga.events] == [1, 1]  # both islands sent one migrant after generation 1
    assert sorted({p.key[:2] for p in ga.ask()}) == [(0, 2), (1, 2)]


@pytest.mark.parametrize("islands, expected", [(1, []), (2, [1, 2])])
def test_migrations_follow_every_period_but_the_last_and_need_two_islands(islands, expected):
    ga = IslandGA(IslandSettings(islands=islands, population=2, generations=3, migration_period=1,
                                 operators=OPERATORS, fitness=FitnessRule(threshold=None)), TOY, 4)
    while not ga.finished:
        for proposal in ga.ask():
            ga.tell(evaluate(proposal, fail_if=lambda g: False))
    assert sorted({e["generation"] for e in ga.events}) == expected


def test_migration_events_come_from_the_documented_stream_candidates_and_destinations():
    settings_ = IslandSettings(islands=3, population=3, generations=10, migration_period=2, migration_candidates=0.7,
                               migration_fraction=0.6, operators=OPERATORS, fitness=FitnessRule(threshold=0.5))
    ga = IslandGA(settings_, TOY, 11)
    ga.populations = [[],  # an empty source sends nobody; the others still do
                      [member((1, 0, 0), 0.9, 30), member((1, 0, 1), 0.8, 10), member((1, 0, 2), 0.95, 20)],
                      [member((2, 0, 0), 0.6, 5, birth=1), member((2, 0, 1), 0.7, 7)]]
    before = [list(members) for members in ga.populations]
    pairs, m_l = migration_plan(3, 1, 0)
    expected = []
    for source, destination in pairs:
        members = before[source]
        if not members:
            continue
        mode = ga.rule.secondary_mode([m.metrics for m in members])
        candidates = pop.ranked(ga.rule, members, mode)[: share_count(0.7, len(members))]
        weights = [ga.rule.weight(members[i].metrics, mode) for i in candidates]
        count = min(share_count(0.6, 3), len(candidates))
        for pick in roulette_sample(weights, count, rng_for(11, source, 2, "migrate")):
            expected.append((source, destination, members[candidates[pick]]))
    ga._migrate(2)
    assert ga.m_l == m_l and len(expected) == 3
    events = [{k: e[k] for k in ("type", "generation", "from", "to", "key", "genome")} for e in ga.events]
    assert events == [{"type": "migration", "generation": 2, "from": s, "to": d, "key": list(m.key),
                       "genome": str(m.genome)} for s, d, m in expected]
    # island 2 held two of three: the first migrant fills it; all are above 0.5 there, so the next one
    # replaces the biggest, the first migrant (10 parameters or more against 5 and 7)
    arrivals = [e for e in ga.events if e["to"] == 2]
    assert [e["replaced"] for e in arrivals] == [None, arrivals[0]["key"]]
    assert [(m.key, m.origin) for m in ga.populations[2]] == [((2, 0, 0), 2), ((2, 0, 1), 2),
                                                              (tuple(arrivals[1]["key"]), 1)]


def test_receiving_migrants_replaces_the_worst_by_the_destination_mode_and_keeps_the_origin():
    ga = IslandGA(IslandSettings(islands=2, population=2, fitness=FitnessRule(threshold=0.5)), TOY, 0)
    ga.populations[1] = [member((1, 0, 0), 0.9, 5)]
    migrant = member((0, 0, 3), 0.7, 50, birth=2)
    assert ga._receive_migrant(1, migrant) is None
    assert [(m.key, m.birth, m.origin) for m in ga.populations[1]] == [((1, 0, 0), 0, 1), ((0, 0, 3), 2, 0)]
    replaced = ga._receive_migrant(1, member((0, 0, 4), 0.6, 1))  # the 50-parameter migrant is the worst now
    assert replaced.key == (0, 0, 3)


def test_worst_living_is_none_until_full_then_the_worst_by_the_island_mode():
    ga = IslandGA(IslandSettings(islands=2, population=2, fitness=FitnessRule(threshold=0.5)), TOY, 0)
    ga.populations[1] = [member((1, 0, 0), 0.9, 50)]
    assert ga.worst_living(1) is None
    ga.populations[1].append(member((1, 0, 1), 0.8, 10))
    assert ga.worst_living(1) == (1, 0, 0)  # both above 0.5: the bigger one is the worst
    ga.populations[1][1] = member((1, 0, 1), 0.4, 10)
    assert ga.worst_living(1) == (1, 0, 1)
    # Among some members only (the stop rule compares like with like), in the whole island's mode.
    assert ga.worst_living(1, among=lambda key: key != (1, 0, 1)) == (1, 0, 0)
    assert ga.worst_living(1, among=lambda key: False) is None
    assert ga.living() == [(0, -1, []), (1, -1, [(1, 0, 0), (1, 0, 1)])]
    assert all(type(key) is tuple for key in ga.living()[1][2])


def test_insertion_reports_entry_and_compares_in_the_population_mode():
    ga = IslandGA(IslandSettings(islands=1, population=2, fitness=FitnessRule(threshold=0.5)), TOY, 0)
    assert ga._insert_if_better(0, member((0, 0, 0), 0.9, 50))  # not full: it enters
    assert ga._insert_if_better(0, member((0, 0, 1), 0.8, 40))
    assert not ga._insert_if_better(0, member((0, 1, 0), 0.95, 60))  # above the threshold but bigger than the worst
    assert ga._insert_if_better(0, member((0, 1, 1), 0.95, 45))
    assert [m.key for m in ga.populations[0]] == [(0, 1, 1), (0, 0, 1)]
    aging = IslandGA(IslandSettings(islands=1, population=2, replacement="aging"), TOY, 0)
    aging.populations[0] = [member((0, 3, 0), 0.9, 5, birth=3), member((0, 1, 0), 0.9, 5, birth=1)]
    assert aging._insert_if_better(0, member((0, 4, 0), 0.1, 5, birth=4))  # the oldest leaves, not the first
    assert [m.key for m in aging.populations[0]] == [(0, 3, 0), (0, 4, 0)]


def test_parents_need_an_age_of_at_least_min_parent_age():
    ga = IslandGA(IslandSettings(islands=1, population=2, min_parent_age=2), TOY, 0)
    members = [member((0, 1, 0), 0.5, 1, birth=1), member((0, 2, 0), 0.5, 2, birth=2), member((0, 0, 0), 0.5, 3)]
    assert ga._eligible(members, 3) == [members[0], members[2]]  # age 2 is old enough, age 1 is not


def test_settings_refuse_impossible_values_with_exact_messages():
    IslandSettings(generations=0)  # the smallest it accepts
    for name in ("islands", "population", "offspring_per_generation", "min_parent_age", "migration_period",
                 "migration_datasets"):
        with pytest.raises(ValueError, match=f"^{name} must be at least 1$"):
            IslandSettings(**{name: 0})
    with pytest.raises(ValueError, match="^" + re.escape("generations must be >= 0") + "$"):
        IslandSettings(generations=-1)


@pytest.mark.parametrize("generation", [2, 4, 6, 8])
def test_migrants_are_drawn_from_their_stream_by_the_source_mode_weights(generation):
    # five candidates of six, four drawn: the order of the draws tells the stream and the weights apart
    ga = IslandGA(IslandSettings(islands=2, population=6, generations=10, migration_period=2, migration_candidates=0.8,
                                 migration_fraction=0.6, operators=OPERATORS, fitness=FitnessRule(threshold=0.5)),
                  TOY, 5)
    ga.populations[0] = [member((0, 0, i), 0.6 + 0.05 * i, 60 - 9 * i) for i in range(6)]  # secondary mode
    members = list(ga.populations[0])
    candidates = pop.ranked(ga.rule, members, True)[:5]
    picks = roulette_sample([1 / members[i].metrics["params"] for i in candidates], 4,
                            rng_for(5, 0, generation, "migrate"))
    ga._migrate(generation)
    assert [e["key"] for e in ga.events if e["from"] == 0] == [list(members[candidates[p]].key) for p in picks]
