"""The run's ordered event log (what the search driver decided, in order: replay reads it back)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from nascli.store.database import Database, Statement, insert_rows, param
from nascli.store.records import Event
from nascli.store.runs import RunRepository
from nascli.store.tables import EV, R

EVENT_COLUMNS = ("run_id", "seq", "kind", "payload_json", "created_at")


@dataclass(frozen=True)
class EventSql:
    take_event_seq: Statement
    insert_event: Statement

    def every_statement(self) -> tuple[Statement, ...]:
        return self.take_event_seq, self.insert_event


def build() -> EventSql:
    return EventSql(
        take_event_seq=Statement(
            "take_event_seq", sa.update(R).where(R.c.id == param("run_id"))
            .values(event_counter=R.c.event_counter + 1).returning(R.c.event_counter),
            doc="Take the run's next event seq (locks the run row: events commit in seq order)."),
        insert_event=Statement("insert_event", insert_rows(EV, EVENT_COLUMNS), doc="Append an event to the run's log."),
    )


class EventLog:
    def __init__(self, db: Database, runs: RunRepository) -> None:
        self.db = db
        self.runs = runs

    @functools.cached_property
    def sql(self) -> EventSql:
        return build()

    def append_event(self, run_id: str, kind: str, payload: dict[str, Any]) -> int:
        """Append to the run's ordered event log; returns its sequence number (1, 2, ...)."""
        payload_json = json.dumps(payload, sort_keys=True, default=str)

        def body(conn: Connection) -> int:
            seq: int | None = self.db.execute(conn, self.sql.take_event_seq, run_id=run_id).scalar_one_or_none()
            if seq is None:
                raise self.runs.not_found(conn, run_id)
            self.db.execute(conn, self.sql.insert_event, run_id=run_id, seq=seq, kind=kind, payload_json=payload_json,
                            created_at=self.db.now_value(conn))
            return seq

        return self.db.write(body, what="append event")

    def events(self, run_id: str, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """The run's events with seq > after_seq, in order."""

        def body(conn: Connection) -> list[Event]:
            query = sa.select(EV).where(EV.c.run_id == run_id, EV.c.seq > after_seq).order_by(EV.c.seq)
            if limit is not None:
                query = query.limit(limit)
            return [Event(seq=row.seq, run_id=row.run_id, kind=row.kind, payload=json.loads(row.payload_json),
                          created_at=row.created_at) for row in conn.execute(query)]

        return self.db.read(body, what="read events")
