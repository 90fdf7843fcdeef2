"""Every strategy: determinism, fold/resume equivalence, tell-order independence (synchronous
ones), failures never enter, test metrics change nothing; plus per-strategy behaviour."""

from __future__ import annotations

import json

import pytest
from test_strategies_support import TOY, check_resume, complete_sections, drive, evaluate, genomes_by_key

from nascli.errors import ConfigError
from nascli.ga.strategies import STRATEGY_NAMES, make_strategy
from nascli.ga.strategies.base import Outcome, Proposal
from nascli.ga.strategies.linas import LINAS
from nascli.ga.strategies.mu_plus_lambda import MuPlusLambda
from nascli.ga.strategies.nsga2 import NSGA2
from nascli.ga.strategies.regularized_evolution import RegularizedEvolution

SECTIONS = {
    "ga": {"islands": 2, "population": 5, "generations": 6, "offspring_per_generation": 3, "tournament_size": 2,
           "operators": {"insert": 0.3, "switch": 0.1, "delete": 0.1, "adjust": 0.3, "crossover": 0.2}},
    "migration": {"period": 2, "candidates": 0.3, "fraction": 0.2, "datasets": 1},
    "fitness": {"primary": "val_accuracy", "threshold": None, "secondary": "params"},
    "nsga2": {"objectives": ["val_accuracy", "params"]},
    "linas": {"predictor": "ridge", "predictor_generations": 4, "evaluations_per_iteration": 5, "iterations": 4},
}


def make(name: str, seed: int = 3, **changes):
    sections = {k: dict(v) for k, v in SECTIONS.items()}
    for dotted, value in changes.items():
        table, key = dotted.split("__")
        sections[table][key] = value
    sections["run"] = {"strategy": name, "seed": seed}
    return make_strategy(complete_sections(sections), TOY)


def fail_some(proposal: Proposal) -> Outcome:
    return evaluate(proposal, fail_if=lambda g: sum(g) % 4 == 0)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_same_seed_same_proposals_and_state(name):
    a, b, c = make(name), make(name), make(name, seed=4)
    log_a = drive(a, evaluator=fail_some, order_seed=None if a.asynchronous else 1)
    log_b = drive(b, evaluator=fail_some, order_seed=None if b.asynchronous else 2)
    log_c = drive(c, evaluator=fail_some)
    assert a.finished and b.finished
    assert genomes_by_key(log_a) == genomes_by_key(log_b)
    assert a.snapshot() == b.snapshot()
    assert genomes_by_key(log_a) != genomes_by_key(log_c)
    json.dumps(a.snapshot())


@pytest.mark.parametrize("name", [n for n in STRATEGY_NAMES if n != "regularized-evolution"])
def test_synchronous_tell_order_never_changes_a_decision(name):
    logs = []
    for order_seed in (10, 11, 12):
        strategy = make(name)
        logs.append((drive(strategy, workers=4, order_seed=order_seed, evaluator=fail_some), strategy.snapshot()))
    assert [o.key for o in logs[0][0].outcomes] != [o.key for o in logs[1][0].outcomes]
    assert genomes_by_key(logs[0][0]) == genomes_by_key(logs[1][0]) == genomes_by_key(logs[2][0])
    assert logs[0][1] == logs[1][1] == logs[2][1]


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_test_metrics_never_influence_decisions(name):
    a, b = make(name), make(name)
    log_a = drive(a, order_seed=5)
    log_b = drive(b, order_seed=5, evaluator=lambda p: evaluate(p, test_offset=-0.7))
    assert genomes_by_key(log_a) == genomes_by_key(log_b)
    assert a.events == b.events


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_resume_from_log_at_several_cut_points(name):
    full = make(name)
    log = drive(full, workers=3, order_seed=7, evaluator=fail_some)
    total = len(log.outcomes)
    for cut in sorted({0, 1, 2, total // 3, total // 2, total - 1, total}):
        check_resume(lambda: make(name), full, log, cut, fail_some)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_failed_outcomes_never_enter(name):
    strategy = make(name)
    log = drive(strategy, evaluator=fail_some)
    failed = {o.key for o in log.outcomes if o.status == "failed"}
    assert failed
    text = json.dumps({k: v for k, v in strategy.snapshot().items() if k not in ("events", "outstanding")})
    for key in failed:
        assert json.dumps(list(key)) not in text


def test_unknown_strategy_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown strategy"):
        make("hill-climbing")


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="nsga2"):
        make("nsga2", nsga2__objectives=["val_accuracy"])


# -- regularized evolution ------------------------------------------------------------------
def test_regularized_evolution_budget_aging_and_tournament():
    strategy = RegularizedEvolution(3, 10, 2, {"adjust": 1.0}, TOY, seed=0)
    first = strategy.ask(5)
    assert [p.key for p in first] == [(0, 0, s) for s in range(5)] and all(p.operator == "init" for p in first)
    for proposal in first:
        strategy.tell(evaluate(proposal, fail_if=lambda g: False))
    assert len(strategy.population) == 3  # five arrived, the two oldest were discarded
    assert [m.key for m in strategy.population] == [(0, 0, 2), (0, 0, 3), (0, 0, 4)]
    child = strategy.ask(1)[0]
    assert child.key == (0, 5, 0) and child.operator == "adjust"
    assert child.parents[0] in {m.key for m in strategy.population}
    log = drive(strategy, workers=2, order_seed=None)
    assert len(first) + 1 + len(log.proposals) == 13 and strategy.finished


def test_regularized_evolution_resume_keeps_in_flight_children():
    full = RegularizedEvolution(4, 12, 2, {"adjust": 0.5, "insert": 0.5}, TOY, seed=9)
    log = drive(full, workers=4, order_seed=3)
    for cut in (3, 5, 9, 14):
        check_resume(lambda: RegularizedEvolution(4, 12, 2, {"adjust": 0.5, "insert": 0.5}, TOY, seed=9),
                     full, log, cut,
                     workers=4)


# -- mu + lambda ----------------------------------------------------------------------------
def test_mu_plus_lambda_keeps_the_best_mu_and_avoids_duplicates():
    strategy = MuPlusLambda(4, 6, 5, {"adjust": 1.0, "crossover": 0.0}, TOY, seed=2)
    log = drive(strategy)
    by_generation: dict[int, list] = {}
    for p in log.proposals:
        by_generation.setdefault(p.key[1], []).append(p.genome)
    for genomes in by_generation.values():
        assert len(genomes) == len(set(genomes))  # no duplicate within a generation
    accs = {o.key: o.metrics.get("val_accuracy") for o in log.outcomes}
    kept = [tuple(m["key"]) for m in strategy.snapshot()["population"]]
    assert len(kept) == 4
    assert sorted(accs[k] for k in kept) == sorted(a for a in accs.values() if a is not None)[-4:]


def test_mu_plus_lambda_forces_crossover():
    log = drive(MuPlusLambda(3, 9, 1, {"adjust": 1.0}, TOY, seed=1))
    children = [p for p in log.proposals if p.key[1] == 1]
    assert 0 < len(children) <= 9
    crossovers = [p for p in children if p.operator == "crossover"]
    assert crossovers and all(len(p.parents) == 2 and p.parents[0] != p.parents[1] for p in crossovers)
    assert all(len(p.parents) == 1 for p in children if p.operator == "adjust")


# -- NSGA-II and LINAS ------------------------------------------------------------------------
def test_nsga2_population_is_the_best_fronts_and_reports_hypervolume():
    strategy = NSGA2(6, 4, ["val_accuracy", "params"], {"adjust": 0.5, "crossover": 0.5}, TOY, seed=0)
    log = drive(strategy)
    snap = strategy.snapshot()
    assert len(snap["population"]) == 6 and 0 < snap["hypervolume"] <= 1.1 ** 2
    points = {tuple(m["key"]): (m["metrics"]["val_accuracy"], m["metrics"]["params"]) for m in snap["population"]}
    front = {tuple(m["key"]) for m in snap["front"]}
    assert front
    for key, (acc, params) in points.items():  # front = exactly the non-dominated population members
        dominated = any(a >= acc and p <= params and (a, p) != (acc, params) for a, p in points.values())
        assert dominated == (key not in front)
    assert len(log.proposals) == 6 * 5


def test_linas_uses_predictions_after_the_first_iteration():
    strategy = LINAS(5, 4, 3, "svr", ["val_accuracy", "params"], {"insert": 0.5, "crossover": 0.5}, TOY, seed=0)
    log = drive(strategy)
    operators = {p.key[1]: p.operator for p in log.proposals}
    assert operators[0] == "init" and "predicted" in {p.operator for p in log.proposals if p.key[1] >= 1}
    genomes = [p.genome for p in log.proposals]
    assert len(genomes) == len(set(genomes))  # never re-proposes an evaluated genome
    snap = strategy.snapshot()
    assert snap["prediction_errors"] and snap["hypervolume"] is not None


def test_linas_without_features_is_rejected():
    from nascli.ga.strategies.base import Variation

    with pytest.raises(ValueError, match="features"):
        LINAS(5, 2, 2, "ridge", ["val_accuracy", "params"], {"adjust": 1.0},
              Variation(TOY.vary, TOY.random_init), seed=0)


def living_from_snapshot(snapshot: dict) -> list:
    """What the driver mirrored before `living()` existed: islands, generations, members' keys."""
    islands = snapshot.get("islands") or [{"island": 0, "generation": snapshot.get("generation", 0),
                                           "population": snapshot.get("population", [])}]
    return [(i["island"], i.get("generation"), [tuple(m["key"]) for m in i.get("population", [])]) for i in islands]


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_living_is_the_snapshot_population_at_every_step(name):
    strategy = make(name)
    checked = []

    def check_then_evaluate(proposal: Proposal) -> Outcome:
        assert strategy.living() == living_from_snapshot(strategy.snapshot())
        checked.append(proposal.key)
        return fail_some(proposal)

    drive(strategy, evaluator=check_then_evaluate)
    assert strategy.living() == living_from_snapshot(strategy.snapshot())
    assert len(checked) > 10


@pytest.mark.parametrize("name", STRATEGY_NAMES)
@pytest.mark.parametrize("generations", [0, 1, 6])
def test_planned_evaluations_is_what_the_strategy_proposes(name, generations):
    """The live view's budget bar: the planned count equals the proposals a whole run makes."""
    from nascli.ga.strategies import planned_evaluations

    sections = {k: dict(v) for k, v in SECTIONS.items()}
    sections["ga"]["generations"] = generations
    sections = complete_sections({**sections, "run": {"strategy": name, "seed": 3}})
    log = drive(make_strategy(sections, TOY), evaluator=fail_some)
    assert planned_evaluations(sections) == len(log.proposals)


def test_nsga2_children_come_from_their_documented_streams_and_evaluated_parents():
    from nascli.ga.rng import rng_for

    strategy = make("nsga2")
    log = drive(strategy, evaluator=fail_some)
    done = {o.key for o in log.outcomes if o.status == "done"}
    first = [p for p in log.proposals if p.key[1] == 0]
    assert [p.key for p in first] == [(0, 0, slot) for slot in range(5)]
    for p in first:  # island 0, the generation, "vary", the slot: the stream a resume replays
        assert (p.genome, p.parents, p.operator) == (TOY.random_init(rng_for(3, 0, 0, "vary", p.key[2])), (), "init")
    later = [p for p in log.proposals if p.key[1] > 0]
    assert later and {p.operator for p in later} <= set(SECTIONS["ga"]["operators"])
    assert all(p.parents and set(p.parents) <= done and all(k[1] < p.key[1] for k in p.parents) for p in later)
    snapshot = strategy.snapshot()
    best = max(snapshot["population"], key=lambda m: m["metrics"]["val_accuracy"])
    assert snapshot["best"] == best


def test_nsga2_starts_again_from_random_genomes_when_a_whole_generation_failed():
    strategy = make("nsga2", ga__generations=1)
    log = drive(strategy, evaluator=lambda p: Outcome(p.key, "failed", {}))
    assert [p.operator for p in log.proposals] == ["init"] * 10 and all(p.parents == () for p in log.proposals)
    assert strategy.snapshot()["best"] is None and strategy.snapshot()["population"] == []


def test_nsga2_without_a_primary_objective_names_no_best():
    strategy = make("nsga2", nsga2__objectives=["params", "flops"])
    drive(strategy, evaluator=fail_some)
    assert strategy.snapshot()["population"] and strategy.snapshot()["best"] is None


def test_nsga2_refuses_impossible_settings_and_test_metric_objectives():
    operators = SECTIONS["ga"]["operators"]
    NSGA2(1, 0, ["val_accuracy", "params"], operators, TOY, 1)  # the smallest it accepts
    for population, generations, objectives in [(0, 1, ["val_accuracy", "params"]), (2, -1, ["val_accuracy", "params"]),
                                                (2, 1, ["val_accuracy"])]:
        with pytest.raises(ValueError, match=r"^nsga2 needs population >= 1, generations >= 0 and at least two "
                                             r"objectives$"):
            NSGA2(population, generations, objectives, operators, TOY, 1)
    with pytest.raises(ValueError, match=r"^objectives must not use test metrics$"):
        NSGA2(2, 1, ["test_accuracy", "params"], operators, TOY, 1)


def test_nsga2_snapshot_names_its_generation_objectives_members_and_reference():
    strategy = make("nsga2")

    def failed_with_metrics(proposal: Proposal) -> Outcome:  # a failure's metrics never count
        outcome = evaluate(proposal, fail_if=lambda g: False)
        return Outcome(proposal.key, "failed", outcome.metrics) if sum(proposal.genome) % 3 == 0 else outcome

    log = drive(strategy, evaluator=failed_with_metrics)
    failed = {o.key for o in log.outcomes if o.status == "failed"}
    snapshot = strategy.snapshot()
    assert failed and snapshot["generation"] == 6 and snapshot["objectives"] == ["val_accuracy", "params"]
    assert set(snapshot["hypervolume_reference"]) == {"val_accuracy", "params"}  # in the objectives' own units
    members = snapshot["population"]
    assert members and all(tuple(m["key"]) not in failed and m["birth"] == m["key"][1] and m["origin"] == 0
                           for m in members)
