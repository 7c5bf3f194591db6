"""GUI tests of the viewer (issue 5): linked views, crosshair, overlay, worklist, inference worker."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QImage, QPainter, QWheelEvent
from PySide6.QtWidgets import QApplication

from tests.viewer_fixtures import (  # noqa: F401
    FakePredictor,
    gui_workspace,
    make_window,
    pair_folder,
    send_move,
    settle,
    view_pos,
    wait_for_prediction,
)
from viewer import mask_ops
from viewer.pair_view import NBI, WLI
from viewer.worklist import CASE_COL, DICE_COL, WorklistFilter, WorklistModel


def open_ws(qtbot, tmp_path: Path, ws: Path, predictor=None, **kw):
    win = make_window(qtbot, tmp_path, predictor or FakePredictor(), **kw)
    assert win.open_workspace(ws)
    return win


def wheel(view, pos: QPoint, steps: int = 1, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    ev = QWheelEvent(QPointF(pos), QPointF(view.viewport().mapToGlobal(pos)), QPoint(0, 0),
                     QPoint(0, 120 * steps), Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), ev)


def test_zoom_and_pan_are_linked_between_views(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    win = open_ws(qtbot, tmp_path, gui_workspace)
    wv, nv = win.pair.views[WLI], win.pair.views[NBI]
    before = wv.transform().m11()
    anchor = view_pos(wv, (60.0, 50.0))
    scene_under_cursor = wv.mapToScene(anchor)
    wheel(wv, anchor, steps=2)
    assert wv.transform().m11() == pytest.approx(before * 1.25 ** 2, rel=1e-6)
    assert nv.transform().m11() == pytest.approx(wv.transform().m11())
    # Zoom keeps the point under the cursor in place (within a pixel of the view).
    after = wv.mapToScene(anchor)
    assert abs(after.x() - scene_under_cursor.x()) * wv.transform().m11() < 1.5
    # Both views show the same scene centre.
    cw = wv.mapToScene(wv.viewport().rect().center())
    cn = nv.mapToScene(nv.viewport().rect().center())
    assert abs(cw.x() - cn.x()) < 1.0 and abs(cw.y() - cn.y()) < 1.0
    # Pan with a right-button drag on the NBI view moves the WLI view the same way.
    start = nv.viewport().rect().center()
    qtbot.mousePress(nv.viewport(), Qt.MouseButton.RightButton, pos=start)
    send_move(nv, start + QPoint(-40, -30), Qt.MouseButton.RightButton)
    qtbot.mouseRelease(nv.viewport(), Qt.MouseButton.RightButton, pos=start + QPoint(-40, -30))
    cw2 = wv.mapToScene(wv.viewport().rect().center())
    cn2 = nv.mapToScene(nv.viewport().rect().center())
    assert (cw2 - cw).manhattanLength() > 5
    assert abs(cw2.x() - cn2.x()) < 1.0 and abs(cw2.y() - cn2.y()) < 1.0
    # Fit and 1:1.
    win.pair.actual_size()
    assert wv.transform().m11() == 1.0 and nv.transform().m11() == 1.0


def test_crosshair_lands_at_the_homography_mapped_point(qtbot, tmp_path, gui_workspace, pair_folder) -> None:  # noqa: F811
    win = open_ws(qtbot, tmp_path, gui_workspace)
    case = win.ws.case(win.current_case_id)
    assert case.nbi_path is not None
    hom = np.asarray(case.homography)
    assert not np.allclose(hom, np.eye(3), atol=1e-3), "fixture pair should need a real registration"
    wv = win.pair.views[WLI]
    target = (101.25, 63.5)
    send_move(wv, view_pos(wv, target), Qt.MouseButton.NoButton)
    pos = win.pair.crosshair_position(NBI)
    assert pos is not None and win.pair.crosshair_position(WLI) is None
    scene = wv.mapToScene(view_pos(wv, target))
    assert abs(pos.x() - scene.x()) < 1.0 and abs(pos.y() - scene.y()) < 1.0
    # The NBI pixel under the crosshair is the inverse homography of the WLI point.
    nbi_px = win.pair.nbi_pixel_at(pos)
    expect = np.linalg.inv(hom) @ np.array([pos.x(), pos.y(), 1.0])
    expect = expect[:2] / expect[2]
    assert abs(nbi_px.x() - expect[0]) < 1e-3 and abs(nbi_px.y() - expect[1]) < 1e-3
    # And the registration is close to the truth used to make the fixture (within 2 px).
    name = win.current_case_id
    truth = next(c for c in pair_folder[1] if name.startswith(c.name))
    true_px = np.linalg.inv(truth.h_true) @ np.array([pos.x(), pos.y(), 1.0])
    assert np.hypot(*(true_px[:2] / true_px[2] - expect)) < 2.0


def render_scene(view, w: int, h: int) -> np.ndarray:
    img = QImage(w, h, QImage.Format.Format_ARGB32)
    img.fill(0)
    p = QPainter(img)
    view.scene().render(p, QRectF(0, 0, w, h), QRectF(0, 0, w, h))
    p.end()
    import qimage2ndarray

    return qimage2ndarray.rgb_view(img).copy()


def test_overlay_pixels_are_coloured_exactly_where_the_mask_is_on_both_views(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    win = open_ws(qtbot, tmp_path, gui_workspace)
    wait_for_prediction(qtbot, win)
    s = win.current_session()
    assert s.mask.any()
    win.overlay_mode.setCurrentIndex(win.overlay_mode.findData(mask_ops.FILL))
    win.opacity_slider.setValue(100)
    h, w = s.mask.shape
    # Hide the images so only the overlay shows: pure overlay colour where the mask is, black elsewhere.
    for item in win.pair.image_items.values():
        item.setVisible(False)
    colour = np.array(mask_ops.OverlayStyle().color)
    for role in (WLI, NBI):
        rgb = render_scene(win.pair.views[role], w, h)
        coloured = (rgb == colour).all(axis=2)
        black = (rgb == 0).all(axis=2)
        assert np.array_equal(coloured, s.mask.astype(bool)), role
        assert np.array_equal(black, ~s.mask.astype(bool)), role
    # Toggling the overlay off clears it on both views.
    win.overlay_visible.setChecked(False)
    for role in (WLI, NBI):
        assert not render_scene(win.pair.views[role], w, h).any()


@dataclass(frozen=True)
class Row:
    id: str
    patient_id: str | None
    status: str
    dice_vs_model: float | None
    updated_at: str
    exclude_reason: str | None = None


def test_worklist_sort_filter_and_search(qtbot) -> None:
    rows = [Row("c-003", "P2", "approved", 0.91, "2026-01-03"), Row("c-001", "P1", "new", None, "2026-01-01"),
            Row("c-002", "P1", "corrected", 0.55, "2026-01-02"), Row("x-100", "P9", "excluded", None, "2026-01-04")]
    model = WorklistModel(rows)
    proxy = WorklistFilter()
    proxy.setSourceModel(model)
    proxy.sort(CASE_COL, Qt.SortOrder.AscendingOrder)
    ids = [proxy.index(r, 0).data() for r in range(proxy.rowCount())]
    assert ids == ["c-001", "c-002", "c-003", "x-100"]
    proxy.sort(DICE_COL, Qt.SortOrder.DescendingOrder)
    assert proxy.index(0, 0).data() == "c-003" and proxy.index(1, 0).data() == "c-002"
    proxy.set_statuses({"new", "corrected"})
    assert sorted(proxy.index(r, 0).data() for r in range(proxy.rowCount())) == ["c-001", "c-002"]
    proxy.set_statuses(set())
    proxy.set_text("p9")
    assert [proxy.index(r, 0).data() for r in range(proxy.rowCount())] == ["x-100"]
    proxy.set_text("")
    assert proxy.rowCount() == 4
    # A changed row updates in place (no reset) and re-sorts.
    model.update_case(Row("c-001", "P1", "corrected", 0.99, "2026-01-05"))
    assert proxy.index(0, 0).data() == "c-001"


def test_worklist_of_ten_thousand_cases_needs_no_disk_reads(qtbot) -> None:
    rows = [Row(f"case-{i:05d}", f"P{i % 97}", "new", None, "2026-01-01") for i in range(10000)]
    model = WorklistModel(rows)
    proxy = WorklistFilter()
    proxy.setSourceModel(model)
    proxy.set_text("case-0999")
    assert proxy.rowCount() == 10   # case-09990 .. case-09999


def test_keyboard_next_previous_and_search_in_window(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    win = open_ws(qtbot, tmp_path, gui_workspace)
    first = win.current_case_id
    qtbot.keyClick(win, Qt.Key.Key_PageDown)
    second = win.current_case_id
    assert second != first
    qtbot.keyClick(win, Qt.Key.Key_PageUp)
    assert win.current_case_id == first
    qtbot.keyClicks(win.search_edit, "gamma")
    assert win.worklist_proxy.rowCount() == 1


def test_a_superseded_prediction_never_paints(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    gate = threading.Event()
    pred = FakePredictor(gate=gate)
    win = make_window(qtbot, tmp_path, pred)
    shown: list[str] = []
    win.predictionShown.connect(shown.append)
    assert win.open_workspace(gui_workspace)
    first = win.current_case_id
    qtbot.waitUntil(lambda: len(pred.calls) == 1)          # the first prediction is running (blocked)
    win.next_case()
    second = win.current_case_id
    assert second != first
    gate.set()
    wait_for_prediction(qtbot, win, second)
    settle(0.2)
    assert shown == [second]
    assert win.sessions[first].prob is None and not win.sessions[first].mask.any()
    assert win.sessions[second].mask.any()


def test_a_failing_prediction_shows_an_error_and_the_ui_stays_usable(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    win = open_ws(qtbot, tmp_path, gui_workspace, predictor=FakePredictor(fail=True))
    qtbot.waitUntil(lambda: win.pair.banner.isVisible())
    assert "simulated model failure" in win.pair.banner.text()
    first = win.current_case_id
    win.next_case()
    assert win.current_case_id != first
    # Drawing still works without a prediction.
    win.editor.set_tool("brush")
    from tests.viewer_fixtures import drag

    drag(qtbot, win.pair.views[WLI], [(50, 50), (70, 60)])
    assert win.current_session().mask.any()


def test_status_bar_shows_cpu_device_with_the_real_predictor(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    from tests.viewer_fixtures import register_random_model

    register_random_model(gui_workspace, tmp_path / "models", "adf-test")
    from viewer.app import make_app, settings_at
    from viewer.main_window import MainWindow

    make_app()
    win = MainWindow(settings_at(tmp_path / "s.ini"), device="cpu")
    qtbot.addWidget(win)
    win.show()
    assert win.open_workspace(gui_workspace)
    qtbot.waitUntil(lambda: win.device_label.text().startswith("CPU"), timeout=60000)
    assert "adf-test" in win.model_status_label.text()
    wait_for_prediction(qtbot, win, timeout=60000)


def test_about_box_carries_the_research_disclaimer_and_attributions() -> None:
    from viewer.dialogs import about_text

    text = about_text(None)
    assert "not a medical device" in text and "Kvasir" in text and "Laves" in text
