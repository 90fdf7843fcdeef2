"""What the driver records in the database besides rows: event kinds, the migrant-copy slot, and a
finished evaluation as the strategy's `Outcome`."""

from __future__ import annotations

from nascli.ga.strategies import Outcome
from nascli.metrics import OUTCOME_METRICS
from nascli.store import FinishedEvaluation

FAILED_EVENT = "failed"  # {"reason", "hint"}: why the run was marked failed
ASK_EVENT = "ask"
FINAL_EVENT = "final"  # the strategy's snapshot when the budget is spent (populations, best, front)

# A migrant's copy on its destination island is an individual row of its own at (destination, migration
# generation, MIGRANT_SLOT + n): far above any child's slot, so it never takes a child's key.
MIGRANT_SLOT = 1_000_000
MIGRATION_OPERATOR = "migration"


def outcome_of(key: tuple[int, int, int], finished: FinishedEvaluation) -> Outcome:
    result = finished.result
    metrics = {name: getattr(result, name) for name in OUTCOME_METRICS if getattr(result, name) is not None}
    if result.status == "failed":
        metrics["error_kind"] = result.error_kind
    if result.extra.get("stopped_at_epoch") is not None:  # the stop rule ended it (nascli.stop_rule)
        metrics["stopped_at_epoch"] = result.extra["stopped_at_epoch"]
    return Outcome(key=key, status=result.status, metrics=metrics)
