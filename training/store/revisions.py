"""Mask revisions: every save is a new immutable PNG plus its row, never an overwrite.

Why it looks like this:
- Clinicians' masks must never be lost or silently changed, so a revision's PNG is written
  atomically (temp file, fsync, rename, fsync of the folder) *before* its row is committed, both
  under the write lock; triggers refuse any update or delete of a revision row.
- The revision number is max(rev) + 1 taken under that lock, so two live writers never want the
  same file; a file already at that name can only be a dead writer's and is set aside
  (``<rev>.orphan-<random>.png``), never deleted and never in the way.
- ``expected_latest``: a save is checked against the revision its edits started from, and refused
  with ``RevisionConflict`` when someone saved a newer one meanwhile (DESIGN-NOTES.md 17).
- A human revision stores its Dice/IoU against the model on its row and on the case
  (DESIGN-NOTES.md 2), so the worklist needs no file reads.
"""
from __future__ import annotations

import logging
import os
import secrets
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from model.i18n_marks import QT_TRANSLATE_NOOP, Message
from training.imageio import (
    ImageReadError,
    decode_mask,
    encode_png,
    read_file_bytes,
    sha256_bytes,
    write_bytes_atomic,
)
from training.metrics import dice_iou
from training.store.records import ANY, SOURCES, Revision, RevisionConflict, WorkspaceError, _Any, _rel
from training.timestamps import utc_now

log = logging.getLogger(__name__)


class RevisionsMixin:
    """Workspace's revisions (uses its root, case, cached_prediction, _read, _write, _event)."""

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
                raise WorkspaceError(Message(QT_TRANSLATE_NOOP("Errors", "cannot write revision {path}: {error}"), path=path, error=exc.strerror or exc)) from None
            now = utc_now()
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
            data = read_file_bytes(revision.mask_path)
        except ImageReadError as exc:
            raise WorkspaceError(f"mask of {revision.case_id} rev {revision.rev}: {exc.reason}") from None
        if sha256_bytes(data) != revision.sha256:
            raise WorkspaceError(Message(QT_TRANSLATE_NOOP("Errors", "mask file {path} was modified outside ADF Viewer (sha256 mismatch)"), path=revision.mask_path))
        return decode_mask(data, revision.mask_path)


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
