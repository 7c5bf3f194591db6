"""The workspace store: one SQLite database plus immutable files, as fixed in DESIGN.md.

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

One job a file, composed into the one ``Workspace`` class (workspace.py):
  records.py      statuses, sources, ``Case``, ``Revision``, ``WorkspaceError``, ``RevisionConflict``
  schema.py       the tables, ``MIGRATIONS`` / ``SCHEMA_VERSION``, the upgrade at open
  workspace.py    open / close, the connection, journal mode (network shares), transactions, audit log
  cases.py        the worklist's query, one case, its images, status, homography, patient
  importing.py    new cases from image files (all or nothing, duplicates skipped)
  video.py        new cases from video frames and their provenance (table ``case_video``)
  revisions.py    mask revisions: atomic, never overwritten, conflict check, orphan files set aside
  cache.py        the prediction cache (``predictions/``)
  models.py       the model registry (``models/``), the active model
  maintenance.py  the clean-up at open (dead writers' temp files, orphan revision files), integrity check

No torch, no Qt here: the viewer and training both use it without them.
``from training.store import ...`` is the interface; the files behind it may move.
"""
from __future__ import annotations

from model.names import safe_id
from training.metrics import dice_iou
from training.sharing import pid_alive
from training.store.models import registered_model_id
from training.store.records import (
    ANY,
    DB_NAME,
    SOURCES,
    STATUSES,
    Case,
    Revision,
    RevisionConflict,
    WorkspaceError,
    is_workspace,
)
from training.store.schema import MIGRATIONS, SCHEMA_VERSION
from training.store.workspace import Workspace
from training.timestamps import local_time

__all__ = [
    "STATUSES",
    "SOURCES",
    "SCHEMA_VERSION",
    "MIGRATIONS",
    "DB_NAME",
    "WorkspaceError",
    "RevisionConflict",
    "ANY",
    "Case",
    "Revision",
    "Workspace",
    "safe_id",
    "is_workspace",
    "local_time",
    "pid_alive",
    "dice_iou",
    "registered_model_id",
]
