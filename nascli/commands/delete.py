"""`nas delete`: remove a run and everything that belongs to it."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from nascli.commands import common
from nascli.commands.common import DbOption, DebugOption, RunArgument
from nascli.errors import NascliError

EXIT_DECLINED = 1


def command(
    run: RunArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    db: DbOption = None,
    debug: DebugOption = False,
) -> None:
    """Delete a run: its individuals, evaluations, migrations and events, in one transaction.

    Asks first unless --yes. Other runs keep the results they reused from it. A run that is being
    driven is refused: `nas cancel` it first. A killed driver's unexpired lease does not stop it.
    """
    from nascli.config import resolve_db_url
    from nascli.store import open_store
    from nascli.store.driver_token import driver_token

    with open_store(resolve_db_url(db)) as store:
        info = store.get_run(run)
        if not yes:
            if not sys.stdin.isatty():
                raise NascliError(f"nas delete asks before it deletes run {info.id}, and there is no terminal to ask",
                                  hint=f"confirm with --yes: nas delete {info.id} --yes")
            counts = store.queue_counts(info.id)
            named = f" {info.name!r}" if info.name else ""
            question = (f"Delete run {info.id}{named} ({info.status}, {counts['done'] + counts['failed']} finished "
                        f"evaluations) and everything that belongs to it?")
            if not typer.confirm(question, default=False):
                common.error_console().print("nothing deleted", highlight=False)
                raise typer.Exit(EXIT_DECLINED)
        # A live driver holds the run's liveness token; when it is free the lease's holder is dead.
        token = driver_token(store, info.id)
        driver_dead = token.try_acquire()
        try:
            deleted = store.delete_run(info.id, driver_dead=driver_dead)
        except BaseException:
            token.release()
            raise
        token.discard()  # no lock file left beside a SQLite database for a run that is gone
    removed = ", ".join(f"{count} {table}" for table, count in deleted.rows.items() if count and table != "runs")
    common.console().print(f"deleted run {deleted.run_id}" + (f" ({removed})" if removed else ""),
                           markup=False, highlight=False, soft_wrap=True)
