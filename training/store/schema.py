"""The workspace's SQLite schema and how it evolves: migrations are code, appended, never edited.

Migration i (0-based) takes a workspace from schema i to i + 1 (table ``schema_version`` records
each step). Opening an older workspace upgrades it in one write transaction (a read-only one is
refused); a workspace from a newer app is refused. Schema 1: ``cases``, ``revisions`` (triggers
make them immutable), ``events`` (append-only), ``models``; schema 2: ``case_video`` (issue 20).
"""
from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable

from training.store.records import DB_NAME, WorkspaceError
from training.timestamps import utc_now


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


class SchemaMixin:
    """Workspace's schema version: read and checked at open, migrated (uses its _db, _write, _event)."""

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

    def _check_schema(self, version: int) -> None:
        """Refuse a workspace from a newer app; upgrade an older one (not when read-only)."""
        if version > SCHEMA_VERSION:
            raise WorkspaceError(
                f"{self.root} was created by a newer ADF Viewer (schema {version} > {SCHEMA_VERSION}); "
                "update the app to open it")
        if version < SCHEMA_VERSION:
            if self.readonly:
                raise WorkspaceError(f"{self.root} needs an upgrade (schema {version} -> {SCHEMA_VERSION}) "
                                     "but is read-only")
            self._migrate()

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
                db.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (i + 1, utc_now()))
                self._event(db, "migrate", None, {"from": i, "to": i + 1})

    def schema_version(self) -> int:
        return self._schema_version()
