"""`nas worker`: join a store's queue and evaluate tasks until idle, done, or told to stop."""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Annotated

import typer

from nascli.commands import completion
from nascli.commands.common import DbOption, DebugOption
from nascli.errors import ConfigError, DeviceFault

_DEVICE = re.compile(r"cpu|cuda|cuda:[0-9]+")


def command(
    db: DbOption = None,
    device: Annotated[str | None, typer.Option(
        "--device", show_default="cuda when a GPU is visible, else cpu",
        help="Where to train: cpu, cuda or cuda:N.")] = None,
    gpus: Annotated[str | None, typer.Option(
        "--gpus", help="Start one worker process per GPU: 'all' or a list such as 0,1 (instead of --device); "
        "each sees only its GPU, a dead one is restarted.")] = None,
    per_device: Annotated[int, typer.Option(
        "--per-device", min=1, help="Worker processes per device: N per GPU with --gpus, else N on the --device "
        "(N CPU workers with --device cpu); each claims and heartbeats on its own.")] = 1,
    run: Annotated[str | None, typer.Option(
        "--run", autocompletion=completion.runs,
        help="Only evaluate tasks of this run (id, name, or unique id prefix).")] = None,
    max_tasks: Annotated[int | None, typer.Option(
        "--max-tasks", min=1, help="Exit after this many tasks.")] = None,
    idle_timeout: Annotated[float | None, typer.Option(
        "--idle-timeout", min=0,
        help="Exit after this many seconds with nothing to do (default: wait forever).")] = None,
    lease: Annotated[float | None, typer.Option(
        "--lease", min=0.1,
        help="Lease seconds per claim (default: the run's worker.lease_seconds, else 120).")] = None,
    debug: DebugOption = False,
) -> None:
    """Evaluate queued tasks: claim, train, report, repeat. Ctrl-C / SIGTERM hands the current task back."""
    from nascli import devices

    if device is not None and not _DEVICE.fullmatch(device):
        raise ConfigError(f"--device {device!r} is not a device", "use cpu, cuda or cuda:N (e.g. cuda:1)")
    if gpus is not None and device is not None:
        raise ConfigError("--gpus and --device both given", "--gpus starts one worker per GPU; drop --device")
    if gpus is not None or per_device > 1:
        from nascli.commands.common import error_console
        from nascli.gpu_launcher import run_per_gpu

        command = [sys.executable, "-m", "nascli", *_without_launcher_options(sys.argv[1:])]
        raise typer.Exit(run_per_gpu(command, _launcher_gpus(gpus, device), per_device=per_device,
                                     terminal=error_console().is_terminal))
    # Once, before any task: the device exists here, is current, and CUDA is initialised.
    device = devices.start_device(device or devices.default_device())
    try:
        _run_one(db, device, run, max_tasks, idle_timeout, lease, debug)
    except DeviceFault as fault:  # the task is back in the queue; the launcher may restart this worker
        from nascli.cli import render_error

        render_error(fault)
        raise typer.Exit(devices.EXIT_DEVICE_FAULT) from None


def _run_one(db: str | None, device: str, run: str | None, max_tasks: int | None, idle_timeout: float | None,
             lease: float | None, debug: bool) -> None:
    from nascli.config import resolve_db_url
    from nascli.store import open_store
    from nascli.worker import Worker, WorkerOptions, install_signal_handlers, new_worker_id

    store = open_store(resolve_db_url(db))
    try:
        store.check_schema()
        if run is not None:
            run = store.get_run(run).id  # RunNotFoundError (one line, exit 2) for an unknown id
        worker_id = new_worker_id()
        reporter = _reporter(worker_id, debug)
        options = WorkerOptions(device=device, run_id=run, max_tasks=max_tasks, idle_timeout=idle_timeout,
                                lease_seconds=lease)
        worker = Worker(store, options, worker_id=worker_id, reporter=reporter)
        install_signal_handlers(worker)
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        logging.getLogger("nascli.worker").info(
            "%s serving %s (device %s%s%s)", worker_id, store.url_display, device,
            f", CUDA_VISIBLE_DEVICES={visible}" if visible is not None and device != "cpu" else "",
            f", run {run}" if run else "")
        stats = worker.run()
        logging.getLogger("nascli.worker").info(
            "%s stopped: %s done, %s failed, %s discarded, %s released", worker_id, stats.done, stats.failed,
            stats.discarded, stats.released)
    finally:
        store.close()


def _reporter(worker_id: str, debug: bool):
    """A live status line on a terminal; plain timestamped log lines otherwise."""
    from nascli.commands.common import error_console
    from nascli.worker import Reporter

    console = error_console()
    level = logging.DEBUG if debug else logging.INFO
    logger = logging.getLogger("nascli")
    logger.setLevel(level)
    logger.propagate = False
    logger.handlers.clear()
    if console.is_terminal:
        from rich.logging import RichHandler

        from nascli.worker_status import LiveReporter

        logger.addHandler(RichHandler(console=console, show_path=False, markup=False))
        return LiveReporter(worker_id, console)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return Reporter(worker_id)


def _launcher_gpus(gpus: str | None, device: str | None) -> list[int] | None:
    """The GPUs the launcher's children go on: --gpus, else the --device (default: cuda:0 when a GPU is
    visible); None for the CPU."""
    from nascli import devices

    if gpus is not None:
        return devices.gpu_indices(gpus, devices.visible_gpu_count())
    chosen = devices.check_device(device or devices.default_device())
    return None if chosen == "cpu" else [int(chosen.partition(":")[2])]


_LAUNCHER_OPTIONS = ("--gpus", "--device", "--per-device")


def _without_launcher_options(argv: list[str]) -> list[str]:
    """The worker's own arguments minus --gpus, --device and --per-device (and their values): the
    launcher gives each child its --device."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in _LAUNCHER_OPTIONS:
            skip = True
            continue
        if arg.startswith(tuple(f"{option}=" for option in _LAUNCHER_OPTIONS)):
            continue
        kept.append(arg)
    return kept


__all__ = ["command"]
