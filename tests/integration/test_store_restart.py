"""The store survives a PostgreSQL restart: calls in flight retry with backoff, nothing is lost."""

from __future__ import annotations

import threading
import time

import pytest

from nascli.store import EvaluationRequest, open_store
from nascli.task import Result, Task

TASKS = 60


@pytest.mark.postgres
def test_claim_complete_loop_survives_server_restart(private_pg_cluster, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="nascli.store")
    store = open_store(private_pg_cluster.url, create=True, retry_seconds=60)
    run = store.create_run("restart", "random", None, 0, {})
    task = Task(genome="In_8_8:D_2", task={"kind": "synthetic"}, train={})
    ids = store.enqueue(run.id, [EvaluationRequest(None, task) for _ in range(TASKS)])

    restarted = threading.Event()

    def restart_soon() -> None:
        time.sleep(0.3)
        private_pg_cluster.restart()
        restarted.set()

    restarter = threading.Thread(target=restart_soon)
    restarter.start()
    completed: list[int] = []
    deadline = time.monotonic() + 90
    while len(completed) < TASKS and time.monotonic() < deadline:
        # short leases: a claim whose acknowledgement died with the server expires and comes back
        claim = store.claim("w", lease_seconds=1.0)
        if claim is None:
            time.sleep(0.1)
            continue
        if not restarted.is_set():
            time.sleep(0.02)  # spread the work over the restart
        if store.complete(claim.evaluation_id, claim.attempt, Result(status="done", params=claim.evaluation_id)):
            completed.append(claim.evaluation_id)
    restarter.join()
    assert restarted.is_set()
    assert any("transient database error" in record.getMessage() for record in caplog.records), \
        "the restart never hit a call in flight: the test proved nothing"
    assert sorted(completed) == sorted(ids), "every task completed exactly once"
    assert store.queue_counts(run.id)["done"] == TASKS
    assert [r.seq for r in store.results(run.id)] == list(range(1, TASKS + 1))
    store.close()


def _backend_pid(store) -> int:
    return store.db.write(lambda conn: conn.connection.driver_connection.info.backend_pid, what="pid",
                        single_statement=True)


@pytest.mark.postgres
def test_single_statements_reuse_one_connection_and_replace_it_when_it_dies(pg_schema_url, caplog) -> None:
    """A worker's claim/heartbeat/complete run on one held autocommit connection; when the server
    ends that session, the next call retries on a fresh one and nothing is lost or written twice."""
    import psycopg
    from sqlalchemy.engine import make_url

    caplog.set_level("WARNING", logger="nascli.store")
    store = open_store(pg_schema_url, create=True, retry_seconds=30)
    run = store.create_run("held", "random", None, 0, {})
    task = Task(genome="In_8_8:D_2", task={"kind": "synthetic"}, train={})
    ids = store.enqueue(run.id, [EvaluationRequest(None, task) for _ in range(4)])
    first = store.claim("w", lease_seconds=60)
    held = _backend_pid(store)
    assert store.heartbeat(first.evaluation_id, first.attempt, 60)
    assert _backend_pid(store) == held, "single statements should share the held connection"

    admin = make_url(pg_schema_url).set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (held,)).fetchone()[0]

    assert store.complete(first.evaluation_id, first.attempt, Result(status="done", params=1))
    assert any("transient database error" in r.getMessage() for r in caplog.records), "the dead session was not hit"
    assert _backend_pid(store) != held
    done = [first.evaluation_id]
    while (claim := store.claim("w", lease_seconds=60)) is not None:
        assert store.complete(claim.evaluation_id, claim.attempt, Result(status="done", params=1))
        done.append(claim.evaluation_id)
    assert sorted(done) == sorted(ids)
    assert [r.seq for r in store.results(run.id)] == [1, 2, 3, 4]
    store.close()


@pytest.mark.postgres
def test_single_statements_run_in_a_transaction_while_another_thread_has_the_held_connection(pg_schema_url) -> None:
    store = open_store(pg_schema_url, create=True)
    run = store.create_run("busy-held", "random", None, 0, {})
    task = Task(genome="In_8_8:D_2", task={"kind": "synthetic"}, train={})
    ids = store.enqueue(run.id, [EvaluationRequest(None, task) for _ in range(3)])
    held = store.db.transactions._held_lock
    assert held.acquire(blocking=False)  # as if the heartbeat thread were using the held connection
    try:
        first = store.claim("w", run_id=run.id, lease_seconds=60)
        assert store.heartbeat(first.evaluation_id, first.attempt, 60)
        written, second = store.complete_and_claim(first.evaluation_id, first.attempt, Result(status="done", params=1),
                                                   "w", run_id=run.id, lease_seconds=60)
        assert written and second.evaluation_id == ids[1]
        assert store.db.transactions._held is None  # nothing was run on it meanwhile
    finally:
        held.release()
    assert store.complete(second.evaluation_id, second.attempt, Result(status="done", params=2))
    assert [(r.evaluation_id, r.seq) for r in store.results(run.id)] == [(ids[0], 1), (ids[1], 2)]
    store.close()
