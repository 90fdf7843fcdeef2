"""A symlink planted in task.data_dir cannot redirect a dataset download (nascli.train.download),
nor the download lock. The download is torchvision's own MNIST downloader, for real, from an HTTP
server on 127.0.0.1 serving small IDX files (the only change: its mirror and checksums)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from nascli.errors import DatasetError
from nascli.train import data as data_mod
from nascli.train.data import load_raw

FILES = {"train-images-idx3-ubyte": np.arange(6 * 28 * 28, dtype=np.uint8).reshape(6, 28, 28),
         "train-labels-idx1-ubyte": np.arange(6, dtype=np.uint8),
         "t10k-images-idx3-ubyte": np.ones((2, 28, 28), dtype=np.uint8),
         "t10k-labels-idx1-ubyte": np.arange(2, dtype=np.uint8)}


def _idx_gz(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return gzip.compress(header + array.tobytes())


@pytest.fixture
def mnist_mirror(tmp_path_factory, monkeypatch) -> Iterator[str]:
    """torchvision's MNIST pointed at a local server holding FILES."""
    from torchvision.datasets import MNIST

    served = tmp_path_factory.mktemp("mirror")
    resources = []
    for name, array in FILES.items():
        payload = _idx_gz(array)
        (served / f"{name}.gz").write_bytes(payload)
        resources.append((f"{name}.gz", hashlib.md5(payload).hexdigest()))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(MNIST, "mirrors", [f"http://127.0.0.1:{server.server_address[1]}/"])
    monkeypatch.setattr(MNIST, "resources", resources)
    monkeypatch.delenv(data_mod.OFFLINE_ENV, raising=False)
    data_mod.clear_cache()
    yield
    server.shutdown()
    data_mod.clear_cache()


def test_the_real_download_lands_in_the_data_dir(tmp_path: Path, mnist_mirror) -> None:
    raw = load_raw("mnist", str(tmp_path / "data"))
    np.testing.assert_array_equal(raw.train_x[:, 0], FILES["train-images-idx3-ubyte"])
    assert not [p for p in (tmp_path / "data").iterdir() if p.name.startswith(".download-")]  # staging removed


def test_a_planted_file_link_is_replaced_not_written_through(tmp_path: Path, mnist_mirror) -> None:
    data_dir, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    (data_dir / "MNIST" / "raw").mkdir(parents=True)
    elsewhere.mkdir()
    for name in FILES:  # dangling links: torchvision would create the files where they point
        (data_dir / "MNIST" / "raw" / f"{name}.gz").symlink_to(elsewhere / f"{name}.gz")
    raw = load_raw("mnist", str(data_dir))
    assert raw.test_x.shape == (2, 1, 28, 28)
    assert list(elsewhere.iterdir()) == []
    assert not any(path.is_symlink() for path in (data_dir / "MNIST" / "raw").iterdir())


def test_a_planted_folder_link_is_refused_in_one_line(tmp_path: Path, mnist_mirror) -> None:
    data_dir, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    data_dir.mkdir()
    elsewhere.mkdir()
    (data_dir / "MNIST").symlink_to(elsewhere)
    with pytest.raises(DatasetError, match="MNIST is a symbolic link; nascli does not download through links") as info:
        load_raw("mnist", str(data_dir))
    assert "\n" not in str(info.value)
    assert list(elsewhere.iterdir()) == []


def test_a_planted_lock_link_is_refused_not_followed(tmp_path: Path, mnist_mirror) -> None:
    data_dir, victim = tmp_path / "data", tmp_path / "victim"
    data_dir.mkdir()
    (data_dir / ".mnist.download.lock").symlink_to(victim)
    with pytest.raises(DatasetError, match="cannot lock .*mnist.download.lock") as info:
        load_raw("mnist", str(data_dir))
    assert "\n" not in str(info.value)
    assert not victim.exists()
