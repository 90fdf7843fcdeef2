"""Many real `nas worker` processes drain one queue: every task done exactly once, no lock errors."""

from __future__ import annotations

import time

import pytest
from worker_harness import (
    assert_done_exactly_once,
    fresh_pg_database,
    log_text,
    need_pg,
    prepare_run,
    start_worker,
    synthetic_tasks,
    wait_all,
    written_by_logs,
)

from nascli.store import open_store

TASKS = 2000


def drain(url: str, workers: int, log_dir, tasks: int = TASKS) -> float:
    run_id = prepare_run(url, synthetic_tasks(tasks))
    started = time.monotonic()
    processes = [start_worker(url, log_dir, "--run", run_id, "--idle-timeout", "1.5") for _ in range(workers)]
    assert wait_all(processes, timeout=120) == [0] * workers
    elapsed = time.monotonic() - started
    assert_done_exactly_once(url, run_id, tasks)
    # The workers agree: each result was written by exactly one of them, once.
    assert written_by_logs(log_dir) == {i: 1 for i in range(1, tasks + 1)}
    logs = log_text(log_dir)
    assert "database is locked" not in logs and "Traceback" not in logs
    store = open_store(url)
    try:
        per_worker = [w.tasks_done for w in store.workers()]
    finally:
        store.close()
    assert len(per_worker) == workers and sum(per_worker) == tasks
    print(f"{workers} workers drained {tasks} tasks in {elapsed:.1f} s (incl. start-up); "
          f"per worker: {sorted(per_worker)}")
    return elapsed


@pytest.mark.slow
def test_8_workers_drain_2000_tasks_on_sqlite(tmp_path):
    drain(f"sqlite:///{tmp_path / 'nas.db'}", 8, tmp_path / "logs")


@pytest.mark.slow
@pytest.mark.postgres
def test_16_workers_drain_2000_tasks_on_postgresql(tmp_path):
    with fresh_pg_database(need_pg()) as url:
        drain(url, 16, tmp_path / "logs")
