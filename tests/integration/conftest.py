"""Integration fixtures: a private, throwaway PostgreSQL cluster for tests that must restart the
server or need password authentication (the shared dev server trusts every local connection and
must never be restarted)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import pg_admin_url
from tests.helpers import free_port

PG_BIN = Path(os.environ.get("NASCLI_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
RIGHT_PASSWORD = "right-horse-battery"


def _as_postgres(command: str, timeout: float = 120) -> None:
    """Server binaries refuse to run as root: run them as the postgres user."""
    subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", command], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=timeout)


@dataclass
class PrivateCluster:
    port: int
    data: Path
    directory: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres:{RIGHT_PASSWORD}@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, action: str, *options: str) -> None:
        _as_postgres(f"{PG_BIN / 'pg_ctl'} -D {self.data} -l {self.directory / 'log'} {' '.join(options)} {action}")

    def restart(self) -> None:
        self.pg_ctl("restart", "-w", "-m", "fast")


@pytest.fixture(scope="module")
def private_pg_cluster() -> Iterator[PrivateCluster]:
    """A PostgreSQL cluster of this test module's own: 127.0.0.1 on a free port, scram passwords
    (user postgres, RIGHT_PASSWORD), removed afterwards. Skips/fails like every PostgreSQL test."""
    pg_admin_url()
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL binaries not found in {PG_BIN} (set NASCLI_TEST_PG_BIN)")
    directory = Path(tempfile.mkdtemp(prefix="nascli-pg-"))
    password_file = directory / "pw"
    password_file.write_text(RIGHT_PASSWORD + "\n")
    shutil.chown(directory, "postgres")
    shutil.chown(password_file, "postgres")
    cluster = PrivateCluster(port=free_port(), data=directory / "data", directory=directory)
    try:
        _as_postgres(f"{PG_BIN / 'initdb'} -D {cluster.data} -U postgres --no-sync --auth-host=scram-sha-256 "
                     f"--auth-local=trust --pwfile={password_file}")
        cluster.pg_ctl("start", "-w", "-o",
                       f"\"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {directory} -c fsync=off\"")
        yield cluster
    finally:
        subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c",
                        f"{PG_BIN / 'pg_ctl'} -D {cluster.data} -m immediate stop"], capture_output=True, timeout=60)
        shutil.rmtree(directory, ignore_errors=True)
