"""The Store: schema, runs and the driver lease, individuals, islands, migrations, workers, events.

The queue operations live in queue.py (mixed in). Every public method is one transaction run
through engine.Transactions (commit/rollback, transient-error retry, StoreError mapping).
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from nascli.errors import RunNotFoundError, StoreError
from nascli.store import convert
from nascli.store.engine import (
    DEFAULT_RETRY_SECONDS,
    Transactions,
    connect_error,
    create_engine,
    db_now_sql,
    display_url,
    parse_url,
)
from nascli.store.models import (
    SCHEMA_VERSION,
    EventRow,
    IndividualRow,
    IslandRow,
    Meta,
    MigrationRow,
    RunRow,
    WorkerRow,
    metadata,
)
from nascli.store.manage import RunManagement
from nascli.store.queue import QueueOperations
from nascli.store.statements import QueueStatements, RawStatements
from nascli.store.step_statements import StepStatements
from nascli.store.records import (
    RUN_STATUSES,
    TERMINAL_RUN_STATUSES,
    Event,
    IndividualInfo,
    IslandInfo,
    Migration,
    NewIndividual,
    QueueLimits,
    RunInfo,
    WorkerInfo,
)

T = TypeVar("T")

M = Meta.__table__
R = RunRow.__table__
I = IndividualRow.__table__  # noqa: E741 - the individual table
ISL = IslandRow.__table__
MIG = MigrationRow.__table__
W = WorkerRow.__table__
EV = EventRow.__table__

_SCHEMA_LOCK_KEY = 0x6E617363  # pg_advisory_xact_lock key serialising schema creation ('nasc')
_RUN_LOCK_KEY = 0x6E617372  # ... and run creation (run numbers)
_INIT_HINT = "run `nas init --db URL` first"


def open_store(url: str, *, create: bool = False, read_only: bool = False, retry_seconds: float = DEFAULT_RETRY_SECONDS,
               limits: QueueLimits | None = None, clock: Callable[[], float] | None = None) -> "Store":
    """Connect to `url` and check its schema.

    `create=True` (what `nas init` does) creates a missing SQLite file and the schema; otherwise a
    missing file or schema is a StoreError and nothing is written. Raises StoreError with one
    clear line for an unsupported or malformed URL, an unreachable server, a wrong password, a
    file that is not a database, or a schema written by another nascli version.
    `read_only=True` (report, export): the database is opened so that nothing can change it.
    `retry_seconds`: how long transient errors (server restart) are retried before giving up.
    `clock`: tests only — replaces the database clock with a Python callable (epoch seconds).
    """
    parsed = parse_url(url)
    engine = create_engine(parsed, create=create, read_only=read_only)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except DBAPIError as error:
        engine.dispose()
        raise connect_error(error, parsed) from None
    store = Store(engine, display_url(parsed), retry_seconds=retry_seconds, limits=limits, clock=clock)
    try:
        if create:
            store.created_schema = store.init_schema()
        else:
            store.check_schema()
    except BaseException:
        store.close()
        raise
    return store


class Store(QueueOperations, RunManagement):
    """One database. Thread-safe (a pool of connections); after a fork, open a new Store."""

    def __init__(self, engine: Engine, url_display: str, *, retry_seconds: float = DEFAULT_RETRY_SECONDS,
                 limits: QueueLimits | None = None, clock: Callable[[], float] | None = None) -> None:
        self.engine = engine
        self.url_display = url_display  # password masked: safe to print and log
        self.backend = engine.dialect.name  # 'sqlite' or 'postgresql'
        self.limits = limits or QueueLimits()
        self._transactions = Transactions(engine, url_display, retry_seconds)
        self._clock = clock
        self._queue_statements: QueueStatements | None = None
        self._driver_step_statements: StepStatements | None = None
        self._raw: RawStatements | None = None
        self._retry_limits_of_run: dict[str, tuple[int, int]] = {}
        self._unit = threading.local()  # .connection: the transaction of an atomically() call, if any
        self.created_schema = False  # set by open_store(create=True) when it created the tables

    # ---------------------------------------------------------------- plumbing
    def _write(self, body: Callable[[Connection], T], *, what: str, single_statement: bool = False) -> T:
        connection = getattr(self._unit, "connection", None)
        if connection is not None:
            return body(connection)
        return self._transactions.run(body, write=True, what=what, single_statement=single_statement)

    def _read(self, body: Callable[[Connection], T], *, what: str) -> T:
        connection = getattr(self._unit, "connection", None)
        if connection is not None:
            return body(connection)
        return self._transactions.run(body, write=False, what=what)

    def atomically(self, work: Callable[[], T], *, what: str) -> T:
        """Run `work` - calls of this store's methods, from this thread - as ONE transaction: one
        commit, all or nothing (the driver's unit of work per step: a commit is an fsync on SQLite).
        After a transient error the whole of `work` runs again, so it must do nothing but call the
        store and return what it read."""

        def body(connection: Connection) -> T:
            self._unit.connection, self._unit.now = connection, None
            try:
                return work()
            finally:
                self._unit.connection = None

        if getattr(self._unit, "connection", None) is not None:
            return work()  # already inside one
        return self._transactions.run(body, write=True, what=what)

    def _now(self) -> sa.ColumnElement[float]:
        if self._clock is not None:
            return sa.literal(float(self._clock()), sa.Float)
        return db_now_sql(self.backend)

    def _statements(self) -> QueueStatements:
        if self._queue_statements is None:
            now = sa.bindparam("b_now", type_=sa.Float) if self._clock is not None else db_now_sql(self.backend)
            self._queue_statements = QueueStatements(now)
        return self._queue_statements

    def _step_statements(self) -> StepStatements:
        if self._driver_step_statements is None:
            self._driver_step_statements = StepStatements(self.backend)
        return self._driver_step_statements

    def _raw_statements(self) -> RawStatements:
        """The queue statements on the driver's own connection (see RawStatements)."""
        if self._raw is None:
            self._raw = RawStatements(self.engine.dialect)
        return self._raw

    def _params(self, **params: Any) -> dict[str, Any]:
        """Bind parameters for a QueueStatements statement (plus `now` under a test clock)."""
        if self._clock is not None:
            params["now"] = float(self._clock())
        return {f"b_{name}": value for name, value in params.items()}

    def _now_value(self, conn: Connection) -> float:
        """The database clock; read once per unit of work (atomically), which stamps all its rows alike."""
        in_unit = getattr(self._unit, "connection", None) is conn
        if in_unit and self._unit.now is not None:
            return self._unit.now
        now = float(conn.execute(sa.select(self._now())).scalar_one())
        if in_unit:
            self._unit.now = now
        return now

    def db_now(self) -> float:
        """The database clock, epoch seconds: compare lease expiry times against this."""
        return self._read(self._now_value, what="read clock")

    def close(self) -> None:
        self._transactions.close_held()
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---------------------------------------------------------------- schema
    def init_schema(self) -> bool:
        """Create the tables and the version row if absent; check the version if present.
        Idempotent and safe to run from several processes at once. True if it created them."""

        def body(conn: Connection) -> bool:
            if self.backend == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
            version = self._schema_version(conn)
            if version is not None:
                self._require_version(version)
                return False
            foreign = set(sa.inspect(conn).get_table_names()) & set(metadata.tables)
            if foreign:
                raise StoreError(f"{self.url_display} has tables named like nascli's ({', '.join(sorted(foreign))}) "
                                 "but no nascli version row", hint="use an empty database for nascli")
            metadata.create_all(conn)
            conn.execute(sa.insert(M).values(key="schema_version", value=str(SCHEMA_VERSION)))
            return True

        return self._write(body, what="create schema")

    def check_schema(self) -> int:
        """The schema version, after checking it is this nascli's. StoreError if absent or other."""

        def body(conn: Connection) -> int:
            version = self._schema_version(conn)
            if version is None:
                raise StoreError(f"{self.url_display} holds no nascli schema", hint=_INIT_HINT)
            self._require_version(version)
            return version

        return self._read(body, what="check schema")

    def _schema_version(self, conn: Connection) -> int | None:
        if not sa.inspect(conn).has_table(M.name):
            return None
        value = conn.execute(sa.select(M.c.value).where(M.c.key == "schema_version")).scalar_one_or_none()
        if value is None:
            raise StoreError(f"{self.url_display} has a nascli_meta table without a schema version",
                             hint="use a fresh database or run `nas init` on an empty one")
        try:
            return int(value)
        except ValueError:
            raise StoreError(f"{self.url_display}: unreadable schema version {value!r}") from None

    def _require_version(self, version: int) -> None:
        if version != SCHEMA_VERSION:
            newer = "a newer" if version > SCHEMA_VERSION else "an older"
            raise StoreError(f"{self.url_display} has schema version {version}, written by {newer} nascli; "
                             f"this nascli uses version {SCHEMA_VERSION}",
                             hint="use the nascli version that created it, or a new database")

    # ---------------------------------------------------------------- runs
    def create_run(self, name: str, strategy: str, preset: str | None, seed: int, config: dict[str, Any]) -> RunInfo:
        """Record a new run (status 'created') and return it; its id is short and printable ('r-7f3a2c')."""
        config_json = json.dumps(config, sort_keys=True, default=str)

        def body(conn: Connection) -> RunInfo:
            if self.backend == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_RUN_LOCK_KEY)))
            run_id = _new_run_id()
            while conn.execute(sa.select(R.c.id).where(R.c.id == run_id)).first() is not None:
                run_id = _new_run_id()
            number = conn.execute(sa.select(sa.func.coalesce(sa.func.max(R.c.number), 0) + 1)).scalar_one()
            now = self._now_value(conn)
            conn.execute(sa.insert(R).values(id=run_id, number=number, name=name, strategy=strategy, preset=preset,
                                             seed=int(seed), config_json=config_json, status="created",
                                             created_at=now, updated_at=now))
            return convert.run_info(conn.execute(sa.select(R).where(R.c.id == run_id)).one())

        return self._write(body, what="create run")

    def get_run(self, ref: str) -> RunInfo:
        """The run a user means by `ref`: its id, 'latest' (the newest), its name, or a unique id
        prefix. RunNotFoundError otherwise, one line whose hint lists the candidates."""
        return self._read(lambda conn: convert.run_info(self._find_run(conn, ref)), what="read run")

    def _find_run(self, conn: Connection, ref: str) -> Any:
        if ref == "latest":
            row = conn.execute(sa.select(R).order_by(R.c.number.desc()).limit(1)).first()
        else:
            row = conn.execute(sa.select(R).where(R.c.id == ref)).first()
        if row is not None:
            return row
        if ref in ("latest", ""):
            raise self._run_not_found(conn, ref)
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
        raise self._run_not_found(conn, ref)

    def _run_not_found(self, conn: Connection, key: str) -> RunNotFoundError:
        recent = conn.execute(sa.select(R.c.id, R.c.name).order_by(R.c.number.desc()).limit(5)).all()
        if not recent:
            return RunNotFoundError(f"no run {key!r}: {self.url_display} has no runs yet",
                                    hint="start one with `nas run --preset NAME`")
        listed = ", ".join(f"{row.id} ({row.name})" if row.name else row.id for row in recent)
        return RunNotFoundError(f"no run {key!r} in {self.url_display}",
                                hint=f"recent runs: {listed}; a RUN is an id, a unique id prefix, a name or 'latest'")

    def list_runs(self, limit: int | None = None) -> list[RunInfo]:
        """Runs, newest first."""

        def body(conn: Connection) -> list[RunInfo]:
            query = sa.select(R).order_by(R.c.number.desc())
            if limit is not None:
                query = query.limit(limit)
            return [convert.run_info(row) for row in conn.execute(query)]

        return self._read(body, what="list runs")

    def set_run_status(self, run_id: str, status: str, *, driver: str | None = None) -> RunInfo | None:
        """Set the run's status (one of RUN_STATUSES); terminal ones also stamp finished_at.
        `driver`: only while the run's driver lease is that owner's or nobody's (a driver that was
        taken over must not overwrite the new driver's status); None when it is not."""
        if status not in RUN_STATUSES:
            raise StoreError(f"unknown run status {status!r}", hint=f"one of {', '.join(RUN_STATUSES)}")

        def body(conn: Connection) -> RunInfo | None:
            now = self._now()
            values: dict[str, Any] = {"status": status, "updated_at": now}
            values["finished_at"] = now if status in TERMINAL_RUN_STATUSES else None
            where = [R.c.id == run_id]
            if driver is not None:
                where.append(sa.or_(R.c.driver_owner.is_(None), R.c.driver_owner == driver))
            row = conn.execute(sa.update(R).where(*where).values(**values).returning(*R.c)).first()
            if row is None:
                if driver is not None and conn.execute(sa.select(R.c.id).where(R.c.id == run_id)).first() is not None:
                    return None
                raise self._run_not_found(conn, run_id)
            return convert.run_info(row)

        return self._write(body, what="set run status")

    # ---------------------------------------------------------------- driver lease
    def acquire_driver_lease(self, run_id: str, owner: str, seconds: float, force: bool = False,
                             takeover: bool = False) -> bool:
        """Become the run's one driver for `seconds` (database clock). True if the lease was free
        (never taken or released) or already `owner`'s; an expired lease of another owner only
        with `force` (`nas resume --force`). `takeover`: the caller holds the run's liveness token
        (store.driver_token), so whoever holds the lease is dead or cut off: take it, live or not;
        that driver's next fenced write (renew_driver_lease) fails."""

        def body(conn: Connection) -> bool:
            now = self._now()
            takeable = sa.or_(R.c.driver_owner.is_(None), R.c.driver_owner == owner)
            if takeover:
                takeable = sa.true()
            elif force:
                takeable = sa.or_(takeable, R.c.driver_lease_expires_at < now)
            updated = conn.execute(sa.update(R).where(R.c.id == run_id, takeable).values(
                driver_owner=owner, driver_lease_expires_at=now + float(seconds), updated_at=now)).rowcount
            if updated == 0 and conn.execute(sa.select(R.c.id).where(R.c.id == run_id)).first() is None:
                raise self._run_not_found(conn, run_id)
            return updated == 1

        return self._write(body, what="acquire driver lease")

    def renew_driver_lease(self, run_id: str, owner: str, seconds: float) -> bool:
        """Extend `owner`'s lease; False if someone else holds it now (stop driving). Called inside
        a driver step's transaction it is the step's fence: on PostgreSQL the row lock it takes
        orders it against a takeover, so a paused driver never writes after one."""

        def body(conn: Connection) -> bool:
            now = self._now()
            return conn.execute(sa.update(R).where(R.c.id == run_id, R.c.driver_owner == owner).values(
                driver_lease_expires_at=now + float(seconds))).rowcount == 1

        return self._write(body, what="renew driver lease")

    def release_driver_lease(self, run_id: str, owner: str) -> bool:
        """Give the lease up (clean exit) so `nas resume` can take it without --force."""
        return self._write(lambda conn: conn.execute(
            sa.update(R).where(R.c.id == run_id, R.c.driver_owner == owner).values(
                driver_owner=None, driver_lease_expires_at=None)).rowcount == 1, what="release driver lease")

    # ---------------------------------------------------------------- individuals, islands, migrations
    def add_individuals(self, run_id: str, individuals: Sequence[NewIndividual]) -> list[int]:
        """Record children; returns their ids in order. Idempotent on (run_id, island, generation,
        slot): a slot already recorded keeps its row and returns its id."""
        individuals = list(individuals)
        if not individuals:
            return []

        def body(conn: Connection) -> list[int]:
            if conn.execute(self._step_statements().run_exists, {"b_run_id": run_id}).first() is None:
                raise self._run_not_found(conn, run_id)
            generations = sorted({item.generation for item in individuals})
            existing = self._slot_ids(conn, run_id, generations)
            now = self._now_value(conn)
            rows = [{
                "run_id": run_id, "island": item.island, "generation": item.generation, "slot": item.slot,
                "genome": item.genome, "genome_hash": item.genome_hash, "parents_json": json.dumps(list(item.parents)),
                "operator": item.operator, "age": item.age, "alive": True, "created_at": now,
            } for item in individuals if (item.island, item.generation, item.slot) not in existing]
            unique_rows = list({(r["island"], r["generation"], r["slot"]): r for r in rows}.values())
            if unique_rows:
                inserted = conn.execute(self._step_statements().insert_individuals, unique_rows)
                existing.update(zip(((r["island"], r["generation"], r["slot"]) for r in unique_rows),
                                    inserted.scalars().all()))
            return [existing[(item.island, item.generation, item.slot)] for item in individuals]

        return self._write(body, what="add individuals")

    def _slot_ids(self, conn: Connection, run_id: str, generations: list[int]) -> dict[tuple[int, int, int], int]:
        rows = conn.execute(self._step_statements().slot_ids, {"b_run_id": run_id, "b_generations": generations})
        return {(row.island, row.generation, row.slot): row.id for row in rows}

    def individuals(self, run_id: str, *, alive: bool | None = None, island: int | None = None) -> list[IndividualInfo]:
        """The run's individuals in id order, optionally only alive/replaced ones or one island."""

        def body(conn: Connection) -> list[IndividualInfo]:
            query = sa.select(I).where(I.c.run_id == run_id)
            if alive is not None:
                query = query.where(I.c.alive == alive)
            if island is not None:
                query = query.where(I.c.island == island)
            return [convert.individual_info(row) for row in conn.execute(query.order_by(I.c.id))]

        return self._read(body, what="read individuals")

    def mark_replaced(self, individual_ids: Sequence[int], generation: int) -> int:
        """Mark individuals as no longer alive (replaced in `generation`). Returns rows changed."""
        ids = list(individual_ids)
        if not ids:
            return 0
        return self._write(lambda conn: conn.execute(self._step_statements().mark_replaced, {
            "b_individual_ids": ids, "b_generation": generation}).rowcount, what="mark replaced")

    def set_island_generation(self, run_id: str, island: int, generation: int) -> None:
        """Record how far an island has got (for migration barriers and progress)."""
        self.set_island_generations(run_id, {island: generation})

    def set_island_generations(self, run_id: str, generations: Mapping[int, int]) -> None:
        """set_island_generation for several islands, in one transaction."""
        if not generations:
            return

        def body(conn: Connection) -> None:
            now = self._now_value(conn)
            conn.execute(self._step_statements().upsert_island_generation, [
                {"run_id": run_id, "island": island, "generation": generation, "updated_at": now}
                for island, generation in generations.items()])

        self._write(body, what="set island generations")

    def islands(self, run_id: str) -> list[IslandInfo]:
        return self._read(lambda conn: [
            IslandInfo(run_id=row.run_id, island=row.island, generation=row.generation, updated_at=row.updated_at)
            for row in conn.execute(sa.select(ISL).where(ISL.c.run_id == run_id).order_by(ISL.c.island))],
            what="read islands")

    def record_migration(self, run_id: str, generation: int, from_island: int, to_island: int,
                         individual_id: int) -> None:
        def body(conn: Connection) -> None:
            conn.execute(sa.insert(MIG).values(run_id=run_id, generation=generation, from_island=from_island,
                                               to_island=to_island, individual_id=individual_id,
                                               created_at=self._now_value(conn)))

        self._write(body, what="record migration")

    def migrations(self, run_id: str) -> list[Migration]:
        return self._read(lambda conn: [
            Migration(run_id=row.run_id, generation=row.generation, from_island=row.from_island,
                      to_island=row.to_island, individual_id=row.individual_id, created_at=row.created_at)
            for row in conn.execute(sa.select(MIG).where(MIG.c.run_id == run_id).order_by(MIG.c.id))],
            what="read migrations")

    # ---------------------------------------------------------------- workers
    def register_worker(self, worker_id: str, *, host: str, pid: int, device: str) -> WorkerInfo:
        """Record (or re-record) a worker; its task counters survive a re-registration."""

        def body(conn: Connection) -> WorkerInfo:
            now = self._now_value(conn)
            values = dict(host=host, pid=int(pid), device=device, started_at=now, last_seen_at=now)
            if not conn.execute(sa.update(W).where(W.c.id == worker_id).values(**values)).rowcount:
                conn.execute(sa.insert(W).values(id=worker_id, tasks_done=0, tasks_failed=0, **values))
            return _worker_info(conn.execute(sa.select(W).where(W.c.id == worker_id)).one())

        return self._write(body, what="register worker")

    def worker_seen(self, worker_id: str, *, tasks_done: int | None = None, tasks_failed: int | None = None) -> bool:
        """Stamp the worker's last_seen_at (database clock) and, when given, set its task counts (the
        worker's own totals: a retried write changes nothing). False if it was never registered.
        complete() does not count: a worker checks its counts in every few seconds and when it exits."""
        counts = {name: value for name, value in (("tasks_done", tasks_done), ("tasks_failed", tasks_failed))
                  if value is not None}
        return self._write(lambda conn: conn.execute(sa.update(W).where(W.c.id == worker_id).values(
            last_seen_at=self._now(), **counts)).rowcount == 1, what="worker seen")

    def workers(self) -> list[WorkerInfo]:
        """Every registered worker, most recently seen first."""
        return self._read(lambda conn: [_worker_info(row) for row in
                                        conn.execute(sa.select(W).order_by(W.c.last_seen_at.desc(), W.c.id))],
                          what="read workers")

    # ---------------------------------------------------------------- events
    def append_event(self, run_id: str, kind: str, payload: dict[str, Any]) -> int:
        """Append to the run's ordered event log; returns its sequence number (1, 2, ...)."""
        payload_json = json.dumps(payload, sort_keys=True, default=str)

        def body(conn: Connection) -> int:
            sql = self._step_statements()
            seq = conn.execute(sql.take_event_seq, {"b_run_id": run_id}).scalar_one_or_none()
            if seq is None:
                raise self._run_not_found(conn, run_id)
            conn.execute(sql.insert_event, {"run_id": run_id, "seq": seq, "kind": kind, "payload_json": payload_json,
                                            "created_at": self._now_value(conn)})
            return seq

        return self._write(body, what="append event")

    def events(self, run_id: str, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """The run's events with seq > after_seq, in order."""

        def body(conn: Connection) -> list[Event]:
            query = sa.select(EV).where(EV.c.run_id == run_id, EV.c.seq > after_seq).order_by(EV.c.seq)
            if limit is not None:
                query = query.limit(limit)
            return [Event(seq=row.seq, run_id=row.run_id, kind=row.kind, payload=json.loads(row.payload_json),
                          created_at=row.created_at) for row in conn.execute(query)]

        return self._read(body, what="read events")


def _new_run_id() -> str:
    return f"r-{secrets.token_hex(3)}"


def _worker_info(row: Any) -> WorkerInfo:
    return WorkerInfo(id=row.id, host=row.host, pid=row.pid, device=row.device, started_at=row.started_at,
                      last_seen_at=row.last_seen_at, tasks_done=row.tasks_done, tasks_failed=row.tasks_failed)
