"""The plain, frozen values the store hands out and takes in. SQLModel rows never leave the package.

Times are seconds since the epoch on the DATABASE's clock (floats), so a worker's clock never
decides whether a lease has expired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nascli.task import Result, Task

RUN_STATUSES = ("created", "running", "finished", "failed", "cancelled", "interrupted")
TERMINAL_RUN_STATUSES = ("finished", "failed", "cancelled")  # a run in one of these never drives again
EVALUATION_STATUSES = ("pending", "running", "done", "failed", "cancelled")
FINISHED_STATUSES = ("done", "failed")


@dataclass(frozen=True)
class RunInfo:
    id: str
    name: str
    strategy: str
    preset: str | None
    seed: int
    config: dict[str, Any]
    status: str
    created_at: float
    updated_at: float
    finished_at: float | None = None
    driver_owner: str | None = None
    driver_lease_expires_at: float | None = None


@dataclass(frozen=True)
class NewIndividual:
    """One child the driver wants recorded; (island, generation, slot) is its idempotency key."""

    island: int
    generation: int
    slot: int
    genome: str
    genome_hash: str
    parents: tuple[int, ...] = ()
    operator: str | None = None
    age: int = 0


@dataclass(frozen=True)
class IndividualInfo:
    id: int
    run_id: str
    island: int
    generation: int
    slot: int
    genome: str
    genome_hash: str
    parents: tuple[int, ...]
    operator: str | None
    age: int
    alive: bool
    replaced_generation: int | None
    created_at: float


@dataclass(frozen=True)
class EvaluationRequest:
    """One evaluation to queue. `config_hash` (config.training_config_hash) + the genome hash key
    the genotype cache; `genome_hash` defaults to the individual's. `individual_id=None` is allowed
    (benchmarks, ad-hoc tasks) but such requests are not idempotent."""

    individual_id: int | None
    task: Task
    priority: int = 0
    genome_hash: str | None = None
    config_hash: str = ""


@dataclass(frozen=True)
class Claim:
    """A worker's hold on one evaluation. `attempt` is the fencing token: pass it to every write."""

    evaluation_id: int
    attempt: int
    task: Task
    lease_expires_at: float


@dataclass(frozen=True)
class FinishedEvaluation:
    """A done or failed evaluation. `seq` is its per-run completion sequence number (fold order)."""

    seq: int
    evaluation_id: int
    run_id: str
    individual_id: int | None
    genome: str
    genome_hash: str
    config_hash: str
    status: str
    result: Result
    attempt: int
    worker_id: str | None
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True)
class EvaluationInfo:
    """Any evaluation row, whatever its status (for reports, exports and tests)."""

    id: int
    run_id: str
    individual_id: int | None
    status: str
    priority: int
    attempt: int
    failures: int
    lease_expiries: int
    releases: int
    worker_id: str | None
    genome: str
    genome_hash: str
    config_hash: str
    seq: int | None
    claimed_at: float | None
    heartbeat_at: float | None
    lease_expires_at: float | None
    started_at: float | None
    finished_at: float | None
    result: Result | None
    created_at: float
    transfer_donor: int | None = None  # the donor its task names (`train.transfer`)


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    device: str
    started_at: float
    last_seen_at: float
    tasks_done: int
    tasks_failed: int


@dataclass(frozen=True)
class Event:
    seq: int
    run_id: str
    kind: str
    payload: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class Migration:
    run_id: str
    generation: int
    from_island: int
    to_island: int
    individual_id: int
    created_at: float


@dataclass(frozen=True)
class IslandInfo:
    run_id: str
    island: int
    generation: int
    updated_at: float


@dataclass(frozen=True)
class QueueLimits:
    """Per-evaluation retry budget, copied onto each row at enqueue time from the run's [worker]."""

    max_attempts: int = 3
    max_lease_expiries: int = 5
    # failure kinds worth another try (transient: a crash or an OOM next to another job); the
    # rest (invalid_genome, too_large, nan_loss, timeout) are properties of the genome.
    retry_kinds: tuple[str, ...] = field(default=("crash", "oom"))
