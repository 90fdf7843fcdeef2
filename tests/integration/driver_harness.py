"""Helpers for the driver process tests: real `nas run` / `nas resume` processes on a long synthetic
run, their output lines, and the run's row as the database has it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from nascli.store import open_store
from tests.helpers import default_sigint

# Long enough never to finish during a test; quick evaluations so results keep arriving.
LONG_RUN = ["--preset", "synthetic-quick", "--set", "task.synthetic_seconds=0.05", "--set", "ga.generations=100000"]


def nas(*args: str) -> list[str]:
    return [sys.executable, "-m", "nascli", *args]


def environment(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    env.pop("NAS_DB_URL", None)
    return env


class Driver:
    """A `nas run`/`nas resume` process whose output is collected by a thread: stdout and stderr
    together in `lines`, or with `stderr_apart` stderr alone in `error_lines` (to count its lines)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, stderr_apart: bool = False) -> None:
        self.process = subprocess.Popen(nas(*args), env=env or environment(), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE if stderr_apart else subprocess.STDOUT, text=True,
                                        preexec_fn=default_sigint)
        self.lines: list[str] = []
        self.error_lines: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True)]
        if stderr_apart:
            self._readers.append(threading.Thread(target=self._read, args=(self.process.stderr, self.error_lines),
                                                  daemon=True))
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, marker: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if marker in line:
                    return line
            if self.process.poll() is not None:
                self._join()
                if any(marker in line for line in self.lines):
                    continue
                raise AssertionError(f"exited {self.process.returncode} without {marker!r}:\n{self.output}")
            time.sleep(0.02)
        raise AssertionError(f"no {marker!r} within {timeout} s:\n{self.output}")

    def wait(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout)
        self._join()
        return code

    def _join(self) -> None:
        for reader in self._readers:
            reader.join(5)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.wait()


def pause_outside_a_write(driver: Driver, url: str) -> None:
    """SIGSTOP the driver, but never while it writes to an SQLite database: a stopped writer keeps
    the host's writer lock (`<database>.lock`, nascli.store.engine.SQLiteWriterLock) and SQLite's own,
    and every other nascli process (this test's `nas resume` too) would wait for it. Pause, try the
    lock, and when it is held let the driver finish its write and pause it again."""
    import fcntl

    from nascli.store.engine import SQLiteWriterLock

    while True:
        driver.process.send_signal(signal.SIGSTOP)
        if not url.startswith("sqlite"):
            return
        descriptor = os.open(SQLiteWriterLock(url.removeprefix("sqlite:///")).path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            return
        except BlockingIOError:  # held: the driver was mid-write
            driver.process.send_signal(signal.SIGCONT)
            time.sleep(0.05)
        finally:
            os.close(descriptor)


def run_row(url: str, run_id: str):
    store = open_store(url)
    try:
        return store.get_run(run_id)
    finally:
        store.close()


def finished_evaluations(url: str, run_id: str) -> int:
    store = open_store(url)
    try:
        counts = store.queue_counts(run_id)
        return counts["done"] + counts["failed"]
    finally:
        store.close()


def start_long_run(url: str, *extra: str, env: dict[str, str] | None = None,
                   stderr_apart: bool = False) -> tuple[Driver, str]:
    """A driver of a run that will not finish, once it has folded a result; (driver, run id)."""
    driver = Driver("run", *LONG_RUN, "--workers", "1", "--db", url, *extra, env=env, stderr_apart=stderr_apart)
    run_id = driver.wait_for_line("started run").split()[-1]
    deadline = time.monotonic() + 90
    while finished_evaluations(url, run_id) < 1:
        assert time.monotonic() < deadline, f"no result within 90 s:\n{driver.output}"
        assert driver.process.poll() is None, driver.output
        time.sleep(0.1)
    return driver, run_id
