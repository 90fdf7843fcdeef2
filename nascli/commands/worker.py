"""`nas worker`: join a store's queue and evaluate tasks until idle, done, or told to stop."""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
from typing import Annotated

import typer

from nascli.commands.common import DbOption, DebugOption
from nascli.errors import ConfigError

_DEVICE = re.compile(r"cpu|cuda|cuda:[0-9]+")
_GPU_LIST = re.compile(r"[0-9]+(,[0-9]+)*")


def command(
    db: DbOption = None,
    device: Annotated[str, typer.Option("--device", help="Where to train: cpu, cuda or cuda:N.")] = "cpu",
    gpus: Annotated[str | None, typer.Option(
        "--gpus", help="Start one worker process per GPU: 'all' or a list such as 0,1 (instead of --device).")] = None,
    run: Annotated[str | None, typer.Option("--run", help="Only evaluate tasks of this run id.")] = None,
    max_tasks: Annotated[int | None, typer.Option(
        "--max-tasks", min=1, help="Exit after this many tasks.")] = None,
    idle_timeout: Annotated[float | None, typer.Option(
        "--idle-timeout", min=0, help="Exit after this many seconds with nothing to do (default: wait forever).")] = None,
    lease: Annotated[float | None, typer.Option(
        "--lease", min=0.1, help="Lease seconds per claim (default: the run's worker.lease_seconds, else 120).")] = None,
    debug: DebugOption = False,
) -> None:
    """Evaluate queued tasks: claim, train, report, repeat. Ctrl-C / SIGTERM hands the current task back."""
    if not _DEVICE.fullmatch(device):
        raise ConfigError(f"--device {device!r} is not a device", "use cpu, cuda or cuda:N (e.g. cuda:1)")
    if gpus is not None:
        if device != "cpu":
            raise ConfigError("--gpus and --device both given", "--gpus starts one worker per GPU; drop --device")
        raise typer.Exit(_run_per_gpu(_gpu_indices(gpus), sys.argv[1:]))
    _run_one(db, device, run, max_tasks, idle_timeout, lease, debug)


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
        logging.getLogger("nascli.worker").info("%s serving %s (device %s%s)", worker_id, store.url_display, device,
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


def _gpu_indices(gpus: str) -> list[int]:
    if gpus == "all":
        import torch  # only here: a --gpus all launcher needs the device count

        count = torch.cuda.device_count()
        if count == 0:
            raise ConfigError("--gpus all: no CUDA device is visible", "check nvidia-smi and CUDA_VISIBLE_DEVICES, "
                              "or run with --device cpu")
        return list(range(count))
    if not _GPU_LIST.fullmatch(gpus):
        raise ConfigError(f"--gpus {gpus!r} is not 'all' or a list of GPU indices", "e.g. --gpus all or --gpus 0,1")
    indices = [int(i) for i in gpus.split(",")]
    if len(set(indices)) != len(indices):
        raise ConfigError(f"--gpus {gpus!r} lists a GPU twice", "name each GPU once, e.g. --gpus 0,1")
    return indices


def _without_gpus(argv: list[str]) -> list[str]:
    """The worker's own arguments minus --gpus (and its value) and --device."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--gpus", "--device"):
            skip = True
            continue
        if arg.startswith(("--gpus=", "--device=")):
            continue
        kept.append(arg)
    return kept


def _run_per_gpu(indices: list[int], argv: list[str]) -> int:
    """One `nas worker --device cuda:N` child per GPU; signals are passed on; exit code is the worst child's."""
    base = [sys.executable, "-m", "nascli", *_without_gpus(argv)]
    # Own process groups: a terminal's Ctrl-C reaches only this launcher, which passes it on once
    # (a second signal would make a child exit without waiting).
    children = [subprocess.Popen([*base, "--device", f"cuda:{index}"], process_group=0) for index in indices]

    def forward(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    return max(codes, key=abs) if codes else 0


__all__ = ["command"]
