"""The weights repository (nascli.store.weights) on SQLite and PostgreSQL: weights are written with the
fenced result or not at all, read back by any store, evicted, measured, and deleted with their run."""

from __future__ import annotations

import dataclasses

from nascli.store import Store, open_store
from nascli.store.weights import WeightsCache
from tests.integration.test_store_contract import LEASE, done, new_run, queue


def _done_with(weights: bytes):
    return dataclasses.replace(done(), weights=weights, extra={"weights_bytes": len(weights)})


def test_weights_are_written_with_the_result_and_read_by_another_store(store: Store, store_url: str) -> None:
    run_id = new_run(store)
    (evaluation,) = queue(store, run_id, 1)
    claim = store.claim("w", lease_seconds=LEASE)
    blob = bytes(range(256)) * 40  # binary, with NUL bytes
    assert store.complete(evaluation, claim.attempt, _done_with(blob))
    other = open_store(store_url)
    try:
        assert other.weights(evaluation) == blob
        assert other.stored_weight_ids(run_id) == {evaluation}
        size = other.repository_size(run_id)
        assert (size.models, size.bytes) == (1, len(blob))
    finally:
        other.close()
    assert store.results(run_id)[0].result.extra["weights_bytes"] == len(blob)


def test_a_fenced_off_result_stores_no_weights(store: Store) -> None:
    run_id = new_run(store)
    (evaluation,) = queue(store, run_id, 1)
    first = store.claim("w1", lease_seconds=LEASE)
    store.release(evaluation, first.attempt)
    second = store.claim("w2", lease_seconds=LEASE)
    assert not store.complete(evaluation, first.attempt, _done_with(b"stale"))
    assert store.weights(evaluation) is None
    assert store.complete(evaluation, second.attempt, _done_with(b"fresh"))
    assert store.complete(evaluation, second.attempt, _done_with(b"fresh"))  # a retried write: same row
    assert store.weights(evaluation) == b"fresh" and store.repository_size(run_id).models == 1


def test_complete_and_claim_writes_the_weights_in_its_transaction(store: Store) -> None:
    run_id = new_run(store)
    first, second = queue(store, run_id, 2)
    claim = store.claim("w", lease_seconds=LEASE)
    written, following = store.complete_and_claim(first, claim.attempt, _done_with(b"w1"), "w", lease_seconds=LEASE)
    assert written and following.evaluation_id == second
    assert store.weights(first) == b"w1"


def test_evict_measure_and_delete(store: Store) -> None:
    run_id, other_run = new_run(store), new_run(store)
    ids = queue(store, run_id, 3)
    (foreign,) = queue(store, other_run, 1)
    for _ in range(4):
        claim = store.claim("w", lease_seconds=LEASE)
        store.complete(claim.evaluation_id, claim.attempt, _done_with(b"x" * (10 + claim.evaluation_id)))
    assert store.evict_weights(run_id, [ids[0], ids[1], foreign]) == 2  # another run's weights stay
    assert store.stored_weight_ids(run_id) == {ids[2]} and store.weights(foreign) is not None
    assert store.repository_size(run_id).bytes == 10 + ids[2]
    store.set_run_status(run_id, "finished")
    store.delete_run(run_id)
    assert store.weights(ids[2]) is None and store.weights(foreign) is not None


def test_worker_cache_fetches_each_donor_once() -> None:
    fetched: list[int] = []

    def fetch(evaluation_id: int) -> bytes | None:
        fetched.append(evaluation_id)
        return None if evaluation_id == 9 else bytes([evaluation_id])

    cache = WeightsCache(fetch, capacity=2)
    assert [cache.get(i) for i in (1, 1, 2, 1, 3, 2, 9, 9)] == [b"\x01", b"\x01", b"\x02", b"\x01", b"\x03", b"\x02",
                                                                 None, None]
    assert fetched == [1, 2, 3, 2, 9, 9]  # 2 fell out when 3 came (1 was used later); misses are not cached
