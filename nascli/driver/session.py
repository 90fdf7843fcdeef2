"""A run's session: start or resume it, take the driver role, start local workers, drive to the end
with stop signals handled, and record how it ended."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

from nascli.config import RunConfig, validate_stored
from nascli.driver.lease import DriverLeaseLost
from nascli.driver.progress import Progress, View
from nascli.driver.step import Driver, RunCancelled, mark_failed
from nascli.driver.workers import plan_local_workers
from nascli.errors import NascliError, RunInterrupted
from nascli.ga.strategies import ReplayError
from nascli.store import QueueLimits, RunInfo, Store, open_store

EXIT_RUN_FAILED = 1  # every evaluation failed, or the run was cancelled


def ensure_local_data(cfg: RunConfig) -> None:
    """Download the dataset once for this host's local workers (DatasetError, one line, when impossible)."""
    if cfg.task.kind == "synthetic":
        return
    from nascli.config import data_dir_of
    from nascli.train import data

    if cfg.task.dataset in data.DOWNLOADABLE:
        data.ensure_files(cfg.task.dataset, data_dir_of(cfg.task.model_dump(mode="json")))


def _sigterm_as_interrupt(signum, frame) -> None:
    # A stopped pod or `kill` ends the driver like Ctrl-C: run marked interrupted, lease released,
    # local workers release their tasks; `nas resume` continues at once.
    raise KeyboardInterrupt



@contextmanager
def _stop_signals_deferred() -> Iterator[None]:
    """Starting local workers forks, and an exception raised in an at-fork hook (logging's lock
    release) is only printed: a Ctrl-C landing there would be lost and the driver drive on. Hold
    SIGINT/SIGTERM (those not ignored) until the forks are done, then act on them."""
    caught: list[int] = []
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(signum, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if caught:
        raise KeyboardInterrupt


def _ignore_stop_signals() -> None:
    # While the driver cleans up after the first stop signal: a second Ctrl-C must not cut the
    # workers' release or the lease release short (the cleanup is bounded by LocalWorkers.stop).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def queue_limits(cfg: RunConfig) -> QueueLimits:
    return QueueLimits(max_attempts=cfg.worker.max_attempts, max_lease_expiries=cfg.worker.max_lease_expiries)



def _execute(store: Store, driver: Driver, *, db_url: str, workers: int | None, view: View, resumed: bool) -> int:
    """Drive the run to its end with local workers. Ctrl-C/SIGTERM: workers release their tasks, the
    run is marked interrupted, RunInterrupted. Any other NascliError (except a takeover) marks the
    run failed with the reason before it propagates."""
    from nascli.local_workers import LocalWorkers

    cfg = driver.cfg
    plan = plan_local_workers(cfg, workers)
    count = plan.count
    driver.in_flight_target = max(1, count if count else cfg.ga.offspring_per_generation)
    driver.count_external_workers = count == 0
    if plan.note:
        view.note(plan.note)
    started = time.time()
    pool = LocalWorkers(db_url=db_url, run_id=driver.run.id, count=count, devices=plan.devices) if count else None
    last_view = 0.0

    def on_step() -> None:
        nonlocal last_view
        if pool:
            pool.tend()  # a worker that ended on a hung evaluation or a device fault is started again
        if time.monotonic() - last_view >= 0.5:
            view.update(driver.progress(pool.alive() if pool else 0, started))
            last_view = time.monotonic()

    previous_handlers = signal.getsignal(signal.SIGINT), signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    interrupted = False
    try:
        view.started(driver.run, resumed)
        driver.set_status("running")
        if pool:
            with _stop_signals_deferred():
                pool.start()
        on_step()  # at once: a resumed run says what it is waiting on
        driver.drive(on_step=on_step, workers_gone=pool.gone if pool else (lambda: False),
                     workers_said=pool.last_error if pool else (lambda: None))
        return conclude(store, driver.progress(pool.alive() if pool else 0, started), view, driver=driver.owner)
    except RunCancelled:
        return conclude(store, driver.progress(pool.alive() if pool else 0, started), view, cancelled=True,
                        driver=driver.owner)
    except KeyboardInterrupt:
        interrupted = True
        _ignore_stop_signals()
        driver.keep_clock()
    except DriverLeaseLost:
        raise
    except NascliError as error:
        driver.fail(error)
        raise
    finally:
        try:
            if pool:
                pool.stop()  # every worker has released its task before the run is marked
            if interrupted:
                driver.set_status("interrupted")
            driver.release()
            view.close()
        finally:
            signal.signal(signal.SIGINT, previous_handlers[0])
            signal.signal(signal.SIGTERM, previous_handlers[1])
    raise RunInterrupted(driver.run.id)


def conclude(store: Store, progress: Progress, view: View, *, cancelled: bool = False,
             driver: str | None = None) -> int:
    """Record how the run ended and show it; the exit code: 0 finished, 1 cancelled or every evaluation failed.
    `driver`: the status is written only while that owner holds the run (see Store.set_run_status)."""
    from nascli.store.reports import ReportQueries

    progress.finished = True
    progress.failure_kinds = ReportQueries(store).failure_kinds(progress.run.id)
    if cancelled:
        progress.status = "cancelled"  # `nas cancel` wrote it
    else:
        nothing_done = progress.queue.get("done", 0) == 0 and progress.queue.get("failed", 0) > 0
        progress.status = "failed" if nothing_done else "finished"
        store.set_run_status(progress.run.id, progress.status, driver=driver)
    view.update(progress)
    return 0 if progress.status == "finished" else EXIT_RUN_FAILED


def refuse_second_run_named(store: Store, name: str | None) -> None:
    """`nas run --name X` while run X is unfinished: say so and how to continue it, start nothing."""
    existing = store.unfinished_run_named(name) if name else None
    if existing is not None:
        raise NascliError(f"run {existing.id} named {name!r} is {existing.status} and unfinished",
                          hint=f"continue it with `nas resume {existing.id}`, stop it with `nas cancel {existing.id}`, "
                               "or choose another --name")


def start_run(cfg: RunConfig, *, db_url: str, workers: int | None, preset: str | None = None,
              view: View | None = None) -> int:
    """Create a run from a validated configuration and drive it to the end. Returns the exit code."""
    if workers is None or workers > 0:
        ensure_local_data(cfg)  # fail before anything is written, not once per evaluation in every worker
    store = open_store(db_url, create=True, limits=queue_limits(cfg))  # the embedded default needs no `nas init`
    try:
        refuse_second_run_named(store, cfg.run.name)
        run = store.create_run(cfg.run.name or "", cfg.run.strategy, preset, cfg.run.seed,
                               cfg.model_dump(mode="json"))
        try:
            driver = Driver(store, run, cfg)
        except NascliError as error:  # e.g. a seed genome the strategy cannot use: the run row exists
            mark_failed(store, run.id, error)
            raise
        driver.acquire()
        return _execute(store, driver, db_url=db_url, workers=workers, view=view or View(), resumed=False)
    finally:
        store.close()


def resume_run(run_ref: str | None, *, db_url: str, workers: int | None, force: bool = False, wait: bool = False,
               view: View | None = None) -> int:
    """Continue a run from the database: take it over (see Driver.acquire), replay its log,
    re-own what was in flight, drive on."""
    store = open_store(db_url)
    try:
        run = store.get_run(run_ref) if run_ref else newest_unfinished(store)
        if run.status in ("finished", "cancelled"):
            ended = 'finished' if run.status == 'finished' else 'been cancelled'
            raise NascliError(f"run {run.id} has already {ended}",
                              hint=f"see it with `nas report {run.id}`")
        cfg = validate_stored(run.id, run.config)
        store.limits = queue_limits(cfg)
        driver = Driver(store, run, cfg)
        driver.acquire(force=force, wait=wait)
        try:
            driver.replay()
        except ReplayError as error:
            driver.release()
            raise NascliError(f"cannot resume run {run.id}: {error}",
                              hint="the run was recorded by a different nascli version or configuration") from None
        except NascliError as error:
            if not isinstance(error, DriverLeaseLost):
                driver.fail(error)
            driver.release()
            raise
        except BaseException:
            driver.release()
            raise
        return _execute(store, driver, db_url=db_url, workers=workers, view=view or View(), resumed=True)
    finally:
        store.close()


def newest_unfinished(store: Store) -> RunInfo:
    for run in store.list_runs():
        if run.status not in ("finished", "cancelled"):
            return run
    raise NascliError("there is no unfinished run to resume", hint="start one with `nas run --preset NAME`")
