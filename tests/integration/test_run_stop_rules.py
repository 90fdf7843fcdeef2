"""Run-level stopping rules (`run.max_evaluations`, `run.max_hours`, `run.target`) end to end: real
`nas run` / `nas resume` drivers with local workers on SQLite, the synthetic evaluator, and what
`nas report --format json` and the database say afterwards."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.helpers import clean_env, default_sigint, nas_command, run_nas, wait_for

pytestmark = pytest.mark.slow  # each test drives whole runs (a few seconds each on an idle machine)
SYNTHETIC = ["--preset", "synthetic-quick", "--seed", "3", "--workers", "1"]


def _report(db: Path) -> dict:
    result = run_nas("report", "latest", "--format", "json", "--db", f"sqlite:///{db}")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["summary"]


def _finished_children(db: Path) -> int:
    """Finished evaluations of the strategy's children (a migrant's copy is not one); 0 before the
    schema exists."""
    try:
        with sqlite3.connect(db) as connection:
            return connection.execute(
                "SELECT count(*) FROM evaluation e JOIN individual i ON i.id = e.individual_id "
                "WHERE e.status IN ('done', 'failed') AND i.operator != 'migration'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _events(db: Path, kind: str) -> list[dict]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT payload_json FROM event WHERE kind = ? ORDER BY seq", (kind,))
        return [json.loads(row[0]) for row in rows]


def _start(db: Path, *settings: str) -> subprocess.Popen:
    return subprocess.Popen(nas_command("run", *SYNTHETIC, "--db", f"sqlite:///{db}", *settings), env=clean_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)  # as a shell starts a foreground command: Ctrl-C reaches it


def test_max_evaluations_stops_the_run_at_exactly_that_many_and_says_why(tmp_path):
    db = tmp_path / "nas.db"
    result = run_nas("run", *SYNTHETIC, "--db", f"sqlite:///{db}", "--set", "task.synthetic_seconds=0",
                     "--set", "run.max_evaluations=15")
    assert result.returncode == 0, result.stderr
    assert "stopped by run.max_evaluations" in result.stdout
    summary = _report(db)
    assert summary["status"] == "finished"
    assert summary["stop_reason"] == "run.max_evaluations: 15 evaluations finished, the limit is 15"
    assert _finished_children(db) == 15  # 2 islands x (6 + 20): the generations alone would run 52


def test_target_stops_once_a_result_reaches_it(tmp_path):
    db = tmp_path / "nas.db"
    result = run_nas("run", *SYNTHETIC, "--db", f"sqlite:///{db}", "--set", "task.synthetic_seconds=0",
                     "--set", "run.target=0.8")
    assert result.returncode == 0, result.stderr
    summary = _report(db)
    assert summary["stop_reason"].startswith("run.target: best primary metric")
    assert summary["best_val_accuracy"] >= 0.8
    assert _finished_children(db) < 52


def test_a_run_without_limits_ends_by_its_generations(tmp_path):
    db = tmp_path / "nas.db"
    result = run_nas("run", *SYNTHETIC, "--db", f"sqlite:///{db}", "--set", "task.synthetic_seconds=0",
                     "--set", "ga.generations=2")
    assert result.returncode == 0, result.stderr
    assert _report(db)["stop_reason"] == "generations: the strategy's budget is spent"
    assert _events(db, "stopped") == []


def test_a_resumed_run_counts_the_stored_evaluations(tmp_path):
    """Killed half-way, the resumed driver counts the evaluations already in the database: the run
    ends at max_evaluations in total, not that many more."""
    db = tmp_path / "nas.db"
    driver = _start(db, "--set", "task.synthetic_seconds=0.15", "--set", "run.max_evaluations=20")
    try:
        wait_for(lambda: db.exists() and _finished_children(db) >= 8, timeout=120, what="8 finished evaluations")
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert 8 <= _finished_children(db) < 20
    result = run_nas("resume", "--workers", "1", "--force", "--db", f"sqlite:///{db}", timeout=180)
    assert result.returncode == 0, result.stderr
    assert _finished_children(db) == 20
    assert _report(db)["stop_reason"] == "run.max_evaluations: 20 evaluations finished, the limit is 20"


def test_max_hours_counts_driving_time_across_an_interrupt_and_resume(tmp_path):
    """The clock is the time drivers drove the run: stored when interrupted (Ctrl-C), continued by
    the resumed driver, never restarted from zero; the run ends by max_hours."""
    db = tmp_path / "nas.db"
    # 54 s of driving: more than a loaded machine needs to start the driver and finish 2 evaluations
    # (the run must still be going when it is interrupted); the budget, 2 x (6 + 2000) evaluations of
    # 0.2 s (some of them cache hits), takes far longer
    limit_hours, generations = 0.015, 2000
    settings = ["--set", "task.synthetic_seconds=0.2", "--set", f"ga.generations={generations}", "--set",
                f"run.max_hours={limit_hours}"]
    driver = _start(db, *settings)
    wait_for(lambda: db.exists() and _finished_children(db) >= 2, timeout=120, what="2 finished evaluations")
    driver.send_signal(signal.SIGINT)
    assert driver.wait(timeout=60) != 0
    first = _events(db, "clock")
    assert first, "the interrupted driver stored its clock"
    stored = first[-1]["seconds"]
    assert 0 < stored < limit_hours * 3600
    result = run_nas("resume", "--workers", "1", "--db", f"sqlite:///{db}", timeout=180)
    assert result.returncode == 0, result.stderr
    totals = [event["seconds"] for event in _events(db, "clock")]
    assert totals == sorted(totals)  # the resumed driver went on from the stored total
    assert totals[-1] >= limit_hours * 3600
    summary = _report(db)
    assert summary["stop_reason"].startswith("run.max_hours: driven")
    assert _finished_children(db) < 2 * (6 + generations)
