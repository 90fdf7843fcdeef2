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
