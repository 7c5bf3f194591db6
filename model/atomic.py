"""Atomic file writes: temp file in the same folder, fsync, rename, fsync the folder.

The one implementation for every file the app and the trainer write (mask revisions, predictions,
model cards and weights, checkpoints, export markers). After a crash or a power cut a reader finds
either the old file or the whole new one, never a torn one, and a failed write leaves no temp file
behind. Temp files are named ``.tmp-<pid>-<host tag>-<random>-<final name>`` so the store can tell
a dead writer's leftovers from a live writer's on another machine (training.store cleans them).

It lives in ``model/`` because model.card writes through it and model/ imports nothing from
training/; training.imageio re-exports it. No torch, no numpy, no Qt.
"""
from __future__ import annotations

import errno
import hashlib
import os
import secrets
import socket
import sys
from pathlib import Path

__all__ = ["TEMP_PREFIX", "HOST_TAG", "temp_name", "fsync_fd", "fsync_dir", "makedirs_durable",
           "write_bytes_atomic"]

TEMP_PREFIX = ".tmp-"
"""Temp files are named ``.tmp-<pid>-<random>-<final name>``; the store cleans dead ones on open."""

HOST_TAG = "h" + hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]
"""This machine in temp names: on a share, a pid only means something on the machine that wrote it."""


def temp_name(final: Path) -> Path:
    """A temp path beside ``final`` carrying our pid and machine (``.tmp-<pid>-<host tag>-<random>-<name>``),
    so cleanup can tell a dead writer's leftovers from another machine's live writer's file."""
    return final.with_name(f"{TEMP_PREFIX}{os.getpid()}-{HOST_TAG}-{secrets.token_hex(4)}-{final.name}")


def fsync_fd(fd: int) -> None:
    """Flush a file's data to stable storage. On macOS ``fsync`` stops at the drive's cache, so
    ``F_FULLFSYNC`` is used there (SQLite's ``PRAGMA fullfsync`` is the same thing for the database)."""
    if sys.platform == "darwin":
        import fcntl

        try:
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
            return
        except OSError:
            pass  # not supported by this filesystem (e.g. a network share): plain fsync below
    os.fsync(fd)


def fsync_dir(path: os.PathLike | str) -> None:
    """fsync a directory so a rename in it is durable (no-op where unsupported, e.g. Windows)."""
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY)
    except OSError:
        return
    try:
        fsync_fd(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def makedirs_durable(path: os.PathLike | str) -> None:
    """``mkdir -p`` whose new folders survive a power cut: each new folder's entry is fsynced in
    its parent. (A file renamed into a new folder is lost with the folder if only the file's own
    folder was fsynced.)"""
    final = Path(path)
    missing = []
    p = final
    while not p.is_dir():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except FileExistsError:
            if not d.is_dir():
                raise
            continue
        fsync_dir(d.parent)


# errno values with which link() says "this filesystem has no hard links" (FAT, some SMB servers)
_NO_LINK = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EXDEV, errno.EMLINK, errno.EINVAL,
            errno.EACCES}


def _place_no_clobber(tmp: Path, final: Path) -> None:
    """Move ``tmp`` to ``final`` only if ``final`` does not exist, atomically (FileExistsError).

    POSIX ``rename`` replaces silently, so a hard link is made instead (it fails when the name is
    taken) and the temp name removed; Windows' rename already refuses. Where the filesystem has no
    hard links, exists-check + rename is the fallback (the store's write lock serialises writers).
    """
    if os.name == "nt":
        os.rename(tmp, final)
        return
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        if os.path.lexists(final):
            raise FileExistsError(f"{final} exists; refusing to overwrite") from None
        os.replace(tmp, final)
        return
    os.unlink(tmp)


def write_bytes_atomic(path: os.PathLike | str, data: bytes, exist_ok: bool = True) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename, fsync dir.

    With ``exist_ok=False`` an existing ``path`` is never replaced, not even by a racing writer
    (FileExistsError instead). Folders that had to be made are made durable too. On any failure
    (also KeyboardInterrupt) the temp file is removed and ``path`` is as it was.
    """
    final = Path(path)
    makedirs_durable(final.parent)
    if not exist_ok and os.path.lexists(final):
        raise FileExistsError(f"{final} exists; refusing to overwrite")
    tmp = temp_name(final)
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            fsync_fd(fh.fileno())
        if exist_ok:
            os.replace(tmp, final)
        else:
            _place_no_clobber(tmp, final)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    fsync_dir(final.parent)
