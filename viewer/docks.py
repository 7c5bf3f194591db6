"""The window's panels: worklist, tools and model, history, and the status bar's labels.

Each panel builds and lays out its widgets and answers questions about them (which case is on a
row, which revision is selected); what a button *does* is wired in viewer/main_window.py, so a
panel can be rearranged here without touching the behaviour behind it.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QCoreApplication, QModelIndex, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QStatusBar,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from model.i18n_marks import QT_TRANSLATE_NOOP
from viewer import i18n, mask_ops
from viewer.actions import OPERATIONS, TOOL_SHORTCUTS, translated
from viewer.worklist import (
    CASE_COL,
    DICE_COL,
    EDITED_COL,
    PATIENT_COL,
    STATUS_COL,
    STATUS_LABELS,
    VIDEO_COL,
    WorklistFilter,
    WorklistModel,
    status_label,
)

UNREVIEWED = ("new", "predicted", "in_progress", "corrected")
WORKLIST_WIDTH = 460         # the worklist dock's width at the default size: every column fits
HISTORY_ROWS = 5             # revisions the History panel always shows without scrolling


def add_dock(window: QMainWindow, title: str, name: str, panel: QWidget, area: Qt.DockWidgetArea,
             min_width: int = 0) -> QDockWidget:
    """Put a panel in a dock; ``name`` is the object name the saved window state refers to."""
    dock = QDockWidget(title, window)
    dock.setObjectName(name)
    dock.setWidget(panel)
    if min_width:
        dock.setMinimumWidth(min_width)
    window.addDockWidget(area, dock)
    return dock


def _vbox(widget: QWidget) -> QVBoxLayout:
    lay = QVBoxLayout(widget)
    lay.setContentsMargins(6, 6, 6, 6)
    return lay


class WorklistPanel(QWidget):
    """Search, status filter, the case table (sorted and filtered through a proxy) and a summary line.

    Rows are proxy rows (what the clinician sees, in the order shown)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = _vbox(self)
        row = QHBoxLayout()
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText(self.tr("Search case or patient…"))
        self.search_edit.setClearButtonEnabled(True)
        self.status_filter = QComboBox()
        self.status_filter.addItem(self.tr("All statuses"), [])
        self.status_filter.addItem(self.tr("To review"), list(UNREVIEWED))
        for status in STATUS_LABELS:
            label = status_label(status)
            self.status_filter.addItem(label[:1].upper() + label[1:], [status])
        row.addWidget(self.search_edit, 2)
        row.addWidget(self.status_filter, 1)
        lay.addLayout(row)
        self.model = WorklistModel()
        self.proxy = WorklistFilter(self)
        self.proxy.setSourceModel(self.model)
        self.table = table = QTableView()
        table.setModel(self.proxy)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setSortingEnabled(True)
        table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        table.verticalHeader().hide()
        table.setAlternatingRowColors(True)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        # the case id takes what the other columns leave; long ids are elided in the middle (the
        # frame number at their end stays readable), the full id is the row's tooltip
        header.setSectionResizeMode(CASE_COL, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(36)
        header.setResizeContentsPrecision(200)  # column widths from 200 rows, not 10,000
        table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        table.setWordWrap(False)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        lay.addWidget(table, 1)
        self.summary = QLabel()
        self.summary.setObjectName("muted")
        lay.addWidget(self.summary)
        self.search_edit.textChanged.connect(self.proxy.set_text)
        self.status_filter.currentIndexChanged.connect(
            lambda _i: self.proxy.set_statuses(self.status_filter.currentData() or []))

    # --- contents -------------------------------------------------------------------------------
    def set_cases(self, cases: list[Any], video_sources: Any) -> None:
        self.model.set_cases(cases, video_sources)
        self.fit_columns()
        self.update_summary()

    def fit_columns(self) -> None:
        """Status, Dice and Edited as wide as their longest text, the patient id at most 90 px
        (elided), the case id the rest: all five columns fit the worklist dock at the default size.

        Measured from the texts, not resizeColumnToContents: that also reserves room for the sort
        arrow in every header and reads up to 200 rows.
        """
        table = self.table
        fm = table.fontMetrics()
        pad = 2 * table.style().pixelMetric(table.style().PixelMetric.PM_FocusFrameHMargin) + 12
        texts = {STATUS_COL: [status_label(s) for s in STATUS_LABELS], DICE_COL: [i18n.number(0, 3)],
                 EDITED_COL: ["12-31 23:59", "2026-12-31"]}
        for col, values in texts.items():
            header = str(self.model.headerData(col, Qt.Orientation.Horizontal))
            table.setColumnWidth(col, max(fm.horizontalAdvance(t) for t in [*values, header]) + pad)
        table.resizeColumnToContents(PATIENT_COL)
        table.setColumnWidth(PATIENT_COL, min(table.columnWidth(PATIENT_COL), 90))
        # the time-in-video column only where a case came from a video (it would crowd the others)
        has_video = self.model.has_video()
        table.setColumnHidden(VIDEO_COL, not has_video)
        if has_video:
            table.setColumnWidth(VIDEO_COL, fm.horizontalAdvance("0:00:00.0") + pad)

    def update_summary(self) -> None:
        total = self.model.rowCount()
        counts: dict[str, int] = {}
        for row in range(total):
            st = self.model.case_at(row).status
            counts[st] = counts.get(st, 0) + 1
        parts = [self.tr("{n} cases").format(n=i18n.integer(total))] + [
            self.tr("{n} {status}").format(n=i18n.integer(counts[s]), status=status_label(s))
            for s in STATUS_LABELS if counts.get(s)]
        self.summary.setText(" · ".join(parts))

    # --- rows -----------------------------------------------------------------------------------
    def case_at(self, row: int) -> Any:
        """The case on a proxy row."""
        return self.model.case_at(self.proxy.mapToSource(self.proxy.index(row, 0)).row())

    def case_of(self, index: QModelIndex) -> Any:
        return self.model.case_at(self.proxy.mapToSource(index).row())

    def current_row(self) -> int:
        return self.table.currentIndex().row()

    def select_row(self, row: int) -> None:
        """Make a row current (its currentRowChanged opens the case)."""
        if 0 <= row < self.proxy.rowCount():
            idx = self.proxy.index(row, 0)
            self.table.setCurrentIndex(idx)
            self.table.scrollTo(idx)

    def show_case(self, case_id: str) -> None:
        """Make a case's row current without announcing it (the case is already open)."""
        row = self.model.row_of(case_id)
        if row is None:
            return
        idx = self.proxy.mapFromSource(self.model.index(row, 0))
        if idx.isValid():
            self.table.selectionModel().blockSignals(True)
            self.table.setCurrentIndex(idx)
            self.table.selectionModel().blockSignals(False)
            self.table.scrollTo(idx)

    def step(self, delta: int) -> None:
        n = self.proxy.rowCount()
        if n:
            self.select_row(max(0, min(n - 1, self.current_row() + delta)))

    def first_unreviewed_row(self) -> int:
        for row in range(self.proxy.rowCount()):
            if self.case_at(row).status in UNREVIEWED:
                return row
        return 0

    def next_unreviewed_row(self, skip_id: str | None) -> int | None:
        """The next row still to review after the current one (wrapping), other than ``skip_id``."""
        n = self.proxy.rowCount()
        start = self.current_row()
        for k in range(1, n + 1):
            row = (start + k) % n
            case = self.case_at(row)
            if case.status in UNREVIEWED and case.id != skip_id:
                return row
        return None

    def ids_after_current(self, count: int) -> list[str]:
        """The ids of up to ``count`` rows after the current one, in the order shown."""
        row = self.current_row()
        if row < 0:
            return []
        end = min(self.proxy.rowCount(), row + 1 + count)
        return [self.case_at(r).id for r in range(row + 1, end)]


class ToolsPanel(QWidget):
    """Tools (buttons of the window's tool actions), brush radius, whole-mask operations, overlay
    style, the model's name and device with its buttons, and the review buttons."""

    def __init__(self, tool_actions: dict[str, QAction], radius: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = _vbox(self)
        tools_box = QGroupBox(self.tr("Tools"))
        grid = QGridLayout(tools_box)
        for i, tool in enumerate(TOOL_SHORTCUTS):
            btn = QToolButton()
            btn.setDefaultAction(tool_actions[tool])
            btn.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            btn.setSizePolicy(btn.sizePolicy().horizontalPolicy().Expanding, btn.sizePolicy().verticalPolicy())
            grid.addWidget(btn, i // 2, i % 2)
        tool_rows = (len(TOOL_SHORTCUTS) + 1) // 2
        form = QFormLayout()
        self.radius_spin = QSpinBox()
        self.radius_spin.setRange(1, 400)
        self.radius_spin.setSuffix(self.tr(" px"))
        self.radius_spin.setValue(radius)
        self.radius_spin.setToolTip(self.tr("Brush radius in image pixels ([ and ], or Ctrl+wheel)"))
        form.addRow(self.tr("Brush radius"), self.radius_spin)
        grid.addLayout(form, tool_rows, 0, 1, 2)
        ops = QGridLayout()
        self.operation_buttons: dict[str, QPushButton] = {}
        for i, (name, label, shortcut, _kwargs) in enumerate(OPERATIONS):
            btn = QPushButton(translated(label))
            btn.setToolTip(f"{translated(label)} ({shortcut})")
            self.operation_buttons[name] = btn
            ops.addWidget(btn, i // 2, i % 2)
        grid.addLayout(ops, tool_rows + 1, 0, 1, 2)
        self.use_model_btn = QPushButton(self.tr("Use model prediction"))
        self.use_model_btn.setToolTip(self.tr("Replace the current mask by the model's prediction (undoable)"))
        grid.addWidget(self.use_model_btn, tool_rows + 2, 0, 1, 2)
        lay.addWidget(tools_box)

        ov_box = QGroupBox(self.tr("Overlay"))
        ov = QFormLayout(ov_box)
        self.overlay_visible = QCheckBox(self.tr("Show (O)"))
        self.overlay_visible.setChecked(True)
        self.overlay_mode = QComboBox()
        for mode, label in ((mask_ops.OUTLINE, self.tr("Outline")), (mask_ops.FILL, self.tr("Filled")),
                            (mask_ops.PROBABILITY, self.tr("Probability heat map"))):
            self.overlay_mode.addItem(label, mode)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(5, 100)
        self.opacity_slider.setValue(45)
        ov.addRow(self.overlay_visible)
        ov.addRow(self.tr("Mode (M)"), self.overlay_mode)
        ov.addRow(self.tr("Opacity"), self.opacity_slider)
        lay.addWidget(ov_box)

        model_box = QGroupBox(self.tr("Model"))
        mf = QVBoxLayout(model_box)
        self.model_label = QLabel("—")
        self.model_label.setWordWrap(True)
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.device_label_panel = QLabel(self.tr("Device: not loaded yet"))
        self.device_label_panel.setWordWrap(True)
        mf.addWidget(self.model_label)
        mf.addWidget(self.device_label_panel)
        row = QHBoxLayout()
        self.predict_btn = QPushButton(self.tr("Predict again"))
        self.preannotate_btn = QPushButton(self.tr("Pre-annotate all"))
        row.addWidget(self.predict_btn)
        row.addWidget(self.preannotate_btn)
        mf.addLayout(row)
        row2 = QHBoxLayout()
        self.batch_progress = QProgressBar()
        self.batch_progress.setTextVisible(True)
        self.batch_progress.hide()
        self.batch_cancel = QPushButton(self.tr("Cancel"))
        self.batch_cancel.hide()
        row2.addWidget(self.batch_progress, 1)
        row2.addWidget(self.batch_cancel)
        mf.addLayout(row2)
        lay.addWidget(model_box)

        review = QGroupBox(self.tr("Review"))
        rv = QHBoxLayout(review)
        self.accept_btn = QPushButton(self.tr("Accept  (A)"))
        self.accept_btn.setObjectName("acceptButton")
        self.tumour_free_btn = QPushButton(self.tr("Tumour-free"))
        self.tumour_free_btn.setToolTip(self.tr("Approve as tumour-free: no tumour in this case (Ctrl+Shift+A)"))
        self.exclude_btn = QPushButton(self.tr("Exclude… (X)"))
        rv.addWidget(self.accept_btn)
        rv.addWidget(self.tumour_free_btn)
        rv.addWidget(self.exclude_btn)
        lay.addWidget(review)
        lay.addStretch(1)

    def overlay_style(self) -> mask_ops.OverlayStyle:
        return mask_ops.OverlayStyle(mode=self.overlay_mode.currentData(), opacity=self.opacity_slider.value() / 100.0,
                                     visible=self.overlay_visible.isChecked())

    def cycle_overlay_mode(self) -> None:
        self.overlay_mode.setCurrentIndex((self.overlay_mode.currentIndex() + 1) % self.overlay_mode.count())


# where a revision came from (records.SOURCES), as the History panel shows it
SOURCE_LABELS = {"model": QT_TRANSLATE_NOOP("History", "model"), "human": QT_TRANSLATE_NOOP("History", "human"),
                 "import": QT_TRANSLATE_NOOP("History", "import")}


def source_label(source: str) -> str:
    """A revision's source in the UI language (unknown sources as stored)."""
    label = SOURCE_LABELS.get(source)
    return QCoreApplication.translate("History", label) if label else source


class HistoryPanel(QWidget):
    """The open case's revisions, newest first, and "Restore selected as new revision"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = _vbox(self)
        self.table = table = QTableWidget(0, 6)
        table.setHorizontalHeaderLabels([self.tr("Rev"), self.tr("Source"), self.tr("Who"), self.tr("When"),
                                         self.tr("Area px"), self.tr("Dice vs model")])
        table.verticalHeader().hide()
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.horizontalHeader().setStretchLastSection(True)
        table.setWordWrap(False)
        rows = table.verticalHeader().defaultSectionSize()
        # always room for HISTORY_ROWS revisions (header, frame and a scroll bar included)
        table.setMinimumHeight(table.horizontalHeader().sizeHint().height() + HISTORY_ROWS * rows
                               + 2 * table.frameWidth() + table.horizontalScrollBar().sizeHint().height())
        lay.addWidget(table, 1)
        self.restore_btn = QPushButton(self.tr("Restore selected as new revision"))
        lay.addWidget(self.restore_btn)

    def clear(self) -> None:
        self.table.setRowCount(0)

    def show_revisions(self, revisions: list[Any]) -> None:
        """Fill the table from ``Workspace.history`` (oldest first); each row keeps its revision number."""
        self.table.setRowCount(0)
        revs = list(reversed(revisions))
        self.table.setRowCount(len(revs))
        for i, r in enumerate(revs):
            dice = "" if r.dice_vs_model is None else i18n.number(r.dice_vs_model, 3)
            values = [str(r.rev), source_label(r.source), r.author or "",
                      i18n.stored_time(r.created_at) if r.created_at else "", i18n.integer(r.area), dice]
            for j, val in enumerate(values):
                item = QTableWidgetItem(val)
                item.setData(Qt.ItemDataRole.UserRole, r.rev)
                if r.note:
                    item.setToolTip(r.note)  # e.g. "autosave · 3 clicks (2 +, 1 −)"
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()

    def selected_rev(self) -> int | None:
        row = self.table.currentRow()
        return None if row < 0 else self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)


class StatusWidgets:
    """The status bar: the open case on the left; busy, click-tool, model and device on the right."""

    def __init__(self, sb: QStatusBar) -> None:
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setMaximumHeight(14)
        self.busy.hide()
        self.device_label = QLabel(QCoreApplication.translate("StatusWidgets", "Device: loading…"))
        self.device_label.setObjectName("deviceLabel")
        self.model_status_label = QLabel(QCoreApplication.translate("StatusWidgets", "Model: —"))
        self.click_label = QLabel(QCoreApplication.translate("StatusWidgets", "Click tool off: model not trained with clicks"))
        self.click_label.setObjectName("clickLabel")
        self.click_label.hide()
        self.case_label = QLabel("")
        sb.addWidget(self.case_label, 1)
        sb.addPermanentWidget(self.busy)
        sb.addPermanentWidget(self.click_label)
        sb.addPermanentWidget(self.model_status_label)
        sb.addPermanentWidget(self.device_label)
