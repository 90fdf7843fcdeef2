"""One database: its engine, transactions and unit of work, its clock, and the one statement executor.

Every repository of the store (queue, runs, population, events, workers, reports) runs its SQL
through one Database:

    db.write(body, what="claim")           # body(conn) in one write transaction, retried when transient
    db.read(body, what="read run")         # ... in a read transaction
    db.atomically(work, what="step")       # several repository calls as ONE transaction (unit of work)
    db.execute(conn, sql.heartbeat, evaluation_id=7, attempt=2, lease=120.0)

Statements are named (`Statement`): the name is also the file that shows the statement's SQL per
dialect, nascli/store/sql/<dialect>/<name>.sql. Binding has one convention: a statement's bind
parameters are called `b_<name>` (SQLAlchemy would take a parameter named like a column for a SET
value), callers pass plain names, and `bind` prefixes them and adds the test clock's `now`.
The executor picks the path from the statement: `dbapi=True` statements (a worker's cycle) run on
the DB-API connection, compiled once (see dbapi.py); the others (lists bound as expanding `IN`,
many-row inserts) through SQLAlchemy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from nascli.store.dbapi import DbapiExecutor, SqlStatement
from nascli.store.engine import DEFAULT_RETRY_SECONDS, Transactions, db_now_sql

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Statement:
    """A statement built once, with bind parameters named `b_<name>`.

    `name`: its file under nascli/store/sql/<dialect>/ (tests/unit/test_store_sql_files.py keeps
    them in step). `dbapi`: run it on the DB-API connection (a hot, fixed-shape statement) instead
    of through SQLAlchemy."""

    name: str
    sql: SqlStatement
    dbapi: bool = False
    doc: str = ""  # one line saying what it does: the file's header


def param(name: str, type_: Any = None) -> sa.BindParameter[Any]:
    """A bind parameter of a named statement, by the binding convention (`b_` + name)."""
    return sa.bindparam(f"b_{name}", type_=type_)


def list_param(name: str) -> sa.BindParameter[Any]:
    """A list bound as `IN (...)` (expanding: one statement serves any length)."""
    return sa.bindparam(f"b_{name}", expanding=True)


class Rows(Protocol):
    """What the store reads from an executed statement (a CursorResult or a DbapiResult)."""

    @property
    def rowcount(self) -> int: ...

    def first(self) -> Any: ...

    def all(self) -> Sequence[Any]: ...

    def scalar_one(self) -> Any: ...

    def scalar_one_or_none(self) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


class Database:
    """One database. Thread-safe (a pool of connections); after a fork, open a new one."""

    def __init__(self, engine: Engine, url_display: str, *, retry_seconds: float = DEFAULT_RETRY_SECONDS,
                 clock: Callable[[], float] | None = None) -> None:
        self.engine = engine
        self.url_display = url_display  # password masked: safe to print and log
        self.backend: str = engine.dialect.name  # 'sqlite' or 'postgresql'
        self.transactions = Transactions(engine, url_display, retry_seconds)
        self.clock = clock  # tests only: replaces the database clock
        self.dbapi = DbapiExecutor(engine.dialect)
        self._unit = threading.local()  # .connection and .now: the transaction of an atomically() call

    # ---------------------------------------------------------------- transactions
    def write(self, body: Callable[[Connection], T], *, what: str, single_statement: bool = False) -> T:
        """`body(conn)` in one write transaction (or inside the current unit of work).
        `single_statement`: body's statements are each atomic alone, so PostgreSQL runs them
        without BEGIN/COMMIT on a held connection (see Transactions.run)."""
        connection = self._unit_connection()
        if connection is not None:
            return body(connection)
        return self.transactions.run(body, write=True, what=what, single_statement=single_statement)

    def read(self, body: Callable[[Connection], T], *, what: str) -> T:
        connection = self._unit_connection()
        if connection is not None:
            return body(connection)
        return self.transactions.run(body, write=False, what=what)

    def atomically(self, work: Callable[[], T], *, what: str) -> T:
        """Run `work` - repository calls on this database, from this thread - as ONE transaction: one
        commit, all or nothing (the driver's unit of work per step: a commit is an fsync on SQLite).
        After a transient error the whole of `work` runs again, so it must do nothing but call the
        store and return what it read."""

        def body(connection: Connection) -> T:
            self._unit.connection, self._unit.now = connection, None
            try:
                return work()
            finally:
                self._unit.connection = None

        if self._unit_connection() is not None:
            return work()  # already inside one
        return self.transactions.run(body, write=True, what=what)

    def _unit_connection(self) -> Connection | None:
        connection: Connection | None = getattr(self._unit, "connection", None)
        return connection

    def close(self) -> None:
        self.transactions.close_held()
        self.engine.dispose()

    # ---------------------------------------------------------------- clock
    def now_param(self) -> sa.ColumnElement[float]:
        """The clock inside a statement built once: the database's, or `b_now` under a test clock."""
        if self.clock is not None:
            return sa.bindparam("b_now", type_=sa.Float)
        return db_now_sql(self.backend)

    def now_sql(self) -> sa.ColumnElement[float]:
        """The clock inside a statement built for one call."""
        if self.clock is not None:
            return sa.literal(float(self.clock()), sa.Float)
        return db_now_sql(self.backend)

    def now_value(self, conn: Connection) -> float:
        """The clock's reading; taken once per unit of work (atomically), which stamps all its rows alike."""
        in_unit = self._unit_connection() is conn
        if in_unit and self._unit.now is not None:
            now: float = self._unit.now
            return now
        now = float(conn.execute(sa.select(self.now_sql())).scalar_one())
        if in_unit:
            self._unit.now = now
        return now

    # ---------------------------------------------------------------- the executor
    def bind(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters of a named statement by the convention: `b_` + name, plus `now` under a test clock."""
        bound = {f"b_{name}": value for name, value in params.items()}
        if self.clock is not None:
            bound["b_now"] = float(self.clock())
        return bound

    def execute(self, conn: Connection, statement: Statement, /, **params: Any) -> Rows:
        """Run one named statement with one set of parameters, on the path the statement names."""
        if statement.dbapi:
            return self.dbapi.execute(conn, statement.name, statement.sql, self.bind(params))
        result: Rows = conn.execute(statement.sql, self.bind(params))
        return result

    def execute_many(self, conn: Connection, statement: Statement, rows: Sequence[Mapping[str, Any]]) -> Rows:
        """Run a named statement once per row (an INSERT of many rows: SQLAlchemy's insertmanyvalues,
        RETURNING in the rows' order)."""
        result: Rows = conn.execute(statement.sql, [{f"b_{name}": value for name, value in row.items()}
                                                    for row in rows])
        return result

    def execute_pipelined(self, conn: Connection, calls: Sequence[tuple[Statement, Mapping[str, Any]]]) -> list[Rows]:
        """PostgreSQL: `dbapi` statements in one round trip and one implicit transaction (see
        DbapiExecutor.execute_pipelined)."""
        return list(self.dbapi.execute_pipelined(
            conn, [(statement.name, statement.sql, self.bind(params)) for statement, params in calls]))

    def prepare(self, statements: Sequence[Statement]) -> None:
        """Compile these `dbapi` statements now rather than at their first use. A worker does this
        before it waits for work: compiling its one-statement finish alone takes ~10 ms of CPU, which
        a fleet of workers started together would otherwise spend all at once, results waiting."""
        for statement in statements:
            if statement.dbapi:
                self.dbapi.prepare(statement.name, statement.sql)


def insert_rows(table: sa.Table, columns: Sequence[str]) -> sa.Insert:
    """INSERT INTO table (columns) VALUES (:b_column, ...), by the binding convention."""
    return sa.insert(table).values({name: param(name, table.c[name].type) for name in columns})


def chunks(items: Sequence[T], size: int = 500) -> Iterator[Sequence[T]]:
    """Long id lists in pieces (SQLite binds at most 32766 parameters per statement)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]
