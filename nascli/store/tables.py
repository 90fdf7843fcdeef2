"""The tables as SQLAlchemy Core objects, under the short names every statement of the store uses.

The one home of these aliases: the repositories, the statement builders and the report queries
import them from here. The names follow the SQL: `R` run, `E` evaluation, `I` individual, `ISL`
island, `MIG` migration, `W` worker, `EV` event, `META` nascli_meta.
"""

from __future__ import annotations

from typing import cast

import sqlalchemy as sa

from nascli.store.models import EvaluationRow, EventRow, IndividualRow, IslandRow, Meta, MigrationRow, RunRow, WorkerRow

META = cast(sa.Table, Meta.__table__)
R = cast(sa.Table, RunRow.__table__)
E = cast(sa.Table, EvaluationRow.__table__)
I = cast(sa.Table, IndividualRow.__table__)  # noqa: E741 - the individual table
ISL = cast(sa.Table, IslandRow.__table__)
MIG = cast(sa.Table, MigrationRow.__table__)
W = cast(sa.Table, WorkerRow.__table__)
EV = cast(sa.Table, EventRow.__table__)

__all__ = ["E", "EV", "I", "ISL", "META", "MIG", "R", "W"]
