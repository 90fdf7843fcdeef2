"""`nas resume`: continue a run from the database with the same decisions."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from nascli.commands import completion
from nascli.commands.common import RUN_HELP, DbOption, DebugOption


def command(
    run: Annotated[str | None, typer.Argument(
        metavar="[RUN]", autocompletion=completion.runs,
        help=RUN_HELP + " Default: the newest unfinished run.")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", "-w", min=0, show_default="one per visible GPU, else 1",
        help="Local worker processes to start (0: only external `nas worker`s).")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Take over an expired driver lease although its driver holds the run's token "
        "(a driver on a host that cannot be reached).")] = False,
    wait: Annotated[bool, typer.Option(
        "--wait", help="If a live driver holds the run, wait for it to end, then take over "
        "(without it: exit code 3).")] = False,
    db: DbOption = None,
    debug: DebugOption = False,
) -> None:
    """Continue a crashed or interrupted run at once: replays its log, re-queues only what was in flight.

    A run whose driver is still alive is refused with exit code 3 (--wait waits for that driver).
    """
    session = importlib.import_module("nascli.driver.session")  # lazily: torch-free `nas --help`
    from nascli.commands.progress import LiveView
    from nascli.config import resolve_db_url

    exit_code = session.resume_run(run, db_url=resolve_db_url(db), workers=workers, force=force, wait=wait,
                                   view=LiveView())
    if exit_code:
        raise typer.Exit(exit_code)
