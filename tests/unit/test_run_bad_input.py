"""`nas run` refuses bad input before anything is written: one line, exit 2, no database file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from nascli.cli import app
from tests.helpers import assert_bad_input


@pytest.mark.parametrize("extra, message", [
    (["--set", 'ga.seed_genome="In_8_8:C_3-3-1-1-32:C_3-3-1-1-32:D_1-1-1-1-64:D_10"',
      "--set", "search_space.max_params=1000"], "parameters > max_params 1000"),
    (["--set", 'ga.seed_genome="In_28_28:D_10"'], "start the genome with In_8_8"),
    (["--set", 'ga.seed_genome="In_8_8:D_7"'], "has 10 classes"),
    (["--set", 'ga.seed_genome="In_8_8:Q_1:D_10"'], "bad genome layer"),
])
def test_bad_seed_genome_is_one_line_and_writes_nothing(tmp_path: Path, extra, message) -> None:
    db = tmp_path / "nas.db"
    result = CliRunner().invoke(app, ["run", "--preset", "digits-quick", "--db", f"sqlite:///{db}", *extra])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not db.exists()
    assert_bad_input(lambda: CliRunner().invoke(app, ["run", "--preset", "digits-quick", "--db", f"sqlite:///{db}",
                                                      *extra]), message)


def test_missing_dataset_offline_is_one_line_and_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NASCLI_OFFLINE", "1")
    db = tmp_path / "nas.db"
    args = ["run", "--preset", "mnist-island5", "--db", f"sqlite:///{db}", "--set",
            f'task.data_dir="{tmp_path / "data"}"']
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "dataset 'mnist' is not in" in result.output
    assert not db.exists()
    assert_bad_input(lambda: CliRunner().invoke(app, args), "dataset 'mnist' is not in")
