"""Options and helpers every command shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

__all__ = ["DbOption", "DebugOption", "escape", "state", "console", "error_console"]


@dataclass
class CliState:
    debug: bool = False


state = CliState()


def _set_debug(value: bool) -> bool:
    if value:
        state.debug = True
    return value


DebugOption = Annotated[
    bool,
    typer.Option("--debug", envvar="NAS_DEBUG", callback=_set_debug, help="Show the full traceback on errors."),
]

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="NAS_DB_URL",
        show_envvar=True,
        help="Database URL (sqlite:///nas.db, postgresql+psycopg://user@host/db). "
        "Default: [store] url in nascli.toml, else sqlite:///nas.db. Prefer NAS_DB_URL on shared hosts.",
    ),
]


def console() -> Console:
    return Console()


def error_console() -> Console:
    return Console(stderr=True)
