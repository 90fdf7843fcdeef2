"""The GPU path on a machine without a GPU: real `nas worker` processes and real SQLite.

Device faults and extra GPUs come through the seams in `nascli.devices` (NASCLI_FAKE_GPUS,
NASCLI_INJECT_DEVICE_FAULT) or a faulting evaluator; everything else (claims, releases, restarts,
CUDA_VISIBLE_DEVICES, exit codes) is the product's own code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from worker_harness import (
    assert_done_exactly_once,
    log_text,
    prepare_run,
    start_worker,
    synthetic_tasks,
    wait_all,
)

from nascli.devices import EXIT_DEVICE_FAULT, FAKE_GPUS_ENV, INJECT_FAULT_ENV
from nascli.driver.workers import live_worker_count
from nascli.errors import DeviceFault
from nascli.gpu_launcher import GpuLauncher
from nascli.store import open_store
from nascli.worker import Worker, WorkerOptions
from tests.helpers import clean_env, wait_for


def _env(**extra: str) -> dict[str, str]:
    env = clean_env(PYTHONUNBUFFERED="1", **extra)
    for name in ("CUDA_VISIBLE_DEVICES", FAKE_GPUS_ENV, INJECT_FAULT_ENV):
        if name not in extra:
            env.pop(name, None)
    return env


def _rows(url: str, run_id: str):
    store = open_store(url)
    try:
        return store.evaluations(run_id)
    finally:
        store.close()


def test_a_worker_asked_for_an_absent_gpu_exits_2_with_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    prepare_run(url, synthetic_tasks(1))
    done = subprocess.run([sys.executable, "-m", "nascli", "worker", "--db", url, "--device", "cuda:0",
                           "--idle-timeout", "1"], capture_output=True, text=True, env=_env(), timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cuda:0: no CUDA device is visible" in lines[0], done.stderr


def test_a_device_fault_releases_the_task_without_spending_an_attempt_and_ends_the_worker(tmp_path):
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    run_id = prepare_run(url, synthetic_tasks(2))
    evaluated: list[int] = []

    def faulting_gpu(task, **kwargs):
        evaluated.append(task.evaluation_id)
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    store = open_store(url)
    try:
        worker = Worker(store, WorkerOptions(device="cuda:0", run_id=run_id, idle_timeout=1), evaluate=faulting_gpu)
        with pytest.raises(DeviceFault, match="illegal memory access"):
            worker.run()
    finally:
        store.close()
    assert len(evaluated) == 1  # the unhealthy worker claims nothing more
    assert worker.unhealthy is not None and worker.stats.released == 1 and worker.stats.failed == 0
    rows = _rows(url, run_id)
    assert [(row.status, row.failures) for row in rows] == [("pending", 0), ("pending", 0)]


def test_a_worker_process_on_a_faulting_gpu_exits_with_the_fault_code_and_gives_the_task_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    run_id = prepare_run(url, synthetic_tasks(1))
    done = subprocess.run([sys.executable, "-m", "nascli", "worker", "--db", url, "--idle-timeout", "5"],
                          capture_output=True, text=True, timeout=60,
                          env=_env(**{FAKE_GPUS_ENV: "1", INJECT_FAULT_ENV: "all"}))
    assert done.returncode == EXIT_DEVICE_FAULT, done.stderr
    assert "(device cuda:0)" in done.stderr  # no --device: a visible GPU is the default
    assert "error: cuda:0: RuntimeError: CUDA error: an illegal memory access" in done.stderr
    assert [(row.status, row.failures) for row in _rows(url, run_id)] == [("pending", 0)]


@pytest.mark.slow
def test_gpus_all_gives_each_child_its_own_gpu_as_cuda_0(tmp_path):
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    run_id = prepare_run(url, synthetic_tasks(20, seconds=0.05))
    done = subprocess.run([sys.executable, "-m", "nascli", "worker", "--db", url, "--gpus", "all", "--idle-timeout",
                           "1"], capture_output=True, text=True, timeout=60, env=_env(**{FAKE_GPUS_ENV: "2"}))
    assert done.returncode == 0, done.stderr
    assert "gpu0: " in done.stderr and "(device cuda:0, CUDA_VISIBLE_DEVICES=0)" in done.stderr
    assert "gpu1: " in done.stderr and "(device cuda:0, CUDA_VISIBLE_DEVICES=1)" in done.stderr
    assert_done_exactly_once(url, run_id, 20)


@pytest.mark.slow
def test_the_launcher_restarts_a_faulting_gpu_with_backoff_then_leaves_it_out(tmp_path):
    # GPU 1 of 2 faults in every evaluation; each restarted worker claims the task its predecessor
    # gave back, so the three faults do not depend on timing.
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    run_id = prepare_run(url, synthetic_tasks(1))
    lines: list[str] = []
    launcher = GpuLauncher([sys.executable, "-m", "nascli", "worker", "--db", url, "--idle-timeout", "30"], [1],
                           backoff=0.2, max_failures=3, env=_env(**{FAKE_GPUS_ENV: "2", INJECT_FAULT_ENV: "1"}),
                           say=lines.append)
    assert launcher.run() == EXIT_DEVICE_FAULT
    (sick,) = launcher.children
    assert (sick.state, sick.restarts, sick.failures) == ("left out", 2, 3)
    restarts = [line for line in lines if line.startswith("GPU 1: worker ended (device fault); restarting")]
    assert [line.split(" in ")[-1] for line in restarts] == ["0.2 s", "0.4 s"]  # the pause doubles
    assert [line for line in lines if "left out" in line] == [
        "GPU 1 (CUDA_VISIBLE_DEVICES=1) left out: its worker failed 3 times in a row (last: device fault); "
        "check nvidia-smi and the kernel log, then start a worker for it again"]
    assert sum("device fault during evaluation 1" in line for line in lines) == 3
    # Three faults cost the genome nothing: the task is pending with no attempt spent.
    assert [(row.status, row.failures) for row in _rows(url, run_id)] == [("pending", 0)]


def test_a_worker_stays_counted_as_live_through_tasks_longer_than_the_counting_window(tmp_path):
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    heartbeat = 0.1
    window = 3 * heartbeat  # the driver's window: three heartbeat intervals (45 s by default)
    run_id = prepare_run(url, synthetic_tasks(2, seconds=5 * window),
                         worker_config={"heartbeat_seconds": heartbeat, "lease_seconds": 1.0})
    store = open_store(url)
    try:
        worker = Worker(store, WorkerOptions(run_id=run_id, max_tasks=2))
        thread = threading.Thread(target=worker.run)
        thread.start()
        counts = []
        time.sleep(0.3)
        while thread.is_alive():
            counts.append(live_worker_count(store, window))
            time.sleep(0.1)
        thread.join()
    finally:
        store.close()
    assert worker.stats.done == 2 and len(counts) > 10
    assert counts == [1] * len(counts)


@pytest.mark.slow
def test_gpus_all_in_a_terminal_draws_one_table_not_one_live_line_per_child(tmp_path):
    import pty

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    run_id = prepare_run(url, synthetic_tasks(6, seconds=0.05))
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "nascli", "worker", "--db", url, "--gpus", "all",
                                "--idle-timeout", "1"], stdin=terminal, stdout=terminal, stderr=terminal,
                               env={**_env(**{FAKE_GPUS_ENV: "2"}), "TERM": "xterm", "COLUMNS": "200"})
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: every process writing to it has exited
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=60) == 0
    os.close(controller)
    text = output.decode(errors="replace")
    assert "CUDA_VISIBLE_DEVICES" in text and "restarts" in text  # the launcher's table
    assert "waiting for work" not in text  # a child's own live status line (LiveReporter)
    assert_done_exactly_once(url, run_id, 6)


def _per_device_run(url: str, tasks: int) -> str:
    # Tasks far longer than the test, heartbeats every 0.2 s: every child is seen holding and beating.
    return prepare_run(url, synthetic_tasks(tasks, seconds=120), worker_config={"heartbeat_seconds": 0.2})


def _hold_beat_and_release(url: str, run_id: str, launcher: subprocess.Popen, children: int) -> list:
    """Wait until `children` tasks are held by as many workers and each has heartbeaten since its
    claim, SIGTERM the launcher, and return the registered workers."""
    store = open_store(url)
    try:
        def held():
            rows = store.evaluations(run_id, status="running")
            return rows if len(rows) == children else None

        claimed = wait_for(held, 60, f"{children} workers to claim a task each")
        assert len({row.worker_id for row in claimed}) == children  # one claim per worker, not one worker
        first = {row.id: row.heartbeat_at for row in claimed}
        wait_for(lambda: all(row.heartbeat_at > first[row.id] for row in store.evaluations(run_id, status="running")),
                 30, "every held task's heartbeat to move")
        registered = store.workers()
        launcher.send_signal(signal.SIGTERM)
        assert wait_all([launcher], timeout=30) == [0]
        rows = store.evaluations(run_id)
    finally:
        store.close()
    assert [row for row in rows if row.status == "running"] == []
    released = [row for row in rows if row.id in first]
    assert [(row.status, row.releases, row.failures) for row in released] == [("pending", 1, 0)] * children
    assert all(row.attempt == 0 for row in rows if row.id not in first)  # nothing else claimed
    return registered


@pytest.mark.slow
def test_per_device_on_the_cpu_runs_n_workers_that_each_claim_heartbeat_and_release_on_sigterm(tmp_path):
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    run_id = _per_device_run(url, 5)
    launcher = start_worker(url, tmp_path / "logs", "--device", "cpu", "--per-device", "3", "--run", run_id)
    registered = _hold_beat_and_release(url, run_id, launcher, 3)
    assert sorted(worker.device for worker in registered) == ["cpu"] * 3
    assert len({worker.pid for worker in registered}) == 3 and launcher.pid not in {w.pid for w in registered}
    serving = [line for line in log_text(tmp_path / "logs").splitlines() if " serving " in line]
    assert sorted(line.split(": ")[0] for line in serving) == ["cpu0", "cpu1", "cpu2"]  # one view, prefixed
    assert all("(device cpu" in line for line in serving)


@pytest.mark.slow
def test_per_device_with_gpus_runs_n_workers_on_each_gpu_with_its_own_visible_device(tmp_path):
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    run_id = _per_device_run(url, 6)
    launcher = subprocess.Popen([sys.executable, "-m", "nascli", "worker", "--db", url, "--gpus", "all",
                                 "--per-device", "2", "--run", run_id], stdout=subprocess.DEVNULL,
                                stderr=open(tmp_path / "launcher.log", "wb"), env=_env(**{FAKE_GPUS_ENV: "2"}))  # noqa: SIM115
    _hold_beat_and_release(url, run_id, launcher, 4)
    text = (tmp_path / "launcher.log").read_text()
    serving = sorted(line for line in text.splitlines() if " serving " in line)
    assert [line.split(": ")[0] for line in serving] == ["gpu0.0", "gpu0.1", "gpu1.0", "gpu1.1"]
    for line in serving:  # the two children of GPU n both see it, and only it, as cuda:0
        assert f"(device cuda:0, CUDA_VISIBLE_DEVICES={line[3]}" in line
