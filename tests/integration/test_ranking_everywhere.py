"""One ranking rule everywhere: under Klos' threshold fitness, the report's summary, islands and top,
the driver's progress line and `nas export` pick the same rank 1 (nascli.metrics.Ranking), the top
list shows distinct genomes (`--all`: every evaluation), and rates count trained evaluations only."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from nascli.cli import app
from nascli.export.command import export_spec
from nascli.metrics import Ranking
from nascli.store.reports import open_read_only

runner = CliRunner()


@pytest.fixture(scope="module")
def threshold_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ranking")
    url = f"sqlite:///{directory / 'nas.db'}"
    result = runner.invoke(app, ["run", "--preset", "synthetic-quick", "--db", url, "--set", "fitness.threshold=0.7",
                                 "--set", "task.synthetic_seconds=0"])
    assert result.exit_code == 0, result.output
    return url, result.output


def report(url: str, *args: str) -> dict:
    result = runner.invoke(app, ["report", "latest", "--db", url, "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_rank_one_follows_the_runs_threshold_rule_everywhere(threshold_run):
    url, run_output = threshold_run
    everything = report(url, "-S", "top", "--all", "--top", "1000")["top"]
    ranking = Ranking(primary="val_accuracy", threshold=0.7, secondary="params")
    expected = max(everything, key=lambda row: (ranking.key(row), -row["evaluation_id"]))
    most_accurate = max(everything, key=lambda row: row["val_accuracy"])
    assert expected["genome"] != most_accurate["genome"]  # the rule, not accuracy, decides here
    assert expected["val_accuracy"] > 0.7 and expected["params"] < most_accurate["params"]

    data = report(url, "-S", "summary,top,islands")
    assert data["top"][0]["evaluation_id"] == expected["evaluation_id"]
    assert data["summary"]["best_individual_id"] == expected["individual_id"]
    assert "0.7" in data["summary"]["ranked_by"]
    best_island = max(data["islands"], key=lambda row: ranking.key({"val_accuracy": row["best_val_accuracy"],
                                                                     "params": row["best_params"]}))
    assert best_island["best_individual_id"] == expected["individual_id"]
    progress_lines = [line for line in run_output.splitlines() if "best val" in line]
    assert f"best val {100 * expected['val_accuracy']:.2f} %" in progress_lines[-1]  # the progress line
    assert f"best network  {expected['genome']}" in run_output  # the closing summary
    with open_read_only(url) as queries:
        spec, _ = export_spec(queries, queries.run("latest"), rank=None, individual=None)
        assert spec.identity["individual_id"] == expected["individual_id"]
        by_accuracy, _ = export_spec(queries, queries.run("latest"), rank=None, individual=None,
                                     rank_by="val_accuracy")
        assert by_accuracy.genome == most_accurate["genome"]
    overridden = report(url, "-S", "top", "--rank-by", "val_accuracy")["top"]
    assert overridden[0]["genome"] == most_accurate["genome"]


def test_top_shows_distinct_genomes_unless_all(threshold_run):
    url, _ = threshold_run
    distinct = report(url, "-S", "top", "--top", "1000")["top"]
    everything = report(url, "-S", "top", "--all", "--top", "1000")["top"]
    genomes = [row["genome"] for row in distinct]
    assert len(genomes) == len(set(genomes)) < len(everything)  # synthetic-quick has cache hits
    for row in distinct:
        assert row["copies"] == sum(1 for other in everything if other["genome"] == row["genome"])


def test_rates_count_trained_evaluations(threshold_run):
    url, _ = threshold_run
    summary = report(url, "-S", "summary,workers")
    run, workers = summary["summary"], summary["workers"]
    assert run["evaluations_cached"] > 0
    assert run["evaluations_trained"] + run["evaluations_cached"] == run["evaluations_done"] + run["evaluations_failed"]
    assert run["evaluations_trained"] == sum(w["evaluations_done"] + w["evaluations_failed"] for w in workers)


def test_rank_by_an_unknown_metric_is_one_line(threshold_run):
    url, _ = threshold_run
    result = runner.invoke(app, ["report", "latest", "--db", url, "--rank-by", "test_accuracy"])
    assert result.exit_code == 2 and "--rank-by 'test_accuracy'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_worker_trace_has_no_row_for_cache_hits(threshold_run):
    from nascli.report.gather import trace_points

    url, _ = threshold_run
    summary = report(url, "-S", "summary")["summary"]
    with open_read_only(url) as queries:
        trace = trace_points(queries, queries.run("latest"))
    assert len(trace) == summary["evaluations_trained"]
    assert all(point.worker_id for point in trace)
