"""Runs and the search driver's lease: create, find, list, status; acquire, renew, release the lease.

A run's driver lease (`driver_owner`, `driver_lease_expires_at` on the run row) fences the writes
of a search driver that was taken over: its next renewal, inside its step's transaction, fails.
"""

from __future__ import annotations

import functools
import json
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from nascli.errors import RunNotFoundError, StoreError
from nascli.store import convert
from nascli.store.database import Database, Statement, param
from nascli.store.records import RUN_STATUSES, TERMINAL_RUN_STATUSES, RunInfo
from nascli.store.tables import R

_RUN_LOCK_KEY = 0x6E617372  # pg_advisory_xact_lock key serialising run creation (run numbers): 'nasr'


@dataclass(frozen=True)
class RunSql:
    run_exists: Statement
    renew_driver_lease: Statement

    def every_statement(self) -> tuple[Statement, ...]:
        return self.run_exists, self.renew_driver_lease


def build(now: sa.ColumnElement[float]) -> RunSql:
    return RunSql(
        run_exists=Statement("run_exists", sa.select(R.c.id).where(R.c.id == param("run_id")),
                             doc="Whether the run exists (before children are recorded)."),
        renew_driver_lease=Statement(
            "renew_driver_lease", sa.update(R).where(R.c.id == param("run_id"), R.c.driver_owner == param("owner"))
            .values(driver_lease_expires_at=now + param("seconds", sa.Float)),
            doc="Extend the search driver's lease; no row updated: another driver took the run over."),
    )


class RunRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    @functools.cached_property
    def sql(self) -> RunSql:
        return build(self.db.now_param())

    # ---------------------------------------------------------------- runs
    def create_run(self, name: str, strategy: str, preset: str | None, seed: int, config: dict[str, Any]) -> RunInfo:
        """Record a new run (status 'created') and return it; its id is short and printable ('r-7f3a2c')."""
        config_json = json.dumps(config, sort_keys=True, default=str)

        def body(conn: Connection) -> RunInfo:
            if self.db.backend == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_RUN_LOCK_KEY)))
            run_id = _new_run_id()
            while conn.execute(sa.select(R.c.id).where(R.c.id == run_id)).first() is not None:
                run_id = _new_run_id()
            number = conn.execute(sa.select(sa.func.coalesce(sa.func.max(R.c.number), 0) + 1)).scalar_one()
            now = self.db.now_value(conn)
            conn.execute(sa.insert(R).values(id=run_id, number=number, name=name, strategy=strategy, preset=preset,
                                             seed=int(seed), config_json=config_json, status="created",
                                             created_at=now, updated_at=now))
            return convert.run_info(conn.execute(sa.select(R).where(R.c.id == run_id)).one())

        return self.db.write(body, what="create run")

    def get_run(self, ref: str) -> RunInfo:
        """The run a user means by `ref`: its id, 'latest' (the newest), its name, or a unique id
        prefix. RunNotFoundError otherwise, one line whose hint lists the candidates."""
        return self.db.read(lambda conn: convert.run_info(self._find_run(conn, ref)), what="read run")

    def _find_run(self, conn: Connection, ref: str) -> Any:
        if ref == "latest":
            row = conn.execute(sa.select(R).order_by(R.c.number.desc()).limit(1)).first()
        else:
            row = conn.execute(sa.select(R).where(R.c.id == ref)).first()
        if row is not None:
            return row
        if ref in ("latest", ""):
            raise self.not_found(conn, ref)
        named = conn.execute(sa.select(R).where(R.c.name == ref).order_by(R.c.number.desc()).limit(6)).all()
        if len(named) == 1:
            return named[0]
        if named:
            raise RunNotFoundError(f"{len(named) if len(named) < 6 else 'several'} runs are named {ref!r}",
                                   hint="say which by id: " + ", ".join(r.id for r in named[:5]))
        prefix = ref if ref.startswith("r-") else f"r-{ref}"
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = conn.execute(sa.select(R).where(R.c.id.like(f"{escaped}%", escape="\\"))
                            .order_by(R.c.number.desc()).limit(6)).all()
        if len(rows) == 1:
            return rows[0]
        if rows:
            raise RunNotFoundError(f"run id prefix {ref!r} is ambiguous",
                                   hint="candidates: " + ", ".join(r.id for r in rows[:5]) + " (give more characters)")
        raise self.not_found(conn, ref)

    def not_found(self, conn: Connection, key: str) -> RunNotFoundError:
        """The one-line error for a run that is not there, its hint naming recent runs."""
        recent = conn.execute(sa.select(R.c.id, R.c.name).order_by(R.c.number.desc()).limit(5)).all()
        if not recent:
            return RunNotFoundError(f"no run {key!r}: {self.db.url_display} has no runs yet",
                                    hint="start one with `nas run --preset NAME`")
        listed = ", ".join(f"{row.id} ({row.name})" if row.name else row.id for row in recent)
        return RunNotFoundError(f"no run {key!r} in {self.db.url_display}",
                                hint=f"recent runs: {listed}; a RUN is an id, a unique id prefix, a name or 'latest'")

    def require(self, conn: Connection, run_id: str) -> None:
        """RunNotFoundError unless the run exists."""
        if self.db.execute(conn, self.sql.run_exists, run_id=run_id).first() is None:
            raise self.not_found(conn, run_id)

    def config(self, conn: Connection, run_id: str) -> dict[str, Any]:
        """The run's stored configuration (RunNotFoundError if there is no such run)."""
        config_json = conn.execute(sa.select(R.c.config_json).where(R.c.id == run_id)).scalar_one_or_none()
        if config_json is None:
            raise self.not_found(conn, run_id)
        config: dict[str, Any] = json.loads(config_json)
        return config

    def list_runs(self, limit: int | None = None) -> list[RunInfo]:
        """Runs, newest first."""

        def body(conn: Connection) -> list[RunInfo]:
            query = sa.select(R).order_by(R.c.number.desc())
            if limit is not None:
                query = query.limit(limit)
            return [convert.run_info(row) for row in conn.execute(query)]

        return self.db.read(body, what="list runs")

    def set_run_status(self, run_id: str, status: str, *, driver: str | None = None) -> RunInfo | None:
        """Set the run's status (one of RUN_STATUSES); terminal ones also stamp finished_at.
        `driver`: only while the run's driver lease is that search driver's or nobody's (a driver
        that was taken over must not overwrite the new driver's status); None when it is not."""
        if status not in RUN_STATUSES:
            raise StoreError(f"unknown run status {status!r}", hint=f"one of {', '.join(RUN_STATUSES)}")

        def body(conn: Connection) -> RunInfo | None:
            now = self.db.now_sql()
            values: dict[str, Any] = {"status": status, "updated_at": now}
            values["finished_at"] = now if status in TERMINAL_RUN_STATUSES else None
            where = [R.c.id == run_id]
            if driver is not None:
                where.append(sa.or_(R.c.driver_owner.is_(None), R.c.driver_owner == driver))
            row = conn.execute(sa.update(R).where(*where).values(**values).returning(*R.c)).first()
            if row is None:
                if driver is not None and conn.execute(sa.select(R.c.id).where(R.c.id == run_id)).first() is not None:
                    return None
                raise self.not_found(conn, run_id)
            return convert.run_info(row)

        return self.db.write(body, what="set run status")

    def run_status(self, run_id: str) -> str:
        """The run's status alone (the driver polls it to notice `nas cancel`)."""

        def body(conn: Connection) -> str:
            status: str | None = conn.execute(sa.select(R.c.status).where(R.c.id == run_id)).scalar_one_or_none()
            if status is None:
                raise self.not_found(conn, run_id)
            return status

        return self.db.read(body, what="read run status")

    def unfinished_run_named(self, name: str) -> RunInfo | None:
        """The newest run called `name` that has not stopped, or None."""

        def body(conn: Connection) -> RunInfo | None:
            row = conn.execute(sa.select(R).where(R.c.name == name, R.c.status.not_in(TERMINAL_RUN_STATUSES))
                               .order_by(R.c.number.desc()).limit(1)).first()
            return None if row is None else convert.run_info(row)

        return self.db.read(body, what="find run by name")

    # ---------------------------------------------------------------- the search driver's lease
    def acquire_driver_lease(self, run_id: str, owner: str, seconds: float, force: bool = False,
                             takeover: bool = False) -> bool:
        """Become the run's one driver for `seconds` (database clock). True if the lease was free
        (never taken or released) or already `owner`'s; an expired lease of another owner only
        with `force` (`nas resume --force`). `takeover`: the caller holds the run's liveness token
        (store.driver_token), so whoever holds the lease is dead or cut off: take it, live or not;
        that driver's next fenced write (renew_driver_lease) fails."""

        def body(conn: Connection) -> bool:
            now = self.db.now_sql()
            takeable = sa.or_(R.c.driver_owner.is_(None), R.c.driver_owner == owner)
            if takeover:
                takeable = sa.true()
            elif force:
                takeable = sa.or_(takeable, R.c.driver_lease_expires_at < now)
            updated = conn.execute(sa.update(R).where(R.c.id == run_id, takeable).values(
                driver_owner=owner, driver_lease_expires_at=now + float(seconds), updated_at=now)).rowcount
            if updated == 0 and conn.execute(sa.select(R.c.id).where(R.c.id == run_id)).first() is None:
                raise self.not_found(conn, run_id)
            return updated == 1

        return self.db.write(body, what="acquire driver lease")

    def renew_driver_lease(self, run_id: str, owner: str, seconds: float) -> bool:
        """Extend `owner`'s lease; False if someone else holds it now (stop driving). Called inside
        a driver step's transaction it is the step's fence: on PostgreSQL the row lock it takes
        orders it against a takeover, so a paused driver never writes after one."""
        return self.db.write(lambda conn: self.db.execute(
            conn, self.sql.renew_driver_lease, run_id=run_id, owner=owner, seconds=float(seconds)).rowcount == 1,
            what="renew driver lease")

    def release_driver_lease(self, run_id: str, owner: str) -> bool:
        """Give the lease up (clean exit) so `nas resume` can take it without --force."""
        return self.db.write(lambda conn: conn.execute(
            sa.update(R).where(R.c.id == run_id, R.c.driver_owner == owner).values(
                driver_owner=None, driver_lease_expires_at=None)).rowcount == 1, what="release driver lease")


def _new_run_id() -> str:
    return f"r-{secrets.token_hex(3)}"
