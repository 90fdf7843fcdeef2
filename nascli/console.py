"""Where output goes: rich consoles sized for terminals and pipes, and the table formats.

Commands and the read-only views under them (report/, export/, the worker's status line) share
these; they sit below `commands/` so that nothing there has to import a command module.
"""

from __future__ import annotations

import os
from enum import StrEnum

from rich.console import Console


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


# Output to a pipe or a file is as wide as its content: rich would cut tables to 80 columns there.
PIPE_WIDTH = 1000


def _sized(out: Console) -> Console:
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = PIPE_WIDTH
    return out


def console() -> Console:
    return _sized(Console())


def error_console() -> Console:
    return _sized(Console(stderr=True))
