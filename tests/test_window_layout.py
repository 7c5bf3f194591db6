"""The default window shows what a reviewer needs without resizing anything (issue 14, item 7).

Why: at the default size the worklist showed Case and half of Patient (status, Dice and last
edit were off-screen) and the History panel one row. Checked here by geometry, offscreen, on a
first start (no saved window state) with realistic long case and patient ids.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, Qt

from tests.viewer_fixtures import FakePredictor, make_pairs, wait_for_prediction
from training.store import Workspace
from viewer.worklist import CASE_COL, COLUMNS, DICE_COL, EDITED_COL, STATUS_COL, VIDEO_COL

LONG_CASE = "laryngoscopy_2024-03-11_patient{:04d}_seq02_frame00{:04d}"
LONG_PATIENT = "PATIENT-2024-{:05d}-LARYNX"


def long_id_workspace(tmp_path: Path) -> tuple[Path, str]:
    """Three cases with long ids; the last one has seven revisions. Returns (root, that case)."""
    folder = tmp_path / "src"
    cases = make_pairs(folder)
    root = tmp_path / "ws"
    with Workspace.open(root, create=True) as ws:
        for i, c in enumerate(cases):
            nbi = folder / f"{c.name}_nbi.png" if c.nbi is not None else None
            case_id, reason = ws.import_pair(folder / f"{c.name}_wli.png", nbi, patient_id=LONG_PATIENT.format(i),
                                             case_name=LONG_CASE.format(i, 141 + i))
            assert reason is None, reason
        h, w = c.wli.shape[:2]
        for k in range(7):
            mask = np.zeros((h, w), bool)
            mask[10:20 + k, 10:30] = True
            ws.add_revision(case_id, mask, source="human", author="dr.layout")
    return root, case_id


def first_start_window(qtbot, tmp_path: Path):
    """The window as a first start creates it: default size, no saved geometry or dock state."""
    from viewer.app import make_app, settings_at
    from viewer.main_window import MainWindow

    make_app()
    pred = FakePredictor()
    win = MainWindow(settings_at(tmp_path / "fresh.ini"), device="cpu", predictor_factory=lambda _p, _d: pred)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


def test_default_window_shows_every_worklist_column_and_five_history_rows(qtbot, tmp_path: Path) -> None:
    root, busy_case = long_id_workspace(tmp_path)
    win = first_start_window(qtbot, tmp_path)
    assert (win.width(), win.height()) == (1600, 1000)
    assert win.open_workspace(root)
    win.open_case(busy_case)
    wait_for_prediction(qtbot, win, busy_case)

    # every worklist column lies inside the visible part of the table, none squeezed to nothing
    table, header = win.worklist, win.worklist.horizontalHeader()
    assert win.worklist_dock.isVisible() and not win.worklist_dock.isFloating()
    viewport = table.viewport().width()
    # no case came from a video here: its time column is hidden rather than crowding the others
    assert table.isColumnHidden(VIDEO_COL)
    for col in range(len(COLUMNS)):
        if col == VIDEO_COL:
            continue
        assert not table.isColumnHidden(col)
        left, width = header.sectionViewportPosition(col), header.sectionSize(col)
        assert left >= 0 and left + width <= viewport, f"column {COLUMNS[col]!r} is cut off ({left}+{width} > {viewport})"
        assert width >= 40, COLUMNS[col]
    assert header.sectionSize(CASE_COL) >= 100
    # status, Dice and last edit are shown in full; long case ids are elided in the middle
    fm = table.fontMetrics()
    model = table.model()
    for row in range(model.rowCount()):
        for col in (STATUS_COL, DICE_COL, EDITED_COL):
            text = str(model.index(row, col).data() or "")
            assert fm.horizontalAdvance(text) <= header.sectionSize(col) - 4, (COLUMNS[col], text)
        case_text = str(model.index(row, CASE_COL).data())
        assert len(case_text) > 40 and model.index(row, CASE_COL).data(Qt.ItemDataRole.ToolTipRole) == case_text
    assert table.textElideMode() == Qt.TextElideMode.ElideMiddle

    # History lists the case's revisions: at least five rows fully visible without scrolling
    history = win.history_table
    assert win.history_dock.isVisible() and history.rowCount() == 7
    shown = [r for r in range(history.rowCount())
             if history.visualRect(history.model().index(r, 0)).top() >= 0
             and history.visualRect(history.model().index(r, 0)).bottom() < history.viewport().height()]
    assert len(shown) >= 5, f"History shows {len(shown)} rows"

    # the review buttons stay on screen, the image views keep most of the width
    for button in (win.accept_btn, win.tumour_free_btn, win.exclude_btn):
        top_left = button.mapTo(win, QPoint(0, 0))
        assert button.isVisible() and top_left.y() >= 0 and top_left.y() + button.height() <= win.height()
    assert win.pair.width() >= 700
