"""`nas run`: resolve and validate the configuration, then hand it to the search driver."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Annotated

import typer

from nascli.commands import common, completion
from nascli.commands.common import DbOption, DebugOption, OutputFormat
from nascli.errors import ConfigError

PRESET_COLUMNS = ("name", "strategy", "dataset", "description")  # the table shows name and description


def command(
    ctx: typer.Context,
    preset: Annotated[str | None, typer.Option(
        "--preset", "-p", metavar="NAME", autocompletion=completion.presets,
        help="Start from a shipped preset (see --list-presets).")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", metavar="FILE", dir_okay=False,
        help="A TOML file in the shape of nascli.toml.example; overrides the preset and nascli.toml.")] = None,
    overrides: Annotated[list[str] | None, typer.Option(
        "--set", "-s", metavar="KEY=VALUE",
        help="Override one key, e.g. --set ga.islands=3 (value is a TOML literal; repeatable).")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", "-w", min=0, show_default="one per visible GPU, else 1",
        help="Local worker processes to start (0: only external `nas worker`s).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Run seed (same as --set run.seed=N).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Run name shown in reports.")] = None,
    db: DbOption = None,
    list_presets: Annotated[bool, typer.Option(
        "--list-presets", help="List the shipped presets and exit.")] = False,
    show_config: Annotated[bool, typer.Option(
        "--show-config", help="Print the resolved configuration (TOML, or JSON with --format json) and exit.")] = False,
    output_format: common.FormatOption = OutputFormat.table,
    debug: DebugOption = False,
) -> None:
    """Start a search from a preset or a config file; prints the run id, exits 0 when it finishes.

    Configuration: preset < nascli.toml < --config FILE < NAS_DB_URL < --set KEY=VALUE, validated before
    anything starts; --show-config prints it instead of running.
    """
    if list_presets:
        print_presets(output_format)
        return
    from nascli import config as configuration  # pydantic stays out of `nas --help`
    from nascli.url_secrets import redact, without_password

    if preset is None and config is None and not show_config:
        raise ConfigError("nothing to run: no preset and no config file",
                          hint="use --preset NAME (nas run --list-presets shows them) or --config FILE")
    extra = list(overrides or [])
    if seed is not None:
        extra.append(f"run.seed={seed}")
    if name is not None:
        extra.append(f"run.name={json.dumps(name)}")
    cfg = configuration.resolve(preset=preset, config_file=config, overrides=extra)
    db_url = _db_url(ctx, db, cfg)
    if show_config:
        cfg.store.url = redact(db_url)  # *** shows that a password is set
        print_config(cfg, output_format)
        return
    # The run row stores the configuration: never a password, not even masked (workers get theirs
    # from NAS_DB_URL, or libpq from ~/.pgpass / PGPASSFILE).
    cfg.store.url = without_password(db_url)
    from nascli.commands.progress import LiveView

    scripted = OutputFormat(output_format) is OutputFormat.json
    # for scripts: progress on stderr, one JSON object on stdout when the run ends
    view = LiveView(common.error_console()) if scripted else LiveView()
    exit_code = launch(cfg, db_url=db_url, workers=workers, preset=preset, view=view)
    if scripted and view.last is not None:
        common.console().print(json.dumps(run_outcome(view.last), default=str), markup=False, highlight=False,
                               soft_wrap=True)
    if exit_code:
        raise typer.Exit(exit_code)


def run_outcome(progress) -> dict:
    """What `nas run --format json` prints: the run, how it ended, its best result and the counts."""
    best = progress.best
    return {
        "run_id": progress.run.id, "name": progress.run.name or None, "status": progress.status,
        "best": None if not best else {"genome": best.get("genome"), **best.get("metrics", {})},
        "evaluations": {"done": progress.evaluations_done, "planned": progress.budget, "reused": progress.cache_hits,
                        **{status: progress.queue.get(status, 0) for status in ("failed", "cancelled")}},
        "reused_from": progress.cache_sources, "failure_kinds": progress.failure_kinds,
    }


def _db_url(ctx: typer.Context, db: str | None, cfg) -> str:
    """--db on the command line > the resolved [store] url (NAS_DB_URL < --set store.url) > the default."""
    from nascli.config import resolve_db_url

    source = ctx.get_parameter_source("db")  # typer vendors click: compare by name, not by class
    from_command_line = getattr(source, "name", None) == "COMMANDLINE"
    return resolve_db_url(db if from_command_line else None, configured=cfg.store.url)


def launch(cfg, *, db_url: str, workers: int | None, preset: str | None = None, view=None) -> int:
    """Hand the validated configuration to the search driver; returns the exit code (0 finished, 1 failed)."""
    session = importlib.import_module("nascli.driver.session")  # lazily: torch-free `nas --help`
    from nascli.commands.progress import LiveView

    return int(session.start_run(cfg, db_url=db_url, workers=workers, preset=preset, view=view or LiveView()) or 0)


def print_presets(output_format: OutputFormat | str) -> None:
    from nascli.config import list_presets, load_preset

    rows = []
    for preset_name, description in list_presets():
        data = load_preset(preset_name)
        rows.append({
            "name": preset_name,
            "strategy": data.get("run", {}).get("strategy", "island-ga"),
            "dataset": data.get("task", {}).get("dataset", "cifar10"),
            "description": description,
        })
    columns = ("name", "description") if OutputFormat(output_format) is OutputFormat.table else PRESET_COLUMNS
    common.print_rows(rows, columns, output_format, title="Presets (nas run --preset NAME)")


def print_config(cfg, output_format: OutputFormat | str) -> None:
    out = common.console()
    if OutputFormat(output_format) is OutputFormat.json:
        out.print(json.dumps(cfg.model_dump(mode="json"), indent=2), markup=False, highlight=False, soft_wrap=True)
        return
    from nascli.config.example import to_toml

    header = f"# resolved by nas run in {os.getcwd()}"
    out.print(to_toml(cfg, header), end="", markup=False, highlight=False, soft_wrap=True)
