"""Workspaces on network shares and workspaces other machines hold (issue 18, items 3 and 4).

No NFS or SMB client exists on the test machine (the kernel has neither), so the filesystem type
is injected where the store asks for it (``training.sharing.filesystem_of``): in this process with
monkeypatch, in child processes with ``tests/store_children.py --fs``. What is real: the parsing
of /proc/self/mountinfo, SQLite's journal modes and locks between real processes, the WAL ->
rollback-journal switch, and the messages. "Another machine" is a child process whose presence
record claims another host name.
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_shared_workspace import child, make_ws
from training import sharing
from training.imageio import HOST_TAG, TEMP_PREFIX
from training.sharing import FsInfo, mount_of, parse_mountinfo
from training.store import Workspace, WorkspaceError
from training.store import workspace as ws_module  # journal mode and busy timeout live there

MOUNTINFO = r"""22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
40 22 0:40 / /mnt/ward rw,relatime shared:20 - nfs4 nas:/export/ward rw,vers=4.2,hard,proto=tcp,local_lock=none,addr=10.0.0.2
41 22 0:41 / /mnt/old\040share rw,relatime shared:21 - nfs nas:/old rw,vers=3,nolock,addr=10.0.0.2
42 22 0:42 / /mnt/smb rw,relatime shared:22 - cifs //srv/cases rw,vers=3.1.1,cache=strict,nobrl,uid=0
43 22 0:43 / /mnt/smb2 rw,relatime shared:23 - cifs //srv/cases2 rw,vers=3.1.1,cache=strict,uid=0
44 22 0:44 / /home/dr/remote rw,nosuid shared:24 - fuse.sshfs dr@lab:/data rw,user_id=1000
45 22 0:45 / /media/usb rw,nosuid shared:25 - fuseblk /dev/sdb1 rw,user_id=0
46 22 0:46 / /mnt/ward/sub rw,relatime shared:26 - tmpfs tmpfs rw
"""


def inject(monkeypatch: pytest.MonkeyPatch, fstype: str, options: str = "") -> None:
    monkeypatch.setattr(sharing, "filesystem_of", lambda _p: FsInfo(fstype, "/mnt/share", options))


# ---------------------------------------------------------------------------------- detection
@pytest.mark.parametrize(("path", "fstype", "network", "problem"), [
    ("/home/dr/ws", "ext4", False, None),
    ("/mnt/ward/ws", "nfs4", True, None),
    ("/mnt/old share/ws", "nfs", True, "nolock"),
    ("/mnt/smb/ws", "cifs", True, "nobrl"),
    ("/mnt/smb2/ws", "cifs", True, None),
    ("/home/dr/remote/ws", "fuse.sshfs", True, "sshfs"),
    ("/media/usb/ws", "fuseblk", True, None),      # FUSE: not vouched for, so no WAL, but usable
    ("/mnt/ward/sub/ws", "tmpfs", False, None),    # the longest mount point wins
    ("/mnt/wardrobe", "ext4", False, None),        # a prefix of the name is not a parent folder
])
def test_mountinfo_says_which_filesystem_and_whether_locks_are_shared(path: str, fstype: str, network: bool,
                                                                     problem: str | None) -> None:
    info = mount_of(path, parse_mountinfo(MOUNTINFO))
    assert info is not None and info.fstype == fstype
    assert info.network is network and info.wal_ok is (not network)
    if problem is None:
        assert info.lock_problem is None
    else:
        assert problem in info.lock_problem


def test_the_real_mount_table_is_read() -> None:
    """The parser on this machine's own /proc/self/mountinfo: /proc is procfs, a temp folder is local."""
    assert sharing.filesystem_of("/proc/self").fstype == "proc"
    assert sharing.filesystem_of("/tmp/does/not/exist/yet").network is False


def test_nfs_local_lock_options() -> None:
    assert FsInfo("nfs4", "/m", "rw,local_lock=posix").lock_problem
    assert FsInfo("nfs4", "/m", "rw,local_lock=all").lock_problem
    assert FsInfo("nfs4", "/m", "rw,local_lock=flock").lock_problem is None  # SQLite uses POSIX locks
    assert FsInfo("remote", "\\\\srv\\share", "").network                    # Windows network drive


# ---------------------------------------------------------------------------------- journal mode
def test_a_workspace_on_a_share_uses_the_rollback_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inject(monkeypatch, "nfs4", "rw,vers=4.2")
    with Workspace.open(tmp_path / "ws", create=True) as ws:
        assert ws.journal == "delete" and ws.db_journal_mode() == "delete"
        # the commit of a rollback journal is the journal's unlink: EXTRA fsyncs the folder after it
        assert ws._read("PRAGMA synchronous")[0]["synchronous"] == 3
        cid, _ = ws.import_pair(Path(__file__).parent / "data" / "vf_0041.png", register=False)
        ws.add_revision(cid, np.ones((128, 128), bool), "human", "dr.a")
        assert not (ws.root / "workspace.sqlite-wal").exists() and not (ws.root / "workspace.sqlite-shm").exists()
    assert not ws_module._header_says_wal(tmp_path / "ws" / "workspace.sqlite")


def test_two_writer_processes_on_a_share_serialise_with_the_rollback_journal(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    cases = make_ws(root, 2)
    procs = [child("--fs", "nfs4:rw", "save", str(root), ",".join(cases), "10", a) for a in ("dr.a", "dr.b")]
    saved = {}
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        for ln in out.splitlines():
            _, cid, rev, sha = ln.split()
            saved[(cid, int(rev))] = sha
    assert len(saved) == 20
    assert not ws_module._header_says_wal(root / "workspace.sqlite")   # the first opener took it out of WAL
    with Workspace.open(root) as ws:
        assert {(r.case_id, r.rev): r.sha256 for c in cases for r in ws.history(c)} == saved
        assert ws.integrity_check() == "ok"


def test_a_wal_workspace_reached_over_a_share_is_switched_or_refused_naming_the_holder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Made on the file server's own disk (WAL); opened from a client over NFS. While the server's
    app has it open, the client must not touch the WAL index: refused, naming that machine. Once
    it is closed, the client switches the workspace to the rollback journal."""
    root = tmp_path / "ws"
    make_ws(root, 1)
    assert ws_module._header_says_wal(root / "workspace.sqlite")
    holder = child("--host", "file-server", "hold-open", str(root), stdin=subprocess.PIPE)
    assert holder.stdout.readline().split() == ["READY", "wal"]
    inject(monkeypatch, "nfs4", "rw")
    with pytest.raises(WorkspaceError) as info:
        Workspace.open(root)
    msg = str(info.value)
    assert "file-server" in msg and "network share" in msg and "Close the workspace there" in msg
    assert ws_module._header_says_wal(root / "workspace.sqlite")      # left as it was
    assert not list((root / sharing.PRESENCE_DIR).glob(f"*-{os.getpid()}.json"))  # our record withdrawn
    holder.stdin.close()
    assert holder.wait(60) == 0
    with Workspace.open(root) as ws:
        assert ws.db_journal_mode() == "delete" and len(ws.cases()) == 1 and ws.integrity_check() == "ok"
    assert not ws_module._header_says_wal(root / "workspace.sqlite")


def test_a_wal_holder_that_closes_within_the_wait_lets_the_share_client_in(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CI saw two openers of one WAL workspace race: the loser's single 2-second try failed although
    the winner finished switching moments later. The client now keeps trying (a lock-upgrade
    deadlock answers BUSY at once) until the holder has closed, within the wait."""
    root = tmp_path / "ws"
    make_ws(root, 1)
    holder = child("--host", "file-server", "hold-open", str(root), stdin=subprocess.PIPE)
    assert holder.stdout.readline().split() == ["READY", "wal"]
    inject(monkeypatch, "nfs4", "rw")
    closer = threading.Timer(3.5, holder.stdin.close)   # longer than one attempt, shorter than the wait
    closer.start()
    try:
        with Workspace.open(root) as ws:
            assert ws.db_journal_mode() == "delete" and len(ws.cases()) == 1
    finally:
        closer.join()
    assert holder.wait(60) == 0
    assert not ws_module._header_says_wal(root / "workspace.sqlite")


def test_the_file_servers_own_app_leaves_wal_while_a_client_uses_the_share(tmp_path: Path) -> None:
    """The machine that sees the workspace on its local disk must not put it back into WAL while
    another machine (over the network) has it open."""
    root = tmp_path / "ws"
    make_ws(root, 1)
    client = child("--fs", "nfs4:rw", "--host", "ward-pc-2", "hold-open", str(root), stdin=subprocess.PIPE)
    assert client.stdout.readline().split() == ["READY", "delete"]
    with Workspace.open(root) as ws:     # local filesystem, but ward-pc-2 is recorded
        assert ws.journal == "delete" and ws.db_journal_mode() == "delete"
        ws.add_revision(ws.cases()[0].id, np.ones((128, 128), bool), "human", "dr.local")
    assert not ws_module._header_says_wal(root / "workspace.sqlite")
    client.stdin.close()
    assert client.wait(60) == 0
    with Workspace.open(root) as ws:     # alone again: WAL, FULL
        assert ws.db_journal_mode() == "wal" and ws._read("PRAGMA synchronous")[0]["synchronous"] == 2


def test_a_share_without_shared_locks_is_refused_with_what_to_do(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    make_ws(tmp_path / "ws", 1)
    inject(monkeypatch, "cifs", "rw,vers=3.1.1,nobrl")
    with pytest.raises(WorkspaceError) as info:
        Workspace.open(tmp_path / "ws")
    assert "nobrl" in str(info.value) and "local disk" in str(info.value)
    with Workspace.open(tmp_path / "ws", readonly=True) as ro:   # looking is still allowed
        assert len(ro.cases()) == 1
    with pytest.raises(WorkspaceError, match="nobrl"):            # nor is one made there
        Workspace.open(tmp_path / "new", create=True)
    assert not (tmp_path / "new").exists()


def test_temp_files_on_a_share_are_judged_by_age_not_by_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pid in a temp file's name on a share may be another machine's live writer."""
    root = tmp_path / "ws"
    make_ws(root, 1)
    dead_pid = 2 ** 22 + 4321
    fresh = root / "masks" / f"{TEMP_PREFIX}{dead_pid}-abcd0001-5.png"              # no machine tag
    other = root / "masks" / f"{TEMP_PREFIX}{dead_pid}-h00000000-abcd0003-7.png"   # another machine's
    mine = root / "masks" / f"{TEMP_PREFIX}{dead_pid}-{HOST_TAG}-abcd0004-8.png"  # this machine's, pid dead
    old = root / "masks" / f"{TEMP_PREFIX}{dead_pid}-abcd0002-6.png"
    for p in (fresh, other, mine, old):
        p.write_bytes(b"x")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    inject(monkeypatch, "nfs4", "rw")
    with Workspace.open(root):
        assert fresh.exists() and other.exists() and not mine.exists() and not old.exists()


# ---------------------------------------------------------------------------------- who holds it
def test_a_workspace_locked_by_another_machine_says_which(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "ws"
    cid = make_ws(root, 1)[0]
    monkeypatch.setattr(ws_module, "_BUSY_TIMEOUT_MS", 300)
    ws = Workspace.open(root)
    holder = child("hold-lock", str(root), "ward-pc-2", "dr.a", stdin=subprocess.PIPE)
    assert holder.stdout.readline().strip() == "LOCKED"
    with pytest.raises(WorkspaceError) as info:
        ws.add_revision(cid, np.ones((128, 128), bool), "human", "dr.b")
    msg = str(info.value)
    assert "is busy" in msg and "on another machine" in msg and "ward-pc-2 by dr.a" in msg
    holder.stdin.close()
    assert holder.wait(60) == 0
    assert ws.add_revision(cid, np.ones((128, 128), bool), "human", "dr.b").rev == 1  # and then it works
    ws.close()
    assert not (root / sharing.PRESENCE_DIR).exists() or not list((root / sharing.PRESENCE_DIR).iterdir())


def test_presence_records_of_dead_local_processes_are_pruned(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    make_ws(root, 1)
    die = child("die-mid-save", str(root), "vf_0041")
    die.communicate(timeout=120)
    assert die.returncode == -9
    assert len(list((root / sharing.PRESENCE_DIR).glob("*.json"))) == 1   # the dead writer's record
    assert sharing.others(root) == []                                        # recognised as dead ...
    assert list((root / sharing.PRESENCE_DIR).glob("*.json")) == []          # ... and removed
