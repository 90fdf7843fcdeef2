"""The `nas` command: registers the commands and renders user errors as one line, exit 2.

Importing this module must not import torch: `nas --help` stays instant. Command modules import
heavy things inside their functions.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from typing import Any

import typer
from typer.core import TyperGroup

from nascli import __version__
from nascli.commands import common
from nascli.errors import NascliError, RunInterrupted
from nascli.text import printable

EXIT_BAD_INPUT = 2
EXIT_RUN_BUSY = 3  # errors.RunBusy: another live driver holds the run (`nas resume --wait` waits for it)
EXIT_INTERRUPTED = 130

# (command name, module under nascli.commands); each module defines `command(...)`.
COMMANDS = (
    ("init", "init"),
    ("run", "run"),
    ("worker", "worker"),
    ("resume", "resume"),
    ("report", "report"),
    ("export", "export"),
    ("cancel", "cancel"),
    ("delete", "delete"),
)


# typer carries its own copy of click (no `click` package to import): reach click's UsageError
# through the public typer.BadParameter, one of its kinds, on every supported typer.
UsageError: type[Exception] = next(kind for kind in typer.BadParameter.__mro__ if kind.__name__ == "UsageError")


def usage_error(error: Any, command: str | None = None) -> NascliError:
    """A click usage error (bad option value, missing argument, unknown option or command) as a NascliError;
    `command`: the command line's command when the error does not carry it."""
    ctx = getattr(error, "ctx", None)
    command = ctx.command_path if ctx is not None and ctx.parent is not None else command or "nas"
    message = " ".join(error.format_message().split()).rstrip(".")
    return NascliError(message, hint=f"see `{command} --help`")


def render_error(error: NascliError) -> None:
    """One red line on stderr: what is wrong, then how to fix it."""
    console = common.error_console()
    if common.state.debug:
        console.print(traceback.format_exc(), markup=False, highlight=False)
    line = f"[bold red]error:[/] {common.escape(printable(error.message))}"
    if error.hint:
        line += f" [dim]— {common.escape(printable(error.hint))}[/]"
    console.print(line, soft_wrap=True, highlight=False)


class NascliGroup(TyperGroup):
    """Maps NascliError and click's usage errors to one line + exit 2 (or the error's own exit code)
    and Ctrl-C to exit 130, for every command."""

    # typer hands its own Context (a click Context) to these overrides
    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        return [name for name, _ in COMMANDS]  # the order of COMMANDS, not alphabetical

    def make_context(self, info_name, args, parent=None, **extra):  # noqa: D401 - click override
        try:  # `nas` options and the command name are parsed here
            return super().make_context(info_name, args, parent=parent, **extra)
        except UsageError as error:
            self._fail(error)

    def invoke(self, ctx: typer.Context):  # type: ignore[override]  # noqa: D401 - click override
        try:  # a command's own options are parsed here
            return super().invoke(ctx)
        except NascliError as error:
            render_error(error)
            raise typer.Exit(error.exit_code) from None
        except UsageError as error:
            self._fail(error, f"nas {ctx.invoked_subcommand}" if ctx.invoked_subcommand else None)
        except RunInterrupted as interrupted:
            common.error_console().print(f"interrupted — continue with: nas resume {interrupted.run_id}",
                                         highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except KeyboardInterrupt:
            common.error_console().print("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    @staticmethod
    def _fail(error: Exception, command: str | None = None):
        if type(error).__name__ == "NoArgsIsHelpError":
            raise error  # `nas` alone prints the help
        render_error(usage_error(error, command))
        raise typer.Exit(EXIT_BAD_INPUT) from None


app = typer.Typer(
    cls=NascliGroup,
    name="nas",
    help="Evolutionary Neural Architecture Search that never loses work.\n\n"
    "Start with `nas init`, then `nas run --preset digits-quick`.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion; completers in commands/completion.py
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nas {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: common.DebugOption = False,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Evolutionary Neural Architecture Search that never loses work."""
    common.state.debug = debug  # per invocation: a previous `--debug` in this process must not stick


for _name, _module in COMMANDS:
    _command = importlib.import_module(f"nascli.commands.{_module}").command
    app.command(_name, help=_command.__doc__)(_command)


def main() -> None:
    try:
        app(prog_name="nas")
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
