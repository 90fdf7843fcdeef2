"""`nas worker --gpus` / `--per-device N`: `nas worker` children, N per GPU (or N on the CPU), kept
running, shown as one view.

Each GPU child gets a CUDA_VISIBLE_DEVICES of its own (the launcher's entry for its GPU), so it sees
exactly one device, `cuda:0`, and cannot touch another GPU; the N children of one GPU share it. CPU
children (`gpus=None`) train with `--device cpu`. Every child is a whole `nas worker`: its own worker
id, claims, heartbeats and signal handling. A child that dies (a device fault exits with
`EXIT_DEVICE_FAULT`, a crash or a kill with something else) is started again after a pause that
doubles each time (`backoff`, 2x, ... up to `MAX_BACKOFF_SECONDS`); after `max_failures` failures
in a row that child is left out, with one line saying so. A child that ends on its own (exit 0:
idle timeout, --max-tasks) is done; one that ends with 2 (a user error, the same for every child)
is not restarted either.

Children write plain log lines to a pipe (never to the terminal): the launcher prefixes them with
the child's label (`gpu0`; `gpu0.1` for the second child of GPU 0 with N > 1; `cpu1`) on a pipe or
file, and on a terminal draws a single table, one row per child.
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
from nascli.train.time_limit import EXIT_HUNG_EVALUATION

MAX_BACKOFF_SECONDS = 60.0
# A child that stayed up this long was healthy: its failure streak starts again from zero.
HEALTHY_AFTER_SECONDS = 300.0
_POLL_SECONDS = 0.1
_USER_ERROR = 2


def exit_reason(code: int) -> str:
    if code == EXIT_DEVICE_FAULT:
        return "device fault"
    if code == EXIT_HUNG_EVALUATION:
        return "hung evaluation"
    if code < 0:
        known = -code in signal.Signals._value2member_map_
        return f"killed by {signal.Signals(-code).name}" if known else f"signal {-code}"
    return f"exit {code}"


def restart_pause(backoff: float, failures: int) -> float:
    """Seconds before a worker's restart after `failures` failures in a row: doubling, capped."""
    return min(MAX_BACKOFF_SECONDS, backoff * 2 ** (failures - 1))


@dataclass
class GpuChild:
    gpu: int | None  # index among the launcher's visible devices; None: a CPU child
    visible: str | None  # the child's CUDA_VISIBLE_DEVICES (None: a CPU child, environment as it is)
    slot: int = 0  # which of the device's --per-device children
    label: str = ""  # the log-line prefix and table row: gpu0, gpu0.1, cpu1
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0  # in a row
    restarts: int = 0
    restart_at: float | None = None
    state: str = "starting"
    last_line: str = ""
    final_code: int | None = None  # set once the child will not run again

    @property
    def device(self) -> str:
        """The --device the child is started with."""
        return "cpu" if self.gpu is None else "cuda:0"

    def describe(self, shared: bool) -> str:
        """How one line names it: `GPU 1`, `GPU 1 worker 2` when GPU 1 has several, `CPU worker 2`."""
        if self.gpu is None:
            return f"CPU worker {self.slot}"
        return f"GPU {self.gpu} worker {self.slot}" if shared else f"GPU {self.gpu}"


def _children(gpus: list[int] | None, per_device: int, parent_visible: str | None) -> list[GpuChild]:
    if gpus is None:
        return [GpuChild(None, None, slot, f"cpu{slot}") for slot in range(per_device)]
    return [GpuChild(gpu, child_visible_devices(gpu, parent_visible), slot,
                     f"gpu{gpu}" if per_device == 1 else f"gpu{gpu}.{slot}")
            for gpu in gpus for slot in range(per_device)]


@dataclass
class GpuLauncher:
    command: Sequence[str]  # the child's command line, without --device
    gpus: list[int] | None  # None: CPU children
    per_device: int = 1  # children per GPU (or on the CPU)
    backoff: float = 1.0
    max_failures: int = 3
    healthy_after: float = HEALTHY_AFTER_SECONDS
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
    children: list[GpuChild] = field(default_factory=list)

    def __post_init__(self) -> None:
        parent_visible = self.env.get("CUDA_VISIBLE_DEVICES")
        if self.per_device < 1:
            raise ValueError(f"per_device must be at least 1, not {self.per_device}")
        self.children = _children(self.gpus, self.per_device, parent_visible)
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.on_change: Callable[[], None] = lambda: None

    # ------------------------------------------------------------------ children
    def _start(self, child: GpuChild) -> None:
        env = self.env if child.visible is None else {**self.env, "CUDA_VISIBLE_DEVICES": child.visible}
        # Own process groups: a terminal's Ctrl-C reaches only this launcher, which passes it on once
        # (a second signal would make a child exit without waiting).
        child.process = subprocess.Popen([*self.command, "--device", child.device], env=env,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         process_group=0)
        child.started_at = time.monotonic()
        child.restart_at = None
        child.state = "running"
        threading.Thread(target=self._read, args=(child, child.process), daemon=True, name=child.label).start()

    def _read(self, child: GpuChild, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line:
                with self._lock:
                    child.last_line = line
                self._line(child, line)

    def _line(self, child: GpuChild, line: str) -> None:
        self.say(f"{child.label}: {line}")

    def _ended(self, child: GpuChild, code: int, now: float) -> None:
        child.process = None
        if code == 0 or code == _USER_ERROR or self.stopping.is_set():
            child.final_code, child.state = code, ("finished" if code == 0 else exit_reason(code))
            return
        child.failures = 1 if now - child.started_at >= self.healthy_after else child.failures + 1
        name = child.describe(self.per_device > 1)
        if child.failures >= self.max_failures:
            child.final_code, child.state = code, "left out"
            if child.gpu is None:
                self.say(f"{name} left out: it failed {child.failures} times in a row (last: {exit_reason(code)}); "
                         f"check its log lines above, then start a worker again")
            else:
                self.say(f"{name} (CUDA_VISIBLE_DEVICES={child.visible}) left out: its worker failed "
                         f"{child.failures} times in a row (last: {exit_reason(code)}); check nvidia-smi and the "
                         f"kernel log, then start a worker for it again")
            return
        pause = restart_pause(self.backoff, child.failures)
        child.restart_at = now + pause
        child.state = f"{exit_reason(code)}; restarting in {pause:g} s"
        self.say(f"{name}: worker ended ({exit_reason(code)}); restarting it in {pause:g} s")

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
        EXIT_DEVICE_FAULT if a GPU child was left out, else the worst other code, else 0."""
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
        if any(child.state == "left out" and child.gpu is not None for child in self.children):
            return EXIT_DEVICE_FAULT
        return max(codes, key=abs, default=0)


def run_per_gpu(command: Sequence[str], gpus: list[int] | None, *, per_device: int = 1, terminal: bool) -> int:
    """Launch `per_device` children per GPU (on the CPU when `gpus` is None), forward SIGTERM/SIGINT,
    and show one view (a live table on a terminal)."""
    launcher = GpuLauncher(command, gpus, per_device)

    def forward(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
        launcher.stop(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    if not terminal:
        return launcher.run()
    from nascli.worker_status import GpuTable

    with GpuTable(launcher) as table:
        # the table shows each child's last line
        launcher._line = lambda child, line: table.refresh()  # type: ignore[method-assign]
        launcher.say = table.say
        launcher.on_change = table.refresh
        return launcher.run()


__all__ = ["GpuChild", "GpuLauncher", "HEALTHY_AFTER_SECONDS", "MAX_BACKOFF_SECONDS", "exit_reason", "run_per_gpu"]
