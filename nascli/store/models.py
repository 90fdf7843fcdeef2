"""SQLModel tables. Private to nascli.store: callers get the dataclasses of records.py.

Times are float seconds since the epoch taken from the database clock (see engine.db_now), so
lease arithmetic is the same plain `+` on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, MetaData, Text, UniqueConstraint
from sqlmodel import Field, SQLModel, col

# Bump when a table changes shape; a database written by another version is refused, not migrated.
SCHEMA_VERSION = 1

# Our own metadata, so other SQLModel tables imported in the same process never land in our schema.
metadata = MetaData()


class _Table(SQLModel):
    metadata = metadata


class Meta(_Table, table=True):
    __tablename__ = "nascli_meta"
    key: str = Field(primary_key=True, max_length=64)
    value: str


class RunRow(_Table, table=True):
    __tablename__ = "run"
    id: str = Field(primary_key=True, max_length=32)
    number: int = Field(sa_column=Column(Integer, nullable=False, unique=True))  # creation order for 'latest'
    name: str
    strategy: str
    preset: str | None = None
    seed: int
    config_json: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="created", max_length=16)
    created_at: float
    updated_at: float
    finished_at: float | None = None
    driver_owner: str | None = None
    driver_lease_expires_at: float | None = None
    # Per-run counters: taking them (UPDATE ... RETURNING) locks the run row until commit, so
    # completions commit in sequence order and a reader paging by seq never skips one.
    completion_counter: int = 0
    event_counter: int = 0


class IslandRow(_Table, table=True):
    __tablename__ = "island"
    run_id: str = Field(foreign_key="run.id", primary_key=True, max_length=32)
    island: int = Field(primary_key=True)
    generation: int = 0
    updated_at: float


class IndividualRow(_Table, table=True):
    __tablename__ = "individual"
    __table_args__ = (UniqueConstraint("run_id", "island", "generation", "slot", name="uq_individual_slot"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", max_length=32)
    island: int
    generation: int
    slot: int
    genome: str = Field(sa_column=Column(Text, nullable=False))
    genome_hash: str = Field(max_length=64, index=True)
    parents_json: str = "[]"
    operator: str | None = None
    age: int = 0
    alive: bool = True
    replaced_generation: int | None = None
    created_at: float


class EvaluationRow(_Table, table=True):
    """The queue. `attempt` is the fencing token: +1 on every claim, never decreases."""

    __tablename__ = "evaluation"
    __table_args__ = (
        # expired leases are claimable by the claim query itself
        Index("ix_evaluation_lease", "status", "lease_expires_at"),
        # the driver's fold pages by completion order
        Index("ix_evaluation_seq", "run_id", "seq", unique=True),
        # the genotype cache
        Index("ix_evaluation_cache", "genome_hash", "config_hash", "status"),
    )
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", max_length=32)
    individual_id: int | None = Field(default=None, foreign_key="individual.id", unique=True)
    status: str = Field(default="pending", max_length=16)
    priority: int = 0
    attempt: int = 0
    failures: int = 0
    lease_expiries: int = 0
    releases: int = 0
    # the attempt whose outcome was written and how ('result' | 'release'): a retried write of the
    # same claim after a lost acknowledgement is recognised instead of refused
    settled_attempt: int | None = None
    settled_by: str | None = Field(default=None, max_length=8)
    max_attempts: int = 3
    max_lease_expiries: int = 5
    worker_id: str | None = None
    task_json: str = Field(sa_column=Column(Text, nullable=False))
    genome: str = Field(sa_column=Column(Text, nullable=False))
    genome_hash: str = Field(max_length=64)
    config_hash: str = Field(default="", max_length=64)
    seq: int | None = None
    created_at: float
    claimed_at: float | None = None
    heartbeat_at: float | None = None
    lease_expires_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    error_kind: str | None = None
    error_message: str | None = Field(default=None, sa_column=Column(Text))
    val_accuracy: float | None = None
    val_loss: float | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    train_accuracy: float | None = None
    train_loss: float | None = None
    params: int | None = Field(default=None, sa_column=Column(BigInteger))
    flops: int | None = Field(default=None, sa_column=Column(BigInteger))
    epochs_run: int | None = None
    best_epoch: int | None = None
    train_seconds: float | None = None
    latency_ms: float | None = None
    peak_memory_bytes: int | None = Field(default=None, sa_column=Column(BigInteger))
    extra_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))


# The claim query: the oldest highest-priority pending row, for any run or for one run. Declared
# here because the priority column sorts descending (the ORDER BY of the claim).
Index("ix_evaluation_claim", col(EvaluationRow.status), col(EvaluationRow.priority).desc(), col(EvaluationRow.id))
Index("ix_evaluation_run_claim", col(EvaluationRow.run_id), col(EvaluationRow.status),
      col(EvaluationRow.priority).desc(),
      col(EvaluationRow.id))


class MigrationRow(_Table, table=True):
    __tablename__ = "migration"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", max_length=32, index=True)
    generation: int
    from_island: int
    to_island: int
    individual_id: int = Field(foreign_key="individual.id")
    created_at: float


class WorkerRow(_Table, table=True):
    __tablename__ = "worker"
    id: str = Field(primary_key=True, max_length=128)
    host: str
    pid: int
    device: str
    started_at: float
    last_seen_at: float
    tasks_done: int = 0
    tasks_failed: int = 0


class EventRow(_Table, table=True):
    __tablename__ = "event"
    run_id: str = Field(foreign_key="run.id", primary_key=True, max_length=32)
    seq: int = Field(primary_key=True)
    kind: str = Field(max_length=64)
    payload_json: str = Field(sa_column=Column(Text, nullable=False))
    created_at: float


class WeightsRow(_Table, table=True):
    """The weights repository (nascli.store.weights): one trained network's state dict per finished
    evaluation, written with its result. No foreign key: the driver evicts rows as donors die, and a
    run's deletion removes its rows with the rest."""

    __tablename__ = "weights"
    evaluation_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    run_id: str = Field(max_length=32, index=True)
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # torch.save of a CPU state dict
    created_at: float


RESULT_COLUMNS = (
    "val_accuracy", "val_loss", "test_accuracy", "test_loss", "train_accuracy", "train_loss", "params", "flops",
    "epochs_run", "best_epoch", "train_seconds", "latency_ms", "peak_memory_bytes",
)
INTEGER_RESULT_COLUMNS = ("params", "flops", "epochs_run", "best_epoch", "peak_memory_bytes")
