"""Read a run from the store (`nascli.store.reports`) into the report's dataclasses and views."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nascli.ga.pareto import hypervolume, non_dominated
from nascli.metrics import Ranking, column_of, is_maximised
from nascli.metrics import value as metric_value
from nascli.report import sections as views_of
from nascli.report.model import (
    GenerationRow,
    IslandRow,
    MigrationRow,
    ParetoPoint,
    ParetoReport,
    ProgressPoint,
    RunRow,
    RunSummary,
    TopRow,
    TracePoint,
    WorkerRow,
)
from nascli.report.render import SectionView
from nascli.run_stop import STOP_EVENT, describe_stop
from nascli.store.reports import fitness_of

RUNNING = ("created", "running", "interrupted")


def moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(float(seconds), UTC)


def when(seconds: float | None) -> datetime | None:
    return None if seconds is None else moment(seconds)


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = config.get(name)
    return value if isinstance(value, dict) else {}


def objectives_of(config: dict[str, Any]) -> list[str]:
    """The run's objectives: nsga2.objectives, else [fitness.primary, fitness.secondary]."""
    objectives = _section(config, "nsga2").get("objectives")
    if objectives:
        return list(objectives)
    fitness = _section(config, "fitness")
    return [fitness.get("primary") or "val_accuracy", fitness.get("secondary") or "params"]


# ------------------------------------------------------------------------------------------- runs


def run_rows(queries) -> list[RunRow]:
    runs = queries.run_rows()
    counts = queries.status_counts()
    configs = {run["id"]: _json(run["config_json"]) for run in runs}
    best = queries.best_per_run({run_id: Ranking.of_config(config) for run_id, config in configs.items()})
    now = time.time()
    rows = []
    for run in runs:
        run_counts = counts.get(run["id"], {})
        top = best.get(run["id"], {})
        end = run["finished_at"] or (now if run["status"] in RUNNING else run["updated_at"])
        rows.append(RunRow(
            run_id=run["id"], name=run["name"], preset=run["preset"], strategy=run["strategy"], status=run["status"],
            created_at=when(run["created_at"]), duration_seconds=max(0.0, end - run["created_at"]),
            evaluations_done=run_counts.get("done", 0), evaluations_failed=run_counts.get("failed", 0),
            evaluations_pending=run_counts.get("pending", 0) + run_counts.get("running", 0),
            best_val_accuracy=top.get("val_accuracy"), best_test_accuracy=top.get("test_accuracy"),
            best_params=top.get("params"),
        ))
    return rows


def runs_views(queries) -> list[SectionView]:
    return [views_of.runs_section(run_rows(queries))]


def _json(text: str | None) -> dict[str, Any]:
    import json

    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# ----------------------------------------------------------------------------------------- summary


def summary(queries, run, rank_by: str | None = None) -> RunSummary:
    config = run.config or {}
    ranking = Ranking.of_config(config, rank_by)
    primary = ranking.primary
    counts = queries.status_counts(run.id).get(run.id, {})
    activity = queries.activity(run.id)
    individuals = queries.individual_totals(run.id)
    best = queries.ranked(run.id, ranking, 1)
    best = best[0] if best else {}
    trained = int(activity.get("trained") or 0)  # cache hits cost nothing: a rate counts trainings
    end = run.finished_at if run.finished_at is not None else (
        time.time() if run.status in RUNNING else run.updated_at)
    elapsed = max(0.0, end - run.created_at)
    started = activity.get("first_started_at")
    busy = (activity.get("last_finished_at") or end) - started if started is not None else None
    task, ga, train = _section(config, "task"), _section(config, "ga"), _section(config, "train")
    return RunSummary(
        run_id=run.id, name=run.name, preset=run.preset, strategy=run.strategy, status=run.status, seed=run.seed,
        dataset=task.get("dataset"), task_kind=task.get("kind"), islands=ga.get("islands"),
        population=ga.get("population"), generations=ga.get("generations"), epochs=train.get("epochs"),
        fitness_primary=primary, ranked_by=ranking.describe(), created_at=when(run.created_at),
        started_at=when(started),
        finished_at=when(run.finished_at), elapsed_seconds=elapsed,
        individuals=int(individuals.get("individuals") or 0),
        evaluations_total=sum(counts.values()), evaluations_pending=counts.get("pending", 0),
        evaluations_running=counts.get("running", 0), evaluations_done=counts.get("done", 0),
        evaluations_failed=counts.get("failed", 0), evaluations_cancelled=counts.get("cancelled", 0),
        evaluations_per_hour=(3600.0 * trained / busy) if busy and busy > 0 and trained else None,
        evaluations_trained=trained, evaluations_cached=int(activity.get("cached") or 0),
        train_seconds_total=activity.get("train_seconds"), workers_seen=int(activity.get("workers") or 0),
        generation_reached=individuals.get("generation"),
        failures_by_kind=dict(sorted(queries.failure_kinds(run.id).items())),
        best_individual_id=best.get("individual_id"), best_genome=best.get("genome"),
        best_val_accuracy=best.get("val_accuracy"), best_test_accuracy=best.get("test_accuracy"),
        best_params=best.get("params"),
        stop_reason=describe_stop(run.status, queries.last_event(run.id, STOP_EVENT)),
    )


# ----------------------------------------------------------------------------------------- islands


def root_ancestors(links: Sequence[tuple[int, int | None, int, bool]]) -> dict[int, int]:
    """individual id -> its root (the initial-population ancestor reached by following first parents).

    Iterative with memoisation: one pass over the run, no recursion limit on 1,000 generations."""
    parent_of = {ident: parent for ident, parent, *_ in links}
    root: dict[int, int] = {}
    for start in parent_of:
        chain = []
        node = start
        while node not in root:
            parent = parent_of.get(node)
            if parent is None or parent not in parent_of or parent == node:
                root[node] = node
                break
            chain.append(node)
            node = parent
        for member in chain:
            root[member] = root[node]
    return root


def islands(queries, run, rank_by: str | None = None) -> list[IslandRow]:
    ranking = Ranking.of_config(run.config or {}, rank_by)
    primary = ranking.primary
    totals = queries.island_totals(run.id)
    best = queries.best_per_island(run.id, ranking)
    links = queries.lineage_links(run.id)
    roots = root_ancestors(links)
    living_roots: dict[int, set[int]] = {}
    for ident, _, island, alive in links:
        if alive:
            living_roots.setdefault(island, set()).add(roots[ident])
    rows = []
    for total in totals:
        island = total["island"]
        top = best.get(island, {})
        rows.append(IslandRow(
            island=island, generation=total["generation"], individuals=int(total["individuals"]),
            alive=total["alive"], evaluated=total["evaluated"], failed=total["failed"],
            best_fitness=fitness_of(primary, top) if top else None, best_val_accuracy=top.get("val_accuracy"),
            best_test_accuracy=top.get("test_accuracy"), best_params=top.get("params"),
            best_individual_id=top.get("individual_id"), root_ancestors=len(living_roots.get(island, ())),
        ))
    return rows


# --------------------------------------------------------------------------------------------- top


def top_rows(queries, run, k: int, rank_by: str | None = None, distinct: bool = True) -> list[TopRow]:
    ranking = Ranking.of_config(run.config or {}, rank_by)
    primary = ranking.primary
    newest = queries.island_generations(run.id)
    rows = []
    for rank, row in enumerate(queries.ranked(run.id, ranking, k, distinct=distinct), start=1):
        newest_here = newest.get(row["island"])
        rows.append(TopRow(
            rank=rank, individual_id=row["individual_id"], evaluation_id=row["evaluation_id"], genome=row["genome"],
            fitness=fitness_of(primary, row), val_accuracy=row["val_accuracy"], val_loss=row["val_loss"],
            test_accuracy=row["test_accuracy"], test_loss=row["test_loss"], train_accuracy=row["train_accuracy"],
            params=row["params"], flops=row["flops"], latency_ms=row["latency_ms"], island=row["island"],
            generation=row["generation"],
            age=None if newest_here is None else max(0, newest_here - row["generation"]),
            operator=row["operator"], alive=None if row["alive"] is None else bool(row["alive"]),
            copies=row["copies"],
        ))
    return rows


# ------------------------------------------------------------------------------------------ pareto


def sense(objective: str) -> str:
    return "max" if is_maximised(objective) else "min"


objective_column = column_of


def objective_value(objective: str, row: dict[str, Any]) -> float | None:
    return metric_value(row, objective)


def objective_point(objectives: Sequence[str], row: dict[str, Any]) -> dict[str, float] | None:
    """The row's value of each objective; None when one is missing or not finite."""
    point: dict[str, float] = {}
    for objective in objectives:
        value = objective_value(objective, row)
        if value is None or not math.isfinite(value):
            return None
        point[objective] = value
    return point


def reference_point(objectives: Sequence[str], values: Sequence[dict[str, float]],
                    config: dict[str, Any]) -> dict[str, float]:
    """Raw-unit reference: accuracies 0, inverse loss 0, costs max_params (params) or 1.1 x the largest value."""
    reference: dict[str, float] = {}
    max_params = _section(config, "search_space").get("max_params")
    for objective in objectives:
        if sense(objective) == "max":
            reference[objective] = 0.0
        elif objective == "params" and max_params:
            reference[objective] = float(max_params)
        else:
            largest = max((v[objective] for v in values), default=0.0)
            reference[objective] = 1.1 * largest if largest > 0 else 1.0
    return reference


def normalised(objective: str, value: float, reference: float) -> float:
    """Lower is better, in [0, 1] inside the reference box."""
    if objective == "inverse_val_loss":
        return 1.0 / (1.0 + value)
    if sense(objective) == "max":
        return 1.0 - value
    return value / reference if reference > 0 else value


def normalised_hypervolume(objectives: Sequence[str], values: Sequence[dict[str, float]],
                           reference: dict[str, float]) -> float | None:
    if not values:
        return None
    points = [tuple(normalised(o, v[o], reference[o]) for o in objectives) for v in values]
    return hypervolume(points, tuple(1.0 for _ in objectives))


def pareto(queries, run, reference: dict[str, float] | None = None,
           distinct: bool = True) -> tuple[ParetoReport, list[dict[str, float]]]:
    """The front of the run's objectives, its hypervolume, and the cloud of all evaluated points.
    `distinct`: one point per genome (its first evaluation; cache hits repeat the same point)."""
    config = run.config or {}
    objectives = objectives_of(config)
    columns = sorted({objective_column(o) for o in objectives})
    rows = queries.objective_rows(run.id, columns)
    if distinct:
        rows = list({row["genome_hash"]: row for row in reversed(rows)}.values())[::-1]
    usable: list[dict[str, Any]] = []
    values: list[dict[str, float]] = []
    for row in rows:
        point = objective_point(objectives, row)
        if point is not None:
            usable.append(row)
            values.append(point)
    reference = reference or reference_point(objectives, values, config)
    minimised = [tuple(normalised(o, v[o], reference[o]) for o in objectives) for v in values]
    front_index = non_dominated(minimised)
    details = queries.evaluation_details([usable[i]["evaluation_id"] for i in front_index])
    front = []
    for i in front_index:
        detail = details.get(usable[i]["evaluation_id"], {})
        front.append(ParetoPoint(individual_id=usable[i]["individual_id"], evaluation_id=usable[i]["evaluation_id"],
                                 genome=detail.get("genome"), island=detail.get("island"),
                                 generation=detail.get("generation"), objectives=values[i]))
    front.sort(key=lambda point: tuple(-point.objectives[o] if sense(o) == "max" else point.objectives[o]
                                       for o in objectives))
    report = ParetoReport(objectives=objectives, senses=[sense(o) for o in objectives], reference=reference,
                          hypervolume=normalised_hypervolume(objectives, [values[i] for i in front_index], reference),
                          evaluated=len(values), front=front)
    return report, values


# ------------------------------------------------------------------------------- workers, generations


def worker_rows(queries, run) -> list[WorkerRow]:
    rows = []
    for row in queries.workers(run.id):
        span = (row["last_finished_at"] or 0) - (row["first_started_at"] or 0)
        finished = int(row["done"] or 0) + int(row["failed"] or 0)
        rows.append(WorkerRow(
            worker_id=row["worker_id"], host=row["host"], pid=row["pid"], device=row["device"],
            started_at=when(row["started_at"] if row["started_at"] is not None else row["first_started_at"]),
            last_seen_at=when(row["last_seen_at"] if row["last_seen_at"] is not None else row["last_finished_at"]),
            evaluations_done=int(row["done"] or 0), evaluations_failed=int(row["failed"] or 0),
            train_seconds=row["train_seconds"], evaluations_per_hour=3600.0 * finished / span if span > 0 else None,
        ))
    return rows


def _std(mean: float | None, mean_square: float | None) -> float | None:
    if mean is None or mean_square is None:
        return None
    return math.sqrt(max(0.0, float(mean_square) - float(mean) ** 2))  # population std; clamp rounding


def generation_rows(queries, run) -> list[GenerationRow]:
    rows = []
    best_so_far = None
    for row in queries.generations(run.id):
        if row["val_accuracy_max"] is not None:
            best_so_far = row["val_accuracy_max"] if best_so_far is None else max(best_so_far, row["val_accuracy_max"])
        stats: dict[str, Any] = {}
        for name in ("train_accuracy", "val_accuracy", "test_accuracy"):
            stats[f"{name}_max"] = row[f"{name}_max"]
            stats[f"{name}_mean"] = None if row[f"{name}_mean"] is None else float(row[f"{name}_mean"])
            stats[f"{name}_std"] = _std(row[f"{name}_mean"], row[f"{name}_sq"])
        rows.append(GenerationRow(generation=row["generation"], evaluations=int(row["evaluations"]),
                                  best_val_accuracy_so_far=best_so_far, **stats))
    return rows


def migration_rows(queries, run) -> list[MigrationRow]:
    primary = Ranking.of_config(run.config or {}).primary
    return [MigrationRow(generation=row["generation"], from_island=row["from_island"], to_island=row["to_island"],
                         individual_id=row["individual_id"], new_individual_id=row["new_individual_id"],
                         genome=row["genome"], fitness=row["fitness"])
            for row in queries.migrations(run.id, primary)]


# ------------------------------------------------------------------------------------------ views


def run_views(queries, run_id: str, sections: Sequence[str], *, top: int = 10, rank_by: str | None = None,
              distinct: bool = True) -> list[SectionView]:
    run = queries.run(run_id)
    views: list[SectionView] = []
    for name in sections:
        if name == "summary":
            views.append(views_of.summary_section(summary(queries, run, rank_by)))
        elif name == "islands":
            views.append(views_of.islands_section(islands(queries, run, rank_by)))
        elif name == "top":
            views.append(views_of.top_section(top_rows(queries, run, top, rank_by, distinct), top,
                                              Ranking.of_config(run.config or {}, rank_by).describe(), distinct))
        elif name == "pareto":
            views.append(views_of.pareto_section(pareto(queries, run, distinct=distinct)[0], distinct))
        elif name == "workers":
            views.append(views_of.workers_section(worker_rows(queries, run)))
        elif name == "generations":
            views.append(views_of.generations_section(generation_rows(queries, run)))
        elif name == "migrations":
            views.append(views_of.migrations_section(migration_rows(queries, run)))
        elif name == "transfers":
            from nascli.report.transfers import gather_transfers

            views.append(gather_transfers(queries, run))
        else:  # the command validates names first; this is a programming error
            raise ValueError(f"unknown section {name!r}")
    return views


# ------------------------------------------------------------------------------------------- plots


def trace_points(queries, run) -> list[TracePoint]:
    # cache hits have no worker and took no time: they are not part of any worker's trace
    return [TracePoint(worker_id=row["worker_id"], started_at=moment(row["started_at"]),
                       finished_at=moment(row["finished_at"]), status=row["status"],
                       val_accuracy=row["val_accuracy"])
            for row in queries.trace(run.id) if row["worker_id"] is not None]


def _plot_directory(directory: Path, names: list[str], force: bool) -> Path:
    """Create the plot directory and check every plot's name before the first is drawn."""
    from nascli.safe_files import ensure_directory, refuse_existing

    directory = ensure_directory(directory)
    refuse_existing(directory, names, force=force)
    return directory


def write_run_plots(queries, run_id: str, directory: Path, *, force: bool = False) -> list[Path]:
    from nascli.report import curves, plots

    run = queries.run(run_id)
    name = run.name or run.id
    files = [f"{run.id}-{kind}.png" for kind in ("generations", "pareto", "workers", "islands", "anytime")]
    directory = _plot_directory(Path(directory), files, force)
    report, cloud = pareto(queries, run)
    return [
        plots.plot_generations(generation_rows(queries, run), directory / files[0],
                               f"{name}: accuracy per generation", force=force),
        plots.plot_pareto(report, cloud, directory / files[1], f"{name}: Pareto front", force=force),
        plots.plot_worker_trace(trace_points(queries, run), directory / files[2],
                                f"{name}: evaluations per worker", force=force),
        plots.plot_island_curves(curves.island_curves(queries.population_rows(run.id)), directory / files[3],
                                 f"{name}: best validation accuracy so far and population median per island",
                                 force=force),
        plots.plot_anytime(curves.anytime_curve(queries.progress(run.id, ["val_accuracy", "val_loss",
                                                                          "train_seconds"])),
                           directory / files[4], f"{name}: best validation accuracy so far", force=force),
    ]


# ----------------------------------------------------------------------------------------- compare


@dataclass
class Comparison:
    run_ids: list[str]
    progress: dict[str, list[ProgressPoint]]
    hypervolumes: dict[str, float | None]
    view: SectionView


def progress_points(queries, run, objectives: Sequence[str], reference: dict[str, float]) -> list[ProgressPoint]:
    """Best validation/test accuracy and hypervolume after each finished evaluation (completion order).

    The hypervolume is recomputed only when the front changes, and only on front points."""
    columns = sorted({"val_accuracy", "test_accuracy", "val_loss", *(objective_column(o) for o in objectives)})
    points: list[ProgressPoint] = []
    best_val = best_test = None
    front: list[dict[str, float]] = []
    volume = None
    for count, row in enumerate(queries.progress(run.id, columns), start=1):
        if row["status"] == "done":
            if row["val_accuracy"] is not None and (best_val is None or row["val_accuracy"] > best_val):
                best_val = row["val_accuracy"]
                best_test = row["test_accuracy"]
            point = objective_point(objectives, row)
            if objectives and point is not None:
                candidate = front + [point]
                normal = [tuple(normalised(o, p[o], reference[o]) for o in objectives) for p in candidate]
                keep = non_dominated(normal)
                if len(candidate) - 1 in keep:  # the new point made it onto the front
                    front = [candidate[i] for i in keep]
                    volume = normalised_hypervolume(objectives, front, reference)
        points.append(ProgressPoint(evaluations=count, best_val_accuracy=best_val, best_test_accuracy=best_test,
                                    hypervolume=volume))
    return points


def compare(queries, run_ids: Sequence[str]) -> Comparison:
    runs = [queries.run(run_id) for run_id in run_ids]
    objectives = objectives_of(runs[0].config or {})
    clouds = {}
    for run in runs:
        clouds[run.id] = pareto(queries, run)[1] if objectives_of(run.config or {}) == objectives else []
    # one reference for every run, so their hypervolumes are comparable
    everything = [value for cloud in clouds.values() for value in cloud]
    reference = reference_point(objectives, everything, runs[0].config or {})
    progress = {}
    hypervolumes: dict[str, float | None] = {}
    summaries = []
    for run in runs:
        same_objectives = objectives_of(run.config or {}) == objectives
        progress[run.id] = progress_points(queries, run, objectives if same_objectives else [], reference)
        hypervolumes[run.id] = (normalised_hypervolume(objectives, clouds[run.id], reference)
                                if same_objectives and clouds[run.id] else None)
        summaries.append(summary(queries, run))
    view = views_of.compare_section(summaries, progress, hypervolumes)
    return Comparison(run_ids=[run.id for run in runs], progress=progress, hypervolumes=hypervolumes, view=view)


def write_compare_plots(comparison: Comparison, directory: Path, *, force: bool = False) -> list[Path]:
    from nascli.report import plots

    directory = _plot_directory(Path(directory), ["compare-accuracy.png", "compare-hypervolume.png"], force)
    return [
        plots.plot_compare(comparison.progress, "best_val_accuracy", directory / "compare-accuracy.png",
                           "best validation accuracy vs evaluations", force=force),
        plots.plot_compare(comparison.progress, "hypervolume", directory / "compare-hypervolume.png",
                           "hypervolume vs evaluations", force=force),
    ]
