"""Options and helpers every command shares."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from nascli.commands import completion
from nascli.console import OutputFormat, console, error_console
from nascli.metrics import RANKABLE  # pure: `nas --help` stays light

__all__ = [
    "DbOption", "DebugOption", "FormatOption", "OutputFormat", "RUN_HELP", "RunArgument", "escape", "state",
    "console", "error_console",
    "print_rows", "RankByOption", "rank_by_choice",
]


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
        "Default: \\[store] url in nascli.toml, else sqlite:///nas.db. Prefer NAS_DB_URL on shared hosts.",
    ),
]

RankByOption = Annotated[
    str | None,
    typer.Option(
        "--rank-by", metavar="METRIC",
        help="Rank by one metric instead of the run's fitness rule: " + ", ".join(RANKABLE[:-1]) + " or "
        + RANKABLE[-1] + ".",
    ),
]


def rank_by_choice(value: str | None) -> str | None:
    """A valid --rank-by metric, or None (the run's fitness rule); NascliError otherwise."""
    from nascli.errors import NascliError

    if value is None or value in RANKABLE:
        return value
    raise NascliError(f"--rank-by {value!r} is not a rankable metric", hint="one of: " + ", ".join(RANKABLE))


RUN_HELP = "Run id, `latest`, the run's --name, or a unique id prefix."
RunArgument = Annotated[str, typer.Argument(metavar="RUN", show_default=False, help=RUN_HELP,
                                            autocompletion=completion.runs)]


FormatOption = Annotated[
    OutputFormat,
    typer.Option("--format", "-f", case_sensitive=False, help="How to print tables: for people or for scripts."),
]


def print_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    output_format: OutputFormat | str = OutputFormat.table,
    *,
    title: str | None = None,
    out: Console | None = None,
) -> None:
    """Print `rows` (dicts keyed by `columns`) as a rich table, JSON, CSV or a Markdown table, as the
    report prints its sections (nascli.report.render); the last column wraps in a terminal.

    JSON is the list of rows with the values' types.
    """
    from nascli.report import render

    output_format = OutputFormat(output_format)
    out = out or console()
    if output_format is OutputFormat.json:
        payload = [{column: row.get(column) for column in columns} for row in rows]
        out.print(json.dumps(payload, indent=2, default=str), markup=False, highlight=False, soft_wrap=True)
        return
    view = render.SectionView(name="rows", title=title or "" if output_format is OutputFormat.table else "",
                              payload=None, rows=rows, columns=columns, wrapping=columns[-1])
    render.to_console(out, [view], output_format.value)
