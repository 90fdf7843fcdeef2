"""Island GA (Klos): roulette, replacement only when better, threshold switch, min age,
migration, determinism, tell-order independence and resume by replay."""

from __future__ import annotations

import json

import pytest
from test_strategies_support import TOY, check_resume, drive, evaluate, genomes_by_key

from nascli.ga.fitness import FitnessRule
from nascli.ga.strategies.base import Member, Outcome, Variation
from nascli.ga.strategies.island_ga import IslandGA, IslandSettings


def small(**overrides) -> IslandSettings:
    values = dict(islands=3, population=5, generations=12, offspring_per_generation=2, migration_period=4,
                  migration_fraction=0.2, fitness=FitnessRule(threshold=None))
    values.update(overrides)
    return IslandSettings(**values)


def run(settings: IslandSettings, seed: int = 1, **drive_args):
    strategy = IslandGA(settings, TOY, seed)
    log = drive(strategy, **drive_args)
    return strategy, log


def test_initial_population_is_generation_zero_slots_per_island():
    strategy = IslandGA(small(), TOY, 3)
    keys = [p.key for p in strategy.ask()]
    assert keys == [(i, 0, s) for i in range(3) for s in range(5)]
    assert strategy.ask() == []  # nothing new while waiting
    assert all(p.operator == "init" for p in strategy.outstanding)


def test_run_finishes_with_full_budget_and_json_snapshot():
    strategy, log = run(small())
    assert strategy.finished
    # 3 islands x (5 initial + 12 generations x 2 children)
    assert len(log.proposals) == 3 * (5 + 12 * 2)
    snap = strategy.snapshot()
    json.dumps(snap)
    assert [isl["generation"] for isl in snap["islands"]] == [12, 12, 12]
    assert all(len(isl["population"]) <= 5 for isl in snap["islands"])
    # migrations after generations 4 and 8 (not 12, the last): ring 0->1->2->0, 1 migrant each
    migrations = snap["migrations"]
    assert sorted({m["generation"] for m in migrations}) == [4, 8]
    assert {(m["from"], m["to"]) for m in migrations} == {(0, 1), (1, 2), (2, 0)}


def test_same_seed_same_run_different_seed_differs():
    a, log_a = run(small(), seed=5)
    b, log_b = run(small(), seed=5, order_seed=99)
    c, log_c = run(small(), seed=6)
    assert genomes_by_key(log_a) == genomes_by_key(log_b)
    assert a.snapshot()["islands"] == b.snapshot()["islands"]
    assert a.events == b.events
    assert genomes_by_key(log_a) != genomes_by_key(log_c)


def test_failed_outcomes_never_enter_a_population():
    strategy, log = run(small(), evaluator=lambda p: evaluate(p, fail_if=lambda g: sum(g) % 3 == 0))
    failed = {o.key for o in log.outcomes if o.status == "failed"}
    assert failed
    members = {tuple(m["key"]) for isl in strategy.snapshot()["islands"] for m in isl["population"]}
    assert not members & failed


def test_test_accuracy_changes_nothing():
    a, log_a = run(small(), seed=2)
    b, log_b = run(small(), seed=2, evaluator=lambda p: evaluate(p, test_offset=-0.5))
    assert genomes_by_key(log_a) == genomes_by_key(log_b)
    assert a.events == b.events


@pytest.mark.parametrize("cut", [0, 1, 7, 15, 40, 61, 80, 86])
def test_resume_by_replay_matches_uninterrupted_run(cut):
    settings = small()
    full, log = run(settings, seed=11)
    check_resume(lambda: IslandGA(settings, TOY, 11), full, log, cut)


def toy_member(key, acc, params, birth=0):
    return Member(key, (params,), {"val_accuracy": acc, "params": params}, birth, key[0])


def _one_island(**overrides) -> IslandGA:
    return IslandGA(small(islands=1, **overrides), TOY, 0)


def test_child_replaces_worst_only_when_strictly_better():
    ga = _one_island(population=3)
    ga.populations[0] = [toy_member((0, 0, 0), 0.5, 10), toy_member((0, 0, 1), 0.3, 10), toy_member((0, 0, 2), 0.7, 10)]
    assert not ga._insert_if_better(0, toy_member((0, 1, 0), 0.3, 1))  # equal to the worst: kept out
    assert [m.metrics["val_accuracy"] for m in ga.populations[0]] == [0.5, 0.3, 0.7]
    assert ga._insert_if_better(0, toy_member((0, 1, 1), 0.31, 1))
    assert [m.metrics["val_accuracy"] for m in ga.populations[0]] == [0.5, 0.31, 0.7]


def test_threshold_switches_to_parameter_count():
    ga = IslandGA(small(islands=1, population=2, fitness=FitnessRule(threshold=0.9)), TOY, 0)
    ga.populations[0] = [toy_member((0, 0, 0), 0.95, 100), toy_member((0, 0, 1), 0.92, 50)]
    # worst (0.92) exceeds 0.9: parameters decide; the 100-parameter member is the worst
    assert ga._insert_if_better(0, toy_member((0, 1, 0), 0.91, 60))
    assert sorted(m.metrics["params"] for m in ga.populations[0]) == [50, 60]
    # a smaller child below the threshold is not better than anyone above it
    assert not ga._insert_if_better(0, toy_member((0, 1, 1), 0.5, 1))
    # below the threshold accuracy decides: a more accurate but bigger child wins
    ga.populations[0] = [toy_member((0, 0, 0), 0.95, 100), toy_member((0, 0, 1), 0.80, 50)]
    assert ga._insert_if_better(0, toy_member((0, 1, 2), 0.85, 1000))
    assert sorted(m.metrics["val_accuracy"] for m in ga.populations[0]) == [0.85, 0.95]


def test_min_parent_age_excludes_young_members():
    seen: list = []

    def vary(operator, parents, rng):
        seen.extend(parents)
        return parents[0]

    ga = IslandGA(small(islands=1, population=4, min_parent_age=3,
                        operators={"adjust": 1.0}), Variation(vary, TOY.random_init), 0)
    ga.populations[0] = [toy_member((0, 0, 0), 0.2, 1, birth=0), toy_member((0, 5, 0), 0.9, 2, birth=5),
                         toy_member((0, 4, 0), 0.9, 3, birth=4), toy_member((0, 2, 0), 0.1, 4, birth=2)]
    ga.completed[0] = ga._issued[0] = 5
    for generation in range(6, 6 + 1):
        for slot in range(200):
            ga._child(0, generation, slot)
    # generation 6: ages 6, 1, 2, 4 -> only births 0 and 2 are old enough
    assert set(seen) == {(1,), (4,)}


def test_min_parent_age_falls_back_to_the_oldest():
    ga = _one_island(min_parent_age=5)
    members = [toy_member((0, 0, 0), 0.5, 1, birth=0), toy_member((0, 1, 0), 0.5, 2, birth=1)]
    assert ga._eligible(members, 2) == [members[0]]


def test_roulette_parent_frequencies_follow_fitness():
    picks: list = []
    ga = IslandGA(small(islands=1, population=3, operators={"adjust": 1.0}),
                  Variation(lambda op, parents, rng: picks.append(parents[0]) or parents[0], TOY.random_init), 0)
    accs = [0.1, 0.3, 0.6]
    ga.populations[0] = [toy_member((0, 0, i), a, i + 1) for i, a in enumerate(accs)]
    draws = 6000
    for slot in range(draws):
        ga._child(0, 1, slot)
    counts = [picks.count((i + 1,)) for i in range(3)]
    chi2 = sum((c - draws * a) ** 2 / (draws * a) for c, a in zip(counts, accs))
    assert chi2 < 13.8  # chi-square, 2 degrees of freedom, p = 0.001


def test_outcome_for_unknown_key_is_rejected():
    ga = _one_island()
    ga.ask()
    with pytest.raises(ValueError, match="outstanding"):
        ga.tell(Outcome((0, 3, 0), "done", {"val_accuracy": 0.5}))


def test_real_operators_run_when_available():
    operators = pytest.importorskip("nascli.ga.operators")
    from nascli.ga.search_space import SearchSpace
    from nascli.ga.strategies import make_variation

    space = SearchSpace.from_dict({"layers": ["C", "P", "D"], "kernels": [1, 3], "strides": [1, 2],
                                   "filters": [4, 8], "dense_units": [16], "max_layers": 5, "max_params": 50_000})
    seed = operators.minimal_genome(8, 8, 1, 10)
    variation = make_variation(space, seed, init_mutations=20)
    strategy = IslandGA(small(islands=2, population=3, generations=4), variation, 0)
    log = drive(strategy, evaluator=lambda p: Outcome(p.key, "done", {
        "val_accuracy": min(0.99, 0.1 + 0.05 * len(p.genome.hidden)), "params": 1}))
    assert strategy.finished and len(log.proposals) == 2 * (3 + 4 * 2)
    json.dumps(strategy.snapshot())


def test_aging_replacement_keeps_the_newest_members_and_changes_the_run():
    klos, _ = run(small(migration_period=100))
    aging, _ = run(small(migration_period=100, replacement="aging"))
    assert klos.snapshot()["islands"] != aging.snapshot()["islands"]
    for island in aging.snapshot()["islands"]:  # 2 children per generation, 12 generations, 5 places
        births = sorted(member["key"][1] for member in island["population"])
        assert births == [10, 11, 11, 12, 12], births  # the 5 newest children; worst-if-better keeps older ones


def test_unknown_replacement_is_refused():
    with pytest.raises(ValueError, match="replacement"):
        small(replacement="oldest")
