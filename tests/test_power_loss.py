"""Power loss during a save, simulated: every write that was not fsynced is dropped (issue 18, item 5).

No tool for this installs here: dm-flakey and dm-log-writes need device-mapper, which this
kernel lacks, and LazyFS (a FUSE filesystem that drops unsynced data on command) is not packaged
for Debian or PyPI. So the file operations of a real ``add_revision`` are recorded (open/write,
fsync of files and folders, mkdir, link, rename, unlink) and replayed on a model of the worst case
POSIX allows: a file's bytes survive only if the file was fsynced after they were written, a name
in a folder (created, linked, renamed, removed) only if that folder was fsynced after the change.
For every point at which the power could fail, the surviving state is built as a real folder, with
the database as SQLite guarantees it under ``synchronous=FULL`` (the save's row is there if and
only if COMMIT had returned), and opened through the store. What must hold: every revision the
database has can be loaded with its sha256 (nothing committed points to a lost file), earlier
revisions are intact, and the next save works.

SQLite's own durability (its journal and fsyncs) is SQLite's to prove, and is not modelled.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from model import atomic
from tests.conftest import TEST_DATA
from training.store import DB_NAME, Workspace


@dataclass
class Model:
    """Volatile and durable state of folders (inode -> {name: inode}) and files (inode -> bytes)."""

    root: int
    vol_dirs: dict[int, dict[str, int]] = field(default_factory=dict)
    dur_dirs: dict[int, dict[str, int]] = field(default_factory=dict)
    vol_data: dict[int, bytes] = field(default_factory=dict)
    dur_data: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def snapshot(cls, root: Path) -> Model:
        """The state before the save, taken as durable (it was written long before)."""
        m = cls(os.stat(root).st_ino)
        for dirpath, dirnames, filenames in os.walk(root):
            ino = os.stat(dirpath).st_ino
            m.vol_dirs[ino] = {n: os.stat(Path(dirpath, n)).st_ino for n in dirnames + filenames}
            for n in filenames:
                p = Path(dirpath, n)
                m.vol_data[os.stat(p).st_ino] = p.read_bytes() if n != DB_NAME else b""
        m.dur_dirs = {k: dict(v) for k, v in m.vol_dirs.items()}
        m.dur_data = dict(m.vol_data)
        return m

    def apply(self, op: tuple) -> None:
        kind = op[0]
        if kind == "add":          # (add, parent, name, inode, is_dir)
            _, parent, name, ino, is_dir = op
            self.vol_dirs.setdefault(parent, {})[name] = ino
            if is_dir:
                self.vol_dirs.setdefault(ino, {})
            else:
                self.vol_data.setdefault(ino, b"")
        elif kind == "del":        # (del, parent, name)
            self.vol_dirs[op[1]].pop(op[2], None)
        elif kind == "move":       # (move, src parent, src name, dst parent, dst name)
            ino = self.vol_dirs[op[1]].pop(op[2])
            self.vol_dirs.setdefault(op[3], {})[op[4]] = ino
        elif kind == "data":       # (data, inode, bytes so far)
            self.vol_data[op[1]] = op[2]
        elif kind == "fsync":      # (fsync, inode, is_dir)
            if op[2]:
                self.dur_dirs[op[1]] = dict(self.vol_dirs.get(op[1], {}))
            else:
                self.dur_data[op[1]] = self.vol_data.get(op[1], b"")

    def materialize(self, dest: Path, skip: tuple[str, ...]) -> None:
        """Write what survives the power cut into ``dest``."""
        def build(ino: int, path: Path) -> None:
            path.mkdir(parents=True, exist_ok=True)
            for name, child in self.dur_dirs.get(ino, {}).items():
                if ino == self.root and name in skip:
                    continue
                if child in self.vol_dirs:
                    build(child, path / name)
                else:
                    (path / name).write_bytes(self.dur_data.get(child, b""))
        build(self.root, dest)


class Recorder:
    """Records the file operations the store makes, with inode numbers, while the real ones run."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ops: list[tuple] = []
        real = {n: getattr(os, n) for n in ("mkdir", "link", "unlink", "replace", "rename", "fsync")}
        real_open = open
        ops = self.ops

        def where(p) -> tuple[int, str]:
            p = Path(os.fspath(p))
            return os.stat(p.parent).st_ino, p.name

        def mkdir(p, *a, **k):
            real["mkdir"](p, *a, **k)
            ops.append(("add", *where(p), os.stat(p).st_ino, True))

        def link(src, dst, *a, **k):
            real["link"](src, dst, *a, **k)
            ops.append(("add", *where(dst), os.stat(dst).st_ino, False))

        def unlink(p, *a, **k):
            parent, name = where(p)
            real["unlink"](p, *a, **k)
            ops.append(("del", parent, name))

        def move(fn):
            def run(src, dst, *a, **k):
                s, d = where(src), where(dst)
                fn(src, dst, *a, **k)
                ops.append(("move", *s, *d))
            return run

        def fsync(fd):
            real["fsync"](fd)
            st = os.fstat(fd)
            ops.append(("fsync", st.st_ino, os.path.stat.S_ISDIR(st.st_mode)))

        class File:
            def __init__(self, fh) -> None:
                self.fh, self.buf = fh, b""

            def write(self, b: bytes) -> int:
                n = self.fh.write(b)
                self.buf += bytes(b)
                ops.append(("data", os.fstat(self.fh.fileno()).st_ino, self.buf))
                return n

            def __getattr__(self, name):
                return getattr(self.fh, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return self.fh.__exit__(*exc)

        def rec_open(p, mode="r", *a, **k):
            fh = real_open(p, mode, *a, **k)
            if "x" in mode or "w" in mode:
                ops.append(("add", *where(p), os.fstat(fh.fileno()).st_ino, False))
                return File(fh)
            return fh

        for name, fn in (("mkdir", mkdir), ("link", link), ("unlink", unlink), ("replace", move(real["replace"])),
                         ("rename", move(real["rename"])), ("fsync", fsync)):
            monkeypatch.setattr(os, name, fn)
        monkeypatch.setattr(atomic, "open", rec_open, raising=False)


def backup_db(ws: Workspace, dest: Path) -> None:
    out = sqlite3.connect(dest)
    try:
        ws._db.backup(out)
    finally:
        out.close()


def crash_states(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ws: Workspace, cid: str, mask: np.ndarray,
                 ) -> list[Path]:
    """Run one add_revision under the recorder; return the workspace as it would be after a power cut
    at every point of it (the last one: after add_revision returned)."""
    root = ws.root
    tmp_path.mkdir(parents=True, exist_ok=True)
    before = Model.snapshot(root)
    backup_db(ws, tmp_path / "db-before.sqlite")
    rec = Recorder(monkeypatch)
    ws.add_revision(cid, mask, "human", "dr.p")
    monkeypatch.undo()
    backup_db(ws, tmp_path / "db-after.sqlite")
    assert rec.ops, "nothing recorded"
    states = []
    for k in range(len(rec.ops) + 1):
        model = _copy(before)
        for op in rec.ops[:k]:
            model.apply(op)
        dest = tmp_path / f"crash-{k:02d}"
        model.materialize(dest, skip=(DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", "presence"))
        committed = k == len(rec.ops)  # the row is durable once COMMIT returned (synchronous=FULL)
        shutil.copyfile(tmp_path / ("db-after.sqlite" if committed else "db-before.sqlite"), dest / DB_NAME)
        states.append(dest)
    return states


def _copy(m: Model) -> Model:
    return Model(m.root, {k: dict(v) for k, v in m.vol_dirs.items()}, {k: dict(v) for k, v in m.dur_dirs.items()},
                 dict(m.vol_data), dict(m.dur_data))


def check_state(state: Path, expect_revs: int | None = None) -> None:
    with Workspace.open(state) as ws:
        assert ws.integrity_check() == "ok"
        for case in ws.cases():
            revs = ws.history(case.id)
            for r in revs:
                ws.load_mask(r)  # raises when the file is gone or differs from its sha256
            if expect_revs is not None:
                assert len(revs) == expect_revs
            ws.add_revision(case.id, np.zeros((case.height, case.width), bool), "human", "after-crash")


@pytest.mark.parametrize("first", [True, False], ids=["first revision, new folder", "next revision"])
def test_a_power_cut_at_any_point_of_a_save_loses_nothing_committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    first: bool) -> None:
    ws = Workspace.open(tmp_path / "ws", create=True)
    cid, _ = ws.import_pair(TEST_DATA / "vf_0041.png", register=False)
    if not first:
        ws.add_revision(cid, np.ones((128, 128), bool), "human", "dr.p")
    mask = np.zeros((128, 128), bool)
    mask[20:60, 30:90] = True
    states = crash_states(tmp_path / "sim", monkeypatch, ws, cid, mask)
    ws.close()
    n_before = 0 if first else 1
    for i, state in enumerate(states):
        committed = i == len(states) - 1
        check_state(state, expect_revs=n_before + committed)
    assert len(states) >= 6  # temp create, data, fsync, link, unlink, folder fsync(s)


def test_the_simulation_catches_a_missing_folder_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The model is not vacuous: without the fsync of the revision's folder, a committed revision's
    file is lost in the simulated power cut."""
    ws = Workspace.open(tmp_path / "ws", create=True)
    cid, _ = ws.import_pair(TEST_DATA / "vf_0041.png", register=False)
    ws.add_revision(cid, np.ones((128, 128), bool), "human", "dr.p")
    monkeypatch.setattr(atomic, "fsync_dir", lambda _p: None)
    states = crash_states(tmp_path / "sim", monkeypatch, ws, cid, np.zeros((128, 128), bool))
    ws.close()
    from training.store import WorkspaceError

    with pytest.raises(WorkspaceError, match="rev 2"):
        check_state(states[-1])
