"""The suite's shared helpers, one home each: the bad-input check, the clean environment every `nas`
process starts in, the database of either backend, a free port and waiting for a condition.

tests/conftest.py makes every test start in an empty temporary working directory with the caller's
nascli variables removed (see `isolated_cwd_and_env`), so a `nascli.toml` or `NAS_DB_URL` where
pytest is started cannot change an outcome; subprocesses inherit both.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# What a user's shell may set that changes what `nas` does; tests that need one set it themselves.
NASCLI_ENV = ("NAS_DB_URL", "NAS_DEBUG", "NASCLI_DRIVER_LEASE_SECONDS", "NASCLI_LISTEN")

# A database of each backend; the PostgreSQL case is marked so `-m "not postgres"` leaves it out.
BACKENDS = [pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)]


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without the variables in NASCLI_ENV, plus `extra`: the environment of a `nas` process."""
    env = {name: value for name, value in os.environ.items() if name not in NASCLI_ENV}
    env.update(extra)
    return env


def nas_command(*args: object) -> list[str]:
    """argv of a real `nas` process from this venv."""
    return [sys.executable, "-m", "nascli", *map(str, args)]


def run_nas(*args: object, env: Mapping[str, str] | None = None, timeout: float = 120,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `nas ARGS` to completion in the test's working directory (or `cwd`), with a clean environment."""
    return subprocess.run(nas_command(*args), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env=dict(env) if env is not None else clean_env(), cwd=cwd)


def default_sigint() -> None:
    # In the child before exec: a test runner started in the background may ignore SIGINT, and a
    # process that starts with SIGINT ignored keeps ignoring it (as a shell's background job should).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (nothing will answer a connection to it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread for the test (as a worker trains), then as it was. Autouse where imported."""
    import torch  # helpers stay importable without torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    """predicate()'s first truthy value within `timeout` seconds, else AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@contextmanager
def database(backend: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: a SQLite file in tmp_path, or a fresh PostgreSQL database (dropped after)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'nas.db'}"
        return
    from tests.integration.worker_harness import fresh_pg_database, need_pg

    with fresh_pg_database(need_pg()) as url:
        yield url


# ---------------------------------------------------------------- the bad-input promise


def _exit_code_and_stderr(result: Any) -> tuple[int, str]:
    if isinstance(result, subprocess.CompletedProcess):
        stderr = result.stderr.decode(errors="replace") if isinstance(result.stderr, bytes) else result.stderr
        return result.returncode, stderr or ""
    return result.exit_code, result.stderr  # click.testing.Result


def assert_one_line_error(result: Any, *fragments: str, exit_code: int = 2) -> str:
    """A user error as the README promises it: exit 2, exactly one line on stderr starting 'error: ',
    no traceback; every fragment appears in that line. Returns the line. `exit_code` is for the
    other one-line endings (1: the run itself failed).

    `result` is a CliRunner result or a finished subprocess.CompletedProcess."""
    code, stderr = _exit_code_and_stderr(result)
    assert code == exit_code, (code, stderr)
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n{stderr}"
    assert lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def tree_state(path: Path) -> dict[str, str]:
    """Every file and directory under `path` (relative name -> sha256, or 'dir'); {} when it is absent."""
    if not path.exists():
        return {}
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    state = {}
    for item in sorted(path.rglob("*")):
        name = str(item.relative_to(path))
        state[name] = "dir" if item.is_dir() else hashlib.sha256(item.read_bytes()).hexdigest()
    return state


def assert_bad_input(command: Callable[[], Any], *fragments: str, out: Path | None = None,
                     also_unchanged: tuple[Path, ...] = ()) -> str:
    """Run `command` (a callable returning a CliRunner result or CompletedProcess) and check the whole
    bad-input promise: one-line error with exit 2 and no traceback, and nothing half-written -- the
    working directory, `out` (the --out path) and every path in `also_unchanged` are as they were."""
    watched = [Path.cwd(), *([out] if out is not None else []), *also_unchanged]
    before = [tree_state(path) for path in watched]
    line = assert_one_line_error(command(), *fragments)
    after = [tree_state(path) for path in watched]
    for path, old, new in zip(watched, before, after, strict=True):
        assert new == old, f"bad input changed {path}: {sorted(set(new.items()) ^ set(old.items()))}"
    return line


# ---------------------------------------------------------------- read-only commands


def database_state(url: str) -> dict[str, Any]:
    """What a read-only command must leave alone: every table's row count and, for SQLite, the sha256 of
    the database file and of its write-ahead log (byte for byte; a write lands in the log first)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            tables = sa.inspect(connection).get_table_names()
            counts = {table: connection.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar_one()
                      for table in tables}
    finally:
        engine.dispose()
    state: dict[str, Any] = {"rows": counts}
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal"):
            file = path.with_name(path.name + suffix)
            state[f"sha256{suffix}"] = hashlib.sha256(file.read_bytes()).hexdigest() if file.exists() else None
    return state


class ManualClock:
    """Epoch seconds that move only when a test advances them: the database clock of a test store
    (`open_store(url, clock=...)`), so leases expire without sleeping."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
