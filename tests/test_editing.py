"""GUI tests of correcting boundaries (issue 6): tools on both views, undo, autosave, review, crash."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt

from tests.viewer_fixtures import (  # noqa: F401
    FakePredictor,
    drag,
    gui_workspace,
    make_window,
    pair_folder,
    view_pos,
    wait_for_prediction,
)
from training import recovery
from viewer.pair_view import NBI, WLI

ROOT = Path(__file__).resolve().parents[1]


def capsule_pixels(shape: tuple[int, int], pts: list[QPointF], r: float) -> np.ndarray:
    """Independent reference: pixels whose centre lies within r of the polyline."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    out = np.zeros(shape, bool)
    pairs = list(zip(pts[:-1], pts[1:], strict=True)) or [(pts[0], pts[0])]
    for a, b in pairs:
        ax, ay, bx, by = a.x(), a.y(), b.x(), b.y()
        dx, dy = bx - ax, by - ay
        l2 = dx * dx + dy * dy
        t = np.clip(((xx - ax) * dx + (yy - ay) * dy) / l2, 0, 1) if l2 else 0.0
        out |= (xx - ax - t * dx) ** 2 + (yy - ay - t * dy) ** 2 <= r * r
    return out


def open_case_without_prediction(qtbot, tmp_path, ws, **kw):
    win = make_window(qtbot, tmp_path, FakePredictor(), **kw)
    assert win.open_workspace(ws)
    wait_for_prediction(qtbot, win)
    win.editor.replace_mask(np.zeros_like(win.current_session().mask), "clear")
    win.current_session().undo.clear()
    return win


def test_brush_stroke_on_the_wli_view_sets_the_expected_pixels(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    win = open_case_without_prediction(qtbot, tmp_path, gui_workspace)
    win.pair.actual_size()
    win.editor.set_tool("brush")
    win.editor.set_radius(6)
    pts = drag(qtbot, win.pair.views[WLI], [(40, 40), (80, 45), (120, 90)])
    mask = win.current_session().mask.astype(bool)
    expected = capsule_pixels(mask.shape, pts, 6)
    assert np.array_equal(mask, expected)
    assert win.current_session().undo.count() == 1  # one stroke = one command


def test_brush_stroke_on_the_nbi_view_lands_in_wli_space_through_the_homography(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    win = open_case_without_prediction(qtbot, tmp_path, gui_workspace)
    case = win.ws.case(win.current_case_id)
    hom = np.asarray(case.homography)
    assert not np.allclose(hom, np.eye(3), atol=1e-3)
    win.pair.actual_size()
    nv = win.pair.views[NBI]
    win.editor.set_tool("brush")
    win.editor.set_radius(4)
    # Click on a raw NBI pixel: the dot must land at H @ that pixel in the WLI mask.
    nbi_px = QPointF(90.0, 70.0)
    scene = win.pair.image_items[NBI].mapToScene(nbi_px)
    pts = drag(qtbot, nv, [(scene.x(), scene.y())])
    mask = win.current_session().mask.astype(bool)
    wli = hom @ np.array([90.0, 70.0, 1.0])
    wx, wy = wli[:2] / wli[2]
    assert mask[int(wy), int(wx)]
    ys, xs = np.nonzero(mask)
    assert abs(xs.mean() + 0.5 - wx) < 1.5 and abs(ys.mean() + 0.5 - wy) < 1.5
    assert np.array_equal(mask, capsule_pixels(mask.shape, pts, 4))


def test_a_case_without_nbi_shows_a_blank_frame_on_the_nbi_side_that_still_takes_edits(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    """A WLI-only case: the NBI side shows a flat frame exactly the WLI's size (so the outline sits in
    an image area, not floating on the background), the outline drawn on it; a stroke there lands at
    the same WLI pixels and is what the save holds."""
    import qimage2ndarray
    from PySide6.QtGui import QImage, QPainter

    from training.store import Workspace
    from viewer.pair_view import NO_NBI_FILL

    win = open_case_without_prediction(qtbot, tmp_path, gui_workspace)
    gamma = next(c.id for c in win.ws.cases() if c.patient_id == "P-gamma")
    win.open_case(gamma)
    wait_for_prediction(qtbot, win, gamma)
    mask = win.current_session().mask.astype(bool)
    assert mask.any() and "No NBI" in win.pair.titles[NBI].text()
    h, w = mask.shape
    view = win.pair.views[NBI]
    pad = 4  # render a margin around the image: the frame must stop exactly at its edges
    img = QImage(w + 2 * pad, h + 2 * pad, QImage.Format.Format_ARGB32)
    img.fill(0)
    painter = QPainter(img)
    view.scene().render(painter, QRectF(0, 0, w + 2 * pad, h + 2 * pad), QRectF(-pad, -pad, w + 2 * pad, h + 2 * pad))
    painter.end()
    rgb = qimage2ndarray.rgb_view(img)
    fill = np.array([NO_NBI_FILL.red(), NO_NBI_FILL.green(), NO_NBI_FILL.blue()])
    is_fill = (rgb == fill).all(axis=2)
    inside = np.zeros(is_fill.shape, bool)
    inside[pad:pad + h, pad:pad + w] = True
    assert not is_fill[~inside].any()  # nothing of the frame outside the image's extent
    coloured = ~is_fill & inside
    assert coloured[pad:pad + h, pad:pad + w][~mask].sum() < 0.01 * w * h  # the frame where there is no outline
    assert coloured[pad:pad + h, pad:pad + w][mask].any()  # the outline drawn on it
    win.editor.replace_mask(np.zeros((h, w), bool), "clear")
    win.pair.actual_size()
    win.editor.set_tool("brush")
    win.editor.set_radius(5)
    pts = drag(qtbot, view, [(40, 40), (90, 70)])
    stroke = capsule_pixels((h, w), pts, 5)
    assert np.array_equal(win.current_session().mask.astype(bool), stroke)
    rev = win.save_current("test")
    with Workspace.open(gui_workspace) as ws:
        assert ws.latest_revision(gamma).rev == rev.rev
        assert np.array_equal(ws.load_mask(ws.latest_revision(gamma)), stroke)


def test_polygon_fill_with_enter_and_cancel_with_escape(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    win = open_case_without_prediction(qtbot, tmp_path, gui_workspace)
    win.pair.actual_size()
    wv = win.pair.views[WLI]
    win.editor.set_tool("polygon")
    for p in [(30, 30), (90, 30), (90, 80), (30, 80)]:
        qtbot.mouseClick(wv.viewport(), Qt.MouseButton.LeftButton, pos=view_pos(wv, p))
    wv.setFocus()
    qtbot.keyClick(wv, Qt.Key.Key_Return)
    mask = win.current_session().mask.astype(bool)
    assert mask[50, 60] and not mask[20, 60] and not mask[50, 100]
    area = mask.sum()
    assert 55 * 45 <= area <= 62 * 52
    # Esc cancels an open polygon without touching the mask.
    for p in [(100, 100), (140, 100), (140, 140)]:
        qtbot.mouseClick(wv.viewport(), Qt.MouseButton.LeftButton, pos=view_pos(wv, p))
    qtbot.keyClick(wv, Qt.Key.Key_Escape)
    assert win.current_session().mask.sum() == area
    assert win.current_session().undo.count() == 1


def test_lasso_fill_and_lasso_erase(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    win = open_case_without_prediction(qtbot, tmp_path, gui_workspace)
    win.pair.actual_size()
    wv = win.pair.views[WLI]
    win.editor.set_tool("lasso")
    circle = [(80 + 40 * np.cos(t), 80 + 40 * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 40)]
    drag(qtbot, wv, circle)
    mask = win.current_session().mask.astype(bool)
    assert mask[80, 80] and not mask[80, 125]
    assert abs(mask.sum() - np.pi * 40 ** 2) / (np.pi * 40 ** 2) < 0.08
    win.editor.set_tool("lasso_erase")
    drag(qtbot, wv, [(60, 60), (100, 60), (100, 100), (60, 100)])
    mask = win.current_session().mask.astype(bool)
    assert not mask[80, 80] and mask[80, 115]


def test_undo_and_redo_restore_exactly(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    win = open_case_without_prediction(qtbot, tmp_path, gui_workspace)
    win.pair.actual_size()
    wv = win.pair.views[WLI]
    s = win.current_session()
    states = [s.mask.copy()]
    win.editor.set_tool("brush")
    drag(qtbot, wv, [(30, 30), (100, 60)])
    states.append(s.mask.copy())
    win.editor.set_tool("eraser")
    drag(qtbot, wv, [(60, 20), (60, 80)])
    states.append(s.mask.copy())
    win.editor.apply_operation("grow", pixels=3)
    states.append(s.mask.copy())
    for expect in reversed(states[:-1]):
        qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert np.array_equal(s.mask, expect)
    for expect in states[1:]:
        qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
        assert np.array_equal(s.mask, expect)
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(win, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(s.mask, states[-1])
    # The overlay follows the undo (its alpha channel is non-zero only on the mask's outline/fill).
    assert (win.pair.overlay.bgra[..., 3] > 0).any()


def test_undo_history_survives_switching_cases(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    win = open_case_without_prediction(qtbot, tmp_path, gui_workspace)
    first = win.current_case_id
    win.pair.actual_size()
    win.editor.set_tool("brush")
    drag(qtbot, win.pair.views[WLI], [(30, 30), (60, 60)])
    after = win.current_session().mask.copy()
    win.next_case()
    assert win.current_case_id != first
    win.previous_case()
    assert win.current_case_id == first
    s = win.current_session()
    assert np.array_equal(s.mask, after)
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not s.mask.any()


def test_autosave_writes_a_revision_file_and_a_db_row(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    from training.store import Workspace

    win = open_case_without_prediction(qtbot, tmp_path, gui_workspace, autosave_ms=150)
    case_id = win.current_case_id
    win.pair.actual_size()
    win.editor.set_tool("brush")
    drag(qtbot, win.pair.views[WLI], [(40, 40), (90, 70)])
    assert recovery.pending_entries(gui_workspace)  # journal written at stroke end
    qtbot.waitUntil(lambda: not win.current_session().dirty, timeout=5000)
    with Workspace.open(gui_workspace) as ws:
        rev = ws.latest_revision(case_id)
        assert rev is not None and rev.source == "human" and rev.author == "dr.test"
        assert rev.model_id == "fake-model-1"
        assert rev.mask_path.is_file()
        saved = ws.load_mask(rev)
        assert np.array_equal(saved, win.current_session().mask.astype(bool))
        assert ws.case(case_id).status == "corrected"
        assert rev.dice_vs_model is not None and 0.0 <= rev.dice_vs_model < 1.0
        n_before = len(ws.history(case_id))
    assert not recovery.pending_entries(gui_workspace)  # journal cleared after the save
    # A second stroke makes a *new* revision; the first file is untouched.
    first_bytes = rev.mask_path.read_bytes()
    drag(qtbot, win.pair.views[WLI], [(100, 100), (120, 110)])
    qtbot.waitUntil(lambda: not win.current_session().dirty, timeout=5000)
    with Workspace.open(gui_workspace) as ws:
        assert len(ws.history(case_id)) == n_before + 1
    assert rev.mask_path.read_bytes() == first_bytes


def test_case_switch_saves_and_accept_moves_on_and_sets_status(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    from training.store import Workspace

    win = make_window(qtbot, tmp_path, FakePredictor())
    assert win.open_workspace(gui_workspace)
    wait_for_prediction(qtbot, win)
    first = win.current_case_id
    # Accept the model's prediction unchanged: a model revision, status approved, next case opened.
    qtbot.keyClick(win, Qt.Key.Key_A)
    assert win.current_case_id != first
    second = win.current_case_id
    wait_for_prediction(qtbot, win, second)
    win.pair.actual_size()
    win.editor.set_tool("brush")
    drag(qtbot, win.pair.views[WLI], [(20, 20), (40, 30)])
    qtbot.keyClick(win, Qt.Key.Key_Return)   # accept the corrected mask
    assert win.current_case_id not in (first, second)
    with Workspace.open(gui_workspace) as ws:
        assert ws.case(first).status == "approved"
        assert ws.latest_revision(first).source == "model"
        assert ws.case(second).status == "approved"
        rev2 = ws.latest_revision(second)
        assert rev2.source == "human" and rev2.dice_vs_model is not None
    row = win.worklist_model.row_of(first)
    assert win.worklist_model.case_at(row).status == "approved"
    # Exclude with a reason.
    third = win.current_case_id
    win.exclude_current("blurred frame")
    with Workspace.open(gui_workspace) as ws:
        c = ws.case(third)
        assert c.status == "excluded" and c.exclude_reason == "blurred frame"


def test_history_restore_makes_a_new_revision(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    from training.store import Workspace

    win = open_case_without_prediction(qtbot, tmp_path, gui_workspace)
    case_id = win.current_case_id
    win.pair.actual_size()
    win.editor.set_tool("brush")
    drag(qtbot, win.pair.views[WLI], [(30, 30), (60, 30)])
    first = win.save_current("test").rev
    first_mask = win.current_session().mask.copy()
    drag(qtbot, win.pair.views[WLI], [(100, 100), (130, 120)])
    win.save_current("test")
    assert win.history_table.rowCount() >= 2
    row = next(r for r in range(win.history_table.rowCount())
               if win.history_table.item(r, 0).data(Qt.ItemDataRole.UserRole) == first)
    win.history_table.selectRow(row)
    win.restore_selected_revision()
    with Workspace.open(gui_workspace) as ws:
        hist = ws.history(case_id)
        assert hist[-1].rev > first + 1
        assert np.array_equal(ws.load_mask(hist[-1]), first_mask.astype(bool))
        assert [r.rev for r in hist] == sorted({r.rev for r in hist})


CHILD = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {root!r})
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from pathlib import Path
    from PySide6.QtWidgets import QApplication
    from tests.viewer_fixtures import FakePredictor, make_window, drag, wait_for_prediction
    import numpy as np

    class Bot:  # the bits of qtbot that make_window/drag use
        def addWidget(self, w): pass
        def waitExposed(self, w): QApplication.processEvents()
        def mousePress(self, w, b, pos): from PySide6.QtTest import QTest; QTest.mousePress(w, b, pos=pos)
        def mouseRelease(self, w, b, pos): from PySide6.QtTest import QTest; QTest.mouseRelease(w, b, pos=pos)
        def waitUntil(self, fn, timeout=5000):
            import time
            end = time.time() + timeout / 1000
            while True:
                QApplication.processEvents()
                try:
                    fn(); return
                except AssertionError:
                    if time.time() > end: raise
                    time.sleep(0.01)

    bot = Bot()
    win = make_window(bot, Path({tmp!r}), FakePredictor(), autosave_ms=60000)
    assert win.open_workspace(Path({ws!r}))
    wait_for_prediction(bot, win)
    win.pair.actual_size()
    win.editor.set_tool("brush")
    drag(bot, win.pair.views["wli"], [(30, 30), (90, 60)])
    np.save({out!r}, win.current_session().mask)
    print("STROKE_DONE " + win.current_case_id, flush=True)
    import time
    while True:
        time.sleep(1)
""")


def test_sigkill_right_after_a_stroke_loses_nothing(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    from training.store import Workspace

    out = tmp_path / "mask.npy"
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(root=str(ROOT), tmp=str(tmp_path / "child"), ws=str(gui_workspace), out=str(out)))
    (tmp_path / "child").mkdir()
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    try:
        line = ""
        while not line.startswith("STROKE_DONE"):
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(proc.stderr.read())
        case_id = line.split()[1]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
    expected = np.load(out).astype(bool)
    entries = recovery.pending_entries(gui_workspace)
    assert [e.case_id for e in entries] == [case_id]
    assert np.array_equal(entries[0].mask, expected)
    # The next start offers the entry and restores it as a new human revision.
    win = make_window(qtbot, tmp_path, FakePredictor())
    assert win.open_workspace(gui_workspace)
    with Workspace.open(gui_workspace) as ws:
        rev = ws.latest_revision(case_id)
        assert rev is not None and rev.source == "human"
        assert np.array_equal(ws.load_mask(rev), expected)
        events = json.dumps([r.note for r in ws.history(case_id)])
        assert "recovered" in events
    assert not recovery.pending_entries(gui_workspace)
