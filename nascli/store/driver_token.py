"""A run driver's liveness token: a lock the operating system drops the instant its holder dies.

The database lease (store.acquire_driver_lease) says who drives a run and fences a paused driver's
writes, but a dead driver's lease only lapses with time. The token answers "is that driver alive?"
at once, so `nas resume` can take a crashed run over without waiting:
- SQLite: an exclusive flock (filelock) on `<database>.<run id>.driver.lock` beside the database
  file; the kernel drops it when the process exits, however it exits. (SQLite databases on network
  filesystems are refused, so the flock is always a real one.)
- PostgreSQL: a session advisory lock keyed by schema and run, on a connection of the token's own;
  the server drops it when that session ends (process killed, connection cut; with TCP keepalives
  on both ends, a host that vanished is noticed in about 20 s).

`try_acquire()` never waits. `still_held()` checks a PostgreSQL token's connection and, if it was
lost, takes the lock again on a new one; False means another driver has the token now.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any, Protocol

from nascli.errors import StoreError

log = logging.getLogger("nascli.store")

# One bigint per (schema, run): advisory locks are per database, and tests share one database.
_PG_KEY = "hashtextextended('nascli-driver:' || current_schema() || ':' || %s, 0)"
# The server ends the token's session about 20 s after the driver's host stops answering.
_SERVER_KEEPALIVES = ("SET tcp_keepalives_idle = 10", "SET tcp_keepalives_interval = 3", "SET tcp_keepalives_count = 3")


class DriverToken(Protocol):
    def try_acquire(self) -> bool: ...

    def still_held(self) -> bool: ...

    def release(self) -> None: ...

    def discard(self) -> None: ...


class FileToken:
    def __init__(self, path: Path) -> None:
        from filelock import FileLock

        self.path = path
        self._lock = FileLock(str(path), thread_local=False)

    def try_acquire(self) -> bool:
        from filelock import Timeout

        try:
            self._lock.acquire(blocking=False)
        except Timeout:
            return False
        except OSError as error:  # filelock opens with O_NOFOLLOW: a link planted at the name ends here
            from nascli.safe_files import describe_os_error

            raise describe_os_error(error, self.path, "open the lock file") from None
        return True

    def still_held(self) -> bool:
        return self._lock.is_locked  # a flock is only lost with the process

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release(force=True)

    def discard(self) -> None:
        """The run is gone: remove the token's file (while holding it), then let go."""
        if self._lock.is_locked:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        self.release()


class AdvisoryLockToken:
    """The lock lives as long as the connection's session; one connection serves every attempt."""

    def __init__(self, connect_args: list[Any], connect_params: dict[str, Any], run_id: str) -> None:
        self.connect_args, self.connect_params, self.run_id = connect_args, connect_params, run_id
        self._connection: Any = None
        self._held = False

    def try_acquire(self) -> bool:
        import psycopg

        try:
            return self._try_lock()
        except psycopg.Error as error:
            self.release()
            raise StoreError(f"cannot take the driver token of run {self.run_id}: {str(error).strip().splitlines()[0]}",
                             hint="check that the database server is up and reachable") from error

    def _try_lock(self) -> bool:
        import psycopg

        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(*self.connect_args, **self.connect_params, autocommit=True)
            for setting in _SERVER_KEEPALIVES:  # so the server also notices a vanished host, not only a dead process
                self._connection.execute(setting)
        if not self._held:
            self._held = self._connection.execute(f"SELECT pg_try_advisory_lock({_PG_KEY})",
                                                  (self.run_id,)).fetchone()[0]
        return self._held

    def still_held(self) -> bool:
        import psycopg

        if not self._held:
            return False
        try:
            self._connection.execute("SELECT 1")
            return True
        except psycopg.Error as error:
            log.warning("the driver's token connection was lost (%s); taking the token again", error)
        self.release()
        try:
            return self.try_acquire()
        except StoreError:
            return True  # the server is unreachable: so is any other driver's takeover; the lease decides

    def discard(self) -> None:
        """The run is gone; an advisory lock leaves nothing behind."""
        self.release()

    def release(self) -> None:
        connection, self._connection, self._held = self._connection, None, False
        if connection is not None:
            try:
                connection.close()  # ends the session: the server drops the advisory lock
            except Exception:  # noqa: BLE001 - a dead connection has dropped it already
                pass


def driver_token(store: Any, run_id: str) -> DriverToken:
    """The liveness token of `run_id`'s driver on `store`'s database (not yet acquired)."""
    engine = store.engine
    if store.backend == "sqlite":
        database = Path(engine.url.database)
        return FileToken(database.with_name(f"{database.name}.{run_id}.driver.lock"))
    from nascli.store.notify import KEEPALIVE_CONNECT_ARGS

    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    return AdvisoryLockToken(list(cargs), {**cparams, **KEEPALIVE_CONNECT_ARGS, "application_name": "nascli-driver"},
                             run_id)


__all__ = ["DriverToken", "driver_token"]
