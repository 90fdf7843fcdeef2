"""The queue's rules value by value on the real stores (SQLite and PostgreSQL): what each write leaves
in the row, what it logs, what its error says, and which run it touches. Leases are expired by
writing the row's expiry into the past, so no test sleeps."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from nascli.errors import StoreError
from nascli.store import EvaluationRequest, NewIndividual, Store
from nascli.store.tables import E
from nascli.task import FAILURE_KINDS, Result, Task

LEASE = 30.0
QUEUE_LOG = "nascli.store.queue"


def make_task(genome: str = "In_8_8:D_2") -> Task:
    return Task(genome=genome, task={"kind": "synthetic"}, train={"epochs": 1}, seed=3)


def new_run(store: Store, **worker) -> str:
    return store.create_run("test", "island-ga", None, 7, {"worker": worker} if worker else {}).id


def queue(store: Store, run_id: str, n: int, generation: int = 0) -> list[int]:
    individuals = store.add_individuals(run_id, [NewIndividual(0, generation, slot, f"g{slot}", f"h{generation}-{slot}")
                                                 for slot in range(n)])
    return store.enqueue(run_id, [EvaluationRequest(i, make_task()) for i in individuals])


def done(accuracy: float = 0.5, weights: bytes | None = None) -> Result:
    return Result(status="done", val_accuracy=accuracy, params=1234, train_seconds=0.25, weights=weights)


class Rows:
    """Direct access to the evaluation table, as another process would have it."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)

    def expire(self, evaluation_id: int, lease_expiries: int | None = None) -> None:
        values: dict = {"lease_expires_at": 1.0}
        if lease_expiries is not None:
            values["lease_expiries"] = lease_expiries
        with self.engine.begin() as connection:
            connection.execute(sa.update(E).where(E.c.id == evaluation_id).values(**values))

    def row(self, evaluation_id: int):
        with self.engine.connect() as connection:
            return connection.execute(sa.select(E).where(E.c.id == evaluation_id)).one()

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def rows(store_url: str, store: Store):
    opened = Rows(store_url)
    yield opened
    opened.close()


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == QUEUE_LOG]


# ---------------------------------------------------------------- expiries


def test_reap_requeues_an_expiry_with_expiries_left_and_fails_the_last_one(store: Store, rows: Rows, caplog) -> None:
    run_id, other = new_run(store, max_lease_expiries=2), new_run(store, max_lease_expiries=2)
    first, last, fresh = queue(store, run_id, 3)
    (elsewhere,) = queue(store, other, 1)
    for _ in range(3):
        store.claim("w", run_id=run_id, lease_seconds=LEASE)
    store.claim("w", run_id=other, lease_seconds=LEASE)
    rows.expire(first, lease_expiries=0)  # 0 + 1 < 2: pending again
    rows.expire(last, lease_expiries=1)  # 1 + 1 = 2: failed as timeout
    rows.expire(elsewhere)
    caplog.set_level(logging.INFO, logger=QUEUE_LOG)

    assert store.reap(run_id) == 2

    requeued, failed = rows.row(first), rows.row(last)
    assert (requeued.status, requeued.lease_expiries, requeued.seq) == ("pending", 1, None)
    assert (failed.status, failed.error_kind, failed.lease_expiries, failed.seq) == ("failed", "timeout", 2, 1)
    assert failed.error_message == "lease expired 2 times: its workers died or stalled"
    assert rows.row(fresh).status == "running" and rows.row(elsewhere).status == "running"
    assert messages(caplog) == [f"evaluation {last} failed: lease expired 2 times"]
    assert [r.evaluation_id for r in store.results(run_id)] == [last]
    assert store.reap() == 1  # every run: the other run's expired lease
    assert rows.row(elsewhere).status == "pending"


def test_a_claim_that_spends_the_last_expiry_fails_the_row_and_takes_the_next(store: Store, rows: Rows,
                                                                              caplog) -> None:
    run_id, other = new_run(store, max_lease_expiries=2), new_run(store)
    (elsewhere,) = queue(store, other, 1)  # older than the run's rows: a claim of any run would take it
    stalled, waiting = queue(store, run_id, 2)
    assert store.claim("w", run_id=run_id, lease_seconds=LEASE).evaluation_id == stalled
    rows.expire(stalled, lease_expiries=1)
    caplog.set_level(logging.INFO, logger=QUEUE_LOG)

    claim = store.claim("w2", run_id=run_id, lease_seconds=LEASE)

    assert claim.evaluation_id == waiting and rows.row(waiting).worker_id == "w2"
    failed = rows.row(stalled)
    assert (failed.status, failed.error_kind, failed.lease_expiries, failed.seq) == ("failed", "timeout", 2, 1)
    assert failed.error_message == "lease expired 2 times: its workers died or stalled"
    assert messages(caplog) == [f"evaluation {stalled} failed: lease expired 2 times"]
    assert rows.row(elsewhere).status == "pending"


def test_complete_and_claim_fails_a_spent_row_and_claims_the_workers_run_next(store: Store, rows: Rows) -> None:
    run_id, other = new_run(store, max_lease_expiries=1), new_run(store)
    (elsewhere,) = queue(store, other, 1)
    mine, stalled, busy, waiting = queue(store, run_id, 4)
    held = store.claim("w", run_id=run_id, lease_seconds=LEASE)
    assert held.evaluation_id == mine
    assert store.claim("x", run_id=run_id, lease_seconds=LEASE).evaluation_id == stalled
    # a live claim keeps one of the run's rows running: a claim of any run would go to the other run
    assert store.claim("y", run_id=run_id, lease_seconds=LEASE).evaluation_id == busy
    rows.expire(stalled)  # its next claim spends its only expiry

    written, claim = store.complete_and_claim(mine, held.attempt, done(), "w", run_id=run_id, lease_seconds=LEASE)

    assert written and rows.row(mine).status == "done"
    assert rows.row(stalled).status == "failed" and rows.row(stalled).error_kind == "timeout"
    assert claim.evaluation_id == waiting and rows.row(waiting).worker_id == "w"
    assert rows.row(waiting).lease_expires_at - rows.row(waiting).claimed_at == pytest.approx(LEASE)
    assert rows.row(elsewhere).status == "pending"


def test_a_reclaimed_row_logs_its_new_attempt(store: Store, rows: Rows, caplog) -> None:
    run_id = new_run(store)
    (eid,) = queue(store, run_id, 1)
    store.claim("w", lease_seconds=LEASE)
    rows.expire(eid)
    caplog.set_level(logging.INFO, logger=QUEUE_LOG)
    assert store.claim("w2", lease_seconds=LEASE).attempt == 2
    assert messages(caplog) == [f"evaluation {eid} claimed by w2 as attempt 2"]


# ---------------------------------------------------------------- fenced writes


def test_a_lost_claims_writes_are_refused_and_say_why(store: Store, rows: Rows, caplog) -> None:
    run_id = new_run(store)
    (eid,) = queue(store, run_id, 1)
    lost = store.claim("w", lease_seconds=LEASE)
    rows.expire(eid)
    store.claim("w2", lease_seconds=LEASE)
    caplog.set_level(logging.INFO, logger=QUEUE_LOG)

    assert store.heartbeat(eid, lost.attempt, LEASE) is False
    assert store.complete(eid, lost.attempt, done()) is False
    assert store.release(eid, lost.attempt) is False
    assert store.complete(eid + 100, 1, done()) is False

    assert messages(caplog) == [
        f"heartbeat refused: evaluation {eid} attempt 1 no longer holds the row",
        f"result refused: evaluation {eid} attempt 1 lost its claim (row: attempt 2, running)",
        f"release refused: evaluation {eid} attempt 1 lost its claim (row: attempt 2, running)",
        f"result refused: evaluation {eid + 100} attempt 1 lost its claim (row: attempt None, missing)",
    ]


def test_a_heartbeat_extends_the_lease_by_the_given_seconds_and_logs_nothing(store: Store, rows: Rows,
                                                                            caplog) -> None:
    run_id = new_run(store)
    (eid,) = queue(store, run_id, 1)
    claim = store.claim("w", lease_seconds=5.0)
    caplog.set_level(logging.INFO, logger=QUEUE_LOG)
    assert store.heartbeat(eid, claim.attempt, 120.0) is True
    row = rows.row(eid)
    assert row.lease_expires_at - row.heartbeat_at == pytest.approx(120.0)
    assert messages(caplog) == []
    with pytest.raises(StoreError, match="lease must be positive") as raised:
        store.heartbeat(eid, claim.attempt, 0)
    assert raised.value.hint == "e.g. --lease 120"


def test_a_retryable_failure_goes_back_to_pending_with_its_error(store: Store, rows: Rows, caplog) -> None:
    run_id = new_run(store, max_attempts=3)
    (eid,) = queue(store, run_id, 1)
    claim = store.claim("w", lease_seconds=LEASE)
    caplog.set_level(logging.INFO, logger=QUEUE_LOG)
    assert store.complete(eid, claim.attempt, Result.failure("oom", "CUDA out of memory"))
    row = rows.row(eid)
    assert (row.status, row.failures, row.error_kind, row.error_message, row.seq) == (
        "pending", 1, "oom", "CUDA out of memory", None)
    assert messages(caplog) == [f"evaluation {eid} attempt 1 failed (oom); 1 of 3 attempts used, queued again"]


def test_a_failure_that_finishes_counts_one_failure(store: Store, rows: Rows) -> None:
    """PostgreSQL finishes such a row in one statement; it counts the failure like any other path."""
    run_id = new_run(store)
    (eid,) = queue(store, run_id, 1)
    claim = store.claim("w", lease_seconds=LEASE)
    assert store.complete(eid, claim.attempt, Result.failure("nan_loss", "loss is nan"))
    row = rows.row(eid)
    assert (row.status, row.failures, row.error_kind, row.error_message, row.seq) == (
        "failed", 1, "nan_loss", "loss is nan", 1)


def test_an_unknown_failure_kind_names_the_known_ones(store: Store) -> None:
    run_id = new_run(store)
    (eid,) = queue(store, run_id, 1)
    claim = store.claim("w", lease_seconds=LEASE)
    with pytest.raises(StoreError) as raised:
        store.fail(eid, claim.attempt, "gremlins", "?")
    assert str(raised.value).startswith("unknown failure kind 'gremlins'")
    assert raised.value.hint == "one of " + ", ".join(FAILURE_KINDS)


@pytest.mark.parametrize("result", [pytest.param(Result.failure("crash", "segfault"), id="retried"),
                                    pytest.param(done(0.75, weights=b"\x00weights"), id="with-weights")])
def test_complete_and_claim_writes_the_result_and_claims_for_the_worker_and_run(store: Store, rows: Rows,
                                                                               result: Result) -> None:
    """Results PostgreSQL does not finish in its one round trip: the same outcome through two calls."""
    run_id, other = new_run(store), new_run(store)
    (elsewhere,) = queue(store, other, 1)
    mine, busy, waiting = queue(store, run_id, 3)
    held = store.claim("w", run_id=run_id, lease_seconds=LEASE)
    # a live claim keeps one of the run's rows running: a claim of any run would go to the other run
    assert store.claim("y", run_id=run_id, lease_seconds=LEASE).evaluation_id == busy

    written, claim = store.complete_and_claim(mine, held.attempt, result, "w", run_id=run_id, lease_seconds=90.0)

    assert written is True
    row = rows.row(mine)
    if result.status == "done":
        assert (row.status, row.val_accuracy, row.seq) == ("done", 0.75, 1)
        assert store.weights(mine) == b"\x00weights"
        expected = (waiting, 1)
    else:  # back to pending, and as the oldest row it is the next claim
        assert (row.failures, row.error_kind, row.seq) == (1, "crash", None)
        assert store.weights(mine) is None
        expected = (mine, 2)
    assert (claim.evaluation_id, claim.attempt) == expected
    taken = rows.row(claim.evaluation_id)
    assert (taken.status, taken.worker_id) == ("running", "w")
    assert taken.lease_expires_at - taken.claimed_at == pytest.approx(90.0)
    assert rows.row(elsewhere).status == "pending"


def test_weights_go_in_with_a_done_result_only(store: Store) -> None:
    run_id = new_run(store, max_attempts=1)
    first, second = queue(store, run_id, 2)
    claim = store.claim("w", lease_seconds=LEASE)
    assert store.complete(first, claim.attempt, done(weights=b"abc"))
    claim = store.claim("w", lease_seconds=LEASE)
    failed = Result(status="failed", error_kind="crash", error_message="late", weights=b"never")
    assert store.complete(second, claim.attempt, failed)
    assert store.weights(first) == b"abc" and store.weights(second) is None
    assert store.stored_weight_ids(run_id) == {first}


# ---------------------------------------------------------------- the run a call touches


def test_cancel_and_counts_touch_only_the_run_named(store: Store) -> None:
    run_id, other = new_run(store), new_run(store)
    queue(store, run_id, 2)
    queue(store, other, 3)
    store.claim("w", run_id=run_id, lease_seconds=LEASE)
    assert store.cancel_pending(run_id) == 1
    assert store.queue_counts(run_id) == {"pending": 0, "running": 1, "done": 0, "failed": 0, "cancelled": 1}
    assert store.queue_counts(other) == {"pending": 3, "running": 0, "done": 0, "failed": 0, "cancelled": 0}
    assert store.queue_counts() == {"pending": 3, "running": 1, "done": 0, "failed": 0, "cancelled": 1}


def test_results_pages_by_sequence_number(store: Store) -> None:
    run_id = new_run(store)
    ids = queue(store, run_id, 3)
    for accuracy in (0.1, 0.2, 0.3):
        claim = store.claim("w", lease_seconds=LEASE)
        assert store.complete(claim.evaluation_id, claim.attempt, done(accuracy))
    assert [(r.seq, r.evaluation_id) for r in store.results(run_id)] == list(zip((1, 2, 3), ids))
    assert [r.seq for r in store.results(run_id, limit=2)] == [1, 2]
    assert [r.seq for r in store.results(run_id, after_id=1, limit=1)] == [2]
    assert [r.result.val_accuracy for r in store.results(run_id, after_id=2)] == [0.3]


def test_a_missing_evaluation_is_named(store: Store) -> None:
    with pytest.raises(StoreError) as raised:
        store.evaluation(987_654)
    assert str(raised.value) == "no evaluation 987654"


def test_evaluations_lists_the_runs_rows_in_id_order_by_status(store: Store) -> None:
    run_id, other = new_run(store), new_run(store)
    first, second, third = queue(store, run_id, 3)
    queue(store, other, 1, generation=1)
    store.claim("w", run_id=run_id, lease_seconds=LEASE)
    assert [e.id for e in store.evaluations(run_id)] == [first, second, third]
    assert [(e.id, e.status) for e in store.evaluations(run_id, "pending")] == [(second, "pending"), (third, "pending")]
    assert [e.id for e in store.evaluations(run_id, "running")] == [first]
    assert store.evaluations(run_id, "done") == []


# ---------------------------------------------------------------- errors name the operation


def test_every_queue_operation_names_itself_when_the_database_fails(store: Store, rows: Rows) -> None:
    run_id = new_run(store)
    (eid,) = queue(store, run_id, 1)
    individual = store.add_individuals(run_id, [NewIndividual(0, 1, 0, "g", "h")])[0]
    claim = store.claim("w", lease_seconds=LEASE)
    with rows.engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE evaluation RENAME TO evaluation_gone"))
    calls = {
        "enqueue": lambda: store.enqueue(run_id, [EvaluationRequest(individual, make_task())]),
        "claim": lambda: store.claim("w", lease_seconds=LEASE),
        "complete and claim": lambda: store.complete_and_claim(eid, claim.attempt, done(), "w", lease_seconds=LEASE),
        "heartbeat": lambda: store.heartbeat(eid, claim.attempt, LEASE),
        "complete": lambda: store.complete(eid, claim.attempt, done()),
        "release": lambda: store.release(eid, claim.attempt),
        "reap": lambda: store.reap(),
        "cancel": lambda: store.cancel_pending(run_id),
        "results": lambda: store.results(run_id),
        "queue counts": lambda: store.queue_counts(run_id),
        "read evaluation": lambda: store.evaluation(eid),
        "read evaluations": lambda: store.evaluations(run_id),
    }
    for what, call in calls.items():
        with pytest.raises(StoreError) as raised:
            call()
        assert str(raised.value).startswith(f"{what} failed on "), (what, str(raised.value))


# ---------------------------------------------------------------- wake-ups (PostgreSQL)


@pytest.mark.postgres
def test_each_write_wakes_the_waiters_of_its_run(pg_schema_url: str) -> None:
    """A requeue or release is work for the run's idle workers; a finish is a result for its driver."""
    import time

    from nascli.store import open_store
    from nascli.store.notify import RESULT_CHANNEL, WORK_CHANNEL, open_waiter

    store = open_store(pg_schema_url, create=True)
    rows = Rows(pg_schema_url)
    try:
        run_id = new_run(store, max_lease_expiries=2, max_attempts=3)
        ids = queue(store, run_id, 5)
        with open_waiter(store, WORK_CHANNEL, run_id) as work, open_waiter(store, RESULT_CHANNEL, run_id) as results:
            deadline = time.monotonic() + 10
            while not (work.listening and results.listening) and time.monotonic() < deadline:
                time.sleep(0.02)
            work.wait(0), results.wait(0)  # the wake-up each connection sends

            def woken(waiter) -> bool:
                return waiter.wait(5.0) and not waiter.wait(0)

            more = queue(store, run_id, 1, generation=1)
            assert woken(work), "new work"
            claims = {c.evaluation_id: c for c in (store.claim("w", run_id=run_id, lease_seconds=LEASE)
                                                    for _ in ids + more)}
            assert store.complete(ids[0], claims[ids[0]].attempt, Result.failure("oom", "again"))
            assert woken(work), "a requeued failure"
            assert store.complete(ids[1], claims[ids[1]].attempt, done(weights=b"w"))
            assert woken(results), "a result with weights"
            assert store.release(ids[2], claims[ids[2]].attempt)
            assert woken(work), "a release"
            rows.expire(ids[3], lease_expiries=0)
            rows.expire(ids[4], lease_expiries=1)
            assert store.reap(run_id) == 2
            assert woken(work) and woken(results), "a reaped lease and a lease that ran out"
            again = store.claim("w", run_id=run_id, lease_seconds=LEASE)  # the requeued failure
            rows.expire(again.evaluation_id, lease_expiries=1)
            assert store.claim("w", run_id=run_id, lease_seconds=LEASE).evaluation_id != again.evaluation_id
            assert woken(results), "a claim that spent a row's last expiry"
    finally:
        rows.close()
        store.close()


# ---------------------------------------------------------------- enqueue


def test_enqueue_returns_each_requests_id_once_queued(store: Store, rows: Rows) -> None:
    run_id = new_run(store)
    a, b, c = store.add_individuals(run_id, [NewIndividual(0, 0, slot, f"g{slot}", f"hash-{slot}")
                                             for slot in range(3)])
    (first,) = store.enqueue(run_id, [EvaluationRequest(a, make_task())])
    # a known individual first, then a new one twice, then one more: one row each, ids in request order
    ids = store.enqueue(run_id, [EvaluationRequest(i, make_task()) for i in (a, b, b, c)])
    assert ids[0] == first and ids[1] == ids[2] and len(set(ids)) == 3
    assert [(e.id, e.individual_id) for e in store.evaluations(run_id)] == [(first, a), (ids[1], b), (ids[3], c)]
    assert rows.row(ids[1]).genome_hash == "hash-1"  # the individual's own hash


def test_a_task_without_an_individual_gets_its_given_hash_or_its_genomes(store: Store, rows: Rows) -> None:
    import hashlib

    run_id = new_run(store)
    given, derived = store.enqueue(run_id, [EvaluationRequest(None, make_task("In_8_8:D_2"), genome_hash="mine"),
                                            EvaluationRequest(None, make_task("In_8_8:D_3"))])
    assert rows.row(given).genome_hash == "mine"
    assert rows.row(derived).genome_hash == hashlib.sha256(b"In_8_8:D_3").hexdigest()[:16]
    assert given != derived


def test_enqueue_refuses_individuals_it_cannot_place(store: Store) -> None:
    run_id, other = new_run(store), new_run(store)
    (theirs,) = store.add_individuals(other, [NewIndividual(0, 0, 0, "g", "h")])
    with pytest.raises(StoreError) as raised:
        store.enqueue(run_id, [EvaluationRequest(theirs, make_task())])
    assert str(raised.value) == f"individual {theirs} belongs to run {other}, not {run_id}"
    with pytest.raises(StoreError) as raised:
        store.enqueue(run_id, [EvaluationRequest(999_999, make_task()), EvaluationRequest(999_998, make_task())])
    assert str(raised.value).split(" (")[0] == f"no individual 999998 in run {run_id}"
    assert raised.value.hint == "record children with add_individuals before queueing them"
    assert store.queue_counts(run_id)["pending"] == 0


def test_a_queued_row_holds_its_whole_task_with_the_run_and_no_claim_yet(store: Store, rows: Rows) -> None:
    """The row is self-contained (a worker needs nothing else); the claim fills in evaluation and attempt."""
    import dataclasses
    import json

    run_id = new_run(store)
    # a task that was claimed before (a requeue by hand): the row keeps none of that claim
    task = dataclasses.replace(make_task("In_8_8:D_7"), run_id="r-other", evaluation_id=99, attempt=4)
    (eid,) = store.enqueue(run_id, [EvaluationRequest(None, task)])
    text = rows.row(eid).task_json
    expected = {**{f.name: getattr(task, f.name) for f in dataclasses.fields(task)},
                "run_id": run_id, "evaluation_id": None, "attempt": 0}
    assert json.loads(text) == expected and text == json.dumps(expected, sort_keys=True)
    claimed = store.claim("w", lease_seconds=LEASE).task
    assert (claimed.run_id, claimed.evaluation_id, claimed.attempt, claimed.genome) == (run_id, eid, 1, "In_8_8:D_7")
