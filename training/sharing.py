"""What filesystem a workspace lies on, and who else has it open (no Qt, no torch).

Why this exists:
- SQLite's WAL mode keeps its index in shared memory (the ``-shm`` file, mmapped), which only
  processes on one machine share; on a network share (NFS, SMB) two machines would each see their
  own index and corrupt the database without an error. So the store asks ``filesystem_of`` and
  uses the rollback journal (``journal_mode=DELETE``) there, whose only need is POSIX byte-range
  locks that the file server honours for every client.
- Some mounts do not send those locks to the server at all (NFS ``nolock``/``local_lock=posix``,
  SMB ``nobrl``, sshfs and other FUSE network filesystems): two machines could then both write at
  once. ``FsInfo.lock_problem`` says why, and the store refuses such a workspace with that reason.
- SQLite's locks do not say who holds them. Each writable open therefore leaves a small presence
  record (``presence/<host>-<pid>.json``: machine, user, program, time) that the store reads to
  say *who* holds a busy workspace ("open in ADF Viewer on ward-pc-2 by dr.a since 10:02"), and to
  keep a machine that sees the workspace on its local disk out of WAL while another machine uses
  it over the network.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import getpass
import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from model.atomic import temp_name
from training.timestamps import local_time, utc_now

PRESENCE_DIR = "presence"

# Linux statfs(2) f_type magics of filesystems whose clients do not share memory.
_NETWORK_MAGIC = {
    0x6969: "nfs", 0x517B: "smbfs", 0xFF534D42: "cifs", 0xFE534D42: "smb2", 0x564C: "ncpfs",
    0x5346414F: "afs", 0x00C36400: "ceph", 0x01021997: "9p", 0x0BD00BD0: "lustre", 0x47504653: "gpfs",
    0x73757245: "coda", 0x65735546: "fuse", 0x786F4256: "vboxsf",
}
NETWORK_FSTYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smb2", "smbfs", "ncpfs", "afs", "ceph", "9p", "lustre", "gpfs", "coda",
    "glusterfs", "beegfs", "orangefs", "pvfs2", "vboxsf", "vmhgfs", "prl_fs", "drvfs", "virtiofs", "davfs",
    "webdav", "afpfs", "remote",  # macOS names; "remote": a Windows network drive or UNC path
})
# FUSE network filesystems whose POSIX locks stay on the client (the server never sees them).
LOCKLESS_FUSE = frozenset({
    "fuse.sshfs", "fuse.rclone", "fuse.s3fs", "fuse.gcsfuse", "fuse.curlftpfs", "fuse.smbnetfs",
    "fuse.davfs2", "fuse.goofys", "fuse.vmhgfs-fuse",
})


@dataclass(frozen=True)
class FsInfo:
    """The filesystem under a path: type as the OS names it, its mount point and mount options."""

    fstype: str
    mountpoint: str
    options: str = ""

    @property
    def _opts(self) -> dict[str, str]:
        out = {}
        for item in self.options.split(","):
            k, _, v = item.partition("=")
            if k:
                out[k.strip()] = v.strip()
        return out

    @property
    def network(self) -> bool:
        """A filesystem other machines may write too (or that we cannot vouch for: any FUSE)."""
        t = self.fstype.lower()
        return t in NETWORK_FSTYPES or t.startswith(("fuse", "nfs", "smb"))

    @property
    def wal_ok(self) -> bool:
        """WAL's shared-memory index is safe only on a local filesystem (FUSE: not vouched for)."""
        return not self.network

    @property
    def lock_problem(self) -> str | None:
        """Why SQLite's locks taken here would not be seen by other machines, or None."""
        t, o = self.fstype.lower(), self._opts
        if t.startswith("nfs"):
            if "nolock" in o:
                return f"the NFS share {self.mountpoint} is mounted with 'nolock'"
            if o.get("local_lock") in ("posix", "all"):
                return f"the NFS share {self.mountpoint} is mounted with 'local_lock={o['local_lock']}'"
        if t in ("cifs", "smb3", "smb2") and "nobrl" in o:
            return f"the SMB share {self.mountpoint} is mounted with 'nobrl'"
        if t in LOCKLESS_FUSE:
            return f"{self.mountpoint} is a {t[5:]} mount, whose locks never reach the server"
        return None


# ------------------------------------------------------------------------------- detection
def _unescape_mount(field: str) -> str:
    """/proc mount fields escape space, tab, newline and backslash as octal (``\\040``)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[FsInfo]:
    """Mounts from /proc/self/mountinfo text (options = per-mount + superblock options)."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        lf, rf = left.split(), right.split()
        if len(lf) < 6 or len(rf) < 2:
            continue
        opts = lf[5] + ("," + rf[2] if len(rf) > 2 else "")
        mounts.append(FsInfo(rf[0], _unescape_mount(lf[4]), opts))
    return mounts


def parse_proc_mounts(text: str) -> list[FsInfo]:
    """Mounts from /proc/mounts text (``source mountpoint type options 0 0``)."""
    mounts = []
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 4:
            mounts.append(FsInfo(f[2], _unescape_mount(f[1]), f[3]))
    return mounts


def mount_of(path: str, mounts: list[FsInfo]) -> FsInfo | None:
    """The mount that holds ``path`` (the last-mounted among the longest matching mount points)."""
    best: FsInfo | None = None
    best_len = -1
    for m in mounts:
        mp = m.mountpoint.rstrip("/") or "/"
        inside = mp == "/" or path == mp or path.startswith(mp + "/")
        if inside and len(mp) >= best_len:
            best, best_len = m, len(mp)
    return best


def _existing(path: os.PathLike | str) -> str:
    p = Path(path).expanduser().absolute()
    while not p.exists() and p.parent != p:
        p = p.parent
    return os.path.realpath(p)


def _statfs_magic(path: str) -> int | None:
    """Linux statfs(2) f_type (the first field of struct statfs), or None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        buf = ctypes.create_string_buffer(256)
        if libc.statfs(os.fsencode(path), buf) != 0:
            return None
        return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF
    except (OSError, AttributeError, ValueError):
        return None


def _darwin_fstype(path: str) -> FsInfo | None:
    """macOS statfs(2): f_fstypename (char[16]) and f_mntonname (char[1024]) of the 64-bit struct."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        buf = ctypes.create_string_buffer(2168)
        if libc.statfs(os.fsencode(path), buf) != 0:
            return None
        # u32 bsize, i32 iosize, 5 x u64 counts, fsid (2 x i32), u32 owner, type, flags, fssubtype
        off = 4 + 4 + 5 * 8 + 8 + 4 * 4
        name = buf.raw[off : off + 16].split(b"\0")[0].decode()
        mnt = buf.raw[off + 16 : off + 16 + 1024].split(b"\0")[0].decode(errors="replace")
        return FsInfo(name, mnt or "/", "")
    except (OSError, AttributeError, ValueError, UnicodeDecodeError):
        return None


def _windows_fstype(path: str) -> FsInfo:
    """A network drive or UNC path is "remote"; anything else "local"."""
    drive = os.path.splitdrive(path)[0]
    if drive.startswith(("\\\\", "//")):
        return FsInfo("remote", drive, "")
    try:
        kind = ctypes.windll.kernel32.GetDriveTypeW(drive + "\\")  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        kind = 0
    return FsInfo("remote" if kind == 4 else "local", drive or "\\", "")  # 4 = DRIVE_REMOTE


def filesystem_of(path: os.PathLike | str) -> FsInfo:
    """The filesystem ``path`` (or its nearest existing parent) lies on."""
    real = _existing(path)
    if sys.platform.startswith("linux"):
        for source, parse in (("/proc/self/mountinfo", parse_mountinfo), ("/proc/mounts", parse_proc_mounts)):
            try:
                text = Path(source).read_text(errors="replace")
            except OSError:
                continue
            found = mount_of(real, parse(text))
            if found is not None:
                return found
        magic = _statfs_magic(real)
        return FsInfo(_NETWORK_MAGIC.get(magic, "unknown-local") if magic is not None else "", "/", "")
    if sys.platform == "darwin":
        return _darwin_fstype(real) or FsInfo("", "/", "")
    if os.name == "nt":
        return _windows_fstype(real)
    return FsInfo("", "/", "")


# --------------------------------------------------------------------------------- presence
def host_name() -> str:
    return socket.gethostname() or "unknown-host"


def user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (service, container): still say something
        return "unknown"


def boot_id() -> str:
    """This boot of this machine (a pid means nothing across a reboot); "" where unknown."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def program_name() -> str:
    argv0 = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if argv0 in ("-m", "__main__.py", "-c") and "training" in " ".join(sys.argv[:2]):
        return "python -m training"
    return argv0


@dataclass(frozen=True)
class Presence:
    """One process that has a workspace open for writing."""

    host: str
    pid: int
    user: str
    program: str
    opened_at: str
    boot: str
    path: Path

    def describe(self) -> str:
        return f"{self.program} on {self.host} by {self.user} (pid {self.pid}, since {local_time(self.opened_at)})"


def _safe(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in s)[:64] or "host"


def announce(root: Path) -> Path | None:
    """Leave this process's presence record in ``root``; returns its path (None if it cannot be written)."""
    folder = Path(root) / PRESENCE_DIR
    path = folder / f"{_safe(host_name())}-{os.getpid()}.json"
    data = {"host": host_name(), "pid": os.getpid(), "user": user_name(), "program": program_name(),
            "opened_at": utc_now("seconds"),
            "boot": boot_id()}
    tmp = temp_name(path)
    try:
        folder.mkdir(exist_ok=True)
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)  # not fsynced: a record lost to a power cut only loses a name in a message
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return None
    return path


def withdraw(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def pid_alive(pid: int) -> bool:
    """Whether a process id runs on this machine: a live writer's temp files and presence record are
    kept, a dead one's removed (the store's clean-up at open, export's staging folders, ``others``)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def others(root: Path, prune: bool = True) -> list[Presence]:
    """The other processes with ``root`` open; this machine's dead ones are removed (``prune``).

    A record from another machine cannot be checked (its pids are not ours) and is kept: a
    machine that crashed leaves it until someone deletes the file the message names.
    """
    folder = Path(root) / PRESENCE_DIR
    out = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    me, my_boot = host_name(), boot_id()
    for e in entries:
        if not e.name.endswith(".json"):
            continue
        try:
            d = json.loads(Path(e.path).read_text())
            p = Presence(str(d["host"]), int(d["pid"]), str(d.get("user", "?")), str(d.get("program", "?")),
                         str(d.get("opened_at", "?")), str(d.get("boot", "")), Path(e.path))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if p.host == me:
            if p.pid == os.getpid():
                continue
            if (p.boot and my_boot and p.boot != my_boot) or not pid_alive(p.pid):
                if prune:
                    withdraw(p.path)
                continue
        out.append(p)
    return out


def other_hosts(root: Path) -> list[Presence]:
    return [p for p in others(root) if p.host != host_name()]


def describe_holders(root: Path) -> str:
    """"Open elsewhere: ..." for messages about a busy workspace ("" when nobody else is recorded)."""
    found = others(root, prune=False)
    if not found:
        return ""
    remote = [p for p in found if p.host != host_name()]
    parts = [("on another machine: " if p in remote else "") + p.describe() for p in found[:4]]
    hint = ""
    if remote:
        hint = (f" If {remote[0].host} crashed or was switched off, its file server releases the lock; if the "
                f"message stays, delete {PRESENCE_DIR}/{remote[0].path.name} in the workspace once nobody "
                "uses it there.")
    return "Open elsewhere: " + "; ".join(parts) + "." + hint
