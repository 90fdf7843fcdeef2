"""The heartbeat thread that keeps one claim alive while the main thread trains.

Why a thread: a training epoch can outlast a lease, and the training loop must not be trusted to
call back in time. The thread extends the lease every `interval` seconds; when the store answers
False (another worker holds the task now: our lease expired, e.g. after a SIGSTOP) it sets `lost`,
which the evaluator polls through `should_stop`, and the result is discarded. When the worker is
told to stop (SIGTERM), the thread releases the task at once, so another worker can take it even
while the main thread is still inside an epoch.

One thread serves a worker's claims one after another (`HeartbeatThread`): starting and joining a
thread per task costs two context switches, which is a fifth of a worker's CPU on short tasks.
`finish()` does not wait for the thread; it takes the heartbeat's lock, which the thread holds
for the whole of each heartbeat or release, so an in-flight write still completes first.

Database errors are survivable for as long as the lease can still be valid: the lease ends at
most `lease_seconds` after the last successful heartbeat (the database clock set it when our
call was already under way), so that local bound is conservative.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("nascli.worker")

# After a failed heartbeat, try again this soon (a PostgreSQL restart takes a few seconds).
_RETRY_SECONDS = 0.5


class LeaseStore(Protocol):
    def heartbeat(self, evaluation_id: int, attempt: int, lease_seconds: float) -> bool: ...

    def release(self, evaluation_id: int, attempt: int) -> bool: ...


class HeartbeatThread:
    """A daemon thread that serves Heartbeats one after another (a worker holds one claim at a time).
    Started on first use; a newly served Heartbeat takes over as soon as the previous one ends."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._current: Heartbeat | None = None
        self._thread: threading.Thread | None = None

    def serve(self, heartbeat: Heartbeat) -> None:
        with self._changed:
            self._current = heartbeat
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
                self._thread.start()
            self._changed.notify()

    def _loop(self) -> None:
        while True:
            with self._changed:
                while self._current is None:
                    self._changed.wait()
                heartbeat = self._current
            heartbeat._run()
            with self._changed:
                if self._current is heartbeat:
                    self._current = None


class Heartbeat:
    """Extends the lease of (evaluation_id, attempt) from a daemon thread until `finish()`.

    `stopping` is the worker's shutdown flag: once set (and `wake()` called), the thread releases
    the claim and ends. `lost` is set when the claim is gone (store said False, or no heartbeat
    succeeded for a whole lease). `released` tells whether this thread gave the task back.
    `thread`: the worker's HeartbeatThread (None: a thread of its own). `on_beat` runs after each
    successful heartbeat (the worker refreshes its own liveness there).
    """

    def __init__(self, store: LeaseStore, evaluation_id: int, attempt: int, *, lease_seconds: float,
                 interval: float, stopping: threading.Event, clock: Callable[[], float] = time.monotonic,
                 thread: HeartbeatThread | None = None, on_beat: Callable[[], None] | None = None) -> None:
        self.store = store
        self.evaluation_id = evaluation_id
        self.attempt = attempt
        self.lease_seconds = lease_seconds
        self.interval = interval
        self.stopping = stopping
        self.lost = threading.Event()
        self.released = False
        self.beats = 0
        self._clock = clock
        self._last_ok = clock()  # the claim itself set the lease
        self._wake = threading.Event()
        self._acting = threading.Lock()  # held by the thread for each heartbeat or release
        self._finished = False
        self._thread = thread or HeartbeatThread()
        self._on_beat = on_beat

    @property
    def last_ok(self) -> float:
        """Clock time of the last successful heartbeat (or of the claim)."""
        return self._last_ok

    def start(self) -> Heartbeat:
        self._thread.serve(self)
        return self

    def wake(self) -> None:
        """Make the thread look at `stopping` now instead of at its next beat."""
        self._wake.set()

    def finish(self) -> None:
        """Stop beating (the evaluation ended); waits for an in-flight heartbeat or release."""
        with self._acting:
            self._finished = True
        self._wake.set()

    def _run(self) -> None:
        delay: float | None = self.interval
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            with self._acting:
                if self._finished:
                    return
                if self.stopping.is_set():
                    self._release()
                    return
                delay = self._beat()
            if delay is None:
                return

    def _beat(self) -> float | None:
        """One heartbeat; the delay before the next, or None when the claim is lost."""
        try:
            alive = self.store.heartbeat(self.evaluation_id, self.attempt, self.lease_seconds)
        except Exception as error:  # noqa: BLE001 - any database trouble: retry while the lease may hold
            silent_for = self._clock() - self._last_ok
            if silent_for >= self.lease_seconds:
                log.warning("evaluation %s: no heartbeat got through for %.1f s (lease %.1f s): giving the "
                            "task up (%s)", self.evaluation_id, silent_for, self.lease_seconds, error)
                self.lost.set()
                return None
            log.warning("evaluation %s: heartbeat failed, retrying (%s)", self.evaluation_id, error)
            return min(self.interval, _RETRY_SECONDS)
        if not alive:
            log.warning("evaluation %s attempt %s: claim lost (lease expired and taken over, or the run was "
                        "cancelled or deleted): abandoning the task", self.evaluation_id, self.attempt)
            self.lost.set()
            return None
        self.beats += 1
        self._last_ok = self._clock()
        if self._on_beat is not None:
            try:
                self._on_beat()
            except Exception as error:  # noqa: BLE001 - liveness is best effort; the lease is what matters
                log.debug("evaluation %s: after-heartbeat hook failed (%s)", self.evaluation_id, error)
        return self.interval

    def _release(self) -> None:
        try:
            self.released = self.store.release(self.evaluation_id, self.attempt)
        except Exception as error:  # noqa: BLE001 - the lease will expire instead; nothing is lost
            log.warning("evaluation %s: release failed (%s); its lease will expire instead",
                        self.evaluation_id, error)
            return
        if self.released:
            log.info("evaluation %s attempt %s released for another worker", self.evaluation_id, self.attempt)


def heartbeat_interval(lease_seconds: float, configured: float | None = None) -> float:
    """How often to beat: the configured interval, but at least three beats per lease so one slow or
    failed heartbeat never lets a live worker's lease lapse."""
    ceiling = lease_seconds / 3.0
    return ceiling if configured is None else min(configured, ceiling)


__all__ = ["Heartbeat", "HeartbeatThread", "LeaseStore", "heartbeat_interval"]
