"""Review and saving: what the clinician decides about a case becomes revisions and statuses.

Nothing is ever overwritten (DESIGN.md): each decision is a new revision or a status event.

- **save** (autosave 2 s after the last edit, case switch, Ctrl+S, close): the unsaved edits as a
  new *human* revision on top of the revision they started from. If someone saved a newer one
  meanwhile, the clinician chooses (viewer/save_conflict.py).
- **accept** (A / Enter): approves the mask on screen: edits are saved as a human revision, an
  untouched prediction as the model's. Refused while there is nothing to accept (the prediction
  is pending or failed and nothing was drawn): an empty "approved" mask would be a "no tumour"
  that nobody decided; that is **approve as tumour-free**, its own decision, an empty human
  revision noted TUMOUR_FREE_NOTE.
- **exclude** (a status with a reason) and **restore** (an older revision's mask as a new one).
- **recovery journal**: after each stroke the unsaved mask is written beside the store
  (training/recovery.py) and offered back as new revisions after a crash.

No widgets here: the controller talks to the store, the case sessions and two small interfaces,
``ReviewUi`` (the main window) and ``ReviewEditor`` (viewer.tools.EditController), so it is tested
with fakes in tests/test_review_controller.py.
"""
from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, QTimer

from model.i18n_marks import QT_TRANSLATE_NOOP
from training import recovery
from training.store import RevisionConflict, WorkspaceError
from viewer import i18n
from viewer.actions import TUMOUR_FREE_NOTE
from viewer.save_conflict import MINE
from viewer.tools import CaseSession


class ReviewUi(Protocol):
    """What the controller needs from the window."""

    ws: Any          # the open training.store.Workspace, or None
    author: str      # who saves

    def current_session(self) -> CaseSession | None: ...          # the case on screen
    def show_error(self, text: str | None) -> None: ...           # the banner over the images
    def show_message(self, text: str, ms: int) -> None: ...       # the status bar
    def case_status_changed(self, case_id: str) -> None: ...      # its worklist row
    def case_saved(self, case_id: str) -> None: ...               # its row; history and label if on screen
    def revision_saved(self, case_id: str, rev: int) -> None: ...
    def next_to_review(self) -> None: ...
    def resolve_conflict(self, session: CaseSession, conflict: RevisionConflict) -> str: ...  # save_conflict
    def prediction_error(self, case_id: str) -> str | None: ...   # why its last prediction failed
    def ask_restore_recovery(self, entries: list[recovery.JournalEntry]) -> bool: ...
    def reload_worklist(self) -> None: ...
    def error_dialog(self, title: str, text: str) -> None: ...


class ReviewEditor(Protocol):
    """What the controller needs from the editor of the case on screen."""

    def has_open_shape(self) -> bool: ...
    def close_shape(self) -> None: ...
    def cancel_shape(self) -> None: ...
    def click_pending(self, session: CaseSession | None) -> bool: ...
    def click_provenance(self, session: CaseSession) -> dict | None: ...
    def replace_mask(self, new_mask: np.ndarray, text: str) -> bool: ...


# why a revision was saved (stored in English in its note), as the status bar shows it
SAVE_REASONS = {reason: reason for reason in (
    QT_TRANSLATE_NOOP("Review", "manual"), QT_TRANSLATE_NOOP("Review", "autosave"), QT_TRANSLATE_NOOP("Review", "accept"),
    QT_TRANSLATE_NOOP("Review", "clicks"), QT_TRANSLATE_NOOP("Review", "case switch"),
    QT_TRANSLATE_NOOP("Review", "workspace switch"), QT_TRANSLATE_NOOP("Review", "before import"),
    QT_TRANSLATE_NOOP("Review", "before export"), QT_TRANSLATE_NOOP("Review", "before training"),
    QT_TRANSLATE_NOOP("Review", "before exclude"), QT_TRANSLATE_NOOP("Review", "close"))}


def reason_text(reason: str) -> str:
    """A save reason in the UI language (others, e.g. "restored from revision 2", as stored)."""
    return QCoreApplication.translate("Review", reason) if reason in SAVE_REASONS else reason


class ReviewController:
    """Save, accept, approve as tumour-free, exclude, restore, autosave and the recovery journal."""

    def __init__(self, ui: ReviewUi, editor: ReviewEditor, autosave_ms: int = 2000,
                 timer_parent: QObject | None = None) -> None:
        self.ui = ui
        self.editor = editor
        self.autosave_timer = QTimer(timer_parent)
        self.autosave_timer.setSingleShot(True)
        self.autosave_timer.setInterval(autosave_ms)
        self.autosave_timer.timeout.connect(self.autosave)

    # --- edits and saving -------------------------------------------------------------------------
    def mask_edited(self, s: CaseSession) -> None:
        """After each stroke, undo or redo: journal the unsaved mask (or drop the journal once the
        mask is back to its saved state), mark the case in progress, (re)arm the autosave."""
        ws = self.ui.ws
        if s.dirty:
            self.autosave_timer.start()
            try:
                recovery.write_entry(ws.root, s.case_id, s.mask, s.base_rev, s.model_id, self.ui.author)
                s.journaled = True
            except OSError as exc:
                s.journaled = False
                self.ui.show_error(QCoreApplication.translate(
                    "Review", "Could not write the recovery journal ({error}): these edits are only in memory until "
                    "they are saved.").format(error=exc.strerror or exc))
            case = ws.case(s.case_id)
            if case.status != "in_progress" and not ws.readonly:
                try:
                    ws.set_status(s.case_id, "in_progress", author=self.ui.author)
                    self.ui.case_status_changed(s.case_id)
                except WorkspaceError as exc:
                    self.ui.show_error(i18n.error_text(exc))
        else:
            try:
                recovery.clear_entry(ws.root, s.case_id)
            except OSError:
                pass

    def autosave(self) -> None:
        """Autosave, unless a click's prediction is on its way: its mask is what the clinician wants kept."""
        if self.editor.click_pending(self.ui.current_session()):
            self.autosave_timer.start()
            return
        self.save_current("autosave")

    def save_current(self, reason: str = "manual") -> Any:
        """Save the current case's unsaved edits as a new human revision (never overwrites)."""
        s = self.ui.current_session()
        if s is None or self.ui.ws is None or not s.dirty:
            return None
        return self.save(s, reason)

    def save(self, s: CaseSession, reason: str, status: str = "corrected", status_reason: str | None = None) -> Any:
        """Save a session's mask as a new human revision and set the case's status; the revision, or
        None (not saved: said on screen, the edits stay)."""
        ws = self.ui.ws
        self.autosave_timer.stop()
        provenance = self.editor.click_provenance(s)
        note = f"{reason} · {provenance['summary']}" if provenance else reason
        try:
            rev = self.add_on_base(s, "human", note, parent_rev=s.base_rev, reference_prob=s.prob,
                                   provenance=provenance)
            if rev is None:
                return None
            ws.set_status(s.case_id, status, reason=status_reason, author=self.ui.author)
        except Exception as exc:  # noqa: BLE001 - disk full, read-only...: the journal keeps the work
            where = (QCoreApplication.translate(
                "Review", "Your edits are kept in the recovery journal and offered again at the next start.")
                if s.journaled else QCoreApplication.translate(
                "Review", "Your edits are only in memory: keep ADF Viewer open, free disk space or make the "
                "workspace writable, then press Ctrl+S."))
            msg = QCoreApplication.translate("Review", "Could not save {case}: {error}. {where}").format(
                case=s.case_id, error=i18n.error_text(exc), where=where)
            self.ui.show_error(msg)
            self.ui.show_message(msg, 15000)
            return None
        s.base_rev = rev.rev
        s.mask_source = "revision"
        s.saved_index = s.undo.index()
        s.undo.setClean()
        recovery.clear_entry(ws.root, s.case_id)
        self.ui.case_saved(s.case_id)
        self.ui.show_message(QCoreApplication.translate("Review", "Saved {case} as revision {rev} ({reason})").format(
            case=s.case_id, rev=rev.rev, reason=reason_text(reason)), 4000)
        self.ui.revision_saved(s.case_id, rev.rev)
        return rev

    def add_on_base(self, s: CaseSession, source: str, note: str, **kw: Any) -> Any:
        """Save the session's mask only on top of the revision its edits started from; when someone
        saved a newer one meanwhile, ask (viewer/save_conflict.py). None: not saved."""
        ws = self.ui.ws
        expected = s.base_rev
        while True:
            try:
                return ws.add_revision(s.case_id, s.mask.astype(bool), source=source, author=self.ui.author,
                                       model_id=s.model_id, note=note, expected_latest=expected, **kw)
            except RevisionConflict as conflict:
                if self.ui.resolve_conflict(s, conflict) != MINE:
                    return None
                expected = conflict.latest.rev
                note = f"{note}; saved over revision {expected} by {conflict.latest.author}"

    # --- decisions ----------------------------------------------------------------------------------
    def accept(self) -> None:
        """Approve the mask on screen (model's or corrected), save it, go to the next case to review.

        Enter with a polygon or lasso open closes the shape instead. Refused, with a status-bar
        message, while a click is being predicted or there is nothing to accept: no revision, no
        edit and no prediction yet (pending or failed).
        """
        if self.editor.has_open_shape():
            self.editor.close_shape()
            return
        s, ws = self.ui.current_session(), self.ui.ws
        if s is None or ws is None:
            return
        if self.editor.click_pending(s):
            self.ui.show_message(QCoreApplication.translate(
                "Review", "The last click on {case} is still being predicted: accept once the mask has been "
                "redrawn.").format(case=s.case_id), 6000)
            return
        if not s.dirty and s.mask_source == "empty":
            failed = self.ui.prediction_error(s.case_id)
            why = failed.rstrip(".") if failed else QCoreApplication.translate(
                "Review", "the model's prediction has not arrived yet")
            self.ui.show_message(QCoreApplication.translate(
                "Review", "Nothing to accept for {case}: {why}. Outline the tumour, wait for the prediction, or use "
                "Case ▸ Approve as tumour-free.").format(case=s.case_id, why=why), 10000)
            return
        if s.dirty:
            if self.save(s, "accept", status="approved") is None:
                return
        else:
            try:
                if s.mask_source == "model":
                    rev = self.add_on_base(s, "model", "accepted as predicted")
                    if rev is None:
                        return
                    s.base_rev, s.mask_source = rev.rev, "revision"
                ws.set_status(s.case_id, "approved", author=self.ui.author)
            except Exception as exc:  # noqa: BLE001
                self.ui.show_error(QCoreApplication.translate("Review", "Could not approve {case}: {error}").format(
                    case=s.case_id, error=i18n.error_text(exc)))
                return
        self.ui.case_saved(s.case_id)
        self.ui.next_to_review()

    def approve_tumour_free(self) -> None:
        """The clinician's explicit "no tumour" decision.

        Saves an empty mask as a new human revision noted TUMOUR_FREE_NOTE (the status event carries
        the same reason), whatever is on screen; an outline on screen is cleared as one undoable
        edit first and stays in the history. Then goes to the next case to review.
        """
        if self.editor.has_open_shape():
            self.editor.cancel_shape()
        s, ws = self.ui.current_session(), self.ui.ws
        if s is None or ws is None:
            return
        if s.mask.any():
            self.editor.replace_mask(np.zeros(s.mask.shape, bool),
                                     QCoreApplication.translate("Review", "Approve as tumour-free"))
        if s.dirty:
            rev = self.save(s, TUMOUR_FREE_NOTE, status="approved", status_reason=TUMOUR_FREE_NOTE)
            if rev is None:
                return
        else:
            try:
                rev = self.add_on_base(s, "human", TUMOUR_FREE_NOTE, parent_rev=s.base_rev,
                                       reference_prob=s.prob)  # s.mask is empty here
                if rev is None:
                    return
                s.base_rev, s.mask_source = rev.rev, "revision"
                ws.set_status(s.case_id, "approved", reason=TUMOUR_FREE_NOTE, author=self.ui.author)
            except Exception as exc:  # noqa: BLE001
                self.ui.show_error(QCoreApplication.translate("Review", "Could not approve {case}: {error}").format(
                    case=s.case_id, error=i18n.error_text(exc)))
                return
            recovery.clear_entry(ws.root, s.case_id)
        self.ui.case_saved(s.case_id)
        self.ui.show_message(QCoreApplication.translate("Review", "{case} approved as tumour-free (revision {rev})")
                             .format(case=s.case_id, rev=rev.rev), 6000)
        self.ui.next_to_review()

    def exclude(self, reason: str) -> None:
        """Exclude the case on screen (its unsaved edits are saved first), then go on."""
        s, ws = self.ui.current_session(), self.ui.ws
        if s is None or ws is None:
            return
        self.save_current("before exclude")
        ws.set_status(s.case_id, "excluded", reason=reason, author=self.ui.author)
        self.ui.case_status_changed(s.case_id)
        self.ui.next_to_review()

    def restore_revision(self, rev_no: int) -> None:
        """Bring an older revision back as a *new* revision (history is never rewritten)."""
        s, ws = self.ui.current_session(), self.ui.ws
        if s is None or ws is None:
            return
        rev = next(r for r in ws.history(s.case_id) if r.rev == rev_no)
        self.editor.replace_mask(ws.load_mask(rev),
                                 QCoreApplication.translate("Review", "Restore revision {rev}").format(rev=rev_no))
        self.save(s, f"restored from revision {rev_no}")

    # --- recovery journal ---------------------------------------------------------------------------
    def offer_recovery(self) -> None:
        """At workspace open: edits a crash left unsaved are offered back as new revisions."""
        if self.ui.ws is None:
            return
        entries = recovery.pending_entries(self.ui.ws.root)
        if entries and self.ui.ask_restore_recovery(entries):
            self.restore_recovery(entries)

    def restore_recovery(self, entries: list[recovery.JournalEntry]) -> int:
        """Save every journal entry as a new human revision; returns how many were restored."""
        ws = self.ui.ws
        assert ws is not None
        restored = 0
        for e in entries:
            try:
                ws.add_revision(e.case_id, e.mask, source="human", author=e.author or self.ui.author,
                                model_id=e.model_id, parent_rev=e.base_rev, note="recovered after a crash")
                ws.set_status(e.case_id, "corrected", author=e.author or self.ui.author)
                recovery.clear_entry(ws.root, e.case_id)
                restored += 1
            except Exception as exc:  # noqa: BLE001
                self.ui.error_dialog(QCoreApplication.translate("Review", "Recovery failed"),
                                     f"{e.case_id}: {i18n.error_text(exc)}")
        self.ui.reload_worklist()
        return restored
