"""The run store and the evaluation queue: SQLite by default, PostgreSQL across hosts.

    store = open_store("sqlite:///nas.db")            # StoreError: unreachable, wrong password, ...
    run = store.create_run(name, strategy, preset, seed, config)          # RunInfo, id 'r-7f3a2c'
    ids = store.add_individuals(run.id, [NewIndividual(island, generation, slot, genome, hash, ...)])
    store.enqueue(run.id, [EvaluationRequest(ids[0], task, config_hash=...)])
    claim = store.claim("host:pid", lease_seconds=120)                     # Claim | None
    store.heartbeat(claim.evaluation_id, claim.attempt, 120)               # False: claim lost, abandon
    store.complete(claim.evaluation_id, claim.attempt, result)             # False: fenced off
    for finished in store.results(run.id, after_id=last_seq): ...          # the driver's fold

`attempt` is the fencing token: every holder write is `WHERE id AND attempt AND status='running'`.
Callers get frozen dataclasses (records.py); SQLModel rows never leave this package. Times are
epoch seconds on the database clock (`Store.db_now()`). See docs/internals.md.
"""

from nascli.store.engine import network_filesystem_of
from nascli.store.models import SCHEMA_VERSION
from nascli.store.records import (
    EVALUATION_STATUSES,
    FINISHED_STATUSES,
    RUN_STATUSES,
    Claim,
    EvaluationInfo,
    EvaluationRequest,
    Event,
    FinishedEvaluation,
    IndividualInfo,
    IslandInfo,
    Migration,
    NewIndividual,
    QueueLimits,
    RunInfo,
    WorkerInfo,
)
from nascli.store.store import Store, open_store

__all__ = [
    "EVALUATION_STATUSES", "FINISHED_STATUSES", "RUN_STATUSES", "SCHEMA_VERSION", "Claim", "EvaluationInfo",
    "EvaluationRequest", "Event", "FinishedEvaluation", "IndividualInfo", "IslandInfo", "Migration", "NewIndividual",
    "QueueLimits", "RunInfo", "Store", "WorkerInfo", "network_filesystem_of", "open_store",
]
