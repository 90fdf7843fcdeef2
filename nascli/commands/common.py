"""Options and helpers every command shares."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nascli.commands import completion
from nascli.console import OutputFormat, console, error_console
from nascli.text import printable

__all__ = [
    "DbOption", "DebugOption", "FormatOption", "OutputFormat", "RUN_HELP", "RunArgument", "escape", "state", "console", "error_console",
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
        help="Rank by one metric instead of the run's fitness rule: val_accuracy, inverse_val_loss, val_loss, "
        "params, flops or latency_ms.",
    ),
]


def rank_by_choice(value: str | None) -> str | None:
    """A valid --rank-by metric, or None (the run's fitness rule); NascliError otherwise."""
    from nascli.errors import NascliError
    from nascli.metrics import RANKABLE

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
    """Print `rows` (dicts keyed by `columns`) as a rich table, JSON, CSV or a Markdown table.

    JSON keeps the values' types; the other formats print `str(value)` ('' for None).
    """
    output_format = OutputFormat(output_format)
    out = out or console()
    if output_format is OutputFormat.json:
        payload = [{column: row.get(column) for column in columns} for row in rows]
        out.print(json.dumps(payload, indent=2, default=str), markup=False, highlight=False, soft_wrap=True)
        return
    text_rows = [["" if row.get(c) is None else printable(row.get(c)) for c in columns] for row in rows]
    if output_format is OutputFormat.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(text_rows)
        out.print(buffer.getvalue(), end="", markup=False, highlight=False, soft_wrap=True)
        return
    if output_format is OutputFormat.markdown:
        def cells(values: Sequence[str]) -> str:
            return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

        lines = [cells(list(columns)), "|" + "|".join("---" for _ in columns) + "|"]
        lines += [cells(values) for values in text_rows]
        out.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
        return
    table = Table(title=title, header_style="bold")
    for index, column in enumerate(columns):
        table.add_column(column, overflow="fold", no_wrap=index == 0)  # keep names (ids) copyable
    for values in text_rows:
        table.add_row(*(escape(v) for v in values))
    out.print(table)
