"""Turn report dataclasses into `SectionView`s: the JSON payload, the flat rows, the terminal columns."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from nascli.report.model import (
    GenerationRow,
    IslandRow,
    MigrationRow,
    ParetoReport,
    ProgressPoint,
    RunRow,
    RunSummary,
    TopRow,
    WorkerRow,
)
from nascli.report.render import SectionView
from nascli.task import FAILURE_KINDS

TABLE_LIMIT = 25  # long per-generation/migration tables: a terminal shows the newest rows


def field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def as_dict(record) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def runs_section(rows: Sequence[RunRow]) -> SectionView:
    payload = [as_dict(row) for row in rows]
    return SectionView(
        name="runs", title="Runs", payload=payload, rows=payload, columns=field_names(RunRow),
        table_columns=["run_id", "name", "strategy", "status", "created_at", "duration_seconds", "evaluations_done",
                       "evaluations_failed", "best_val_accuracy", "best_test_accuracy", "best_params"],
        caption=None if rows else "no runs yet: start one with `nas run --preset digits-quick`",
    )


SUMMARY_TABLE = [
    "run_id", "name", "preset", "strategy", "status", "stop_reason", "seed", "dataset", "task_kind", "islands",
    "population", "generations", "epochs", "fitness_primary", "created_at", "started_at", "finished_at",
    "elapsed_seconds", "generation_reached", "individuals", "evaluations_total", "evaluations_done",
    "evaluations_failed",
    "evaluations_running", "evaluations_pending", "evaluations_trained", "evaluations_cached", "evaluations_per_hour",
    "workers_seen", "failures_by_kind", "ranked_by", "best_val_accuracy", "best_test_accuracy", "best_params",
    "best_individual_id", "best_genome",
]


def summary_section(summary: RunSummary) -> SectionView:
    payload = as_dict(summary)
    flat = {k: v for k, v in payload.items() if k != "failures_by_kind"}
    for kind in FAILURE_KINDS:  # fixed columns, so the CSV header never depends on what failed
        flat[f"failed_{kind}"] = summary.failures_by_kind.get(kind, 0)
    other = sum(v for k, v in summary.failures_by_kind.items() if k not in FAILURE_KINDS)
    flat["failed_other"] = other
    columns = [c for c in field_names(RunSummary) if c != "failures_by_kind"]
    columns += [f"failed_{kind}" for kind in FAILURE_KINDS] + ["failed_other"]
    display = dict(flat, failures_by_kind={k: v for k, v in summary.failures_by_kind.items() if v})
    return SectionView(name="summary", title=f"Run {summary.run_id}", payload=payload, rows=[display],
                       columns=columns, table_columns=SUMMARY_TABLE, key_value=True)


def islands_section(rows: Sequence[IslandRow]) -> SectionView:
    payload = [as_dict(row) for row in rows]
    return SectionView(
        name="islands", title="Islands", payload=payload, rows=payload, columns=field_names(IslandRow),
        table_columns=["island", "generation", "alive", "evaluated", "failed", "best_fitness", "best_val_accuracy",
                       "best_test_accuracy", "best_params", "root_ancestors"],
        caption="root ancestors: distinct initial individuals the living population descends from",
    )


def top_section(rows: Sequence[TopRow], k: int, ranked_by: str = "fitness", distinct: bool = True) -> SectionView:
    payload = [as_dict(row) for row in rows]
    which = "one row per genome" if distinct else "every evaluation (--all)"
    caption = (f"{which}, ranked by {ranked_by}; copies: evaluations of the genome; export one with "
               "`nas export RUN --rank K --out DIR`") if rows else None
    return SectionView(
        name="top", title=f"Top {k} by fitness", payload=payload, rows=payload, columns=field_names(TopRow),
        table_columns=["rank", "individual_id", "genome", "val_accuracy", "test_accuracy", "val_loss", "params",
                       "flops", "latency_ms", "island", "generation", "age", "copies"],
        caption=caption,
    )


PARETO_POINT_COLUMNS = ["individual_id", "evaluation_id", "island", "generation", "genome"]


def pareto_section(report: ParetoReport, distinct: bool = True) -> SectionView:
    payload = {
        "objectives": report.objectives, "senses": report.senses, "reference": report.reference,
        "hypervolume": report.hypervolume, "evaluated": report.evaluated,
        "front": [as_dict(point) for point in report.front],
    }
    rows = []
    for point in report.front:
        row = {c: getattr(point, c) for c in PARETO_POINT_COLUMNS}
        row.update(point.objectives)
        row["hypervolume"] = report.hypervolume
        rows.append(row)
    columns = PARETO_POINT_COLUMNS[:4] + list(report.objectives) + ["genome", "hypervolume"]
    hv = "n/a" if report.hypervolume is None else f"{report.hypervolume:.4f}"
    points = "distinct genomes" if distinct else "evaluations"
    caption = (f"{len(report.front)} non-dominated of {report.evaluated} {points}; objectives "
               + ", ".join(f"{o} ({s})" for o, s in zip(report.objectives, report.senses))
               + f"; hypervolume {hv} (normalised, reference "
               + ", ".join(f"{o}={v:g}" for o, v in report.reference.items()) + ")")
    return SectionView(name="pareto", title="Pareto front", payload=payload, rows=rows, columns=columns,
                       table_columns=PARETO_POINT_COLUMNS[:4] + list(report.objectives) + ["genome"],
                       caption=caption)


def workers_section(rows: Sequence[WorkerRow]) -> SectionView:
    payload = [as_dict(row) for row in rows]
    return SectionView(
        name="workers", title="Workers", payload=payload, rows=payload, columns=field_names(WorkerRow),
        table_columns=["worker_id", "device", "started_at", "last_seen_at", "evaluations_done", "evaluations_failed",
                       "train_seconds", "evaluations_per_hour"],
    )


def generations_section(rows: Sequence[GenerationRow]) -> SectionView:
    payload = [as_dict(row) for row in rows]
    return SectionView(
        name="generations", title="Generations (all islands)", payload=payload, rows=payload,
        columns=field_names(GenerationRow),
        table_columns=["generation", "evaluations", "train_accuracy_max", "val_accuracy_max", "val_accuracy_mean",
                       "val_accuracy_std", "test_accuracy_max", "best_val_accuracy_so_far"],
        table_limit=TABLE_LIMIT,
    )


def migrations_section(rows: Sequence[MigrationRow]) -> SectionView:
    payload = [as_dict(row) for row in rows]
    return SectionView(
        name="migrations", title="Migrations", payload=payload, rows=payload, columns=field_names(MigrationRow),
        table_columns=["generation", "from_island", "to_island", "individual_id", "new_individual_id", "fitness",
                       "genome"],
        table_limit=TABLE_LIMIT,
    )


def compare_section(runs: Sequence[RunSummary], progress: dict[str, list[ProgressPoint]],
                    hypervolumes: dict[str, float | None]) -> SectionView:
    rows = []
    for summary in runs:
        points = progress.get(summary.run_id, [])
        rows.append({
            "run_id": summary.run_id, "name": summary.name, "strategy": summary.strategy, "status": summary.status,
            "evaluations_done": summary.evaluations_done, "best_val_accuracy": summary.best_val_accuracy,
            "best_test_accuracy": summary.best_test_accuracy, "best_params": summary.best_params,
            "hypervolume": hypervolumes.get(summary.run_id),
            "evaluations_to_best": _evaluations_to_best(points),
        })
    columns = ["run_id", "name", "strategy", "status", "evaluations_done", "best_val_accuracy", "best_test_accuracy",
               "best_params", "hypervolume", "evaluations_to_best"]
    payload = [dict(row, progress=[as_dict(p) for p in progress.get(summary.run_id, [])])
               for row, summary in zip(rows, runs)]
    return SectionView(name="compare", title="Runs compared", payload=payload, rows=rows, columns=columns)


def _evaluations_to_best(points: Sequence[ProgressPoint]) -> int | None:
    best = None
    first = None
    for point in points:
        if point.best_val_accuracy is not None and (best is None or point.best_val_accuracy > best):
            best, first = point.best_val_accuracy, point.evaluations
    return first
