"""The tables as SQLAlchemy Core objects, under the short names every statement of the store uses.

The one home of these aliases: the repositories, the statement builders and the report queries
import them from here. The names follow the SQL: `R` run, `E` evaluation, `I` individual, `ISL`
island, `MIG` migration, `W` worker, `EV` event, `META` nascli_meta, `WEIGHTS` the weights repository.
"""

from __future__ import annotations

import sqlalchemy as sa

from nascli.store.models import metadata


def _table(name: str) -> sa.Table:
    return metadata.tables[name]


META = _table("nascli_meta")
R = _table("run")
E = _table("evaluation")
I = _table("individual")  # noqa: E741 - the individual table
ISL = _table("island")
MIG = _table("migration")
W = _table("worker")
EV = _table("event")
WEIGHTS = _table("weights")

__all__ = ["E", "EV", "I", "ISL", "META", "MIG", "R", "W", "WEIGHTS"]
