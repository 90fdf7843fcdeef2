"""Many processes drain one queue through the store API: every task done exactly once, no lock
errors. (The `nas worker` process tests — kills, stops, restarts — live with the worker.)"""

from __future__ import annotations

import multiprocessing
import shutil
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from nascli.store import EvaluationRequest, open_store
from nascli.task import Result, Task

TASKS = 2_000
PROCESSES = {"sqlite": 8, "postgresql": 16}


def drain(url: str, worker_id: str, results: multiprocessing.Queue) -> None:
    """Claim and complete until the queue stays empty; report (worker, completed ids, errors)."""
    completed: list[int] = []
    refused: list[int] = []
    try:
        store = open_store(url, retry_seconds=30)
        empty_polls = 0
        while empty_polls < 3:
            claim = store.claim(worker_id, lease_seconds=60)
            if claim is None:
                empty_polls += 1
                time.sleep(0.05)
                continue
            empty_polls = 0
            result = Result(status="done", val_accuracy=claim.evaluation_id / TASKS, params=claim.evaluation_id)
            (completed if store.complete(claim.evaluation_id, claim.attempt, result) else refused).append(
                claim.evaluation_id)
        store.close()
        results.put((worker_id, completed, refused, None))
    except BaseException:  # report everything: the parent asserts there were no errors
        results.put((worker_id, completed, refused, traceback.format_exc()))


def backend_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


@pytest.fixture
def queue_url(store_url: str) -> Iterator[str]:
    """store_url, but SQLite on tmpfs when there is one: locking is what is under test here, and
    fsync on a disk shared with other test runs would only make the test slow (benchmarks measure disk)."""
    shm = Path("/dev/shm")
    if not store_url.startswith("sqlite") or not shm.is_dir():
        yield store_url
        return
    directory = tempfile.mkdtemp(prefix="nascli-queue-", dir=shm)
    try:
        yield f"sqlite:///{directory}/nas.db"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.slow
def test_processes_drain_queue_exactly_once(queue_url: str) -> None:
    store_url = queue_url
    store = open_store(store_url, create=True)
    run = store.create_run("drain", "random", None, 0, {})
    task = Task(genome="In_8_8:D_2", task={"kind": "synthetic"}, train={})
    ids = store.enqueue(run.id, [EvaluationRequest(None, task) for _ in range(TASKS)])
    assert len(set(ids)) == TASKS

    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = [context.Process(target=drain, args=(store_url, f"w{n}", results))
                 for n in range(PROCESSES[backend_of(store_url)])]
    started = time.monotonic()
    for process in processes:
        process.start()
    reports = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    elapsed = time.monotonic() - started

    errors = [error for *_, error in reports if error]
    assert not errors, errors[0]
    completed = [eid for _, done_ids, _, _ in reports for eid in done_ids]
    assert sorted(completed) == sorted(ids), "every task completed exactly once"
    assert all(not refused for _, _, refused, _ in reports), "no claim was lost with leases this long"
    assert store.queue_counts(run.id) == {"pending": 0, "running": 0, "done": TASKS, "failed": 0, "cancelled": 0}
    finished = store.results(run.id)
    assert [r.seq for r in finished] == list(range(1, TASKS + 1))
    assert all(r.attempt == 1 and r.result.params == r.evaluation_id for r in finished)
    per_worker = {worker: len(done_ids) for worker, done_ids, _, _ in reports}
    print(f"{backend_of(store_url)}: {TASKS} tasks, {len(processes)} processes, {elapsed:.1f} s, "
          f"per worker {per_worker}")
    store.close()
