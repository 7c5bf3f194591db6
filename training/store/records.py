"""What the store holds and the errors it raises: the statuses and revision sources, the ``Case``
and ``Revision`` records, ``WorkspaceError`` / ``RevisionConflict``, and two small helpers the
parts share. No I/O, no SQL here; timestamps are training/timestamps.py's.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.timestamps import local_time

STATUSES = ("new", "predicted", "in_progress", "corrected", "approved", "excluded")
SOURCES = ("model", "human", "import")
DB_NAME = "workspace.sqlite"


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


def is_workspace(path: os.PathLike | str) -> bool:
    """True when ``path`` holds a workspace database (cheap, no open)."""
    return (Path(path) / DB_NAME).is_file()


def _rel(root: Path, p: Path) -> str:
    return p.relative_to(root).as_posix()
