"""Instant wake-ups: NOTIFY from the queue's writing transactions, LISTEN in a Waiter, and the
fallback to polling when the LISTEN connection is dropped. Latency figures live in
benchmarks/wakeup_latency.py; these tests check the mechanism, with generous time limits."""

from __future__ import annotations

import threading
import time

import pytest

from nascli.store import EvaluationRequest, open_store
from nascli.store.notify import RESULT_CHANNEL, WORK_CHANNEL, Waiter, open_waiter
from nascli.task import Result
from tests.integration.worker_harness import fresh_pg_database, need_pg, synthetic_tasks

GENEROUS = 20.0  # seconds: a loaded 2-core machine, never a latency claim


def until(condition, timeout: float = GENEROUS) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def pg_store():
    with fresh_pg_database(need_pg()) as url:
        store = open_store(url, create=True)
        try:
            yield store
        finally:
            store.close()


def new_run(store, name: str = "wake") -> str:
    return store.create_run(name, "random", None, 0, {"worker": {}}).id


def listening(waiter: Waiter) -> Waiter:
    assert until(lambda: waiter.listening), "the LISTEN connection never came up"
    waiter.wait(0)  # forget the wake-up every (re)connection sends
    return waiter


def test_plain_waiter_sleeps_and_wake_cuts_it_short(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'nas.db'}", create=True)
    try:
        with open_waiter(store, WORK_CHANNEL) as waiter:
            assert not waiter.listening  # SQLite: nothing to listen to
            started = time.monotonic()
            assert waiter.wait(0.05) is False
            assert time.monotonic() - started >= 0.04
            threading.Timer(0.05, waiter.wake).start()
            started = time.monotonic()
            assert waiter.wait(GENEROUS) is True
            assert time.monotonic() - started < GENEROUS / 2
            assert waiter.wait(0) is False  # a wake-up is consumed once
    finally:
        store.close()


@pytest.mark.postgres
def test_enqueue_release_and_complete_wake_the_right_waiters(pg_store):
    run, other = new_run(pg_store), new_run(pg_store, "other")
    with open_waiter(pg_store, WORK_CHANNEL) as any_work, open_waiter(pg_store, WORK_CHANNEL, run) as run_work, \
            open_waiter(pg_store, RESULT_CHANNEL, run) as run_results:
        for waiter in (any_work, run_work, run_results):
            listening(waiter)
        pg_store.enqueue(other, [EvaluationRequest(None, synthetic_tasks(1)[0])])
        assert any_work.wait(GENEROUS) is True
        assert run_work.wait(0.3) is False  # pinned to another run
        pg_store.enqueue(run, [EvaluationRequest(None, task) for task in synthetic_tasks(2)])
        assert run_work.wait(GENEROUS) is True
        assert any_work.wait(GENEROUS) is True
        assert run_results.wait(0) is False  # queueing is not a result

        claim = pg_store.claim("w", run_id=run, lease_seconds=30)
        assert pg_store.release(claim.evaluation_id, claim.attempt)
        assert run_work.wait(GENEROUS) is True  # released work is work again

        claim = pg_store.claim("w", run_id=run, lease_seconds=30)
        assert pg_store.complete(claim.evaluation_id, claim.attempt, Result(status="done", val_accuracy=0.5))
        assert run_results.wait(GENEROUS) is True
        assert run_work.wait(0.2) is False


@pytest.mark.postgres
def test_dropped_listen_connection_degrades_to_polling_and_comes_back(pg_store):
    import psycopg

    from tests.integration.worker_harness import libpq_dsn

    run = new_run(pg_store)
    database = pg_store.engine.url.database
    with open_waiter(pg_store, WORK_CHANNEL, run) as waiter:
        listening(waiter)
        url = pg_store.engine.url.render_as_string(hide_password=False)
        with psycopg.connect(libpq_dsn(url), autocommit=True) as admin:
            killed = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE application_name = 'nascli-listen' AND datname = %s", (database,)).fetchall()
        assert killed == [(True,)]
        # Dropped: a wait is a plain timed sleep, never a hang.
        started = time.monotonic()
        waiter.wait(0.3)
        assert time.monotonic() - started < GENEROUS / 2
        # ... and the listener reconnects by itself; notifications work again.
        assert until(lambda: waiter.listening and _listeners(admin_url=url, database=database) == 1)
        waiter.wait(0)
        pg_store.enqueue(run, [EvaluationRequest(None, synthetic_tasks(1)[0])])
        assert waiter.wait(GENEROUS) is True


@pytest.mark.postgres
def test_unreachable_server_never_blocks_the_waiter(pg_store):
    """A listener that cannot connect at all: waits are timed sleeps, close() returns at once."""
    from types import SimpleNamespace

    import sqlalchemy as sa

    engine = sa.create_engine(pg_store.engine.url.set(host="127.0.0.1", port=1))  # nothing listens there
    try:
        waiter = open_waiter(SimpleNamespace(engine=engine, backend="postgresql"), WORK_CHANNEL)
        started = time.monotonic()
        assert waiter.wait(0.2) is False
        assert not waiter.listening
        waiter.close()
        assert time.monotonic() - started < GENEROUS / 2
    finally:
        engine.dispose()


def _listeners(*, admin_url: str, database: str) -> int:
    import psycopg

    from tests.integration.worker_harness import libpq_dsn

    with psycopg.connect(libpq_dsn(admin_url), autocommit=True) as admin:
        return admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'nascli-listen' "
                             "AND datname = %s", (database,)).fetchone()[0]
