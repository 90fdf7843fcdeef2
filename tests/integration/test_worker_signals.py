"""`nas worker` under signals: SIGTERM releases, SIGSTOP makes a zombie that is fenced off, and busy
training never lets a live worker's lease lapse. Real processes, real store, both backends."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
from worker_harness import log_text, prepare_run, start_worker, synthetic_tasks, wait_all

from nascli.store import open_store
from nascli.task import Result
from tests.helpers import BACKENDS, database, wait_for


def running(store, run_id):
    return store.evaluations(run_id, status="running")


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_stops_claiming_releases_and_exits_0(backend, tmp_path):
    with database(backend, tmp_path) as url:
        run_id = prepare_run(url, synthetic_tasks(4, seconds=60))
        store = open_store(url)
        try:
            worker = start_worker(url, tmp_path / "logs", "--run", run_id, "--lease", "30")
            (held,) = wait_for(lambda: running(store, run_id), 30, "the worker to claim a task")
            signalled = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            assert wait_all([worker], timeout=10) == [0]
            exited = time.monotonic() - signalled
            rows = store.evaluations(run_id)
        finally:
            store.close()
        assert exited < 3.0, f"took {exited:.1f} s to exit"
        released = next(row for row in rows if row.id == held.id)
        assert (released.status, released.attempt, released.releases, released.failures) == ("pending", 1, 1, 0)
        assert [row.status for row in rows] == ["pending"] * 4  # nothing else claimed after the signal
        # from the heartbeat thread, or from the loop when the signal beat the heartbeat's start
        assert re.search(r"released (evaluation \d+ )?for another worker", log_text(tmp_path / "logs"))


def test_sigint_then_sigterm_is_one_stop_request(tmp_path):
    # A terminal's Ctrl-C, then the parent's SIGTERM a moment later: the worker still releases its
    # task and exits 0 (only the same signal twice means "exit now").
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    run_id = prepare_run(url, synthetic_tasks(2, seconds=60))
    store = open_store(url)
    try:
        worker = start_worker(url, tmp_path / "logs", "--run", run_id, "--lease", "30")
        wait_for(lambda: running(store, run_id), 30, "the worker to claim a task")
        worker.send_signal(signal.SIGINT)
        worker.send_signal(signal.SIGTERM)
        assert wait_all([worker], timeout=10) == [0]
        assert [row.status for row in store.evaluations(run_id)] == ["pending"] * 2
    finally:
        store.close()


def test_idle_worker_exits_within_a_second_of_sigterm(tmp_path):
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    prepare_run(url, [])
    worker = start_worker(url, tmp_path / "logs")
    store = open_store(url)
    try:
        wait_for(lambda: store.workers(), 30, "the worker to register")
    finally:
        store.close()
    time.sleep(1.5)  # let it reach its longest idle backoff
    signalled = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert wait_all([worker], timeout=10) == [0]
    assert time.monotonic() - signalled < 1.0 + 0.5  # 1 s budget, plus interpreter shutdown


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_stopped_worker_is_fenced_off_and_abandons_its_task_on_resume(backend, tmp_path):
    """SIGSTOP past the lease; another claimer finishes the task; SIGCONT: the zombie's heartbeat changes
    0 rows, it gives the task up at that heartbeat, and the other claimer's result stands."""
    with database(backend, tmp_path) as url:
        run_id = prepare_run(url, synthetic_tasks(1, seconds=60))
        store = open_store(url)
        try:
            zombie = start_worker(url, tmp_path / "logs", "--run", run_id, "--lease", "1.5", "--max-tasks", "1")
            (held,) = wait_for(lambda: running(store, run_id), 30, "the worker to claim")
            time.sleep(0.2)  # mid-interval between heartbeats (every 0.5 s), not inside one
            zombie.send_signal(signal.SIGSTOP)
            try:
                # Another worker: re-claims once the lease has expired on the database clock, then finishes.
                claim = wait_for(lambda: store.claim("other-worker", run_id=run_id, lease_seconds=30), 10,
                                 "the lease to expire and the task to be re-claimed", step=0.1)
                assert (claim.evaluation_id, claim.attempt) == (held.id, 2)
                assert store.complete(claim.evaluation_id, claim.attempt, Result(status="done", val_accuracy=0.75))
            finally:
                resumed = time.monotonic()
                zombie.send_signal(signal.SIGCONT)
            assert wait_all([zombie], timeout=10) == [0]
            abandoned_after = time.monotonic() - resumed
            row = store.evaluation(held.id)
        finally:
            store.close()
        assert (row.status, row.attempt, row.worker_id, row.seq) == ("done", 2, "other-worker", 1)
        assert row.result.val_accuracy == 0.75  # the zombie wrote nothing
        logs = log_text(tmp_path / "logs")
        assert "claim lost" in logs and "discarded" in logs
        assert abandoned_after < 3.0, f"the zombie took {abandoned_after:.1f} s to give up"


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_busy_evaluations_three_times_the_lease_are_never_reclaimed(backend, tmp_path):
    """Two workers burn CPU (GIL-holding loop) for 3x the lease while a third waits to steal."""
    with database(backend, tmp_path) as url:
        run_id = prepare_run(url, synthetic_tasks(2, seconds=4.5, synthetic_busy=True))
        logs = tmp_path / "logs"
        busy = [start_worker(url, logs, "--run", run_id, "--lease", "1.5", "--max-tasks", "1") for _ in range(2)]
        store = open_store(url)
        try:
            wait_for(lambda: len(running(store, run_id)) == 2, 30, "both workers to claim")
            thief = start_worker(url, logs, "--run", run_id, "--lease", "1.5", "--idle-timeout", "6")
            assert wait_all(busy, timeout=30) == [0, 0]
            assert wait_all([thief], timeout=30) == [0]
            rows = store.evaluations(run_id)
        finally:
            store.close()
        assert [(row.status, row.attempt, row.lease_expiries) for row in rows] == [("done", 1, 0)] * 2
        assert "claim lost" not in log_text(logs)


def pid_of(worker_id: str) -> int:
    return int(worker_id.rsplit("-", 2)[1])


def test_worker_ids_carry_the_pid(tmp_path):
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    prepare_run(url, [])
    worker = start_worker(url, tmp_path / "logs", "--idle-timeout", "0")
    assert wait_all([worker], timeout=30) == [0]
    store = open_store(url)
    try:
        (info,) = store.workers()
    finally:
        store.close()
    assert pid_of(info.id) == worker.pid == info.pid and info.host == os.uname().nodename
