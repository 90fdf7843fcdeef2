"""The suite is isolated from where it is started: a nascli.toml of unusual values and a NAS_DB_URL in
the caller's directory and environment change no outcome (tests/conftest.py `isolated_cwd_and_env`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import NASCLI_ENV, clean_env

TESTS = Path(__file__).parent
# Valid values a user could well have, each of which breaks some test that reads the caller's directory.
HOSTILE_NASCLI_TOML = """\
[search_space]
max_layers = 2

[store]
url = "sqlite:////nonexistent-nascli-dir/hostile.db"

[train]
epochs = 97
"""
# Tests that run `nas` in-process and as real processes, and read nascli.toml through the CLI.
SAMPLE = ["unit/test_run_bad_input.py", "unit/test_cli.py", "integration/test_bad_input_writes_nothing.py"]


def test_every_test_starts_in_an_empty_directory_with_a_clean_environment(tmp_path: Path) -> None:
    assert Path.cwd() == tmp_path and list(tmp_path.iterdir()) == []
    assert not set(NASCLI_ENV) & set(os.environ)


@pytest.mark.slow
def test_a_hostile_nascli_toml_where_pytest_starts_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "nascli.toml").write_text(HOSTILE_NASCLI_TOML)
    env = clean_env(NAS_DB_URL="sqlite:////nonexistent-nascli-dir/from-env.db")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m",
                           "not postgres and not slow",
                           *(str(TESTS / name) for name in SAMPLE)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nascli.toml"]  # and nothing written there
