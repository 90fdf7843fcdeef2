"""`nas worker --gpus`: one `nas worker` child per GPU, kept running, shown as one view.

Each child gets a CUDA_VISIBLE_DEVICES of its own (the launcher's entry for its GPU), so it sees
exactly one device, `cuda:0`, and cannot touch another child's GPU. A child that dies (a device
fault exits with `EXIT_DEVICE_FAULT`, a crash or a kill with something else) is started again
after a pause that doubles each time (`backoff`, 2x, ... up to `MAX_BACKOFF_SECONDS`); after
`max_failures` failures in a row the GPU is left out, with one line saying so. A child that
ends on its own (exit 0: idle timeout, --max-tasks) is done; one that ends with 2 (a user error,
the same for every child) is not restarted either.

Children write plain log lines to a pipe (never to the terminal): the launcher prefixes them with
the GPU on a pipe or file, and on a terminal draws a single table, one row per GPU.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from nascli.devices import EXIT_DEVICE_FAULT, child_visible_devices

MAX_BACKOFF_SECONDS = 60.0
# A child that stayed up this long was healthy: its failure streak starts again from zero.
HEALTHY_AFTER_SECONDS = 300.0
_POLL_SECONDS = 0.1
_USER_ERROR = 2


def exit_reason(code: int) -> str:
    if code == EXIT_DEVICE_FAULT:
        return "device fault"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}" if -code in signal.Signals._value2member_map_ else f"signal {-code}"
    return f"exit {code}"


@dataclass
class GpuChild:
    gpu: int  # index among the launcher's visible devices
    visible: str  # the child's CUDA_VISIBLE_DEVICES
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0  # in a row
    restarts: int = 0
    restart_at: float | None = None
    state: str = "starting"
    last_line: str = ""
    final_code: int | None = None  # set once the child will not run again


@dataclass
class GpuLauncher:
    command: Sequence[str]  # the child's command line, without --device
    gpus: list[int]
    backoff: float = 1.0
    max_failures: int = 3
    healthy_after: float = HEALTHY_AFTER_SECONDS
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
    children: list[GpuChild] = field(default_factory=list)

    def __post_init__(self) -> None:
        parent_visible = self.env.get("CUDA_VISIBLE_DEVICES")
        self.children = [GpuChild(gpu, child_visible_devices(gpu, parent_visible)) for gpu in self.gpus]
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.on_change: Callable[[], None] = lambda: None

    # ------------------------------------------------------------------ children
    def _start(self, child: GpuChild) -> None:
        env = {**self.env, "CUDA_VISIBLE_DEVICES": child.visible}
        # Own process groups: a terminal's Ctrl-C reaches only this launcher, which passes it on once
        # (a second signal would make a child exit without waiting).
        child.process = subprocess.Popen([*self.command, "--device", "cuda:0"], env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, process_group=0)
        child.started_at = time.monotonic()
        child.restart_at = None
        child.state = "running"
        threading.Thread(target=self._read, args=(child, child.process), daemon=True, name=f"gpu{child.gpu}").start()

    def _read(self, child: GpuChild, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line:
                with self._lock:
                    child.last_line = line
                self._line(child, line)

    def _line(self, child: GpuChild, line: str) -> None:
        self.say(f"gpu{child.gpu}: {line}")

    def _ended(self, child: GpuChild, code: int, now: float) -> None:
        child.process = None
        if code == 0 or code == _USER_ERROR or self.stopping.is_set():
            child.final_code, child.state = code, ("finished" if code == 0 else exit_reason(code))
            return
        child.failures = 1 if now - child.started_at >= self.healthy_after else child.failures + 1
        if child.failures >= self.max_failures:
            child.final_code, child.state = code, "left out"
            self.say(f"GPU {child.gpu} (CUDA_VISIBLE_DEVICES={child.visible}) left out: its worker failed "
                     f"{child.failures} times in a row (last: {exit_reason(code)}); check nvidia-smi and the "
                     f"kernel log, then start a worker for it again")
            return
        pause = min(MAX_BACKOFF_SECONDS, self.backoff * 2 ** (child.failures - 1))
        child.restart_at = now + pause
        child.state = f"{exit_reason(code)}; restarting in {pause:g} s"
        self.say(f"GPU {child.gpu}: worker ended ({exit_reason(code)}); restarting it in {pause:g} s")

    # ------------------------------------------------------------------ control
    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop restarting and pass the signal on to every running child (safe in a signal handler)."""
        self.stopping.set()
        for child in self.children:
            process = child.process
            if process is not None and process.poll() is None:
                process.send_signal(signum)

    def run(self) -> int:
        """Until every child has ended for good. Exit code: 2 if a child met a user error, else
        EXIT_DEVICE_FAULT if a GPU was left out, else the worst other code, else 0."""
        for child in self.children:
            self._start(child)
        self.on_change()
        while any(child.final_code is None for child in self.children):
            time.sleep(_POLL_SECONDS)
            now = time.monotonic()
            changed = False
            for child in self.children:
                if child.process is not None and (code := child.process.poll()) is not None:
                    self._ended(child, code, now)
                    changed = True
                elif child.process is None and child.final_code is None and child.restart_at is not None:
                    if self.stopping.is_set():
                        child.final_code, child.state = 0, "stopped"
                    elif now >= child.restart_at:
                        child.restarts += 1
                        self._start(child)
                    changed = True
            if changed:
                self.on_change()
        codes = [child.final_code or 0 for child in self.children]
        if _USER_ERROR in codes:
            return _USER_ERROR
        if any(child.state == "left out" for child in self.children):
            return EXIT_DEVICE_FAULT
        return max(codes, key=abs, default=0)


def run_per_gpu(command: Sequence[str], gpus: list[int], *, terminal: bool) -> int:
    """Launch, forward SIGTERM/SIGINT, and show one view (a live table on a terminal)."""
    launcher = GpuLauncher(command, gpus)

    def forward(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
        launcher.stop(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    if not terminal:
        return launcher.run()
    from nascli.worker_status import GpuTable

    with GpuTable(launcher) as table:
        launcher._line = lambda child, line: table.refresh()  # the table shows each child's last line
        launcher.say = table.say
        launcher.on_change = table.refresh
        return launcher.run()


__all__ = ["GpuChild", "GpuLauncher", "HEALTHY_AFTER_SECONDS", "MAX_BACKOFF_SECONDS", "exit_reason", "run_per_gpu"]
