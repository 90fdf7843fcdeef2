"""The README's promise for every user error, met as a user meets it (real `nas` processes): one line on
stderr, exit 2, no traceback, and nothing written -- not the working directory, not the database.
Covers configuration errors, `nas resume`, `nas worker` and `nas run` at run time; `nas report --watch`
is read-only too."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
from pathlib import Path

import pytest
from test_report_builder import build_run, sqlite_url

from nascli.store import open_store
from tests.helpers import (
    assert_bad_input,
    clean_env,
    database_state,
    default_sigint,
    nas_command,
    run_nas,
    wait_for,
)


@pytest.fixture
def finished_run(tmp_path: Path) -> tuple[str, str]:
    """A SQLite database in the working directory holding one finished run: (url, run id)."""
    url = sqlite_url(tmp_path)
    with open_store(url) as store:
        return url, build_run(store, islands=1, population=2, generations=1).run_id


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize("toml, args, fragments", [
    ("[ga]\nislands = 0\n", [], ["nascli.toml", "ga.islands"]),
    ("[nope]\nkey = 1\n", [], ["nascli.toml", "nope"]),
    ("[ga\nislands = 2\n", [], ["nascli.toml"]),
    ("", ["--set", "ga.population=-3"], ["ga.population"]),
    ("", ["--set", "no.such_key=1"], ["no.such_key"]),
    ("", ["--config", "missing.toml"], ["missing.toml"]),
])
def test_config_errors_write_nothing(tmp_path: Path, toml: str, args: list[str], fragments: list[str]) -> None:
    if toml:
        (tmp_path / "nascli.toml").write_text(toml)
    assert_bad_input(lambda: run_nas("run", "--preset", "synthetic-quick", *args), *fragments)


@pytest.mark.slow
def test_unsupported_database_url_writes_nothing(tmp_path: Path) -> None:
    env = clean_env(NAS_DB_URL="mysql://nas@localhost/nas")
    assert_bad_input(lambda: run_nas("run", "--preset", "synthetic-quick", env=env), "mysql")
    assert_bad_input(lambda: run_nas("run", "--preset", "synthetic-quick", "--db", f"sqlite:///{tmp_path}/no/dir.db"),
                     "no directory")


# ---------------------------------------------------------------- nas resume


@pytest.mark.slow  # each `nas resume` / `nas worker` / `nas run` process imports torch: ~3 s
def test_resume_a_finished_run_is_refused(finished_run) -> None:
    url, run_id = finished_run
    assert_bad_input(lambda: run_nas("resume", run_id, "--db", url), f"run {run_id} has already finished",
                     f"nas report {run_id}")
    assert_bad_input(lambda: run_nas("resume", "latest", "--db", url), "already finished")


@pytest.mark.slow  # each `nas resume` / `nas worker` / `nas run` process imports torch: ~3 s
def test_resume_with_nothing_to_resume_says_how_to_start(tmp_path: Path, finished_run) -> None:
    url, _ = finished_run
    assert_bad_input(lambda: run_nas("resume", "--db", url), "no unfinished run to resume", "nas run --preset")
    assert_bad_input(lambda: run_nas("resume", "r-nope00", "--db", url), "r-nope00")
    assert_bad_input(lambda: run_nas("resume", "--db", f"sqlite:///{tmp_path / 'typo.db'}"), "typo.db", "nas init")


# ---------------------------------------------------------------- nas worker and nas run at run time


@pytest.mark.slow  # each `nas resume` / `nas worker` / `nas run` process imports torch: ~3 s
def test_worker_errors_are_one_line(tmp_path: Path, finished_run) -> None:
    url, _ = finished_run
    assert_bad_input(lambda: run_nas("worker", "--db", url, "--run", "r-nope00"), "r-nope00")
    assert_bad_input(lambda: run_nas("worker", "--db", f"sqlite:///{tmp_path / 'typo.db'}"), "typo.db")
    assert_bad_input(lambda: run_nas("worker", "--db", url, "--device", "tpu:7"), "tpu:7")


@pytest.mark.slow  # each `nas resume` / `nas worker` / `nas run` process imports torch: ~3 s
def test_run_time_errors_are_one_line(tmp_path: Path) -> None:
    """Checks `nas run` makes after the configuration is valid: the dataset, the seed genome, the store."""
    offline = clean_env(NASCLI_OFFLINE="1")
    assert_bad_input(lambda: run_nas("run", "--preset", "mnist-island5", "--set", f'task.data_dir="{tmp_path}/data"',
                                     env=offline), "dataset 'mnist' is not in")
    assert_bad_input(lambda: run_nas("run", "--preset", "digits-quick", "--set", 'ga.seed_genome="In_8_8:D_7"'),
                     "has 10 classes")
    (tmp_path / "notes.db").write_text("my notes, not a database\n")
    assert_bad_input(lambda: run_nas("run", "--preset", "synthetic-quick", "--db", "sqlite:///notes.db"),
                     "not a SQLite database")


# ---------------------------------------------------------------- read-only --watch


def test_report_watch_is_read_only(tmp_path: Path) -> None:
    """`--watch` in a real terminal (a pseudo-terminal), stopped with Ctrl-C after a few redraws."""
    url = sqlite_url(tmp_path)
    with open_store(url) as store:
        run_id = build_run(store, islands=2, population=2, generations=2, status="running").run_id
    before = database_state(url)
    controller, terminal = pty.openpty()
    watcher = subprocess.Popen(nas_command("report", run_id, "--db", url, "--watch", "--interval", "0.2",
                                           "-S", "summary,islands"), stdin=terminal, stdout=terminal, stderr=terminal,
                               env=clean_env(COLUMNS="200", TERM="xterm"),
                               preexec_fn=default_sigint)  # as a shell starts a foreground command
    os.close(terminal)
    shown = bytearray()

    def redraws() -> int:
        while select.select([controller], [], [], 0)[0]:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown.extend(chunk)
        return shown.count(run_id.encode()) >= 3 or watcher.poll() is not None

    try:
        wait_for(redraws, 60, "three redraws of the watched report", step=0.1)
        assert watcher.poll() is None, shown.decode(errors="replace")
        watcher.send_signal(signal.SIGINT)  # Ctrl-C: how a user stops --watch
        # A terminal keeps reading while the program ends (a full pty would block its last redraw).
        wait_for(lambda: redraws() is not None and watcher.poll() is not None, 30, "exit after Ctrl-C", step=0.1)
        assert watcher.returncode == 130, shown.decode(errors="replace")
    finally:
        if watcher.poll() is None:
            watcher.kill()
        os.close(controller)
    assert b"Traceback" not in shown
    assert database_state(url) == before
