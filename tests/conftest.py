"""Shared fixtures: every test starts in an empty temporary working directory with a clean
environment; `store_url` / `store` run a test against SQLite and against PostgreSQL.

PostgreSQL comes from NASCLI_TEST_PG_URL (CI exports it); without it those cases are skipped,
unless NASCLI_REQUIRE_PG=1, where they fail. Each PostgreSQL test gets a fresh schema of its own
(search_path in the URL), dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.helpers import NASCLI_ENV

PG_URL_ENV = "NASCLI_TEST_PG_URL"
REQUIRE_PG_ENV = "NASCLI_REQUIRE_PG"


@pytest.fixture(scope="session", autouse=True)
def isolated_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Module- and session-scoped fixtures run here: an empty directory, no NAS_DB_URL & co. Python
    writes bytecode caches as it does for a user, whatever PYTHONDONTWRITEBYTECODE says where pytest
    started (with it set, a stray `__pycache__` in an export directory went unseen)."""
    import sys

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("session-cwd"))
        for name in NASCLI_ENV:
            patch.delenv(name, raising=False)
        patch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
        patch.setattr(sys, "dont_write_bytecode", False)
        yield


@pytest.fixture(scope="session", autouse=True)
def cli_built_once() -> Iterator[None]:
    """typer's CliRunner turns `app` into a click command again on every invoke (~25 ms of signature
    and type-hint evaluation each); `nas` does it once per process, so the suite builds it once per app
    (the CLI tests use ~25 % less CPU). The patched name is typer.testing's import of get_command; a
    typer without it only makes the suite slower."""
    import functools

    import typer.main
    import typer.testing

    with pytest.MonkeyPatch.context() as patch:
        if hasattr(typer.testing, "_get_command"):
            patch.setattr(typer.testing, "_get_command", functools.cache(typer.main.get_command))
        yield


@pytest.fixture(autouse=True)
def isolated_cwd_and_env(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test, and every `nas` process it starts, runs in its own empty tmp_path with the caller's
    nascli variables removed: a nascli.toml or NAS_DB_URL where pytest started changes nothing."""
    monkeypatch.chdir(tmp_path)
    for name in NASCLI_ENV:
        monkeypatch.delenv(name, raising=False)


# Fixtures that need a PostgreSQL server: a test using one must be marked `postgres`, so that
# `-m "not postgres"` really leaves PostgreSQL out (checked at collection).
POSTGRES_FIXTURES = {"pg_schema_url", "postgres_database", "private_pg_cluster", "private_cluster", "pg_store",
                     "netns_cluster"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [item.nodeid for item in items
                if POSTGRES_FIXTURES & set(getattr(item, "fixturenames",
                                                   ())) and not item.get_closest_marker("postgres")]
    if unmarked:
        raise pytest.UsageError(f"PostgreSQL tests without @pytest.mark.postgres: {unmarked}")


def pg_admin_url() -> str:
    """The PostgreSQL test server's URL, or skip (fail when NASCLI_REQUIRE_PG=1)."""
    url = os.environ.get(PG_URL_ENV)
    if not url:
        if os.environ.get(REQUIRE_PG_ENV) == "1":
            pytest.fail(f"{REQUIRE_PG_ENV}=1 but {PG_URL_ENV} is not set")
        pytest.skip(f"PostgreSQL tests need {PG_URL_ENV}")
    return url


def _admin_execute(url: str, *statements: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, empty schema (dropped after the test)."""
    admin = pg_admin_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        _admin_execute(admin, f"CREATE SCHEMA {schema}")
    except Exception as error:  # the server is configured but not answering: that is a failure
        pytest.fail(f"cannot create a test schema on {PG_URL_ENV}: {error}")
    try:
        yield with_search_path(admin, schema)
    finally:
        _admin_execute(admin, f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A URL of an empty database: a SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nas.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def store(store_url: str):
    """An initialised Store on each backend."""
    from nascli.store import open_store

    opened = open_store(store_url, create=True, retry_seconds=5)
    yield opened
    opened.close()
