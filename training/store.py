"""The workspace: one SQLite database (WAL) plus immutable files, as fixed in DESIGN.md.

Why it looks like this:
- Clinicians' masks must never be lost or silently changed, so every mask revision is a new PNG
  written atomically (temp file in the same folder, fsync, rename, fsync of the folder) *before*
  its row is committed, and an existing revision file is never overwritten or deleted.
- The viewer, ``python -m training import`` and model registration may write one workspace at
  the same time; SQLite transactions (``BEGIN IMMEDIATE`` + busy timeout) serialise them, and the
  revision file is written while that write lock is held.
- The worklist must list 10,000 cases with one query and no file I/O, so everything it shows
  (status, registration quality, latest Dice vs the model, ...) is kept on the ``cases`` row.
- The schema evolves through ``MIGRATIONS`` (code); a workspace from a newer app is refused.

No torch, no Qt here: the viewer and training both use it without them.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.card_file import ModelFileError, card_id, read_card_json
from model.names import safe_id
from training import sharing
from training.imageio import (
    HOST_TAG,
    TEMP_PREFIX,
    ImageReadError,
    decode_mask,
    decode_rgb,
    encode_png,
    fsync_dir,
    read_file_bytes,
    read_mask,
    read_rgb,
    sha256_bytes,
    sha256_file,
    write_bytes_atomic,
    write_png_atomic,
)
from training.metrics import dice_iou
from training.sharing import FsInfo

__all__ = [
    "STATUSES",
    "SOURCES",
    "SCHEMA_VERSION",
    "DB_NAME",
    "WorkspaceError",
    "RevisionConflict",
    "ANY",
    "Case",
    "Revision",
    "Workspace",
    "safe_id",
    "is_workspace",
]

log = logging.getLogger(__name__)

STATUSES = ("new", "predicted", "in_progress", "corrected", "approved", "excluded")
SOURCES = ("model", "human", "import")
DB_NAME = "workspace.sqlite"
_BUSY_TIMEOUT_MS = 15_000
_LEAVE_WAL_TIMEOUT_S = 2.0  # taking a WAL database to the rollback journal waits this long for others to close
_TEMP_MAX_AGE_S = 24 * 3600  # a temp file of a live process older than this is stale anyway


class WorkspaceError(Exception):
    """A workspace problem the user must see, with a clear one-line message."""


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()
"""``add_revision(expected_latest=ANY)``: save whatever the case's newest revision is now."""


class RevisionConflict(WorkspaceError):
    """Someone saved a newer revision of the case since the one the caller started from.

    Raised under the write lock, so nothing was written; ``latest`` is their revision (who, when),
    ``expected`` the caller's starting point. The caller decides: keep theirs, or save again with
    ``expected_latest=latest.rev`` to put its own on top as a newer revision.
    """

    def __init__(self, case_id: str, expected: int | None, latest: Revision) -> None:
        self.case_id, self.expected, self.latest = case_id, expected, latest
        super().__init__(f"a newer revision of {case_id} (revision {latest.rev}) was saved by {latest.author} "
                         f"at {local_time(latest.created_at)}, after the "
                         f"{'revision ' + str(expected) if expected is not None else 'empty mask'} "
                         "these edits started from")


# --------------------------------------------------------------------------------------- schema
def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Run DDL statements inside the caller's transaction (executescript would COMMIT first).

    Statements end with ";" at the end of a line; trigger bodies keep their inner ";" mid-line.
    """
    for stmt in re.split(r";\s*\n", script):
        if stmt.strip():
            db.execute(stmt)


def _m1_initial(db: sqlite3.Connection) -> None:
    _run_script(db,
        """
        CREATE TABLE cases (
            id              TEXT PRIMARY KEY COLLATE NOCASE,
            patient_id      TEXT,
            status          TEXT NOT NULL DEFAULT 'new',
            wli_path        TEXT NOT NULL,
            nbi_path        TEXT,
            wli_sha256      TEXT NOT NULL,
            nbi_sha256      TEXT NOT NULL DEFAULT '',
            width           INTEGER NOT NULL,
            height          INTEGER NOT NULL,
            nbi_width       INTEGER,
            nbi_height      INTEGER,
            homography      TEXT NOT NULL,
            reg_quality     TEXT,
            reg_inliers     INTEGER,
            reg_error       REAL,
            reg_method      TEXT,
            nbi_synthetic   INTEGER NOT NULL DEFAULT 0,
            source_wli      TEXT,
            source_nbi      TEXT,
            created_at      TEXT NOT NULL,
            updated_at      TEXT NOT NULL,
            latest_rev      INTEGER,
            latest_source   TEXT,
            dice_vs_model   REAL,
            iou_vs_model    REAL,
            exclude_reason  TEXT,
            UNIQUE (wli_sha256, nbi_sha256)
        );
        CREATE INDEX cases_status ON cases(status);
        CREATE INDEX cases_patient ON cases(patient_id);

        CREATE TABLE revisions (
            case_id         TEXT NOT NULL REFERENCES cases(id),
            rev             INTEGER NOT NULL,
            source          TEXT NOT NULL CHECK (source IN ('model', 'human', 'import')),
            author          TEXT NOT NULL,
            model_id        TEXT,
            parent_rev      INTEGER,
            mask_path       TEXT NOT NULL,
            sha256          TEXT NOT NULL,
            area            INTEGER NOT NULL,
            created_at      TEXT NOT NULL,
            dice_vs_model   REAL,
            iou_vs_model    REAL,
            note            TEXT,
            PRIMARY KEY (case_id, rev)
        );
        CREATE TRIGGER revisions_immutable BEFORE UPDATE ON revisions
            BEGIN SELECT RAISE(ABORT, 'revisions are immutable'); END;
        CREATE TRIGGER revisions_undeletable BEFORE DELETE ON revisions
            BEGIN SELECT RAISE(ABORT, 'revisions are never deleted'); END;

        CREATE TABLE events (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            ts              TEXT NOT NULL,
            kind            TEXT NOT NULL,
            case_id         TEXT,
            detail          TEXT
        );
        CREATE INDEX events_case ON events(case_id);
        CREATE TRIGGER events_append_only BEFORE UPDATE ON events
            BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
        CREATE TRIGGER events_undeletable BEFORE DELETE ON events
            BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

        CREATE TABLE models (
            id              TEXT PRIMARY KEY,
            card            TEXT NOT NULL,
            path            TEXT NOT NULL,
            sha256          TEXT NOT NULL,
            active          INTEGER NOT NULL DEFAULT 0,
            created_at      TEXT NOT NULL
        );
        """
    )


def _m2_case_video(db: sqlite3.Connection) -> None:
    """Where a case imported from a video came from (DESIGN.md: file hash, frame indices, times);
    ``detail`` is the JSON of the rest (classifier scores, segment, text boxes, settings)."""
    _run_script(db,
        """
        CREATE TABLE case_video (
            case_id         TEXT PRIMARY KEY REFERENCES cases(id),
            video_sha256    TEXT NOT NULL,
            video_path      TEXT NOT NULL,
            wli_frame       INTEGER NOT NULL,
            nbi_frame       INTEGER,
            wli_time_s      REAL NOT NULL,
            nbi_time_s      REAL,
            detail          TEXT NOT NULL
        );
        CREATE INDEX case_video_sha ON case_video(video_sha256);
        """
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m1_initial, _m2_case_video]
"""Migration i (0-based) takes a workspace from schema i to i + 1. Append only."""
SCHEMA_VERSION = len(MIGRATIONS)


# ------------------------------------------------------------------------------------ records
@dataclass(frozen=True)
class Case:
    """One WLI (+ optional NBI) pair as the worklist and viewer see it (no file I/O to build)."""

    id: str
    patient_id: str | None
    status: str
    wli_path: Path
    nbi_path: Path | None
    width: int
    height: int
    homography: np.ndarray = field(compare=False, repr=False)
    reg_quality: str | None
    nbi_synthetic: bool
    updated_at: str
    dice_vs_model: float | None
    exclude_reason: str | None
    # additions beyond docs/CONTRACTS.md (all defaulted, so the contract's fields come first)
    iou_vs_model: float | None = None
    latest_rev: int | None = None
    latest_source: str | None = None
    reg_inliers: int | None = None
    reg_error: float | None = None
    reg_method: str | None = None
    nbi_width: int | None = None
    nbi_height: int | None = None
    wli_sha256: str = ""
    nbi_sha256: str = ""
    source_wli: str | None = None
    source_nbi: str | None = None
    created_at: str = ""


@dataclass(frozen=True)
class Revision:
    """One immutable mask revision of a case."""

    case_id: str
    rev: int
    source: str
    author: str
    model_id: str | None
    parent_rev: int | None
    mask_path: Path
    sha256: str
    area: int
    created_at: str
    dice_vs_model: float | None
    iou_vs_model: float | None
    note: str | None


# ------------------------------------------------------------------------------------ helpers
def local_time(iso_utc: str) -> str:
    """A stored UTC timestamp as the user's local "YYYY-MM-DD HH:MM" (the text itself if unparsable)."""
    try:
        return _dt.datetime.fromisoformat(iso_utc.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M")
    except (ValueError, AttributeError):
        return str(iso_utc)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_workspace(path: os.PathLike | str) -> bool:
    """True when ``path`` holds a workspace database (cheap, no open)."""
    return (Path(path) / DB_NAME).is_file()


def _h_to_json(hm: np.ndarray) -> str:
    arr = np.asarray(hm, dtype=np.float64).reshape(3, 3)
    return json.dumps([float(v) for v in arr.ravel()])


def _h_from_json(text: str | None) -> np.ndarray:
    """The stored homography, read-only: Case objects are cached and shared between calls."""
    arr = np.array(json.loads(text), dtype=np.float64).reshape(3, 3) if text else np.eye(3, dtype=np.float64)
    arr.flags.writeable = False
    return arr


def _as_mask(arr: np.ndarray) -> np.ndarray:
    """bool mask from a bool mask or a uint8 probability (>= 128 = tumour)."""
    a = np.asarray(arr)
    if a.dtype == np.bool_:
        return a
    if a.dtype == np.uint8:
        return a >= 128
    if np.issubdtype(a.dtype, np.floating):
        return a >= 0.5
    return a > 0


def pid_alive(pid: int) -> bool:
    """Whether a process id is running (temp files of live writers are never cleaned)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


_TEMP_RE = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)-(?:(h[0-9a-f]{8})-)?")


def _is_stale_temp(entry: os.DirEntry, shared: bool = False) -> bool:
    """A dead writer's temp file. On a workspace other machines use (``shared``), a pid in the name
    may be another machine's live writer: only files tagged with this machine are judged by pid,
    the others by age."""
    m = _TEMP_RE.match(entry.name)
    if not m:
        return False
    try:
        age = _dt.datetime.now().timestamp() - entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return False
    if shared and m.group(2) != HOST_TAG:  # untagged, or another machine's: its pid is not ours to check
        return age > _TEMP_MAX_AGE_S
    return not pid_alive(int(m.group(1))) or age > _TEMP_MAX_AGE_S


def _rel(root: Path, p: Path) -> str:
    return p.relative_to(root).as_posix()


# ---------------------------------------------------------------------------------- workspace
def _read_image(path: Path) -> tuple[bytes, np.ndarray, str]:
    """The original bytes (copied on import), the decoded RGB image and the bytes' sha256."""
    data = _read_file(path)
    return data, decode_rgb(data, path), sha256_bytes(data)


registered_model_id = card_id  # the id a workspace registers a model card under (model/card_file.py)


class Workspace:
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
            raise WorkspaceError(f"{root} is a file, not a workspace folder")
        fs = sharing.filesystem_of(root)  # of the nearest existing folder when it is still to be made
        if not readonly and fs.lock_problem:
            raise WorkspaceError(
                f"{root} cannot be shared safely: {fs.lock_problem}, so other machines do not see SQLite's locks "
                "and two of them could write at once and corrupt the workspace. Copy the workspace to a local "
                "disk, or ask IT to mount the share with locking (NFS without 'nolock' or 'local_lock', "
                "SMB without 'nobrl').")
        if not dbp.exists():
            if not create:
                if root.is_dir():
                    raise WorkspaceError(f"{root} is not an ADF Viewer workspace (no {DB_NAME})")
                raise WorkspaceError(f"no workspace at {root}")
            if readonly:
                raise WorkspaceError(f"cannot create a workspace read-only at {root}")
            if root.is_dir() and any(not e.name.startswith(".") for e in os.scandir(root)):
                # never scatter workspace folders into someone's photo or home folder
                raise WorkspaceError(f"{root} is not empty and not an ADF Viewer workspace; "
                                     "choose an empty or new folder")
            try:
                root.mkdir(parents=True, exist_ok=True)
                for sub in ("images", "masks", "predictions", "models"):
                    (root / sub).mkdir(exist_ok=True)
            except OSError as exc:
                raise WorkspaceError(f"cannot create workspace at {root}: {exc.strerror or exc}") from None
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
            db = sqlite3.connect(str(dbp), timeout=_LEAVE_WAL_TIMEOUT_S, isolation_level=None,
                                 check_same_thread=False)
            try:
                db.execute("PRAGMA locking_mode = EXCLUSIVE")
                db.execute("PRAGMA journal_mode = DELETE").fetchone()
                db.execute("PRAGMA locking_mode = NORMAL")
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # gives the exclusive lock back
            except sqlite3.DatabaseError as exc:
                db.close()
                if "locked" in str(exc) or "busy" in str(exc):
                    who = sharing.describe_holders(dbp.parent)
                    raise WorkspaceError(
                        f"{dbp.parent} is open in another program that uses it in a mode a network share cannot "
                        f"carry (SQLite WAL). {who or 'Another program has it open.'} Close the workspace "
                        "there, then open it here: from then on both can use it.") from None
                raise WorkspaceError(f"{dbp} is corrupt or not an ADF Viewer database ({exc})") from None
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
        if version > SCHEMA_VERSION:
            raise WorkspaceError(
                f"{self.root} was created by a newer ADF Viewer (schema {version} > {SCHEMA_VERSION}); "
                "update the app to open it")
        if version < SCHEMA_VERSION:
            if self.readonly:
                raise WorkspaceError(f"{self.root} needs an upgrade (schema {version} -> {SCHEMA_VERSION}) "
                                     "but is read-only")
            self._migrate()
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

    def _schema_version(self) -> int:
        row = self._db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'").fetchone()
        if row is None:
            others = self._db.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
            if others:
                raise WorkspaceError(f"{self.root / DB_NAME} is a SQLite file but not an ADF Viewer workspace")
            return 0
        row = self._db.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def _migrate(self) -> None:
        with self._write() as db:
            if db.execute("SELECT name FROM sqlite_master WHERE name='schema_version'").fetchone() is None:
                db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)")
            version = int(db.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0])
            if version > SCHEMA_VERSION:  # another process upgraded meanwhile
                raise WorkspaceError(f"{self.root} was created by a newer ADF Viewer "
                                     f"(schema {version} > {SCHEMA_VERSION})")
            for i in range(version, SCHEMA_VERSION):
                MIGRATIONS[i](db)
                db.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (i + 1, _now()))
                self._event(db, "migrate", None, {"from": i, "to": i + 1})

    def _cleanup(self) -> None:
        """Remove temp files of dead writers; set aside revision files that no row owns."""
        removed: list[str] = []
        orphan_candidates: list[tuple[str, int]] = []
        max_rev = {r["case_id"]: r["m"] for r in self._read("SELECT case_id, max(rev) AS m FROM revisions GROUP BY case_id")}
        shared = self.fs.network or bool(sharing.other_hosts(self.root))
        for top in ("images", "masks", "predictions", "models", "recovery", sharing.PRESENCE_DIR):
            base = self.root / top
            if not base.is_dir():
                continue
            stack = [base]
            depth = {base: 0}
            while stack:
                d = stack.pop()
                try:
                    entries = list(os.scandir(d))
                except OSError:
                    continue
                for e in entries:
                    if _is_stale_temp(e, shared):
                        p = Path(e.path)
                        try:
                            if e.is_dir(follow_symlinks=False):
                                shutil.rmtree(p)
                            else:
                                p.unlink()
                            removed.append(_rel(self.root, p))
                        except OSError as exc:
                            log.warning("cannot remove leftover temp %s: %s", p, exc)
                    elif top == "masks" and depth[d] == 1 and re.fullmatch(r"\d+\.png", e.name):
                        rev = int(e.name[:-4])
                        if rev > (max_rev.get(Path(d).name) or 0):
                            orphan_candidates.append((Path(d).name, rev))
                    elif e.is_dir(follow_symlinks=False) and depth[d] < 1:
                        depth[Path(e.path)] = depth[d] + 1
                        stack.append(Path(e.path))
        if removed:
            log.warning("workspace %s: removed %d leftover temp file(s): %s", self.root, len(removed),
                        ", ".join(removed[:10]))
            with self._write() as db:
                self._event(db, "cleanup_temp", None, {"removed": removed})
        if orphan_candidates:
            self._set_aside_orphans(orphan_candidates)

    def _set_aside_orphans(self, candidates: list[tuple[str, int]]) -> None:
        """Revision files with no row (a crash between rename and commit) are renamed out of the way.

        Checked under the write lock: a live writer writes its file and commits while holding it,
        so a file without a row at this point is truly orphaned. Never deleted (it may be work).
        """
        moved = []
        with self._write() as db:
            for case_id, rev in candidates:
                path = self.root / "masks" / case_id / f"{rev}.png"
                owned = db.execute("SELECT 1 FROM revisions WHERE case_id = ? AND rev = ?", (case_id, rev)).fetchone()
                if owned is None and path.is_file():
                    aside = _set_aside(path)
                    if aside is not None:
                        moved.append(_rel(self.root, aside))
            if moved:
                self._event(db, "orphan_revision_files", None, {"set_aside": moved})

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
            raise WorkspaceError(f"workspace {self.root} is read-only")
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
                    raise WorkspaceError(f"cannot write to workspace {self.root}: {exc.strerror or exc}") from None
                raise

    def _translate(self, exc: sqlite3.Error) -> WorkspaceError:
        msg = str(exc)
        if "readonly" in msg or "read-only" in msg:
            return WorkspaceError(f"workspace {self.root} is read-only ({msg})")
        if "locked" in msg or "busy" in msg:
            who = sharing.describe_holders(self.root)
            return WorkspaceError(f"workspace {self.root} is busy: another program has held its lock for more than "
                                  f"{_BUSY_TIMEOUT_MS // 1000} s ({msg}). {who or 'No other program is recorded.'}")
        if "malformed" in msg or "not a database" in msg:
            return WorkspaceError(f"workspace {self.root} database is corrupt ({msg})")
        return WorkspaceError(f"workspace {self.root}: database error ({msg})")

    def _read(self, sql: str, params: Iterable = ()) -> list[dict]:
        with self._lock:
            if self._closed:
                raise WorkspaceError("workspace is closed")
            try:
                cur = self._db.execute(sql, tuple(params))
                cols = [c[0] for c in cur.description]
                return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
            except sqlite3.DatabaseError as exc:
                raise self._translate(exc) from None

    @staticmethod
    def _event(db: sqlite3.Connection, kind: str, case_id: str | None, detail: dict | None) -> None:
        db.execute("INSERT INTO events (ts, kind, case_id, detail) VALUES (?, ?, ?, ?)",
                   (_now(), kind, case_id, json.dumps(detail, default=str) if detail is not None else None))

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

    # ---------------------------------------------------------------- cases
    def _case_from_row(self, r: dict) -> Case:
        return Case(
            id=r["id"], patient_id=r["patient_id"], status=r["status"],
            wli_path=self.root / r["wli_path"],
            nbi_path=(self.root / r["nbi_path"]) if r["nbi_path"] else None,
            width=r["width"], height=r["height"], homography=_h_from_json(r["homography"]),
            reg_quality=r["reg_quality"], nbi_synthetic=bool(r["nbi_synthetic"]), updated_at=r["updated_at"],
            dice_vs_model=r["dice_vs_model"], exclude_reason=r["exclude_reason"],
            iou_vs_model=r["iou_vs_model"], latest_rev=r["latest_rev"], latest_source=r["latest_source"],
            reg_inliers=r["reg_inliers"], reg_error=r["reg_error"], reg_method=r["reg_method"],
            nbi_width=r["nbi_width"], nbi_height=r["nbi_height"], wli_sha256=r["wli_sha256"],
            nbi_sha256=r["nbi_sha256"], source_wli=r["source_wli"], source_nbi=r["source_nbi"],
            created_at=r["created_at"],
        )

    def _query_cases(self, sql: str, params: Iterable = ()) -> list[Case]:
        """Run a ``SELECT * FROM cases`` query; unchanged rows reuse their cached Case (a 10,000-case
        worklist refresh then costs little more than the query itself)."""
        with self._lock:
            if self._closed:
                raise WorkspaceError("workspace is closed")
            try:
                cur = self._db.execute(sql, tuple(params))
                cols = [c[0] for c in cur.description]
                rows = cur.fetchall()
            except sqlite3.DatabaseError as exc:
                raise self._translate(exc) from None
            cache = self._case_cache
            out = []
            for row in rows:
                hit = cache.get(row[0])
                if hit is not None and hit[0] == row:
                    out.append(hit[1])
                    continue
                case = self._case_from_row(dict(zip(cols, row, strict=True)))
                cache[row[0]] = (row, case)
                out.append(case)
            return out

    def cases(self, status: str | Iterable[str] | None = None, patient_id: str | None = None) -> list[Case]:
        """All cases (optionally with a status or one of several), ordered by id; one query, no file I/O."""
        sql, params = "SELECT * FROM cases", []
        where = []
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            bad = [s for s in wanted if s not in STATUSES]
            if bad:
                raise ValueError(f"unknown status {bad[0]!r}; expected one of {STATUSES}")
            where.append(f"status IN ({','.join('?' * len(wanted))})")
            params += wanted
        if patient_id is not None:
            where.append("patient_id = ?")
            params.append(patient_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id COLLATE NOCASE"
        return self._query_cases(sql, params)

    def case_count(self, status: str | Iterable[str] | None = None) -> int:
        if status is None:
            return int(self._read("SELECT count(*) AS n FROM cases")[0]["n"])
        wanted = [status] if isinstance(status, str) else list(status)
        return int(self._read(f"SELECT count(*) AS n FROM cases WHERE status IN ({','.join('?' * len(wanted))})",
                              wanted)[0]["n"])

    def status_counts(self) -> dict[str, int]:
        """{status: count} for every status (zeros included)."""
        counts = dict.fromkeys(STATUSES, 0)
        for r in self._read("SELECT status, count(*) AS n FROM cases GROUP BY status"):
            counts[r["status"]] = int(r["n"])
        return counts

    def case(self, case_id: str) -> Case:
        """The case with this id; KeyError when there is none."""
        rows = self._query_cases("SELECT * FROM cases WHERE id = ?", (case_id,))
        if not rows:
            raise KeyError(f"no case {case_id!r} in {self.root}")
        return rows[0]

    def has_case(self, case_id: str) -> bool:
        return bool(self._read("SELECT 1 AS x FROM cases WHERE id = ?", (case_id,)))

    def find_case_by_hash(self, wli_sha256: str, nbi_sha256: str | None = None) -> str | None:
        rows = self._read("SELECT id FROM cases WHERE wli_sha256 = ? AND nbi_sha256 = ?",
                          (wli_sha256, nbi_sha256 or ""))
        return rows[0]["id"] if rows else None

    def load_wli(self, case_id: str) -> np.ndarray:
        """The case's WLI image, RGB uint8."""
        return read_rgb(self.case(case_id).wli_path)

    def load_nbi(self, case_id: str) -> np.ndarray | None:
        """The case's NBI image (raw, unwarped), RGB uint8; None for a WLI-only case."""
        c = self.case(case_id)
        return read_rgb(c.nbi_path) if c.nbi_path is not None else None

    # ---------------------------------------------------------------- import
    def _unique_case_id(self, db: sqlite3.Connection, stem: str) -> str:
        base = safe_id(stem)
        cand, n = base, 1
        while (db.execute("SELECT 1 FROM cases WHERE id = ?", (cand,)).fetchone() is not None
               or (self.root / "images" / cand).exists() or (self.root / "masks" / cand).exists()):
            n += 1
            cand = f"{base}-{n}"
        return cand

    def import_pair(self, wli_path: os.PathLike | str, nbi_path: os.PathLike | str | None = None,
                    label_path: os.PathLike | str | None = None, patient_id: str | None = None,
                    nbi_synthetic: bool = False, register: bool = True, *, case_name: str | None = None,
                    label_value: int | None = None, mask: np.ndarray | None = None,
                    author: str = "import") -> tuple[str | None, str | None]:
        """Copy one pair (+ optional mask) into the workspace as a new case.

        Returns ``(case_id, None)`` or ``(None, reason)`` when skipped: identical files already
        imported ("duplicate"), unreadable/not an image/truncated, NBI unreadable, mask size not
        matching the WLI. Nothing is left behind on a skip or an error. Extras: ``case_name``
        (stem the id is derived from; default the WLI stem), ``label_value`` (class-map masks:
        tumour = pixels equal to it), ``mask`` (an in-memory bool mask instead of ``label_path``,
        e.g. a rasterised labelme JSON).
        """
        wli_path = Path(wli_path)
        try:
            wli_bytes, wli, wli_sha = _read_image(wli_path)
        except ImageReadError as exc:
            return None, f"WLI: {exc.reason}"
        nbi_bytes = nbi = None
        nbi_sha = ""
        if nbi_path is not None:
            nbi_path = Path(nbi_path)
            try:
                nbi_bytes, nbi, nbi_sha = _read_image(nbi_path)
            except ImageReadError as exc:
                return None, f"NBI unreadable: {exc.reason}"
        existing = self.find_case_by_hash(wli_sha, nbi_sha)
        if existing is not None:
            return None, "duplicate"
        h, w = wli.shape[:2]
        if label_path is not None and mask is None:
            try:
                mask = read_mask(label_path, label_value)
            except ImageReadError as exc:
                return None, f"mask: {exc.reason}"
        if mask is not None:
            mask = np.asarray(mask).astype(bool)
            if mask.shape != (h, w):
                return None, f"mask size {mask.shape[1]}x{mask.shape[0]} != WLI size {w}x{h}"
        reg = None
        if nbi is not None and register:
            from model.registration import register_pair  # lazy: cv2 feature code only when needed

            reg = register_pair(wli, nbi)
        hm = reg.homography if reg is not None else np.eye(3)
        del wli, nbi
        return self._commit_import(
            wli_path, wli_bytes, wli_sha, nbi_path, nbi_bytes, nbi_sha, (w, h), hm, reg, mask,
            patient_id, nbi_synthetic, case_name or _pair_stem(wli_path), label_path, author)

    def _commit_import(self, wli_path, wli_bytes, wli_sha, nbi_path, nbi_bytes, nbi_sha, size, hm, reg,
                       mask, patient_id, nbi_synthetic, stem, label_path, author,
                       video: dict | None = None) -> tuple[str | None, str | None]:
        if self.readonly:
            raise WorkspaceError(f"workspace {self.root} is read-only")
        w, h = size
        images = self.root / "images"
        masks = self.root / "masks"
        tmp_img = images / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-import"
        tmp_mask = masks / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-import"
        wli_ext = _ext(wli_path, wli_bytes)
        nbi_ext = _ext(nbi_path, nbi_bytes) if nbi_bytes is not None else None
        placed: list[Path] = []
        try:
            try:
                images.mkdir(exist_ok=True)
                masks.mkdir(exist_ok=True)
                tmp_img.mkdir()
                write_bytes_atomic(tmp_img / f"wli{wli_ext}", wli_bytes)
                if nbi_bytes is not None:
                    write_bytes_atomic(tmp_img / f"nbi{nbi_ext}", nbi_bytes)
                mask_sha = None
                if mask is not None:
                    tmp_mask.mkdir()
                    mask_sha = write_png_atomic(tmp_mask / "1.png", mask, exist_ok=False)
            except OSError as exc:
                raise WorkspaceError(f"cannot write to workspace {self.root}: {exc.strerror or exc}") from None
            with self._write() as db:
                # re-check under the write lock: another process may have imported it meanwhile
                if db.execute("SELECT 1 FROM cases WHERE wli_sha256 = ? AND nbi_sha256 = ?",
                              (wli_sha, nbi_sha)).fetchone() is not None:
                    return None, "duplicate"
                cid = self._unique_case_id(db, stem)
                now = _now()
                final_img = images / cid
                os.rename(tmp_img, final_img)
                placed.append(final_img)
                if mask is not None:
                    os.rename(tmp_mask, masks / cid)
                    placed.append(masks / cid)
                fsync_dir(images)
                fsync_dir(masks)
                status = "corrected" if mask is not None else "new"
                db.execute(
                    """INSERT INTO cases (id, patient_id, status, wli_path, nbi_path, wli_sha256, nbi_sha256,
                       width, height, nbi_width, nbi_height, homography, reg_quality, reg_inliers, reg_error,
                       reg_method, nbi_synthetic, source_wli, source_nbi, created_at, updated_at,
                       latest_rev, latest_source)
                       VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                    (cid, patient_id, status, f"images/{cid}/wli{wli_ext}",
                     f"images/{cid}/nbi{nbi_ext}" if nbi_bytes is not None else None,
                     wli_sha, nbi_sha, w, h,
                     *(_nbi_size(nbi_bytes) if nbi_bytes is not None else (None, None)),
                     _h_to_json(hm),
                     reg.quality if reg is not None else (None if nbi_bytes is None else "unregistered"),
                     reg.inliers if reg is not None else None,
                     _finite(reg.reproj_error) if reg is not None else None,
                     reg.method if reg is not None else None,
                     int(bool(nbi_synthetic) and nbi_bytes is not None),
                     _source_str(wli_path), _source_str(nbi_path) if nbi_bytes is not None else None,
                     now, now, 1 if mask is not None else None, "import" if mask is not None else None))
                if mask is not None:
                    db.execute(
                        """INSERT INTO revisions (case_id, rev, source, author, model_id, parent_rev, mask_path,
                           sha256, area, created_at, note) VALUES (?,?,?,?,?,?,?,?,?,?,?)""",
                        (cid, 1, "import", author, None, None, f"masks/{cid}/1.png", mask_sha,
                         int(np.count_nonzero(mask)), now,
                         f"imported from {_source_str(label_path)}" if label_path is not None else "imported"))
                if video is not None:
                    db.execute(
                        """INSERT INTO case_video (case_id, video_sha256, video_path, wli_frame, nbi_frame, wli_time_s,
                           nbi_time_s, detail) VALUES (?,?,?,?,?,?,?,?)""",
                        (cid, video["sha256"], _source_str(video["path"]), int(video["wli_frame"]),
                         video.get("nbi_frame"), float(video["wli_time_s"]), video.get("nbi_time_s"),
                         json.dumps(video.get("detail") or {})))
                self._event(db, "import", cid, {
                    "video": {k: v for k, v in video.items() if k != "detail"} if video is not None else None,
                    "wli": _source_str(wli_path), "nbi": _source_str(nbi_path) if nbi_bytes is not None else None,
                    "label": _source_str(label_path) if label_path is not None else None,
                    "wli_sha256": wli_sha, "nbi_sha256": nbi_sha or None, "patient_id": patient_id,
                    "registration": reg.to_dict() if reg is not None else None,
                    "nbi_synthetic": bool(nbi_synthetic)})
            placed.clear()
            return cid, None
        finally:
            for p in placed:  # the transaction failed after the rename: take the files back out
                shutil.rmtree(p, ignore_errors=True)
            for p in (tmp_img, tmp_mask):
                if p.exists():
                    shutil.rmtree(p, ignore_errors=True)

    def import_frames(self, wli: np.ndarray, nbi: np.ndarray | None, registration=None, *,
                      patient_id: str | None, case_name: str, video: dict) -> tuple[str | None, str | None]:
        """One case from two decoded video frames (RGB uint8), stored as PNG, with its provenance.

        ``video``: ``{"path", "sha256", "wli_frame", "nbi_frame", "wli_time_s", "nbi_time_s",
        "detail": {...}}`` (the ``case_video`` row). ``registration``: the NBI->WLI Registration
        already computed (the video import keeps only pairs whose registration holds). Same
        duplicate rule and all-or-nothing commit as ``import_pair``.
        """
        wli_bytes = encode_png(wli)
        wli_sha = sha256_bytes(wli_bytes)
        nbi_bytes = encode_png(nbi) if nbi is not None else None
        nbi_sha = sha256_bytes(nbi_bytes) if nbi_bytes is not None else ""
        if self.find_case_by_hash(wli_sha, nbi_sha) is not None:
            return None, "duplicate"
        src = _source_str(video["path"])
        hm = registration.homography if registration is not None else np.eye(3)
        return self._commit_import(
            Path(f"{src}#frame={int(video['wli_frame'])}"), wli_bytes, wli_sha,
            Path(f"{src}#frame={int(video['nbi_frame'])}") if nbi_bytes is not None else None, nbi_bytes, nbi_sha,
            (wli.shape[1], wli.shape[0]), hm, registration, None, patient_id, False, case_name, None, "import",
            video=video)

    def set_homography(self, case_id: str, homography: np.ndarray, quality: str | None = "manual",
                       inliers: int | None = None, reproj_error: float | None = None,
                       method: str | None = "manual") -> None:
        """Replace a case's NBI->WLI homography (re-registration or a manual fix); logged."""
        hm = np.asarray(homography, dtype=np.float64).reshape(3, 3)
        with self._write() as db:
            old = db.execute("SELECT homography FROM cases WHERE id = ?", (case_id,)).fetchone()
            if old is None:
                raise KeyError(f"no case {case_id!r}")
            db.execute("UPDATE cases SET homography=?, reg_quality=?, reg_inliers=?, reg_error=?, reg_method=?, "
                       "updated_at=? WHERE id=?",
                       (_h_to_json(hm), quality, inliers, _finite(reproj_error), method, _now(), case_id))
            self._event(db, "set_homography", case_id, {"old": json.loads(old[0]), "new": json.loads(_h_to_json(hm)),
                                                        "quality": quality, "method": method})

    def set_patient(self, case_id: str, patient_id: str | None) -> None:
        with self._write() as db:
            if db.execute("UPDATE cases SET patient_id=?, updated_at=? WHERE id=?",
                          (patient_id, _now(), case_id)).rowcount == 0:
                raise KeyError(f"no case {case_id!r}")
            self._event(db, "set_patient", case_id, {"patient_id": patient_id})

    def video_source(self, case_id: str) -> dict | None:
        """The provenance of a case imported from a video (``detail`` parsed), or None."""
        rows = self._read("SELECT * FROM case_video WHERE case_id = ?", (case_id,))
        if not rows:
            return None
        r = rows[0]
        r["detail"] = json.loads(r["detail"]) if r["detail"] else {}
        return r

    def video_sources(self) -> dict[str, dict]:
        """{case id: {"video_path", "wli_frame", "nbi_frame", "wli_time_s", "nbi_time_s"}} of every
        case from a video: one query, for the worklist's time-in-video column."""
        rows = self._read("SELECT case_id, video_path, wli_frame, nbi_frame, wli_time_s, nbi_time_s FROM case_video")
        return {r.pop("case_id"): r for r in rows}

    def video_settings_used(self, video_sha256: str) -> list[dict]:
        """The import settings each earlier import of this video (by sha256) ran with."""
        rows = self._read("SELECT DISTINCT json_extract(detail, '$.settings') AS s FROM case_video "
                          "WHERE video_sha256 = ?", (video_sha256,))
        return [json.loads(r["s"]) for r in rows if r["s"]]

    # ---------------------------------------------------------------- revisions
    def _rev_from_row(self, r: dict) -> Revision:
        return Revision(case_id=r["case_id"], rev=r["rev"], source=r["source"], author=r["author"],
                        model_id=r["model_id"], parent_rev=r["parent_rev"], mask_path=self.root / r["mask_path"],
                        sha256=r["sha256"], area=r["area"], created_at=r["created_at"],
                        dice_vs_model=r["dice_vs_model"], iou_vs_model=r["iou_vs_model"], note=r["note"])

    def _reference_mask(self, case_id: str, model_id: str | None, reference_prob) -> np.ndarray | None:
        if reference_prob is not None:
            return _as_mask(reference_prob)
        if model_id is not None:
            cached = self.cached_prediction(case_id, model_id)
            if cached is not None:
                return _as_mask(cached)
        ref = self.latest_revision(case_id, sources="model")
        if ref is not None:
            return self.load_mask(ref)
        return None

    def add_revision(self, case_id: str, mask: np.ndarray, source: str, author: str,
                     model_id: str | None = None, parent_rev: int | None = None, note: str | None = None,
                     reference_prob: np.ndarray | None = None, expected_latest: int | None | _Any = ANY,
                     provenance: dict | None = None) -> Revision:
        """Save ``mask`` (bool, WLI size) as the case's next revision; never overwrites anything.

        ``provenance`` (JSON-able, e.g. the clicks that drew the mask) goes into the audit log's
        "revision" event, not the schema; its ``"summary"`` is the note when no note is given.

        The PNG is durable before its row is committed (both under the write lock). For a human
        revision, Dice/IoU against the model (``reference_prob``: uint8 prob or bool mask; else the
        cached prediction of ``model_id``; else the latest model revision) are stored on the row
        and mirrored onto the case. Status: model -> "predicted" (only from "new"), human or
        import -> "corrected" (not for an excluded case). A file left at the new revision's name by a
        dead writer is set aside first (``_free_revision_slot``); nothing is ever replaced.

        ``expected_latest`` (a revision number, or None for "no revision yet"): save only if that
        is still the case's newest revision, checked under the write lock; otherwise raise
        RevisionConflict and write nothing (two windows, or two clinicians, on one case).
        """
        if source not in SOURCES:
            raise ValueError(f"unknown revision source {source!r}; expected one of {SOURCES}")
        if not author:
            raise ValueError("a revision needs an author")
        m = np.asarray(mask)
        if m.dtype != np.bool_:
            m = m > 0 if m.dtype != np.uint8 or m.max(initial=0) > 1 else m.astype(bool)
        case = self.case(case_id)
        if m.shape != (case.height, case.width):
            raise ValueError(f"mask shape {m.shape} != case {case_id} WLI size {(case.height, case.width)}")
        dice = iou = None
        if source == "human":
            ref = self._reference_mask(case_id, model_id, reference_prob)
            if ref is not None:
                if ref.shape != m.shape:
                    raise ValueError(f"reference shape {ref.shape} != mask shape {m.shape}")
                dice, iou = dice_iou(m, ref)
        if provenance is not None and note is None:
            note = str(provenance.get("summary") or "") or None
        area = int(np.count_nonzero(m))
        data = encode_png(m)
        sha = sha256_bytes(data)
        with self._write() as db:
            row = db.execute("SELECT status FROM cases WHERE id = ?", (case_id,)).fetchone()
            if row is None:
                raise KeyError(f"no case {case_id!r}")
            status = row[0]
            rev = int(db.execute("SELECT coalesce(max(rev), 0) FROM revisions WHERE case_id = ?",
                                 (case_id,)).fetchone()[0]) + 1
            if expected_latest is not ANY and (rev - 1 or None) != expected_latest:
                cur = db.execute("SELECT * FROM revisions WHERE case_id = ? ORDER BY rev DESC LIMIT 1", (case_id,))
                cols = [c[0] for c in cur.description]
                raise RevisionConflict(case_id, expected_latest,  # type: ignore[arg-type]
                                       self._rev_from_row(dict(zip(cols, cur.fetchone(), strict=True))))
            if parent_rev is not None and db.execute("SELECT 1 FROM revisions WHERE case_id=? AND rev=?",
                                                     (case_id, parent_rev)).fetchone() is None:
                raise ValueError(f"parent revision {parent_rev} of case {case_id} does not exist")
            rev, set_aside = self._free_revision_slot(db, case_id, rev)
            rel = f"masks/{case_id}/{rev}.png"
            path = self.root / rel
            try:
                write_bytes_atomic(path, data, exist_ok=False)
            except FileExistsError:  # only if another writer ignored the lock: never replace its file
                raise WorkspaceError(f"revision file {path} appeared while saving; refusing to overwrite it "
                                     "(is another program writing this workspace without SQLite's lock?)") from None
            except OSError as exc:
                raise WorkspaceError(f"cannot write revision {path}: {exc.strerror or exc}") from None
            now = _now()
            try:
                db.execute(
                    """INSERT INTO revisions (case_id, rev, source, author, model_id, parent_rev, mask_path, sha256,
                       area, created_at, dice_vs_model, iou_vs_model, note) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                    (case_id, rev, source, author, model_id, parent_rev, rel, sha, area, now, dice, iou, note))
                new_status = status
                if source == "model" and status == "new":
                    new_status = "predicted"
                elif source in ("human", "import") and status != "excluded":
                    new_status = "corrected"
                sets = "status=?, latest_rev=?, latest_source=?, updated_at=?"
                params: list = [new_status, rev, source, now]
                if source == "human" and dice is not None:
                    sets += ", dice_vs_model=?, iou_vs_model=?"
                    params += [dice, iou]
                db.execute(f"UPDATE cases SET {sets} WHERE id=?", (*params, case_id))
                if set_aside:
                    self._event(db, "orphan_revision_files", case_id, {"set_aside": set_aside})
                self._event(db, "revision", case_id, {
                    "rev": rev, "source": source, "author": author, "model_id": model_id, "parent_rev": parent_rev,
                    "sha256": sha, "area": area, "dice_vs_model": dice, "iou_vs_model": iou,
                    "status": [status, new_status] if new_status != status else None,
                    **({"provenance": provenance} if provenance is not None else {})})
            except BaseException:
                # the row did not make it: keep the bytes (never delete a mask) but out of the way
                _set_aside(path)
                raise
        return Revision(case_id, rev, source, author, model_id, parent_rev, path, sha, area, now, dice, iou, note)

    def _free_revision_slot(self, db: sqlite3.Connection, case_id: str, rev: int) -> tuple[int, list[str]]:
        """The revision number to write and the leftover files moved out of its way (under the write lock).

        The number is max(rev) + 1, taken under SQLite's write lock, and every live writer writes
        and commits its file while holding that lock; so a file already at that name has no row
        and can only be a dead writer's (killed between the file's rename and the row's commit)
        or a stray copy. It is renamed ``<rev>.orphan-<random>.png`` (never deleted: it may be
        someone's work) and the save goes on; a file that cannot be moved is skipped over.
        """
        moved: list[str] = []
        folder = self.root / "masks" / case_id
        for _ in range(1000):
            path = folder / f"{rev}.png"
            if not os.path.lexists(path):
                return rev, moved
            aside = _set_aside(path)
            if aside is not None:
                moved.append(_rel(self.root, aside))
                return rev, moved
            rev += 1  # cannot be moved (permissions?): leave it, take the next number
        raise WorkspaceError(f"cannot find a free revision file name in {folder}")

    def history(self, case_id: str) -> list[Revision]:
        """All revisions of a case, oldest first."""
        return [self._rev_from_row(r) for r in
                self._read("SELECT * FROM revisions WHERE case_id = ? ORDER BY rev", (case_id,))]

    def latest_revision(self, case_id: str, sources: str | Iterable[str] | None = None) -> Revision | None:
        """The newest revision (optionally only from these sources), or None."""
        sql, params = "SELECT * FROM revisions WHERE case_id = ?", [case_id]
        if sources is not None:
            wanted = [sources] if isinstance(sources, str) else list(sources)
            sql += f" AND source IN ({','.join('?' * len(wanted))})"
            params += wanted
        rows = self._read(sql + " ORDER BY rev DESC LIMIT 1", params)
        return self._rev_from_row(rows[0]) if rows else None

    def revision(self, case_id: str, rev: int) -> Revision:
        rows = self._read("SELECT * FROM revisions WHERE case_id = ? AND rev = ?", (case_id, rev))
        if not rows:
            raise KeyError(f"no revision {rev} of case {case_id!r}")
        return self._rev_from_row(rows[0])

    def latest_mask(self, case_id: str, sources: str | Iterable[str] | None = None) -> np.ndarray | None:
        """The mask of the newest revision (bool, WLI size), or None when there is none."""
        rev = self.latest_revision(case_id, sources)
        return self.load_mask(rev) if rev is not None else None

    def load_mask(self, revision: Revision) -> np.ndarray:
        """A revision's mask as bool (H, W); WorkspaceError when the file is missing or altered."""
        try:
            data = _read_file(revision.mask_path)
        except ImageReadError as exc:
            raise WorkspaceError(f"mask of {revision.case_id} rev {revision.rev}: {exc.reason}") from None
        if sha256_bytes(data) != revision.sha256:
            raise WorkspaceError(f"mask file {revision.mask_path} was modified outside ADF Viewer (sha256 mismatch)")
        return decode_mask(data, revision.mask_path)

    # ---------------------------------------------------------------- status
    def set_status(self, case_id: str, status: str, reason: str | None = None, author: str | None = None,
                   only_from: Iterable[str] | None = None) -> bool:
        """Set a case's status (one of STATUSES); "excluded" keeps ``reason``; logged.

        ``only_from``: change it only if the current status is one of these, checked inside the same
        write transaction (a background "new -> predicted" must not undo a clinician's "excluded"
        written a moment earlier by another connection). Returns whether the status was set.
        """
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {STATUSES}")
        with self._write() as db:
            row = db.execute("SELECT status FROM cases WHERE id = ?", (case_id,)).fetchone()
            if row is None:
                raise KeyError(f"no case {case_id!r}")
            if only_from is not None and row[0] not in set(only_from):
                return False
            db.execute("UPDATE cases SET status=?, exclude_reason=?, updated_at=? WHERE id=?",
                       (status, reason if status == "excluded" else None, _now(), case_id))
            self._event(db, "status", case_id, {"from": row[0], "to": status, "reason": reason, "author": author})
        return True

    # ---------------------------------------------------------------- prediction cache
    def prediction_path(self, case_id: str, model_id: str) -> Path:
        return self.root / "predictions" / safe_id(case_id) / f"{safe_id(model_id, 96, 'model')}.png"

    def cached_prediction(self, case_id: str, model_id: str) -> np.ndarray | None:
        """The cached probability map (uint8, WLI size) of ``model_id`` for a case, or None."""
        p = self.prediction_path(case_id, model_id)
        if not p.is_file():
            return None
        try:
            data = _read_file(p)
            img = decode_rgb(data, p)[:, :, 0]
        except ImageReadError as exc:
            log.warning("ignoring unreadable cached prediction %s: %s", p, exc.reason)
            return None
        return np.ascontiguousarray(img)

    def save_prediction(self, case_id: str, model_id: str, prob: np.ndarray) -> None:
        """Cache a probability map (uint8 prob x 255, WLI size); a cache, so it may be replaced."""
        arr = np.asarray(prob)
        if arr.dtype != np.uint8 or arr.ndim != 2:
            raise ValueError(f"prediction must be uint8 (H, W), got {arr.dtype} {arr.shape}")
        case = self.case(case_id)
        if arr.shape != (case.height, case.width):
            raise ValueError(f"prediction shape {arr.shape} != case {case_id} WLI size {(case.height, case.width)}")
        if self.readonly:
            raise WorkspaceError(f"workspace {self.root} is read-only")
        try:
            write_png_atomic(self.prediction_path(case_id, model_id), arr)
        except OSError as exc:
            raise WorkspaceError(f"cannot write prediction cache: {exc.strerror or exc}") from None

    # ---------------------------------------------------------------- models
    def register_model(self, json_card_path: os.PathLike | str, activate: bool = False) -> str:
        """Copy a model (``<stem>.json`` card + ``<stem>.safetensors``) into ``models/``; returns its id.

        The id is the card's ``model_id`` or ``id`` (else the file stem), made filesystem-safe.
        Registering the same files again is a no-op; a different model with a taken id is refused.
        """
        card_path = Path(json_card_path)
        if card_path.suffix.lower() != ".json":
            card_path = card_path.with_suffix(".json")
        weights = card_path.with_suffix(".safetensors")
        try:
            card, _ = read_card_json(card_path)
        except ModelFileError as exc:
            raise WorkspaceError(str(exc)) from None
        if not weights.is_file():
            raise WorkspaceError(f"model weights {weights} not found")
        model_id = card_id(card, card_path)
        wsha = sha256_file(weights)
        with self._write() as db:
            row = db.execute("SELECT sha256 FROM models WHERE id = ?", (model_id,)).fetchone()
            if row is not None:
                if row[0] != wsha:
                    raise WorkspaceError(f"a different model with id {model_id!r} is already registered")
            else:
                dest = self.root / "models"
                try:
                    dest.mkdir(exist_ok=True)
                    tmp = dest / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{model_id}.safetensors"
                    shutil.copyfile(weights, tmp)
                    with open(tmp, "rb+") as fh:
                        os.fsync(fh.fileno())
                    os.replace(tmp, dest / f"{model_id}.safetensors")
                    # The copy is named after the id, so the card must name that file (model.card
                    # loads the weights the card names, beside the card).
                    card = {**card, "weights": f"{model_id}.safetensors"}
                    write_bytes_atomic(dest / f"{model_id}.json", json.dumps(card, indent=2).encode("utf-8"))
                    fsync_dir(dest)
                except OSError as exc:
                    with contextlib.suppress(OSError, UnboundLocalError):
                        tmp.unlink()
                    raise WorkspaceError(f"cannot copy model into {dest}: {exc.strerror or exc}") from None
                db.execute("INSERT INTO models (id, card, path, sha256, active, created_at) VALUES (?,?,?,?,0,?)",
                           (model_id, json.dumps(card), f"models/{model_id}.json", wsha, _now()))
                self._event(db, "register_model", None, {"model_id": model_id, "sha256": wsha,
                                                         "source": str(card_path)})
            if activate:
                self._activate(db, model_id)
        return model_id

    def _activate(self, db: sqlite3.Connection, model_id: str) -> None:
        if db.execute("SELECT 1 FROM models WHERE id = ?", (model_id,)).fetchone() is None:
            raise KeyError(f"no model {model_id!r} registered")
        db.execute("UPDATE models SET active = (id = ?)", (model_id,))
        self._event(db, "activate_model", None, {"model_id": model_id})

    def set_active_model(self, model_id: str) -> None:
        """Mark one registered model active (the others inactive); logged."""
        with self._write() as db:
            self._activate(db, model_id)

    def models(self) -> list[dict]:
        """Registered models: {"id", "card", "path" (the .json), "sha256", "active", "created_at"}."""
        out = []
        for r in self._read("SELECT * FROM models ORDER BY created_at, id"):
            r["card"] = json.loads(r["card"])
            r["path"] = self.root / r["path"]
            r["active"] = bool(r["active"])
            out.append(r)
        return out

    def active_model_path(self) -> Path | None:
        """The active model's card (.json) path (its .safetensors lies beside it), or None."""
        rows = self._read("SELECT path FROM models WHERE active = 1 LIMIT 1")
        return self.root / rows[0]["path"] if rows else None

    def active_model_id(self) -> str | None:
        """The id of the active model, or None when no model is active."""
        rows = self._read("SELECT id FROM models WHERE active = 1 LIMIT 1")
        return str(rows[0]["id"]) if rows else None

    def ensure_active_model(self, card_path: os.PathLike | str | None = None) -> str | None:
        """The active model's id; when none is active, register ``card_path`` and activate it first.

        Why: DESIGN.md says a workspace always has an active model, so a clinician's new workspace
        predicts at once. ``card_path`` defaults to the bundled model (training.paths). A model that
        is already active is never replaced, also when another process activates one meanwhile
        (checked again inside the write). A read-only workspace is left as it is: None when it has
        no active model (the caller then predicts with the bundled files without registering).
        Raises WorkspaceError when the model cannot be registered (missing or unreadable files).
        """
        active = self.active_model_id()
        if active is not None or self.readonly:
            return active
        if card_path is None:
            from training.paths import bundled_model_card

            card_path = bundled_model_card()
        model_id = self.register_model(card_path)
        with self._write() as db:
            row = db.execute("SELECT id FROM models WHERE active = 1 LIMIT 1").fetchone()
            if row is not None:
                return str(row[0])
            self._activate(db, model_id)
        return model_id

    # ---------------------------------------------------------------- checks
    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: "ok" or the first problems found."""
        rows = self._read("PRAGMA integrity_check")
        msgs = [next(iter(r.values())) for r in rows]
        return "ok" if msgs == ["ok"] else "; ".join(str(m) for m in msgs)

    def schema_version(self) -> int:
        return self._schema_version()

    def db_journal_mode(self) -> str:
        """"wal" normally; something else on filesystems without shared memory (logged at open)."""
        return str(self._read("PRAGMA journal_mode")[0]["journal_mode"]).lower()


# -------------------------------------------------------------------------------- module helpers
def _read_file(path: os.PathLike | str) -> bytes:
    """A regular file's bytes (a FIFO, device or huge file is refused: ImageReadError)."""
    return read_file_bytes(path)


_PAIR_SUFFIX = re.compile(r"(?i)[_\-. ](wli|nbi|1|2)$")


def _pair_stem(path: Path) -> str:
    """The case name of a source file: its stem without a _wli/_nbi/_1/_2 suffix."""
    stem = Path(path).stem
    return _PAIR_SUFFIX.sub("", stem) or stem


_EXT_BY_FORMAT = {b"\x89PNG": ".png", b"\xff\xd8\xff": ".jpg", b"BM": ".bmp", b"II*\x00": ".tif",
                  b"MM\x00*": ".tif", b"RIFF": ".webp"}


def _ext(path: Path | None, data: bytes | None) -> str:
    """A safe extension for the copy: the real format's, not whatever the name claims."""
    if data is not None:
        for magic, ext in _EXT_BY_FORMAT.items():
            if data.startswith(magic):
                return ext
    suffix = Path(path).suffix.lower() if path is not None else ""
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ".img"


def _nbi_size(data: bytes) -> tuple[int | None, int | None]:
    from training.imageio import image_size

    size = image_size(data)
    if size is None:
        try:
            arr = decode_rgb(data)
            return arr.shape[1], arr.shape[0]
        except ImageReadError:
            return None, None
    return size


def _finite(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if np.isfinite(v) else None


def _source_str(path: os.PathLike | str | None) -> str | None:
    if path is None:
        return None
    s = os.fspath(path)
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _header_says_wal(dbp: Path) -> bool:
    """Whether a database file is in WAL mode, read from its header (bytes 18-19 are 2), without
    SQLite opening it (which would map the shared-memory index)."""
    try:
        with open(dbp, "rb") as fh:
            head = fh.read(20)
    except OSError:
        return False
    return len(head) == 20 and head[:16] == b"SQLite format 3\x00" and head[18] == 2 and head[19] == 2


def _set_aside(path: Path) -> Path | None:
    """Move a revision file whose row failed out of the revision name space (never delete it)."""
    try:
        if path.exists():
            aside = path.with_name(f"{path.stem}.orphan-{secrets.token_hex(4)}{path.suffix}")
            os.rename(path, aside)
            log.warning("revision file %s had no committed row; kept as %s", path, aside.name)
            return aside
    except OSError as exc:
        log.warning("could not set aside %s: %s", path, exc)
    return None
