"""`nas report` on synthetic runs built through the store API: every section in every format, the
JSON schema, CSV for pandas, plots, --compare, errors; SQLite and PostgreSQL alike."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

import pytest
from test_report_builder import (  # noqa: F401 - postgres_database is a fixture
    MODULE_BACKENDS,
    build_run,
    module_database,
    postgres_database,
    sqlite_url,
)
from typer.testing import CliRunner

from nascli.cli import app
from nascli.report import model
from nascli.report.model import RUN_SECTIONS
from nascli.report.render import SCHEMA
from nascli.store import open_store
from tests.helpers import assert_bad_input, assert_one_line_error, database_state

runner = CliRunner()
FORMATS = ("table", "json", "csv", "markdown")


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")


def nas(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module", params=MODULE_BACKENDS)
def two_runs(request, tmp_path_factory):
    """Built once per backend and module: the report only reads, so tests can share them."""
    store_url = module_database(request, tmp_path_factory)
    with open_store(store_url) as store:
        island = build_run(store, islands=3, population=4, generations=6, name="islands")
        multi = build_run(store, preset="digits-nsga2", islands=1, population=6, generations=6, name="pareto",
                          status="running", seed=3)
    return store_url, island, multi


# ----------------------------------------------------------------------------- every section and format


@pytest.mark.parametrize("output_format", FORMATS)
def test_every_section_prints_in_every_format(two_runs, output_format):
    url, island, _ = two_runs
    for section in RUN_SECTIONS:
        result = nas("report", island.run_id, "--db", url, "--section", section, "--format", output_format)
        assert result.exit_code == 0, (section, result.output)
        assert result.stdout.strip(), section
    result = nas("report", "--db", url, "--format", output_format)
    assert result.exit_code == 0 and island.run_id in result.stdout


def test_json_schema_is_stable(two_runs):
    """The documented keys (docs/report.md) — a rename or removal must fail here and bump the schema."""
    url, island, multi = two_runs
    data = json.loads(nas("report", island.run_id, "--db", url, "--format", "json", "--section",
                          ",".join(RUN_SECTIONS)).stdout)
    assert data["schema"] == SCHEMA == "nascli.report/1"
    assert data["run_id"] == island.run_id
    documented = {
        "summary": model.RunSummary, "islands": model.IslandRow, "top": model.TopRow, "workers": model.WorkerRow,
        "generations": model.GenerationRow, "migrations": model.MigrationRow,
    }
    expected_summary = {
        "run_id", "name", "preset", "strategy", "status", "seed", "dataset", "task_kind", "islands", "population",
        "generations", "epochs", "fitness_primary", "created_at", "started_at", "finished_at", "elapsed_seconds",
        "individuals", "evaluations_total", "evaluations_pending", "evaluations_running", "evaluations_done",
        "evaluations_failed", "evaluations_cancelled", "evaluations_per_hour", "train_seconds_total", "workers_seen",
        "generation_reached", "failures_by_kind", "best_individual_id", "best_genome", "best_val_accuracy",
        "best_test_accuracy", "best_params"}
    assert expected_summary <= set(data["summary"])
    expected_top = {"rank", "individual_id", "evaluation_id", "genome", "fitness", "val_accuracy", "val_loss",
                    "test_accuracy", "test_loss", "train_accuracy", "params", "flops", "latency_ms", "island",
                    "generation", "age", "operator", "alive"}
    assert expected_top <= set(data["top"][0])
    for name, cls in documented.items():
        rows = data[name] if isinstance(data[name], list) else [data[name]]
        assert rows, name
        assert set(rows[0]) == {f.name for f in dataclasses.fields(cls)}, name
    assert set(data["pareto"]) == {"objectives", "senses", "reference", "hypervolume", "evaluated", "front"}
    runs = json.loads(nas("report", "--db", url, "--format", "json").stdout)["runs"]
    assert [row["run_id"] for row in runs][:2] == [multi.run_id, island.run_id]  # newest first
    assert set(runs[0]) == {f.name for f in dataclasses.fields(model.RunRow)}


def test_docs_describe_every_json_key():
    from pathlib import Path

    docs = (Path(__file__).parents[2] / "docs" / "report.md").read_text(encoding="utf-8")
    for cls in (model.RunRow, model.RunSummary, model.IslandRow, model.TopRow, model.WorkerRow, model.GenerationRow,
                model.MigrationRow, model.ParetoReport, model.ParetoPoint):
        for field in dataclasses.fields(cls):
            assert f"`{field.name}`" in docs, (cls.__name__, field.name)


def test_summary_counts_match_what_was_recorded(two_runs):
    url, island, _ = two_runs
    summary = json.loads(nas("report", island.run_id, "--db", url, "-f", "json", "-S", "summary").stdout)["summary"]
    failed = [r for r in island.metrics.values() if r.status == "failed"]
    done = [r for r in island.metrics.values() if r.status == "done"]
    assert summary["evaluations_done"] == len(done) and summary["evaluations_failed"] == len(failed)
    assert summary["failures_by_kind"] == {"crash": 1, "oom": 2}
    assert summary["best_val_accuracy"] == max(r.val_accuracy for r in done)
    assert summary["workers_seen"] == 2 and summary["status"] == "finished"
    assert summary["islands"] == 3 and summary["generation_reached"] == 6


def test_top_is_sorted_by_validation_accuracy_and_never_by_test(two_runs):
    url, island, _ = two_runs
    top = json.loads(nas("report", island.run_id, "--db", url, "-f", "json", "-S", "top", "--top", "5").stdout)["top"]
    assert [row["rank"] for row in top] == [1, 2, 3, 4, 5]
    values = [row["val_accuracy"] for row in top]
    assert values == sorted(values, reverse=True)
    best_val = max(r.val_accuracy for r in island.metrics.values() if r.status == "done")
    assert top[0]["val_accuracy"] == best_val


def test_islands_count_distinct_root_ancestors(two_runs):
    url, island, _ = two_runs
    rows = json.loads(nas("report", island.run_id, "--db", url, "-f", "json", "-S", "islands").stdout)["islands"]
    assert [row["island"] for row in rows] == [0, 1, 2]
    for row in rows:
        assert 1 <= row["root_ancestors"] <= row["alive"] <= 4 + 1

    def root(ident: int) -> int:  # follow first parents back to the initial population
        while island.individuals[ident]["parents"]:
            ident = island.individuals[ident]["parents"][0]
        return ident

    expected = [len({root(ident) for ident in island.alive[number]}) for number in range(3)]
    assert [row["root_ancestors"] for row in rows] == expected
    assert [row["alive"] for row in rows] == [len(island.alive[number]) for number in range(3)]
    assert expected != [row["alive"] for row in rows]  # the data tells distinct roots from members


def test_migrations_name_the_copy_on_the_destination(two_runs):
    url, island, _ = two_runs
    rows = json.loads(nas("report", island.run_id, "--db", url, "-f", "json", "-S", "migrations").stdout)["migrations"]
    assert [(r["generation"], r["from_island"], r["to_island"], r["individual_id"]) for r in rows] == island.migrations
    for row in rows:
        copy = island.individuals[row["new_individual_id"]]
        assert copy["operator"] == "migration" and copy["island"] == row["to_island"]


def test_csv_loads_as_one_table_per_section(two_runs):
    url, island, _ = two_runs
    text = nas("report", island.run_id, "--db", url, "-f", "csv", "-S", "top", "--top", "4").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4 and float(rows[0]["val_accuracy"]) >= float(rows[1]["val_accuracy"])
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_csv(io.StringIO(nas("report", island.run_id, "--db", url, "-f", "csv", "-S",
                                            "generations").stdout))
    assert list(frame["generation"]) == sorted(frame["generation"])
    several = nas("report", island.run_id, "--db", url, "-f", "csv").stdout
    assert several.startswith("# section: summary\n") and "\n\n# section: islands\n" in several


def test_pareto_front_is_non_dominated(two_runs):
    url, _, multi = two_runs
    data = json.loads(nas("report", multi.run_id, "--db", url, "-f", "json").stdout)  # default sections + pareto
    pareto = data["pareto"]
    assert pareto["objectives"] == ["val_accuracy", "params"] and pareto["senses"] == ["max", "min"]
    assert 0 < pareto["hypervolume"] <= 1
    front = [(p["objectives"]["val_accuracy"], p["objectives"]["params"]) for p in pareto["front"]]
    done = [(r.val_accuracy, r.params) for r in multi.metrics.values() if r.status == "done"]
    for acc, params in front:
        assert not any(a >= acc and p <= params and (a, p) != (acc, params) for a, p in done)
    for acc, params in done:  # everything off the front is dominated by something on it
        assert (acc, params) in front or any(a >= acc and p <= params for a, p in front)


@pytest.mark.slow
def test_plots_are_written_and_not_empty(two_runs, tmp_path):
    url, island, multi = two_runs
    result = nas("report", island.run_id, "--db", url, "--plot", str(tmp_path / "plots"), "-S", "summary")
    assert result.exit_code == 0, result.output
    for name in ("generations", "pareto", "workers", "islands", "anytime"):
        path = tmp_path / "plots" / f"{island.run_id}-{name}.png"
        assert path.stat().st_size > 5000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = nas("report", "--compare", island.run_id, multi.run_id, "--db", url, "--plot", str(tmp_path / "cmp"),
                 "-f", "json")
    assert result.exit_code == 0, result.output
    compared = json.loads(result.stdout)["compare"]
    assert [row["run_id"] for row in compared] == [island.run_id, multi.run_id]
    assert compared[0]["progress"][-1]["evaluations"] == len(island.metrics)
    for name in ("compare-accuracy.png", "compare-hypervolume.png"):
        assert (tmp_path / "cmp" / name).stat().st_size > 5000


def test_latest_and_markdown(two_runs):
    url, _, multi = two_runs
    result = nas("report", "latest", "--db", url, "-f", "markdown", "-S", "summary,top")
    assert result.exit_code == 0
    assert f"## Run {multi.run_id}" in result.stdout and "## Top 10 by fitness" in result.stdout
    assert "| rank | individual_id | genome |" in result.stdout


def assert_reports_write_nothing(url: str, run_id: str, calls: list[tuple[str, ...]]) -> None:
    """Each `nas report --db url *call` succeeds and leaves the database byte-for-byte the same (SQLite file
    and its write-ahead log) with every table's row count unchanged, and the run reads back the same."""
    with open_store(url) as store:
        before = (store.get_run(run_id), store.queue_counts(), len(store.individuals(run_id)))
    state = database_state(url)
    for call in calls:
        result = nas("report", "--db", url, *call)
        assert result.exit_code == 0, (call, result.output)
        assert database_state(url) == state, call
    with open_store(url) as store:
        assert (store.get_run(run_id), store.queue_counts(), len(store.individuals(run_id))) == before


def test_report_never_writes(two_runs):
    """Read-only: after every section, format, --compare and the list of runs the database is byte-for-byte
    the same (SQLite file and its write-ahead log) and every table has the same number of rows (both
    backends). --plot: test_report_plots_never_write."""
    url, island, multi = two_runs
    every_section = ",".join(RUN_SECTIONS)
    calls = [(island.run_id, "-S", section) for section in RUN_SECTIONS]
    calls += [(island.run_id, "-S", every_section, "-f", output_format) for output_format in FORMATS]
    calls += [("--compare", island.run_id, multi.run_id), ("--compare", island.run_id, multi.run_id, "-f", "json")]
    calls += [(), ("-f", "csv"), ("latest", "-S", "top")]
    assert_reports_write_nothing(url, island.run_id, calls)


# drawing the seven plots takes ~3 s: on SQLite (checked byte for byte) in the inner loop, on PostgreSQL in the
# full run (the plots read through the same queries as the sections above)
@pytest.mark.parametrize("two_runs", ["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres,
                                                                                   pytest.mark.slow])],
                         indirect=True)
def test_report_plots_never_write(two_runs, tmp_path):
    """Read-only: --plot of a run and of --compare leave the database as test_report_never_writes does."""
    url, island, multi = two_runs
    assert_reports_write_nothing(url, island.run_id, [
        (island.run_id, "-S", "summary", "--plot", str(tmp_path / "plots")),
        ("--compare", island.run_id, multi.run_id, "-f", "json", "--plot", str(tmp_path / "cmp"))])
    assert len(list((tmp_path / "plots").glob("*.png"))) == 5 and len(list((tmp_path / "cmp").glob("*.png"))) == 2


# ----------------------------------------------------------------------------------- errors


def test_bad_input_is_one_line_exit_2(tmp_path):
    url = sqlite_url(tmp_path)
    assert_bad_input(lambda: nas("report", "r-nope00", "--db", url), "r-nope00")
    with open_store(url) as store:
        run = build_run(store, islands=1, population=2, generations=1)
    assert_bad_input(lambda: nas("report", run.run_id, "--db", url, "-S", "bogus"), "bogus")
    assert_bad_input(lambda: nas("report", run.run_id, "--db", url, "-f", "yaml"), "yaml")
    assert_bad_input(lambda: nas("report", "--db", url, "-S", "top"), "needs a run")
    assert_bad_input(lambda: nas("report", "--compare", run.run_id, "--db", url), "at least two")
    assert_bad_input(lambda: nas("report", run.run_id, run.run_id, "--db", url), "--compare")
    assert_bad_input(lambda: nas("report", "--db", f"sqlite:///{tmp_path / 'missing.db'}"), "missing.db")


def test_empty_run_reports_without_crashing(tmp_path):
    url = sqlite_url(tmp_path)
    with open_store(url) as store:
        run = store.create_run("empty", "island-ga", None, 0, {})
    for output_format in FORMATS:
        result = nas("report", run.id, "--db", url, "-f", output_format, "-S", ",".join(RUN_SECTIONS))
        assert result.exit_code == 0, result.output
    (tmp_path / "other").mkdir()
    assert "no runs yet" in nas("report", "--db", sqlite_url(tmp_path / "other")).stdout


def test_watch_refreshes_until_the_run_finishes(tmp_path):
    import threading
    import time

    url = sqlite_url(tmp_path)
    with open_store(url) as store:
        run = build_run(store, islands=1, population=2, generations=1, status="running")

    def finish_soon():
        time.sleep(1.0)
        with open_store(url) as store:
            store.set_run_status(run.run_id, "finished")

    finisher = threading.Thread(target=finish_soon)
    finisher.start()
    started = time.monotonic()
    result = nas("report", run.run_id, "--db", url, "--watch", "--interval", "0.2", "-S", "summary")
    finisher.join()
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 1.0
    assert "finished" in result.stdout
    assert_one_line_error(nas("report", run.run_id, "--db", url, "--watch", "-f", "json"), "--watch")
