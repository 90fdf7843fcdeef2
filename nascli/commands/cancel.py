"""`nas cancel`: stop a run for good."""

from __future__ import annotations

from nascli.commands import common
from nascli.commands.common import DbOption, DebugOption, RunArgument


def command(
    run: RunArgument,
    db: DbOption = None,
    debug: DebugOption = False,
) -> None:
    """Stop a run for good: its driver stops, pending evaluations are cancelled, running ones are abandoned.

    The run keeps its results (`nas report`, `nas export` work on it); `nas resume` refuses it.
    """
    from nascli.config import resolve_db_url
    from nascli.store import open_store

    with open_store(resolve_db_url(db)) as store:
        cancelled = store.cancel_run(store.get_run(run).id)
    common.console().print(
        f"cancelled run {cancelled.run_id}: {cancelled.pending} pending evaluations cancelled, "
        f"{cancelled.running} running ones abandoned at their next heartbeat; its driver stops within a second",
        markup=False, highlight=False, soft_wrap=True)
