"""`nas report`'s run list and workers section, value by value, on runs whose timestamps are set to
known instants: every field is a literal or comes from what the builder recorded."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
import sqlalchemy as sa
from test_report_builder import (  # noqa: F401 - postgres_database is a fixture
    MODULE_BACKENDS,
    WORKERS,
    build_run,
    module_database,
    postgres_database,
    sqlite_url,
)
from typer.testing import CliRunner

from nascli.cli import app
from nascli.metrics import Ranking
from nascli.store import EvaluationRequest, NewIndividual, open_store
from nascli.store.tables import E, R, W
from nascli.task import Result, Task

runner = CliRunner()
T0 = 1_000_000_000.0  # 2001-09-09T01:46:40+00:00
GHOST = "host-c:303:w3"  # finishes evaluations without ever registering


def iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + "+00:00"


def report_json(*args: str) -> dict:
    result = runner.invoke(app, ["report", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def set_rows(url: str, table: sa.Table, where, **values) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.update(table).where(where).values(**values))
    finally:
        engine.dispose()


def best_of(built, threshold: float | None = None) -> Result:
    ranking = Ranking(threshold=threshold)
    done = [r for r in built.metrics.values() if r.status == "done"]
    return max(done, key=lambda r: ranking.key(dataclasses.asdict(r)))


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    return sqlite_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("postgres_database")


def test_the_run_list_states_every_run_exactly(url):
    with open_store(url) as store:
        # a threshold the results pass: rank 1 is the smallest network above it, not the most accurate
        finished = build_run(store, islands=2, population=3, generations=4, name="first",
                             overrides=("fitness.threshold=0.6",))
        live = build_run(store, preset="digits-nsga2", islands=1, population=4, generations=2, name="second",
                         status="running", failures=False, seed=5)
        stale = build_run(store, islands=1, population=2, generations=1, name="third", failures=False, status="failed",
                          seed=7)
        # two more of the live run's evaluations: one waiting, one held by a worker
        task = Task(genome="In_8_8:D_10", task={"kind": "synthetic"}, train={})
        store.enqueue(live.run_id, [EvaluationRequest(None, task), EvaluationRequest(None, task)])
        assert store.claim(WORKERS[0], run_id=live.run_id, lease_seconds=60) is not None
    set_rows(url, R, R.c.id == finished.run_id, created_at=T0, updated_at=T0 + 9999, finished_at=T0 + 3600.5)
    set_rows(url, R, R.c.id == live.run_id, created_at=T0 + 10, updated_at=T0 + 20, finished_at=None)
    # a run that ended without a finish time (an older database): its last update ends it
    set_rows(url, R, R.c.id == stale.run_id, created_at=T0 + 5, updated_at=T0 + 65, finished_at=None)

    before = time.time()
    rows = {row["run_id"]: row for row in report_json("--db", url)["runs"]}
    after = time.time()

    first_best, live_best, stale_best = best_of(finished, threshold=0.6), best_of(live), best_of(stale)
    assert first_best != best_of(finished)
    assert rows[finished.run_id] == {
        "run_id": finished.run_id, "name": "first", "preset": "digits-quick", "strategy": "island-ga",
        "status": "finished", "created_at": iso(T0), "duration_seconds": 3600.5,
        "evaluations_done": sum(r.status == "done" for r in finished.metrics.values()),
        "evaluations_failed": 2, "evaluations_pending": 0,
        "best_val_accuracy": first_best.val_accuracy, "best_test_accuracy": first_best.test_accuracy,
        "best_params": first_best.params,
    }
    assert rows[stale.run_id] == {
        "run_id": stale.run_id, "name": "third", "preset": "digits-quick", "strategy": "island-ga",
        "status": "failed", "created_at": iso(T0 + 5), "duration_seconds": 60.0,
        "evaluations_done": len(stale.metrics), "evaluations_failed": 0, "evaluations_pending": 0,
        "best_val_accuracy": stale_best.val_accuracy, "best_test_accuracy": stale_best.test_accuracy,
        "best_params": stale_best.params,
    }
    assert report_json(stale.run_id, "--db", url, "-S", "summary")["summary"]["elapsed_seconds"] == 60.0
    running = rows[live.run_id]
    # a running run lasts until now
    assert before - (T0 + 10) <= running.pop("duration_seconds") <= after - (T0 + 10)
    assert running == {
        "run_id": live.run_id, "name": "second", "preset": "digits-nsga2", "strategy": "nsga2",
        "status": "running", "created_at": iso(T0 + 10),
        "evaluations_done": len(live.metrics), "evaluations_failed": 0, "evaluations_pending": 2,
        "best_val_accuracy": live_best.val_accuracy, "best_test_accuracy": live_best.test_accuracy,
        "best_params": live_best.params,
    }


@pytest.mark.parametrize("config_json", ["not json", "[1, 2]", ""])
def test_a_run_whose_stored_configuration_is_unreadable_is_listed_with_the_default_ranking(url, config_json):
    with open_store(url) as store:
        built = build_run(store, islands=1, population=3, generations=2, failures=False,
                          overrides=("fitness.threshold=0.6",))
    set_rows(url, R, R.c.id == built.run_id, config_json=config_json)
    (row,) = [row for row in report_json("--db", url)["runs"] if row["run_id"] == built.run_id]
    assert row["best_val_accuracy"] == best_of(built).val_accuracy


def test_a_run_created_in_the_future_lasts_zero_seconds(url):
    """A clock step between hosts can put created_at after the end: never a negative duration."""
    with open_store(url) as store:
        built = build_run(store, islands=1, population=2, generations=1, failures=False)
    set_rows(url, R, R.c.id == built.run_id, created_at=T0 + 100, finished_at=T0)
    (row,) = [row for row in report_json("--db", url)["runs"] if row["run_id"] == built.run_id]
    assert row["duration_seconds"] == 0.0


def _finish(store, run_id: str, worker: str, result: Result, slot: int) -> int:
    (ident,) = store.add_individuals(run_id, [NewIndividual(island=0, generation=9, slot=slot, genome="In_8_8:D_10",
                                                             genome_hash="g", parents=(), operator="init")])
    store.enqueue(run_id, [EvaluationRequest(ident, Task(genome="In_8_8:D_10", task={"kind": "synthetic"}, train={}))])
    claim = store.claim(worker, run_id=run_id, lease_seconds=60)
    assert claim is not None and store.complete(claim.evaluation_id, claim.attempt, result)
    return claim.evaluation_id


def test_the_workers_section_states_every_worker_exactly(url):
    with open_store(url) as store:
        built = build_run(store, islands=2, population=3, generations=4, status="running")
        ghost_done = _finish(store, built.run_id, GHOST, Result(status="done", val_accuracy=0.5, train_seconds=2.25), 5)
        ghost_failed = _finish(store, built.run_id, GHOST, Result.failure("nan_loss", "synthetic"), 6)
    mine = {worker: [i for i in built.metrics if WORKERS[i % 2] == worker] for worker in WORKERS}
    evaluation_of = {}
    with open_store(url) as store:
        for info in store.evaluations(built.run_id):
            evaluation_of[info.individual_id] = info.id
    # worker 1 started at T0 and was last seen at T0 + 500; its evaluations ran from T0 + 10 to T0 + 370
    set_rows(url, W, W.c.id == WORKERS[0], started_at=T0, last_seen_at=T0 + 500)
    set_rows(url, E, E.c.id.in_([evaluation_of[i] for i in mine[WORKERS[0]]]), started_at=T0 + 20,
             finished_at=T0 + 100)
    set_rows(url, E, E.c.id == evaluation_of[mine[WORKERS[0]][0]], started_at=T0 + 10)
    set_rows(url, E, E.c.id == evaluation_of[mine[WORKERS[0]][-1]], finished_at=T0 + 370)
    # worker 2: every evaluation starts and ends at one instant, so it has no rate
    set_rows(url, W, W.c.id == WORKERS[1], started_at=T0 + 1, last_seen_at=T0 + 2)
    set_rows(url, E, E.c.id.in_([evaluation_of[i] for i in mine[WORKERS[1]]]), started_at=T0 + 50,
             finished_at=T0 + 50)
    # the unregistered worker: its times come from its evaluations
    set_rows(url, E, E.c.id == ghost_done, started_at=T0 + 1000, finished_at=T0 + 1100)
    set_rows(url, E, E.c.id == ghost_failed, started_at=T0 + 1150, finished_at=T0 + 1900)

    rows = report_json(built.run_id, "--db", url, "--section", "workers")["workers"]

    def counts(worker: str) -> tuple[int, int, float]:
        results = [built.metrics[i] for i in mine[worker]]
        return (sum(r.status == "done" for r in results), sum(r.status == "failed" for r in results),
                sum(r.train_seconds or 0.0 for r in results))

    (done_1, failed_1, seconds_1), (done_2, failed_2, seconds_2) = counts(WORKERS[0]), counts(WORKERS[1])
    assert done_1 > 0 and done_2 > 0 and failed_1 + failed_2 == 2  # the builder fails two children
    assert [row["worker_id"] for row in rows] == [WORKERS[0], WORKERS[1], GHOST]
    first, second, ghost = rows
    assert first.pop("train_seconds") == pytest.approx(seconds_1)
    assert first == {
        "worker_id": WORKERS[0], "host": "host-a", "pid": 101, "device": "cpu", "started_at": iso(T0),
        "last_seen_at": iso(T0 + 500), "evaluations_done": done_1, "evaluations_failed": failed_1,
        "evaluations_per_hour": 3600.0 * (done_1 + failed_1) / 360,
    }
    assert second.pop("train_seconds") == pytest.approx(seconds_2)
    assert second == {
        "worker_id": WORKERS[1], "host": "host-b", "pid": 202, "device": "cpu", "started_at": iso(T0 + 1),
        "last_seen_at": iso(T0 + 2), "evaluations_done": done_2, "evaluations_failed": failed_2,
        "evaluations_per_hour": None,
    }
    assert ghost == {
        "worker_id": GHOST, "host": None, "pid": None, "device": None, "started_at": iso(T0 + 1000),
        "last_seen_at": iso(T0 + 1900), "evaluations_done": 1, "evaluations_failed": 1, "train_seconds": 2.25,
        "evaluations_per_hour": 3600.0 * 2 / 900,
    }


# ------------------------------------------------------------------ islands, top, migrations, trace


@pytest.fixture(scope="module", params=MODULE_BACKENDS)
def island_run(request, tmp_path_factory):
    """A finished island run (read-only from here on), its URL and the evaluation id of each individual."""
    url = module_database(request, tmp_path_factory)
    with open_store(url) as store:
        # a threshold the results pass: rank 1 is the smallest network above it (the default ranks by accuracy)
        built = build_run(store, islands=3, population=4, generations=6, name="islands",
                          overrides=("fitness.threshold=0.6",))
        evaluation_of = {info.individual_id: info.id for info in store.evaluations(built.run_id)}
    return url, built, evaluation_of


def ranked(built, rank_by: str | None = None) -> list[int]:
    """Individual ids of the finished, ranked results, best first (the Python ranking key)."""
    ranking = Ranking.of_config({"fitness": {"primary": "val_accuracy", "threshold": 0.6}}, rank_by)
    done = [i for i, r in built.metrics.items() if r.status == "done"]
    return sorted(done, key=lambda i: ranking.key(dataclasses.asdict(built.metrics[i])), reverse=True)


def test_top_states_each_row_exactly(island_run):
    url, built, evaluation_of = island_run
    newest = max(i["generation"] for i in built.individuals.values())
    alive = {i for members in built.alive.values() for i in members}
    genome_count: dict[str, int] = {}
    for i, result in built.metrics.items():
        if result.status == "done":
            genome_count[built.individuals[i]["genome"]] = genome_count.get(built.individuals[i]["genome"], 0) + 1

    def expected(rank: int, ident: int) -> dict:
        result, individual = built.metrics[ident], built.individuals[ident]
        return {
            "rank": rank, "individual_id": ident, "evaluation_id": evaluation_of[ident], "genome": individual["genome"],
            "fitness": result.val_accuracy, "val_accuracy": result.val_accuracy, "val_loss": result.val_loss,
            "test_accuracy": result.test_accuracy, "test_loss": result.test_loss,
            "train_accuracy": result.train_accuracy, "params": result.params, "flops": result.flops,
            "latency_ms": result.latency_ms, "island": individual["island"], "generation": individual["generation"],
            "age": newest - individual["generation"], "operator": individual["operator"], "alive": ident in alive,
            "copies": genome_count[individual["genome"]],
        }

    every = ranked(built)
    top = report_json(built.run_id, "--db", url, "-S", "top", "--top", "30", "--all")["top"]
    assert top == [expected(rank, ident) for rank, ident in enumerate(every[:30], start=1)]
    distinct, seen = [], set()
    for ident in every:
        if built.individuals[ident]["genome"] not in seen:
            seen.add(built.individuals[ident]["genome"])
            distinct.append(ident)
    top = report_json(built.run_id, "--db", url, "-S", "top", "--top", "5")["top"]
    assert top == [expected(rank, ident) for rank, ident in enumerate(distinct[:5], start=1)]
    by_params = ranked(built, "params")
    top = report_json(built.run_id, "--db", url, "-S", "top", "--top", "3", "--all", "--rank-by", "params")
    assert [row["individual_id"] for row in top["top"]] == by_params[:3]
    assert [row["fitness"] for row in top["top"]] == [built.metrics[i].val_accuracy for i in by_params[:3]]


def test_islands_state_each_island_exactly(island_run):
    url, built, evaluation_of = island_run

    def root(ident: int) -> int:
        while built.individuals[ident]["parents"]:
            ident = built.individuals[ident]["parents"][0]
        return ident

    rows = report_json(built.run_id, "--db", url, "-S", "islands")["islands"]
    expected = []
    for island in range(3):
        members = [i for i, record in built.individuals.items() if record["island"] == island]
        results = [built.metrics[i] for i in members]
        best = next(i for i in ranked(built) if built.individuals[i]["island"] == island)
        expected.append({
            "island": island, "generation": 6, "individuals": len(members), "alive": len(built.alive[island]),
            "evaluated": sum(r.status == "done" for r in results), "failed": sum(r.status == "failed" for r in results),
            "best_fitness": built.metrics[best].val_accuracy, "best_val_accuracy": built.metrics[best].val_accuracy,
            "best_test_accuracy": built.metrics[best].test_accuracy, "best_params": built.metrics[best].params,
            "best_individual_id": best, "root_ancestors": len({root(i) for i in built.alive[island]}),
        })
    assert rows == expected
    by_params = report_json(built.run_id, "--db", url, "-S", "islands", "--rank-by", "params")["islands"]
    for island, row in enumerate(by_params):
        best = next(i for i in ranked(built, "params") if built.individuals[i]["island"] == island)
        assert (row["best_individual_id"], row["best_fitness"]) == (best, built.metrics[best].val_accuracy)


def test_migrations_state_each_move_exactly(island_run):
    url, built, _ = island_run
    rows = report_json(built.run_id, "--db", url, "-S", "migrations")["migrations"]
    copies = {(record["parents"][0], record["island"], record["generation"]): ident
              for ident, record in built.individuals.items() if record["operator"] == "migration"}
    assert rows == [{
        "generation": generation, "from_island": source, "to_island": destination, "individual_id": migrant,
        "new_individual_id": copies[(migrant, destination, generation)],
        "genome": built.individuals[migrant]["genome"], "fitness": built.metrics[migrant].val_accuracy,
    } for generation, source, destination, migrant in built.migrations]


def test_a_derived_primary_metric_is_the_fitness_of_every_section(url):
    from nascli.metrics import value

    with open_store(url) as store:
        built = build_run(store, islands=2, population=3, generations=4,
                          overrides=("fitness.primary=inverse_val_loss",))

    def fitness(ident: int) -> float:
        return value(dataclasses.asdict(built.metrics[ident]), "inverse_val_loss")

    migrations = report_json(built.run_id, "--db", url, "-S", "migrations")["migrations"]
    assert [row["fitness"] for row in migrations] == [fitness(m) for _, _, _, m in built.migrations]
    top = report_json(built.run_id, "--db", url, "-S", "top", "--top", "3", "--all")["top"]
    assert [row["fitness"] for row in top] == [fitness(row["individual_id"]) for row in top]
    ranking = Ranking(primary="inverse_val_loss", threshold=0.99)  # digits-quick's threshold on the derived metric
    done = [i for i, r in built.metrics.items() if r.status == "done"]
    assert top[0]["individual_id"] == max(done, key=lambda i: ranking.key(dataclasses.asdict(built.metrics[i])))
    islands = report_json(built.run_id, "--db", url, "-S", "islands")["islands"]
    assert [row["best_fitness"] for row in islands] == [fitness(row["best_individual_id"]) for row in islands]


def test_the_worker_trace_has_each_trained_evaluation(island_run):
    from nascli.report.gather import trace_points
    from nascli.store.reports import ReportQueries

    url, built, evaluation_of = island_run
    with open_store(url) as store:
        run = store.get_run(built.run_id)
        points = trace_points(ReportQueries(store), run)
        infos = {info.id: info for info in store.evaluations(built.run_id)}
    seen = sorted((p.worker_id, p.status, p.val_accuracy or 0.0, p.started_at.timestamp(), p.finished_at.timestamp())
                  for p in points)
    recorded = sorted((info.worker_id, info.status, info.result.val_accuracy or 0.0, info.started_at, info.finished_at)
                      for info in infos.values())
    assert [point[:3] for point in seen] == [row[:3] for row in recorded]
    assert [t for point in seen for t in point[3:]] == pytest.approx([t for row in recorded for t in row[3:]], abs=1e-5)


def test_root_ancestors_stop_at_a_parent_outside_the_run():
    from nascli.report.gather import root_ancestors

    # 1 <- 2 <- 3; 4's parent 99 is not in the run (a seed from elsewhere); 6 <- 4
    links = [(1, None, 0, True), (2, 1, 0, True), (3, 2, 0, True), (4, 99, 1, True), (6, 4, 1, False)]
    assert root_ancestors(links) == {1: 1, 2: 1, 3: 1, 4: 4, 6: 4}


# ------------------------------------------------------------------ the Pareto front


def front_of(points: dict[int, tuple[float, float]]) -> list[int]:
    """Ids whose (maximised, minimised) pair no other pair dominates."""
    def dominates(a, b) -> bool:
        return a[0] >= b[0] and a[1] <= b[1] and a != b
    return [i for i, p in points.items() if not any(dominates(q, p) for q in points.values())]


def area(points: list[tuple[float, float]]) -> float:
    """Hypervolume of minimised 2-D points against (1, 1); a dominated point adds nothing to the sweep."""
    total, best_y = 0.0, 1.0
    for x, y in sorted(points):
        if y < best_y:
            total += (1.0 - x) * (best_y - y)
            best_y = y
    return total


def without_max_params(config: dict) -> None:
    del config["search_space"]["max_params"]


def flops_secondary(config: dict) -> None:
    config["fitness"]["secondary"] = "flops"
    config["nsga2"]["objectives"] = ["val_accuracy", "flops"]


def latency_objective(config: dict) -> None:
    config["nsga2"]["objectives"] = ["val_accuracy", "latency_ms"]
    config["train"]["measure_latency"] = True


def inverse_loss_objective(config: dict) -> None:
    config["nsga2"]["objectives"] = ["inverse_val_loss", "params"]


def stored_without_objectives(config: dict) -> None:
    """A configuration stored before [nsga2] objectives was filled in: the fitness rule's pair."""
    config["fitness"].update(primary="inverse_val_loss", secondary="flops")
    del config["nsga2"]


@pytest.fixture(scope="module", params=MODULE_BACKENDS)
def pareto_run(request, tmp_path_factory):
    """One run whose stored configuration each Pareto test rewrites before it reads the report."""
    url = module_database(request, tmp_path_factory)
    with open_store(url) as store:
        built = build_run(store, islands=2, population=4, generations=4)
        evaluation_of = {info.individual_id: info.id for info in store.evaluations(built.run_id)}
        config = store.get_run(built.run_id).config
    return url, built, evaluation_of, config


@pytest.mark.parametrize(("edit", "first", "cost", "bounded"), [
    (None, "val_accuracy", "params", True),  # the preset's max_params bounds the box
    (without_max_params, "val_accuracy", "params", False),
    (flops_secondary, "val_accuracy", "flops", False),
    (latency_objective, "val_accuracy", "latency_ms", False),
    (inverse_loss_objective, "inverse_val_loss", "params", True),
    (stored_without_objectives, "inverse_val_loss", "flops", False),
], ids=["params-bounded", "params-unbounded", "flops", "nsga2-objectives", "inverse-loss", "fitness-pair"])
def test_the_pareto_section_states_the_front_reference_and_hypervolume_exactly(pareto_run, edit, first, cost,
                                                                              bounded):
    import copy

    from nascli.metrics import value

    url, built, evaluation_of, stored = pareto_run
    config = copy.deepcopy(stored)
    if edit is not None:
        edit(config)
    set_rows(url, R, R.c.id == built.run_id, config_json=json.dumps(config))
    first_of_genome: dict[str, int] = {}
    for ident in sorted(built.metrics, key=lambda i: evaluation_of[i]):
        if built.metrics[ident].status == "done":
            first_of_genome.setdefault(built.individuals[ident]["genome"], ident)
    points = {i: (value(dataclasses.asdict(built.metrics[i]), first), getattr(built.metrics[i], cost))
              for i in first_of_genome.values()}
    reference = 100000.0 if bounded else 1.1 * max(c for _, c in points.values())
    front = sorted(front_of(points), key=lambda i: (-points[i][0], points[i][1]))

    def normal(point: tuple[float, float]) -> tuple[float, float]:
        gain = 1.0 / (1.0 + point[0]) if first == "inverse_val_loss" else 1.0 - point[0]
        return gain, point[1] / reference

    report = report_json(built.run_id, "--db", url, "-S", "pareto")["pareto"]

    assert report["objectives"] == [first, cost] and report["senses"] == ["max", "min"]
    assert report["reference"] == {first: 0.0, cost: pytest.approx(reference)}
    assert report["evaluated"] == len(points)
    assert report["front"] == [{
        "individual_id": i, "evaluation_id": evaluation_of[i], "genome": built.individuals[i]["genome"],
        "island": built.individuals[i]["island"], "generation": built.individuals[i]["generation"],
        "objectives": {first: pytest.approx(points[i][0]), cost: points[i][1]},
    } for i in front]
    assert report["hypervolume"] == pytest.approx(area([normal(points[i]) for i in front]))


# ------------------------------------------------------------------ generations


def test_generations_state_each_generations_statistics_exactly(island_run):
    import statistics

    url, built, _ = island_run
    rows = report_json(built.run_id, "--db", url, "-S", "generations")["generations"]
    expected, best = [], None
    for generation in sorted({record["generation"] for record in built.individuals.values()}):
        results = [built.metrics[i] for i, record in built.individuals.items()
                   if record["generation"] == generation and built.metrics[i].status == "done"]
        row: dict = {"generation": generation, "evaluations": len(results)}
        for name in ("train_accuracy", "val_accuracy", "test_accuracy"):
            values = [getattr(r, name) for r in results]
            row.update({f"{name}_max": max(values), f"{name}_mean": statistics.fmean(values),
                        f"{name}_std": statistics.pstdev(values)})
        best = max(best or 0.0, row["val_accuracy_max"])
        row["best_val_accuracy_so_far"] = best
        expected.append(row)
    assert [set(r) for r in rows] == [set(e) for e in expected]
    for got, want in zip(rows, expected, strict=True):
        assert got == {key: pytest.approx(value, abs=1e-9) for key, value in want.items()}, want["generation"]


# ------------------------------------------------------------------ summary


def test_the_summary_states_every_field_exactly(url):
    from nascli.run_stop import BUDGET_SPENT

    with open_store(url) as store:
        built = build_run(store, islands=2, population=3, generations=4, overrides=("fitness.threshold=0.6",))
        run_id = built.run_id
        extra = store.add_individuals(run_id, [NewIndividual(1, 5, slot, "In_8_8:D_10", f"extra-{slot}")
                                               for slot in range(5)])
        task = Task(genome="In_8_8:D_10", task={"kind": "synthetic"}, train={})
        store.enqueue(run_id, [EvaluationRequest(i, task) for i in extra[:3]])
        assert store.claim("w9", run_id=run_id, lease_seconds=60) is not None  # one running
        assert store.cancel_pending(run_id) == 2
        store.enqueue(run_id, [EvaluationRequest(extra[3], task)])  # one pending
        ranking = Ranking(threshold=0.6)
        worst = min((i for i, r in built.metrics.items() if r.status == "done"),
                    key=lambda i: ranking.key(dataclasses.asdict(built.metrics[i])))
        infos = {info.individual_id: info for info in store.evaluations(run_id)}
        hits = store.cached_results(run_id, [infos[worst].genome_hash], infos[worst].config_hash)
        (cached,) = store.record_cached_results(run_id, [(extra[4], hits[infos[worst].genome_hash])])
        train_seconds = sum(info.result.train_seconds or 0.0 for info in store.evaluations(run_id)
                            if info.result is not None)
    set_rows(url, R, R.c.id == run_id, created_at=T0, finished_at=T0 + 1000.0)
    set_rows(url, E, (E.c.run_id == run_id) & E.c.status.in_(("done", "failed")) & E.c.worker_id.is_not(None),
             started_at=T0 + 10.0, finished_at=T0 + 910.0)
    set_rows(url, E, E.c.id == cached.evaluation_id, finished_at=T0 + 400.0)

    summary = report_json(run_id, "--db", url, "-S", "summary")["summary"]

    trained = len(built.metrics)
    done = [i for i, r in built.metrics.items() if r.status == "done"]
    best = max(done, key=lambda i: ranking.key(dataclasses.asdict(built.metrics[i])))
    assert summary.pop("train_seconds_total") == pytest.approx(train_seconds)
    assert summary == {
        "run_id": run_id, "name": "synthetic", "preset": "digits-quick", "strategy": "island-ga",
        "status": "finished", "seed": 0, "dataset": "digits", "task_kind": "classification", "islands": 2,
        "population": 3, "generations": 4, "epochs": 8, "fitness_primary": "val_accuracy",
        "ranked_by": ranking.describe(), "created_at": iso(T0), "started_at": iso(T0 + 10),
        "finished_at": iso(T0 + 1000), "elapsed_seconds": 1000.0,
        "individuals": len(built.individuals) + 5, "evaluations_total": trained + 5,
        "evaluations_pending": 1, "evaluations_running": 1, "evaluations_done": len(done) + 1,
        "evaluations_failed": trained - len(done), "evaluations_cancelled": 2,
        "evaluations_per_hour": 3600.0 * trained / 900.0, "evaluations_trained": trained, "evaluations_cached": 1,
        "workers_seen": 2, "generation_reached": 5,
        "failures_by_kind": {"crash": 1, "oom": 1},
        "best_individual_id": best, "best_genome": built.individuals[best]["genome"],
        "best_val_accuracy": built.metrics[best].val_accuracy,
        "best_test_accuracy": built.metrics[best].test_accuracy, "best_params": built.metrics[best].params,
        "stop_reason": BUDGET_SPENT,
    }
    by_params = report_json(run_id, "--db", url, "-S", "summary", "--rank-by", "params")["summary"]
    fewest = max(done, key=lambda i: Ranking(threshold=0.6, rank_by="params").key(dataclasses.asdict(built.metrics[i])))
    assert (by_params["best_individual_id"], by_params["ranked_by"]) == (fewest, "params (lowest first)")


# ------------------------------------------------------------------ compare


def test_compare_traces_each_runs_best_and_hypervolume_after_every_evaluation(url):
    from nascli.report.gather import compare
    from nascli.store.reports import ReportQueries

    with open_store(url) as store:
        first = build_run(store, islands=2, population=3, generations=4, seed=1)
        second = build_run(store, islands=1, population=4, generations=5, seed=2)
        other = build_run(store, islands=1, population=3, generations=2, seed=3, overrides=("fitness.secondary=flops",))
        finished = {run.run_id: [(r.individual_id, r.status) for r in store.results(run.run_id)]
                    for run in (first, second, other)}
        evaluation_of = {info.individual_id: info.id for run in (first, second)
                         for info in store.evaluations(run.run_id)}
        comparison = compare(ReportQueries(store), [first.run_id, second.run_id, other.run_id])

    def normal(ident: int, built) -> tuple[float, float]:
        result = built.metrics[ident]
        return (1.0 - result.val_accuracy, result.params / 100000.0)  # digits-quick: max_params bounds the box

    assert comparison.run_ids == [first.run_id, second.run_id, other.run_id]
    for built in (first, second):
        expected, best, seen = [], None, []
        for count, (ident, status) in enumerate(finished[built.run_id], start=1):
            if status == "done":
                if best is None or built.metrics[ident].val_accuracy > built.metrics[best].val_accuracy:
                    best = ident
                seen.append(normal(ident, built))
            expected.append((count, built.metrics[best].val_accuracy if best else None,
                             built.metrics[best].test_accuracy if best else None, area(seen) if seen else None))
        got = [(p.evaluations, p.best_val_accuracy, p.best_test_accuracy, p.hypervolume)
               for p in comparison.progress[built.run_id]]
        assert [g[:3] for g in got] == [e[:3] for e in expected]
        assert [g[3] for g in got] == pytest.approx([e[3] for e in expected])
        first_of_genome: dict[str, int] = {}
        for ident in sorted(built.metrics, key=lambda i: evaluation_of[i]):
            if built.metrics[ident].status == "done":
                first_of_genome.setdefault(built.individuals[ident]["genome"], ident)
        assert comparison.hypervolumes[built.run_id] == pytest.approx(
            area([normal(i, built) for i in first_of_genome.values()]))
    # other objectives than the first run's: no hypervolume to compare
    assert comparison.hypervolumes[other.run_id] is None
    assert [p.hypervolume for p in comparison.progress[other.run_id]] == [None] * len(finished[other.run_id])
    assert comparison.progress[other.run_id][-1].best_val_accuracy == max(
        r.val_accuracy for r in other.metrics.values() if r.status == "done")


# ------------------------------------------------------------------ what each plot is drawn from


def test_each_plot_gets_its_own_data_title_and_file(island_run, tmp_path, monkeypatch):
    """The pictures themselves are checked in test_report_cli.py; here, what goes into each. A plot
    that exists is refused before anything is drawn, unless --force, which each plot is told."""
    from nascli.report import plots

    url, built, _ = island_run
    drawn: dict[str, list[tuple]] = {}

    def recorder(kind: str):
        def draw(*args, force: bool = False):
            drawn.setdefault(kind, []).append((*args, force))
            args[-2].write_bytes(b"png")
            return args[-2]
        return draw

    for kind in ("generations", "pareto", "worker_trace", "island_curves", "anytime", "compare"):
        monkeypatch.setattr(plots, f"plot_{kind}", recorder(kind))
    directory = tmp_path / "plots"
    for force in (False, True):  # the second time every plot exists
        args = ["--force"] if force else []
        assert runner.invoke(app, ["report", built.run_id, "--db", url, "--plot", str(directory), *args]).exit_code == 0
        name = "islands"
        assert {kind: [(call[-3], call[-2], call[-1]) for call in calls] for kind, calls in drawn.items()} == {
            "generations": [(directory / f"{built.run_id}-generations.png", f"{name}: accuracy per generation", force)],
            "pareto": [(directory / f"{built.run_id}-pareto.png", f"{name}: Pareto front", force)],
            "worker_trace": [(directory / f"{built.run_id}-workers.png", f"{name}: evaluations per worker", force)],
            "island_curves": [(directory / f"{built.run_id}-islands.png",
                               f"{name}: best validation accuracy so far and population median per island", force)],
            "anytime": [(directory / f"{built.run_id}-anytime.png", f"{name}: best validation accuracy so far",
                         force)],
        }
        generations, pareto, trace, curves, anytime = (drawn[k][0][0] for k in (
            "generations", "pareto", "worker_trace", "island_curves", "anytime"))
        assert [row.generation for row in generations] == list(range(7))
        assert pareto.objectives == ["val_accuracy", "params"] and len(drawn["pareto"][0][1]) == pareto.evaluated
        assert len(trace) == len(built.metrics)
        assert [curve.island for curve in curves] == [0, 1, 2]
        assert anytime.best_so_far[-1] == max(r.val_accuracy for r in built.metrics.values() if r.status == "done")
        drawn.clear()
    result = runner.invoke(app, ["report", built.run_id, "--db", url, "--plot", str(directory)])
    assert result.exit_code == 2 and "already exists" in result.output and drawn == {}

    compared = tmp_path / "cmp"
    for force in (False, True):
        args = ["--force"] if force else []
        result = runner.invoke(app, ["report", "--compare", built.run_id, built.run_id, "--db", url, "--plot",
                                     str(compared), "-f", "json", *args])
        assert result.exit_code == 0, result.output
        assert [call[1:] for call in drawn["compare"]] == [
            ("best_val_accuracy", compared / "compare-accuracy.png", "best validation accuracy vs evaluations", force),
            ("hypervolume", compared / "compare-hypervolume.png", "hypervolume vs evaluations", force),
        ]
        drawn.clear()
    for existing in ("compare-accuracy.png", "compare-hypervolume.png"):
        (compared / "compare-accuracy.png").unlink(missing_ok=True)
        (compared / "compare-hypervolume.png").unlink(missing_ok=True)
        (compared / existing).write_bytes(b"mine")
        result = runner.invoke(app, ["report", "--compare", built.run_id, built.run_id, "--db", url, "--plot",
                                     str(compared), "-f", "json"])
        assert result.exit_code == 2 and existing in result.output and drawn == {}, existing


# ------------------------------------------------------------------ runs with little or odd data


def test_runs_and_islands_without_finished_work_state_zeros_and_no_best(url):
    with open_store(url) as store:
        config = store.get_run(build_run(store, islands=1, population=2, generations=1, failures=False).run_id).config
        empty = store.create_run("empty", "island-ga", "digits-quick", 0, config).id
        waiting = store.create_run("waiting", "island-ga", "digits-quick", 0, config).id
        store.set_run_status(waiting, "running")
        ids = store.add_individuals(waiting, [NewIndividual(island, 0, slot, "In_8_8:D_10", f"w-{island}-{slot}")
                                              for island in (0, 1) for slot in (0, 1)])
        task = Task(genome="In_8_8:D_10", task={"kind": "synthetic"}, train={})
        store.enqueue(waiting, [EvaluationRequest(i, task) for i in ids])
        for accuracy in (0.7, 0.8):  # island 0's two; island 1's wait
            claim = store.claim("w", run_id=waiting, lease_seconds=60)
            assert store.complete(claim.evaluation_id, claim.attempt, Result(status="done", val_accuracy=accuracy,
                                                                              params=10))
    listed = {row["run_id"]: row for row in report_json("--db", url)["runs"]}
    assert {key: listed[empty][key] for key in ("evaluations_done", "evaluations_failed", "evaluations_pending",
                                                "best_val_accuracy", "best_test_accuracy", "best_params")} == {
        "evaluations_done": 0, "evaluations_failed": 0, "evaluations_pending": 0, "best_val_accuracy": None,
        "best_test_accuracy": None, "best_params": None}
    assert {key: listed[waiting][key] for key in ("evaluations_done", "evaluations_failed", "evaluations_pending",
                                                  "best_val_accuracy", "best_params")} == {
        "evaluations_done": 2, "evaluations_failed": 0, "evaluations_pending": 2, "best_val_accuracy": 0.8,
        "best_params": 10}
    islands = report_json(waiting, "--db", url, "-S", "islands")["islands"]
    assert [(row["island"], row["evaluated"], row["best_individual_id"], row["best_fitness"]) for row in islands] == [
        (0, 2, ids[1], 0.8), (1, 0, None, None)]


def test_a_generation_without_test_accuracy_has_none_for_it(url):
    with open_store(url) as store:
        built = build_run(store, islands=1, population=2, generations=1, failures=False)
    set_rows(url, E, E.c.run_id == built.run_id, test_accuracy=None)
    rows = report_json(built.run_id, "--db", url, "-S", "generations")["generations"]
    assert [(row["test_accuracy_max"], row["test_accuracy_mean"], row["test_accuracy_std"]) for row in rows] == [
        (None, None, None)] * len(rows)
    assert all(row["val_accuracy_mean"] is not None for row in rows)


def test_a_non_finite_objective_value_leaves_the_point_out_of_the_front(url):
    with open_store(url) as store:
        built = build_run(store, islands=1, population=3, generations=2, failures=False,
                          overrides=("train.measure_latency=true", "fitness.secondary=latency_ms"))
        infos = store.evaluations(built.run_id)
    set_rows(url, E, E.c.id == infos[0].id, latency_ms=float("inf"))
    report = report_json(built.run_id, "--db", url, "-S", "pareto", "--all")["pareto"]
    assert report["objectives"] == ["val_accuracy", "latency_ms"]
    assert report["evaluated"] == len(infos) - 1
    assert infos[0].id not in [point["evaluation_id"] for point in report["front"]]


def test_compare_keeps_the_first_best_on_a_tie_and_uses_the_first_runs_objectives(url):
    from nascli.report.gather import compare
    from nascli.store.reports import ReportQueries

    with open_store(url) as store:
        flops = [build_run(store, islands=1, population=3, generations=2, seed=seed, failures=False,
                           overrides=("fitness.secondary=flops",)) for seed in (4, 5)]
        finished = store.results(flops[0].run_id)
        best, later = max(finished[:-1], key=lambda r: r.result.val_accuracy), finished[-1]
    # a later evaluation as accurate as the best so far, with another test accuracy: the first one stays best
    set_rows(url, E, E.c.id == later.evaluation_id, val_accuracy=best.result.val_accuracy, test_accuracy=0.123)
    with open_store(url) as store:
        comparison = compare(ReportQueries(store), [run.run_id for run in flops])
        clouds = {run.run_id: [(r.result.val_accuracy, r.result.flops) for r in store.results(run.run_id)]
                  for run in flops}
    last = comparison.progress[flops[0].run_id][-1]
    assert (last.best_val_accuracy, last.best_test_accuracy) == (best.result.val_accuracy, best.result.test_accuracy)
    reference = 1.1 * max(f for cloud in clouds.values() for _, f in cloud)  # one box for both runs
    for run in flops:
        distinct = {}
        for r in store_results_by_genome(url, run.run_id):
            distinct.setdefault(r[0], r[1:])
        normal = [(1.0 - v, f / reference) for v, f in distinct.values()]
        assert comparison.hypervolumes[run.run_id] == pytest.approx(area(normal))


def store_results_by_genome(url: str, run_id: str) -> list[tuple[str, float, float]]:
    """(genome hash, val accuracy, flops) of the run's done evaluations in id order."""
    with open_store(url) as store:
        return [(info.genome_hash, info.result.val_accuracy, info.result.flops)
                for info in store.evaluations(run_id) if info.status == "done"]


def test_the_summary_of_a_run_with_nothing_finished_yet_is_zeros_and_lasts_until_now(url):
    with open_store(url) as store:
        config = store.get_run(build_run(store, islands=1, population=2, generations=1, failures=False).run_id).config
        config["fitness"]["secondary"] = "flops"
        config["nsga2"]["objectives"] = ["val_accuracy", "flops"]
        run_id = store.create_run("quiet", "island-ga", "digits-quick", 0, config).id
        store.set_run_status(run_id, "running")
    set_rows(url, R, R.c.id == run_id, created_at=T0)
    before = time.time()
    summary = report_json(run_id, "--db", url, "-S", "summary")["summary"]
    after = time.time()
    assert before - T0 <= summary.pop("elapsed_seconds") <= after - T0
    assert {key: summary[key] for key in (
        "individuals", "evaluations_total", "evaluations_pending", "evaluations_running", "evaluations_done",
        "evaluations_failed", "evaluations_cancelled", "evaluations_trained", "evaluations_cached", "workers_seen",
        "evaluations_per_hour", "started_at", "finished_at", "best_individual_id", "stop_reason")} == {
        "individuals": 0, "evaluations_total": 0, "evaluations_pending": 0, "evaluations_running": 0,
        "evaluations_done": 0, "evaluations_failed": 0, "evaluations_cancelled": 0, "evaluations_trained": 0,
        "evaluations_cached": 0, "workers_seen": 0, "evaluations_per_hour": None, "started_at": None,
        "finished_at": None, "best_individual_id": None, "stop_reason": None}
    # nothing evaluated: the cost axis of the reference box falls back to 1
    pareto = report_json(run_id, "--db", url, "-S", "pareto")["pareto"]
    assert (pareto["reference"], pareto["evaluated"], pareto["front"], pareto["hypervolume"]) == (
        {"val_accuracy": 0.0, "flops": 1.0}, 0, [], None)


@pytest.mark.parametrize(("busy", "per_hour"), [(0.5, 3600.0 * 3 / 0.5), (0.0, None)])
def test_the_summary_rate_needs_busy_time(url, busy, per_hour):
    """Three trained evaluations between the first start and the last finish; none queued or failed."""
    with open_store(url) as store:
        built = build_run(store, islands=1, population=3, generations=0, failures=False)
    set_rows(url, E, E.c.run_id == built.run_id, started_at=T0, finished_at=T0 + busy)
    summary = report_json(built.run_id, "--db", url, "-S", "summary")["summary"]
    assert (summary["evaluations_per_hour"], summary["evaluations_trained"], summary["evaluations_cached"]) == (
        per_hour, 3, 0)
    assert (summary["evaluations_pending"], summary["evaluations_running"], summary["evaluations_failed"],
            summary["evaluations_cancelled"]) == (0, 0, 0, 0)


def test_a_worker_with_only_failures_and_a_short_span(url):
    with open_store(url) as store:
        built = build_run(store, islands=1, population=2, generations=0, failures=False)
        failing = [_finish(store, built.run_id, "host-d:404:w4", Result.failure("nan_loss", "x"), slot)
                   for slot in (7, 8)]
    set_rows(url, E, E.c.id.in_(failing), started_at=T0, finished_at=T0 + 0.5)
    (row,) = [row for row in report_json(built.run_id, "--db", url, "-S", "workers")["workers"]
              if row["worker_id"] == "host-d:404:w4"]
    assert (row["evaluations_done"], row["evaluations_failed"], row["evaluations_per_hour"]) == (
        0, 2, 3600.0 * 2 / 0.5)


def test_an_evaluation_without_an_individual_can_be_on_the_front(url):
    with open_store(url) as store:
        built = build_run(store, islands=1, population=2, generations=1, failures=False)
        (loose,) = store.enqueue(built.run_id, [EvaluationRequest(None, Task(
            genome="In_8_8:D_10", task={"kind": "synthetic"}, train={}), genome_hash="loose")])
        claim = store.claim("w", run_id=built.run_id, lease_seconds=60)
        assert store.complete(loose, claim.attempt, Result(status="done", val_accuracy=0.999, params=5))
    front = report_json(built.run_id, "--db", url, "-S", "pareto")["pareto"]["front"]
    assert front[0] == {"individual_id": None, "evaluation_id": loose, "genome": "In_8_8:D_10", "island": None,
                        "generation": None, "objectives": {"val_accuracy": 0.999, "params": 5}}


def test_compare_gives_a_run_with_other_objectives_no_hypervolume_and_keeps_it_out_of_the_box(url):
    from nascli.report.gather import compare
    from nascli.store.reports import ReportQueries

    with open_store(url) as store:
        flops = build_run(store, islands=1, population=3, generations=1, overrides=("fitness.secondary=flops",))
        params = build_run(store, islands=1, population=3, generations=1, seed=9)
        comparison = compare(ReportQueries(store), [flops.run_id, params.run_id])
    assert comparison.hypervolumes[params.run_id] is None
    assert comparison.hypervolumes[flops.run_id] is not None


def test_the_summary_names_the_rule_that_stopped_the_run(url):
    from nascli.run_stop import STOP_EVENT, StopReason

    with open_store(url) as store:
        built = build_run(store, islands=1, population=2, generations=1, failures=False)
        store.append_event(built.run_id, "note", {"rule": "not a stop"})
        store.append_event(built.run_id, STOP_EVENT, StopReason("max_evaluations", "4 evaluations").payload())
    set_rows(url, R, R.c.id == built.run_id, created_at=T0 + 50, finished_at=T0)  # a clock step between hosts
    summary = report_json(built.run_id, "--db", url, "-S", "summary")["summary"]
    assert (summary["stop_reason"], summary["elapsed_seconds"]) == ("run.max_evaluations: 4 evaluations", 0.0)


def test_the_tables_say_how_many_rows_how_they_are_ranked_and_what_a_point_is(island_run):
    url, built, _ = island_run

    def text(*args: str) -> str:
        result = runner.invoke(app, ["report", built.run_id, "--db", url, "--format", "markdown", *args])
        assert result.exit_code == 0, result.output
        return " ".join(result.stdout.split())

    assert "Top 4 by fitness" in text("-S", "top", "--top", "4")
    threshold = Ranking(threshold=0.6).describe()
    assert f"one row per genome, ranked by {threshold};" in text("-S", "top")
    assert "every evaluation (--all), ranked by params (lowest first);" in text("-S", "top", "--all",
                                                                             "--rank-by", "params")
    assert "distinct genomes;" in text("-S", "pareto") and "evaluations;" in text("-S", "pareto", "--all")


def test_a_cost_box_under_one_still_normalises_the_hypervolume(url):
    """Latencies under a millisecond: the box's cost side is under 1, and each cost is divided by it."""
    with open_store(url) as store:
        built = build_run(store, islands=1, population=3, generations=2, failures=False,
                          overrides=("train.measure_latency=true", "fitness.secondary=latency_ms"))
        infos = [info for info in store.evaluations(built.run_id) if info.status == "done"]
    latency = {info.id: 0.05 * (k + 1) for k, info in enumerate(infos)}
    for evaluation_id, value in latency.items():
        set_rows(url, E, E.c.id == evaluation_id, latency_ms=value)
    report = report_json(built.run_id, "--db", url, "-S", "pareto", "--all")["pareto"]
    reference = 1.1 * max(latency.values())
    assert reference < 1 and report["reference"]["latency_ms"] == pytest.approx(reference)
    points = {info.id: (info.result.val_accuracy, latency[info.id]) for info in infos}
    front = front_of(points)
    assert report["hypervolume"] == pytest.approx(area([(1.0 - points[i][0], points[i][1] / reference)
                                                        for i in front]))
