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
        "--force", help="Take over a driver lease held by another (dead) driver.")] = False,
    db: DbOption = None,
    debug: DebugOption = False,
) -> None:
    """Continue a crashed or interrupted run: replays its log, re-queues only what was in flight."""
    runner = importlib.import_module("nascli.runner")  # lazily: torch-free `nas --help`
    from nascli.commands.progress import LiveView
    from nascli.config import resolve_db_url

    exit_code = runner.resume_run(run, db_url=resolve_db_url(db), workers=workers, force=force, view=LiveView())
    if exit_code:
        raise typer.Exit(exit_code)
