"""The schema: create it (nas init; idempotent, safe from several processes at once) or check its version."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from nascli.errors import StoreError
from nascli.store.database import Database
from nascli.store.models import SCHEMA_VERSION, metadata
from nascli.store.tables import META, WEIGHTS

_SCHEMA_LOCK_KEY = 0x6E617363  # pg_advisory_xact_lock key serialising schema creation: 'nasc'
_INIT_HINT = "run `nas init --db URL` first"


def init_schema(db: Database) -> bool:
    """Create the tables and the version row if absent; check the version if present.
    Idempotent and safe to run from several processes at once. True if it created them."""

    def body(conn: Connection) -> bool:
        if db.backend == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
        version = _schema_version(db, conn)
        if version is not None:
            _require_version(db, version)
            metadata.create_all(conn, tables=[WEIGHTS])  # added to version 1: created if absent
            return False
        foreign = set(sa.inspect(conn).get_table_names()) & set(metadata.tables)
        if foreign:
            raise StoreError(f"{db.url_display} has tables named like nascli's ({', '.join(sorted(foreign))}) "
                             "but no nascli version row", hint="use an empty database for nascli")
        metadata.create_all(conn)
        conn.execute(sa.insert(META).values(key="schema_version", value=str(SCHEMA_VERSION)))
        return True

    return db.write(body, what="create schema")


def check_schema(db: Database) -> int:
    """The schema version, after checking it is this nascli's. StoreError if absent or other."""

    def body(conn: Connection) -> int:
        version = _schema_version(db, conn)
        if version is None:
            raise StoreError(f"{db.url_display} holds no nascli schema", hint=_INIT_HINT)
        _require_version(db, version)
        return version

    return db.read(body, what="check schema")


def _schema_version(db: Database, conn: Connection) -> int | None:
    if not sa.inspect(conn).has_table(META.name):
        return None
    value = conn.execute(sa.select(META.c.value).where(META.c.key == "schema_version")).scalar_one_or_none()
    if value is None:
        raise StoreError(f"{db.url_display} has a nascli_meta table without a schema version",
                         hint="use a fresh database or run `nas init` on an empty one")
    try:
        return int(value)
    except ValueError:
        raise StoreError(f"{db.url_display}: unreadable schema version {value!r}") from None


def _require_version(db: Database, version: int) -> None:
    if version != SCHEMA_VERSION:
        newer = "a newer" if version > SCHEMA_VERSION else "an older"
        raise StoreError(f"{db.url_display} has schema version {version}, written by {newer} nascli; "
                         f"this nascli uses version {SCHEMA_VERSION}",
                         hint="use the nascli version that created it, or a new database")
