"""The worker loop's decisions, in one process against an in-memory store that fences like the real one.

The real-store, real-process tests live in test_worker_processes.py; these pin down the rules
(what is written, released or discarded) quickly and without timing luck.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, replace

import pytest

from nascli.errors import GenomeError, StoreError
from nascli.heartbeat import Heartbeat, HeartbeatThread, heartbeat_interval
from nascli.task import Result, Task
from nascli.worker import Worker, WorkerOptions, evaluate_task, failure_from_exception
from tests.helpers import wait_for

GENOME = "In_28_28:C_3-3-1-1-32:P_2-2-2-2-0:D_10"


@dataclass(frozen=True)
class FakeClaim:
    evaluation_id: int
    attempt: int
    task: Task
    lease_expires_at: float


class FakeStore:
    """Claims, leases and the attempt fencing token, as the store contract describes them."""

    def __init__(self, tasks: list[Task], *, run_config: dict | None = None) -> None:
        self.lock = threading.Lock()
        self.rows = {i + 1: {"task": replace(t, evaluation_id=i + 1, run_id="r-1"), "status": "pending",
                             "attempt": 0, "expires": 0.0, "result": None, "writes": 0}
                     for i, t in enumerate(tasks)}
        self.run_config = run_config or {}
        self.heartbeats: list[tuple[int, int, float]] = []
        self.releases: list[tuple[int, int]] = []
        self.claim_leases: list[float] = []
        self.heartbeat_error: Exception | None = None
        self.registered: list[str] = []
        self.check_ins: list[tuple[int | None, int | None]] = []

    def register_worker(self, worker_id, **info):
        self.registered.append(worker_id)

    def worker_seen(self, worker_id, *, tasks_done=None, tasks_failed=None):
        self.check_ins.append((tasks_done, tasks_failed))
        return True

    def get_run(self, run_id):
        return type("Run", (), {"config": {"worker": self.run_config}})()

    def claim(self, worker_id, *, run_id=None, lease_seconds):
        with self.lock:
            self.claim_leases.append(lease_seconds)
            now = time.monotonic()
            for eid, row in self.rows.items():
                if row["status"] == "pending" or (row["status"] == "running" and row["expires"] < now):
                    row.update(status="running", attempt=row["attempt"] + 1, expires=now + lease_seconds)
                    return FakeClaim(eid, row["attempt"], replace(row["task"], attempt=row["attempt"]), row["expires"])
        return None

    def _holds(self, eid, attempt):
        row = self.rows[eid]
        return row["status"] == "running" and row["attempt"] == attempt

    def heartbeat(self, eid, attempt, lease_seconds):
        if self.heartbeat_error is not None:
            raise self.heartbeat_error
        with self.lock:
            self.heartbeats.append((eid, attempt, lease_seconds))
            if not self._holds(eid, attempt):
                return False
            self.rows[eid]["expires"] = time.monotonic() + lease_seconds
            return True

    def complete(self, eid, attempt, result):
        with self.lock:
            if not self._holds(eid, attempt):
                return False
            self.rows[eid].update(status=result.status, result=result, writes=self.rows[eid]["writes"] + 1)
            return True

    def release(self, eid, attempt):
        with self.lock:
            self.releases.append((eid, attempt))
            if not self._holds(eid, attempt):
                return False
            self.rows[eid].update(status="pending")
            return True

    def steal(self, eid):
        """Another worker takes the task over (as after an expired lease)."""
        with self.lock:
            self.rows[eid]["attempt"] += 1


def synthetic(genome=GENOME, seconds=0.0, **keys) -> Task:
    return Task(genome=genome, task={"kind": "synthetic", "synthetic_seconds": seconds, **keys}, train={"epochs": 5})


def test_drains_the_queue_then_exits_when_idle():
    store = FakeStore([synthetic(), synthetic("In_8_8:D_10"), synthetic(synthetic_fail_genomes=["P_2"])])
    worker = Worker(store, WorkerOptions(idle_timeout=0.2))
    stats = worker.run()
    assert (stats.done, stats.failed, stats.discarded) == (2, 1, 0)
    assert [row["writes"] for row in store.rows.values()] == [1, 1, 1]
    assert store.rows[3]["result"].error_kind == "crash"
    assert store.registered == [worker.worker_id]
    assert store.check_ins[-1] == (2, 1)  # the worker row gets its final counts at exit


def test_task_counts_are_checked_in_every_few_seconds_not_per_task():
    store = FakeStore([synthetic() for _ in range(30)])
    stats = Worker(store, WorkerOptions(idle_timeout=0)).run()
    assert stats.done == 30
    # after the first task, then (30 tasks take far less than 5 s) only at exit
    assert store.check_ins == [(1, 0), (30, 0)]


def test_an_evaluator_that_raises_becomes_a_typed_failure_and_the_worker_goes_on():
    errors = iter([MemoryError("CUDA out of memory"), GenomeError("bad token"), RuntimeError("boom")])

    def flaky(task, **kwargs):
        error = next(errors, None)
        if error is not None:
            raise error
        return evaluate_task(task, **kwargs)

    store = FakeStore([synthetic() for _ in range(4)])
    stats = Worker(store, WorkerOptions(idle_timeout=0), evaluate=flaky).run()
    kinds = [row["result"].error_kind for row in store.rows.values()]
    assert kinds == ["oom", "invalid_genome", "crash", None]
    assert (stats.done, stats.failed) == (1, 3)
    assert "RuntimeError: boom" in store.rows[3]["result"].error_message


def test_max_tasks_stops_claiming():
    store = FakeStore([synthetic() for _ in range(5)])
    stats = Worker(store, WorkerOptions(max_tasks=2, idle_timeout=5)).run()
    assert stats.done == 2
    assert [row["status"] for row in store.rows.values()] == ["done", "done", "pending", "pending", "pending"]


def test_a_lost_claim_stops_the_evaluation_and_its_result_is_never_written():
    store = FakeStore([synthetic(seconds=30)])
    worker = Worker(store, WorkerOptions(lease_seconds=0.6, max_tasks=1))
    threading.Timer(0.3, store.steal, args=(1,)).start()
    started = time.monotonic()
    stats = worker.run()
    assert time.monotonic() - started < 2.0  # abandoned at the next heartbeat, not after 30 s
    assert stats.discarded == 1 and stats.finished == 0
    assert store.rows[1]["writes"] == 0 and store.rows[1]["attempt"] == 2


def test_stop_request_releases_the_task_at_once_and_exits():
    store = FakeStore([synthetic(seconds=30), synthetic()])
    worker = Worker(store, WorkerOptions(lease_seconds=60, heartbeat_seconds=30))
    threading.Timer(0.3, worker.request_stop).start()
    started = time.monotonic()
    stats = worker.run()
    assert time.monotonic() - started < 1.0
    assert store.releases == [(1, 1)]
    assert store.rows[1]["status"] == "pending" and store.rows[1]["writes"] == 0
    assert store.rows[2]["status"] == "pending"  # stopped claiming
    assert stats.released == 1 and stats.finished == 0


def test_idle_worker_stops_within_a_second_of_the_request():
    worker = Worker(FakeStore([]), WorkerOptions())
    threading.Timer(0.5, worker.request_stop).start()
    started = time.monotonic()
    worker.run()
    assert time.monotonic() - started < 1.5


def test_the_runs_worker_settings_give_lease_and_heartbeat_unless_overridden():
    store = FakeStore([synthetic(seconds=0.5)], run_config={"lease_seconds": 0.9, "heartbeat_seconds": 0.1})
    Worker(store, WorkerOptions(run_id="r-1", idle_timeout=0)).run()
    assert store.claim_leases[0] == 0.9
    assert len(store.heartbeats) >= 3 and {lease for _, _, lease in store.heartbeats} == {0.9}

    store = FakeStore([synthetic()], run_config={"lease_seconds": 0.9})
    Worker(store, WorkerOptions(run_id="r-1", lease_seconds=7, idle_timeout=0)).run()
    assert store.claim_leases[0] == 7


def test_heartbeat_survives_database_errors_within_the_lease_then_gives_up():
    store = FakeStore([synthetic()])
    claim = store.claim("w", lease_seconds=1.0)
    store.heartbeat_error = StoreError("server closed the connection")
    stopping = threading.Event()
    heartbeat = Heartbeat(store, claim.evaluation_id, claim.attempt, lease_seconds=1.0, interval=0.1,
                          stopping=stopping).start()
    time.sleep(0.5)
    assert not heartbeat.lost.is_set()  # still within the lease: keep trying
    store.heartbeat_error = None
    time.sleep(0.3)
    assert heartbeat.beats >= 1 and not heartbeat.lost.is_set()
    store.heartbeat_error = StoreError("server closed the connection")
    time.sleep(1.6)
    assert heartbeat.lost.is_set()  # a whole lease without a heartbeat: the claim may be gone
    heartbeat.finish()


def test_one_heartbeat_thread_serves_a_workers_claims_in_turn():
    store = FakeStore([synthetic(), synthetic()])
    shared, stopping = HeartbeatThread(), threading.Event()
    threads_before = threading.active_count()
    beats = []
    for _ in range(2):
        claim = store.claim("w", lease_seconds=1.0)
        heartbeat = Heartbeat(store, claim.evaluation_id, claim.attempt, lease_seconds=1.0, interval=0.05,
                              stopping=stopping, thread=shared).start()
        wait_for(lambda: heartbeat.beats >= 2, 5, "two heartbeats", step=0.01)
        heartbeat.finish()
        beats.append((heartbeat, heartbeat.beats))
        assert threading.active_count() == threads_before + 1  # one thread for both claims
    time.sleep(0.2)
    assert all(heartbeat.beats == count for heartbeat, count in beats), "a finished heartbeat kept beating"
    assert {eid for eid, _, _ in store.heartbeats} == {1, 2}


def test_finish_waits_for_a_heartbeat_in_flight():
    class SlowStore(FakeStore):
        def heartbeat(self, eid, attempt, lease_seconds):
            entered.set()
            time.sleep(0.3)
            return super().heartbeat(eid, attempt, lease_seconds)

    entered = threading.Event()
    store = SlowStore([synthetic()])
    claim = store.claim("w", lease_seconds=5.0)
    heartbeat = Heartbeat(store, claim.evaluation_id, claim.attempt, lease_seconds=5.0, interval=0.01,
                          stopping=threading.Event()).start()
    assert entered.wait(5)
    heartbeat.finish()
    assert heartbeat.beats == 1  # the write under way when finish() was called completed first


def test_a_worker_uses_one_heartbeat_thread_for_all_its_tasks(monkeypatch):
    store = FakeStore([synthetic() for _ in range(20)])
    served_by = []
    real_serve = HeartbeatThread.serve

    def serve(self, heartbeat):
        real_serve(self, heartbeat)
        served_by.append(self._thread.ident)

    monkeypatch.setattr(HeartbeatThread, "serve", serve)
    Worker(store, WorkerOptions(run_id="r-1", idle_timeout=0)).run()
    assert len(served_by) == 20 and len(set(served_by)) == 1


def test_heartbeat_interval_keeps_three_beats_per_lease():
    assert heartbeat_interval(120, 15) == 15
    assert heartbeat_interval(2, 15) == pytest.approx(2 / 3)
    assert heartbeat_interval(9) == 3


@pytest.mark.parametrize(("error", "kind"), [
    (MemoryError(), "oom"),
    (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), "oom"),
    (type("OutOfMemoryError", (RuntimeError,), {})("x"), "oom"),
    (GenomeError("bad"), "invalid_genome"),
    (FloatingPointError("loss is nan"), "nan_loss"),
    (ValueError("shapes do not match"), "crash"),
])
def test_exceptions_map_to_failure_kinds(error, kind):
    result = failure_from_exception(error)
    assert isinstance(result, Result) and result.status == "failed" and result.error_kind == kind


class BatchingStore(FakeStore):
    """A store that, like the real one, can take the next task together with a result."""

    def __init__(self, tasks, *, stop_after_result=None) -> None:
        super().__init__(tasks)
        self.batched = 0
        self.stop_after_result = stop_after_result  # a Worker to stop while its write is in flight

    def complete_and_claim(self, eid, attempt, result, worker_id, *, run_id=None, lease_seconds):
        written = self.complete(eid, attempt, result)
        claim = self.claim(worker_id, run_id=run_id, lease_seconds=lease_seconds)
        self.batched += 1
        if self.stop_after_result is not None:
            self.stop_after_result.request_stop()
        return written, claim


def test_the_next_task_comes_with_the_result_and_each_runs_once():
    store = BatchingStore([synthetic() for _ in range(5)])
    stats = Worker(store, WorkerOptions(idle_timeout=0.1)).run()
    assert stats.done == 5 and [row["writes"] for row in store.rows.values()] == [1] * 5
    assert store.batched == 5  # every result; the last one found nothing more


def test_max_tasks_takes_no_task_with_its_last_result():
    store = BatchingStore([synthetic() for _ in range(5)])
    assert Worker(store, WorkerOptions(max_tasks=2, idle_timeout=5)).run().done == 2
    assert [row["status"] for row in store.rows.values()] == ["done", "done", "pending", "pending", "pending"]
    assert store.releases == []


def test_a_stop_during_the_write_gives_the_task_taken_with_it_back():
    store = BatchingStore([synthetic() for _ in range(3)])
    worker = Worker(store, WorkerOptions(idle_timeout=5))
    store.stop_after_result = worker
    assert worker.run().done == 1
    assert store.releases == [(2, 1)]
    assert [row["status"] for row in store.rows.values()] == ["done", "pending", "pending"]


def test_an_idle_worker_bound_to_a_run_polls_at_most_every_worker_poll_seconds():
    claims = {}
    for poll in (0.1, 1.0):
        store = FakeStore([], run_config={"poll_seconds": poll})
        Worker(store, WorkerOptions(run_id="r-1", idle_timeout=1.5), rng=random.Random(0)).run()
        claims[poll] = len(store.claim_leases)
    # backoff 0.05 s doubling, jittered x0.5-1, capped at poll_seconds: ~20 polls in 1.5 s at 0.1 s, ~6 at 1 s
    assert claims[0.1] >= 2 * claims[1.0], claims
