"""Review decisions record what the clinician decided (issue 14, items 2 and 8).

Why: A / Enter pressed before the prediction arrived (or after it failed) used to save an empty
"human" revision with status approved, which training then took as a tumour-free example; and no
viewer test noticed if the window stopped passing the NBI image to the model.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt

from tests.viewer_fixtures import (  # noqa: F401
    FakePredictor,
    gui_workspace,
    make_window,
    pair_folder,
    wait_for_prediction,
)
from training.imageio import read_mask
from viewer.actions import TUMOUR_FREE_NOTE

CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


def saved_state(root: Path, case_id: str) -> tuple[str, list]:
    """(status, revisions) of a case as the workspace on disk has them."""
    from training.store import Workspace

    with Workspace.open(root) as ws:
        return ws.case(case_id).status, ws.history(case_id)


def test_accept_while_the_prediction_is_pending_is_refused(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    gate = threading.Event()
    pred = FakePredictor(gate=gate)
    win = make_window(qtbot, tmp_path, pred)
    try:
        assert win.open_workspace(gui_workspace)
        first = win.current_case_id
        qtbot.waitUntil(lambda: len(pred.calls) == 1)   # the prediction is running (held by the gate)
        qtbot.keyClick(win, Qt.Key.Key_A)
        qtbot.keyClick(win, Qt.Key.Key_Return)
        qtbot.mouseClick(win.accept_btn, Qt.MouseButton.LeftButton)
        assert win.current_case_id == first             # did not move on
        assert "Nothing to accept" in win.statusBar().currentMessage()
        assert "not arrived" in win.statusBar().currentMessage()
        status, revs = saved_state(gui_workspace, first)
        assert status != "approved" and revs == []
    finally:
        gate.set()
    # once the prediction is there, A accepts it as the model's revision
    wait_for_prediction(qtbot, win, first)
    qtbot.keyClick(win, Qt.Key.Key_A)
    status, revs = saved_state(gui_workspace, first)
    assert status == "approved" and [r.source for r in revs] == ["model"] and revs[0].area > 0


def test_accept_after_a_failed_prediction_is_refused(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    win = make_window(qtbot, tmp_path, FakePredictor(fail=True))
    failed: list[str] = []
    win.predictionFailed.connect(lambda cid, _msg: failed.append(cid))
    assert win.open_workspace(gui_workspace)
    first = win.current_case_id
    qtbot.waitUntil(lambda: first in failed)
    qtbot.keyClick(win, Qt.Key.Key_A)
    qtbot.keyClick(win, Qt.Key.Key_Enter)
    assert win.current_case_id == first
    message = win.statusBar().currentMessage()
    assert "Nothing to accept" in message and "simulated model failure" in message
    status, revs = saved_state(gui_workspace, first)
    assert status != "approved" and revs == []


def test_approve_as_tumour_free_is_explicit_and_noted(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    from training.store import Workspace

    # after a failed prediction: the clinician decides "no tumour" with its own action
    win = make_window(qtbot, tmp_path, FakePredictor(fail=True))
    failed: list[str] = []
    win.predictionFailed.connect(lambda cid, _msg: failed.append(cid))
    assert win.open_workspace(gui_workspace)
    first = win.current_case_id
    qtbot.waitUntil(lambda: first in failed)
    qtbot.keyClick(win, Qt.Key.Key_A, CTRL_SHIFT)
    assert win.current_case_id != first
    status, revs = saved_state(gui_workspace, first)
    assert status == "approved"
    assert [(r.source, r.area, r.note) for r in revs] == [("human", 0, TUMOUR_FREE_NOTE)]
    assert not read_mask(revs[0].mask_path).any()
    with Workspace.open(gui_workspace) as ws:
        ev = [e for e in ws.events(first, kind="status") if e["detail"]["to"] == "approved"]
        assert ev and ev[-1]["detail"]["reason"] == TUMOUR_FREE_NOTE and ev[-1]["detail"]["author"] == "dr.test"


def test_approve_as_tumour_free_over_a_predicted_outline_keeps_it_in_history(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    win = make_window(qtbot, tmp_path, FakePredictor())
    assert win.open_workspace(gui_workspace)
    first = win.current_case_id
    wait_for_prediction(qtbot, win, first)
    assert win.current_session().mask.any()                     # the model outlined a disc
    qtbot.mouseClick(win.tumour_free_btn, Qt.MouseButton.LeftButton)
    assert win.current_case_id != first
    status, revs = saved_state(gui_workspace, first)
    assert status == "approved" and revs[-1].source == "human" and revs[-1].area == 0
    assert revs[-1].note == TUMOUR_FREE_NOTE and revs[-1].dice_vs_model == 0.0
    # accepting a prediction stays a separate decision with its own note
    second = win.current_case_id
    wait_for_prediction(qtbot, win, second)
    qtbot.keyClick(win, Qt.Key.Key_A)
    status, revs = saved_state(gui_workspace, second)
    assert status == "approved" and [(r.source, r.note) for r in revs] == [("model", "accepted as predicted")]


class RecordingPredictor(FakePredictor):
    """Records the NBI image and homography the window hands to the model."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = []

    def predict(self, wli, nbi=None, homography=None):
        self.inputs.append((wli, nbi, homography))
        return super().predict(wli, nbi, homography)


def test_the_window_gives_the_model_the_registered_nbi_of_each_case(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    """predict(wli, None, None) for a case with NBI would silently drop half of the ADF model's input."""
    from training.store import Workspace

    pred = RecordingPredictor()
    win = make_window(qtbot, tmp_path, pred)
    assert win.open_workspace(gui_workspace)
    with Workspace.open(gui_workspace) as ws:
        cases = {c.id: (c, ws.load_wli(c.id), ws.load_nbi(c.id)) for c in ws.cases()}
    seen = set()
    for _ in range(len(cases)):
        wait_for_prediction(qtbot, win, win.current_case_id)
        seen.add(win.current_case_id)
        win.next_case()
    assert seen == set(cases) and len(pred.inputs) == len(cases)
    with_nbi = 0
    for wli, nbi, hom in pred.inputs:
        case, wli_ref, nbi_ref = next(v for v in cases.values() if v[1].shape == wli.shape and np.array_equal(v[1], wli))
        if nbi_ref is None:
            assert nbi is None and hom is None
            continue
        with_nbi += 1
        assert nbi is not None and np.array_equal(nbi, nbi_ref), f"{case.id}: the NBI image did not reach the model"
        assert hom is not None and np.allclose(hom, case.homography), f"{case.id}: the homography did not reach the model"
        assert not np.allclose(hom, np.eye(3))  # the fixture's NBI is warped: a real registration
    assert with_nbi == 2
