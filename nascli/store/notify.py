"""Instant wake-ups on PostgreSQL: NOTIFY inside the writing transaction, LISTEN in a waiter thread.

Two channels, each notification's payload is the run id:
- `nascli_work`: a run got pending work (enqueue, release, a retryable failure queued again, a
  reaped lease). Idle workers wake up and claim.
- `nascli_result`: an evaluation of a run finished. The run's driver wakes up and folds it.

PostgreSQL delivers a notification only when its transaction commits, so a woken waiter that
queries sees the row. Channels are per database, not per schema: two nascli schemas in one
database wake each other up now and then, which costs one empty query and nothing else.

Notifications are an optimisation, never a requirement: every waiter still polls (less often
while its LISTEN connection is healthy), and a dropped connection only means polling until the
listener thread reconnects. SQLite has no notifications; there `wait(timeout)` is a plain sleep
that `wake()` (a signal handler) can cut short.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

log = logging.getLogger("nascli.store.notify")

WORK_CHANNEL = "nascli_work"
RESULT_CHANNEL = "nascli_result"
CHANNELS = (WORK_CHANNEL, RESULT_CHANNEL)
# NASCLI_LISTEN=0 turns listening off (polling only): for benchmarks and for databases behind a
# pooler in transaction mode (pgbouncer), where LISTEN does not work.
LISTEN_ENV = "NASCLI_LISTEN"

# Dead-peer detection for an idle connection of our own (libpq parameters; LISTEN here, the driver's
# liveness token in driver_token.py): a partitioned link is noticed in about keepalives_idle +
# interval * count seconds; callers poll meanwhile anyway.
KEEPALIVE_CONNECT_ARGS = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3,
                        "keepalives_count": 3, "tcp_user_timeout": 20_000, "application_name": "nascli-listen"}
_NOTIFIES_SLICE_SECONDS = 0.5  # how often the listener thread looks at its close flag
_RECONNECT_FIRST, _RECONNECT_MAX = 0.5, 10.0

_NOTIFY = sa.select(sa.func.pg_notify(sa.bindparam("channel", type_=sa.String),
                                      sa.bindparam("payload", type_=sa.String)))


def notify(conn: Connection, channel: str, run_id: str) -> None:
    """Send `run_id` on `channel` when the caller's transaction commits (PostgreSQL; no-op on SQLite)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_NOTIFY, {"channel": channel, "payload": run_id})


def listening_enabled(environ: Any = os.environ) -> bool:
    return environ.get(LISTEN_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class Waiter:
    """`wait(timeout)` sleeps up to `timeout` seconds and returns True early when woken: by a
    notification on its channel (for its run, if it has one) or by `wake()` (thread- and
    signal-safe). Without a listener it is a plain interruptible sleep."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._listener: _Listener | None = None

    @property
    def listening(self) -> bool:
        """True while a LISTEN connection is up: callers may poll less often."""
        return self._listener is not None and self._listener.healthy.is_set()

    def wake(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        woken = self._event.wait(max(0.0, timeout))
        # Cleared after waking and before the caller's next query: a notification that arrives
        # in between belongs to a commit that query will see anyway.
        self._event.clear()
        return woken

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> Waiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_waiter(store: Any, channel: str, run_id: str | None = None) -> Waiter:
    """A Waiter for `channel`, listening on PostgreSQL stores (unless NASCLI_LISTEN=0).
    `run_id`: wake only for that run's notifications. Never raises for an unreachable server:
    the listener thread keeps reconnecting in the background while callers poll."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    waiter = Waiter()
    engine = getattr(store, "engine", None)
    if engine is None or getattr(store, "backend", None) != "postgresql" or not listening_enabled():
        return waiter
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    waiter._listener = _Listener(waiter, channel, run_id, list(cargs), {**cparams, **KEEPALIVE_CONNECT_ARGS})
    waiter._listener.start()
    return waiter


class _Listener:
    """A daemon thread with its own autocommit psycopg connection: LISTEN, then wake the waiter
    for every matching notification. On any connection error it marks itself unhealthy and
    reconnects with backoff; after (re)connecting it wakes the waiter once, because
    notifications sent while it was down are lost."""

    def __init__(self, waiter: Waiter, channel: str, run_id: str | None, cargs: list[Any],
                 cparams: dict[str, Any]) -> None:
        self.waiter = waiter
        self.channel = channel
        self.run_id = run_id
        self.cargs, self.cparams = cargs, cparams
        self.healthy = threading.Event()
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"nascli-listen-{channel}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        # No long join: the thread notices within one slice and closes its connection itself.
        self.closed.set()
        self.thread.join(timeout=0.05)

    def _loop(self) -> None:
        import psycopg  # only PostgreSQL stores get here

        delay = _RECONNECT_FIRST
        while not self.closed.is_set():
            try:
                with psycopg.connect(*self.cargs, **self.cparams, autocommit=True) as conn:
                    conn.execute(f"LISTEN {self.channel}")  # a constant from CHANNELS, not user input
                    self.healthy.set()
                    self.waiter.wake()  # anything sent while we were not listening: look now
                    delay = _RECONNECT_FIRST
                    self._listen(conn)
            except Exception as error:  # noqa: BLE001 - any failure: poll, reconnect later
                if self.closed.is_set():
                    break
                if self.healthy.is_set():
                    log.warning("LISTEN %s connection lost (%s); polling until it is back", self.channel,
                                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
                else:
                    log.debug("LISTEN %s: cannot connect (%s)", self.channel, error)
            finally:
                self.healthy.clear()
            self.closed.wait(delay)
            delay = min(_RECONNECT_MAX, delay * 2)

    def _listen(self, conn: Any) -> None:
        while not self.closed.is_set():
            for note in conn.notifies(timeout=_NOTIFIES_SLICE_SECONDS):
                if self.run_id is None or note.payload == self.run_id:
                    self.waiter.wake()
                if self.closed.is_set():
                    return


__all__ = ["WORK_CHANNEL", "RESULT_CHANNEL", "LISTEN_ENV", "Waiter", "notify", "open_waiter", "listening_enabled"]
