"""A database password never leaves: a real PostgreSQL role with a password holding `/`, `@` and `%`
(once in the URL's user part, once as `?password=`) drives every command — init, run --show-config,
run with a local worker, an interrupted run, nas worker, resume, report in every format with plots,
export (artefacts and --all), errors with --debug — and then every byte printed, logged, written or
stored (every table dumped) is searched for the password: zero hits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import _admin_execute, pg_admin_url

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PASSWORD = f"pw/{uuid.uuid4().hex[:6]}@x%y"
SMALL = ("--set", "ga.generations=2", "--set", "ga.population=4", "--set", "task.synthetic_seconds=0.01")


def forms_of(password: str) -> list[str]:
    """The password as it could appear: raw, percent-encoded (both ways), and its distinctive core."""
    return sorted({password, quote(password, safe=""), quote(password), password.split("/")[1].split("@")[0]})


@pytest.fixture
def password_role():
    admin = pg_admin_url()
    suffix = uuid.uuid4().hex[:10]
    role, schema = f"leak_{suffix}", f"leak_{suffix}"
    _admin_execute(admin, f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD.replace('%', '%%')}'",
                   f"CREATE SCHEMA {schema} AUTHORIZATION {role}")
    from sqlalchemy.engine import make_url

    base = make_url(admin.replace("postgresql://", "postgresql+psycopg://", 1))
    host = f"{base.host}:{base.port or 5432}/{base.database}"
    options = f"options=-csearch_path%3D{schema}"
    in_user_part = f"postgresql+psycopg://{role}:{quote(PASSWORD, safe='')}@{host}?{options}"
    in_query = f"postgresql+psycopg://{role}@{host}?{options}&password={quote(PASSWORD, safe='')}"
    try:
        yield admin, schema, in_user_part, in_query
    finally:
        _admin_execute(admin, f"DROP SCHEMA IF EXISTS {schema} CASCADE", f"DROP ROLE IF EXISTS {role}")


def nas(cwd: Path, env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nascli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def run_named(cwd: Path, env: dict, name: str) -> dict | None:
    import json

    listed = nas(cwd, env, "report", "--format", "json")
    if listed.returncode != 0:
        return None
    return next((run for run in json.loads(listed.stdout)["runs"] if run["name"] == name), None)


def dump_tables(admin: str, schema: str) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(admin.replace("postgresql://", "postgresql+psycopg://", 1))
    chunks = []
    try:
        with engine.connect() as connection:
            tables = [row[0] for row in connection.exec_driver_sql(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %(s)s", {"s": schema})]
            assert len(tables) >= 8, tables
            for table in tables:
                for row in connection.exec_driver_sql(f'SELECT * FROM "{schema}"."{table}"'):
                    chunks.append(repr(tuple(row)))
    finally:
        engine.dispose()
    return "\n".join(chunks)


@pytest.mark.parametrize("where", ["user_part", "query"])
def test_the_password_appears_nowhere(password_role, tmp_path, where):
    admin, schema, in_user_part, in_query = password_role
    url = in_user_part if where == "user_part" else in_query
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("NAS_")}
    env.update(XDG_CACHE_HOME=str(cache), COLUMNS="200", PYTHONUNBUFFERED="1", NASCLI_DRIVER_LEASE_SECONDS="3")
    env_with_url = {**env, "NAS_DB_URL": url}
    outputs: list[str] = []

    def record(result: subprocess.CompletedProcess, *ok: int) -> subprocess.CompletedProcess:
        outputs.extend([result.stdout, result.stderr])
        assert result.returncode in ok, (result.args, result.stdout, result.stderr)
        return result

    record(nas(work, env, "init", "--db", url), 0)
    record(nas(work, env, "run", "-p", "synthetic-quick", "--db", url, "--show-config"), 0)
    record(nas(work, env_with_url, "run", "-p", "synthetic-quick", "--show-config", "--format", "json"), 0)
    record(nas(work, env_with_url, "run", "-p", "synthetic-quick", "--workers", "1", "--name", "finished", *SMALL,
               timeout=240), 0)

    # an interrupted run (another seed: nothing to reuse from the first), the driver dies with work
    # queued; a worker and a resume finish it
    driver = subprocess.Popen([sys.executable, "-m", "nascli", "run", "-p", "synthetic-quick", "--workers", "0",
                               "--name", "interrupted", "--seed", "7", *SMALL], cwd=work, env=env_with_url,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    run = None
    while time.monotonic() < deadline and not (run and run["evaluations_pending"]):
        time.sleep(1)
        run = run_named(work, env_with_url, "interrupted")
    driver.send_signal(signal.SIGKILL)
    out, err = driver.communicate(timeout=30)
    outputs += [out, err]
    assert run is not None and run["status"] != "finished", run
    interrupted = run["run_id"]
    record(nas(work, env_with_url, "worker", "--run", interrupted, "--max-tasks", "2", "--idle-timeout", "5"), 0)
    time.sleep(3)  # the dead driver's lease expires
    record(nas(work, env_with_url, "resume", interrupted, "--force", "--workers", "1", timeout=240), 0)
    record(nas(work, env_with_url, "resume", interrupted, "--debug"), 2)  # finished: an error, with traceback

    for output_format in ("table", "json", "csv", "markdown"):
        record(nas(work, env_with_url, "report", interrupted, "--format", output_format), 0)
    record(nas(work, env_with_url, "report"), 0)
    record(nas(work, env_with_url, "report", interrupted, "--plot", "plots"), 0)
    record(nas(work, env_with_url, "report", "--compare", interrupted, "latest", "--plot", "compare"), 0)
    record(nas(work, env_with_url, "export", interrupted, "--out", "best", "--format", "code,json"), 0)
    record(nas(work, env_with_url, "export", interrupted, "--all", "--format", "json", "--out", "all.json"), 0)
    record(nas(work, env_with_url, "export", interrupted, "--all", "--format", "csv", "--out", "all.csv"), 0)
    record(nas(work, env_with_url, "report", "no-such-run", "--debug"), 2)
    record(nas(work, env, "report", "--db", url.replace("postgresql+psycopg", "postgresql+asyncpg"), "--debug"), 2)
    record(nas(work, env, "report", "--db", url.replace(schema, "no_such_schema"), "--debug"), 2)
    wrong = url.replace("leak_", "nobody_", 1)
    record(nas(work, env, "report", "--db", wrong, "--debug"), 2)
    record(nas(work, env, "init", "--db", "not a url?password=" + quote(PASSWORD, safe=""), "--debug"), 2)

    written = [path for root in (work, cache) for path in root.rglob("*") if path.is_file()]
    assert any(path.suffix == ".log" for path in written), "the local workers wrote no log"
    assert (work / "nascli.toml").exists() and (work / "best" / "metrics.json").exists()
    haystacks = {f"output {index}": text for index, text in enumerate(outputs)}
    haystacks.update({str(path): path.read_bytes().decode("latin-1") for path in written})
    haystacks["database"] = dump_tables(admin, schema)
    hits = [(name, form) for name, text in haystacks.items() for form in forms_of(PASSWORD) if form in text]
    assert hits == [], [(name, haystacks[name][:3000]) for name, _ in hits[:2]]
