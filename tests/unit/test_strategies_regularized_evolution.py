"""Regularized evolution, exactly: each child from its documented stream and the population it saw,
the population the newest P successful members in arrival order, the snapshot field by field."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_strategies_support import TOY, evaluate

from nascli.ga.fitness import FitnessRule
from nascli.ga.rng import rng_for
from nascli.ga.selection import choose_operator, tournament_index
from nascli.ga.strategies.base import Member, Outcome, Proposal
from nascli.ga.strategies.mu_plus_lambda import mutation_table
from nascli.ga.strategies.regularized_evolution import RegularizedEvolution

OPERATORS = {"insert": 0.4, "delete": 0.3, "switch": 0.3}  # no adjust: toy_vary's fallback is adjust
BASE_KEYS = {"strategy", "seed", "finished", "evaluations", "failures", "outstanding", "events"}


def expected_child(key, population: list[Member], size: int, tournament: int, rule: FitnessRule, seed: int):
    """(genome, parents, operator) as the module docstring says: stream (seed, 0, c, "child", slot);
    random while fewer than P are held, else a mutation of the tournament's best."""
    rng = rng_for(seed, 0, key[1], "child", key[2])
    if len(population) < size:
        return TOY.random_init(rng), (), "init"
    mode = rule.secondary_mode([m.metrics for m in population])
    parent = population[tournament_index([rule.key(m.metrics, mode) for m in population], tournament, rng)]
    operator = choose_operator(mutation_table(OPERATORS), rng)
    return TOY.vary(operator, [parent.genome], rng), (parent.key,), operator


def outcome_of(proposal: Proposal, kind: str) -> Outcome:
    done = evaluate(proposal, fail_if=lambda g: False)
    if kind == "failed":
        return Outcome(proposal.key, "failed", {})
    if kind == "failed-with-metrics":  # a failure's metrics never count
        return Outcome(proposal.key, "failed", done.metrics)
    if kind == "missing-primary":
        return Outcome(proposal.key, "done", {k: v for k, v in done.metrics.items() if k != "val_accuracy"})
    return done


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), size=st.integers(1, 4), generations=st.integers(0, 7),
       tournament=st.integers(1, 5), threshold=st.sampled_from([None, 0.0, 0.3]), order_seed=st.integers(0, 10**6))
def test_children_populations_best_and_snapshot_are_exact(seed, size, generations, tournament, threshold, order_seed):
    rule = FitnessRule(threshold=threshold)
    strategy = RegularizedEvolution(size, generations, tournament, OPERATORS, TOY, seed, rule)
    order = random.Random(order_seed)
    population: list[Member] = []
    best: Member | None = None
    inflight: list[Proposal] = []
    told = issued = 0
    slots: dict[int, int] = {}
    while not strategy.finished:
        wanted = order.randint(0 if inflight else 1, 3)  # ask(0) makes nothing
        new = strategy.ask(wanted)
        assert len(new) == min(wanted, size + generations - issued)
        for proposal in new:
            slot = slots.get(told, 0)
            slots[told] = slot + 1
            assert proposal.key == (0, told, slot)
            assert (proposal.genome, proposal.parents, proposal.operator) == expected_child(
                proposal.key, population, size, tournament, rule, seed)
        issued += len(new)
        inflight.extend(new)
        proposal = inflight.pop(order.randrange(len(inflight)))
        outcome = outcome_of(proposal, order.choice(["done", "done", "failed", "failed-with-metrics",
                                                     "missing-primary"]))
        strategy.tell(outcome)
        told += 1
        if outcome.status == "done" and "val_accuracy" in outcome.metrics:
            member = Member(proposal.key, proposal.genome, dict(outcome.metrics), told, 0)
            population = [*population, member][-size:]  # aging: the oldest goes, whatever its fitness
            if best is None or member.metrics["val_accuracy"] > best.metrics["val_accuracy"]:
                best = member
        mode = rule.secondary_mode([m.metrics for m in population])
        state = strategy.snapshot()
        assert set(state) == BASE_KEYS | {"issued", "budget", "population_size", "population", "best"}
        assert {key: state[key] for key in ("issued", "budget", "population_size", "population", "best")} == {
            "issued": issued, "budget": size + generations, "population_size": size,
            "population": [m.to_json(fitness=list(rule.key(m.metrics, mode))) for m in population],
            "best": best.to_json() if best else None}
    assert issued == size + generations


def test_ask_zero_makes_no_child_and_slots_restart_at_each_consumption_point():
    strategy = RegularizedEvolution(2, 2, 2, OPERATORS, TOY, seed=5)
    assert strategy.ask(0) == [] and strategy.snapshot()["issued"] == 0
    first = strategy.ask(2)
    assert [p.key for p in first] == [(0, 0, 0), (0, 0, 1)]
    strategy.tell(evaluate(first[0], fail_if=lambda g: False))
    assert strategy.ask(0) == [] and strategy.snapshot()["issued"] == 2
    assert [p.key for p in strategy.ask(1) + strategy.ask(1)] == [(0, 1, 0), (0, 1, 1)]
    assert strategy.ask(1) == [] and strategy.snapshot()["issued"] == 4  # the budget of 2 + 2 is spent


def test_best_is_the_first_of_equal_members_and_a_later_better_one_replaces_it():
    strategy = RegularizedEvolution(1, 2, 1, OPERATORS, TOY, seed=1)
    a, b, c = strategy.ask(3)
    strategy.tell(Outcome(a.key, "done", {"val_accuracy": 0.5}))
    strategy.tell(Outcome(b.key, "done", {"val_accuracy": 0.5}))
    assert strategy.snapshot()["best"]["key"] == list(a.key)
    assert [m["key"] for m in strategy.snapshot()["population"]] == [list(b.key)]  # aged out, still the best
    strategy.tell(Outcome(c.key, "done", {"val_accuracy": 0.6}))
    assert strategy.snapshot()["best"]["key"] == list(c.key)


def test_refuses_impossible_settings_with_one_message():
    RegularizedEvolution(1, 0, 1, OPERATORS, TOY, 1)  # the smallest it accepts
    message = re.escape("regularized evolution needs population >= 1, generations >= 0, tournament_size >= 1")
    for population, generations, tournament in [(0, 0, 1), (1, -1, 1), (1, 0, 0)]:
        with pytest.raises(ValueError, match=f"^{message}$"):
            RegularizedEvolution(population, generations, tournament, OPERATORS, TOY, 1)
