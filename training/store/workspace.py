"""The open workspace: ``Workspace.open`` / ``close``, its one SQLite connection, transactions and
the audit log; the ``Workspace`` class is composed here from the store's parts (one job a file,
see ``training/store/__init__.py``).

Why it looks like this:
- The viewer, ``python -m training import`` and model registration may write one workspace at
  the same time; SQLite transactions (``BEGIN IMMEDIATE`` + busy timeout) serialise them, and
  every write of the store happens inside ``_write()`` (the lock SQLite holds for it is the one
  other processes wait on). One connection per Workspace, guarded by an RLock, so the viewer's
  threads can share it.
- WAL on a local disk; the rollback journal on a network share, or while another machine uses
  the workspace over one (docs/DESIGN-NOTES.md, note 16; docs/RELIABILITY.md, sections 6-8). A
  share whose locks never reach the server is refused; each writer leaves a presence record
  (``training.sharing``) so that a busy workspace can say who holds it.
- A commit is on disk when COMMIT returns (``synchronous`` FULL in WAL, EXTRA with the rollback
  journal).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from model.i18n_marks import QT_TRANSLATE_NOOP, Message
from training import sharing
from training.sharing import FsInfo
from training.store.cache import PredictionCacheMixin
from training.store.cases import CasesMixin
from training.store.importing import ImportMixin
from training.store.maintenance import MaintenanceMixin
from training.store.models import ModelsMixin
from training.store.records import DB_NAME, Case, WorkspaceError
from training.store.revisions import RevisionsMixin
from training.store.schema import SchemaMixin
from training.store.video import VideoMixin
from training.timestamps import utc_now

log = logging.getLogger(__name__)

_BUSY_TIMEOUT_MS = 15_000
_LEAVE_WAL_TIMEOUT_S = 10.0  # taking a WAL database to the rollback journal waits this long in all for others to close
_LEAVE_WAL_ATTEMPT_S = 2.0   # one attempt's busy wait; a lock-upgrade deadlock answers BUSY at once and is retried


class Workspace(CasesMixin, ImportMixin, VideoMixin, RevisionsMixin, PredictionCacheMixin, ModelsMixin,
                SchemaMixin, MaintenanceMixin):
    """An open workspace. Thread-safe (one connection guarded by a lock); use as a context manager."""

    def __init__(self, root: Path, db: sqlite3.Connection, readonly: bool, fs: FsInfo | None = None,
                 presence: Path | None = None, journal: str = "wal") -> None:
        self.root = root
        self.readonly = readonly
        self.fs = fs or FsInfo("", "/", "")
        self.journal = journal  # the journal mode asked for: "wal" on a local disk, "delete" on a share
        self._presence = presence
        self._db = db
        self._lock = threading.RLock()
        self._closed = False
        self._case_cache: dict[str, tuple[tuple, Case]] = {}

    # ---------------------------------------------------------------- open / close
    @classmethod
    def open(cls, path: os.PathLike | str, create: bool = False, readonly: bool = False) -> Workspace:
        """Open (or with ``create=True`` make) the workspace at ``path``.

        Raises WorkspaceError for: no workspace there, a newer schema, a corrupt database, an
        unreadable folder. A folder we cannot write opens read-only (writes then raise).
        """
        root = Path(path).expanduser()
        dbp = root / DB_NAME
        if root.exists() and not root.is_dir():
            raise WorkspaceError(Message(QT_TRANSLATE_NOOP("Errors", "{root} is a file, not a workspace folder"), root=root))
        fs = sharing.filesystem_of(root)  # of the nearest existing folder when it is still to be made
        if not readonly and fs.lock_problem:
            raise WorkspaceError(Message(QT_TRANSLATE_NOOP(
                "Errors", "{root} cannot be shared safely: {problem}, so other machines do not see SQLite's locks "
                "and two of them could write at once and corrupt the workspace. Copy the workspace to a local "
                "disk, or ask IT to mount the share with locking (NFS without 'nolock' or 'local_lock', "
                "SMB without 'nobrl')."), root=root, problem=fs.lock_problem))
        if not dbp.exists():
            if not create:
                if root.is_dir():
                    raise WorkspaceError(Message(QT_TRANSLATE_NOOP("Errors", "{root} is not an ADF Viewer workspace (no {db})"), root=root, db=DB_NAME))
                raise WorkspaceError(Message(QT_TRANSLATE_NOOP("Errors", "no workspace at {root}"), root=root))
            if readonly:
                raise WorkspaceError(f"cannot create a workspace read-only at {root}")
            if root.is_dir() and any(not e.name.startswith(".") for e in os.scandir(root)):
                # never scatter workspace folders into someone's photo or home folder
                raise WorkspaceError(Message(QT_TRANSLATE_NOOP(
                    "Errors", "{root} is not empty and not an ADF Viewer workspace; choose an empty or new folder"),
                    root=root))
            try:
                root.mkdir(parents=True, exist_ok=True)
                for sub in ("images", "masks", "predictions", "models"):
                    (root / sub).mkdir(exist_ok=True)
            except OSError as exc:
                raise WorkspaceError(Message(QT_TRANSLATE_NOOP("Errors", "cannot create workspace at {root}: {error}"), root=root, error=exc.strerror or exc)) from None
        root = root.resolve()
        dbp = root / DB_NAME
        if not readonly and not os.access(root, os.W_OK):
            readonly = True
        # Presence first, then look: of two processes opening at once, at least one sees the other.
        presence = None if readonly else sharing.announce(root)
        db = None
        try:
            remote = [] if readonly else sharing.other_hosts(root)
            journal = "wal" if fs.wal_ok and not remote else "delete"
            leave_wal = not readonly and journal == "delete" and not fs.wal_ok and _header_says_wal(dbp)
            db = cls._connect(dbp, readonly, leave_wal=leave_wal)
            ws = cls(root, db, readonly, fs, presence, journal)
            ws._prepare(create)
        except BaseException:
            if db is not None:
                db.close()
            sharing.withdraw(presence)
            raise
        return ws

    @staticmethod
    def _connect(dbp: Path, readonly: bool, leave_wal: bool = False) -> sqlite3.Connection:
        """Connect and prove the file is a database; ``leave_wal``: take it out of WAL first.

        A WAL database reached over a network share must never have its shared-memory index
        opened: with ``locking_mode=EXCLUSIVE`` set before the first access SQLite uses heap
        memory instead (sqlite.org/wal.html, "Use of WAL Without Shared-Memory"), which needs the
        database to itself; it then checkpoints and switches to the rollback journal. If another
        process holds it open in WAL mode, that fails, and the message names who has it open.
        """
        if leave_wal:
            db = Workspace._leave_wal(dbp)
            if db is not None:
                return db
        attempts = [f"{dbp.as_uri()}?mode=ro", f"{dbp.as_uri()}?immutable=1"] if readonly else [str(dbp)]
        last: Exception | None = None
        for target in attempts:
            try:
                db = sqlite3.connect(target, uri=readonly, timeout=_BUSY_TIMEOUT_MS / 1000,
                                     isolation_level=None, check_same_thread=False)
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return db
            except sqlite3.DatabaseError as exc:
                last = exc
                with contextlib.suppress(Exception):
                    db.close()
                if "not a database" in str(exc) or "malformed" in str(exc):
                    break
        msg = str(last)
        if "not a database" in msg or "malformed" in msg:
            raise WorkspaceError(f"{dbp} is corrupt or not an ADF Viewer database ({msg})")
        raise WorkspaceError(f"cannot open {dbp}: {msg}")

    @staticmethod
    def _leave_wal(dbp: Path) -> sqlite3.Connection | None:
        """Take a WAL database to the rollback journal; None when another opener already did.

        Two processes opening the same WAL workspace at once can deadlock on the lock upgrade, and
        SQLite then answers SQLITE_BUSY at once without waiting (its busy handler is skipped to break
        the deadlock), so a BUSY here is retried with a short random back-off until the deadline.
        Only a holder that keeps the database open in WAL past the deadline is reported.
        """
        deadline = time.monotonic() + _LEAVE_WAL_TIMEOUT_S
        while True:
            if not _header_says_wal(dbp):
                return None  # the other opener switched it: connect as usual
            db = sqlite3.connect(str(dbp), timeout=_LEAVE_WAL_ATTEMPT_S, isolation_level=None,
                                 check_same_thread=False)
            try:
                db.execute("PRAGMA locking_mode = EXCLUSIVE")
                db.execute("PRAGMA journal_mode = DELETE").fetchone()
                db.execute("PRAGMA locking_mode = NORMAL")
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # gives the exclusive lock back
                return db
            except sqlite3.DatabaseError as exc:
                db.close()
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise WorkspaceError(f"{dbp} is corrupt or not an ADF Viewer database ({exc})") from None
                if time.monotonic() >= deadline:
                    who = sharing.describe_holders(dbp.parent)
                    raise WorkspaceError(
                        f"{dbp.parent} is open in another program that uses it in a mode a network share cannot "
                        f"carry (SQLite WAL). {who or 'Another program has it open.'} Close the workspace "
                        "there, then open it here: from then on both can use it.") from None
                time.sleep(random.uniform(0.02, 0.15))

    def _prepare(self, create: bool) -> None:
        db = self._db
        try:
            db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            if not self.readonly:
                mode = self._set_journal_mode()
                # A commit must be on disk when COMMIT returns (docs/RELIABILITY.md, "Power loss"): in
                # WAL that is FULL (NORMAL may roll the last commits back after a power cut); with the
                # rollback journal it is EXTRA (FULL does not fsync the folder after the journal's
                # unlink, which is the commit, so a power cut may bring the journal back and undo it).
                db.execute(f"PRAGMA synchronous = {'FULL' if mode == 'wal' else 'EXTRA'}")
                if sys.platform == "darwin":  # fsync() on macOS stops at the drive's cache
                    db.execute("PRAGMA fullfsync = ON")
                    db.execute("PRAGMA checkpoint_fullfsync = ON")
            db.execute("PRAGMA foreign_keys = ON")
            version = self._schema_version()
        except sqlite3.DatabaseError as exc:
            raise WorkspaceError(f"{self.root / DB_NAME} is corrupt or unreadable ({exc})") from None
        self._check_schema(version)
        if not self.readonly:
            self._cleanup()

    def _set_journal_mode(self) -> str:
        """WAL on a local disk; the rollback journal on a network share, or while another machine
        uses this workspace over one (its SQLite cannot see our shared-memory index). Returns the
        mode in force."""
        db = self._db
        try:
            if self.journal == "delete":
                db.execute("PRAGMA busy_timeout = 2000")  # leaving WAL needs the database to itself
            mode = str(db.execute(f"PRAGMA journal_mode = {self.journal.upper()}").fetchone()[0]).lower()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            mode = str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        finally:
            db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        if mode != self.journal:
            log.warning("workspace %s: journal mode %s, wanted %s (filesystem %s)", self.root, mode, self.journal,
                        self.fs.fstype or "unknown")
        return mode

    def close(self) -> None:
        """Checkpoint and close the database (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if not self.readonly and self.journal == "wal":
                    self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass
            self._db.close()
            sharing.withdraw(self._presence)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r}{', readonly' if self.readonly else ''})"

    # ---------------------------------------------------------------- transactions
    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: takes the write lock now), errors made clear."""
        if self.readonly:
            raise WorkspaceError(Message(QT_TRANSLATE_NOOP("Errors", "workspace {root} is read-only"), root=self.root))
        with self._lock:
            if self._closed:
                raise WorkspaceError("workspace is closed")
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise self._translate(exc) from None
            try:
                yield db
                db.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError):
                    raise self._translate(exc) from None
                if isinstance(exc, PermissionError | OSError) and not isinstance(exc, FileExistsError | FileNotFoundError):
                    raise WorkspaceError(Message(QT_TRANSLATE_NOOP("Errors", "cannot write to workspace {root}: {error}"), root=self.root, error=exc.strerror or exc)) from None
                raise

    def _translate(self, exc: sqlite3.Error) -> WorkspaceError:
        msg = str(exc)
        if "readonly" in msg or "read-only" in msg:
            return WorkspaceError(Message(QT_TRANSLATE_NOOP("Errors", "workspace {root} is read-only ({detail})"), root=self.root, detail=msg))
        if "locked" in msg or "busy" in msg:
            who = sharing.describe_holders(self.root)
            return WorkspaceError(Message(QT_TRANSLATE_NOOP(
                "Errors", "workspace {root} is busy: another program has held its lock for more than {seconds} s "
                "({detail}). {who}"), root=self.root, seconds=_BUSY_TIMEOUT_MS // 1000, detail=msg,
                who=who or "No other program is recorded."))
        if "malformed" in msg or "not a database" in msg:
            return WorkspaceError(Message(QT_TRANSLATE_NOOP("Errors", "workspace {root} database is corrupt ({detail})"), root=self.root, detail=msg))
        return WorkspaceError(f"workspace {self.root}: database error ({msg})")

    def _fetch(self, sql: str, params: Iterable = ()) -> tuple[list[str], list[tuple]]:
        """One read query under the connection's lock: (column names, rows), errors made clear."""
        with self._lock:
            if self._closed:
                raise WorkspaceError("workspace is closed")
            try:
                cur = self._db.execute(sql, tuple(params))
                return [c[0] for c in cur.description], cur.fetchall()
            except sqlite3.DatabaseError as exc:
                raise self._translate(exc) from None

    def _read(self, sql: str, params: Iterable = ()) -> list[dict]:
        cols, rows = self._fetch(sql, params)
        return [dict(zip(cols, r, strict=True)) for r in rows]

    @staticmethod
    def _event(db: sqlite3.Connection, kind: str, case_id: str | None, detail: dict | None) -> None:
        db.execute("INSERT INTO events (ts, kind, case_id, detail) VALUES (?, ?, ?, ?)",
                   (utc_now(), kind, case_id, json.dumps(detail, default=str) if detail is not None else None))

    def log_event(self, kind: str, case_id: str | None = None, detail: dict | None = None) -> None:
        """Append one row to the audit log (the log is append-only: triggers refuse edits)."""
        with self._write() as db:
            self._event(db, kind, case_id, detail)

    def events(self, case_id: str | None = None, kind: str | None = None, limit: int | None = None) -> list[dict]:
        """Audit log rows, oldest first (``detail`` parsed from JSON)."""
        sql, params = "SELECT id, ts, kind, case_id, detail FROM events WHERE 1=1", []
        if case_id is not None:
            sql += " AND case_id = ?"
            params.append(case_id)
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        sql += " ORDER BY id"
        if limit is not None:
            sql = f"SELECT * FROM ({sql.replace('ORDER BY id', 'ORDER BY id DESC')} LIMIT {int(limit)}) ORDER BY id"
        rows = self._read(sql, params)
        for r in rows:
            r["detail"] = json.loads(r["detail"]) if r["detail"] else None
        return rows

    def db_journal_mode(self) -> str:
        """"wal" normally; something else on filesystems without shared memory (logged at open)."""
        return str(self._read("PRAGMA journal_mode")[0]["journal_mode"]).lower()


def _header_says_wal(dbp: Path) -> bool:
    """Whether a database file is in WAL mode, read from its header (bytes 18-19 are 2), without
    SQLite opening it (which would map the shared-memory index)."""
    try:
        with open(dbp, "rb") as fh:
            head = fh.read(20)
    except OSError:
        return False
    return len(head) == 20 and head[:16] == b"SQLite format 3\x00" and head[18] == 2 and head[19] == 2
