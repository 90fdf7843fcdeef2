"""Klos's fitness rule at its edges: the exact threshold, roulette weights (Eq. 1), the test-metric
guard, missing metrics and the configuration section it is built from."""

from __future__ import annotations

import math

import pytest

from nascli.ga.fitness import FitnessRule, MissingMetric, has_metrics, metric_value

RULE = FitnessRule(primary="val_accuracy", threshold=0.5, secondary="params")


def test_a_test_metric_is_refused_by_name():
    with pytest.raises(ValueError) as info:
        metric_value({"test_accuracy": 0.9}, "test_accuracy")
    assert str(info.value) == "test_accuracy is a test metric; selection never uses the test set"


def test_a_missing_metric_names_the_stored_column_it_is_read_from():
    with pytest.raises(MissingMetric) as info:
        metric_value({"val_accuracy": 0.9}, "inverse_val_loss")
    assert info.value.args == ("val_loss",)
    assert has_metrics({"val_accuracy": 0.9, "params": 10}, ["val_accuracy", "params"])
    assert not has_metrics({"val_accuracy": 0.9}, ["val_accuracy", "params"])


def test_an_unknown_primary_or_secondary_metric_is_refused_with_the_choices():
    with pytest.raises(ValueError) as primary:
        FitnessRule(primary="val_loss")
    assert str(primary.value) == ("fitness.primary must be one of ('val_accuracy', 'inverse_val_loss'), "
                                  "not 'val_loss'")
    with pytest.raises(ValueError) as secondary:
        FitnessRule(secondary="val_accuracy")
    assert str(secondary.value) == ("fitness.secondary must be one of ('params', 'flops', 'latency_ms'), "
                                    "not 'val_accuracy'")
    for primary, secondary in [("inverse_val_loss", "flops"), ("val_accuracy", "latency_ms")]:
        assert FitnessRule(primary=primary, secondary=secondary).primary == primary


def test_the_rule_is_built_from_its_config_section_with_the_documented_defaults():
    assert FitnessRule.from_section({}) == FitnessRule("val_accuracy", None, "params")
    assert FitnessRule.from_section({"primary": "inverse_val_loss", "threshold": 0.7, "secondary": "flops"}) == \
        FitnessRule("inverse_val_loss", 0.7, "flops")


def test_secondary_mode_starts_only_when_the_worst_is_strictly_above_the_threshold():
    at = [{"val_accuracy": 0.5}, {"val_accuracy": 0.9}]
    above = [{"val_accuracy": 0.51}, {"val_accuracy": 0.9}]
    assert not RULE.secondary_mode(at)
    assert RULE.secondary_mode(above)
    assert not RULE.secondary_mode([])
    assert not FitnessRule(threshold=None).secondary_mode(above)


def test_in_secondary_mode_an_individual_at_the_threshold_is_below_it():
    at_threshold = {"val_accuracy": 0.5, "params": 10}
    above_but_large = {"val_accuracy": 0.51, "params": 10_000}
    assert RULE.key(at_threshold, True) == (0.0, -10)
    assert RULE.key(above_but_large, True) == (1.0, -10_000)
    assert RULE.key(above_but_large, True) > RULE.key(at_threshold, True)
    assert RULE.key(at_threshold, False) == (0.5,)


def test_roulette_weight_is_the_primary_value_or_one_over_the_secondary():
    assert RULE.weight({"val_accuracy": 0.75, "params": 400}, False) == 0.75
    assert RULE.weight({"val_accuracy": 0.75, "params": 400}, True) == 1 / 400
    assert RULE.weight({"val_accuracy": 0.75, "params": 0}, True) == 1e12  # never a division by zero
    for unusable in (0.0, -0.25, math.inf):
        assert RULE.weight({"val_accuracy": unusable}, False) == 0.0
    inverse = FitnessRule(primary="inverse_val_loss")
    assert inverse.weight({"val_loss": 0.25}, False) == 4.0
