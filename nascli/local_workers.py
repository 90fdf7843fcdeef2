"""Local `nas worker` processes started by `nas run --workers N` / `nas resume --workers N`.

They are ordinary workers (the same command a remote box runs), pinned to the run. On Linux each
child asks the kernel to SIGTERM it when the driver dies, so a killed driver leaves no orphans
holding leases; a worker's SIGTERM handler releases its task, so nothing is lost either way.
Each runs in a process group of its own: a terminal's Ctrl-C reaches only the driver, which stops
its workers with one SIGTERM each (as the `nas worker --gpus` launcher does).
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

from nascli.devices import child_visible_devices
from nascli.safe_files import ensure_directory, open_append

_PR_SET_PDEATHSIG = 1


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
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self) -> None:
        ensure_directory(self.log_dir)
        env = dict(os.environ)
        env["NAS_DB_URL"] = self.db_url  # never on the command line: other users can read argv
        env.pop("NAS_DEBUG", None)
        for index in range(self.count):
            device, child_env = self._device_of(index, env)
            log_path = self.log_dir / f"{self.run_id}-worker-{index}.log"
            with open_append(log_path) as log:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "nascli", "worker", "--run", self.run_id, "--device", device],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=child_env,
                        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                        process_group=0,
                    )
                )

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

    def __enter__(self) -> "LocalWorkers":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
