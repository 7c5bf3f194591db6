"""The review controller on its own (issue 19): save, accept, approve as tumour-free, exclude,
restore, autosave and the recovery journal, against a real workspace, with no window.

Why: these rules decide what becomes a revision and with which status (what training later
learns from). tests/test_review.py, test_editing.py and test_save_conflict.py drive them through
the real window; here each rule is checked directly, with a fake window (``Ui``) and a fake
editor, so a change to them is tested in a second rather than through widgets.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoCommand

from tests.viewer_fixtures import disc_mask, gui_workspace, pair_folder  # noqa: F401
from training import recovery
from training.store import Workspace
from viewer.actions import TUMOUR_FREE_NOTE
from viewer.review import ReviewController
from viewer.save_conflict import LATER, MINE
from viewer.sessions import CaseSessions


class Ui:
    """The window as the controller sees it (viewer.review.ReviewUi): records what it is told."""

    def __init__(self, ws: Workspace) -> None:
        self.ws, self.author = ws, "dr.unit"
        self.session = None
        self.errors: list[str | None] = []
        self.messages: list[str] = []
        self.updates: list[tuple[str, str]] = []
        self.saved: list[tuple[str, int]] = []
        self.conflicts: list = []
        self.conflict_answer = LATER
        self.failed_prediction: str | None = None
        self.restore_answer = True
        self.next_calls = self.reloads = 0
        self.dialogs: list[tuple[str, str]] = []

    def current_session(self):  # noqa: ANN201
        return self.session

    def show_error(self, text: str | None) -> None:
        self.errors.append(text)

    def show_message(self, text: str, ms: int) -> None:
        self.messages.append(text)

    def case_status_changed(self, case_id: str) -> None:
        self.updates.append(("status", case_id))

    def case_saved(self, case_id: str) -> None:
        self.updates.append(("saved", case_id))

    def revision_saved(self, case_id: str, rev: int) -> None:
        self.saved.append((case_id, rev))

    def next_to_review(self) -> None:
        self.next_calls += 1

    def resolve_conflict(self, session, conflict) -> str:  # noqa: ANN001
        self.conflicts.append(conflict)
        return self.conflict_answer

    def prediction_error(self, case_id: str) -> str | None:
        return self.failed_prediction

    def ask_restore_recovery(self, entries) -> bool:  # noqa: ANN001
        return self.restore_answer

    def reload_worklist(self) -> None:
        self.reloads += 1

    def error_dialog(self, title: str, text: str) -> None:
        self.dialogs.append((title, text))


class SetMask(QUndoCommand):
    def __init__(self, session, mask: np.ndarray, text: str) -> None:  # noqa: ANN001
        super().__init__(text)
        self.session, self.before, self.after = session, session.mask.copy(), mask.astype(np.uint8)

    def redo(self) -> None:
        self.session.mask[...] = self.after

    def undo(self) -> None:
        self.session.mask[...] = self.before


class Editor:
    """The editor as the controller sees it (viewer.review.ReviewEditor)."""

    def __init__(self, ui: Ui) -> None:
        self.ui = ui
        self.open_shape = self.pending = False
        self.closed = self.cancelled = 0

    def has_open_shape(self) -> bool:
        return self.open_shape

    def close_shape(self) -> None:
        self.open_shape, self.closed = False, self.closed + 1

    def cancel_shape(self) -> None:
        self.open_shape, self.cancelled = False, self.cancelled + 1

    def click_pending(self, session) -> bool:  # noqa: ANN001
        return self.pending and session is not None

    def click_provenance(self, session) -> dict | None:  # noqa: ANN001
        return None

    def replace_mask(self, new_mask: np.ndarray, text: str) -> bool:
        s = self.ui.current_session()
        s.undo.push(SetMask(s, new_mask, text))
        return True


@pytest.fixture
def rig(qapp, gui_workspace):  # noqa: F811, ANN001, ANN201
    """(controller, ui, editor, sessions, workspace) on the first case of a fresh workspace."""
    ws = Workspace.open(gui_workspace)
    ui = Ui(ws)
    editor = Editor(ui)
    parent = QObject()
    sessions = CaseSessions(parent, lambda _s: None, lambda _c: None)
    case = sorted(ws.cases(), key=lambda c: c.id)[0]
    ui.session = sessions.session_for(ws, case, (case.height, case.width), case.id)
    review = ReviewController(ui, editor, autosave_ms=60_000, timer_parent=parent)
    yield review, ui, editor, sessions, ws
    sessions.clear()
    ws.close()


def outline(session) -> np.ndarray:  # noqa: ANN001
    h, w = session.mask.shape
    return disc_mask(h, w, w / 2, h / 2, min(h, w) / 5)


def test_an_edit_is_journaled_and_its_save_is_a_human_revision_on_its_base(rig) -> None:  # noqa: ANN001
    review, ui, editor, _sessions, ws = rig
    s = ui.session
    editor.replace_mask(outline(s), "stroke")
    review.mask_edited(s)
    assert s.dirty and s.journaled and review.autosave_timer.isActive()
    assert [e.case_id for e in recovery.pending_entries(ws.root)] == [s.case_id]
    assert ws.case(s.case_id).status == "in_progress" and ("status", s.case_id) in ui.updates

    rev = review.save_current("manual")
    assert rev is not None and not review.autosave_timer.isActive()
    (saved,) = ws.history(s.case_id)
    assert (saved.source, saved.author, saved.parent_rev, saved.note) == ("human", "dr.unit", None, "manual")
    assert np.array_equal(ws.load_mask(saved), outline(s))
    assert ws.case(s.case_id).status == "corrected"
    assert not s.dirty and (s.base_rev, s.mask_source) == (saved.rev, "revision")
    assert recovery.pending_entries(ws.root) == []
    assert ui.saved == [(s.case_id, saved.rev)] and ui.updates[-1] == ("saved", s.case_id)
    assert review.save_current("manual") is None   # nothing unsaved: no new revision
    assert len(ws.history(s.case_id)) == 1


def test_undoing_back_to_the_saved_state_drops_the_journal(rig) -> None:  # noqa: ANN001
    review, ui, editor, _sessions, ws = rig
    s = ui.session
    editor.replace_mask(outline(s), "stroke")
    review.mask_edited(s)
    s.undo.undo()
    review.mask_edited(s)
    assert not s.dirty and recovery.pending_entries(ws.root) == []


def test_accept_is_refused_while_there_is_nothing_to_accept(rig) -> None:  # noqa: ANN001
    review, ui, editor, _sessions, ws = rig
    s = ui.session
    review.accept()                                   # no revision, no edit, no prediction yet
    assert "Nothing to accept" in ui.messages[-1] and "not arrived" in ui.messages[-1]
    ui.failed_prediction = "Prediction failed: out of memory."
    review.accept()
    assert "Nothing to accept" in ui.messages[-1] and "out of memory" in ui.messages[-1]
    s.mask_source, s.mask[...] = "model", outline(s)  # the prediction arrives ...
    editor.pending = True                             # ... but a click is still being predicted
    review.accept()
    assert "still being predicted" in ui.messages[-1]
    editor.pending, editor.open_shape = False, True   # Enter with a polygon open closes the polygon
    review.accept()
    assert editor.closed == 1
    assert ws.history(s.case_id) == [] and ws.case(s.case_id).status != "approved" and ui.next_calls == 0


def test_accept_saves_an_untouched_prediction_as_the_models_revision(rig) -> None:  # noqa: ANN001
    review, ui, _editor, _sessions, ws = rig
    s = ui.session
    s.mask_source, s.model_id, s.mask[...] = "model", "fake-model-1", outline(s)
    review.accept()
    (rev,) = ws.history(s.case_id)
    assert (rev.source, rev.note, rev.model_id) == ("model", "accepted as predicted", "fake-model-1")
    assert ws.case(s.case_id).status == "approved" and ui.next_calls == 1
    assert (s.base_rev, s.mask_source) == (rev.rev, "revision")
    review.accept()                                   # accepting the saved revision again: no new revision
    assert len(ws.history(s.case_id)) == 1 and ui.next_calls == 2


def test_accept_saves_edits_as_a_human_revision(rig) -> None:  # noqa: ANN001
    review, ui, editor, _sessions, ws = rig
    s = ui.session
    editor.replace_mask(outline(s), "stroke")
    review.accept()
    (rev,) = ws.history(s.case_id)
    assert (rev.source, rev.note) == ("human", "accept") and ws.case(s.case_id).status == "approved"
    assert ui.next_calls == 1


def test_approve_as_tumour_free_clears_the_outline_and_records_the_decision(rig) -> None:  # noqa: ANN001
    review, ui, editor, _sessions, ws = rig
    s = ui.session
    s.mask_source, s.model_id, s.mask[...] = "model", "fake-model-1", outline(s)
    editor.open_shape = True
    review.approve_tumour_free()
    assert editor.cancelled == 1                      # an open polygon is dropped, not filled
    assert s.undo.count() == 1                        # the cleared outline is one undo step back
    (rev,) = ws.history(s.case_id)
    assert (rev.source, rev.note, rev.area) == ("human", TUMOUR_FREE_NOTE, 0)
    assert ws.case(s.case_id).status == "approved"
    status = ws.events(s.case_id, kind="status")[-1]["detail"]
    assert (status["to"], status["reason"]) == ("approved", TUMOUR_FREE_NOTE)
    assert "tumour-free" in ui.messages[-1] and ui.next_calls == 1


def test_approve_as_tumour_free_with_nothing_on_screen_saves_an_empty_revision(rig) -> None:  # noqa: ANN001
    review, ui, _editor, _sessions, ws = rig
    s = ui.session
    review.approve_tumour_free()
    (rev,) = ws.history(s.case_id)
    assert (rev.source, rev.note, rev.area) == ("human", TUMOUR_FREE_NOTE, 0)
    assert not s.dirty and (s.base_rev, s.mask_source) == (rev.rev, "revision")
    status = ws.events(s.case_id, kind="status")[-1]["detail"]
    assert (status["to"], status["reason"]) == ("approved", TUMOUR_FREE_NOTE)


def test_a_newer_revision_saved_meanwhile_is_the_clinicians_choice(rig) -> None:  # noqa: ANN001
    review, ui, editor, _sessions, ws = rig
    s = ui.session
    editor.replace_mask(outline(s), "stroke")
    with Workspace.open(ws.root) as other:           # another window saves the same case first
        theirs = other.add_revision(s.case_id, np.zeros(s.mask.shape, bool), source="human", author="dr.other")
    assert review.save_current("autosave") is None   # "decide later": nothing written
    assert [c.latest.author for c in ui.conflicts] == ["dr.other"]
    assert [r.rev for r in ws.history(s.case_id)] == [theirs.rev] and s.dirty
    ui.conflict_answer = MINE                         # "save mine as newer revision"
    rev = review.save_current("manual")
    assert rev is not None and rev.rev == theirs.rev + 1
    assert rev.note == f"manual; saved over revision {theirs.rev} by dr.other" and not s.dirty


def test_a_failed_save_keeps_the_edits_and_says_where_they_are(rig, monkeypatch) -> None:  # noqa: ANN001
    review, ui, editor, _sessions, ws = rig
    s = ui.session
    editor.replace_mask(outline(s), "stroke")
    review.mask_edited(s)                             # journaled

    def disk_full(*_a, **_k) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ws, "add_revision", disk_full)
    assert review.save_current("autosave") is None
    assert "Could not save" in ui.errors[-1] and "recovery journal" in ui.errors[-1]
    assert s.dirty and ui.saved == [] and recovery.pending_entries(ws.root) != []


def test_autosave_waits_for_a_click_on_its_way(rig) -> None:  # noqa: ANN001
    review, ui, editor, _sessions, ws = rig
    s = ui.session
    editor.replace_mask(outline(s), "click")
    editor.pending = True
    review.autosave()
    assert review.autosave_timer.isActive() and ws.history(s.case_id) == []
    editor.pending = False
    review.autosave()
    assert [r.note for r in ws.history(s.case_id)] == ["autosave"]


def test_exclude_saves_the_edits_first(rig) -> None:  # noqa: ANN001
    review, ui, editor, _sessions, ws = rig
    s = ui.session
    editor.replace_mask(outline(s), "stroke")
    review.exclude("blurred")
    assert [r.note for r in ws.history(s.case_id)] == ["before exclude"]
    case = ws.case(s.case_id)
    assert case.status == "excluded" and ui.next_calls == 1


def test_restore_brings_an_old_mask_back_as_a_new_revision(rig) -> None:  # noqa: ANN001
    review, ui, editor, _sessions, ws = rig
    s = ui.session
    editor.replace_mask(outline(s), "stroke")
    first = review.save_current("manual")
    editor.replace_mask(np.zeros(s.mask.shape, bool), "erase")
    review.save_current("manual")
    review.restore_revision(first.rev)
    hist = ws.history(s.case_id)
    assert [r.rev for r in hist] == [1, 2, 3] and hist[-1].note == "restored from revision 1"
    assert np.array_equal(ws.load_mask(hist[-1]), ws.load_mask(first))


def test_recovery_restores_journaled_edits_as_new_revisions(rig) -> None:  # noqa: ANN001
    review, ui, _editor, _sessions, ws = rig
    s = ui.session
    recovery.write_entry(ws.root, s.case_id, outline(s), None, None, "dr.crashed")
    ui.restore_answer = False                          # "No": the journal stays for the next start
    review.offer_recovery()
    assert ws.history(s.case_id) == [] and len(recovery.pending_entries(Path(ws.root))) == 1
    ui.restore_answer = True
    review.offer_recovery()
    (rev,) = ws.history(s.case_id)
    assert (rev.source, rev.author, rev.note) == ("human", "dr.crashed", "recovered after a crash")
    assert np.array_equal(ws.load_mask(rev), outline(s))
    assert ws.case(s.case_id).status == "corrected" and recovery.pending_entries(ws.root) == []
    assert ui.reloads == 1 and ui.dialogs == []
