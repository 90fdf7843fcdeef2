"""nascli.metrics: the one ranking rule agrees with the strategies' fitness rule (Klos threshold mode
included), and the report's store query ranks by exactly that key."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nascli import metrics
from nascli.ga.fitness import FitnessRule, MissingMetric, metric_value
from nascli.metrics import Ranking

accuracy = st.floats(0.0, 1.0, allow_nan=False)
loss = st.floats(0.001, 5.0, allow_nan=False)
params = st.integers(1, 200_000)
result = st.fixed_dictionaries({"val_accuracy": accuracy, "val_loss": loss, "params": params,
                                "flops": params, "latency_ms": st.floats(0.01, 10.0)})
rules = st.builds(FitnessRule, primary=st.sampled_from(metrics.PRIMARY_METRICS),
                  threshold=st.one_of(st.none(), st.floats(0.0, 1.0)), secondary=st.sampled_from(metrics.COST_METRICS))


def ranking_of(rule: FitnessRule) -> Ranking:
    return Ranking(primary=rule.primary, threshold=rule.threshold, secondary=rule.secondary)


@settings(max_examples=300, deadline=None)
@given(rule=rules, population=st.lists(result, min_size=2, max_size=8))
def test_ranking_key_agrees_with_the_strategys_fitness_ordering(rule, population):
    """Every pair the strategy orders strictly, the ranking orders the same way: all pairs without a
    threshold or once the population switched to the secondary metric (its worst above the
    threshold, Klos), and in primary mode every pair with a result at or below the threshold."""
    ranking = ranking_of(rule)
    secondary_mode = rule.secondary_mode(population)
    for a, b in itertools.permutations(population, 2):
        if rule.key(a, secondary_mode) <= rule.key(b, secondary_mode):
            continue
        comparable = (rule.threshold is None or secondary_mode
                      or min(rule.primary_value(a), rule.primary_value(b)) <= rule.threshold)
        if comparable:
            assert ranking.key(a) > ranking.key(b), (a, b, secondary_mode)


@settings(max_examples=200, deadline=None)
@given(rule=rules, a=result, b=result)
def test_above_the_threshold_fewer_parameters_rank_first(rule, a, b):
    ranking = ranking_of(rule)
    if rule.threshold is None:
        return
    above = [r for r in (a, b) if rule.primary_value(r) > rule.threshold]
    below = [r for r in (a, b) if rule.primary_value(r) <= rule.threshold]
    for high, low in itertools.product(above, below):
        assert ranking.key(high) > ranking.key(low)
    if len(above) == 2 and a[rule.secondary] < b[rule.secondary]:
        assert ranking.key(a) > ranking.key(b)


def test_threshold_rank_one_is_the_small_network_the_search_keeps():
    ranking = Ranking(threshold=0.99)
    small, large = {"val_accuracy": 0.992, "params": 1_200}, {"val_accuracy": 0.997, "params": 45_000}
    assert ranking.key(small) > ranking.key(large)
    assert Ranking().key(large) > Ranking().key(small)  # no threshold: accuracy decides
    by_accuracy = Ranking(threshold=0.99, rank_by="val_accuracy")
    assert by_accuracy.key(large) > by_accuracy.key(small)


@given(result, st.sampled_from(metrics.RANKABLE))
def test_rank_by_follows_the_metrics_direction(row, name):
    better = dict(row)
    column = metrics.column_of(name)
    # a better value of the ranked metric: higher for maximised ones (inverse_val_loss: lower loss)
    step = -0.0005 if name == "inverse_val_loss" else (0.5 if metrics.is_maximised(name) else -0.5)
    better[column] = row[column] + step
    assert Ranking(rank_by=name).key(better) > Ranking(rank_by=name).key(row)


def test_derived_metrics_and_missing_values():
    assert metrics.value({"val_loss": 0.5}, "inverse_val_loss") == 2.0
    assert metrics.value({"val_loss": float("nan")}, "inverse_val_loss") is None
    assert Ranking().key({"params": 3}) is None  # no primary: not ranked
    with pytest.raises(MissingMetric):
        metric_value({}, "inverse_val_loss")
    assert metrics.is_maximised("inverse_val_loss") and not metrics.is_maximised("val_loss")
    with pytest.raises(ValueError):
        Ranking(rank_by="test_accuracy")  # ranking never looks at the test set
