"""The `nas` shell: help, presets listing, one-line errors with exit 2, --debug, and `nas run` options."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import types

import pytest
from typer.testing import CliRunner

from nascli.cli import app
from nascli.commands import common
from nascli.config import RunConfig, list_presets
from tests.helpers import assert_one_line_error

runner = CliRunner()
COMMANDS = ["init", "run", "worker", "resume", "report", "export", "cancel", "delete"]


def nas(*args: str, **kwargs):
    return runner.invoke(app, list(args), **kwargs)


# ---------------------------------------------------------------- help and import cost


def test_help_lists_the_commands_in_order():
    result = nas("--help")
    assert result.exit_code == 0
    panel = result.stdout.split("Commands")[1]
    listed = re.findall(r"^│ (\w+) ", panel, flags=re.MULTILINE)
    assert listed == COMMANDS


def test_every_command_has_help():
    for name in COMMANDS:
        result = nas(name, "--help")
        assert result.exit_code == 0 and "Usage: nas " + name in result.stdout


def test_importing_the_cli_does_not_import_torch_or_pydantic():
    code = "import nascli.cli, sys; bad = {'torch', 'pydantic'} & set(sys.modules); assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_python_dash_m_nascli_works():
    result = subprocess.run([sys.executable, "-m", "nascli", "--help"], capture_output=True, text=True, check=True)
    assert "run" in result.stdout and "worker" in result.stdout


def test_version():
    result = nas("--version")
    assert result.exit_code == 0 and result.stdout.startswith("nas ")


# ---------------------------------------------------------------- presets


def test_list_presets_table_shows_every_preset():
    result = nas("run", "--list-presets")
    assert result.exit_code == 0
    for name, _ in list_presets():
        assert name in result.stdout
    assert "Klos et al. Table 5" in result.stdout


def test_list_presets_json_is_machine_readable():
    result = nas("run", "--list-presets", "--format", "json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [(row["name"], row["description"]) for row in rows] == list_presets()
    assert {row["name"]: row["strategy"] for row in rows}["cifar10-regevo"] == "regularized-evolution"
    assert {row["name"]: row["dataset"] for row in rows}["digits-quick"] == "digits"


def test_list_presets_csv_and_markdown():
    csv_out = nas("run", "--list-presets", "-f", "csv").stdout.splitlines()
    assert csv_out[0] == "name,strategy,dataset,description" and len(csv_out) == len(list_presets()) + 1
    markdown = nas("run", "--list-presets", "-f", "markdown").stdout.splitlines()
    assert markdown[0] == "| name | strategy | dataset | description |" and markdown[1] == "|---|---|---|---|"


# ---------------------------------------------------------------- one-line errors


def test_unknown_preset_is_one_line_listing_the_presets():
    assert_one_line_error(nas("run", "--preset", "cifar11"), "unknown preset 'cifar11'", "digits-quick")


def test_bad_key_is_one_line_with_a_suggestion():
    assert_one_line_error(nas("run", "-p", "digits-quick", "--set", "ga.island=3"),
                          "--set ga.island=3", "ga.island", "unknown key", "did you mean ga.islands?")


def test_wrong_type_is_one_line_naming_key_and_type():
    assert_one_line_error(nas("run", "-p", "digits-quick", "--set", "train.lr=fast"),
                          "train.lr = 'fast'", "expected a number")


def test_bad_choice_in_a_config_file_names_the_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("[train]\noptimizer = 'rmsprop'\n")
    assert_one_line_error(nas("run", "--config", str(path)), f"config file {path}", "train.optimizer",
                          "allowed: adam, sgd")


def test_bad_nascli_toml_is_named(tmp_path):
    (tmp_path / "nascli.toml").write_text("[worker]\nheartbeat_seconds = 500\n")
    assert_one_line_error(nas("run", "-p", "digits-quick"), "nascli.toml", "worker.heartbeat_seconds")


def test_nothing_to_run_says_how():
    assert_one_line_error(nas("run"), "nothing to run", "--list-presets")


def test_debug_shows_the_traceback_and_does_not_stick():
    result = nas("--debug", "run", "--preset", "cifar11")
    assert result.exit_code == 2 and "Traceback" in result.stderr and "unknown preset" in result.stderr
    result = nas("run", "--preset", "cifar11", "--debug")
    assert result.exit_code == 2 and "Traceback" in result.stderr
    assert_one_line_error(nas("run", "--preset", "cifar11"))


def test_option_errors_exit_2():
    assert nas("run", "--workers", "-1").exit_code == 2
    assert nas("run", "--format", "yaml", "--list-presets").exit_code == 2
    for args in (["run", "--workers", "-1"], ["run", "--format", "yaml", "--list-presets"], ["run", "--no-such-option"],
                 ["report", "--top", "many"]):
        result = nas(*args)
        assert result.exit_code == 2 and result.stderr.strip(), (args, result.output)
        assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), (args, result.exception)


# ---------------------------------------------------------------- nas run: resolution and hand-off


def show_config(*args: str, env: dict[str, str] | None = None) -> RunConfig:
    result = nas("run", *args, "--show-config", "--format", "json", env=env)
    assert result.exit_code == 0, result.stderr
    return RunConfig.model_validate(json.loads(result.stdout))


def test_run_options_become_config_keys():
    cfg = show_config("-p", "digits-quick", "--seed", "42", "--name", "12", "--set", "ga.islands=3", "-s",
                      "train.epochs=2")
    assert (cfg.run.seed, cfg.run.name, cfg.ga.islands, cfg.train.epochs) == (42, "12", 3, 2)
    assert cfg.task.dataset == "digits"


def test_show_config_toml_reads_back_as_a_config_file(tmp_path):
    result = nas("run", "-p", "stl10-denoise", "--set", "train.epochs=3", "--show-config")
    assert result.exit_code == 0
    path = tmp_path / "resolved.toml"
    path.write_text(result.stdout)
    assert show_config("--config", str(path)) == show_config("-p", "stl10-denoise", "--set", "train.epochs=3")
    assert tomllib.loads(result.stdout)["train"]["epochs"] == 3


def test_db_url_precedence_and_passwords_never_stored(tmp_path):
    (tmp_path / "nascli.toml").write_text("[store]\nurl = 'sqlite:///project.db'\n")
    assert show_config("-p", "digits-quick").store.url == "sqlite:///project.db"
    env = {"NAS_DB_URL": "postgresql+psycopg://nas:secret@db/nas"}
    assert show_config("-p", "digits-quick", env=env).store.url == "postgresql+psycopg://nas:***@db/nas"
    assert show_config("-p", "digits-quick", "--set", "store.url=sqlite:///set.db", env=env).store.url == \
        "sqlite:///set.db"
    assert show_config("-p", "digits-quick", "--db", "sqlite:///flag.db", "--set", "store.url=sqlite:///set.db",
                       env=env).store.url == "sqlite:///flag.db"


def test_run_hands_the_validated_config_to_the_driver(monkeypatch):
    calls = []

    def start_run(cfg, *, db_url, workers, preset=None, view=None):
        calls.append((cfg, db_url, workers))
        return 1  # the run itself failed

    monkeypatch.setitem(sys.modules, "nascli.driver.session", types.SimpleNamespace(start_run=start_run))
    result = nas("run", "-p", "synthetic-quick", "--workers", "0", "--db", "postgresql+psycopg://u:pw@h/db")
    assert result.exit_code == 1
    (cfg, db_url, workers), = calls
    assert isinstance(cfg, RunConfig) and cfg.task.kind == "synthetic"
    assert db_url == "postgresql+psycopg://u:pw@h/db" and workers == 0
    assert cfg.store.url == "postgresql+psycopg://u@h/db"  # stored without the password, not even masked


# ---------------------------------------------------------------- shared table printer


def test_print_rows_formats(capsys):
    rows = [{"id": "a1", "acc": 0.5, "note": None}, {"id": "b|2", "acc": 1, "note": "x"}]
    common.print_rows(rows, ("id", "acc", "note"), "json")
    assert json.loads(capsys.readouterr().out) == rows
    common.print_rows(rows, ("id", "acc"), "csv")
    assert capsys.readouterr().out.splitlines() == ["id,acc", "a1,0.5", "b|2,1"]
    common.print_rows(rows, ("id", "acc"), "markdown")
    assert capsys.readouterr().out.splitlines()[3] == "| b\\|2 | 1 |"
    common.print_rows(rows, ("id", "acc"), "table", title="T")
    assert "a1" in capsys.readouterr().out


# ---------------------------------------------------------------- click's usage errors


@pytest.mark.parametrize(("args", "fragment", "hint"), [
    (["run", "--workers", "abc"], "'abc' is not a valid int", "nas run --help"),
    (["report", "--top", "x"], "'x' is not a valid int", "nas report --help"),
    (["run", "--wokers", "2"], "No such option: --wokers", "nas run --help"),
    (["frobnicate"], "No such command 'frobnicate'", "nas --help"),
    (["--bogus"], "No such option: --bogus", "nas --help"),
    (["export", "latest", "--rank"], "'--rank' requires an argument", "nas export --help"),
    (["cancel"], "Missing argument 'RUN'", "nas cancel --help"),
    (["worker", "--lease", "fast"], "'fast' is not a valid", "nas worker --help"),
])
def test_usage_errors_are_one_line_with_a_hint_and_exit_2(args, fragment, hint):
    """Through a real process: click's usage box (5 lines, exit 2) becomes the one-line error."""
    result = subprocess.run([sys.executable, "-m", "nascli", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0] and hint in lines[0], lines[0]
    assert result.stdout == ""


def test_nas_alone_still_prints_the_help():
    result = subprocess.run([sys.executable, "-m", "nascli"], capture_output=True, text=True, timeout=60)
    assert "Usage: nas" in result.stdout + result.stderr and "error:" not in result.stderr


# ---------------------------------------------------------------- shell completion


def completion_env(words: str) -> dict[str, str]:
    """typer's bash protocol: what bash sets when it asks `nas` to complete the last word of `words`."""
    return {"_NAS_COMPLETE": "complete_bash", "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}


def complete(words: str) -> list[str]:
    """What bash completion offers for the last word of `words`, answered in this process (the
    working directory is the test's tmp_path, where `nas` looks for nas.db)."""
    result = runner.invoke(app, [], env=completion_env(words), prog_name="nas")
    assert result.exit_code == 0, result.output
    return result.stdout.split()


def test_completion_is_installable():
    result = nas("--help")
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


def test_completion_offers_presets_sections_and_runs(tmp_path):
    # once through a real `python -m nascli` process, as bash runs it; the rest in-process (~0.7 s a process)
    environment = {**{k: v for k, v in os.environ.items() if k != "NAS_DB_URL"},
                   **completion_env("nas run --preset digits-q")}
    process = subprocess.run([sys.executable, "-m", "nascli"], cwd=tmp_path, env=environment, capture_output=True,
                             text=True, timeout=60)
    assert process.returncode == 0, process.stderr
    assert process.stdout.split() == ["digits-quick"]
    assert complete("nas run --preset digits-q") == ["digits-quick"]
    assert complete("nas report latest --section mi") == ["migrations"]
    assert complete("nas cancel ") == []  # no database here: nothing offered, nothing created
    assert not (tmp_path / "nas.db").exists()
    from nascli.store import open_store

    with open_store(f"sqlite:///{tmp_path / 'nas.db'}", create=True) as store:
        run = store.create_run("nightly", "island-ga", None, 0, {})
    assert complete("nas report ") == ["latest", run.id, "nightly"]
    assert complete("nas delete nig") == ["nightly"]
    assert complete("nas worker --run r-") == [run.id]


def test_init_writes_a_password_less_postgresql_url_as_it_is():
    from nascli.commands.init import project_file_text

    text = project_file_text("postgresql://nas@db.example/nas")
    assert '\nurl = "postgresql://nas@db.example/nas"\n' in text and "#" not in text.split("[store]")[1]
    for url in ("postgresql://nas:pa/ss@db/nas", "postgresql://nas@db/nas?password=pa%2Fss"):
        text = project_file_text(url)
        assert "pa/ss" not in text and "pa%2Fss" not in text and "\nurl =" not in text
        assert ('# url = "postgresql://nas:***@db/nas"' in text
                or '# url = "postgresql://nas@db/nas?password=***"' in text)
