"""Values that must be refused before anything is created: non-finite floats, integers the database
cannot hold, sizes that would never finish, config files that are not UTF-8 TOML, and run rows
edited into something invalid — each one line on stderr, exit 2, no traceback, no database file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from nascli.cli import app
from nascli.store import open_store

runner = CliRunner()


@pytest.fixture(autouse=True)
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("NAS_DB_URL", "NAS_DEBUG"):
        monkeypatch.delenv(name, raising=False)


def one_line(result, *fragments: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("setting, fragments", [
    ("worker.lease_seconds=inf", ("worker.lease_seconds", "finite")),
    ("worker.heartbeat_seconds=nan", ("worker.heartbeat_seconds", "finite")),
    ("train.lr=-inf", ("train.lr", "finite")),
    ("task.synthetic_seconds=1e400", ("task.synthetic_seconds", "finite")),
    ("ga.population=1000000000", ("ga.population", "<= 1000000", "would not finish")),
    ("ga.islands=100000000", ("ga.islands", "<=")),
    ("ga.generations=1000000000000", ("ga.generations", "<=")),
    ("train.epochs=99999999999", ("train.epochs", "<=")),
    ("run.seed=99999999999", ("run.seed", "at most 2147483647", "database")),
    ("task.synthetic_classes=99999999999", ("task.synthetic_classes", "2147483647")),
])
def test_refused_before_anything_is_created(tmp_path: Path, setting, fragments) -> None:
    db = tmp_path / "nas.db"
    one_line(runner.invoke(app, ["run", "-p", "synthetic-quick", "--db", f"sqlite:///{db}", "--set", setting]),
             *fragments)
    assert not db.exists()


def test_a_seed_too_large_for_the_database_is_refused_before_the_file_exists(tmp_path: Path) -> None:
    db = tmp_path / "nas.db"
    one_line(runner.invoke(app, ["run", "-p", "synthetic-quick", "--db", f"sqlite:///{db}", "--seed", str(2**63)]),
             "run.seed")
    assert not db.exists()


@pytest.mark.parametrize("content, fragment", [
    (b"\xff\xfe[store]\nurl = 'sqlite:///x.db'\n", "not UTF-8"),
    (b"[store\nurl = 1\n", "not valid TOML"),
    (b"[store]\nurl = 'a'\nurl = 'b'\n", "not valid TOML"),
])
def test_a_broken_nascli_toml_is_one_line_for_every_command(tmp_path: Path, content, fragment) -> None:
    (tmp_path / "nascli.toml").write_bytes(content)
    for args in (["report"], ["run", "-p", "synthetic-quick", "--show-config"], ["export", "--out", "x"],
                 ["init"], ["resume"]):
        one_line(runner.invoke(app, args), "nascli.toml", fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nascli.toml"]


@pytest.mark.parametrize("edit, fragment", [
    ("not json at all", "not a JSON object"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({"ga": {"population": "many"}}), "ga.population"),
    (json.dumps({"worker": {"lease_seconds": 1e309}}), "worker.lease_seconds"),
])
def test_an_edited_run_row_is_one_line_naming_the_run(tmp_path: Path, edit, fragment) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    with open_store(url, create=True) as store:
        run = store.create_run("edited", "island-ga", "synthetic-quick", 0, {"ga": {"population": 4}})
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE run SET config_json = ? WHERE id = ?", (edit, run.id))
    engine.dispose()
    for args in (["report", run.id], ["export", run.id, "--out", "x"], ["resume", run.id]):
        one_line(runner.invoke(app, [*args, "--db", url]), f"run {run.id}", fragment)
