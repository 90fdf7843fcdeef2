"""The queue's hot statements, built once per Store with bind parameters.

Building a SQLAlchemy statement costs far more than running it on SQLite (~0.8 ms vs ~0.1 ms on
this machine), and a worker runs these in a loop, so claim/heartbeat/complete/release reuse these.
`now` is the database clock expression (or, under a test clock, the bind parameter `b_now`).
Bind parameters are prefixed `b_`: SQLAlchemy would treat a parameter named like a column as a
SET value for it.
"""

from __future__ import annotations

import collections
import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from nascli.store.models import RESULT_COLUMNS, EvaluationRow, RunRow
from nascli.store.notify import RESULT_CHANNEL
from nascli.store.records import TERMINAL_RUN_STATUSES

E = EvaluationRow.__table__
R = RunRow.__table__

CLAIM_COLUMNS = (E.c.id, E.c.attempt, E.c.task_json, E.c.run_id, E.c.lease_expires_at)


def _fence() -> tuple[sa.ColumnElement[bool], ...]:
    return (E.c.id == sa.bindparam("b_evaluation_id"), E.c.attempt == sa.bindparam("b_attempt"), E.c.status == "running")


def _fair_run() -> sa.ScalarSelect:
    """The run whose pending work an unpinned worker should take: the highest pending priority,
    then the FEWEST RUNNING evaluations, then a random one of those tied. Runs sharing a pool so
    get equal numbers of workers whatever their queue lengths or enqueue order, and a lone worker
    alternates between runs at random (a lottery: fair in expectation, no state to keep). Every
    subquery is a probe of ix_evaluation_run_claim (run_id, status, ...). Runs that are finished,
    failed or cancelled are not considered (leftovers still go, via the fallback, when nothing
    else waits)."""
    pending, running = E.alias("run_pending"), E.alias("run_running")
    top_priority = (sa.select(pending.c.priority).where(pending.c.run_id == R.c.id, pending.c.status == "pending")
                    .order_by(pending.c.priority.desc()).limit(1).scalar_subquery().correlate(R))
    in_flight = (sa.select(sa.func.count()).select_from(running)
                 .where(running.c.run_id == R.c.id, running.c.status == "running").scalar_subquery().correlate(R))
    # three comparisons, not NOT IN (...): an expanding IN cannot be compiled once and reused raw
    live = sa.and_(*(R.c.status != status for status in TERMINAL_RUN_STATUSES))
    return (sa.select(R.c.id).where(live, top_priority.is_not(None))
            .order_by(top_priority.desc(), in_flight, sa.func.random()).limit(1).scalar_subquery())


def _finish_in_one(finish: sa.Update) -> sa.Select:
    """PostgreSQL: the whole of a finishing complete() as ONE statement (no transaction, one round
    trip): lock the held row (fence), take the run's next completion seq (locking the run row, so
    one run's completions commit in seq order), finish the row, notify the driver. Returns the run
    id, or no row when the claim was lost. A data-modifying CTE runs whether or not it is
    referenced, and all of them see one snapshot; `held` locks first. The worker row is not
    touched: a worker checks its counts in itself (Store.worker_seen), because a worker-row update
    in every finish costs 15-20 % of PostgreSQL's throughput at 8 workers."""
    held = sa.select(E.c.id, E.c.run_id).where(*_fence()).with_for_update().cte("held")
    next_seq = (sa.update(R).where(R.c.id == sa.select(held.c.run_id).scalar_subquery())
                .values(completion_counter=R.c.completion_counter + 1).returning(R.c.completion_counter)
                .cte("next_seq"))
    finished = (finish.where(E.c.id == sa.select(held.c.id).scalar_subquery())
                .values(seq=sa.select(next_seq.c.completion_counter).scalar_subquery(),
                        failures=E.c.failures + sa.bindparam("b_failed", type_=sa.Integer))
                .returning(E.c.run_id).cte("finished"))
    return sa.select(finished.c.run_id, sa.func.pg_notify(RESULT_CHANNEL, finished.c.run_id))


class QueueStatements:
    def __init__(self, now: sa.ColumnElement[float]) -> None:
        lease = sa.bindparam("b_lease", type_=sa.Float)
        claim_values = dict(status="running", worker_id=sa.bindparam("b_worker_id"), attempt=E.c.attempt + 1,
                            claimed_at=now, heartbeat_at=now, lease_expires_at=now + lease,
                            started_at=sa.func.coalesce(E.c.started_at, now))
        expired = (sa.select(E.c.id, E.c.run_id, E.c.lease_expiries, E.c.max_lease_expiries)
                   .where(E.c.status == "running", E.c.lease_expires_at < now))
        # [all runs, one run]; SKIP LOCKED is PostgreSQL's, SQLite's compiler leaves it out
        self.expired_all = [q.order_by(E.c.id).with_for_update(skip_locked=True)
                            for q in (expired, expired.where(E.c.run_id == sa.bindparam("b_run_id")))]
        # The claim is ONE statement (one round trip; a single statement needs no transaction on
        # PostgreSQL): the row is the first of (an expired lease - its holder is presumed dead;
        # [one run:] the run's next pending row | [all runs:] the fair run's next pending row
        # (see _fair_run), else any run's - when SKIP LOCKED leaves nothing in the fair run).
        # COALESCE evaluates the probes lazily, each an index probe. A row whose lease expiries
        # are spent is claimed too and the caller fails it (fenced) at once: no sweeper needed.
        expired_id = (sa.select(E.c.id).where(E.c.status == "running", E.c.lease_expires_at < now)
                      .order_by(E.c.lease_expires_at).limit(1).with_for_update(skip_locked=True))
        pending = sa.select(E.c.id).where(E.c.status == "pending")
        in_order = (E.c.priority.desc(), E.c.id)
        pending_ids = [  # [all runs: fair run, any run], [one run]
            [pending.where(E.c.run_id == _fair_run()), pending],
            [pending.where(E.c.run_id == sa.bindparam("b_run_id"))],
        ]
        claimable = sa.or_(E.c.status == "pending", sa.and_(E.c.status == "running", E.c.lease_expires_at < now))
        self.claim = []
        for variant, candidates in enumerate(pending_ids):
            probe = expired_id if variant == 0 else expired_id.where(E.c.run_id == sa.bindparam("b_run_id"))
            target = sa.func.coalesce(probe.scalar_subquery(), *(
                query.order_by(*in_order).limit(1).with_for_update(skip_locked=True).scalar_subquery()
                for query in candidates))
            self.claim.append(
                sa.update(E).where(E.c.id == target, claimable)
                .values(lease_expiries=E.c.lease_expiries + sa.case((E.c.status == "running", 1), else_=0),
                        **claim_values)
                .returning(*CLAIM_COLUMNS, E.c.lease_expiries, E.c.max_lease_expiries))
        self.heartbeat = sa.update(E).where(*_fence()).values(heartbeat_at=now, lease_expires_at=now + lease)
        self.held = (sa.select(E.c.run_id, E.c.failures, E.c.max_attempts)
                     .where(*_fence()).with_for_update())
        settle = dict(failures=sa.bindparam("b_failures"), settled_attempt=sa.bindparam("b_attempt"),
                      settled_by="result", lease_expires_at=None)
        self.requeue = sa.update(E).where(*_fence()).values(
            status="pending", worker_id=None, error_kind=sa.bindparam("b_error_kind"),
            error_message=sa.bindparam("b_error_message"), **settle)
        result_values = {name: sa.bindparam(f"b_v_{name}") for name in
                         (*RESULT_COLUMNS, "error_kind", "error_message", "extra_json")}
        self.finish = sa.update(E).where(*_fence()).values(
            status=sa.bindparam("b_status"), seq=sa.bindparam("b_seq"), finished_at=now, **result_values, **settle)
        self.release = sa.update(E).where(*_fence()).values(
            status="pending", worker_id=None, lease_expires_at=None, releases=E.c.releases + 1,
            settled_attempt=sa.bindparam("b_attempt"), settled_by="release").returning(E.c.run_id)
        self.settled = (sa.select(E.c.settled_attempt, E.c.settled_by, E.c.attempt, E.c.status)
                        .where(E.c.id == sa.bindparam("b_evaluation_id")))
        # taking a seq locks the run row until commit: completions of one run commit in seq order
        self.next_seq = (sa.update(R).where(R.c.id == sa.bindparam("b_run_id"))
                         .values(completion_counter=R.c.completion_counter + 1).returning(R.c.completion_counter))
        self.finish_in_one = _finish_in_one(self.finish)
        self.fail_timeout = sa.update(E).where(E.c.id == sa.bindparam("b_evaluation_id"), E.c.status == "running").values(
            status="failed", lease_expiries=sa.bindparam("b_lease_expiries"), seq=sa.bindparam("b_seq"), finished_at=now,
            lease_expires_at=None, error_kind="timeout", error_message=sa.bindparam("b_error_message"))
        self.fail_exhausted = sa.update(E).where(*_fence()).values(
            status="failed", seq=sa.bindparam("b_seq"), finished_at=now, lease_expires_at=None, error_kind="timeout",
            error_message=sa.bindparam("b_error_message"), settled_attempt=sa.bindparam("b_attempt"),
            settled_by="result")
        self.requeue_expired = sa.update(E).where(E.c.id == sa.bindparam("b_evaluation_id"), E.c.status == "running").values(
            status="pending", worker_id=None, lease_expires_at=None, lease_expiries=E.c.lease_expiries + 1)

    def every_statement(self) -> list[sa.Executable]:
        """All of the above (each attribute is a statement or a list of variants): what a worker may
        run, to compile up front (see RawStatements.prepare). Derived, so a new statement is included."""
        found: list[sa.Executable] = []
        for value in vars(self).values():
            found.extend(value if isinstance(value, list) else [value])
        return found


_UNKNOWN = object()


class RawResult:
    """The little of a CursorResult the queue uses: rows with attribute access, and rowcount."""

    __slots__ = ("rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self.rows, self.rowcount = rows, rowcount

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def scalar_one(self) -> Any:
        (row,) = self.rows
        return row[0]


class RawStatements:
    """Runs QueueStatements on the driver's own connection, inside the caller's SQLAlchemy connection.

    Each statement is compiled once; a worker's claim/complete then costs a few microseconds of
    Python per statement instead of ~50 us through SQLAlchemy's execution layer (compiled-cache
    lookup, parameter processing, result metadata). On SQLite that time is spent holding the
    single write lock, so it bounds the whole queue's throughput; on PostgreSQL it is most of a
    worker's CPU per task (psycopg also prepares a statement server-side after its fifth run).
    Errors come out as SQLAlchemy's DBAPIError, and a lost connection is invalidated, as
    SQLAlchemy's own execute would do, so Transactions classifies and retries them as usual.
    """

    def __init__(self, dialect: sa.engine.Dialect) -> None:
        self.dialect = dialect
        self._driver_error = dialect.loaded_dbapi.Error  # sqlite3.Error / psycopg.Error
        self._compiled: dict[int, tuple[str, tuple[str, ...], dict[str, Any], Any]] = {}
        self._row_types: dict[int, type | None] = {}  # keyed like _compiled, whose entries keep the ids valid

    def execute(self, conn: sa.engine.Connection, statement: sa.Executable, params: dict[str, Any]) -> RawResult:
        sql, values = self._bound(statement, params)
        with self._errors(conn, sql, values):
            return self._result(statement, conn.connection.driver_connection.execute(sql, values))

    def execute_pipelined(self, conn: sa.engine.Connection,
                          calls: list[tuple[sa.Executable, dict[str, Any]]]) -> list[RawResult]:
        """PostgreSQL: several statements in one round trip (psycopg pipeline mode) and ONE implicit
        transaction: on an autocommit connection the pipeline's single Sync commits them together,
        and an error in any of them rolls all of them back. The connection must not be inside a
        transaction."""
        driver = conn.connection.driver_connection
        bound = [self._bound(statement, params) for statement, params in calls]
        with self._errors(conn, *bound[0]):
            with driver.pipeline():
                cursors = [driver.execute(sql, values) for sql, values in bound]
            return [self._result(statement, cursor) for (statement, _), cursor in zip(calls, cursors)]

    def prepare(self, statements: list[sa.Executable]) -> None:
        """Compile these statements now rather than at their first use. A worker does this before it
        waits for work: compiling its one-statement finish alone takes ~10 ms of CPU, which a fleet
        of workers started together would otherwise spend all at once, with results waiting."""
        for statement in statements:
            self._compiled_form(statement)

    def _compiled_form(self, statement: sa.Executable) -> tuple[str, tuple[str, ...], dict[str, Any], Any]:
        """(SQL, positional order, default values, the statement), compiled on first use."""
        compiled = self._compiled.get(id(statement))
        if compiled is None:
            done = statement.compile(dialect=self.dialect)
            compiled = self._compiled[id(statement)] = (done.string, tuple(done.positiontup or ()),
                                                        dict(done.params), statement)  # keeps the id valid
        return compiled

    def _bound(self, statement: sa.Executable, params: dict[str, Any]) -> tuple[str, Any]:
        """The statement's SQL and its values in the driver's style: positional in the compiled
        order (sqlite3, qmark) or by name (psycopg, pyformat)."""
        sql, order, defaults, _ = self._compiled_form(statement)
        if order:
            return sql, tuple(params[name] if name in params else defaults[name] for name in order)
        return sql, {name: params[name] if name in params else default for name, default in defaults.items()}

    @contextlib.contextmanager
    def _errors(self, conn: sa.engine.Connection, sql: str, values: Any) -> Iterator[None]:
        driver = conn.connection.driver_connection
        try:
            yield
        except self._driver_error as error:
            lost = self.dialect.is_disconnect(error, driver, None)
            if lost:
                conn.invalidate(error)
            raise sa.exc.DBAPIError.instance(sql, values, error, self._driver_error,
                                             connection_invalidated=lost) from error

    def _result(self, statement: sa.Executable, cursor: Any) -> RawResult:
        # A statement's result shape never changes: read the cursor's description once per statement
        # (psycopg builds a Column object per column on every access).
        row_type = self._row_types.get(id(statement), _UNKNOWN)
        if row_type is _UNKNOWN:
            description = cursor.description
            row_type = self._row_types[id(statement)] = (
                _row_type(tuple(column[0] for column in description)) if description else None)
        if row_type is None:
            return RawResult([], cursor.rowcount)
        return RawResult([row_type(*row) for row in cursor.fetchall()], cursor.rowcount)


@functools.lru_cache(maxsize=64)
def _row_type(columns: tuple[str, ...]) -> type:
    return collections.namedtuple("Row", columns, rename=True)
