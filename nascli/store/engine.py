"""Engines for SQLite and PostgreSQL, the database clock, and the one place transactions happen.

SQLite: WAL, synchronous=FULL, busy_timeout 30 s, foreign keys, and `BEGIN IMMEDIATE` for every
write transaction via SQLAlchemy's documented pysqlite recipe (isolation_level=None + a `begin`
event), so writers queue on the busy timeout instead of failing on lock upgrade. Refused on
network filesystems, where WAL's shared memory does not work.

PostgreSQL: psycopg 3, connect_timeout, no pool_pre_ping: a ping is one more round trip per
transaction, and Transactions.run already retries a dead connection (SQLAlchemy invalidates the
pool on a disconnect, so the retry gets a fresh one).

Transient errors (server restart, connection reset, SQLITE_BUSY beyond the timeout) are retried
with jittered exponential backoff in `run_transaction`, so callers survive a PostgreSQL restart.
Everything else becomes a StoreError with the URL's password masked.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)

from nascli.errors import StoreError, StorePrivilegeError
from nascli.safe_files import open_lock_file
from nascli.url_secrets import redact

log = logging.getLogger("nascli.store")

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 5
DEFAULT_RETRY_SECONDS = 60.0
NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "fuse.sshfs", "9p",
                                 "afs", "ncpfs", "glusterfs", "ceph", "fuse.glusterfs", "fuse.ceph"})
_INIT_HINT = "create it with `nas init --db URL`"

_live_engines: weakref.WeakSet[Engine] = weakref.WeakSet()
_live_writer_locks: weakref.WeakSet[SQLiteWriterLock] = weakref.WeakSet()
_live_transactions: weakref.WeakSet[Transactions] = weakref.WeakSet()
_inherited_connections: list[Connection] = []  # see Transactions.forget_inherited


def _dispose_after_fork() -> None:
    # A forked child must not reuse its parent's connections (SQLAlchemy "pooling with multiprocessing"),
    # nor keep the parent's flock descriptor open: a lock the parent held at fork would outlive the parent.
    for engine in list(_live_engines):
        engine.dispose(close=False)
    for lock in list(_live_writer_locks):
        lock.forget_inherited()
    for transactions in list(_live_transactions):
        transactions.forget_inherited()


os.register_at_fork(after_in_child=_dispose_after_fork)


def display_url(url: URL) -> str:
    """The URL for messages and logs: passwords (user part and query string) masked."""
    return redact(url.render_as_string(hide_password=False))


def parse_url(text: str) -> URL:
    """The URL with its DB-API module pinned (postgresql -> psycopg 3); StoreError for anything else.
    (The URL's "driver" is SQLAlchemy's word for the DB-API module, so the messages keep it.)"""
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise StoreError(f"not a database URL: {redact(text)!r}",
                         hint="use sqlite:///path/to/nas.db or postgresql+psycopg://user@host/db") from None
    backend, _, dbapi_name = url.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if dbapi_name not in ("", "psycopg"):
            raise StoreError(f"unsupported PostgreSQL driver {dbapi_name!r} in {display_url(url)}",
                             hint="use postgresql+psycopg://user@host/db (psycopg 3)")
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if dbapi_name not in ("", "pysqlite"):
            raise StoreError(f"unsupported SQLite driver {dbapi_name!r} in {display_url(url)}",
                             hint="use sqlite:///path/to/nas.db")
        return url
    raise StoreError(f"unsupported database {backend!r} in {display_url(url)}",
                     hint="nascli stores runs in SQLite (sqlite:///nas.db) or PostgreSQL (postgresql+psycopg://...)")


def network_filesystem_of(path: Path, mounts_file: Path = Path("/proc/mounts")) -> str | None:
    """The filesystem type of the mount holding `path` if it is a network filesystem, else None."""
    try:
        lines = mounts_file.read_text().splitlines()
    except OSError:
        return None
    best, best_type = "", None
    target = str(path)
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = fields[1].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fields[2]
    return best_type if best_type in NETWORK_FILESYSTEMS else None


def create_engine(url: URL, *, create: bool, read_only: bool = False,
                  mounts_file: Path = Path("/proc/mounts")) -> Engine:
    """An engine for `url` (already parse_url'ed). `create=False` refuses a missing SQLite file
    instead of creating it, so a typo in --db writes nothing. `read_only=True` (report, export)
    makes SQLite refuse every write (`PRAGMA query_only`, journal mode untouched) and every
    PostgreSQL transaction READ ONLY: the database and its file stay exactly as they were."""
    if url.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, create=create and not read_only, read_only=read_only, mounts_file=mounts_file)
    else:
        connect_args = {"connect_timeout": PG_CONNECT_TIMEOUT_S, "application_name": "nascli"}
        engine = sa.create_engine(url, pool_pre_ping=False, pool_size=4, max_overflow=8, pool_recycle=3600,
                                  connect_args=connect_args)
        if read_only:
            @event.listens_for(engine, "connect")
            def _read_only_session(dbapi_connection: Any, _record: Any) -> None:
                with dbapi_connection.cursor() as cursor:
                    cursor.execute("SET SESSION default_transaction_read_only = on")
                dbapi_connection.commit()
    _live_engines.add(engine)
    return engine


def _sqlite_engine(url: URL, *, create: bool, read_only: bool, mounts_file: Path) -> Engine:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        raise StoreError("in-memory SQLite cannot be shared by a driver and its workers",
                         hint="use a file: sqlite:///nas.db")
    path = Path(database).expanduser().resolve()
    if not path.parent.is_dir():
        raise StoreError(f"no directory {path.parent} for the SQLite database", hint="create it first, or fix --db")
    fs_type = network_filesystem_of(path.parent, mounts_file)
    if fs_type:
        raise StoreError(f"{path} is on a network filesystem ({fs_type}); SQLite's WAL mode does not work there",
                         hint="put the database on a local disk, or use PostgreSQL for several hosts")
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a SQLite database", hint="point --db at a file")
    if not create and not path.exists():
        raise StoreError(f"no database at {path}", hint=_INIT_HINT)
    connect_args: dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    engine = sa.create_engine(url.set(database=str(path)), connect_args=connect_args)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if read_only:
                # SQLite refuses every write on this connection, and the journal mode is left as it is.
                # Not a mode=ro URI: a read-only connection cannot remove the -wal/-shm files it makes
                # beside a WAL database, so the directory would change; this one removes them on close.
                cursor.execute("PRAGMA query_only = ON")
                return
            cursor.execute("PRAGMA synchronous = FULL")
            # reading the mode first keeps a non-database file untouched (the read fails first)
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("nascli_write", True) and not read_only
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def db_now_sql(dialect_name: str) -> sa.ColumnElement[float]:
    """The database's clock as float epoch seconds: the only clock leases are measured on."""
    if dialect_name == "sqlite":
        return sa.literal_column("((julianday('now') - 2440587.5) * 86400.0)", sa.Float)
    return sa.literal_column("CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)", sa.Float)


def is_transient(error: DBAPIError, dialect_name: str) -> bool:
    """Worth retrying: lost connections, server restarts, lock timeouts, serialization conflicts."""
    if error.connection_invalidated:
        return True
    message = str(error.orig).lower() if error.orig is not None else str(error).lower()
    if dialect_name == "sqlite":
        return isinstance(error, OperationalError) and ("locked" in message or "busy" in message)
    sqlstate = getattr(error.orig, "sqlstate", None) or ""
    if sqlstate in ("40001", "40P01", "57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004"):
        return True
    return isinstance(error, (OperationalError, InterfaceError))


# PostgreSQL's insufficient_privilege: the role misses a GRANT (a least-privilege role, section 7 of
# the operators' guide); retrying cannot help.
INSUFFICIENT_PRIVILEGE = "42501"
PRIVILEGE_HINT = "grant the database role the privileges docs/operators-guide.md lists for nascli_app"


def lacks_privilege(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE


def describe_error(error: BaseException) -> str:
    """The first line of the DB-API module's message (no SQL, no parameters: they may hold genomes or worse)."""
    orig = getattr(error, "orig", None) or error
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


class SQLiteWriterLock:
    """Queues this host's nascli writers on a flock beside the database file.

    SQLite's busy handler sleeps in steps of up to 100 ms, so under contention a waiter that has
    waited longest sleeps longest while newcomers take the lock: throughput collapses and some
    workers starve. A blocking flock wakes a waiter as soon as the lock is free, so BEGIN IMMEDIATE
    then never waits on another nascli process. (Other programs writing the file still meet
    busy_timeout.) flock is per open file, so threads of one process also share a mutex; both are
    re-created after fork. The kernel drops the flock of a killed process.
    """

    def __init__(self, database: str) -> None:
        self.path = f"{database}.lock"
        self._pid = os.getpid()
        self._mutex = threading.Lock()
        self._fd: int | None = None
        _live_writer_locks.add(self)

    def forget_inherited(self) -> None:
        """In a forked child: drop the parent's descriptor and mutex (the parent keeps its lock)."""
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._pid, self._mutex, self._fd = os.getpid(), threading.Lock(), None

    @contextmanager
    def hold(self) -> Iterator[None]:
        if self._pid != os.getpid():  # belt and braces: a child forked without the at-fork hook
            self.forget_inherited()
        with self._mutex:
            if self._fd is None:
                self._fd = open_lock_file(self.path)  # beside the database; a planted link is refused
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


class Transactions:
    """Runs a function inside one transaction, retrying transient failures with jittered backoff.

    The Optuna `_create_scoped_session` pattern: commit on success, roll back on any error, map
    SQLAlchemy errors to StoreError. NascliErrors raised by the body pass through untouched.
    """

    def __init__(self, engine: Engine, url_display: str, retry_seconds: float = DEFAULT_RETRY_SECONDS) -> None:
        self.engine = engine
        self.url_display = url_display
        self.retry_seconds = retry_seconds
        self.dialect = engine.dialect.name
        self.writer_lock = SQLiteWriterLock(str(engine.url.database)) if self.dialect == "sqlite" else None
        self._held: Connection | None = None  # see _held_connection
        self._held_pid = os.getpid()
        self._held_lock = threading.Lock()
        _live_transactions.add(self)

    @contextmanager
    def begin(self, write: bool = True, single_statement: bool = False) -> Iterator[Connection]:
        if self.writer_lock is None and single_statement and self._held_lock.acquire(blocking=False):
            with self._held_connection() as connection:
                yield connection
            return
        if self.writer_lock is None:  # (a single statement too, while another thread has the held one)
            with self.engine.connect() as connection, connection.begin():
                yield connection
            return
        with self.engine.connect() as connection:
            connection = connection.execution_options(nascli_write=write)
            if not write:
                with connection.begin():  # WAL readers never wait for writers
                    yield connection
                return
            with self.writer_lock.hold(), connection.begin():
                yield connection

    @contextmanager
    def _held_connection(self) -> Iterator[Connection]:
        """PostgreSQL, one statement, `_held_lock` acquired by the caller: atomic by itself, so no
        BEGIN/COMMIT round trips (psycopg autocommit), on a connection held and reused across calls:
        a worker runs these on every task, and a pool checkout and checkin cost more CPU than the
        statement's own client side. Any error drops it (the retry gets a fresh one)."""
        try:
            if self._held is not None and self._held_pid != os.getpid():  # forked without the at-fork hook
                _inherited_connections.append(self._held)
                self._held = None
            if self._held is None:
                connection = self.engine.connect()
                try:
                    dbapi_connection: Any = connection.connection.driver_connection
                    dbapi_connection.autocommit = True
                except BaseException:
                    connection.invalidate()
                    connection.close()
                    raise
                self._held, self._held_pid = connection, os.getpid()
            try:
                yield self._held
            except BaseException:
                self._drop_held()
                raise
        finally:
            self._held_lock.release()

    def close_held(self) -> None:
        """Close the held single-statement connection (Store.close), once no thread is using it."""
        if self._held_lock.acquire(timeout=30):
            try:
                self._drop_held()
            finally:
                self._held_lock.release()

    def _drop_held(self) -> None:
        held, self._held = self._held, None
        if held is not None and self._held_pid == os.getpid():
            try:
                held.invalidate()  # its autocommit state must not go back into the pool
                held.close()
            except SQLAlchemyError:
                pass

    def forget_inherited(self) -> None:
        """In a forked child: the parent's held connection is not ours to use or close. It stays
        referenced for good: collecting a checked-out connection makes SQLAlchemy close it, which
        would end the parent's session on the shared socket."""
        if self._held is not None:
            _inherited_connections.append(self._held)
        self._held, self._held_lock = None, threading.Lock()

    def run(self, body: Callable[[Connection], T], *, write: bool = True, what: str = "store operation",
            single_statement: bool = False) -> T:
        """`single_statement`: `body` runs statements each atomic on its own, so on PostgreSQL they
        need no transaction around them (SQLite still takes its writer lock and BEGIN IMMEDIATE)."""
        deadline: float | None = None
        delay = 0.05
        while True:
            try:
                with self.begin(write, single_statement) as connection:
                    return body(connection)
            except DBAPIError as error:
                if lacks_privilege(error):
                    raise StorePrivilegeError(f"{what} failed on {self.url_display}: {describe_error(error)}",
                                              hint=PRIVILEGE_HINT) from error
                if not is_transient(error, self.dialect):
                    raise StoreError(f"{what} failed on {self.url_display}: {describe_error(error)}",
                                     hint="run with --debug for details") from error
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + self.retry_seconds
                if now >= deadline:
                    raise StoreError(f"{what}: database {self.url_display} unavailable for "
                                     f"{self.retry_seconds:.0f} s: {describe_error(error)}",
                                     hint="check that the database server is up and reachable") from error
                log.warning("%s: transient database error (%s); retrying", what, describe_error(error))
                time.sleep(min(random.uniform(0, delay), max(0.0, deadline - now)))
                delay = min(delay * 2, 2.0)
            except SQLAlchemyError as error:
                raise StoreError(f"{what} failed on {self.url_display}: {describe_error(error)}",
                                 hint="run with --debug for details") from error


def connect_error(error: BaseException, url: URL) -> StoreError:
    """One clear line for a database we cannot open: unreachable, wrong password, not a database."""
    shown = display_url(url)
    detail = describe_error(error)
    lowered = detail.lower()
    if isinstance(error, NoSuchModuleError):
        return StoreError(f"no driver for {shown}", hint="install psycopg 3 (pip install 'psycopg[binary]')")
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return StoreError(f"wrong password for user {url.username!r} at {shown}",
                          hint="fix the password in NAS_DB_URL or nascli.toml [store] url")
    if "file is not a database" in lowered or "not a database" in lowered:
        return StoreError(f"{url.database} is not a SQLite database", hint="point --db at a nascli database file")
    if "does not exist" in lowered and "database" in lowered:
        return StoreError(f"database {url.database!r} does not exist on {url.host}",
                          hint=f"create it (createdb {url.database}) and run `nas init`")
    if "unable to open database file" in lowered:
        return StoreError(f"cannot open the SQLite file {url.database}", hint="check the path and its permissions")
    return StoreError(f"cannot connect to {shown}: {detail}",
                      hint="check the host, port and that the server is running")
