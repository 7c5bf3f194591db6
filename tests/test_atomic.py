"""model/atomic.py: the one atomic file write (store, export, recovery, model cards, checkpoints).

A failed write must leave the old file as it was and no temp file behind, wherever it fails:
while writing the bytes, at the fsync, or at the rename. torch-free and Qt-free."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from model import atomic
from model.atomic import TEMP_PREFIX, write_bytes_atomic
from tests.conftest import modules_loaded_by
from tests.make_bad_inputs import disk_full


def _boom(*_a, **_k):
    raise OSError("disk on fire")


def test_writes_and_replaces_without_leftovers(tmp_path: Path) -> None:
    p = tmp_path / "new" / "sub" / "x.bin"  # missing folders are made
    write_bytes_atomic(p, b"one")
    write_bytes_atomic(p, b"two")
    assert p.read_bytes() == b"two"
    assert [q.name for q in p.parent.iterdir()] == ["x.bin"]
    with pytest.raises(FileExistsError):
        write_bytes_atomic(p, b"three", exist_ok=False)
    assert p.read_bytes() == b"two" and [q.name for q in p.parent.iterdir()] == ["x.bin"]


@pytest.mark.parametrize("where", ["write", "fsync", "rename", "interrupt"])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              where: str) -> None:
    p = tmp_path / "card.json"
    write_bytes_atomic(p, b"old")
    full_disk = disk_full(atomic) if where == "write" else contextlib.nullcontext()  # half written, then ENOSPC
    if where == "fsync":
        monkeypatch.setattr(atomic, "fsync_fd", _boom)
    elif where == "rename":
        monkeypatch.setattr(atomic.os, "replace", _boom)
    elif where == "interrupt":
        def interrupted(*_a, **_k):
            raise KeyboardInterrupt

        monkeypatch.setattr(atomic.os, "replace", interrupted)
    with full_disk, pytest.raises(KeyboardInterrupt if where == "interrupt" else OSError):
        write_bytes_atomic(p, b"new")
    monkeypatch.undo()
    assert p.read_bytes() == b"old"
    assert [q.name for q in tmp_path.iterdir()] == ["card.json"]


def test_no_clobber_failure_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "3.png"
    monkeypatch.setattr(atomic.os, "link", _boom)  # not a "no hard links here" errno: the error stands
    with pytest.raises(OSError, match="disk on fire"):
        write_bytes_atomic(p, b"mask", exist_ok=False)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_temp_names_are_the_ones_the_store_cleans(tmp_path: Path) -> None:
    name = atomic.temp_name(tmp_path / "1.png").name
    assert name.startswith(f"{TEMP_PREFIX}{os.getpid()}-{atomic.HOST_TAG}-") and name.endswith("-1.png")


def test_one_implementation_without_torch_numpy_or_qt() -> None:
    from training import imageio

    assert imageio.write_bytes_atomic is write_bytes_atomic and imageio.temp_name is atomic.temp_name
    assert modules_loaded_by("model.atomic", ("torch", "numpy", "cv2", "PySide6")) == []
