"""A real multi-host run over TCP: network namespaces as hosts.

Three namespaces (a driver host and two worker hosts), each joined to the root namespace by a
veth pair on a /24 of its own in 10.231.0.0/16 (addresses exist only on these veths). A private
PostgreSQL cluster listens on the host-side veth addresses; `nas run --workers 0` runs in the
driver namespace and one `nas worker` in each worker namespace, all connecting over TCP with the
URL in NAS_DB_URL. Mid-run, one worker's link is cut (`ip link set ... down`) while it holds a
task: the other host re-claims that task once its short lease expires, and the run finishes.
The re-claim time (database clock, from the cut) is printed.

Needs Linux, root and iproute2 (CI has them); skipped elsewhere. Namespaces, veths and the
cluster are removed whatever happens.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nascli.store import open_store
from tests.integration.conftest import PG_BIN, RIGHT_PASSWORD, _as_postgres, free_port

LEASE_SECONDS = 3.0
RUN_SETTINGS = ["--set", "ga.islands=2", "--set", "ga.population=4", "--set", "ga.generations=5",
                "--set", "ga.offspring_per_generation=2", "--set", "task.synthetic_seconds=0.8",
                "--set", f"worker.lease_seconds={LEASE_SECONDS}", "--set", "worker.heartbeat_seconds=1"]


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=30)


def _netns_usable() -> str | None:
    """None when namespaces can be made here, else why not."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    probe = f"ntprobe{secrets.token_hex(3)}"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


@dataclass
class Host:
    """One namespace and its link: host side `<prefix>.1` in the root namespace, `<prefix>.2` inside."""

    namespace: str
    host_link: str
    prefix: str

    @property
    def server_address(self) -> str:
        return f"{self.prefix}.1"

    @property
    def own_address(self) -> str:
        return f"{self.prefix}.2"

    def popen(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        with open(log, "wb") as out:
            return subprocess.Popen(["ip", "netns", "exec", self.namespace, *argv], stdout=out,
                                    stderr=subprocess.STDOUT, env=env)


@dataclass
class NetnsCluster:
    hosts: dict[str, Host]
    port: int
    directory: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def url(self, host: Host) -> str:
        """The database as that host reaches it: its own link's server address, over TCP."""
        return f"postgresql+psycopg://postgres:{RIGHT_PASSWORD}@{host.server_address}:{self.port}/postgres"

    @property
    def local_url(self) -> str:  # for the test's own checks, from the root namespace
        return f"postgresql+psycopg://postgres:{RIGHT_PASSWORD}@127.0.0.1:{self.port}/postgres"

    def start(self, host: Host, *args: str, log: str) -> subprocess.Popen:
        env = {**os.environ, "NAS_DB_URL": self.url(host), "PYTHONUNBUFFERED": "1"}  # never on argv
        process = host.popen([sys.executable, "-m", "nascli", *args], env, self.directory / log)
        process.log_path = self.directory / log  # type: ignore[attr-defined]
        self.processes.append(process)
        return process


def _free_prefixes(count: int) -> list[str]:
    taken = ip("-o", "addr").stdout
    candidates = [f"10.231.{n}" for n in range(1, 250) if f"10.231.{n}." not in taken]
    rng = secrets.SystemRandom()
    return rng.sample(candidates, count)


@pytest.fixture
def netns_cluster():
    reason = _netns_usable()
    if reason:
        pytest.skip(reason)
    if not (PG_BIN / "initdb").exists():
        message = f"PostgreSQL binaries not found in {PG_BIN} (set NASCLI_TEST_PG_BIN)"
        if os.environ.get("NASCLI_REQUIRE_PG") == "1":
            pytest.fail(message)
        pytest.skip(message)
    tag = secrets.token_hex(2)
    directory = Path(tempfile.mkdtemp(prefix="nascli-netns-"))
    shutil.chown(directory, "postgres")
    hosts: dict[str, Host] = {}
    cluster = NetnsCluster(hosts=hosts, port=free_port(), directory=directory)
    data = directory / "data"
    try:
        for name, prefix in zip(("driver", "w1", "w2"), _free_prefixes(3)):
            host = Host(namespace=f"nt{tag}{name}", host_link=f"nt{tag}{name}h", prefix=prefix)
            hosts[name] = host
            ip("netns", "add", host.namespace)
            ip("link", "add", host.host_link, "type", "veth", "peer", "name", f"nt{tag}{name}n")
            ip("link", "set", f"nt{tag}{name}n", "netns", host.namespace)
            ip("addr", "add", f"{host.server_address}/24", "dev", host.host_link)
            ip("link", "set", host.host_link, "up")
            ip("-n", host.namespace, "addr", "add", f"{host.own_address}/24", "dev", f"nt{tag}{name}n")
            ip("-n", host.namespace, "link", "set", f"nt{tag}{name}n", "up")
            ip("-n", host.namespace, "link", "set", "lo", "up")
        password_file = directory / "pw"
        password_file.write_text(RIGHT_PASSWORD + "\n")
        shutil.chown(password_file, "postgres")
        _as_postgres(f"{PG_BIN / 'initdb'} -D {data} -U postgres --no-sync --auth-host=scram-sha-256 "
                     f"--auth-local=trust --pwfile={password_file}")
        with open(data / "pg_hba.conf", "a") as hba:  # the namespaces' addresses, password required
            for host in hosts.values():
                hba.write(f"host all all {host.own_address}/32 scram-sha-256\n")
        listen = ",".join(["127.0.0.1", *(h.server_address for h in hosts.values())])
        _as_postgres(f"{PG_BIN / 'pg_ctl'} -D {data} -l {directory / 'pg.log'} -w -o "
                     f"\"-c listen_addresses={listen} -p {cluster.port} -k {directory} -c fsync=off\" start")
        yield cluster
    finally:
        for process in cluster.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", f"{PG_BIN / 'pg_ctl'} -D {data} -m immediate stop"],
                       capture_output=True, timeout=60)
        for host in hosts.values():
            for pid in ip("netns", "pids", host.namespace, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            ip("link", "del", host.host_link, check=False)  # takes its peer with it
            ip("netns", "del", host.namespace, check=False)
        shutil.rmtree(directory, ignore_errors=True)


def _client_addresses(store) -> set[str]:
    import sqlalchemy as sa

    with store.engine.connect() as connection:
        return {row[0] for row in connection.execute(sa.text(
            "SELECT DISTINCT host(client_addr) FROM pg_stat_activity WHERE client_addr IS NOT NULL"))}


def _until(condition, timeout: float, what: str, watch: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for process in watch:
            if process.poll() is not None:
                log = Path(getattr(process, "log_path", "/dev/null")).read_text(errors="replace")[-2000:]
                raise AssertionError(f"{what}: {process.args[3:6]} exited early (code {process.returncode}):\n{log}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.postgres
def test_run_over_tcp_survives_a_partitioned_worker(netns_cluster):
    cluster = netns_cluster
    driver_host, w1_host, w2_host = (cluster.hosts[n] for n in ("driver", "w1", "w2"))
    init = subprocess.run(["ip", "netns", "exec", driver_host.namespace, sys.executable, "-m", "nascli", "init"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NAS_DB_URL": cluster.url(driver_host)})
    assert init.returncode == 0, init.stderr

    store = open_store(cluster.local_url)
    try:
        driver = cluster.start(driver_host, "run", "--preset", "synthetic-quick", "--seed", "5", "--name", "netns",
                               "--workers", "0", *RUN_SETTINGS, log="driver.log")
        w1 = cluster.start(w1_host, "worker", "--idle-timeout", "120", log="w1.log")
        w2 = cluster.start(w2_host, "worker", "--idle-timeout", "120", log="w2.log")
        _until(lambda: len(store.workers()) == 2 and store.list_runs(), 120, "both workers and the run",
               [driver, w1, w2])
        run_id = store.list_runs()[0].id
        worker_of = {w.pid: w.id for w in store.workers()}
        w1_id, w2_id = worker_of[w1.pid], worker_of[w2.pid]  # ip netns exec execs: same pid

        # Every host talks to the server over its own veth.
        seen = set()
        _until(lambda: seen.update(_client_addresses(store)) or
               {driver_host.own_address, w1_host.own_address, w2_host.own_address} <= seen,
               60, "TCP connections from all three namespaces", [driver, w1, w2])

        # Both hosts evaluate; then cut w1's link while it holds a task.
        def w1_holds_a_task_after_both_worked() -> bool:
            rows = store.evaluations(run_id)
            done_by = Counter(r.worker_id for r in rows if r.status == "done")
            return done_by[w1_id] >= 1 and done_by[w2_id] >= 1 and any(
                r.status == "running" and r.worker_id == w1_id for r in rows)

        _until(w1_holds_a_task_after_both_worked, 120, "w1 holding a task", [driver, w1, w2])
        cut_at = store.db_now()
        ip("link", "set", w1_host.host_link, "down")

        assert driver.wait(timeout=120) == 0, (cluster.directory / "driver.log").read_text()[-3000:]
        rows = store.evaluations(run_id)
        run = store.get_run(run_id)
        individuals = store.individuals(run_id)
    finally:
        store.close()

    assert run.status == "finished"
    assert Counter(r.status for r in rows) == {"done": len(rows)}
    assert sorted(r.individual_id for r in rows) == sorted(i.id for i in individuals)
    stranded = [r for r in rows if r.lease_expiries >= 1]
    assert stranded, "no task was re-claimed after the cut"
    for row in stranded:
        assert row.worker_id == w2_id and row.attempt >= 2  # the other host finished it
    reclaim_seconds = min(r.claimed_at for r in stranded) - cut_at
    assert LEASE_SECONDS * 0.5 <= reclaim_seconds <= LEASE_SECONDS + 20  # generous: a loaded machine
    print(f"netns run {run_id}: {len(rows)} evaluations over TCP; w1 cut at db time {cut_at:.2f}, its task "
          f"re-claimed by w2 after {reclaim_seconds:.2f} s (lease {LEASE_SECONDS} s)")
