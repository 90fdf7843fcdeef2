"""`nas report` and `nas export` open the database read-only and never change it: an empty file
stays 0 bytes, a real database's bytes (and its directory) are the same afterwards, and the
database refuses a write from such a session (SQLite query_only, PostgreSQL READ ONLY transactions)."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa
from test_export_cli import nas, synthetic, synthetic_template, wide_terminal  # noqa: F401  (fixtures)

from nascli.store import open_store
from tests.helpers import assert_one_line_error as one_line_error


def snapshot(directory):
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(directory.iterdir())
            if path.is_file()}


def test_report_and_export_leave_an_empty_file_empty(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    url = f"sqlite:///{empty}"
    one_line_error(nas("report", "--db", url), "holds no nascli schema")
    one_line_error(nas("report", "latest", "--db", url, "--format", "json"), "holds no nascli schema")
    one_line_error(nas("export", "latest", "--db", url, "--out", tmp_path / "out", "-f", "code"), "no nascli schema")
    assert empty.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


def test_a_missing_database_is_one_line_and_stays_missing(tmp_path):
    one_line_error(nas("report", "--db", f"sqlite:///{tmp_path / 'nope.db'}"), "no database at")
    one_line_error(nas("export", "--db", f"sqlite:///{tmp_path / 'nope.db'}", "--out", tmp_path / "o"),
                   "no database at")
    assert list(tmp_path.iterdir()) == []


def test_report_and_export_change_no_byte_of_a_real_database(synthetic, tmp_path):  # noqa: F811
    url, built = synthetic
    database_dir = tmp_path / "db"
    database_dir.mkdir()
    (tmp_path / "nas.db").rename(database_dir / "nas.db")
    for name in ("nas.db-wal", "nas.db-shm"):
        if (tmp_path / name).exists():
            (tmp_path / name).rename(database_dir / name)
    url = f"sqlite:///{database_dir / 'nas.db'}"
    before = snapshot(database_dir)
    for args in (("report",), ("report", built.run_id, "--format", "json"), ("report", built.run_id, "--top", "3"),
                 ("export", built.run_id, "--out", tmp_path / "best", "--format", "code,json"),
                 ("export", built.run_id, "--all", "--format", "csv", "--out", tmp_path / "all.csv")):
        result = nas(*args, "--db", url)
        assert result.exit_code == 0, result.output
        assert snapshot(database_dir) == before, args


def test_a_read_only_store_refuses_writes(store_url):
    from nascli.errors import StoreError

    with open_store(store_url, create=True):
        pass
    with (open_store(store_url, read_only=True) as store,
          pytest.raises((StoreError, sa.exc.DBAPIError), match="(?i)read.?only"),
          store.engine.begin() as connection):
        connection.exec_driver_sql("UPDATE nascli_meta SET value = value")
