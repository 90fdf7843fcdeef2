"""deploy/kubernetes and the Dockerfile, checked without a cluster or a docker engine.

Every manifest is parsed and asserted on (commands, probes, resources, env from the Secret, no URL
in plain text); the two scripts the ConfigMap ships are run: drive.sh against a stand-in `nas`
that checks its arguments with the real CLI parser, worker-alive.py against a fake /proc.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import sqlalchemy
import yaml

from nascli.config import preset_names, resolve

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
CONFIG_MOUNT = "/etc/nascli"
SECRET_NAME, SECRET_KEY = "nascli-db", "NAS_DB_URL"
URL = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def load(name: str) -> dict:
    (document,) = yaml.safe_load_all((DEPLOY / name).read_text())
    return document


def manifest_files() -> list[Path]:
    return sorted(p for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")


def all_documents() -> list[dict]:
    return [doc for path in manifest_files() for doc in yaml.safe_load_all(path.read_text())]


def pod_spec(document: dict) -> dict:
    return document["spec"]["template"]["spec"]


def containers(document: dict) -> list[dict]:
    spec = pod_spec(document)
    return spec.get("initContainers", []) + spec["containers"]


def container(document: dict, name: str) -> dict:
    return next(c for c in pod_spec(document)["containers"] if c["name"] == name)


def env_of(item: dict) -> dict[str, dict]:
    return {entry["name"]: entry for entry in item.get("env", [])}


def strings(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in strings(key) + strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return []


WORKER = load("deployment-worker.yaml")
JOB = load("job-driver.yaml")
CONFIG = load("configmap.yaml")
SECRET = load("secret.yaml")
WORKLOADS = (WORKER, JOB)


# ---------------------------------------------------------------- every manifest


def test_every_manifest_parses_and_is_named() -> None:
    documents = all_documents()
    assert {d["kind"] for d in documents} == {"Namespace", "Secret", "ConfigMap", "Job", "Deployment"}
    for document in documents:
        assert document["apiVersion"] and document["metadata"]["name"].startswith("nascli")


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load("kustomization.yaml")
    assert sorted(kustomization["resources"]) == [p.name for p in manifest_files()]
    assert kustomization["namespace"] == "nascli"
    images = {image["name"] for image in kustomization["images"]}
    used = {c["image"] for document in WORKLOADS for c in containers(document)}
    assert used == images == {"nascli"}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) is not installed")
def test_kustomize_builds_the_overlay() -> None:
    built = subprocess.run(["kubectl", "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=60,
                           check=True)
    documents = list(yaml.safe_load_all(built.stdout))
    assert len(documents) == len(all_documents())
    workloads = [d for d in documents if d["kind"] in ("Job", "Deployment")]
    assert {c["image"] for d in workloads for c in containers(d)} == {"registry.example.com/nascli:0.1.0"}
    assert all(d["metadata"].get("namespace") == "nascli" for d in documents if d["kind"] != "Namespace")


# ---------------------------------------------------------------- the database URL


def test_the_url_lives_only_in_the_secret_and_is_a_placeholder() -> None:
    assert list(SECRET["stringData"]) == [SECRET_KEY]
    url = SECRET["stringData"][SECRET_KEY]
    assert url.startswith("postgresql+psycopg://") and ":CHANGE-ME@" in url
    for document in all_documents():
        if document["kind"] == "Secret":
            continue
        found = [s for s in strings(document) if URL.search(s)]
        assert not found, f"{document['kind']} holds a URL in plain text: {found}"


def test_every_container_reads_the_url_from_the_secret_and_never_takes_db_on_its_command_line() -> None:
    for document in WORKLOADS:
        for item in containers(document):
            entry = env_of(item)[SECRET_KEY]
            assert "value" not in entry
            assert entry["valueFrom"]["secretKeyRef"] == {"name": SECRET_NAME, "key": SECRET_KEY}
            words = item.get("command", []) + item.get("args", [])
            assert not any(w == "--db" or w.startswith("--db=") for w in words), item["name"]
            assert item.get("envFrom") is None  # only the named key, nothing else from the Secret
    assert "--db" not in CONFIG["data"]["drive.sh"]


# ---------------------------------------------------------------- resources, security


def test_every_container_has_requests_and_limits() -> None:
    for document in WORKLOADS:
        for item in containers(document):
            requests, limits = item["resources"]["requests"], item["resources"]["limits"]
            assert {"cpu", "memory"} <= set(requests) and {"cpu", "memory"} <= set(limits), item["name"]
            assert quantity(limits["memory"]) >= quantity(requests["memory"])
            assert quantity(limits["cpu"]) >= quantity(requests["cpu"])


def test_pods_run_unprivileged_with_a_read_only_root_and_writable_cache() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    image_user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)
    for document in WORKLOADS:
        spec = pod_spec(document)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert str(spec["securityContext"]["runAsUser"]) == image_user[1]
        assert spec["automountServiceAccountToken"] is False
        emptydirs = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for item in containers(document):
            context = item["securityContext"]
            assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            mounts = {m["mountPath"]: m for m in item["volumeMounts"]}
            assert mounts[CONFIG_MOUNT]["readOnly"] is True
            assert item["workingDir"] == CONFIG_MOUNT  # where `nas` finds nascli.toml
            cache = env_of(item).get("XDG_CACHE_HOME")
            if cache is not None:  # datasets land there: it must be writable
                assert mounts[cache["value"]]["name"] in emptydirs


# ---------------------------------------------------------------- the worker Deployment


def test_worker_runs_nas_worker_on_every_gpu_of_its_pod() -> None:
    worker = container(WORKER, "worker")
    assert "command" not in worker  # the image's entrypoint: tini -- nas
    assert worker["args"] == ["worker", "--gpus", "all"]
    gpus = worker["resources"]["requests"]["nvidia.com/gpu"]
    assert gpus >= 1 and worker["resources"]["limits"]["nvidia.com/gpu"] == gpus
    assert env_of(worker)["NAS_GPUS_PER_POD"]["value"] == str(gpus)
    assert any(t["key"] == "nvidia.com/gpu" for t in pod_spec(WORKER)["tolerations"])


def test_worker_prestop_signals_and_waits_within_the_grace_period() -> None:
    command = container(WORKER, "worker")["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["/bin/sh", "-c"]
    script = command[2]
    assert script.startswith("kill -TERM 1;")  # tini (PID 1) passes it to the launcher, then to each worker
    wait_bound = int(re.search(r"\$i -lt (\d+)", script)[1])
    grace = pod_spec(WORKER)["terminationGracePeriodSeconds"]
    assert 10 <= wait_bound <= grace - 10
    assert subprocess.run(["sh", "-n", "-c", script]).returncode == 0


def test_worker_probes_check_one_live_worker_per_gpu_and_no_readiness() -> None:
    worker = container(WORKER, "worker")
    probe = ["python3", f"{CONFIG_MOUNT}/worker-alive.py"]
    assert worker["livenessProbe"]["exec"]["command"] == probe
    assert worker["startupProbe"]["exec"]["command"] == probe
    assert "readinessProbe" not in worker  # serves no traffic
    startup = worker["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120  # torch import + CUDA init
    assert "worker-alive.py" in CONFIG["data"]


def test_worker_alive_probe_counts_live_per_gpu_workers(tmp_path: Path) -> None:
    from nascli.commands.worker import _without_launcher_options

    # exactly the argv the `--gpus all` launcher gives its children
    child = [sys.executable, "-m", "nascli", *_without_launcher_options(["worker", "--gpus", "all"])]
    proc = tmp_path / "proc"
    write_cmdline(proc / "1", ["tini", "--", "nas", "worker", "--gpus", "all"])
    write_cmdline(proc / "7", ["/usr/local/bin/python3", "/usr/local/bin/nas", "worker", "--gpus", "all"])
    write_cmdline(proc / "8", [*child, "--device", "cuda:0"])
    write_cmdline(proc / "9", [])  # a dead child not yet reaped (zombie): empty cmdline
    (proc / "self").mkdir()

    assert run_probe(proc, gpus=1) == (0, "worker processes alive on cuda:0")
    assert run_probe(proc, gpus=2) == (1, "1 of 2 worker processes alive (cuda:0)")
    write_cmdline(proc / "9", [*child, "--device", "cuda:1"])
    assert run_probe(proc, gpus=2)[0] == 0
    # What the launcher really starts: every child on cuda:0 of its own CUDA_VISIBLE_DEVICES.
    write_cmdline(proc / "9", [*child, "--device", "cuda:0"])
    assert run_probe(proc, gpus=2) == (0, "worker processes alive on cuda:0, cuda:0")


def write_cmdline(directory: Path, argv: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in argv))


def run_probe(proc: Path, gpus: int) -> tuple[int, str]:
    env = {**os.environ, "NASCLI_PROC_ROOT": str(proc), "NAS_GPUS_PER_POD": str(gpus)}
    done = subprocess.run([sys.executable, "-c", CONFIG["data"]["worker-alive.py"]], env=env, capture_output=True,
                          text=True, timeout=30)
    return done.returncode, done.stdout.strip()


# ---------------------------------------------------------------- the driver Job


def test_driver_job_runs_the_resuming_script_once_at_a_time() -> None:
    spec = JOB["spec"]
    assert spec["parallelism"] == 1 and spec["completions"] == 1
    assert pod_spec(JOB)["restartPolicy"] == "Never"
    driver = container(JOB, "driver")
    assert driver["command"] == ["tini", "-g", "--", "bash", f"{CONFIG_MOUNT}/drive.sh"]
    env = env_of(driver)
    assert env["NAS_PRESET"]["value"] in preset_names()
    assert env["NAS_RUN_NAME"]["value"]
    rules = spec["podFailurePolicy"]["rules"]
    fail = next(r for r in rules if r["action"] == "FailJob")
    assert fail["onExitCodes"] == {"containerName": "driver", "operator": "In", "values": [1]}  # the run failed
    assert any(r["action"] == "Ignore" and r["onPodConditions"][0]["type"] == "DisruptionTarget" for r in rules)
    (schema,) = pod_spec(JOB)["initContainers"]
    assert schema["args"] == ["init"]


def test_the_configmap_nascli_toml_is_valid_and_holds_no_database_url(tmp_path: Path) -> None:
    text = CONFIG["data"]["nascli.toml"]
    assert "store" not in tomllib.loads(text)
    project = tmp_path / "nascli.toml"
    project.write_text(text)
    preset = env_of(container(JOB, "driver"))["NAS_PRESET"]["value"]
    cfg = resolve(preset=preset, project_file=project, env={})
    assert cfg.worker.heartbeat_seconds < cfg.worker.lease_seconds
    assert cfg.store.url is None


# drive.sh against a stand-in `nas`: logs its arguments, answers `report --format json` with
# FAKE_NAS_RUNS, and parses everything else with the real CLI (an unknown option fails).
FAKE_NAS = f"""#!{sys.executable}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_NAS_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:1] == ["report"]:
    if os.environ.get("FAKE_NAS_DOWN"):
        print("error: cannot connect to postgresql+psycopg://nascli_app:***@db/nascli", file=sys.stderr)
        sys.exit(2)
    print(json.dumps({{"schema": "nascli.report/1", "runs": json.loads(os.environ["FAKE_NAS_RUNS"])}}))
    sys.exit(0)
import typer
from nascli.cli import app
group = typer.main.get_command(app)
context = group.make_context("nas", args[:1])
command = group.get_command(context, args[0])
if command is None:
    sys.exit(f"nas: no command {{args[0]!r}}")
try:
    command.make_context(args[0], args[1:], parent=context)  # parse only: nothing runs
except Exception as error:  # click's UsageError / NoSuchOption: what nas would reject (exit 2)
    print(f"nas {{args[0]}}: {{error}}", file=sys.stderr)
    sys.exit(2)
"""


def run_drive(tmp_path: Path, runs: list[dict] | None, **env: str) -> tuple[subprocess.CompletedProcess, list]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "nas"
    fake.write_text(FAKE_NAS)
    fake.chmod(0o755)
    script = tmp_path / "drive.sh"
    script.write_text(CONFIG["data"]["drive.sh"])
    log = tmp_path / "calls.jsonl"
    log.unlink(missing_ok=True)
    base = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_NAS_LOG": str(log),
            "FAKE_NAS_RUNS": json.dumps(runs or []), "NAS_RUN_NAME": "exp-a", "NAS_PRESET": "cifar10-island5",
            "NAS_TAKEOVER_WAIT_SECONDS": "0", "HOME": str(tmp_path)}
    done = subprocess.run(["bash", str(script)], env={**base, **env}, capture_output=True, text=True, timeout=60)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls


def a_run(run_id: str, name: str, status: str) -> dict:
    return {"run_id": run_id, "name": name, "status": status}


REPORT = ["report", "--format", "json"]


def test_drive_starts_the_named_run_when_there_is_none(tmp_path: Path) -> None:
    done, calls = run_drive(tmp_path, [a_run("r-000001", "another", "running")])
    assert done.returncode == 0, done.stderr
    assert calls == [REPORT, ["run", "--preset", "cifar10-island5", "--name", "exp-a", "--workers", "0"]]


@pytest.mark.parametrize("status", ["running", "created", "interrupted", "failed"])
def test_drive_resumes_an_unfinished_run_taking_over_its_lease(tmp_path: Path, status: str) -> None:
    done, calls = run_drive(tmp_path, [a_run("r-00000b", "other", "running"), a_run("r-00000a", "exp-a", status)])
    assert done.returncode == 0, done.stderr
    assert calls == [REPORT, ["resume", "r-00000a", "--force", "--workers", "0"]]
    assert ("taking over its driver lease" in done.stderr) == (status in ("running", "created"))


@pytest.mark.parametrize("status", ["finished", "cancelled"])
def test_drive_exits_0_for_a_run_that_is_over(tmp_path: Path, status: str) -> None:
    done, calls = run_drive(tmp_path, [a_run("r-00000a", "exp-a", status)])
    assert done.returncode == 0, done.stderr
    assert calls == [REPORT]


def test_drive_takes_the_oldest_of_runs_sharing_the_name(tmp_path: Path) -> None:
    newest_first = [a_run("r-00000c", "exp-a", "created"), a_run("r-00000a", "exp-a", "running")]
    done, calls = run_drive(tmp_path, newest_first)
    assert calls[-1] == ["resume", "r-00000a", "--force", "--workers", "0"]
    assert "2 runs are named 'exp-a'" in done.stderr


def test_drive_fails_when_the_database_cannot_be_read(tmp_path: Path) -> None:
    done, calls = run_drive(tmp_path, None, FAKE_NAS_DOWN="1")
    assert done.returncode != 0
    assert calls == [REPORT]  # neither started nor resumed anything


def test_drive_refuses_to_guess_a_run_name(tmp_path: Path) -> None:
    done, calls = run_drive(tmp_path, [], NAS_RUN_NAME="")
    assert done.returncode != 0 and "NAS_RUN_NAME" in done.stderr
    assert calls == []


def test_the_stand_in_rejects_what_the_real_cli_rejects(tmp_path: Path) -> None:
    """The argument check is live: an option nas does not have fails."""
    bin_dir = tmp_path / "bin"
    run_drive(tmp_path, [])  # writes the stand-in
    result = subprocess.run([str(bin_dir / "nas"), "resume", "r-1", "--forced"], capture_output=True, text=True,
                            env={**os.environ, "FAKE_NAS_LOG": str(tmp_path / "x.jsonl")}, timeout=60)
    assert result.returncode == 2 and "--forced" in result.stderr


# ---------------------------------------------------------------- the image


def test_dockerfile_pins_torch_as_constraints_do_and_runs_nas_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.MULTILINE)
    pinned = dict(re.findall(r"\b(torch|torchvision)==([0-9.]+)", dockerfile))
    constraints = (ROOT / "constraints.txt").read_text().splitlines()
    wanted = dict(line.split("==") for line in constraints if line.split("==")[0] in ("torch", "torchvision"))
    assert pinned == wanted
    assert re.search(r"^RUN pip install -c constraints\.txt \.", dockerfile, re.MULTILINE)
    users = re.findall(r"^USER (.+)$", dockerfile, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    entrypoint = re.search(r"^ENTRYPOINT (.+)$", dockerfile, re.MULTILINE)[1]
    assert json.loads(entrypoint) == ["tini", "--", "nas"]
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE):
        for path in shlex.split(source):
            assert (ROOT / path).exists(), f"COPY {path}: not in the repository"
    cache = re.search(r"XDG_CACHE_HOME=(\S+)", dockerfile)[1]
    assert env_of(container(WORKER, "worker"))["XDG_CACHE_HOME"]["value"] == cache


def test_dockerignore_keeps_local_secrets_and_databases_out_of_the_image() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {"nascli.toml", "*.db", ".git", ".env"} <= ignored
    assert not ({"nascli", "presets", "pyproject.toml", "README.md"} & ignored)


def quantity(text) -> float:
    """A Kubernetes quantity (500m, 2, 16Gi) as a number, enough to compare requests with limits."""
    text = str(text)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(units.items(), key=lambda item: -len(item[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def test_the_guide_grants_every_table_and_sequence_of_the_store() -> None:
    """docs/operators-guide.md's least-privilege GRANTs name every table, and every serial id's sequence."""
    from nascli.store.models import metadata

    guide = (ROOT / "docs" / "operators-guide.md").read_text()
    granted_tables = set()
    for objects in re.findall(r"GRANT [A-Z, ]+ ON (?!DATABASE|SCHEMA|SEQUENCE)(.+?) TO nascli_app;", guide):
        granted_tables |= {name.strip() for name in objects.split(",")}
    assert granted_tables == set(metadata.tables)
    (sequences,) = re.findall(r"GRANT USAGE ON SEQUENCE (.+?) TO nascli_app;", guide)
    # PostgreSQL makes a sequence for a single-column integer primary key (SQLAlchemy's autoincrement)
    serial = {f"{table.name}_{column.name}_seq" for table in metadata.tables.values() for column in table.primary_key
              if len(table.primary_key) == 1 and isinstance(column.type, sqlalchemy.Integer)
              and column.autoincrement in (True, "auto")}
    assert {name.strip() for name in sequences.split(",")} == serial
