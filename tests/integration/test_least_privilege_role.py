"""docs/operators-guide.md's least-privilege role, for real: the GRANTs exactly as the guide prints
them, on a fresh PostgreSQL database, then a run with the weights repository (rows inserted and
evicted), `nas init`'s check, `nas resume` of a finished run and `nas report` as that role; CREATE
TABLE is refused. And a role missing one of those GRANTs ends the run with one line naming it."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, database, run_nas

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operators-guide.md"
RUN = ("run", "--preset", "synthetic-quick", "--seed", "3", "--workers", "2", "--set", "ga.generations=8",
       "--set", 'train.transfer="parent"', "--set", "train.repository_top_k=1")


def guide_statements(database_name: str, role: str, password: str) -> list[str]:
    """The guide's SQL block that creates the application role, for this database and role name."""
    (block,) = [sql for sql in re.findall(r"```sql\n(.*?)```", GUIDE.read_text(), flags=re.S)
                if "CREATE ROLE nascli_app" in sql]
    statements = [line.strip().rstrip(";") for line in block.splitlines() if line.strip()]
    return [re.sub(r"\bnascli_app\b", role, re.sub(r"\bDATABASE nascli\b", f'DATABASE "{database_name}"', s))
            .replace("PASSWORD '...'", f"PASSWORD '{password}'") for s in statements]


def execute(url: str, *statements: str) -> None:
    import psycopg

    from tests.integration.worker_harness import libpq_dsn

    with psycopg.connect(libpq_dsn(url), autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)


@contextmanager
def application_role(tmp_path: Path, edit: Callable[[str], str] = lambda statement: statement
                     ) -> Iterator[tuple[str, str]]:
    """(owner URL, application role URL) of a fresh database that the owner initialised and whose
    role got the guide's statements, each passed through `edit`."""
    from sqlalchemy.engine import make_url

    with database("postgresql", tmp_path) as owner_url:
        owner = make_url(owner_url)
        role, password = f"nascli_app_{secrets.token_hex(4)}", secrets.token_hex(12)
        assert run_nas("init", "--db", owner_url).returncode == 0  # the owner creates the schema
        execute(owner_url, *map(edit, guide_statements(owner.database, role, password)))
        try:
            yield owner_url, owner.set(username=role, password=password).render_as_string(hide_password=False)
        finally:
            execute(owner_url, f'DROP OWNED BY "{role}"', f'DROP ROLE "{role}"')


def evaluations(url: str) -> list:
    from nascli.store import open_store

    store = open_store(url)
    try:
        (run,) = store.list_runs()
        return [run, store.repository_size(run.id).models, store.evaluations(run.id)]
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_the_guides_application_role_runs_resumes_and_reports(tmp_path: Path) -> None:
    with application_role(tmp_path) as (owner_url, app_url):
        run = run_nas(*RUN, "--db", app_url, timeout=300)
        assert run.returncode == 0, run.stderr
        info, stored, rows = evaluations(owner_url)
        trained = [e for e in rows if e.result and e.result.extra.get("weights_bytes")]
        assert 0 < stored < len(trained), (stored, len(trained))  # weights INSERTed, the dead ones' DELETEd
        for command in (("report", info.id), ("report", info.id, "--section", "transfers")):
            result = run_nas(*command, "--db", app_url)
            assert result.returncode == 0 and "Traceback" not in result.stderr, (command, result.stderr)
        assert_one_line_error(run_nas("resume", info.id, "--db", app_url), "finished")
        (tmp_path / "app").mkdir()
        check = run_nas("init", "--db", app_url, cwd=tmp_path / "app")  # the schema exists: init checks it
        assert check.returncode == 0, check.stderr
        with pytest.raises(Exception, match="permission denied"):
            execute(app_url, "CREATE TABLE intruder (id integer)")


@pytest.mark.postgres
@pytest.mark.slow
def test_a_role_missing_a_grant_ends_the_run_with_one_line_that_names_it(tmp_path: Path) -> None:
    def without_delete_on_weights(statement: str) -> str:
        return statement.replace("SELECT, INSERT, DELETE ON weights", "SELECT, INSERT ON weights")

    with application_role(tmp_path, without_delete_on_weights) as (owner_url, app_url):
        # The worker cannot write a result (its transaction replaces the weights): it gives the task
        # back and ends; so does every other; the run ends with what they said.
        run = run_nas(*RUN, "--db", app_url, timeout=300)
        assert_one_line_error(run, "permission denied for table weights", "docs/operators-guide.md",
                              "nas resume")
        _, _, rows = evaluations(owner_url)
        assert not [e for e in rows if e.status == "running"]  # given back, not left to a lease
