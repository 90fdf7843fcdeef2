"""The driver role of one run: the liveness token and the driver lease that fences every write.

The token is a lock the operating system releases when the process dies (a file lock beside a
SQLite database, a session advisory lock on PostgreSQL): whoever can take it knows the previous
driver is dead. The lease is a row field renewed by every step in the step's own transaction
(`fenced`), so a paused or cut-off driver that comes back writes nothing.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nascli.errors import NascliError, RunBusy, StoreError
from nascli.store import Store
from nascli.store.driver_token import DriverToken, driver_token

# The driver lease: renewed by every step (its write fence) and every lease/3 s while idle. A dead
# driver's liveness token frees its run at once; the lease only makes `--force` wait (a driver on an
# unreachable host) and fences a paused one. Tests shorten it.
DRIVER_LEASE_SECONDS = float(os.environ.get("NASCLI_DRIVER_LEASE_SECONDS", "30"))
WAIT_POLL_SECONDS = 0.5  # how often `nas resume --wait` tries the token


class DriverLeaseLost(NascliError):
    """Another driver took this run over (only possible with `nas resume --force`)."""


def new_owner() -> str:
    """A driver's name in the run row: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class DriverLease:
    """This process's hold on the driver role of run `run_id`."""

    store: Store
    run_id: str
    owner: str = field(default_factory=new_owner)
    token: DriverToken | None = None  # the run's liveness token (see acquire)
    token_held: bool = False
    _renewed: float = 0.0
    _token_checked: float = 0.0

    def acquire(self, force: bool = False, wait: bool = False) -> None:
        """Become the run's driver. The liveness token first: whoever can take it knows the previous
        driver is dead (or cut off), and takes the lease over at once. A held token means a live
        driver: RunBusy, or with `wait` try again until it ends. `force`: a driver on an unreachable
        host keeps its token (its session lingers) but cannot renew its lease; take an expired lease
        without the token (it is taken later, when that session ends)."""
        self.token = driver_token(self.store, self.run_id)
        while True:
            self.token_held = self.token.try_acquire()
            if self.token_held:
                self.store.acquire_driver_lease(self.run_id, self.owner, DRIVER_LEASE_SECONDS, takeover=True)
                break
            if force and self.store.acquire_driver_lease(self.run_id, self.owner, DRIVER_LEASE_SECONDS, force=True):
                break
            if not wait:
                raise self._busy(force)
            time.sleep(WAIT_POLL_SECONDS)
        self._renewed = self._token_checked = time.monotonic()

    def _busy(self, force: bool) -> RunBusy:
        current = self.store.get_run(self.run_id)
        remaining = (current.driver_lease_expires_at or 0) - self.store.db_now()
        lease = f"its lease runs {remaining:.0f} s more" if remaining > 0 else "its lease has expired"
        if force and remaining > 0:
            hint = f"--force takes over an expired lease only; wait for it with `nas resume {self.run_id} --wait`"
        else:
            hint = (f"one driver per run: stop that one, or wait for it with `nas resume {self.run_id} --wait`; "
                    f"if it runs on a host that cannot be reached, `nas resume {self.run_id} --force` takes "
                    "over once its lease has expired")
        return RunBusy(f"run {self.run_id} is being driven by a live driver, {current.driver_owner or 'starting'} "
                       f"({lease})", hint=hint)

    def renew(self) -> None:
        """Between steps: check the token now and then, and keep the lease while idle (every step
        renews it anyway, see fenced)."""
        if time.monotonic() - self._token_checked >= DRIVER_LEASE_SECONDS / 3:
            self._token_checked = time.monotonic()
            self._check_token()
        if time.monotonic() - self._renewed < DRIVER_LEASE_SECONDS / 3:
            return
        if not self.store.renew_driver_lease(self.run_id, self.owner, DRIVER_LEASE_SECONDS):
            raise self.lost()
        self._renewed = time.monotonic()

    def _check_token(self) -> None:
        if self.token is None:
            return
        if not self.token_held:  # taken with --force: take the token once the old driver's session ends
            try:
                self.token_held = self.token.try_acquire()
            except StoreError:
                pass
        elif not self.token.still_held():
            raise self.lost()

    def lost(self) -> DriverLeaseLost:
        return DriverLeaseLost(f"another driver took run {self.run_id} over; this one stops",
                               hint="nothing is lost: the other driver continues from the database")

    def fenced(self, work: Callable[[], Any], *, what: str) -> Any:
        """`work` as one transaction that first renews this driver's lease: if another driver took
        the run over (a paused or cut-off driver coming back), nothing of it is written."""

        def fenced() -> Any:
            if not self.store.renew_driver_lease(self.run_id, self.owner, DRIVER_LEASE_SECONDS):
                raise self.lost()
            return work()

        result = self.store.atomically(fenced, what=what)
        self._renewed = time.monotonic()
        return result

    def release(self) -> None:
        try:
            self.store.release_driver_lease(self.run_id, self.owner)
        except StoreError:
            pass  # the lease expires by itself
        if self.token is not None:  # after the lease: a free token means no live driver
            self.token.release()
            self.token_held = False
