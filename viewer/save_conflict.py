"""The choice when a save meets a newer revision saved by someone else (two windows, two clinicians).

Why: each window keeps the revision its edits started from. If another window (or another
clinician's machine) saved that case since, saving on top without a word would hide their
correction behind ours. The store refuses such a save (``RevisionConflict``, checked under the
write lock) and this dialog says "a newer revision was saved by NAME at TIME" and lets the
clinician choose:

- **Keep theirs**: their revision is shown; our edits become one undo step back (Ctrl+Z brings
  them back, and saving them then makes a newer revision knowingly).
- **Save mine as newer revision**: ours is saved on top; theirs stays in the history.
- **Decide later**: nothing is saved; the edits stay on screen and in the recovery journal.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPushButton, QVBoxLayout, QWidget

from training import recovery
from training.metrics import dice_iou
from training.store import RevisionConflict
from viewer import i18n, mask_ops
from viewer.tools import CaseSession, MaskEditCommand

THEIRS, MINE, LATER = "theirs", "mine", "later"


class SaveConflictDialog(QDialog):
    """Keep theirs / save mine as newer revision / decide later (Esc)."""

    def __init__(self, parent: QWidget | None, conflict: RevisionConflict, mine: np.ndarray,
                 theirs: np.ndarray | None) -> None:
        super().__init__(parent)
        self.setObjectName("saveConflictDialog")
        self.setWindowTitle(self.tr("Newer revision saved by someone else"))
        self.choice = LATER
        lat = conflict.latest
        started = (self.tr("revision {rev}").format(rev=conflict.expected) if conflict.expected is not None
                   else self.tr("a case with no saved revision"))
        self.headline = self.tr("A newer revision was saved by {author} at {time} (revision {rev} of {case}).").format(
            author=lat.author, time=i18n.stored_time(lat.created_at), rev=lat.rev, case=conflict.case_id)
        details = [self.tr("Your edits started from {start}.").format(start=started)]
        if theirs is not None:
            d, _ = dice_iou(mine.astype(bool), theirs.astype(bool))
            details.append(self.tr("Their mask: {theirs} px; yours: {mine} px; agreement (Dice) {dice}.").format(
                theirs=i18n.integer(np.count_nonzero(theirs)), mine=i18n.integer(np.count_nonzero(mine)),
                dice=i18n.number(d, 3)))
        details.append(self.tr("Saving yours keeps theirs in the history; keeping theirs keeps yours one Ctrl+Z away."))
        lay = QVBoxLayout(self)
        head = QLabel(self.headline)
        head.setObjectName("conflictHeadline")
        head.setWordWrap(True)
        head.setStyleSheet("font-weight: bold")
        lay.addWidget(head)
        body = QLabel(" ".join(details))
        body.setWordWrap(True)
        lay.addWidget(body)
        bb = QDialogButtonBox(self)
        self.keep_button = QPushButton(self.tr("Keep theirs"))
        self.keep_button.setObjectName("keepTheirs")
        self.mine_button = QPushButton(self.tr("Save mine as newer revision"))
        self.mine_button.setObjectName("saveMine")
        self.later_button = QPushButton(self.tr("Decide later"))
        self.later_button.setObjectName("decideLater")
        for b, role in ((self.keep_button, QDialogButtonBox.ButtonRole.AcceptRole),
                        (self.mine_button, QDialogButtonBox.ButtonRole.AcceptRole),
                        (self.later_button, QDialogButtonBox.ButtonRole.RejectRole)):
            bb.addButton(b, role)
        self.keep_button.clicked.connect(lambda: self._choose(THEIRS))
        self.mine_button.clicked.connect(lambda: self._choose(MINE))
        self.later_button.clicked.connect(self.reject)
        self.keep_button.setDefault(True)
        lay.addWidget(bb)

    def _choose(self, choice: str) -> None:
        self.choice = choice
        self.accept()


def resolve(window: Any, session: CaseSession, conflict: RevisionConflict) -> str:
    """Ask, and carry out "keep theirs" here; returns THEIRS, MINE (the caller saves) or LATER.

    A newer revision with exactly our mask is no conflict at all: it is taken as ours, silently.
    """
    ws = window.ws
    theirs = ws.load_mask(conflict.latest)
    mine = session.mask.astype(bool)
    if np.array_equal(theirs, mine):
        take_theirs(window, session, conflict, theirs)
        return THEIRS
    dlg = SaveConflictDialog(window, conflict, mine, theirs)
    window.statusBar().showMessage(dlg.headline, 15000)
    dlg.exec()
    if dlg.choice == THEIRS:
        take_theirs(window, session, conflict, theirs)
    elif dlg.choice == LATER:
        window.autosave_timer.stop()
        window.pair.show_error(QCoreApplication.translate(
            "SaveConflict", "Not saved: {headline} Your edits stay here and in the recovery journal until you save "
            "(Ctrl+S) or switch cases, when you will be asked again.").format(headline=dlg.headline))
    return dlg.choice


def take_theirs(window: Any, session: CaseSession, conflict: RevisionConflict, theirs: np.ndarray) -> None:
    """Show their revision as the saved state; our edits become the undo step just before it."""
    before = session.mask.copy()
    bbox = mask_ops.replace_into(session.mask, theirs.astype(np.uint8))
    if bbox is not None:
        x0, y0, x1, y1 = bbox
        cmd = MaskEditCommand(session, bbox, before[y0:y1, x0:x1], session.mask[y0:y1, x0:x1].copy(),
                              QCoreApplication.translate("SaveConflict", "Keep revision {rev} by {author}").format(
                                  rev=conflict.latest.rev, author=conflict.latest.author),
                              window.editor._after_undo_redo)
        session.undo.push(cmd)  # not through the editor: this is a saved state, not an edit to journal
        if window.pair.overlay is not None and window.editor.session is session:
            window.pair.overlay.refresh(bbox)
    session.base_rev = conflict.latest.rev
    session.mask_source = "revision"
    session.saved_index = session.undo.index()
    session.undo.setClean()
    session.journaled = False
    window.autosave_timer.stop()
    recovery.clear_entry(window.ws.root, session.case_id)
    window.pair.show_error(None)
    window.worklist_model.update_case(window.ws.case(session.case_id))
    if session.case_id == window.current_case_id:
        window._refresh_history()
        window._update_case_label()
    window.statusBar().showMessage(QCoreApplication.translate(
        "SaveConflict", "Showing revision {rev} by {author}; Ctrl+Z brings your edits back").format(
        rev=conflict.latest.rev, author=conflict.latest.author), 8000)
