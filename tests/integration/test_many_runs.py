"""Many runs, one pool: unpinned `nas worker` processes share themselves fairly between runs (the
claim serves the run with the fewest evaluations running), and `--run` pins a worker to one run.

Under the old claim order (oldest pending row first) the first run's 200 tasks would all finish
before the second run got a worker; here both advance together."""

from __future__ import annotations

import time

import pytest

from nascli.store import EvaluationRequest, open_store
from tests.helpers import BACKENDS, database
from tests.integration.worker_harness import assert_done_exactly_once, start_worker, synthetic_tasks, wait_all

TASKS_PER_RUN = 200
WORKERS = 4


def two_runs(url: str, per_run: int, seconds: float) -> tuple[str, str]:
    store = open_store(url, create=True)
    try:
        runs = []
        for name in ("first", "second"):
            run = store.create_run(name, "random", None, 0, {"worker": {}})
            store.enqueue(run.id, [EvaluationRequest(None, task) for task in synthetic_tasks(per_run, seconds)])
            runs.append(run.id)
        return runs[0], runs[1]
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_two_runs_share_four_workers_evenly(backend, tmp_path):
    with database(backend, tmp_path) as url:
        first, second = two_runs(url, TASKS_PER_RUN, seconds=0.03)
        workers = [start_worker(url, tmp_path / "logs", "--idle-timeout", "3") for _ in range(WORKERS)]
        samples: list[tuple[int, int]] = []
        store = open_store(url)
        try:
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline:
                done = (store.queue_counts(first)["done"], store.queue_counts(second)["done"])
                samples.append(done)
                if sum(done) == 2 * TASKS_PER_RUN or all(w.poll() is not None for w in workers):
                    break
                time.sleep(0.1)
        finally:
            store.close()
        assert wait_all(workers, timeout=60) == [0] * WORKERS
        assert_done_exactly_once(url, first, TASKS_PER_RUN)
        assert_done_exactly_once(url, second, TASKS_PER_RUN)

        # While both runs had work, neither got ahead by more than a few tasks (4 workers balance
        # their running counts; the slack covers samples taken between two claims).
        middle = [(a, b) for a, b in samples if TASKS_PER_RUN // 4 <= a + b <= TASKS_PER_RUN * 3 // 2]
        assert len(middle) >= 3, samples
        worst = max(abs(a - b) for a, b in middle)
        assert worst <= max(12, 0.15 * TASKS_PER_RUN), (worst, middle)


@pytest.mark.slow
def test_a_pinned_worker_serves_only_its_run(tmp_path):
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    first, second = two_runs(url, 20, seconds=0.0)
    pinned = start_worker(url, tmp_path / "logs", "--run", second, "--idle-timeout", "1")
    assert wait_all([pinned], timeout=90) == [0]
    store = open_store(url)
    try:
        assert store.queue_counts(second)["done"] == 20
        assert store.queue_counts(first) == {"pending": 20, "running": 0, "done": 0, "failed": 0, "cancelled": 0}
        assert all(row.attempt == 0 for row in store.evaluations(first))  # never even claimed
    finally:
        store.close()
