"""Engine plumbing: URL handling, network-filesystem refusal, transient-error retry."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from nascli.errors import StoreError
from nascli.store import network_filesystem_of, open_store
from nascli.store.engine import Transactions, create_engine, display_url, is_transient, parse_url

MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
server:/export /mnt/shared nfs4 rw,relatime 0 0
//nas/share /mnt/win cifs rw 0 0
me@box:/home /mnt/ssh fuse.sshfs rw 0 0
tmpfs /mnt/shared/local tmpfs rw 0 0
"""


def test_postgresql_urls_use_psycopg3_and_hide_passwords() -> None:
    url = parse_url("postgresql://nas:s3cret@db.example:5433/runs")
    assert url.drivername == "postgresql+psycopg"
    assert display_url(url) == "postgresql+psycopg://nas:***@db.example:5433/runs"
    assert parse_url("postgres://nas@db/runs").drivername == "postgresql+psycopg"
    with pytest.raises(StoreError, match="unsupported PostgreSQL driver"):
        parse_url("postgresql+psycopg2://nas@db/runs")


@pytest.mark.parametrize("path, expected", [
    ("/mnt/shared/runs", "nfs4"), ("/mnt/shared", "nfs4"), ("/mnt/win/x", "cifs"), ("/mnt/ssh/a/b", "fuse.sshfs"),
    ("/mnt/shared/local/x", None), ("/home/me", None), ("/mnt/sharedother", None),
])
def test_network_filesystem_detection(tmp_path: Path, path: str, expected: str | None) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(MOUNTS)
    assert network_filesystem_of(Path(path), mounts) == expected


def test_sqlite_on_a_network_filesystem_is_refused(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(f"server:/export {tmp_path} nfs rw 0 0\n")
    with pytest.raises(StoreError, match=r"network filesystem \(nfs\).*WAL"):
        create_engine(parse_url(f"sqlite:///{tmp_path / 'nas.db'}"), create=True, mounts_file=mounts)
    assert not (tmp_path / "nas.db").exists()


def test_sqlite_pragmas(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'nas.db'}", create=True)
    with store.engine.connect() as connection:
        pragmas = {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                   for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")}
    assert pragmas == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 30000, "foreign_keys": 1}
    store.close()


def locked() -> OperationalError:
    return OperationalError("UPDATE evaluation ...", {}, Exception("database is locked"))


def test_transient_classification() -> None:
    assert is_transient(locked(), "sqlite")
    assert not is_transient(OperationalError("SELECT", {}, Exception("no such table: run")), "sqlite")
    assert is_transient(OperationalError("SELECT", {}, Exception("server closed the connection")), "postgresql")
    assert not is_transient(IntegrityError("INSERT", {}, Exception("duplicate key")), "postgresql")


def test_transient_errors_are_retried_then_succeed(tmp_path: Path) -> None:
    engine = create_engine(parse_url(f"sqlite:///{tmp_path / 'x.db'}"), create=True)
    transactions = Transactions(engine, "sqlite:///x.db", retry_seconds=5)
    calls = []

    def flaky(connection):
        calls.append(1)
        if len(calls) < 3:
            raise locked()
        return connection.exec_driver_sql("SELECT 42").scalar()

    assert transactions.run(flaky, what="test") == 42 and len(calls) == 3
    engine.dispose()


def test_retry_gives_up_with_one_line_after_the_deadline(tmp_path: Path) -> None:
    engine = create_engine(parse_url(f"sqlite:///{tmp_path / 'x.db'}"), create=True)
    transactions = Transactions(engine, "sqlite:///x.db", retry_seconds=0.3)

    def always_locked(connection):
        raise locked()

    with pytest.raises(StoreError, match="unavailable for 0 s: database is locked"):
        transactions.run(always_locked, what="claim")
    with pytest.raises(StoreError, match="claim failed on sqlite:///x.db: boom"):
        transactions.run(lambda c: (_ for _ in ()).throw(IntegrityError("X", {}, Exception("boom"))), what="claim")
    engine.dispose()


def test_writer_lock_does_not_outlive_its_holder_through_a_forked_child(tmp_path: Path) -> None:
    """A process that dies holding the SQLite writer flock must not leave it held by a child it forked."""
    import os
    import time

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    open_store(url, create=True).close()
    holder = os.fork()
    if holder == 0:  # the holder: take the lock, fork a long-lived child, die holding it
        try:
            store = open_store(url)
            with store.db.transactions.writer_lock.hold():
                if os.fork() == 0:
                    time.sleep(6)
                    os._exit(0)
                os._exit(0)
        finally:
            os._exit(1)
    assert os.waitpid(holder, 0)[1] == 0
    store = open_store(url)
    started = time.monotonic()
    store.create_run("after", "random", None, 0, {})
    assert time.monotonic() - started < 3, "the dead holder's lock was kept alive by its child"
    store.close()
