"""The store contract, run against SQLite and PostgreSQL alike (the `store` fixture). The queue's
lease and fencing rules (the `queue_store` fixture) run against the in-memory queue of
tests/fakes/queue.py as well, so the fake a unit test uses keeps to the same contract."""

from __future__ import annotations

import time

import pytest

from nascli.errors import RunNotFoundError, StoreError
from nascli.store import EvaluationRequest, NewIndividual, Store, open_store
from nascli.task import Result, Task
from tests.fakes.queue import InMemoryQueue
from tests.helpers import ManualClock

LEASE = 30.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def queue_store(request: pytest.FixtureRequest, tmp_path, clock: ManualClock):
    """The in-memory queue, and the real Store on each backend (as the `store` fixture opens it), on
    `clock`. test_expired_lease_is_reclaimed_and_late_result_rejected keeps the database clock."""
    wall = "database_clock" in request.keywords
    if request.param == "memory":
        yield InMemoryQueue() if wall else InMemoryQueue(clock=clock)
        return
    url = f"sqlite:///{tmp_path / 'nas.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")
    opened = open_store(url, create=True, retry_seconds=5, clock=None if wall else clock)
    yield opened
    opened.close()


def make_task(genome: str = "In_8_8:D_2") -> Task:
    return Task(genome=genome, task={"kind": "synthetic"}, train={"epochs": 1}, seed=3)


def new_run(store: Store, **config) -> str:
    return store.create_run("test", "island-ga", None, 7, {"worker": config} if config else {}).id


def queue(store: Store, run_id: str, n: int, *, priority: int = 0, generation: int = 0) -> list[int]:
    individuals = store.add_individuals(run_id, [NewIndividual(0, generation, slot, f"g{slot}", f"h{generation}-{slot}")
                                                 for slot in range(n)])
    return store.enqueue(run_id, [EvaluationRequest(i, make_task(f"g{k}"), priority=priority, config_hash="cfg")
                                  for k, i in enumerate(individuals)])


def done(accuracy: float = 0.5) -> Result:
    return Result(status="done", val_accuracy=accuracy, test_accuracy=accuracy - 0.1, params=1234, flops=10**12,
                  epochs_run=2, train_seconds=0.25, extra={"note": "x"})


# ---------------------------------------------------------------- runs
def test_runs_roundtrip_latest_prefix_and_status(store: Store) -> None:
    first = store.create_run("a", "island-ga", "digits-quick", 1, {"ga": {"islands": 2}})
    second = store.create_run("b", "nsga2", None, 2, {})
    assert first.id.startswith("r-") and len(first.id) == 8 and first.id != second.id
    assert store.get_run(first.id).config == {"ga": {"islands": 2}}
    assert store.get_run("latest").id == second.id
    assert store.get_run(first.id[2:]).id == first.id  # a unique prefix without 'r-'
    assert [run.id for run in store.list_runs()] == [second.id, first.id]
    finished = store.set_run_status(first.id, "finished")
    assert finished.status == "finished" and finished.finished_at is not None
    with pytest.raises(StoreError, match="unknown run status"):
        store.set_run_status(first.id, "exploded")


def test_unknown_run_hint_lists_recent_ids(store: Store) -> None:
    with pytest.raises(RunNotFoundError, match="no runs yet"):
        store.get_run("latest")
    run_id = new_run(store)
    with pytest.raises(RunNotFoundError) as caught:
        store.get_run("r-000000")
    assert run_id in caught.value.hint and "\n" not in str(caught.value)
    with pytest.raises(RunNotFoundError):
        store.enqueue("r-nope00", [EvaluationRequest(None, make_task())])
    assert store.queue_counts() == {"pending": 0, "running": 0, "done": 0, "failed": 0, "cancelled": 0}


def test_driver_lease_one_live_driver(store: Store) -> None:
    run_id = new_run(store)
    assert store.acquire_driver_lease(run_id, "driver-a", 0.3)
    assert store.acquire_driver_lease(run_id, "driver-a", 0.3)  # re-entrant
    assert not store.acquire_driver_lease(run_id, "driver-b", 10, force=True)  # live: never
    time.sleep(0.5)
    assert not store.acquire_driver_lease(run_id, "driver-b", 10)  # expired: only with force
    assert store.acquire_driver_lease(run_id, "driver-b", 10, force=True)
    assert not store.renew_driver_lease(run_id, "driver-a", 10)
    assert store.renew_driver_lease(run_id, "driver-b", 10)
    assert store.release_driver_lease(run_id, "driver-b")
    assert store.acquire_driver_lease(run_id, "driver-c", 10)
    assert store.get_run(run_id).driver_owner == "driver-c"


# ---------------------------------------------------------------- individuals
def test_add_individuals_is_idempotent_per_slot(store: Store) -> None:
    run_id = new_run(store)
    items = [NewIndividual(1, 0, slot, f"g{slot}", f"h{slot}", parents=(), operator="insert") for slot in range(3)]
    ids = store.add_individuals(run_id, items)
    again = store.add_individuals(run_id, [items[2], NewIndividual(1, 0, 3, "g3", "h3", parents=(ids[0], ids[1]))])
    assert again[0] == ids[2] and len(set(ids + again)) == 4
    listed = store.individuals(run_id)
    assert [i.id for i in listed] == ids + [again[1]]
    assert listed[3].parents == (ids[0], ids[1]) and listed[0].operator == "insert"
    assert store.mark_replaced([ids[0]], generation=1) == 1
    assert [i.id for i in store.individuals(run_id, alive=True)] == ids[1:] + [again[1]]
    assert store.individuals(run_id, alive=False)[0].replaced_generation == 1


def test_islands_migrations_workers_events(store: Store) -> None:
    run_id = new_run(store)
    store.set_island_generation(run_id, 0, 1)
    store.set_island_generation(run_id, 0, 2)
    store.set_island_generation(run_id, 1, 1)
    assert [(i.island, i.generation) for i in store.islands(run_id)] == [(0, 2), (1, 1)]
    (individual,) = store.add_individuals(run_id, [NewIndividual(0, 0, 0, "g", "h")])
    store.record_migration(run_id, 5, 0, 1, individual)
    assert [(m.generation, m.from_island, m.to_island) for m in store.migrations(run_id)] == [(5, 0, 1)]
    store.register_worker("host:1", host="host", pid=1, device="cpu")
    assert store.worker_seen("host:1") and not store.worker_seen("ghost")
    assert store.worker_seen("host:1", tasks_done=7, tasks_failed=2)
    assert store.worker_seen("host:1", tasks_done=7, tasks_failed=2)  # totals: a retried write counts nothing twice
    assert store.worker_seen("host:1")  # last seen only: the counts stay
    assert [(w.tasks_done, w.tasks_failed) for w in store.workers()] == [(7, 2)]
    assert [w.id for w in store.workers()] == ["host:1"]
    assert [store.append_event(run_id, "generation", {"n": n}) for n in range(3)] == [1, 2, 3]
    assert [(e.seq, e.payload["n"]) for e in store.events(run_id, after_seq=1)] == [(2, 1), (3, 2)]


# ---------------------------------------------------------------- queue
def test_enqueue_is_batched_and_idempotent_per_individual(queue_store: Store) -> None:
    store = queue_store
    run_id = new_run(store)
    ids = queue(store, run_id, 5)
    individual_ids = [i.id for i in store.individuals(run_id)]
    assert store.enqueue(run_id, [EvaluationRequest(individual_ids[2], make_task())]) == [ids[2]]
    assert store.queue_counts(run_id)["pending"] == 5
    free = store.enqueue(run_id, [EvaluationRequest(None, make_task()), EvaluationRequest(None, make_task())])
    assert len(set(free)) == 2 and store.queue_counts(run_id)["pending"] == 7


def test_claim_order_priority_then_fifo_and_task_is_self_contained(queue_store: Store) -> None:
    store = queue_store
    run_id = new_run(store)
    low = queue(store, run_id, 2)
    high = queue(store, run_id, 1, priority=5, generation=1)
    claims = [store.claim("w", lease_seconds=LEASE) for _ in range(3)]
    assert [c.evaluation_id for c in claims] == high + low
    assert claims[0].attempt == 1 and claims[0].task.run_id == run_id
    assert claims[0].task.evaluation_id == high[0] and claims[0].task.attempt == 1
    assert claims[1].task.genome == "g0" and claims[1].task.train == {"epochs": 1}
    assert claims[0].lease_expires_at > store.db_now() + LEASE - 5
    assert store.claim("w", lease_seconds=LEASE) is None


def test_claim_filters_by_run(queue_store: Store) -> None:
    store = queue_store
    run_a, run_b = new_run(store), new_run(store)
    queue(store, run_a, 1)
    (b,) = queue(store, run_b, 1)
    assert store.claim("w", run_id=run_b, lease_seconds=LEASE).evaluation_id == b
    assert store.claim("w", run_id=run_b, lease_seconds=LEASE) is None


def test_complete_records_metrics_in_completion_order(queue_store: Store) -> None:
    store = queue_store
    run_id = new_run(store)
    store.register_worker("w", host="h", pid=1, device="cpu")
    ids = queue(store, run_id, 3)
    claims = [store.claim("w", lease_seconds=LEASE) for _ in ids]
    assert store.complete(claims[2].evaluation_id, claims[2].attempt, done(0.9))
    assert store.complete(claims[0].evaluation_id, claims[0].attempt, Result.failure("too_large", "over max_params"))
    results = store.results(run_id)
    assert [(r.seq, r.evaluation_id, r.status) for r in results] == [(1, ids[2], "done"), (2, ids[0], "failed")]
    assert results[0].result == done(0.9) and results[0].worker_id == "w"
    assert results[1].result.error_kind == "too_large"
    assert [r.seq for r in store.results(run_id, after_id=1)] == [2]
    assert store.queue_counts(run_id) == {"pending": 0, "running": 1, "done": 1, "failed": 1, "cancelled": 0}
    (worker,) = store.workers()
    assert (worker.tasks_done, worker.tasks_failed) == (0, 0)  # a worker checks its counts in itself


def test_writes_are_fenced_by_attempt(queue_store: Store) -> None:
    store = queue_store
    run_id = new_run(store)
    (eid,) = queue(store, run_id, 1)
    claim = store.claim("w", lease_seconds=LEASE)
    assert not store.heartbeat(eid, claim.attempt + 1, LEASE)
    assert not store.complete(eid, claim.attempt - 1, done())
    assert store.heartbeat(eid, claim.attempt, LEASE)
    assert store.complete(eid, claim.attempt, done())
    assert store.complete(eid, claim.attempt, done())  # a retried write of the same claim: same answer
    assert not store.heartbeat(eid, claim.attempt, LEASE)  # finished: nothing more to hold
    assert not store.release(eid, claim.attempt + 1)
    assert len(store.results(run_id)) == 1


@pytest.mark.database_clock
def test_expired_lease_is_reclaimed_and_late_result_rejected(queue_store: Store) -> None:
    store = queue_store
    run_id = new_run(store)
    (eid,) = queue(store, run_id, 1)
    zombie = store.claim("zombie", lease_seconds=0.2)
    assert store.claim("other", lease_seconds=LEASE) is None  # lease still live
    time.sleep(0.4)
    fresh = store.claim("other", lease_seconds=LEASE)  # no reaper needed
    assert fresh.evaluation_id == eid and fresh.attempt == zombie.attempt + 1
    assert not store.heartbeat(eid, zombie.attempt, LEASE)
    assert not store.complete(eid, zombie.attempt, done(0.99))
    assert store.complete(eid, fresh.attempt, done(0.5))
    (result,) = store.results(run_id)
    assert result.result.val_accuracy == 0.5 and result.worker_id == "other"
    info = store.evaluation(eid)
    assert (info.attempt, info.lease_expiries, info.failures) == (2, 1, 0)


def test_reap_moves_expired_leases_back(queue_store: Store, clock: ManualClock) -> None:
    store = queue_store
    run_id = new_run(store)
    (eid,) = queue(store, run_id, 1)
    stale = store.claim("w", lease_seconds=0.2)
    clock.advance(0.4)
    assert store.reap(run_id) == 1
    assert store.queue_counts(run_id)["pending"] == 1
    assert not store.complete(eid, stale.attempt, done())
    assert store.claim("w2", lease_seconds=LEASE).attempt == stale.attempt + 1


def test_lease_expiries_are_capped_then_fail_as_timeout(queue_store: Store, clock: ManualClock) -> None:
    store = queue_store
    run_id = new_run(store, max_lease_expiries=2)
    (eid,) = queue(store, run_id, 1)
    store.claim("w", lease_seconds=0.2)
    clock.advance(0.4)
    assert store.claim("w", lease_seconds=0.2).attempt == 2  # first expiry: claimed again
    clock.advance(0.4)
    assert store.claim("w", lease_seconds=LEASE) is None  # second expiry: failed for good
    (result,) = store.results(run_id)
    assert result.status == "failed" and result.result.error_kind == "timeout"
    assert store.evaluation(eid).lease_expiries == 2


def test_retryable_failures_use_attempts_then_fail(queue_store: Store) -> None:
    store = queue_store
    run_id = new_run(store, max_attempts=2)
    (eid,) = queue(store, run_id, 1)
    first = store.claim("w", lease_seconds=LEASE)
    assert store.complete(eid, first.attempt, Result.failure("crash", "segfault"))
    assert store.queue_counts(run_id)["pending"] == 1 and store.results(run_id) == []
    second = store.claim("w", lease_seconds=LEASE)
    assert store.fail(eid, second.attempt, "oom", "CUDA out of memory")
    (result,) = store.results(run_id)
    assert result.result.error_kind == "oom" and store.evaluation(eid).failures == 2
    with pytest.raises(StoreError, match="unknown failure kind"):
        store.fail(eid, second.attempt, "gremlins", "?")


def test_release_consumes_no_attempt_but_token_still_advances(queue_store: Store) -> None:
    store = queue_store
    run_id = new_run(store, max_attempts=1)
    (eid,) = queue(store, run_id, 1)
    for expected_attempt in (1, 2, 3):
        claim = store.claim("w", lease_seconds=LEASE)
        assert claim.attempt == expected_attempt
        assert store.release(eid, claim.attempt)
        assert not store.complete(eid, claim.attempt, done())
    info = store.evaluation(eid)
    assert (info.status, info.failures, info.lease_expiries, info.releases) == ("pending", 0, 0, 3)


def test_cancel_pending_leaves_running_work(queue_store: Store) -> None:
    store = queue_store
    run_id = new_run(store)
    ids = queue(store, run_id, 3)
    claim = store.claim("w", lease_seconds=LEASE)
    assert store.cancel_pending(run_id) == 2
    assert store.claim("w", lease_seconds=LEASE) is None
    assert store.complete(claim.evaluation_id, claim.attempt, done())
    assert store.queue_counts(run_id) == {"pending": 0, "running": 0, "done": 1, "failed": 0, "cancelled": 2}
    assert claim.evaluation_id == ids[0]


def test_genotype_cache(store: Store) -> None:
    run_a, run_b = new_run(store), new_run(store)
    (eid,) = queue(store, run_a, 1)
    assert store.cached_result(None, "h0-0", "cfg") is None
    claim = store.claim("w", lease_seconds=LEASE)
    store.complete(eid, claim.attempt, done(0.8))
    assert store.cached_result(run_a, "h0-0", "cfg").evaluation_id == eid
    assert store.cached_result(run_b, "h0-0", "cfg") is None
    assert store.cached_result(None, "h0-0", "other-config") is None
    hit = store.cached_result(None, "h0-0", "cfg")
    (individual,) = store.add_individuals(run_b, [NewIndividual(0, 0, 0, "g0", "h0-0")])
    copied = store.record_cached_result(run_b, individual, hit)
    assert copied.seq == 1 and copied.result.val_accuracy == 0.8
    assert copied.result.extra["cached_from"] == eid
    assert store.record_cached_result(run_b, individual, hit).evaluation_id == copied.evaluation_id
    assert [r.evaluation_id for r in store.results(run_b)] == [copied.evaluation_id]


def test_crash_failures_are_not_cached(store: Store) -> None:
    run_id = new_run(store, max_attempts=1)
    (eid,) = queue(store, run_id, 1)
    claim = store.claim("w", lease_seconds=LEASE)
    store.fail(eid, claim.attempt, "crash", "boom")
    assert store.results(run_id)[0].status == "failed"
    assert store.cached_result(None, "h0-0", "cfg") is None


def test_reopen_checks_schema_and_keeps_data(store: Store, store_url: str) -> None:
    run_id = new_run(store)
    again = open_store(store_url)
    try:
        assert again.get_run(run_id).id == run_id and again.check_schema() >= 1
        assert not again.init_schema()  # idempotent
    finally:
        again.close()


def test_atomically_is_one_transaction_all_or_nothing(store: Store) -> None:
    run_id = new_run(store)

    def step(fail: bool) -> list[int]:
        store.append_event(run_id, "ask", {"n": 1})
        ids = store.add_individuals(run_id, [NewIndividual(0, 1, 0, "g", "h")])
        store.set_island_generations(run_id, {0: 1, 1: 1})
        if fail:
            raise RuntimeError("the driver died mid-step")
        return ids

    with pytest.raises(RuntimeError):
        store.atomically(lambda: step(fail=True), what="test step")
    assert store.events(run_id) == [] and store.individuals(run_id) == [] and store.islands(run_id) == []
    ids = store.atomically(lambda: step(fail=False), what="test step")
    assert [e.kind for e in store.events(run_id)] == ["ask"]
    assert [i.id for i in store.individuals(run_id)] == ids
    store.set_island_generations(run_id, {1: 2, 2: 1})  # one updated, one new, one left alone
    assert [(i.island, i.generation) for i in store.islands(run_id)] == [(0, 1), (1, 2), (2, 1)]


def test_cached_results_finds_several_genomes_in_one_lookup(store: Store) -> None:
    run_id = new_run(store)
    ids = queue(store, run_id, 3)
    for accuracy in (0.7, 0.8):
        claim = store.claim("w", run_id=run_id, lease_seconds=LEASE)
        store.complete(claim.evaluation_id, claim.attempt, done(accuracy))
    hits = store.cached_results(run_id, ["h0-0", "h0-1", "h0-2", "unknown"], "cfg")
    assert {h: e.evaluation_id for h, e in hits.items()} == {"h0-0": ids[0], "h0-1": ids[1]}
    assert hits["h0-1"].result.val_accuracy == 0.8
    assert store.cached_results(run_id, [], "cfg") == {}


def test_complete_and_claim_writes_the_result_and_takes_the_next(queue_store: Store) -> None:
    store = queue_store
    run_id = new_run(store)
    ids = queue(store, run_id, 2)
    first = store.claim("w", run_id=run_id, lease_seconds=LEASE)
    written, second = store.complete_and_claim(first.evaluation_id, first.attempt, done(0.6), "w", run_id=run_id,
                                               lease_seconds=LEASE)
    assert written and second.evaluation_id == ids[1] and second.attempt == 1
    assert [store.evaluation(i).status for i in ids] == ["done", "running"]
    assert store.complete_and_claim(second.evaluation_id, second.attempt, done(), "w",
                                    lease_seconds=LEASE) == (True, None)
    # a lost claim writes nothing, and a retried write of the same claim is recognised as ours
    assert store.complete_and_claim(first.evaluation_id, first.attempt + 1, done(), "w",
                                    lease_seconds=LEASE)[0] is False
    assert store.complete_and_claim(first.evaluation_id, first.attempt, done(), "w", lease_seconds=LEASE)[0] is True
    assert [r.result.val_accuracy for r in store.results(run_id)] == [0.6, 0.5]


def test_prepare_worker_compiles_the_whole_worker_cycle(store: Store) -> None:
    """After prepare_worker, a worker's cycle (claims of one run and of any, heartbeat, complete and
    claim, a failure that goes back to pending, a release) compiles nothing more: no task waits on
    statement compilation, which a fleet started together would otherwise do all at once."""
    run_id = new_run(store)
    queue(store, run_id, 4)
    store.prepare_worker()
    compiled = set(store.db.dbapi.compiled_names())
    first = store.claim("w", run_id=run_id, lease_seconds=LEASE)
    assert store.heartbeat(first.evaluation_id, first.attempt, LEASE)
    written, second = store.complete_and_claim(first.evaluation_id, first.attempt, done(), "w", run_id=run_id,
                                               lease_seconds=LEASE)
    assert written
    assert store.complete(second.evaluation_id, second.attempt, Result.failure("crash", "boom"))
    third = store.claim("w", lease_seconds=LEASE)
    assert store.complete(third.evaluation_id, third.attempt, Result.failure("crash", "boom", extra={"x": 1}))
    fourth = store.claim("w", run_id=run_id, lease_seconds=LEASE)
    assert store.release(fourth.evaluation_id, fourth.attempt)
    assert set(store.db.dbapi.compiled_names()) == compiled


def test_complete_and_claim_fails_a_spent_lease_and_takes_the_next(queue_store: Store, clock: ManualClock) -> None:
    store = queue_store
    run_id = new_run(store, max_lease_expiries=1)
    stalled, fresh, working = queue(store, run_id, 3)
    store.claim("dead", run_id=run_id, lease_seconds=0.2)  # takes `stalled`, then its worker dies
    mine = store.claim("w", run_id=run_id, lease_seconds=LEASE)
    assert mine.evaluation_id == fresh
    clock.advance(0.4)
    # the next claim meets the expired lease first: its one expiry is spent, so it fails as timeout
    written, following = store.complete_and_claim(mine.evaluation_id, mine.attempt, done(0.7), "w", run_id=run_id,
                                                  lease_seconds=LEASE)
    assert written and following.evaluation_id == working
    assert store.evaluation(stalled).status == "failed"
    assert [(r.evaluation_id, r.status) for r in store.results(run_id)] == [(fresh, "done"), (stalled, "failed")]


def test_record_cached_results_copies_several_with_consecutive_seqs(store: Store) -> None:
    run_a, run_b = new_run(store), new_run(store)
    ids = queue(store, run_a, 2)
    for accuracy in (0.7, 0.8):
        claim = store.claim("w", run_id=run_a, lease_seconds=LEASE)
        store.complete(claim.evaluation_id, claim.attempt, done(accuracy))
    hits = store.cached_results(run_a, ["h0-0", "h0-1"], "cfg")
    targets = store.add_individuals(run_b, [NewIndividual(0, 0, slot, f"g{slot}", f"h0-{slot}") for slot in range(3)])
    copies = [(targets[0], hits["h0-1"]), (targets[1], hits["h0-0"]), (targets[2], hits["h0-1"])]
    first = store.record_cached_results(run_b, copies)
    assert [c.seq for c in first] == [1, 2, 3]
    assert [c.result.extra["cached_from"] for c in first] == [ids[1], ids[0], ids[1]]
    assert [c.result.val_accuracy for c in first] == [0.8, 0.7, 0.8]
    again = store.record_cached_results(run_b, copies + [(targets[0], hits["h0-0"])])  # idempotent per individual
    assert [c.evaluation_id for c in again] == [c.evaluation_id for c in first] + [first[0].evaluation_id]
    assert [r.seq for r in store.results(run_b)] == [1, 2, 3]
    with pytest.raises(StoreError, match="no individual"):
        store.record_cached_results(run_b, [(10**6, hits["h0-0"])])
