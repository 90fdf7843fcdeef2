"""Run-level stopping rules (nascli.run_stop): the pure decision, the ask cap, the stored clock and
the reason `nas report` shows."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nascli.run_stop import (
    BUDGET_SPENT,
    RULES,
    RunState,
    StopLimits,
    StopReason,
    children_allowed,
    describe_stop,
    stop_reason,
    stored_clock,
)

limits = st.builds(StopLimits, st.none() | st.integers(1, 50), st.none() | st.floats(0.001, 2.0),
                   st.none() | st.floats(0.0, 1.0))
states = st.builds(RunState, st.integers(0, 60), st.floats(0.0, 9000.0), st.none() | st.floats(0.0, 1.0))


def holds(limit: StopLimits, state: RunState) -> list[str]:
    """The rules that hold, written out independently of stop_reason."""
    rules = []
    if limit.target is not None and state.best_primary is not None and state.best_primary >= limit.target:
        rules.append("target")
    if limit.max_evaluations is not None and state.evaluations >= limit.max_evaluations:
        rules.append("max_evaluations")
    if limit.max_hours is not None and state.driving_seconds >= limit.max_hours * 3600:
        rules.append("max_hours")
    return rules


@given(limits, states)
def test_the_first_rule_that_holds_is_the_reason(limit, state):
    reason = stop_reason(limit, state)
    expected = holds(limit, state)
    assert (reason.rule if reason else None) == (expected[0] if expected else None)
    assert reason is None or reason.rule in RULES


@given(limits, states, st.integers(0, 30), st.integers(0, 30), st.floats(0, 3600))
def test_a_rule_that_holds_keeps_holding_as_the_stored_state_grows(limit, state, more, more_done, more_seconds):
    """What a resumed driver folds back only grows: a run a rule ended stays ended."""
    if stop_reason(limit, state) is None:
        return
    grown = RunState(state.evaluations + more_done, state.driving_seconds + more_seconds,
                     state.best_primary if state.best_primary is None else min(1.0, state.best_primary + more / 100))
    assert stop_reason(limit, grown) is not None


def test_no_limits_never_stop():
    assert not StopLimits().active
    assert stop_reason(StopLimits(), RunState(10**6, 10**9, 1.0)) is None


@given(st.integers(1, 40), st.integers(0, 60), st.none() | st.integers(0, 10))
def test_asks_never_issue_more_than_max_evaluations(maximum, issued, wanted):
    allowed = children_allowed(StopLimits(max_evaluations=maximum), issued, wanted)
    if issued >= maximum:
        assert allowed == 0
    elif wanted is None:
        assert allowed is None  # a synchronous generation is issued whole
    else:
        assert allowed == min(wanted, maximum - issued)
    assert children_allowed(StopLimits(), issued, wanted) == wanted


def test_the_stored_clock_is_the_largest_recorded_total():
    assert stored_clock([]) == 0.0
    assert stored_clock([{"seconds": 3.5}, {"seconds": 12.0}, {"seconds": 7}]) == 12.0


def test_the_reason_a_report_shows():
    payload = StopReason("max_evaluations", "15 evaluations finished, the limit is 15").payload()
    assert describe_stop("finished", payload) == "run.max_evaluations: 15 evaluations finished, the limit is 15"
    assert describe_stop("finished", None) == BUDGET_SPENT
    assert describe_stop("cancelled", None).startswith("cancelled")
    assert describe_stop("running", None) is None and describe_stop("interrupted", None) is None
