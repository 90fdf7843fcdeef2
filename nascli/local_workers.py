"""Local `nas worker` processes started by `nas run --workers N` / `nas resume --workers N`.

They are ordinary workers (the same command a remote box runs), pinned to the run. On Linux each
child asks the kernel to SIGTERM it when the driver dies, so a killed driver leaves no orphans
holding leases; a worker's SIGTERM handler releases its task, so nothing is lost either way.
Each runs in a process group of its own: a terminal's Ctrl-C reaches only the driver, which stops
its workers with one SIGTERM each (as the `nas worker --gpus` launcher does).

A worker that exits asking to be started again (`RESTART_CODES`: it ended itself because its
training hung past the time limit, `nascli.train.time_limit`, or because of a device fault) is
started again by `tend()`, which the driver calls between steps, after the pause `nas worker --gpus`
uses (1 s, doubling); after `MAX_FAILURES` such exits in a row it is left out. Each is one line in
that worker's log. Any other exit (a crash, a kill, a user error) ends that worker for good: when
every worker has ended, the driver says so and stops.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from nascli.devices import EXIT_DEVICE_FAULT, child_visible_devices
from nascli.errors import NascliError
from nascli.gpu_launcher import HEALTHY_AFTER_SECONDS, exit_reason, restart_pause
from nascli.safe_files import ensure_directory, open_append
from nascli.train.time_limit import EXIT_HUNG_EVALUATION

_PR_SET_PDEATHSIG = 1
MAX_FAILURES = 3  # in a row; a worker that stayed up HEALTHY_AFTER_SECONDS starts a new streak
RESTART_CODES = (EXIT_HUNG_EVALUATION, EXIT_DEVICE_FAULT)
LOG_TAIL_BYTES = 4096  # enough for a worker's last lines


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: the worker's idle timeout ends it instead


def default_log_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nascli" / "logs"


@dataclass
class LocalWorkers:
    """A pool of `nas worker` child processes for one run."""

    db_url: str
    run_id: str
    count: int
    devices: list[str] = field(default_factory=lambda: ["cpu"])
    log_dir: Path = field(default_factory=default_log_dir)
    processes: list[subprocess.Popen] = field(default_factory=list)  # index i: worker i's current process
    backoff: float = 1.0  # seconds before the first restart of a worker; doubles with each failure in a row
    restarts: int = 0

    def start(self) -> None:
        ensure_directory(self.log_dir)
        self._failures = [0] * self.count
        self._started_at = [0.0] * self.count
        self._restart_at: list[float | None] = [None] * self.count
        self._left_out: set[int] = set()
        for index in range(self.count):
            self.processes.append(self._spawn(index))

    def _spawn(self, index: int) -> subprocess.Popen:
        env = dict(os.environ)
        env["NAS_DB_URL"] = self.db_url  # never on the command line: other users can read argv
        env.pop("NAS_DEBUG", None)
        device, child_env = self._device_of(index, env)
        self._started_at[index] = time.monotonic()
        with open_append(self._log_path(index)) as log:
            return subprocess.Popen(
                [sys.executable, "-m", "nascli", "worker", "--run", self.run_id, "--device", device],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                process_group=0,
            )

    def _log_path(self, index: int) -> Path:
        return self.log_dir / f"{self.run_id}-worker-{index}.log"

    def tend(self) -> None:
        """Start again each worker that died (see the module docstring); call it between steps."""
        now = time.monotonic()
        for index, process in enumerate(self.processes):
            code = process.poll()
            if code is None or index in self._left_out or code not in RESTART_CODES:
                continue
            restart_at = self._restart_at[index]
            if restart_at is None:  # just noticed: decide
                healthy = now - self._started_at[index] >= HEALTHY_AFTER_SECONDS
                self._failures[index] = 1 if healthy else self._failures[index] + 1
                if self._failures[index] >= MAX_FAILURES:
                    self._left_out.add(index)
                    self._say(index, f"worker {index} left out: it failed {self._failures[index]} times in a row "
                              f"(last: {exit_reason(code)})")
                    continue
                pause = restart_pause(self.backoff, self._failures[index])
                self._restart_at[index] = now + pause
                self._say(index, f"worker {index} ended ({exit_reason(code)}); the driver restarts it in {pause:g} s")
            elif now >= restart_at:
                self._restart_at[index] = None
                self.processes[index] = self._spawn(index)
                self.restarts += 1

    def gone(self) -> bool:
        """No worker is running and none will be started again."""
        return self.alive() == 0 and all(
            index in self._left_out or process.returncode not in RESTART_CODES
            for index, process in enumerate(self.processes))

    def last_error(self) -> str | None:
        """The one-line error the most recently failed worker printed last (`error: ...` in its log)."""
        said: list[tuple[float, str]] = []
        for index in range(self.count):
            try:
                with open(self._log_path(index), "rb") as log:
                    status = os.fstat(log.fileno())
                    log.seek(max(0, status.st_size - LOG_TAIL_BYTES))
                    tail = log.read().decode("utf-8", "replace").splitlines()
            except OSError:
                continue
            said += [(status.st_mtime, line.removeprefix("error: ")) for line in tail[-1:]
                     if line.startswith("error: ")]
        return max(said)[1] if said else None

    def _say(self, index: int, line: str) -> None:
        try:
            with open_append(self._log_path(index)) as log:
                log.write(f"nas run: {line}\n".encode())
        except (OSError, NascliError):
            pass  # a log line is not worth failing the run for

    def _device_of(self, index: int, env: dict[str, str]) -> tuple[str, dict[str, str]]:
        """The --device and environment of worker `index`: a GPU worker sees only its own GPU
        (CUDA_VISIBLE_DEVICES of its own), as cuda:0."""
        device = self.devices[index % len(self.devices)]
        if not device.startswith("cuda:"):
            return device, env
        gpu = int(device.partition(":")[2])
        return "cuda:0", {**env, "CUDA_VISIBLE_DEVICES": child_visible_devices(gpu, env.get("CUDA_VISIBLE_DEVICES"))}

    def alive(self) -> int:
        return sum(1 for p in self.processes if p.poll() is None)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every worker (each releases its task), then SIGKILL stragglers."""
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in self.processes:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                p.wait(remaining)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.processes.clear()

    def __enter__(self) -> LocalWorkers:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
