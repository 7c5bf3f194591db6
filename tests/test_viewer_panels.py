"""GUI tests of the panels and dialogs around the views: pre-annotate all, import, shortcuts,
brush size keys, agreement summary, settings remembered."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from tests.viewer_fixtures import (  # noqa: F401
    FakePredictor,
    drag,
    gui_workspace,
    make_pairs,
    make_window,
    pair_folder,
    wait_for_prediction,
)
from viewer.pair_view import WLI


class SlowPredictor(FakePredictor):
    """Each prediction takes a while, so a batch can be cancelled part-way."""

    def predict(self, wli, nbi=None, homography=None):  # noqa: ANN001, ANN201
        time.sleep(0.3)
        return super().predict(wli, nbi, homography)


def test_preannotate_all_caches_every_case_and_can_be_cancelled(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    from training.store import Workspace

    win = make_window(qtbot, tmp_path, FakePredictor())
    assert win.open_workspace(gui_workspace)
    wait_for_prediction(qtbot, win)
    with qtbot.waitSignal(win.worker.batchFinished, timeout=20000) as blocker:
        win.preannotate_all()
        assert win.batch_progress.isVisible()
    assert blocker.args == [3, False]
    with Workspace.open(gui_workspace) as ws:
        assert all(ws.cached_prediction(c.id, "fake-model-1") is not None for c in ws.cases())
        assert {c.status for c in ws.cases()} == {"predicted"}
        assert all(ws.history(c.id) == [] for c in ws.cases())  # predictions are not revisions
    assert not win.batch_progress.isVisible()


def test_preannotate_cancel_stops_before_the_end(qtbot, tmp_path) -> None:
    from training.store import Workspace

    folder = tmp_path / "many"
    root = tmp_path / "ws"
    cases = make_pairs(folder)
    with Workspace.open(root, create=True) as ws:
        for i in range(8):  # eight distinct WLI-only cases
            img = np.roll(cases[0].wli, i * 7, axis=1)
            import cv2

            cv2.imwrite(str(folder / f"c{i}_wli.png"), img[:, :, ::-1])
            ws.import_pair(folder / f"c{i}_wli.png", register=False)
    win = make_window(qtbot, tmp_path, SlowPredictor())
    assert win.open_workspace(root)
    with qtbot.waitSignal(win.worker.batchFinished, timeout=30000) as blocker:
        win.preannotate_all()
        qtbot.waitUntil(lambda: win.batch_progress.value() >= 1, timeout=10000)
        win.batch_cancel.click()
    done, cancelled = blocker.args
    assert cancelled and done < 8
    qtbot.waitUntil(lambda: not win.batch_progress.isVisible())


def test_import_dialog_imports_in_the_background_and_reports_skips(qtbot, tmp_path, gui_workspace, pair_folder) -> None:  # noqa: F811
    from viewer.dialogs import ImportDialog

    src = tmp_path / "more"
    src.mkdir()
    make_pairs(src / "x")
    (src / "x" / "broken_wli.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (src / "x" / "alpha_wli.png").unlink()  # leave one NBI without its WLI: not a pair, ignored
    dlg = ImportDialog(gui_workspace)
    qtbot.addWidget(dlg)
    dlg.start([src / "x"])
    qtbot.waitUntil(lambda: dlg.summary is not None or "failed" in dlg.report.toPlainText(), timeout=60000)
    assert dlg.summary is not None, dlg.report.toPlainText()
    text = dlg.report.toPlainText()
    assert "broken_wli.png" in text and "Skipped" in text
    # beta and gamma are the same images as in the workspace: duplicates are skipped, not re-imported.
    assert dlg.summary["imported"] == 0 and dlg.summary["cases"] == 3


def test_shortcuts_dialog_lists_the_tool_keys(qtbot) -> None:
    from viewer.dialogs import ShortcutsDialog

    dlg = ShortcutsDialog()
    qtbot.addWidget(dlg)
    cells = {dlg.table.item(r, 1).text(): dlg.table.item(r, 0).text()
             for r in range(dlg.table.rowCount()) if dlg.table.item(r, 1) is not None}
    assert cells["Brush"] == "B" and cells["Eraser"] == "E" and cells["Polygon fill"] == "P"
    assert "Ctrl+Z" in cells["Undo stroke"]


def test_brush_size_keys_and_ctrl_wheel(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    win = make_window(qtbot, tmp_path, FakePredictor())
    assert win.open_workspace(gui_workspace)
    qtbot.keyClick(win, Qt.Key.Key_B)
    assert win.editor.tool == "brush" and win.tool_actions["brush"].isChecked()
    r0 = win.editor.radius
    qtbot.keyClick(win, Qt.Key.Key_BracketRight)
    assert win.editor.radius > r0 and win.radius_spin.value() == win.editor.radius
    r1 = win.editor.radius
    qtbot.keyClick(win, Qt.Key.Key_BracketLeft)
    assert win.editor.radius < r1
    view = win.pair.views[WLI]
    pos = view.viewport().rect().center()
    r2 = win.editor.radius
    scale = view.transform().m11()
    ev = QWheelEvent(QPointF(pos), QPointF(view.viewport().mapToGlobal(pos)), QPoint(0, 0), QPoint(0, 240),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), ev)
    assert win.editor.radius > r2
    assert view.transform().m11() == scale  # Ctrl+wheel resizes the brush, it does not zoom
    # The round cursor shows the true size in image pixels.
    cursor = win.pair.brush_cursors[WLI]
    assert cursor.isVisible() and abs(cursor.rect().width() - 2 * win.editor.radius) < 1e-6


def test_agreement_summary_lists_worst_cases(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    from viewer.dialogs import AgreementDialog

    win = make_window(qtbot, tmp_path, FakePredictor(), autosave_ms=60000)
    assert win.open_workspace(gui_workspace)
    wait_for_prediction(qtbot, win)
    win.pair.actual_size()
    win.editor.set_tool("eraser")
    win.editor.set_radius(30)
    drag(qtbot, win.pair.views[WLI], [(100, 80), (140, 100)])
    rev = win.save_current("test")
    assert rev is not None and rev.dice_vs_model is not None and rev.dice_vs_model < 1.0
    dlg = AgreementDialog(win.ws.cases())
    qtbot.addWidget(dlg)
    assert dlg.table.rowCount() == 1 and dlg.table.item(0, 0).text() == rev.case_id
    assert abs(dlg.mean_dice - rev.dice_vs_model) < 1e-9
    assert f"{rev.dice_vs_model:.3f}" in win.worklist_model.data(
        win.worklist_model.index(win.worklist_model.row_of(rev.case_id), 3))


def test_window_state_and_last_workspace_are_remembered(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    from viewer.app import choose_workspace

    win = make_window(qtbot, tmp_path, FakePredictor())
    assert win.open_workspace(gui_workspace)
    win.set_layout_mode("swapped")
    win.overlay_mode.setCurrentIndex(win.overlay_mode.findData("fill"))
    win.close()
    win2 = make_window(qtbot, tmp_path, FakePredictor())
    assert win2.pair.layout_mode == "swapped"
    assert win2.overlay_mode.currentData() == "fill"
    assert choose_workspace(None, win2.settings) == Path(gui_workspace)


def test_layouts_and_nbi_labels(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    win = make_window(qtbot, tmp_path, FakePredictor())
    assert win.open_workspace(gui_workspace)
    wli_box, nbi_box = win.pair.containers["wli"], win.pair.containers["nbi"]
    qtbot.keyClick(win, Qt.Key.Key_F6)     # WLI only
    assert wli_box.isVisible() and not nbi_box.isVisible()
    qtbot.keyClick(win, Qt.Key.Key_F7)     # NBI only
    assert not wli_box.isVisible() and nbi_box.isVisible()
    qtbot.keyClick(win, Qt.Key.Key_F8)     # swapped: NBI on the left
    assert win.pair.splitter.indexOf(nbi_box) == 0 and wli_box.isVisible() and nbi_box.isVisible()
    qtbot.keyClick(win, Qt.Key.Key_F5)
    assert win.pair.splitter.indexOf(wli_box) == 0
    win.open_case("alpha")
    assert "SYNTHETIC" in win.pair.titles["nbi"].text()
    win.open_case("gamma")
    assert "No NBI" in win.pair.titles["nbi"].text()
    # no NBI image: a flat frame of the WLI's size in its place (tests/test_editing.py looks at it)
    from viewer.pair_view import NO_NBI_FILL

    blank = win.pair.image_items["nbi"].pixmap().toImage()
    assert (blank.width(), blank.height()) == (win.image_rgb.shape[1], win.image_rgb.shape[0])
    assert blank.pixelColor(0, 0) == NO_NBI_FILL and win.pair.image_items["nbi"].transform().isIdentity()


def test_the_window_module_does_not_import_torch() -> None:
    """torch loads in the inference thread, after the window is shown."""
    import subprocess
    import sys

    code = ("import sys; sys.path.insert(0, '.'); import viewer.app, viewer.main_window, viewer.dialogs; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_cached_prediction_is_shown_before_the_model_has_loaded(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    """The first overlay of a pre-annotated case needs no torch: the cache is read first."""
    import threading

    from tests.viewer_fixtures import register_random_model
    from training.store import Workspace

    register_random_model(gui_workspace, tmp_path / "m", "adf-cached")
    with Workspace.open(gui_workspace) as ws:
        cached = {}
        for c in ws.cases():
            prob = np.zeros((c.height, c.width), np.uint8)
            prob[10:40, 20:60] = 240
            ws.save_prediction(c.id, "adf-cached", prob)
            cached[c.id] = prob
    release = threading.Event()
    loads: list[object] = []

    def slow_factory(path, device):  # noqa: ANN001, ANN202
        loads.append(path)
        release.wait(20)
        return FakePredictor("adf-cached")

    from viewer.app import make_app, settings_at
    from viewer.main_window import MainWindow

    make_app()
    win = MainWindow(settings_at(tmp_path / "s.ini"), device="cpu", predictor_factory=slow_factory)
    qtbot.addWidget(win)
    win.show()
    assert win.open_workspace(gui_workspace)
    wait_for_prediction(qtbot, win)
    s = win.current_session()
    assert np.array_equal(s.prob, cached[s.case_id])
    assert s.mask[20, 30] and not s.mask[5, 5]
    release.set()
    qtbot.waitUntil(lambda: win.device_label.text().startswith("CPU"), timeout=20000)
