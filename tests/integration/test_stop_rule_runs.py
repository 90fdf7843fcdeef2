"""`train.stop_rule` end to end: real `nas run` drivers with a local worker on SQLite, the synthetic
evaluator (per-epoch curves), and the database read back as it is."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nascli.stop_rule import should_stop
from nascli.store import open_store


def _run(db: Path, *settings: str) -> None:
    env = {**os.environ}
    env.pop("NAS_DB_URL", None)
    subprocess.run([sys.executable, "-m", "nascli", "run", "--preset", "synthetic-quick", "--seed", "3", "--workers",
                    "1", "--db", f"sqlite:///{db}", "--set", "task.synthetic_seconds=0", *settings],
                   env=env, check=True, capture_output=True, timeout=240)


def _evaluations(db: Path) -> list[dict]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT e.id, e.status, e.val_accuracy, e.task_json, e.extra_json, i.island "
                                  "FROM evaluation e JOIN individual i ON i.id = e.individual_id ORDER BY e.seq")
        return [{"id": row[0], "status": row[1], "val_accuracy": row[2], "train": json.loads(row[3])["train"],
                 "extra": json.loads(row[4]), "island": row[5]} for row in rows]


def _full_curve_stop(curve: list[float], comparison: list[float] | None, margin: float, min_epochs: int) -> int | None:
    return next((epoch for epoch in range(1, len(curve)) if should_stop(curve[:epoch], comparison, margin,
                                                                      min_epochs)), None)


@pytest.mark.slow
@pytest.mark.parametrize(("strategy", "rule", "replacement"), [("island-ga", "below-worst", "worst-if-better"),
                                                                ("regularized-evolution", "median", "aging")])
def test_a_stop_rule_run_stops_hopeless_children_with_the_curve_it_sent_and_never_ranks_them_best(
        tmp_path, strategy, rule, replacement):
    db = tmp_path / "nas.db"
    _run(db, "--set", f"run.strategy={strategy}", "--set", f"ga.replacement={replacement}", "--set",
         f"train.stop_rule={rule}", "--set", "train.stop_margin=0.01", "--set", "train.stop_min_epochs=2")
    rows = _evaluations(db)
    assert {row["status"] for row in rows} == {"done"}
    stopped = [row for row in rows if "stopped_at_epoch" in row["extra"]]
    sent = [row for row in rows if "stop_curve" in row["train"]]
    assert 0 < len(stopped) < len(sent) < len(rows)  # the first children have nothing to compare with
    curves_so_far: list[list[float]] = []
    for row in rows:  # in completion order
        comparison = row["train"].get("stop_curve")
        curve = row["extra"]["curve"]
        if comparison is not None:
            # What was sent is a curve the driver had seen finish: the worst member's, or the median.
            assert comparison in curves_so_far if rule == "below-worst" else len(comparison) >= 1
        at = row["extra"].get("stopped_at_epoch")
        if at is not None:  # the worker's decision, recorded: below the comparison by more than the margin
            assert at == len(curve) >= 2 and curve[-1] < comparison[at - 1] - 0.01
            assert row["val_accuracy"] == curve[-1]
        elif comparison is not None:  # and no earlier epoch of a child trained to the end was
            assert _full_curve_stop(curve, comparison, 0.01, 2) is None
        curves_so_far.append(curve)
    # Never the run's best: not in the report's ranking, the driver's final snapshot, or its progress.
    store = open_store(f"sqlite:///{db}")
    try:
        run = store.list_runs()[0]
        final = [event.payload for event in store.events(run.id) if event.kind == "final"][-1]
    finally:
        store.close()
    best = final["best"]
    assert best is not None and "stopped_at_epoch" not in best["metrics"]
    report = subprocess.run([sys.executable, "-m", "nascli", "report", "--db", f"sqlite:///{db}", "--format", "json"],
                            capture_output=True, text=True, timeout=120, check=True)
    assert '"best_val_accuracy"' in report.stdout
    best_val = max(row["val_accuracy"] for row in rows if "stopped_at_epoch" not in row["extra"])
    assert json.loads(report.stdout)["runs"][0]["best_val_accuracy"] == best_val


def test_a_stopped_child_is_never_the_reports_best_even_with_the_highest_accuracy(tmp_path):
    from worker_harness import synthetic_tasks

    from nascli.metrics import Ranking
    from nascli.store import EvaluationRequest, NewIndividual
    from nascli.store.reports import ReportQueries
    from nascli.task import Result

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    store = open_store(url, create=True)
    try:
        run_id = store.create_run("stop-rule", "island-ga", None, 0, {}).id
        tasks = synthetic_tasks(2)
        ids = store.add_individuals(run_id, [NewIndividual(0, 0, slot, task.genome, f"h{slot}", (), "init")
                                             for slot, task in enumerate(tasks)])
        store.enqueue(run_id, [EvaluationRequest(individual, task) for individual, task in zip(ids, tasks)])
        for accuracy, extra in ((0.99, {"curve": [0.99], "stopped_at_epoch": 1}), (0.6, {"curve": [0.5, 0.6]})):
            claim = store.claim("w", run_id=run_id, lease_seconds=30)
            assert store.complete(claim.evaluation_id, claim.attempt,
                                  Result("done", val_accuracy=accuracy, params=10, extra=extra))
        queries = ReportQueries(store)
        assert queries.best_per_run({run_id: Ranking()})[run_id]["val_accuracy"] == 0.6
        assert [row["val_accuracy"] for row in queries.ranked(run_id, Ranking(), 5)] == [0.6]
    finally:
        store.close()
