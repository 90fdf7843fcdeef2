"""Property-based state machine of the lease rules (hypothesis), on SQLite with a controllable clock.

Whatever the interleaving of claims, heartbeats, completions, releases, reaps and time passing:
at most one claim per evaluation is valid, only the valid holder's writes land, fencing tokens
(attempts) never decrease or repeat, a live lease is never taken, and finished rows never change.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from nascli.store import Claim, EvaluationRequest, open_store
from nascli.task import Result, Task

LEASES = st.sampled_from([1.0, 5.0, 10.0])


class Clock:
    """The store's clock in these tests: only moves when a rule says so (and never backwards)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


CLOCK = Clock()
_DIRECTORY = tempfile.mkdtemp(prefix="nascli-lease-rules-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
STORE = open_store(f"sqlite:///{_DIRECTORY}/nas.db", create=True, clock=CLOCK)


class LeaseRules(RuleBasedStateMachine):
    claims = Bundle("claims")

    def __init__(self) -> None:
        super().__init__()
        self.run_id = STORE.create_run("lease-rules", "random", None, 0,
                                       {"worker": {"max_attempts": 2, "max_lease_expiries": 3}}).id
        self.issued: dict[int, list[int]] = {}  # evaluation id -> attempts handed out, in order
        self.last_attempt: dict[int, int] = {}
        self.finished: dict[int, tuple] = {}  # evaluation id -> (status, seq, result) once finished

    def row(self, evaluation_id: int):
        return STORE.evaluation(evaluation_id)

    def holds(self, claim: Claim) -> bool:
        row = self.row(claim.evaluation_id)
        return row.status == "running" and row.attempt == claim.attempt

    @rule(n=st.integers(1, 3), priority=st.integers(0, 2))
    def enqueue(self, n: int, priority: int) -> None:
        task = Task(genome="In_8_8:D_2", task={"kind": "synthetic"}, train={})
        for evaluation_id in STORE.enqueue(self.run_id, [EvaluationRequest(None, task, priority=priority)] * n):
            self.issued[evaluation_id] = []
            self.last_attempt[evaluation_id] = 0

    @rule(target=claims, lease=LEASES)
    def claim(self, lease: float):
        now = CLOCK.now
        claimable = {e.id for e in STORE.evaluations(self.run_id)
                     if e.status == "pending" or (e.status == "running" and e.lease_expires_at < now)}
        claim = STORE.claim("w", run_id=self.run_id, lease_seconds=lease)
        if claim is None:
            # nothing claimable may be left behind, except rows failed as timeout on the way
            assert all(self.row(i).status in ("failed", "done") for i in claimable)
            return None
        assert claim.evaluation_id in claimable, "a live lease was taken"
        assert claim.attempt == self.last_attempt[claim.evaluation_id] + 1
        assert claim.lease_expires_at == now + lease
        self.issued[claim.evaluation_id].append(claim.attempt)
        return claim

    @rule(seconds=st.sampled_from([0.5, 2.0, 6.0, 11.0]))
    def time_passes(self, seconds: float) -> None:
        CLOCK.now += seconds

    @rule(claim=claims, lease=LEASES)
    def heartbeat(self, claim: Claim | None, lease: float) -> None:
        if claim is None:
            return
        expected = self.holds(claim)
        assert STORE.heartbeat(claim.evaluation_id, claim.attempt, lease) == expected
        if expected:
            assert self.row(claim.evaluation_id).lease_expires_at == CLOCK.now + lease

    @rule(claim=consumes(claims), outcome=st.sampled_from(["done", "crash", "too_large"]))
    def complete(self, claim: Claim | None, outcome: str) -> None:
        if claim is None:
            return
        expected = self.holds(claim)
        before = self.row(claim.evaluation_id)
        result = Result(status="done", val_accuracy=0.5) if outcome == "done" else Result.failure(outcome, "x")
        assert STORE.complete(claim.evaluation_id, claim.attempt, result) == expected
        after = self.row(claim.evaluation_id)
        if not expected:
            assert after == before, "a refused write changed the row"

    @rule(claim=consumes(claims))
    def release(self, claim: Claim | None) -> None:
        if claim is None:
            return
        expected = self.holds(claim)
        before = self.row(claim.evaluation_id)
        assert STORE.release(claim.evaluation_id, claim.attempt) == expected
        after = self.row(claim.evaluation_id)
        if expected:
            assert (after.status, after.failures, after.lease_expiries) == ("pending", before.failures,
                                                                           before.lease_expiries)
        else:
            assert after == before

    @rule()
    def reap(self) -> None:
        STORE.reap(self.run_id)

    @invariant()
    def fencing_rules_hold(self) -> None:
        rows = STORE.evaluations(self.run_id)
        for row in rows:
            assert row.attempt >= self.last_attempt[row.id], "attempt went backwards"
            self.last_attempt[row.id] = row.attempt
            attempts = self.issued[row.id]
            assert attempts == sorted(set(attempts)), "a fencing token was handed out twice"
            valid = [a for a in attempts if row.status == "running" and a == row.attempt]
            assert len(valid) <= 1
            assert row.failures <= 2 and row.lease_expiries <= 3
            if row.status in ("done", "failed"):
                snapshot = (row.status, row.seq, row.result)
                assert self.finished.setdefault(row.id, snapshot) == snapshot, "a finished row changed"
        seqs = sorted(row.seq for row in rows if row.seq is not None)
        assert seqs == list(range(1, len(seqs) + 1))


LeaseRules.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])
test_lease_rules = pytest.mark.slow(LeaseRules.TestCase)
