"""A killed driver leaves no local worker behind and no task held: its `nas worker` children get
SIGTERM from the kernel (PR_SET_PDEATHSIG), release their tasks and exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nascli.store import open_store


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_sigkilled_driver_takes_its_local_workers_and_their_tasks_with_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    env = {**os.environ, "NASCLI_DRIVER_LEASE_SECONDS": "2"}
    env.pop("NAS_DB_URL", None)
    driver = subprocess.Popen(
        [sys.executable, "-m", "nascli", "run", "--preset", "synthetic-quick", "--workers", "2", "--db", url,
         "--set", "task.synthetic_seconds=2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while time.monotonic() < deadline:  # both workers started and one of them holds a task
            workers = children_of(driver.pid)
            if len(workers) == 2 and Path(url.removeprefix("sqlite:///")).exists():
                store = open_store(url)
                try:
                    if store.queue_counts()["running"] > 0:
                        break
                finally:
                    store.close()
            time.sleep(0.2)
        else:
            pytest.fail("the local workers never started working")
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 20
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in workers), "local workers outlived their driver"
        store = open_store(url)
        try:
            assert store.queue_counts()["running"] == 0  # released at once, no lease left to expire
        finally:
            store.close()
    finally:
        if driver.poll() is None:
            driver.kill()
