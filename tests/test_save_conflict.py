"""Two app windows on one workspace (issue 18, item 3): real windows, real strokes, DB asserted.

Each window has its own Workspace connection, as two app processes would; the store's check
(``expected_latest``) runs under SQLite's write lock, which is proven across real processes in
tests/test_shared_workspace.py. Here: what the clinician sees and chooses.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel, QPushButton

from tests.test_shared_workspace import child
from tests.viewer_fixtures import (  # noqa: F401
    FakePredictor,
    drag,
    gui_workspace,
    make_window,
    pair_folder,
    wait_for_prediction,
)
from training.store import Workspace
from training.store import workspace as ws_module  # where the busy timeout is
from viewer.pair_view import WLI


def window(qtbot, tmp_path: Path, ws: Path, author: str):
    (tmp_path / author).mkdir()
    win = make_window(qtbot, tmp_path / author, FakePredictor(), author=author, autosave_ms=3_600_000)
    assert win.open_workspace(ws)
    wait_for_prediction(qtbot, win)
    return win


def stroke(qtbot, win, case_id: str, pts: list[tuple[float, float]], radius: int = 6) -> np.ndarray:
    """Open ``case_id`` in ``win`` and paint one brush stroke; returns the mask on screen."""
    if win.current_case_id != case_id:
        win.open_case(case_id)
        wait_for_prediction(qtbot, win, case_id)
    win.editor.set_tool("brush")
    win.editor.set_radius(radius)
    drag(qtbot, win.pair.views[WLI], pts)
    assert win.current_session().dirty
    return win.current_session().mask.astype(bool).copy()


class Answer:
    """Click a button of the conflict dialog as soon as it is up (it is modal), noting what it said."""

    def __init__(self, button: str) -> None:
        self.button, self.headlines = button, []
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._poll)
        self.timer.start()

    def _poll(self) -> None:
        dlg = QApplication.activeModalWidget()
        if dlg is None or dlg.objectName() != "saveConflictDialog":
            return
        self.headlines.append(dlg.findChild(QLabel, "conflictHeadline").text())
        dlg.findChild(QPushButton, self.button).click()

    def stop(self) -> None:
        self.timer.stop()


def history(ws_root: Path, case_id: str):
    with Workspace.open(ws_root) as ws:
        return [(r.rev, r.author, r.parent_rev, ws.load_mask(r)) for r in ws.history(case_id)]


def test_two_windows_on_different_cases_both_save(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    a = window(qtbot, tmp_path, gui_workspace, "dr.a")
    b = window(qtbot, tmp_path, gui_workspace, "dr.b")
    watch = Answer("keepTheirs")
    mine_a = stroke(qtbot, a, "alpha", [(40, 40), (90, 60)])
    mine_b = stroke(qtbot, b, "beta", [(30, 30), (60, 90)])
    assert a.save_current().rev == 1 and b.save_current().rev == 1
    watch.stop()
    assert watch.headlines == []  # no dialog
    (ra,) = history(gui_workspace, "alpha")
    (rb,) = history(gui_workspace, "beta")
    assert ra[1] == "dr.a" and np.array_equal(ra[3], mine_a)
    assert rb[1] == "dr.b" and np.array_equal(rb[3], mine_b)


def same_case_conflict(qtbot, tmp_path, ws: Path, button: str):
    a = window(qtbot, tmp_path, ws, "dr.a")
    b = window(qtbot, tmp_path, ws, "dr.b")
    assert a.current_case_id == b.current_case_id == "alpha"
    theirs = stroke(qtbot, a, "alpha", [(40, 40), (90, 60)])
    mine = stroke(qtbot, b, "alpha", [(100, 120), (150, 150)])
    assert a.save_current().rev == 1
    answer = Answer(button)
    rev = b.save_current()
    answer.stop()
    assert len(answer.headlines) == 1
    assert answer.headlines[0].startswith("A newer revision was saved by dr.a at ")
    return a, b, theirs, mine, rev


def test_same_case_twice_save_mine_as_newer_revision(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    a, b, theirs, mine, rev = same_case_conflict(qtbot, tmp_path, gui_workspace, "saveMine")
    assert rev is not None and rev.rev == 2
    h = history(gui_workspace, "alpha")
    assert [(r, who, parent) for r, who, parent, _ in h] == [(1, "dr.a", None), (2, "dr.b", None)]
    assert np.array_equal(h[0][3], theirs) and np.array_equal(h[1][3], mine)  # theirs kept in the history
    assert not b.current_session().dirty and b.current_session().base_rev == 2
    with Workspace.open(gui_workspace) as ws:
        assert "saved over revision 1 by dr.a" in ws.history("alpha")[1].note


def test_same_case_twice_keep_theirs(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    a, b, theirs, mine, rev = same_case_conflict(qtbot, tmp_path, gui_workspace, "keepTheirs")
    assert rev is None
    assert [r[:2] for r in history(gui_workspace, "alpha")] == [(1, "dr.a")]  # nothing of b's saved
    s = b.current_session()
    assert np.array_equal(s.mask.astype(bool), theirs) and not s.dirty and s.base_rev == 1
    b.undo_group.undo()                                  # b's edits are one step back ...
    assert np.array_equal(s.mask.astype(bool), mine) and s.dirty
    watch = Answer("keepTheirs")
    assert b.save_current().rev == 2                     # ... and now save on top, knowingly, no dialog
    watch.stop()
    assert watch.headlines == []


def test_decide_later_saves_nothing_and_keeps_the_edits(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    a, b, theirs, mine, rev = same_case_conflict(qtbot, tmp_path, gui_workspace, "decideLater")
    assert rev is None and [r[0] for r in history(gui_workspace, "alpha")] == [1]
    s = b.current_session()
    assert s.dirty and np.array_equal(s.mask.astype(bool), mine)
    assert "Not saved: A newer revision was saved by dr.a" in b.pair.banner.text()
    answer = Answer("saveMine")                          # closing the window asks again
    b.close()
    answer.stop()
    assert len(answer.headlines) == 1
    assert [r[:2] for r in history(gui_workspace, "alpha")] == [(1, "dr.a"), (2, "dr.b")]


def test_a_clean_case_shows_the_other_windows_newer_save_when_reopened(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    a = window(qtbot, tmp_path, gui_workspace, "dr.a")
    b = window(qtbot, tmp_path, gui_workspace, "dr.b")       # both show alpha, b has not edited it
    theirs = stroke(qtbot, a, "alpha", [(40, 40), (90, 60)])
    a.save_current()
    b.open_case("beta")
    b.open_case("alpha")
    s = b.current_session()
    assert s.base_rev == 1 and np.array_equal(s.mask.astype(bool), theirs)


def test_a_save_blocked_by_another_machine_names_it(qtbot, tmp_path, gui_workspace,  # noqa: F811
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ws_module, "_BUSY_TIMEOUT_MS", 300)
    b = window(qtbot, tmp_path, gui_workspace, "dr.b")
    stroke(qtbot, b, "alpha", [(40, 40), (90, 60)])
    holder = child("hold-lock", str(gui_workspace), "ward-pc-2", "dr.a", stdin=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        assert b.save_current() is None
        text = b.pair.banner.text()
        assert "Could not save alpha" in text and "on another machine" in text and "ward-pc-2 by dr.a" in text
        assert b.current_session().dirty
    finally:
        holder.stdin.close()
        holder.wait(60)
    assert b.save_current().rev == 1
