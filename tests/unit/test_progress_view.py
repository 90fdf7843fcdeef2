"""The progress views show the run's best as `nas report` ranks it (nascli.metrics.Ranking), beside the
islands' own fitness picks."""

from __future__ import annotations

import io
import time

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from nascli.commands.progress import LiveView, render
from nascli.driver.progress import Progress
from nascli.metrics import Ranking
from nascli.store.records import RunInfo
from nascli.store.reports import E, I, _ranked_narrow

metric = st.one_of(st.none(), st.sampled_from([0.1, 0.5, 0.9, 0.99, 1.0]))
rows = st.lists(st.fixed_dictionaries({"status": st.sampled_from(["done", "failed"]), "val_accuracy": metric,
                                       "val_loss": metric, "params": st.sampled_from([10, 500, 7466])}),
                min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(rows=rows, primary=st.sampled_from(["val_accuracy", "inverse_val_loss"]),
       threshold=st.sampled_from([None, 0.5, 0.95]), rank_by=st.sampled_from([None, "params", "val_accuracy"]))
def test_python_ranking_agrees_with_the_report_query(rows, primary, threshold, rank_by):
    # tables with the report's table names and the ranked columns only: the report's own query runs on them
    ranking = Ranking(primary=primary, threshold=threshold, rank_by=rank_by)
    engine = sa.create_engine("sqlite://")
    meta = sa.MetaData()
    evaluation = sa.Table(E.name, meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("run_id", sa.Text),
                          sa.Column("individual_id", sa.Integer), sa.Column("status", sa.Text),
                          sa.Column("genome_hash", sa.Text), sa.Column("extra_json", sa.Text),
                          *[sa.Column(c, sa.Float) for c in ranking.columns])
    individual = sa.Table(I.name, meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("island", sa.Integer))
    meta.create_all(engine)
    with engine.begin() as connection:
        connection.execute(individual.insert(), [{"id": i + 1, "island": 0} for i in range(len(rows))])
        connection.execute(evaluation.insert(), [
            {"id": i + 1, "run_id": "r", "individual_id": i + 1, "genome_hash": f"g{i}", "status": row["status"],
             **{c: row.get(c) for c in ranking.columns}} for i, row in enumerate(rows)])
        by_query = [row["evaluation_id"] for row in _ranked_narrow(connection, "r", ranking)]
    ranked = [(ranking.key(row), -(i + 1)) for i, row in enumerate(rows)
              if row["status"] == "done" and ranking.key(row) is not None]
    by_python = [-index for _, index in sorted(ranked, reverse=True)]
    assert by_python == by_query


def progress(**changes) -> Progress:
    run = RunInfo.__new__(RunInfo)
    object.__setattr__(run, "id", "r-123456")
    object.__setattr__(run, "strategy", "island-ga")
    for name, value in (("name", ""), ("preset", None), ("config", {"ga": {"generations": 20}})):
        object.__setattr__(run, name, value)
    # the island GA past its threshold: its fitness pick is the smallest network, not the most accurate
    snapshot = {"strategy": "island-ga", "best": {"metrics": {"val_accuracy": 0.9853, "params": 5218}},
                "islands": [{"island": 0, "generation": 3, "fitness_mode": "secondary",
                             "best": {"metrics": {"val_accuracy": 0.9853, "params": 5218}}}]}
    values = dict(run=run, snapshot=snapshot, queue={"pending": 0, "running": 0}, evaluations_done=9, cache_hits=0,
                  workers_alive=1, started=time.time() - 5, finished=True,
                  best={"metrics": {"val_accuracy": 1.0, "params": 7466}})
    values.update(changes)
    return Progress(**values)


def test_line_view_prints_the_reports_best():
    out = io.StringIO()
    LiveView(Console(file=out, force_terminal=False, width=200)).update(progress())
    assert "best val 100.00 %" in out.getvalue()  # units as `nas report` prints them


def test_live_view_shows_island_picks_and_the_reports_best():
    out = io.StringIO()
    Console(file=out, width=200).print(render(progress()))
    text = out.getvalue()
    assert "98.53 %" in text and "val 100.00 %  params 7.47k" in text
    out = io.StringIO()
    Console(file=out, width=200).print(render(progress(best=None)))  # nothing finished yet: the snapshot's
    assert "val 98.53 %  params 5.22k" in out.getvalue()


def test_live_view_shows_the_budget_bar_generations_and_eta():
    out = io.StringIO()
    Console(file=out, width=200).print(render(progress(budget=52, evaluations_done=13, finished=False), eta=75.0))
    text = out.getvalue()
    assert "13/52 evaluations" in text and "25 %" in text and "ETA 1m 15s" in text and "elapsed" in text
    assert " 3/20 " in text  # island 0 at generation 3 of ga.generations


def test_closing_summary_names_the_best_network_and_the_next_commands():
    best = {"genome": "In_8_8_1:C_3-3-1-1-16:D_10",
            "metrics": {"val_accuracy": 0.98333, "test_accuracy": 0.9778, "params": 31337}}
    out = io.StringIO()
    view = LiveView(Console(file=out, force_terminal=False, width=200))
    view.update(progress(status="finished", best=best, cache_hits=84, evaluations_done=112,
                         cache_sources=["r-aaaaaa", "r-bbbbbb"]))
    view.close()
    text = out.getvalue()
    assert "run r-123456 finished" in text and "best network  In_8_8_1:C_3-3-1-1-16:D_10" in text
    assert "validation 98.33 %   test 97.78 %   parameters 31.34k" in text
    assert "84 of 112 results reused from runs r-aaaaaa, r-bbbbbb" in text
    lines = text.splitlines()
    assert lines[-2:] == ["next:  nas report r-123456", "       nas export r-123456 --out best/"]


def test_a_run_where_everything_failed_ends_with_one_error_line_of_the_failure_kinds():
    out, err = io.StringIO(), io.StringIO()
    view = LiveView(Console(file=out, force_terminal=False, width=200), Console(file=err, width=300))
    view.update(progress(status="failed", best=None, queue={"failed": 12, "done": 0},
                         failure_kinds={"crash": 3, "oom": 9}))
    view.close()
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: every evaluation of run r-123456 failed (9 oom, 3 crash)")


def test_without_workers_the_view_says_it_waits_for_nas_worker():
    out = io.StringIO()
    waiting = progress(workers_alive=0, queue={"pending": 12, "running": 0}, finished=False)
    LiveView(Console(file=out, force_terminal=False, width=300)).update(waiting)
    assert "waiting for `nas worker` processes" in out.getvalue() and "nas worker --run r-123456" in out.getvalue()
    out = io.StringIO()
    Console(file=out, width=300).print(render(waiting))
    assert "waiting for `nas worker` processes" in out.getvalue()


def test_a_cancelled_run_without_results_offers_no_export():
    out = io.StringIO()
    view = LiveView(Console(file=out, force_terminal=False, width=200))
    view.update(progress(status="cancelled", best=None, evaluations_done=0, queue={"cancelled": 12}))
    view.close()
    text = out.getvalue()
    assert "run r-123456 cancelled" in text and "12 cancelled" in text and "nas report r-123456" in text
    assert "nas export" not in text


def test_a_resumed_run_says_which_evaluations_it_waits_on_and_for_how_long():
    out = io.StringIO()
    Console(file=out, width=200).print(render(progress(waiting_on=[(12, 87.4), (15, 110.0)], finished=False)))
    assert "waiting on evaluations still held by workers" in out.getvalue()
    assert "12 (87 s), 15 (110 s)" in out.getvalue()
    out = io.StringIO()
    Console(file=out, width=200).print(render(progress(waiting_on=[(i, 5.0) for i in range(6)], finished=False)))
    assert "3 (5 s) and 2 more" in out.getvalue()
    out = io.StringIO()
    LiveView(Console(file=out, force_terminal=False, width=200)).update(progress(waiting_on=[(7, 30.0)]))
    assert "7 (30 s)" in out.getvalue()
    out = io.StringIO()
    Console(file=out, width=200).print(render(progress(finished=False)))
    assert "waiting on" not in out.getvalue()


def test_while_the_initial_walks_run_the_view_says_how_far_they_are():
    line = "walking the initial individuals (ga.init_proxy, Klos #9): 3 of 12 walks done, 118 proxy trainings finished"
    out = io.StringIO()
    Console(file=out, width=200).print(render(progress(initial_walks=line, finished=False, evaluations_done=0)))
    assert line in out.getvalue()
    out = io.StringIO()
    LiveView(Console(file=out, force_terminal=False, width=200)).update(progress(initial_walks=line))
    assert line in out.getvalue()
