"""Named statements run on the DB-API connection (sqlite3 / psycopg) under SQLAlchemy's transaction.

A worker's claim and complete cost a few microseconds of Python per statement this way instead of
~50 us through SQLAlchemy's execution layer (compiled-cache lookup, parameter processing, result
metadata). On SQLite that time is spent holding the single write lock, so it bounds the whole
queue's throughput; on PostgreSQL it is most of a worker's CPU per task (psycopg also prepares a
statement server-side after its fifth run). Each statement is compiled once, cached by its name.
Errors come out as SQLAlchemy's DBAPIError and a lost connection is invalidated, as SQLAlchemy's
own execute does, so Transactions classifies and retries them as usual.
"""

from __future__ import annotations

import collections
import contextlib
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

SqlStatement = sa.Select[Any] | sa.Update | sa.Insert | sa.Delete  # what a named statement holds


@dataclass(frozen=True)
class Compiled:
    sql: str
    positions: tuple[str, ...]  # bind names in placeholder order (qmark, sqlite3); empty for psycopg
    defaults: dict[str, Any]


class DbapiResult:
    """The little of a CursorResult the store uses: rows with attribute access, and rowcount."""

    __slots__ = ("rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self.rows, self.rowcount = rows, rowcount

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def all(self) -> Sequence[Any]:
        return self.rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    def scalar_one(self) -> Any:
        (row,) = self.rows
        return row[0]

    def scalar_one_or_none(self) -> Any:
        return self.rows[0][0] if self.rows else None


class DbapiExecutor:
    """Compiles named statements once and runs them on the DB-API connection of a SQLAlchemy Connection."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._dbapi_error: type[Exception] = dialect.loaded_dbapi.Error  # sqlite3.Error / psycopg.Error
        self._compiled: dict[str, Compiled] = {}
        self._row_types: dict[str, type | None] = {}

    def compiled_names(self) -> frozenset[str]:
        """The statements compiled so far (what prepare() did, what a test checks)."""
        return frozenset(self._compiled)

    def prepare(self, name: str, statement: SqlStatement) -> None:
        self._compiled_form(name, statement)

    def execute(self, conn: Connection, name: str, statement: SqlStatement, params: dict[str, Any]) -> DbapiResult:
        sql, values = self._bound(name, statement, params)
        dbapi_connection = _dbapi_connection(conn)
        with self._errors(conn, sql, values):
            return self._result(name, dbapi_connection.execute(sql, values))

    def execute_pipelined(self, conn: Connection,
                          calls: Sequence[tuple[str, SqlStatement, dict[str, Any]]]) -> list[DbapiResult]:
        """PostgreSQL: several statements in one round trip (psycopg pipeline mode) and ONE implicit
        transaction: on an autocommit connection the pipeline's single Sync commits them together,
        and an error in any of them rolls all of them back. The connection must not be inside a
        transaction."""
        dbapi_connection = _dbapi_connection(conn)
        bound = [self._bound(name, statement, params) for name, statement, params in calls]
        with self._errors(conn, *bound[0]):
            with dbapi_connection.pipeline():
                cursors = [dbapi_connection.execute(sql, values) for sql, values in bound]
            return [self._result(name, cursor) for (name, _, _), cursor in zip(calls, cursors)]

    def _compiled_form(self, name: str, statement: SqlStatement) -> Compiled:
        compiled = self._compiled.get(name)
        if compiled is None:
            done = statement.compile(dialect=self.dialect)
            compiled = self._compiled[name] = Compiled(done.string, tuple(done.positiontup or ()), dict(done.params))
        return compiled

    def _bound(self, name: str, statement: SqlStatement, params: dict[str, Any]) -> tuple[str, Any]:
        """The statement's SQL and its values in the DB-API module's style: positional in the
        compiled order (sqlite3, qmark) or by name (psycopg, pyformat)."""
        compiled = self._compiled_form(name, statement)
        if compiled.positions:
            return compiled.sql, tuple(params[key] if key in params else compiled.defaults[key]
                                       for key in compiled.positions)
        return compiled.sql, {key: params.get(key, default)
                              for key, default in compiled.defaults.items()}

    @contextlib.contextmanager
    def _errors(self, conn: Connection, sql: str, values: Any) -> Iterator[None]:
        dbapi_connection = _dbapi_connection(conn)
        try:
            yield
        except self._dbapi_error as error:
            lost = self.dialect.is_disconnect(error, dbapi_connection, None)  # type: ignore[arg-type]
            if lost:
                conn.invalidate(error)
            raise sa.exc.DBAPIError.instance(sql, values, error, self._dbapi_error,
                                             connection_invalidated=lost) from error

    def _result(self, name: str, cursor: Any) -> DbapiResult:
        # A statement's result shape never changes: read the cursor's description once per statement
        # (psycopg builds a Column object per column on every access).
        if name in self._row_types:
            row_type = self._row_types[name]
        else:
            description = cursor.description
            row_type = self._row_types[name] = (
                _row_type(tuple(column[0] for column in description)) if description else None)
        if row_type is None:
            return DbapiResult([], cursor.rowcount)
        return DbapiResult([row_type(*row) for row in cursor.fetchall()], cursor.rowcount)


def _dbapi_connection(conn: Connection) -> Any:
    """The sqlite3 / psycopg connection under a SQLAlchemy Connection."""
    return conn.connection.driver_connection


@functools.lru_cache(maxsize=64)
def _row_type(columns: tuple[str, ...]) -> type:
    return collections.namedtuple("Row", columns, rename=True)
