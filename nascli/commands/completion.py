"""Shell completion (`nas --install-completion`): presets, runs and report sections.

Each completer imports what it needs when called, so `nas --help` stays light, and answers nothing
rather than fail: a completion must never print an error into the user's shell.
"""

from __future__ import annotations

import typer


def presets(incomplete: str) -> list[str]:
    try:
        from nascli.config import list_presets

        return [name for name, _ in list_presets() if name.startswith(incomplete)]
    except Exception:  # noqa: BLE001 - see the module docstring
        return []


def runs(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Run ids (then names) of the database the command line points at; never creates one."""
    try:
        from nascli.config import resolve_db_url
        from nascli.store import open_store

        with open_store(resolve_db_url(ctx.params.get("db"))) as store:
            known = store.list_runs(limit=200)
    except Exception:  # noqa: BLE001 - see the module docstring
        return []
    candidates = [("latest", "the newest run")]
    candidates += [(run.id, f"{run.status} {run.name}".strip()) for run in known]
    candidates += [(run.name, run.id) for run in known if run.name]
    unique = dict(reversed(candidates))  # value -> its first help text
    return [(value, unique[value]) for value in dict.fromkeys(v for v, _ in candidates) if value.startswith(incomplete)]


def choices(names: tuple[str, ...]):
    """A completer offering `names` (e.g. report sections)."""

    def complete(incomplete: str) -> list[str]:
        return [name for name in names if name.startswith(incomplete)]

    return complete
