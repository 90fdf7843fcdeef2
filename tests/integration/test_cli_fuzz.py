"""Hypothesis drives `nas run --show-config`, `nas report` and `nas export` in-process with generated
`--set` values, genome strings, config files and run references. Every case ends in exit 0 or 2,
with at most one line on stderr, never a traceback, and writes nothing outside its temp directory.

    python -m pytest tests/integration/test_cli_fuzz.py -q    # 4 properties x FUZZ_EXAMPLES cases

Each property runs twice: `test_<name>` with FUZZ_EXAMPLES cases (60; marked slow, ~10 s each) and
`test_<name>_quick` with QUICK_EXAMPLES (10) in the inner loop, so a broken promise shows there too.
"""

from __future__ import annotations

import os
import shutil
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_report_builder import build_run
from typer.testing import CliRunner

from nascli.cli import app
from nascli.config import known_keys
from nascli.store import open_store

FUZZ_EXAMPLES = int(os.environ.get("NASCLI_FUZZ_EXAMPLES", "60"))
QUICK_EXAMPLES = 10
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
QUICK = settings(FUZZ, max_examples=QUICK_EXAMPLES)
runner = CliRunner()

KEYS = known_keys()
LAYER = st.sampled_from(["C_3-3-1-1-16", "P_2-2-2-2", "D_10", "R_3-3-16", "I_1", "D_0", "C_0-0-0-0-0", "Q_1",
                         "C_99999999999-1-1-1-1", "In_8_8", "In_8_8_1", "", ":", "D_-1", "C_3-3-1-1-1e9"])
GENOMES = st.one_of(st.lists(LAYER, max_size=8).map(":".join), st.text(max_size=40))
VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["inf", "-inf", "nan", "1e9", "1e400", "true", "[]", "[1, 3]", "{}", '"x"', "none", "''", "[",
                     "\"unterminated", "0x10", "-0", "1_000"]),
    st.text(alphabet=string.printable + "\x00\x1bé☃", max_size=20),
)
RUN_REFS = st.one_of(st.sampled_from(["latest", "r-", "r", "LATEST", "", "..", "/", "r-%", "r-_"]),
                     st.text(max_size=30))
CONFIG_FILES = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda key, value: f"{key.rpartition('.')[0] and '[' + key.rpartition('.')[0] + ']'}\n"
                                 f"{key.rpartition('.')[2]} = {value}\n", st.sampled_from(KEYS), VALUES),
    st.text(max_size=200),
)


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz-db") / "nas.db"
    with open_store(f"sqlite:///{path}", create=True) as store:
        build_run(store, islands=1, population=3, generations=2, overrides=("train.epochs=1",))
    return path


@pytest.fixture
def sandbox(tmp_path, monkeypatch, database):
    monkeypatch.chdir(tmp_path)
    for name in ("NAS_DB_URL", "NAS_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("NASCLI_OFFLINE", "1")
    return tmp_path


class Case:
    """One invocation in a fresh directory inside the sandbox; checks the contract afterwards."""

    count = 0

    def __init__(self, sandbox: Path, database: Path):
        Case.count += 1
        self.root = sandbox / f"case-{Case.count}"
        self.root.mkdir()
        self.work = self.root / "work"
        self.work.mkdir()
        self.db = self.root / "nas.db"
        shutil.copy(database, self.db)
        self.outside = sorted(p.name for p in self.root.parent.iterdir())

    def invoke(self, *args: str):
        previous = os.getcwd()
        os.chdir(self.work)
        try:
            result = runner.invoke(app, [*args, "--db", f"sqlite:///{self.db}"])
        finally:
            os.chdir(previous)
        assert result.exit_code in (0, 2), (args, result.exit_code, result.output, result.exception)
        assert "Traceback" not in result.output, (args, result.output)
        assert len(result.stderr.strip().splitlines()) <= 1, (args, result.stderr)
        assert sorted(p.name for p in self.root.parent.iterdir()) == self.outside, args
        return result


def fuzz(check, **strategies):
    """The property `check` as two tests: the inner loop's few cases and the full, slow run."""
    return QUICK(given(**strategies)(check)), pytest.mark.slow(FUZZ(given(**strategies)(check)))


def check_run_show_config(sandbox, database, sets, genome):
    case = Case(sandbox, database)
    overrides = [arg for key, value in sets for arg in ("--set", f"{key}={value}")]
    case.invoke("run", "-p", "synthetic-quick", "--show-config", *overrides, "--set", f"ga.seed_genome={genome!r}")


test_run_show_config_quick, test_run_show_config = fuzz(
    check_run_show_config, sets=st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=3), genome=GENOMES)


def check_config_files(sandbox, database, content, as_project):
    case = Case(sandbox, database)
    name = "nascli.toml" if as_project else "given.toml"
    (case.work / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    args = ("run", "--show-config") + (("-p", "synthetic-quick") if as_project else ("--config", name))
    case.invoke(*args)
    case.invoke("report")


test_config_files_quick, test_config_files = fuzz(check_config_files, content=CONFIG_FILES, as_project=st.booleans())


def check_report(sandbox, database, run, section, output_format):
    case = Case(sandbox, database)
    case.invoke("report", run, *(("--section", section) if section else ()), "--format", output_format)


test_report_quick, test_report = fuzz(
    check_report, run=RUN_REFS, section=st.sampled_from(["", "top", "summary,islands", "pareto", "nope"]),
    output_format=st.sampled_from(["table", "json", "csv", "markdown", "xml"]))


def check_export(sandbox, database, run, formats, out, everything):
    case = Case(sandbox, database)
    args = ["export", run, "--out", out, "--format", formats]
    if everything:
        args.append("--all")
    case.invoke(*args)


test_export_quick, test_export = fuzz(
    check_export, run=RUN_REFS, formats=st.sampled_from(["code,json", "json", "code", "csv", "bogus", "onnx,code"]),
    out=st.sampled_from(["out", "out/sub", "nascli.toml", "../escape-attempt-is-still-inside", "."]),
    everything=st.booleans())
