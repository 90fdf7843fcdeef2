"""The stop rule's pure decision and median curve (hypothesis)."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nascli.stop_rule import StopCurves, median_curve, should_stop, stop_check, stop_epoch
from nascli.task import Result

accuracy = st.floats(0.0, 1.0, allow_nan=False)
curves = st.lists(accuracy, min_size=1, max_size=12)
margins = st.floats(0.0, 0.5, allow_nan=False)


def test_a_child_below_the_comparison_by_more_than_the_margin_stops_from_min_epochs_on():
    comparison = [0.5, 0.6, 0.7]
    assert should_stop([0.3], comparison, margin=0.1, min_epochs=1)
    assert not should_stop([0.3], comparison, margin=0.1, min_epochs=2)  # too early to judge
    assert not should_stop([0.45], comparison, margin=0.1, min_epochs=1)  # within the margin
    assert not should_stop([0.4], comparison, margin=0.1, min_epochs=1)  # exactly the margin: go on
    assert should_stop([0.3, 0.4], comparison, margin=0.1, min_epochs=2)
    assert not should_stop([0.3, 0.4, 0.5, 0.1], comparison, margin=0.1, min_epochs=1)  # past the comparison
    assert not should_stop([0.0], None, margin=0.0, min_epochs=1)


@given(curves, curves, margins, st.integers(1, 15))
def test_the_decision_reads_only_the_current_epoch(curve, comparison, margin, min_epochs):
    epoch = len(curve)
    stops = should_stop(curve, comparison, margin, min_epochs)
    expected = min_epochs <= epoch <= len(comparison) and curve[-1] < comparison[epoch - 1] - margin
    assert stops == expected
    # Earlier epochs do not matter; a higher current value never turns "go on" into "stop".
    assert should_stop([0.0] * (epoch - 1) + [curve[-1]], comparison, margin, min_epochs) == stops
    if not stops:
        assert not should_stop([*curve[:-1], min(1.0, curve[-1] + 0.1)], comparison, margin, min_epochs)


@given(curves, margins, st.integers(1, 15))
def test_a_child_never_stops_against_its_own_curve_or_a_larger_margin_of_a_go_on(curve, margin, min_epochs):
    for end in range(1, len(curve) + 1):
        assert not should_stop(curve[:end], curve, margin, min_epochs)
        if not should_stop(curve[:end], curve[::-1], margin, min_epochs):
            assert not should_stop(curve[:end], curve[::-1], margin + 0.1, min_epochs)


@given(curves, curves, margins, st.integers(1, 15), st.booleans())
def test_the_stop_epoch_is_the_first_epoch_the_decision_says_stop(curve, comparison, margin, min_epochs, to_end):
    at = stop_epoch(curve, comparison, margin, min_epochs, trained_to_end=to_end)
    checked = len(curve) - 1 if to_end else len(curve)  # the last epoch of a finished child is never checked
    decisions = [should_stop(curve[:epoch], comparison, margin, min_epochs) for epoch in range(1, checked + 1)]
    assert at == (decisions.index(True) + 1 if True in decisions else None)


class _Strategy:
    """A full island whose members, worst first, are `ranked` (one key: that member only)."""

    def __init__(self, *ranked):
        self.ranked = [key for key in ranked if key is not None]

    def worst_living(self, island, among=None):
        return next((key for key in self.ranked if among is None or among(key)), None)


def _train(rule="below-worst", margin=0.0, min_epochs=1):
    from nascli.config import TrainSection

    return TrainSection(stop_rule=rule, stop_margin=margin, stop_min_epochs=min_epochs)


def test_a_finished_duplicate_is_reused_only_when_its_stop_decision_is_this_childs():
    curves = StopCurves(_train(), _Strategy((0, 0, 1)))
    curves.tell((0, 0, 1), Result("done", val_accuracy=0.6, extra={"curve": [0.4, 0.5, 0.6]}))
    trained = Result("done", val_accuracy=0.7, extra={"curve": [0.5, 0.6, 0.7]})  # never below the worst
    stopped = Result("done", val_accuracy=0.3, extra={"curve": [0.3], "stopped_at_epoch": 1})
    stopped_later = Result("done", val_accuracy=0.45, extra={"curve": [0.45, 0.45], "stopped_at_epoch": 2})
    failed = Result.failure("invalid_genome", "bad")
    assert curves.reusable(trained, 0) and curves.reusable(stopped, 0) and curves.reusable(failed, 0)
    assert curves.reusable(stopped_later, 0)  # 0.45 >= 0.4 after epoch 1, then below 0.5: stops at 2 here too
    # Stopped at 2 against another comparison; against this one it stops at 1: train it again.
    assert not curves.reusable(Result("done", val_accuracy=0.3, extra={"curve": [0.3, 0.3], "stopped_at_epoch": 2}), 0)
    assert not curves.reusable(Result("done", val_accuracy=0.2, extra={"curve": [0.2, 0.1, 0.2]}), 0)
    assert curves.attach(_task(), 0).train["stop_curve"] == [0.4, 0.5, 0.6]
    nobody = StopCurves(_train(), _Strategy(None))  # a population not yet full: no comparison, no stop
    assert nobody.reusable(trained, 0) and not nobody.reusable(stopped, 0)
    assert "stop_curve" not in nobody.attach(_task(), 0).train
    off = StopCurves(_train("off"), _Strategy((0, 0, 1)))
    off.tell((0, 0, 1), Result("done", val_accuracy=0.6, extra={"curve": [0.4, 0.5, 0.6]}))
    assert off.reusable(stopped, 0) and off.attach(_task(), 0) == _task()


def test_the_median_rule_compares_with_every_finished_curve():
    curves = StopCurves(_train("median"), _Strategy(None))
    for index, curve in enumerate(([0.2, 0.4], [0.4, 0.6, 0.8], [0.6])):
        curves.tell((0, index, 0), Result("done", val_accuracy=max(curve), extra={"curve": curve}))
    curves.tell((0, 9, 0), Result.failure("crash", "x"))
    assert curves.comparison(0) == [0.4, 0.5, 0.8]


def test_a_child_is_compared_with_the_worst_member_trained_the_way_it_is():
    scratch, transferred = (0, 0, 2), (0, 0, 1)  # the transferred member is the island's worst
    curves = StopCurves(_train(), _Strategy(transferred, scratch))
    curves.tell(scratch, Result("done", val_accuracy=0.8, extra={"curve": [0.3, 0.6, 0.8]}))
    curves.tell(transferred, Result("done", val_accuracy=0.7, extra={
        "curve": [0.65, 0.7], "transfer": {"donor": 4, "layers": 2, "total_layers": 3, "params": 10}}))
    # Capped at the island's entry bar, the worst member's final 0.7: a child above it could enter.
    assert curves.comparison(0) == [0.3, 0.6, 0.7]
    assert curves.comparison(0, transferred=True) == [0.65, 0.7]
    train = curves.attach(_task(), 0).train
    assert (train["stop_curve"], train["stop_curve_transferred"]) == ([0.3, 0.6, 0.7], [0.65, 0.7])
    # The worker picks the curve that fits what it did: 0.5 after epoch 1 goes on from scratch,
    # stops from transferred weights.
    check = {**train, "stop_rule": "below-worst"}
    assert not stop_check(check)([0.5]) and stop_check(check, transferred=True)([0.5])
    no_transfer = {"transfer": {"donor": 4, "layers": 0, "total_layers": 3, "params": 0}}  # no common prefix
    assert curves.reusable(Result("done", val_accuracy=0.5, extra={"curve": [0.5, 0.5], **no_transfer}), 0)
    stopped = {"stopped_at_epoch": 1, "transfer": {"donor": 4, "layers": 1, "total_layers": 3, "params": 5}}
    assert curves.reusable(Result("done", val_accuracy=0.5, extra={"curve": [0.5], **stopped}), 0)
    only_scratch = StopCurves(_train(), _Strategy(scratch))
    only_scratch.tell(scratch, Result("done", val_accuracy=0.8, extra={"curve": [0.3, 0.6, 0.8]}))
    assert "stop_curve_transferred" not in only_scratch.attach(_task(), 0).train  # no such member: no stop
    assert only_scratch.comparison(0) == [0.3, 0.6, 0.8]  # the worst is the bar itself
    median = StopCurves(_train("median"), _Strategy())
    median.tell(scratch, Result("done", val_accuracy=0.8, extra={"curve": [0.3, 0.6, 0.8]}))
    median.tell(transferred, Result("done", val_accuracy=0.7, extra={
        "curve": [0.65, 0.7], "transfer": {"donor": 4, "layers": 2, "total_layers": 3, "params": 10}}))
    assert (median.comparison(0), median.comparison(0, True)) == ([0.3, 0.6, 0.8], [0.65, 0.7])


def _task():
    from nascli.task import Task

    return Task(genome="In_8_8:D_10", task={"kind": "synthetic"}, train={"epochs": 3})


@given(st.lists(curves, min_size=1, max_size=7))
def test_the_median_curve_is_each_epochs_median_of_the_curves_that_reach_it(many):
    median = median_curve(many)
    assert len(median) == max(len(curve) for curve in many)
    for epoch, value in enumerate(median):
        reaching = [curve[epoch] for curve in many if len(curve) > epoch]
        assert value == statistics.median(reaching)
        assert min(reaching) <= value <= max(reaching)
    assert median_curve(list(reversed(many))) == median  # the order of the curves does not matter


def test_no_curves_no_median():
    assert median_curve([]) == []


@given(st.lists(st.tuples(accuracy, st.booleans()), min_size=1, max_size=8))
def test_a_stopped_member_is_never_a_populations_best(members):
    from nascli.ga.fitness import FitnessRule
    from nascli.ga.strategies._population import best_member
    from nascli.ga.strategies.base import Member

    population = [Member((0, i, 0), f"g{i}", {"val_accuracy": value, **({"stopped_at_epoch": 2} if stopped else {})},
                         i, 0) for i, (value, stopped) in enumerate(members)]
    best = best_member(FitnessRule(), population)
    trained = [m for m in population if "stopped_at_epoch" not in m.metrics]
    if not trained:
        assert best is None
    else:
        assert best in trained and best.metrics["val_accuracy"] == max(m.metrics["val_accuracy"] for m in trained)


@pytest.mark.parametrize(("settings", "message"), [
    ({"run": {"strategy": "random"}, "train": {"stop_rule": "below-worst"}}, "below-worst needs a population"),
    ({"train": {"stop_rule": "median", "kfolds": 3}}, "needs one training per child"),
    ({"train": {"stop_rule": "median", "mode": "proxy"}}, "needs one training per child"),
    ({"train": {"stop_rule": "median"}, "fitness": {"primary": "inverse_val_loss"}}, "needs fitness.primary"),
])
def test_a_stop_rule_the_run_cannot_apply_is_refused(settings, message):
    from pydantic import ValidationError

    from nascli.config import RunConfig

    with pytest.raises(ValidationError, match=message):
        RunConfig.model_validate(settings)
    accepted = RunConfig.model_validate({"train": {"stop_rule": "below-worst", "stop_margin": 0.02}})
    assert (accepted.train.stop_rule, accepted.train.stop_margin) == ("below-worst", 0.02)


# ------------------------------------------------------------------ the worker's side, for real


@pytest.mark.slow
def test_digits_training_stops_a_child_below_the_comparison_and_records_its_curve():
    from test_train import digits_task

    from nascli.train.evaluate import evaluate

    hopeless = evaluate(digits_task(epochs=4, stop_rule="median", stop_min_epochs=2, stop_curve=[1.0] * 4))
    assert hopeless.status == "done", hopeless.error_message
    assert hopeless.extra["stopped_at_epoch"] == 2 == hopeless.epochs_run
    curve = hopeless.extra["curve"]
    assert len(curve) == 2 and hopeless.val_accuracy == pytest.approx(curve[hopeless.best_epoch - 1], abs=1e-6)
    # The rule off (the papers' setting; a stray comparison curve changes nothing): trained to the
    # end, the same curve as far as the stopped child went.
    plain = evaluate(digits_task(epochs=4, stop_curve=[1.0] * 4))
    assert "stopped_at_epoch" not in plain.extra and plain.epochs_run == 4
    assert plain.extra["curve"][:2] == curve
    assert plain.extra["curve"] == [round(record["val_accuracy"], 6) for record in plain.extra["history"]]


def test_the_synthetic_evaluator_stops_on_its_curve_and_spends_only_those_epochs():
    from nascli.task import Task
    from nascli.train.synthetic import evaluate_synthetic, synthetic_curve

    def synthetic_task(**train) -> Task:
        return Task(genome="In_8_8:C_3-3-1-1-16:D_10", task={"kind": "synthetic", "dataset": "synthetic"},
                    train={"epochs": 40, "patience": 6, **train}, search_space={"max_params": 100_000})

    full = evaluate_synthetic(synthetic_task())
    assert full.extra["curve"] == synthetic_curve(full.val_accuracy, full.best_epoch, full.epochs_run)
    assert full.extra["curve"][full.best_epoch - 1] == full.val_accuracy == max(full.extra["curve"])
    stopped = evaluate_synthetic(synthetic_task(stop_rule="below-worst", stop_margin=0.01, stop_min_epochs=3,
                                                stop_curve=[1.0] * 40))
    assert stopped.extra["stopped_at_epoch"] == 3 == stopped.epochs_run
    assert stopped.extra["curve"] == full.extra["curve"][:3] and stopped.val_accuracy == full.extra["curve"][2]
    assert stopped.test_accuracy < full.test_accuracy
    beaten = evaluate_synthetic(synthetic_task(stop_rule="below-worst", stop_curve=[0.0] * 40))
    assert "stopped_at_epoch" not in beaten.extra and beaten.val_accuracy == full.val_accuracy
    # A child that starts from transferred weights is held to the transferred comparison only.
    donor = b"In_8_8:C_3-3-1-1-16:D_1-1-1-1-32:D_10"
    both = {"stop_rule": "below-worst", "stop_min_epochs": 3, "transfer": "parent", "transfer_donor": 7,
            "stop_curve": [1.0] * 40}
    from_donor = evaluate_synthetic(synthetic_task(**both), donor_weights=donor)
    assert from_donor.extra["transfer"]["layers"] == 2 and "stopped_at_epoch" not in from_donor.extra
    held = evaluate_synthetic(synthetic_task(**both, stop_curve_transferred=[1.0] * 40), donor_weights=donor)
    assert held.extra["stopped_at_epoch"] == 3


@given(accuracy, st.integers(1, 10), st.sampled_from([None, 0.5]))
def test_the_ranking_gives_a_stopped_result_no_rank(value, epoch, threshold):
    from nascli.metrics import Ranking

    ranking = Ranking(threshold=threshold)
    assert ranking.key({"val_accuracy": value, "params": 10}) is not None
    assert ranking.key({"val_accuracy": value, "params": 10, "stopped_at_epoch": epoch}) is None
