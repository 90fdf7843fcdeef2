"""`nas init`: create or check the run store and write a minimal nascli.toml. Safe to run again."""

from __future__ import annotations

from pathlib import Path

from nascli.commands import common
from nascli.commands.common import DbOption, DebugOption
from nascli.safe_files import write_file

PROJECT_FILE = Path("nascli.toml")


def command(db: DbOption = None, debug: DebugOption = False) -> None:
    """Create the run store (a SQLite file, or the tables in a PostgreSQL database) and nascli.toml.

    Idempotent: an existing schema is checked (its version must match), an existing nascli.toml is
    kept. Prefer NAS_DB_URL over --db for URLs with a password (command lines are visible to others).
    """
    from nascli.config import resolve_db_url  # pydantic and SQLAlchemy stay out of `nas --help`
    from nascli.store import SCHEMA_VERSION, open_store

    url = resolve_db_url(db)
    out = common.console()
    with open_store(url, create=True) as store:  # validates everything before a file is written
        where = store.url_display
        if store.created_schema:
            out.print(f"created the nascli schema (version {SCHEMA_VERSION}) in {where}", markup=False, highlight=False)
        else:
            out.print(f"schema version {SCHEMA_VERSION} already present in {where}", markup=False, highlight=False)
    if PROJECT_FILE.exists():
        out.print(f"kept the existing {PROJECT_FILE}", markup=False, highlight=False)
        return
    write_file(PROJECT_FILE, project_file_text(url))
    out.print(f"wrote {PROJECT_FILE} ([store] url = {where})", markup=False, highlight=False)


def project_file_text(url: str) -> str:
    """A minimal nascli.toml: only [store] url, so presets keep their own settings (nascli.toml
    overrides presets). A password is never written: the URL goes in without it."""
    from nascli.url_secrets import has_password, redact

    lines = [
        "# nascli project settings. They override presets; `nas run --set` overrides them.",
        "# Every key and its default: nascli.toml.example (python -m nascli.config.example).",
        "",
        "[store]",
    ]
    if has_password(url):  # commented out and masked: the password never goes into a file
        lines += [
            "# The URL has a password: keep it out of files and command lines. Export NAS_DB_URL, or put",
            "# the password in ~/.pgpass (or PGPASSFILE) and use this URL without the ***:",
            f"# url = {_toml_string(redact(url))}",
        ]
    else:
        lines.append(f"url = {_toml_string(url)}")
    return "\n".join(lines) + "\n"


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
