"""Ctrl-C on `nas run --workers 2` in a real terminal: a pseudo-terminal whose session leader is the
driver, and SIGINT to its whole foreground process group, as the terminal sends it. No evaluation
may be left `running`, the driver says how to continue in one line, and exits 130."""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import subprocess
import termios
import threading
import time

import pytest
from driver_harness import LONG_RUN, environment, nas

from nascli.store import open_store
from tests.helpers import default_sigint


class Terminal:
    """A pseudo-terminal running one command as its session's foreground process group."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))

        def controlling_terminal() -> None:  # in the child, after setsid: the pty becomes its terminal
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            default_sigint()  # as a shell starts a foreground command

        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                        start_new_session=True, preexec_fn=controlling_terminal)
        os.close(slave)
        self.master = master
        self.chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the last process holding the terminal has exited
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", errors="replace")

    def press_ctrl_c(self) -> None:
        assert os.tcgetpgrp(self.master) == self.process.pid  # the driver's group is in the foreground
        os.killpg(self.process.pid, signal.SIGINT)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(5)
        os.close(self.master)


def running_evaluations(url: str) -> int | None:
    """Running evaluations of the newest run; None before the run exists."""
    try:
        store = open_store(url)
    except Exception:  # noqa: BLE001 - the driver has not created the database yet
        return None
    try:
        runs = store.list_runs()
        return store.queue_counts(runs[0].id)["running"] if runs else None
    finally:
        store.close()


@pytest.mark.slow
def test_ctrl_c_leaves_nothing_running_and_says_how_to_continue(store_url: str, tmp_path) -> None:
    env = environment(LANG="C.UTF-8", TERM="xterm-256color", XDG_CACHE_HOME=str(tmp_path / "cache"))
    terminal = Terminal(nas("run", *LONG_RUN, "--set", "task.synthetic_seconds=0.5", "--workers", "2",
                            "--db", store_url), env)
    try:
        deadline = time.monotonic() + 120
        while (running_evaluations(store_url) or 0) < 2:  # both local workers hold a task
            assert terminal.process.poll() is None, terminal.text
            assert time.monotonic() < deadline, f"the workers never got busy:\n{terminal.text}"
            time.sleep(0.1)
        terminal.press_ctrl_c()
        code = terminal.process.wait(60)
        assert running_evaluations(store_url) == 0  # right after the driver's exit
    finally:
        terminal.close()
    store = open_store(store_url)
    try:
        run = store.list_runs()[0]
    finally:
        store.close()
    assert code == 130, terminal.text
    assert terminal.text.count("interrupted") == 1, terminal.text
    assert terminal.text.count(f"interrupted — continue with: nas resume {run.id}") == 1, terminal.text
    assert "Traceback" not in terminal.text
    assert run.status == "interrupted" and run.driver_owner is None
