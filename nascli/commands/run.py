"""`nas run`."""

from __future__ import annotations

from nascli.commands.common import DebugOption
from nascli.errors import NascliError


def command(debug: DebugOption = False) -> None:
    """(being built; see the issue tracker)"""
    raise NascliError("nas run is not built yet")
