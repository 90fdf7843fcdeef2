"""The worker's port: `Worker` asks the database only what `WorkerStore` declares, the real Store
implements all of it with the same signatures, and the in-memory queue of tests/fakes/ serves a
worker end to end (its rules are checked against SQLite and PostgreSQL in test_store_contract)."""

from __future__ import annotations

import inspect

from nascli.store import EvaluationRequest, open_store
from nascli.task import Task
from nascli.worker import Worker, WorkerOptions, WorkerStore
from tests.fakes.queue import InMemoryQueue

PORT = [name for name, member in vars(WorkerStore).items() if inspect.isfunction(member) and not name.startswith("_")]


def parameters(function) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_the_port_is_the_whole_queue_contract_a_worker_uses():
    assert sorted(PORT) == ["claim", "complete", "complete_and_claim", "get_run", "heartbeat", "prepare_worker",
                            "register_worker", "release", "weights", "worker_seen"]


def test_store_and_fake_implement_the_port_with_its_signatures(tmp_path):
    # Compared on instances: the Store facade binds each call to its repository's method when it opens.
    store = open_store(f"sqlite:///{tmp_path / 'nas.db'}", create=True)
    for name in PORT:
        expected = parameters(getattr(WorkerStore, name))[1:]  # without self
        assert parameters(getattr(store, name)) == expected, f"Store.{name}"
        assert parameters(getattr(InMemoryQueue(), name)) == expected, f"InMemoryQueue.{name}"


def test_a_worker_drains_the_in_memory_queue():
    queue = InMemoryQueue()
    run = queue.create_run("port", "random", None, 0, {"worker": {"max_attempts": 1}})
    tasks = [Task(genome=genome, task={"kind": "synthetic", "synthetic_seconds": 0}, train={"epochs": 1}, seed=1)
             for genome in ("In_8_8:D_2", "In_8_8:C_3-3-1-1-4:D_2")]
    ids = queue.enqueue(run.id, [EvaluationRequest(None, task) for task in tasks])
    worker = Worker(queue, WorkerOptions(run_id=run.id, idle_timeout=0))
    stats = worker.run()
    assert queue.prepared and stats.done == 2
    assert [queue.evaluation(i).status for i in ids] == ["done", "done"]
    assert [finished.worker_id for finished in queue.results(run.id)] == [worker.worker_id] * 2
    (row,) = queue.workers()
    assert (row.id, row.tasks_done) == (worker.worker_id, 2)


def test_a_worker_fetches_its_donor_through_the_port():
    queue = InMemoryQueue()
    run = queue.create_run("port", "random", None, 0, {"worker": {"max_attempts": 1}})
    synthetic = {"kind": "synthetic", "synthetic_seconds": 0}
    donor_task = Task(genome="In_8_8:C_3-3-1-1-4:D_2", task=synthetic, train={"epochs": 1, "transfer": "parent"},
                      seed=1)
    (donor,) = queue.enqueue(run.id, [EvaluationRequest(None, donor_task)])
    Worker(queue, WorkerOptions(run_id=run.id, idle_timeout=0)).run()
    assert queue.weights(donor) == donor_task.genome.encode()  # stored with the donor's result
    child_task = Task(genome="In_8_8:C_3-3-1-1-4:C_3-3-1-1-4:D_2", task=synthetic,
                      train={"epochs": 1, "transfer": "parent", "transfer_donor": donor}, seed=2)
    (child,) = queue.enqueue(run.id, [EvaluationRequest(None, child_task)])
    Worker(queue, WorkerOptions(run_id=run.id, idle_timeout=0)).run()
    transfer = queue.results(run.id)[-1].result.extra["transfer"]
    assert transfer["donor"] == donor and "missing" not in transfer and transfer["layers"] >= 1
