"""Every file nascli writes on a user-chosen path: planted symlinks are refused (the file they point
at stays untouched), existing files need --force, unwritable places and a full disk are one line,
exit 2, and no temporary file is left behind."""

from __future__ import annotations

import errno
import os

import pytest
from test_export_cli import nas, synthetic, synthetic_template, wide_terminal  # noqa: F401  (fixtures)

from nascli import safe_files
from nascli.errors import FileWriteError
from tests.helpers import assert_one_line_error as one_line_error

VICTIM_TEXT = b"precious data outside the output directory\n"


def plant_link(directory, name, victim):
    directory.mkdir(parents=True, exist_ok=True)
    victim.write_bytes(VICTIM_TEXT)
    os.symlink(victim, directory / name)


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp") or p.name.startswith("."))


@pytest.mark.parametrize("name", ["model.py", "metrics.json", "genome.txt"])
def test_export_refuses_a_planted_symlink_even_with_force(synthetic, tmp_path, name):  # noqa: F811
    url, built = synthetic
    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    plant_link(out, name, victim)
    for extra in ((), ("--force",)):
        result = nas("export", built.run_id, "--db", url, "--out", out, "--format", "code,json", *extra)
        one_line_error(result, "symlink")
        assert victim.read_bytes() == VICTIM_TEXT
    assert sorted(p.name for p in out.iterdir()) == [name]  # nothing else written, no temp file


def test_export_parity_weights_never_follow_a_planted_link(synthetic, tmp_path):  # noqa: F811
    """model.py without weights.pt is checked against a scratch copy of the weights: that copy has an
    unpredictable name, is created exclusively, and is gone afterwards."""
    url, built = synthetic
    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    plant_link(out, ".parity-weights.pt", victim)
    result = nas("export", built.run_id, "--db", url, "--out", out, "--format", "code,json", "--train-epochs", "1")
    assert result.exit_code == 0, result.output
    assert victim.read_bytes() == VICTIM_TEXT
    assert sorted(p.name for p in out.iterdir()) == [".parity-weights.pt", "genome.txt", "metrics.json", "model.py"]


def test_export_all_refuses_a_symlink_and_an_existing_file(synthetic, tmp_path):  # noqa: F811
    url, built = synthetic
    victim = tmp_path / "victim.txt"
    plant_link(tmp_path / "tables", "all.csv", victim)
    for extra in ((), ("--force",)):
        result = nas("export", built.run_id, "--db", url, "--all", "--format", "csv", "--out",
                     tmp_path / "tables" / "all.csv", *extra)
        one_line_error(result, "symlink")
    assert victim.read_bytes() == VICTIM_TEXT


def test_report_plot_refuses_symlinks_and_existing_pngs_without_force(synthetic, tmp_path):  # noqa: F811
    url, built = synthetic
    plots, victim = tmp_path / "plots", tmp_path / "victim.png"
    plant_link(plots, f"{built.run_id}-pareto.png", victim)
    result = nas("report", built.run_id, "--db", url, "--plot", plots, "--force")
    one_line_error(result, "symlink")
    assert victim.read_bytes() == VICTIM_TEXT
    assert sorted(p.name for p in plots.iterdir()) == [f"{built.run_id}-pareto.png"]  # checked before drawing

    os.unlink(plots / f"{built.run_id}-pareto.png")
    assert nas("report", built.run_id, "--db", url, "--plot", plots).exit_code == 0
    first = (plots / f"{built.run_id}-workers.png").stat().st_mtime_ns
    one_line_error(nas("report", built.run_id, "--db", url, "--plot", plots), "already exists", "--force")
    assert (plots / f"{built.run_id}-workers.png").stat().st_mtime_ns == first
    assert nas("report", built.run_id, "--db", url, "--plot", plots, "--force").exit_code == 0
    assert leftovers(plots) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_export_into_a_read_only_directory_is_one_line(synthetic, tmp_path):  # noqa: F811
    url, built = synthetic
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        one_line_error(nas("export", built.run_id, "--db", url, "--out", out, "--format", "code,json"), str(out))
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)


def test_export_into_a_read_only_mount_is_one_line(synthetic, tmp_path, monkeypatch):  # noqa: F811
    """As root (this CI), permissions do not stop a write; a read-only file system does: the error the
    kernel gives there (EROFS) is raised where the temporary file is created."""
    url, built = synthetic
    real_open = os.open

    def read_only_fs(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and str(tmp_path / "ro") in str(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(safe_files.os, "open", read_only_fs)
    line = one_line_error(nas("export", built.run_id, "--db", url, "--out", tmp_path / "ro", "--format", "code,json"),
                          "Read-only file system")
    assert "read-only" in line
    assert list((tmp_path / "ro").iterdir()) == []


def test_export_under_a_file_is_one_line(synthetic, tmp_path):  # noqa: F811
    url, built = synthetic
    (tmp_path / "plain").write_text("a file\n")
    one_line_error(nas("export", built.run_id, "--db", url, "--out", tmp_path / "plain" / "sub", "--format",
                       "code,json"),
                   "plain")
    one_line_error(nas("export", built.run_id, "--db", url, "--all", "--format", "json", "--out",
                       tmp_path / "plain" / "all.json"), "plain")
    one_line_error(nas("report", built.run_id, "--db", url, "--plot", tmp_path / "plain" / "plots"), "plain")
    assert (tmp_path / "plain").read_text() == "a file\n"


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(synthetic, tmp_path, monkeypatch, where):  # noqa: F811
    url, built = synthetic
    out = tmp_path / "full"
    out.mkdir()

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == "fsync":
        monkeypatch.setattr(safe_files.os, "fsync", no_space)
    else:
        real_fdopen = os.fdopen

        class FullDisk:
            def __init__(self, handle):
                self.handle = handle

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.handle.close()

            def write(self, data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            def __getattr__(self, name):
                return getattr(self.handle, name)

        monkeypatch.setattr(safe_files.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    one_line_error(nas("export", built.run_id, "--db", url, "--out", out, "--format", "code,json"),
                   "No space left on device", "free some space")
    assert list(out.iterdir()) == []
    one_line_error(nas("export", built.run_id, "--db", url, "--all", "--format", "csv", "--out", out / "all.csv"),
                   "No space left on device")
    assert list(out.iterdir()) == []


def test_the_helper_refuses_a_path_that_resolves_outside_its_root(tmp_path):
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, root / "linked")
    with pytest.raises(FileWriteError, match="outside"):
        safe_files.write_file(root / "linked" / "x.txt", "data", root=root)
    assert list(elsewhere.iterdir()) == []
    safe_files.write_file(root / "y.txt", "one")
    with pytest.raises(FileWriteError, match="already exists"):
        safe_files.write_file(root / "y.txt", "two")
    assert (root / "y.txt").read_text() == "one"
    safe_files.write_file(root / "y.txt", "two", force=True)
    assert (root / "y.txt").read_text() == "two"


def test_a_failed_body_removes_the_temporary_file(tmp_path):
    with pytest.raises(RuntimeError), safe_files.atomic_writer(tmp_path / "z.bin") as handle:
        handle.write(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_worker_logs_are_not_opened_through_a_symlink(tmp_path):
    victim = tmp_path / "victim.log"
    plant_link(tmp_path / "logs", "run-worker-0.log", victim)
    with pytest.raises(FileWriteError, match="symlink"):
        safe_files.open_append(tmp_path / "logs" / "run-worker-0.log")
    assert victim.read_bytes() == VICTIM_TEXT


def test_init_never_writes_nascli_toml_through_a_symlink(tmp_path, monkeypatch):
    from test_export_cli import nas as run_nas

    monkeypatch.chdir(tmp_path)
    os.symlink(tmp_path / "missing-target", tmp_path / "nascli.toml")  # a dangling link: exists() is False
    result = run_nas("init", "--db", f"sqlite:///{tmp_path / 'nas.db'}")
    one_line_error(result, "symlink")
    assert not (tmp_path / "missing-target").exists()
