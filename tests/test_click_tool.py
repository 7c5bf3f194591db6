"""Issue 16, viewer side: the click tool (C) drives the real window with mouse clicks on the views.

A tiny model is trained with clicks here (as in tests/test_clicks.py) and made the workspace's
active model; the window loads it with the real predictor. Every mask the window shows after a
click is compared with ``Predictor.predict_clicks`` run by the test on the same inputs, so the
tests check the clicks' positions and signs, the mask the network was given and the NBI/homography
the worker used, and they read the saved revisions and the audit log back from the workspace.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from model.interactive import Click
from tests.viewer_fixtures import (  # noqa: F401
    FakePredictor,
    drag,
    gui_workspace,
    make_window,
    pair_folder,
    register_random_model,
    view_pos,
    wait_for_prediction,
)
from viewer.clicks import card_is_interactive, click_at, click_provenance, click_summary
from viewer.pair_view import NBI, WLI
from viewer.tools import CLICK, NAVIGATE, ClickCommand, top_command

FAST = ["--input-size", "64", "--batch-size", "3", "--no-tqdm", "--threads", "1", "--workers", "0"]


# ------------------------------------------------------------------ pure rules, store
def test_click_rules_signs_summary_and_card() -> None:
    assert click_at(10.7, 3.2, (20, 10), right_button=False, shift=False) == Click(10.0, 3.0, True)
    assert not click_at(1, 1, (20, 10), right_button=True, shift=False).positive
    assert not click_at(1, 1, (20, 10), right_button=False, shift=True).positive
    assert click_at(20.0, 1, (20, 10), False, False) is None and click_at(-0.1, 1, (20, 10), False, False) is None
    clicks = [Click(1, 2, True), Click(3, 4, True), Click(5, 6, False)]
    assert click_summary(clicks) == "3 clicks (2 +, 1 \u2212)"
    assert click_summary(clicks[:1]) == "1 click (1 +, 0 \u2212)"
    prov = click_provenance(clicks, "m1", edited_after=True)
    assert prov["n_clicks"] == 3 and prov["positive"] == 2 and prov["negative"] == 1
    assert prov["clicks"][2] == {"x": 5.0, "y": 6.0, "positive": False} and prov["summary"].endswith("then edited")
    assert click_provenance([], "m1") is None
    assert card_is_interactive({"config": {"click_chans": 3}, "interactive": {"trained_share": 1.0}})
    assert not card_is_interactive({"config": {"click_chans": 3}})  # the channels exist but were never trained
    assert not card_is_interactive({"config": {}, "interactive": {"trained_share": 1.0}})


def test_add_revision_records_provenance_in_the_audit_log(filled_workspace) -> None:
    ws = filled_workspace
    cid = ws.cases()[0].id
    m = np.zeros((ws.case(cid).height, ws.case(cid).width), bool)
    m[5:20, 5:20] = True
    prov = click_provenance([Click(7, 8, True), Click(30, 2, False)], "clicky")
    rev = ws.add_revision(cid, m, "human", "dr.a", provenance=prov)
    assert rev.note == "2 clicks (1 +, 1 \u2212)"  # no note given: the provenance's summary
    ev = ws.events(cid, kind="revision")[-1]["detail"]
    assert ev["rev"] == rev.rev and ev["provenance"] == prov
    rev2 = ws.add_revision(cid, m, "human", "dr.a", note="manual", provenance=prov)
    assert rev2.note == "manual"
    rev3 = ws.add_revision(cid, m, "human", "dr.a")
    assert rev3.note is None and "provenance" not in ws.events(cid, kind="revision")[-1]["detail"]


# ------------------------------------------------------------------ the window with an interactive model
@pytest.fixture(scope="module")
def click_model(tmp_path_factory) -> Path:
    """A tiny model trained for a few steps with clicks on every sample (as tests/test_clicks.py)."""
    from tests.conftest import make_fixture_pairs
    from training.store import Workspace
    from training.train import main

    tmp = tmp_path_factory.mktemp("clicktool")
    pairs = tmp / "pairs"
    names = make_fixture_pairs(pairs, 3)
    with Workspace.open(tmp / "ws", create=True) as ws:
        for n in names:
            wli = next(pairs.glob(f"{n}_wli.*"))
            ws.import_pair(wli, pairs / f"{n}_nbi.png", pairs / f"{n}_mask.png", nbi_synthetic=True)
    rc = main(["--data", str(tmp / "ws"), "--epochs", "4", "--out", str(tmp / "run"), "--model-id", "clicky",
               "--val-fraction", "0", "--interactive", "1.0", "--lr", "3e-3", "--seed", "2", *FAST])
    assert rc == 0
    return tmp / "run" / "clicky.json"


class GatedPredictor:
    """The real predictor, whose first click prediction waits for ``gate`` (to test superseding)."""

    def __init__(self, inner, gate: threading.Event | None = None) -> None:
        self.inner = inner
        self.gate = gate
        self.click_calls: list[int] = []  # how many clicks each predict_clicks call got

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def predict_clicks(self, wli, nbi, homography, clicks, prev_mask=None):
        self.click_calls.append(len(clicks))
        if self.gate is not None and len(self.click_calls) == 1:
            assert self.gate.wait(30), "test gate never opened"
        return self.inner.predict_clicks(wli, nbi, homography, clicks, prev_mask)


def click_window(qtbot, tmp_path: Path, workspace: Path, model: Path, gate: threading.Event | None = None,
                 autosave_ms: int = 60000):
    """The window on ``workspace`` with the click model active, its first case predicted."""
    from model.predictor import Predictor
    from training.store import Workspace

    with Workspace.open(workspace) as ws:
        ws.register_model(model, activate=True)
    predictor = GatedPredictor(Predictor.load(model, device="cpu"), gate)
    win = make_window(qtbot, tmp_path, predictor, autosave_ms=autosave_ms)
    assert win.open_workspace(workspace)
    wait_for_prediction(qtbot, win)
    qtbot.waitUntil(lambda: win.click_model is not None and win.click_model[1], timeout=10000)
    win.pair.actual_size()
    return win, predictor


def case_inputs(win, case_id: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    case = win.ws.case(case_id)
    nbi = win.ws.load_nbi(case_id)
    return win.ws.load_wli(case_id), nbi, (case.homography if nbi is not None else None)


def press(qtbot, view, scene_pt: tuple[float, float], button=Qt.MouseButton.LeftButton,
          modifier=Qt.KeyboardModifier.NoModifier) -> QPoint:
    """One real mouse click on a view's viewport at a scene point; returns the view position."""
    pos = view_pos(view, scene_pt)
    qtbot.mouseClick(view.viewport(), button, modifier, pos)
    return pos


def scene_at(view, pos: QPoint) -> QPointF:
    inv, _ = view.viewportTransform().inverted()
    return inv.map(QPointF(pos))


def pixel_at(view, pos: QPoint) -> tuple[float, float]:
    """The WLI pixel a press at view position ``pos`` falls in (what the click must record)."""
    sp = scene_at(view, pos)
    return float(np.floor(sp.x())), float(np.floor(sp.y()))


def wait_click_done(qtbot, win) -> None:
    """Until the newest click's prediction is on the mask."""
    def done() -> None:
        s = win.current_session()
        top = top_command(s)
        assert not win.editor.click_pending(s) and isinstance(top, ClickCommand) and top.predicted

    qtbot.waitUntil(done, timeout=20000)


def saved_click_event(workspace: Path, case_id: str) -> tuple[dict, np.ndarray]:
    """The newest revision's audit event detail and its mask file, read back from the workspace."""
    from training.store import Workspace

    with Workspace.open(workspace) as ws:
        rev = ws.latest_revision(case_id)
        ev = ws.events(case_id, kind="revision")[-1]["detail"]
        assert ev["rev"] == rev.rev and rev.source == "human"
        return ev, ws.load_mask(rev)


def test_a_click_redraws_the_mask_with_the_interactive_model_and_the_revision_records_it(
        qtbot, tmp_path, gui_workspace, click_model) -> None:  # noqa: F811
    win, predictor = click_window(qtbot, tmp_path, gui_workspace, click_model)
    case_id = win.current_case_id
    s = win.current_session()
    before = s.mask.astype(bool).copy()
    qtbot.keyClick(win, Qt.Key.Key_C)  # the shortcut from the actions table
    assert win.editor.tool == CLICK
    wv = win.pair.views[WLI]
    pos = press(qtbot, wv, (60.4, 50.7))
    assert s.clicks == [Click(*pixel_at(wv, pos), True)]
    wait_click_done(qtbot, win)
    wli, nbi, hom = case_inputs(win, case_id)
    expected = predictor.inner.predict_clicks(wli, nbi, hom, s.clicks, before).mask
    assert np.array_equal(s.mask.astype(bool), expected)
    assert not np.array_equal(expected, before), "the click must change the mask"
    # a green (+) marker on both views, at the clicked pixel
    for role in (WLI, NBI):
        (marker,) = win.pair.click_markers[role]
        assert marker.positive and marker.pos() == QPointF(s.clicks[0].x + 0.5, s.clicks[0].y + 0.5)
    qtbot.keyClick(win, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert not s.dirty
    ev, saved = saved_click_event(gui_workspace, case_id)
    assert np.array_equal(saved, expected)
    prov = ev["provenance"]
    assert prov["tool"] == "clicks" and prov["model_id"] == "clicky" and prov["n_clicks"] == 1
    assert prov["clicks"] == [s.clicks[0].to_dict()] and prov["positive"] == 1 and prov["negative"] == 0
    from training.store import Workspace

    with Workspace.open(gui_workspace) as ws:
        assert ws.latest_revision(case_id).note == "manual · 1 click (1 +, 0 \u2212)"


def test_right_click_and_shift_click_are_negative(qtbot, tmp_path, gui_workspace, click_model) -> None:  # noqa: F811
    win, predictor = click_window(qtbot, tmp_path, gui_workspace, click_model)
    case_id = win.current_case_id
    s = win.current_session()
    masks = [s.mask.astype(bool).copy()]
    win.editor.set_tool(CLICK)
    wv = win.pair.views[WLI]
    p1 = press(qtbot, wv, (40.5, 40.5), Qt.MouseButton.RightButton)
    wait_click_done(qtbot, win)
    masks.append(s.mask.astype(bool).copy())
    p2 = press(qtbot, wv, (150.5, 120.5), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier)
    wait_click_done(qtbot, win)
    assert [c.positive for c in s.clicks] == [False, False]
    assert [(c.x, c.y) for c in s.clicks] == [pixel_at(wv, p1), pixel_at(wv, p2)]
    wli, nbi, hom = case_inputs(win, case_id)
    # each click is predicted from the mask the one before it left (the iterative protocol)
    assert np.array_equal(masks[1], predictor.inner.predict_clicks(wli, nbi, hom, s.clicks[:1], masks[0]).mask)
    assert np.array_equal(s.mask.astype(bool), predictor.inner.predict_clicks(wli, nbi, hom, s.clicks, masks[1]).mask)
    assert [m.positive for m in win.pair.click_markers[NBI]] == [False, False]  # red (−) markers
    assert s.undo.count() == 2  # one undo command per click; the right press did not pan
    win.save_current("manual")
    ev, saved = saved_click_event(gui_workspace, case_id)
    assert np.array_equal(saved, s.mask.astype(bool))
    assert ev["provenance"]["negative"] == 2 and ev["provenance"]["positive"] == 0
    assert [c["positive"] for c in ev["provenance"]["clicks"]] == [False, False]


def test_a_click_on_the_nbi_view_lands_at_the_homography_mapped_wli_pixel(
        qtbot, tmp_path, gui_workspace, click_model) -> None:  # noqa: F811
    win, predictor = click_window(qtbot, tmp_path, gui_workspace, click_model)
    case_id = win.current_case_id
    s = win.current_session()
    before = s.mask.astype(bool).copy()
    hom = np.asarray(win.ws.case(case_id).homography)
    win.editor.set_tool(CLICK)
    nv = win.pair.views[NBI]
    nbi_px = (90.5, 70.5)  # the centre of raw NBI pixel (90, 70)
    scene = win.pair.image_items[NBI].mapToScene(QPointF(*nbi_px))
    pos = press(qtbot, nv, (scene.x(), scene.y()))
    mapped = hom @ np.array([nbi_px[0], nbi_px[1], 1.0])
    mapped = mapped[:2] / mapped[2]
    (click,) = s.clicks
    assert (click.x, click.y) == pixel_at(nv, pos)
    assert abs(click.x + 0.5 - mapped[0]) <= 1.0 and abs(click.y + 0.5 - mapped[1]) <= 1.0
    assert max(abs(click.x - 90), abs(click.y - 70)) >= 2, "the fixture's homography must move the point"
    wait_click_done(qtbot, win)
    wli, nbi, h = case_inputs(win, case_id)
    assert np.array_equal(s.mask.astype(bool), predictor.inner.predict_clicks(wli, nbi, h, [click], before).mask)
    # the marker sits on the clicked point in both views
    for role in (WLI, NBI):
        assert win.pair.click_markers[role][0].pos() == QPointF(click.x + 0.5, click.y + 0.5)


def test_ctrl_z_removes_the_last_click_and_restores_the_mask_before_it(
        qtbot, tmp_path, gui_workspace, click_model) -> None:  # noqa: F811
    win, _ = click_window(qtbot, tmp_path, gui_workspace, click_model)
    case_id = win.current_case_id
    s = win.current_session()
    states = [s.mask.copy()]
    win.editor.set_tool(CLICK)
    wv = win.pair.views[WLI]
    for pt, button in (((60.5, 60.5), Qt.MouseButton.LeftButton), ((170.5, 30.5), Qt.MouseButton.RightButton)):
        press(qtbot, wv, pt, button)
        wait_click_done(qtbot, win)
        states.append(s.mask.copy())
    first = s.clicks[0]
    assert len(s.clicks) == 2 and not np.array_equal(states[1], states[2])
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert s.clicks == [first] and np.array_equal(s.mask, states[1])
    assert len(win.pair.click_markers[WLI]) == 1 and len(win.pair.click_markers[NBI]) == 1
    assert not win.editor.click_pending(s)  # its result is known: no new prediction needed
    win.save_current("manual")
    ev, saved = saved_click_event(gui_workspace, case_id)
    assert ev["provenance"]["clicks"] == [first.to_dict()] and np.array_equal(saved, states[1].astype(bool))
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert s.clicks == [] and np.array_equal(s.mask, states[0]) and not win.pair.click_markers[WLI]
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert s.clicks == [first] and np.array_equal(s.mask, states[1])


def test_a_brush_stroke_after_clicks_edits_the_click_result(qtbot, tmp_path, gui_workspace, click_model) -> None:  # noqa: F811
    win, _ = click_window(qtbot, tmp_path, gui_workspace, click_model)
    case_id = win.current_case_id
    s = win.current_session()
    win.editor.set_tool(CLICK)
    wv = win.pair.views[WLI]
    press(qtbot, wv, (100.5, 90.5))
    wait_click_done(qtbot, win)
    clicked = s.mask.copy()
    win.editor.set_tool("eraser")
    win.editor.set_radius(8)
    drag(qtbot, wv, [(20, 20), (120, 60)])
    assert not np.array_equal(s.mask, clicked)
    assert (s.mask <= clicked).all(), "the eraser only removed pixels of the click result"
    edited = s.mask.copy()
    assert s.undo.count() == 2 and s.clicks and not win.editor.click_pending(s)
    win.save_current("manual")
    ev, saved = saved_click_event(gui_workspace, case_id)
    assert np.array_equal(saved, edited.astype(bool))
    assert ev["provenance"]["n_clicks"] == 1 and ev["provenance"]["summary"].endswith("then edited")
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the stroke, not the click
    assert np.array_equal(s.mask, clicked) and len(s.clicks) == 1 and not win.editor.click_pending(s)


def test_clicks_work_on_a_case_without_nbi(qtbot, tmp_path, gui_workspace, click_model) -> None:  # noqa: F811
    win, predictor = click_window(qtbot, tmp_path, gui_workspace, click_model)
    gamma = next(c.id for c in win.ws.cases() if c.nbi_path is None)
    win.open_case(gamma)
    wait_for_prediction(qtbot, win, gamma)
    s = win.current_session()
    before = s.mask.astype(bool).copy()
    win.editor.set_tool(CLICK)
    pos = press(qtbot, win.pair.views[NBI], (95.5, 75.5))  # the empty NBI side still takes the click
    wait_click_done(qtbot, win)
    wli = win.ws.load_wli(gamma)
    assert s.clicks == [Click(*pixel_at(win.pair.views[NBI], pos), True)]
    assert np.array_equal(s.mask.astype(bool), predictor.inner.predict_clicks(wli, None, None, s.clicks, before).mask)
    win.save_current("manual")
    ev, saved = saved_click_event(gui_workspace, gamma)
    assert np.array_equal(saved, s.mask.astype(bool)) and ev["provenance"]["n_clicks"] == 1


def test_only_the_newest_click_state_is_predicted_when_clicks_come_fast(
        qtbot, tmp_path, gui_workspace, click_model) -> None:  # noqa: F811
    gate = threading.Event()
    win, predictor = click_window(qtbot, tmp_path, gui_workspace, click_model, gate=gate)
    case_id = win.current_case_id
    s = win.current_session()
    before = s.mask.astype(bool).copy()
    win.editor.set_tool(CLICK)
    wv = win.pair.views[WLI]
    press(qtbot, wv, (50.5, 50.5))
    qtbot.waitUntil(lambda: predictor.click_calls == [1], timeout=10000)  # the worker holds click 1
    press(qtbot, wv, (120.5, 80.5))
    press(qtbot, wv, (30.5, 140.5), Qt.MouseButton.RightButton)
    assert len(s.clicks) == 3 and np.array_equal(s.mask.astype(bool), before)
    gate.set()
    wait_click_done(qtbot, win)
    assert predictor.click_calls == [1, 3], "click 2's state was superseded before it ran"
    wli, nbi, hom = case_inputs(win, case_id)
    assert np.array_equal(s.mask.astype(bool), predictor.inner.predict_clicks(wli, nbi, hom, s.clicks, before).mask)
    # undo the newest click: click 2's state was never predicted, so it is asked for now
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(s.clicks) == 2 and np.array_equal(s.mask.astype(bool), before)
    wait_click_done(qtbot, win)
    assert predictor.click_calls == [1, 3, 2]
    assert np.array_equal(s.mask.astype(bool), predictor.inner.predict_clicks(wli, nbi, hom, s.clicks, before).mask)


def test_a_click_still_predicting_when_the_case_changes_is_saved_with_its_result(
        qtbot, tmp_path, gui_workspace, click_model) -> None:  # noqa: F811
    gate = threading.Event()
    win, predictor = click_window(qtbot, tmp_path, gui_workspace, click_model, gate=gate)
    case_id = win.current_case_id
    s = win.current_session()
    before = s.mask.astype(bool).copy()
    win.editor.set_tool(CLICK)
    press(qtbot, win.pair.views[WLI], (80.5, 60.5))
    qtbot.waitUntil(lambda: predictor.click_calls == [1], timeout=10000)
    win.accept_current()  # refused while the click is on its way
    assert win.current_case_id == case_id and "still being predicted" in win.statusBar().currentMessage()
    win.next_case()
    assert win.current_case_id != case_id
    with qtbot.waitSignal(win.saved, timeout=20000) as blocker:
        gate.set()
    assert blocker.args[0] == case_id
    wli, nbi, hom = case_inputs(win, case_id)
    expected = predictor.inner.predict_clicks(wli, nbi, hom, s.clicks, before).mask
    ev, saved = saved_click_event(gui_workspace, case_id)
    assert np.array_equal(saved, expected) and not s.dirty
    assert ev["provenance"]["n_clicks"] == 1 and "pending" not in ev["provenance"]


def test_a_model_without_a_click_mode_disables_the_tool_and_says_why(
        qtbot, tmp_path, gui_workspace, click_model) -> None:  # noqa: F811
    from training.store import Workspace

    register_random_model(gui_workspace, tmp_path / "models", "plain-tiny")  # no click training
    win = make_window(qtbot, tmp_path, None)
    win.predictor_factory = None  # the real predictor loads each active model from its file
    assert win.open_workspace(gui_workspace)
    wait_for_prediction(qtbot, win)
    act = win.tool_actions[CLICK]
    assert not act.isEnabled()
    assert "not trained with clicks" in act.toolTip() and "plain-tiny" in act.toolTip()
    assert "not available" in win.model_label.text()
    assert win.click_label.isVisible() and "not trained with clicks" in win.click_label.text()
    assert "plain-tiny" in win.click_label.toolTip()
    win.statusBar().clearMessage()
    qtbot.keyClick(win, Qt.Key.Key_C)  # the key says why instead of doing nothing
    assert "not trained with clicks" in win.statusBar().currentMessage()
    win.editor.set_tool(CLICK)
    assert win.editor.tool == NAVIGATE
    s = win.current_session()
    before = s.mask.copy()
    win.pair.actual_size()
    press(qtbot, win.pair.views[WLI], (60.5, 60.5), Qt.MouseButton.RightButton)
    assert s.clicks == [] and s.undo.count() == 0 and np.array_equal(s.mask, before)
    # switching to a model that takes clicks enables the tool; back to one that does not leaves it
    with Workspace.open(gui_workspace) as ws:
        clicky = ws.register_model(click_model)
    win.activate_model(clicky)
    assert act.isEnabled() and "left click = tumour" in act.toolTip() and not win.click_label.isVisible()
    win.editor.set_tool(CLICK)
    assert win.editor.tool == CLICK
    win.activate_model("plain-tiny")
    assert not act.isEnabled() and win.editor.tool == NAVIGATE


def test_f1_lists_the_click_tool_shortcut(qtbot, tmp_path) -> None:
    from viewer.dialogs import ShortcutsDialog

    win = make_window(qtbot, tmp_path, FakePredictor())
    dlg = ShortcutsDialog(win)
    qtbot.addWidget(dlg)
    rows = {dlg.table.item(r, 0).text(): dlg.table.item(r, 1).text() for r in range(dlg.table.rowCount())
            if dlg.table.item(r, 0) is not None and dlg.table.item(r, 1) is not None}
    assert "C" in rows and rows["C"].startswith("Click to correct") and "right" in rows["C"]
