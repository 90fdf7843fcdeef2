"""The worker loop's decisions, in one process against the real SQLite store with a test clock.

The store's lease arithmetic runs on `RecordingStore.clock`, which only moves when a test moves it,
so a lease expires exactly when a test says so (`steal`), never by timing luck. The process tests
(test_worker_signals.py, test_worker_kills.py) cover the same rules with real `nas worker` processes.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest

from nascli.errors import GenomeError, StoreError
from nascli.heartbeat import Heartbeat, HeartbeatThread, heartbeat_interval
from nascli.store import EvaluationRequest, open_store
from nascli.store.records import EvaluationInfo
from nascli.task import Result, Task
from nascli.worker import Worker, WorkerOptions, evaluate_task, failure_from_exception
from tests.helpers import ManualClock, wait_for

GENOME = "In_28_28:C_3-3-1-1-32:P_2-2-2-2-0:D_10"


class RecordingStore:
    """The real Store on a SQLite file (one run, `tasks` queued, failures final: max_attempts 1), which
    records what the worker asked of it. Every other method is the Store's own."""

    def __init__(self, path, tasks: list[Task], *, run_config: dict | None = None,
                 stop_after_result: Worker | None = None) -> None:
        self.clock = ManualClock()
        self.store = open_store(f"sqlite:///{path}", create=True, clock=self.clock)
        self.run_id = self.store.create_run("loop", "random", None, 0,
                                            {"worker": {"max_attempts": 1, **(run_config or {})}}).id
        self.ids = self.store.enqueue(self.run_id, [EvaluationRequest(None, task) for task in tasks])
        self.heartbeats: list[tuple[int, int, float]] = []
        self.releases: list[tuple[int, int]] = []
        self.claim_leases: list[float] = []
        self.heartbeat_error: Exception | None = None
        self.registered: list[str] = []
        self.check_ins: list[tuple[int | None, int | None]] = []
        self.batched = 0
        self.stop_after_result = stop_after_result  # a Worker to stop while its write is in flight

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def register_worker(self, worker_id, **info):
        self.registered.append(worker_id)
        return self.store.register_worker(worker_id, **info)

    def worker_seen(self, worker_id, *, tasks_done=None, tasks_failed=None):
        self.check_ins.append((tasks_done, tasks_failed))
        return self.store.worker_seen(worker_id, tasks_done=tasks_done, tasks_failed=tasks_failed)

    def claim(self, worker_id, *, run_id=None, lease_seconds):
        self.claim_leases.append(lease_seconds)
        return self.store.claim(worker_id, run_id=run_id, lease_seconds=lease_seconds)

    def complete_and_claim(self, evaluation_id, attempt, result, worker_id, *, run_id=None, lease_seconds):
        self.claim_leases.append(lease_seconds)
        written = self.store.complete_and_claim(evaluation_id, attempt, result, worker_id, run_id=run_id,
                                                lease_seconds=lease_seconds)
        self.batched += 1
        if self.stop_after_result is not None:
            self.stop_after_result.request_stop()
        return written

    def heartbeat(self, evaluation_id, attempt, lease_seconds):
        if self.heartbeat_error is not None:
            raise self.heartbeat_error
        self.heartbeats.append((evaluation_id, attempt, lease_seconds))
        return self.store.heartbeat(evaluation_id, attempt, lease_seconds)

    def release(self, evaluation_id, attempt):
        self.releases.append((evaluation_id, attempt))
        return self.store.release(evaluation_id, attempt)

    # ---- what a test reads back, by task number (1 = the first task queued)

    def row(self, number: int) -> EvaluationInfo:
        return self.store.evaluation(self.ids[number - 1])

    def statuses(self) -> list[str]:
        return [row.status for row in self.store.evaluations(self.run_id)]

    def writes(self) -> list[int]:
        """How many results were recorded for each task (the store keeps one per completed claim)."""
        written = Counter(finished.evaluation_id for finished in self.store.results(self.run_id))
        return [written[ident] for ident in self.ids]

    def steal(self, number: int) -> None:
        """Another worker takes task `number` over: its lease expires on the store's clock, then it is re-claimed."""
        row = self.row(number)
        self.clock.advance(row.lease_expires_at - self.clock() + 1)
        claim = self.store.claim("another-worker", run_id=self.run_id, lease_seconds=3600)
        assert claim is not None and claim.evaluation_id == row.id


@pytest.fixture
def recording(tmp_path):
    """RecordingStore(tasks, ...) for this test, closed afterwards."""
    opened = []

    def make(tasks, **options) -> RecordingStore:
        opened.append(RecordingStore(tmp_path / f"loop-{len(opened)}.db", tasks, **options))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


def synthetic(genome=GENOME, seconds=0.0, **keys) -> Task:
    return Task(genome=genome, task={"kind": "synthetic", "synthetic_seconds": seconds, **keys}, train={"epochs": 5})


def test_drains_the_queue_then_exits_when_idle(recording):
    store = recording([synthetic(), synthetic("In_8_8:D_10"), synthetic(synthetic_fail_genomes=["P_2"])])
    worker = Worker(store, WorkerOptions(idle_timeout=0.2))
    stats = worker.run()
    assert (stats.done, stats.failed, stats.discarded) == (2, 1, 0)
    assert store.writes() == [1, 1, 1]
    assert store.statuses() == ["done", "done", "failed"]
    assert store.row(3).result.error_kind == "crash"
    assert store.registered == [worker.worker_id]
    assert store.check_ins[-1] == (2, 1)  # the worker row gets its final counts at exit
    (row,) = [w for w in store.workers() if w.id == worker.worker_id]
    assert (row.tasks_done, row.tasks_failed) == (2, 1)


def test_task_counts_are_checked_in_every_few_seconds_not_per_task(recording):
    store = recording([synthetic() for _ in range(30)])
    started = time.monotonic()
    stats = Worker(store, WorkerOptions(idle_timeout=0)).run()
    assert stats.done == 30
    if time.monotonic() - started < 5:  # check-ins are every 5 s: only a loaded box takes that long for 30
        # after the first task, then only at exit
        assert store.check_ins == [(1, 0), (30, 0)]
    assert store.check_ins[0] == (1, 0) and store.check_ins[-1] == (30, 0) and len(store.check_ins) < 30


def test_an_evaluator_that_raises_becomes_a_typed_failure_and_the_worker_goes_on(recording):
    errors = iter([MemoryError("CUDA out of memory"), GenomeError("bad token"), RuntimeError("boom")])

    def flaky(task, **kwargs):
        error = next(errors, None)
        if error is not None:
            raise error
        return evaluate_task(task, **kwargs)

    store = recording([synthetic() for _ in range(4)])
    stats = Worker(store, WorkerOptions(idle_timeout=0), evaluate=flaky).run()
    kinds = [store.row(number).result.error_kind for number in (1, 2, 3, 4)]
    assert kinds == ["oom", "invalid_genome", "crash", None]
    assert (stats.done, stats.failed) == (1, 3)
    assert "RuntimeError: boom" in store.row(3).result.error_message


def test_max_tasks_stops_claiming(recording):
    store = recording([synthetic() for _ in range(5)])
    stats = Worker(store, WorkerOptions(max_tasks=2, idle_timeout=5)).run()
    assert stats.done == 2
    assert store.statuses() == ["done", "done", "pending", "pending", "pending"]


def test_a_lost_claim_stops_the_evaluation_and_its_result_is_never_written(recording):
    store = recording([synthetic(seconds=60)])
    worker = Worker(store, WorkerOptions(lease_seconds=30, heartbeat_seconds=0.2, max_tasks=1))
    threading.Thread(target=lambda: (wait_for(lambda: store.heartbeats, 30, "a first heartbeat"),
                                     store.steal(1))).start()
    started = time.monotonic()
    stats = worker.run()
    assert time.monotonic() - started < 15  # abandoned at the next heartbeat, not after the task's 60 s
    assert stats.discarded == 1 and stats.finished == 0
    assert store.writes() == [0] and store.row(1).attempt == 2
    assert (store.row(1).status, store.row(1).worker_id) == ("running", "another-worker")


def test_stop_request_releases_the_task_at_once_and_exits(recording):
    store = recording([synthetic(seconds=60), synthetic()])
    worker = Worker(store, WorkerOptions(lease_seconds=60, heartbeat_seconds=30))
    threading.Thread(target=lambda: (wait_for(lambda: store.row(1).status == "running", 30, "the claim"),
                                     worker.request_stop())).start()
    started = time.monotonic()
    stats = worker.run()
    assert time.monotonic() - started < 15  # not the task's 60 s, nor a 30 s heartbeat interval
    assert store.releases == [(store.ids[0], 1)]
    assert store.row(1).status == "pending" and store.writes() == [0, 0]
    assert store.row(2).status == "pending"  # stopped claiming
    assert stats.released == 1 and stats.finished == 0


def test_idle_worker_stops_within_a_second_of_the_request(recording):
    worker = Worker(recording([]), WorkerOptions())
    threading.Timer(1.5, worker.request_stop).start()  # past the first polls, into the longest idle backoff
    started = time.monotonic()
    worker.run()
    assert time.monotonic() - started < 1.5 + 3  # a 1 s budget, with room for a loaded machine


def test_the_runs_worker_settings_give_lease_and_heartbeat_unless_overridden(recording):
    store = recording([synthetic(seconds=0.5)], run_config={"lease_seconds": 0.9, "heartbeat_seconds": 0.1})
    Worker(store, WorkerOptions(run_id=store.run_id, idle_timeout=0)).run()
    assert store.claim_leases[0] == 0.9
    assert len(store.heartbeats) >= 3 and {lease for _, _, lease in store.heartbeats} == {0.9}
    assert store.writes() == [1]  # the store clock stands still: a 0.9 s lease never lapsed

    store = recording([synthetic()], run_config={"lease_seconds": 0.9})
    Worker(store, WorkerOptions(run_id=store.run_id, lease_seconds=7, idle_timeout=0)).run()
    assert store.claim_leases[0] == 7


def test_heartbeat_survives_database_errors_within_the_lease_then_gives_up(recording):
    store = recording([synthetic()])
    claim = store.claim("w", lease_seconds=1.0)
    store.heartbeat_error = StoreError("server closed the connection")
    stopping, clock = threading.Event(), ManualClock()
    heartbeat = Heartbeat(store, claim.evaluation_id, claim.attempt, lease_seconds=1.0, interval=0.01,
                          stopping=stopping, clock=clock).start()
    clock.advance(0.9)
    time.sleep(0.1)  # many failed beats, 0.9 s into the lease
    assert not heartbeat.lost.is_set()  # still within the lease: keep trying
    store.heartbeat_error = None
    wait_for(lambda: heartbeat.beats >= 1, 5, "a heartbeat through", step=0.01)
    assert not heartbeat.lost.is_set()
    store.heartbeat_error = StoreError("server closed the connection")
    clock.advance(0.9)
    time.sleep(0.1)
    assert not heartbeat.lost.is_set()  # 0.9 s since the last beat that got through
    clock.advance(0.2)
    wait_for(heartbeat.lost.is_set, 5, "the claim given up", step=0.01)  # a whole lease without a heartbeat
    heartbeat.finish()


def test_one_heartbeat_thread_serves_a_workers_claims_in_turn(recording):
    store = recording([synthetic(), synthetic()])
    shared, stopping = HeartbeatThread(), threading.Event()
    threads_before = threading.active_count()
    beats = []
    for _ in range(2):
        claim = store.claim("w", lease_seconds=1.0)
        heartbeat = Heartbeat(store, claim.evaluation_id, claim.attempt, lease_seconds=1.0, interval=0.05,
                              stopping=stopping, thread=shared).start()
        wait_for(lambda heartbeat=heartbeat: heartbeat.beats >= 2, 5, "two heartbeats", step=0.01)
        heartbeat.finish()
        beats.append((heartbeat, heartbeat.beats))
        assert threading.active_count() == threads_before + 1  # one thread for both claims
    time.sleep(0.2)
    assert all(heartbeat.beats == count for heartbeat, count in beats), "a finished heartbeat kept beating"
    assert {eid for eid, _, _ in store.heartbeats} == set(store.ids)


def test_finish_waits_for_a_heartbeat_in_flight(recording):
    entered = threading.Event()
    store = recording([synthetic()])
    real_heartbeat = store.heartbeat

    def slow_heartbeat(evaluation_id, attempt, lease_seconds):
        entered.set()
        time.sleep(0.3)
        return real_heartbeat(evaluation_id, attempt, lease_seconds)

    store.heartbeat = slow_heartbeat
    claim = store.claim("w", lease_seconds=5.0)
    heartbeat = Heartbeat(store, claim.evaluation_id, claim.attempt, lease_seconds=5.0, interval=0.01,
                          stopping=threading.Event()).start()
    assert entered.wait(5)
    heartbeat.finish()
    assert heartbeat.beats == 1  # the write under way when finish() was called completed first


def test_a_worker_uses_one_heartbeat_thread_for_all_its_tasks(recording, monkeypatch):
    store = recording([synthetic() for _ in range(20)])
    served_by = []
    real_serve = HeartbeatThread.serve

    def serve(self, heartbeat):
        real_serve(self, heartbeat)
        served_by.append(self._thread.ident)

    monkeypatch.setattr(HeartbeatThread, "serve", serve)
    Worker(store, WorkerOptions(run_id=store.run_id, idle_timeout=0)).run()
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


def test_the_next_task_comes_with_the_result_and_each_runs_once(recording):
    store = recording([synthetic() for _ in range(5)])
    stats = Worker(store, WorkerOptions(idle_timeout=0.1)).run()
    assert stats.done == 5 and store.writes() == [1] * 5
    assert store.batched == 5  # every result; the last one found nothing more
    assert store.claim_leases.count(store.claim_leases[0]) == len(store.claim_leases)
    assert [row.attempt for row in store.evaluations(store.run_id)] == [1] * 5


def test_max_tasks_takes_no_task_with_its_last_result(recording):
    store = recording([synthetic() for _ in range(5)])
    assert Worker(store, WorkerOptions(max_tasks=2, idle_timeout=5)).run().done == 2
    assert store.statuses() == ["done", "done", "pending", "pending", "pending"]
    assert store.releases == []


def test_a_stop_during_the_write_gives_the_task_taken_with_it_back(recording):
    store = recording([synthetic() for _ in range(3)])
    worker = Worker(store, WorkerOptions(idle_timeout=5))
    store.stop_after_result = worker
    assert worker.run().done == 1
    assert store.releases == [(store.ids[1], 1)]
    assert store.statuses() == ["done", "pending", "pending"]
    assert store.row(2).releases == 1 and store.row(2).attempt == 1


def test_an_idle_worker_bound_to_a_run_polls_at_most_every_worker_poll_seconds(recording):
    claims = {}
    for poll in (0.1, 1.0):
        store = recording([], run_config={"poll_seconds": poll})
        Worker(store, WorkerOptions(run_id=store.run_id, idle_timeout=1.5), rng=random.Random(0)).run()
        claims[poll] = len(store.claim_leases)
    # backoff 0.05 s doubling, jittered x0.5-1, capped at poll_seconds: ~20 polls in 1.5 s at 0.1 s, ~6 at 1 s
    assert claims[0.1] >= 2 * claims[1.0], claims
