"""Render report sections as rich tables, JSON, CSV or Markdown.

A `SectionView` carries one section twice: `payload` is what JSON prints (typed, nested where
that helps scripts: the documented schema in docs/report.md), `rows`/`columns` are the same data
flattened to one table (what CSV, Markdown and the terminal show). CSV keeps raw values (ISO
timestamps, full-precision floats) so pandas reads it; the terminal and Markdown humanise them.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from nascli.text import printable

SCHEMA = "nascli.report/1"  # bump when a documented key changes meaning or disappears
GENOME_WRAP = 56  # characters per line of a genome in a terminal table


@dataclass(frozen=True)
class SectionView:
    name: str
    title: str
    payload: Any  # JSON value for this section (list of objects, or an object)
    rows: Sequence[Mapping[str, Any]]
    columns: Sequence[str]  # every column, for CSV and JSON-like completeness
    table_columns: Sequence[str] | None = None  # the subset a terminal shows (None: all)
    caption: str | None = None  # one line under the terminal table (e.g. the hypervolume)
    key_value: bool = False  # one record shown as a two-column panel (the run summary)
    table_limit: int | None = None  # a terminal shows only the last N rows (JSON/CSV/Markdown: all)
    notes: Sequence[str] = field(default_factory=tuple)
    wrapping: str = "genome"  # the one terminal column that wraps and absorbs the space left


# ---------------------------------------------------------------- humanising values


# Short headers for narrow terminals; JSON/CSV keep the full field names.
LABELS = {
    "run_id": "run", "individual_id": "id", "evaluation_id": "eval", "created_at": "created",
    "duration_seconds": "duration", "evaluations_done": "done", "evaluations_failed": "failed",
    "evaluations_pending": "queued", "best_val_accuracy": "best val", "best_test_accuracy": "best test",
    "best_params": "params", "best_fitness": "fitness", "val_accuracy": "val acc", "test_accuracy": "test acc",
    "train_accuracy": "train acc", "val_loss": "val loss", "latency_ms": "latency", "generation": "gen",
    "root_ancestors": "roots", "evaluations_per_hour": "evals/h", "train_seconds": "training",
    "last_seen_at": "last seen", "started_at": "started", "from_island": "from", "to_island": "to",
    "new_individual_id": "copy", "train_accuracy_max": "train max", "val_accuracy_max": "val max",
    "val_accuracy_mean": "val mean", "val_accuracy_std": "val std", "test_accuracy_max": "test max",
    "best_val_accuracy_so_far": "best val so far", "evaluations": "evals", "evaluations_to_best": "evals to best",
}


def label(column: str) -> str:
    return LABELS.get(column, column.replace("_", " "))


def human_count(value: float | int) -> str:
    value = float(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.2f}{suffix}"
    return f"{value:.0f}"


def human_duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def human_value(column: str, value: Any) -> str:
    """How a person reads `value` of `column` (naming conventions decide the unit)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {human_value(k, v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return printable(", ".join(str(v) for v in value))
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (int, float)):
        if "accuracy" in column or column.endswith("_fraction"):
            return f"{100 * value:.2f} %"
        if column.endswith("params") or column.endswith("flops"):
            return human_count(value)
        if column.endswith("_per_hour"):
            return human_count(value)
        if column.endswith("_seconds"):
            return human_duration(value)
        if column.endswith("_ms"):
            return f"{value:.2f} ms"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)
    return printable(value)


def wrap_genome(genome: str, width: int = GENOME_WRAP) -> str:
    """Break a genome between layers (before ':') so a table cell stays readable; no layer is split."""
    lines: list[str] = []
    current = ""
    for index, layer in enumerate(genome.split(":")):
        token = layer if index == 0 else ":" + layer
        if current and len(current) + len(token) > width:
            lines.append(current)
            current = token
        else:
            current += token
    lines.append(current)
    return "\n".join(lines)


def csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, default=str, sort_keys=True)
    if isinstance(value, float):
        return repr(value)
    return printable(value)


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


# ---------------------------------------------------------------- formats


def to_json(header: Mapping[str, Any], sections: Sequence[SectionView]) -> str:
    document = {"schema": SCHEMA, **header}
    for section in sections:
        document[section.name] = section.payload
    return json.dumps(document, indent=2, default=json_default, allow_nan=False)


def to_csv(sections: Sequence[SectionView]) -> str:
    """One section: plain CSV (pandas.read_csv). Several: blocks headed `# section: NAME`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for index, section in enumerate(sections):
        if len(sections) > 1:
            if index:
                buffer.write("\n")
            buffer.write(f"# section: {section.name}\n")
        writer.writerow(section.columns)
        for row in section.rows:
            writer.writerow([csv_value(row.get(column)) for column in section.columns])
    return buffer.getvalue()


def to_markdown(sections: Sequence[SectionView], heading: str | None = None) -> str:
    parts = [f"# {printable(heading)}"] if heading else []
    for section in sections:
        if section.title:
            parts.append(f"## {printable(section.title)}")
        if section.key_value:
            rows = section.rows[0] if section.rows else {}
            lines = ["| field | value |", "|---|---|"]
            lines += [f"| {column} | {_md(human_value(column, rows.get(column)))} |" for column in section.columns]
        else:
            columns = list(section.table_columns or section.columns)
            lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
            for row in section.rows:
                lines.append("| " + " | ".join(_md(human_value(c, row.get(c))) for c in columns) + " |")
            if not section.rows:
                lines.append("| " + " | ".join("" for _ in columns) + " |")
        if section.caption:
            lines.append("")
            lines.append(section.caption)
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _md(text: str) -> str:
    return printable(text.replace("|", "\\|").replace("\n", " "))


def to_console(out: Console, sections: Sequence[SectionView], output_format: str, *,
               header: Mapping[str, Any] | None = None, heading: str | None = None) -> None:
    """Print `sections` in one of the four output formats (json, csv, markdown, table)."""
    if output_format == "json":
        out.print(to_json(header or {}, sections), markup=False, highlight=False, soft_wrap=True)
    elif output_format == "csv":
        out.print(to_csv(sections), end="", markup=False, highlight=False, soft_wrap=True)
    elif output_format == "markdown":
        out.print(to_markdown(sections, heading), end="", markup=False, highlight=False, soft_wrap=True)
    else:
        out.print(to_renderable(sections, out.width))


def to_renderable(sections: Sequence[SectionView], width: int | None = None) -> RenderableType:
    """Rich renderables for a terminal `width` columns wide (also what `--watch` refreshes)."""
    parts: list[RenderableType] = []
    for section in sections:
        parts.append(_key_value_panel(section) if section.key_value else _table(section, width))
        for note in section.notes:
            parts.append(Text(note, style="dim"))
    return Group(*parts)


def _cell(column: str, value: Any) -> str:
    return wrap_genome(value) if column == "genome" and isinstance(value, str) else human_value(column, value)


def fitting_columns(section: SectionView, width: int | None) -> list[str]:
    """The section's columns, dropping the rightmost ones (keeping the first and the genome) until the
    table fits `width`; numbers never wrap, so a narrow terminal shows fewer columns, not mangled ones."""
    columns = list(section.table_columns or section.columns)
    if width is None:
        return columns

    def need(column: str) -> int:
        if column == section.wrapping:
            return 16 + 3
        cells = [_cell(column, row.get(column)) for row in section.rows]
        widest = max((max(len(line) for line in cell.splitlines() or [""]) for cell in cells), default=0)
        return max(len(label(column)), widest) + 3

    while len(columns) > 2 and sum(need(c) for c in columns) + 1 > width:
        droppable = [c for c in columns[1:] if c != section.wrapping]
        if not droppable:
            break
        columns.remove(droppable[-1])
    return columns


def _table(section: SectionView, width: int | None = None) -> Table:
    caption = section.caption
    if section.table_limit is not None and len(section.rows) > section.table_limit:
        shown = f"the last {section.table_limit} of {len(section.rows):,} rows (all of them with --format csv|json)"
        caption = f"{caption}\n{shown}" if caption else shown
        section = dataclasses.replace(section, rows=list(section.rows)[-section.table_limit:])
    columns = fitting_columns(section, width)
    all_columns = list(section.table_columns or section.columns)
    hidden = len(all_columns) - len(columns)
    if hidden:
        names = ", ".join(label(c) for c in all_columns if c not in columns)
        note = (f"{hidden} column{'s' if hidden > 1 else ''} hidden ({names}): widen the terminal, "
                "or use --format markdown|csv|json")
        caption = f"{caption}\n{note}" if caption else note
    if not section.rows:
        caption = (caption + " — " if caption else "") + "nothing yet"
    table = Table(title=escape(printable(section.title)) if section.title else section.title, header_style="bold",
                  caption=caption, title_justify="left")
    for column in columns:
        numeric = any(isinstance(row.get(column), (int, float)) for row in section.rows)
        # numbers, ids and times never wrap; the genome column absorbs what space is left
        table.add_column(label(column), justify="right" if numeric else "left", overflow="fold",
                         no_wrap=column != section.wrapping, min_width=16 if column == section.wrapping else None)
    for row in section.rows:
        table.add_row(*(escape(_cell(column, row.get(column))) for column in columns))
    return table


def _key_value_panel(section: SectionView) -> Panel:
    record = section.rows[0] if section.rows else {}
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for column in section.table_columns or section.columns:
        value = record.get(column)
        if value is None or value == {}:
            continue
        grid.add_row(column.replace("_", " "), escape(human_value(column, value)))
    return Panel(grid, title=escape(printable(section.title)) if section.title else section.title,
                 title_align="left", expand=False)
