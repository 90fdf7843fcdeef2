"""The store's named statements as SQL text, one file per statement and dialect: sql/<dialect>/<name>.sql.

The statements are built in Python (queue_sql.py, cache.py, runs.py, population.py, events.py,
weights.py); these files show what they compile to, so a reviewer reads the claim query in one file.
Literal values are inlined, bind parameters are `:b_<name>` (`IN (:b_ids)` binds a list), and the
clock is the database's (tests may swap it for a bind parameter). tests/unit/test_store_sql_files.py
fails when a file and its builder differ; `python -m nascli.store.sql` rewrites the files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from nascli.store import cache, events, population, queue_sql, runs, weights
from nascli.store.database import Statement
from nascli.store.dbapi import SqlStatement
from nascli.store.engine import db_now_sql

HERE = Path(__file__).resolve().parent
DIALECTS = ("sqlite", "postgresql")
_KEYWORDS = ("SET", "FROM", "WHERE", "ORDER BY", "LIMIT", "RETURNING", "VALUES", "ON CONFLICT", "GROUP BY",
             "SELECT", "UPDATE", "INSERT INTO", "FOR UPDATE")


def statements(dialect: str) -> list[Statement]:
    """Every named statement of the store, as built for `dialect` on the database clock."""
    now = db_now_sql(dialect)
    return [*queue_sql.build(now, dialect).every_statement(), *cache.build().every_statement(),
            *runs.build(now).every_statement(), *population.build(dialect).every_statement(),
            *events.build().every_statement(), *weights.build().every_statement()]


def _dialect(name: str) -> Dialect:
    if name == "sqlite":
        return sqlite.dialect(paramstyle="named")
    return postgresql.dialect(paramstyle="named")  # type: ignore[no-untyped-call]


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _column_defaults(sql: SqlStatement) -> dict[str, Any]:
    """An INSERT's columns the statement leaves to their defaults: SQLAlchemy binds the default."""
    if not isinstance(sql, sa.Insert):
        return {}
    table = sql.table
    assert isinstance(table, sa.Table)
    return {column.name: column.default.arg for column in table.c
            if isinstance(column.default, sa.ColumnDefault) and column.default.is_scalar}


def sql_text(statement: Statement, dialect: str) -> str:
    """The statement compiled for `dialect`, literal values inlined, as one line."""
    compiled = statement.sql.compile(dialect=_dialect(dialect))
    text = re.sub(r"\(__\[POSTCOMPILE_(\w+)\]\)", r"(:\1)", compiled.string)
    values = {**compiled.params, **_column_defaults(statement.sql)}
    for name, value in sorted(values.items(), key=lambda item: -len(item[0])):
        if not name.startswith("b_"):
            text = re.sub(rf":{re.escape(name)}\b", _literal(value).replace("\\", "\\\\"), text)
    return " ".join(text.split())


def render(statement: Statement, dialect: str) -> str:
    """The file's text: a header naming the statement, then its SQL laid out one clause a line."""
    header = f"-- {statement.name}: {statement.doc}\n" if statement.doc else f"-- {statement.name}\n"
    return header + _layout(sql_text(statement, dialect)) + ";\n"


def _layout(sql: str) -> str:
    """One clause a line and one SET assignment a line, indented by parenthesis depth (whitespace
    only: the SQL is unchanged)."""
    out: list[str] = []
    depth, quoted, i = 0, False, 0
    set_depth: int | None = None  # inside a SET list at this depth
    keywords = "|".join(k.replace(" ", r"\s") for k in _KEYWORDS)
    keyword = re.compile(rf"(?:{keywords})\b")
    while i < len(sql):
        char = sql[i]
        if char == "'":
            quoted = not quoted
        elif not quoted:
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
            elif char == "," and depth == set_depth and sql[i + 1:i + 2] == " ":
                out.append(",\n" + "    " * depth + "    ")
                i += 2
                continue
            elif char == " " and (match := keyword.match(sql, i + 1)) and not _glued(sql, i):
                set_depth = depth if match.group(0) == "SET" else (None if depth == set_depth else set_depth)
                out.append("\n" + "    " * depth)
                i += 1
                continue
        out.append(char)
        i += 1
    return "".join(out)


def _glued(sql: str, space: int) -> bool:
    """A keyword that belongs to the word before it (`EXTRACT(EPOCH FROM ...)`, `FOR UPDATE`) or
    opens a parenthesis (`(SELECT`)."""
    before = sql[:space]
    return before.endswith("(") or before.endswith("EPOCH") or before.endswith("FOR") or before.endswith("DO")


def path_of(statement: Statement, dialect: str) -> Path:
    return HERE / dialect / f"{statement.name}.sql"


def write_all() -> list[Path]:
    written = []
    for dialect in DIALECTS:
        (HERE / dialect).mkdir(exist_ok=True)
        for stale in (HERE / dialect).glob("*.sql"):
            stale.unlink()
        for statement in statements(dialect):
            path = path_of(statement, dialect)
            path.write_text(render(statement, dialect))
            written.append(path)
    return written

