"""The report's data: plain frozen dataclasses, filled from the store by `nascli.report.gather`.

Field names ARE the documented JSON/CSV schema (docs/report.md, `nascli.report/1`): add fields
freely, but never rename or drop one without bumping `render.SCHEMA`. Times are timezone-aware
UTC datetimes; accuracies are fractions in [0, 1]; durations are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The sections `nas report RUN --section` shows, in print order; `runs` is the list without a run.
RUN_SECTIONS = ("summary", "islands", "top", "pareto", "workers", "generations", "migrations", "transfers")
ALL_SECTIONS = ("runs",) + RUN_SECTIONS
DEFAULT_RUN_SECTIONS = ("summary", "islands", "top", "migrations")  # + pareto for multi-objective runs


@dataclass(frozen=True)
class RunRow:
    """One line of `nas report` without a run."""

    run_id: str
    name: str | None
    preset: str | None
    strategy: str
    status: str
    created_at: datetime | None
    duration_seconds: float | None
    evaluations_done: int
    evaluations_failed: int
    evaluations_pending: int
    best_val_accuracy: float | None
    best_test_accuracy: float | None
    best_params: int | None


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    name: str | None
    preset: str | None
    strategy: str
    status: str
    seed: int
    dataset: str | None
    task_kind: str | None
    islands: int | None
    population: int | None
    generations: int | None
    epochs: int | None
    fitness_primary: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    elapsed_seconds: float | None
    individuals: int
    evaluations_total: int
    evaluations_pending: int
    evaluations_running: int
    evaluations_done: int
    evaluations_failed: int
    evaluations_cancelled: int
    evaluations_per_hour: float | None  # trained evaluations (cache hits excluded) per hour of activity
    train_seconds_total: float | None
    workers_seen: int
    generation_reached: int | None
    failures_by_kind: dict[str, int] = field(default_factory=dict)
    best_individual_id: int | None = None
    best_genome: str | None = None
    best_val_accuracy: float | None = None
    best_test_accuracy: float | None = None
    best_params: int | None = None
    ranked_by: str | None = None  # what rank 1 means (the run's fitness rule, or --rank-by)
    evaluations_trained: int = 0  # finished by a worker
    evaluations_cached: int = 0  # answered from the genotype cache (no training)
    # why the run ended (nascli.run_stop.describe_stop): a run-level rule, the spent budget, cancelled,
    # failed; None while it has not ended
    stop_reason: str | None = None


@dataclass(frozen=True)
class IslandRow:
    island: int
    generation: int | None  # the newest generation with an individual on this island
    individuals: int  # ever born here
    alive: int  # in the current population
    evaluated: int
    failed: int
    best_fitness: float | None
    best_val_accuracy: float | None
    best_test_accuracy: float | None
    best_params: int | None
    best_individual_id: int | None
    # distinct initial-population roots of the living individuals (Klos "siblings of one root parent")
    root_ancestors: int


@dataclass(frozen=True)
class TopRow:
    rank: int
    individual_id: int
    evaluation_id: int
    genome: str
    fitness: float | None
    val_accuracy: float | None
    val_loss: float | None
    test_accuracy: float | None
    test_loss: float | None
    train_accuracy: float | None
    params: int | None
    flops: int | None
    latency_ms: float | None
    island: int
    generation: int
    age: int | None  # generations since birth, on its island
    operator: str | None
    alive: bool | None
    copies: int = 1  # finished evaluations of this genome in the run (cache hits included)


@dataclass(frozen=True)
class ParetoPoint:
    individual_id: int | None
    evaluation_id: int
    genome: str | None
    island: int | None
    generation: int | None
    objectives: dict[str, float]  # name -> raw value (e.g. val_accuracy 0.97, params 12345)


@dataclass(frozen=True)
class ParetoReport:
    objectives: list[str]
    senses: list[str]  # 'max' or 'min' per objective
    reference: dict[str, float]  # the hypervolume reference point, in raw units
    hypervolume: float | None  # normalised: each objective scaled to [0, 1] against the reference
    evaluated: int  # how many points (distinct genomes unless --all) had every objective
    front: list[ParetoPoint]


@dataclass(frozen=True)
class WorkerRow:
    worker_id: str
    host: str | None
    pid: int | None
    device: str | None
    started_at: datetime | None
    last_seen_at: datetime | None
    evaluations_done: int
    evaluations_failed: int
    train_seconds: float | None
    evaluations_per_hour: float | None


@dataclass(frozen=True)
class GenerationRow:
    """Per generation over all islands (Klos Fig. 5): max, mean and spread of each accuracy."""

    generation: int
    evaluations: int
    train_accuracy_max: float | None
    train_accuracy_mean: float | None
    train_accuracy_std: float | None
    val_accuracy_max: float | None
    val_accuracy_mean: float | None
    val_accuracy_std: float | None
    test_accuracy_max: float | None
    test_accuracy_mean: float | None
    test_accuracy_std: float | None
    best_val_accuracy_so_far: float | None


@dataclass(frozen=True)
class MigrationRow:
    generation: int
    from_island: int
    to_island: int
    individual_id: int | None
    new_individual_id: int | None
    genome: str | None
    fitness: float | None


@dataclass(frozen=True)
class ProgressPoint:
    """For `--compare`: the best value so far after the n-th finished evaluation."""

    evaluations: int
    best_val_accuracy: float | None
    best_test_accuracy: float | None
    hypervolume: float | None


@dataclass(frozen=True)
class TracePoint:
    """One finished evaluation on the worker timeline (seed 004's trace)."""

    worker_id: str
    started_at: datetime
    finished_at: datetime
    status: str
    val_accuracy: float | None


@dataclass
class RunReport:
    """Everything `nas report RUN` can show; sections are filled on demand."""

    summary: RunSummary
    config: dict[str, Any]
    islands: list[IslandRow] | None = None
    top: list[TopRow] | None = None
    pareto: ParetoReport | None = None
    workers: list[WorkerRow] | None = None
    generations: list[GenerationRow] | None = None
    migrations: list[MigrationRow] | None = None
