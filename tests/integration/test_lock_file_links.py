"""SQLite's lock files beside the database are never opened through a symlink planted at their
names: the writer lock (`nas.db.lock`) and the driver's liveness token (`nas.db.RUN.driver.lock`)
refuse it in one line and create nothing where the link points."""

from __future__ import annotations

from pathlib import Path

from nascli.errors import FileWriteError
from nascli.store.driver_token import FileToken
from tests.helpers import assert_one_line_error, run_nas


def test_a_planted_writer_lock_link_is_refused_in_one_line(tmp_path: Path) -> None:
    victim = tmp_path / "elsewhere" / "victim"
    victim.parent.mkdir()
    (tmp_path / "nas.db.lock").symlink_to(victim)  # dangling: O_CREAT would create the victim
    result = run_nas("init", "--db", f"sqlite:///{tmp_path / 'nas.db'}")
    assert_one_line_error(result, "cannot open the lock file", "nas.db.lock")
    assert not victim.exists()


def test_a_planted_driver_token_link_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    token_path = tmp_path / "nas.db.r-1.driver.lock"
    token_path.symlink_to(victim)
    token = FileToken(token_path)
    try:
        token.try_acquire()
    except FileWriteError as error:
        assert "cannot open the lock file" in str(error) and "\n" not in str(error)
    else:
        raise AssertionError("the token was taken through a symlink")
    assert not victim.exists()
