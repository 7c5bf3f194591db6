"""The main window: worklist, paired view, tools/model panel, history, status bar.

The window only wires widgets to the store, the editor and the inference worker; array work
lives in viewer.mask_ops, storage in training.store, predictions in the worker thread.
"""
from __future__ import annotations

import getpass
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import shiboken6
from PySide6.QtCore import QByteArray, QModelIndex, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QShortcut, QUndoGroup, QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from training import recovery
from training.store import RevisionConflict, WorkspaceError
from viewer import mask_ops, save_conflict
from viewer.actions import ACTIONS, LAYOUT_LABELS, MENUS, OPERATIONS, TOOL_SHORTCUTS, TUMOUR_FREE_NOTE
from viewer.clicks import marker_points, model_file_is_interactive
from viewer.inference import PREFETCH_DEPTH, ClickResult, InferenceWorker, PredictionResult, PredictorFactory
from viewer.pair_view import LAYOUTS, PairView
from viewer.tools import CLICK, NAVIGATE, TOOL_LABELS, CaseSession, EditController
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
)

APP_NAME = "ADF Viewer"
UNREVIEWED = ("new", "predicted", "in_progress", "corrected")
DEFAULT_SIZE = (1600, 1000)  # first start (later starts restore the last geometry)
WORKLIST_WIDTH = 460         # the worklist dock's width at the default size: every column fits
HISTORY_ROWS = 5             # revisions the History panel always shows without scrolling
MAX_SESSIONS = 64          # cases whose undo history is kept in memory at once
UNDO_LIMIT_PER_CASE = 500  # strokes; each holds only its bounding-box patch, bit-packed


class MainWindow(QMainWindow):
    """ADF Viewer's window over one workspace."""

    caseOpened = Signal(str)
    predictionShown = Signal(str)     # case id, after a (non-superseded) prediction reached the overlay
    saved = Signal(str, int)          # case id, revision number
    predictionFailed = Signal(str, str)  # case id, message
    clickShown = Signal(str)          # case id, after a click's prediction reached the mask

    def __init__(self, settings: QSettings, device: str = "auto",
                 predictor_factory: PredictorFactory | None = None, author: str | None = None,
                 autosave_ms: int = 2000) -> None:
        super().__init__()
        self.settings = settings
        self.device = device
        self.predictor_factory = predictor_factory
        self.author = author or str(settings.value("author", "")) or _os_user()
        self.ws: Any = None
        self.worker: InferenceWorker | None = None
        self.current_case_id: str | None = None
        self.current_request = 0
        self.sessions: OrderedDict[str, CaseSession] = OrderedDict()
        self.undo_group = QUndoGroup(self)
        self.image_rgb: np.ndarray | None = None
        self.last_prediction_ms: dict[str, float] = {}
        self.prediction_errors: dict[str, str] = {}  # case id -> why its last prediction failed
        self.click_status = ""            # why the click tool is off ("" when it is on)
        self.click_request = 0            # id of the newest click request (older results are stale)
        self.click_model: tuple[str, bool] | None = None  # (model id, takes clicks) once known
        self.setWindowTitle(APP_NAME)
        self.resize(DEFAULT_SIZE[0], DEFAULT_SIZE[1])

        self.pair = PairView(self)
        self.setCentralWidget(self.pair)
        self.editor = EditController(self.pair)
        self.editor.maskEdited.connect(self._on_mask_edited)
        self.editor.clicksChanged.connect(self._on_clicks_changed)
        self.editor.clickRequested.connect(self._request_clicks)
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setSingleShot(True)
        self.autosave_timer.setInterval(autosave_ms)
        self.autosave_timer.timeout.connect(self._autosave)

        self._create_actions()
        self._build_worklist_dock()
        self._build_tools_dock()
        self._build_history_dock()
        self._build_status_bar()
        self._build_menus()
        self._restore_settings()

    # ================================================================== construction
    def _build_worklist_dock(self) -> None:
        dock = QDockWidget("Worklist", self)
        dock.setObjectName("worklistDock")
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(6, 6, 6, 6)
        row = QHBoxLayout()
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search case or patient…")
        self.search_edit.setClearButtonEnabled(True)
        self.status_filter = QComboBox()
        self.status_filter.addItem("All statuses", [])
        self.status_filter.addItem("To review", list(UNREVIEWED))
        for status, label in STATUS_LABELS.items():
            self.status_filter.addItem(label.capitalize(), [status])
        row.addWidget(self.search_edit, 2)
        row.addWidget(self.status_filter, 1)
        lay.addLayout(row)
        self.worklist_model = WorklistModel()
        self.worklist_proxy = WorklistFilter(self)
        self.worklist_proxy.setSourceModel(self.worklist_model)
        self.worklist = QTableView()
        self.worklist.setModel(self.worklist_proxy)
        self.worklist.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.worklist.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.worklist.setSortingEnabled(True)
        self.worklist.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.worklist.verticalHeader().hide()
        self.worklist.setAlternatingRowColors(True)
        header = self.worklist.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        # the case id takes what the other columns leave; long ids are elided in the middle (the
        # frame number at their end stays readable), the full id is the row's tooltip
        header.setSectionResizeMode(CASE_COL, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(36)
        header.setResizeContentsPrecision(200)  # column widths from 200 rows, not 10,000
        self.worklist.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.worklist.setWordWrap(False)
        self.worklist.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        lay.addWidget(self.worklist, 1)
        self.worklist_summary = QLabel()
        self.worklist_summary.setObjectName("muted")
        lay.addWidget(self.worklist_summary)
        dock.setWidget(box)
        dock.setMinimumWidth(300)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.resizeDocks([dock], [WORKLIST_WIDTH], Qt.Orientation.Horizontal)
        self.worklist_dock = dock
        self.search_edit.textChanged.connect(self.worklist_proxy.set_text)
        self.status_filter.currentIndexChanged.connect(
            lambda _i: self.worklist_proxy.set_statuses(self.status_filter.currentData() or []))
        self.worklist.selectionModel().currentRowChanged.connect(self._on_worklist_row)

    def _build_tools_dock(self) -> None:
        dock = QDockWidget("Tools and model", self)
        dock.setObjectName("toolsDock")
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(6, 6, 6, 6)

        tools_box = QGroupBox("Tools")
        grid = QGridLayout(tools_box)
        for i, tool in enumerate(TOOL_SHORTCUTS):
            btn = QToolButton()
            btn.setDefaultAction(self.tool_actions[tool])
            btn.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            btn.setSizePolicy(btn.sizePolicy().horizontalPolicy().Expanding, btn.sizePolicy().verticalPolicy())
            grid.addWidget(btn, i // 2, i % 2)
        tool_rows = (len(TOOL_SHORTCUTS) + 1) // 2
        self.tool_actions[NAVIGATE].setChecked(True)
        self.editor.toolChanged.connect(lambda t: self.tool_actions[t].setChecked(True))
        form = QFormLayout()
        self.radius_spin = QSpinBox()
        self.radius_spin.setRange(1, 400)
        self.radius_spin.setSuffix(" px")
        self.radius_spin.setValue(self.editor.radius)
        self.radius_spin.setToolTip("Brush radius in image pixels ([ and ], or Ctrl+wheel)")
        self.radius_spin.valueChanged.connect(self.editor.set_radius)
        self.editor.radiusChanged.connect(self.radius_spin.setValue)
        form.addRow("Brush radius", self.radius_spin)
        grid.addLayout(form, tool_rows, 0, 1, 2)
        ops = QGridLayout()
        self.operation_buttons: dict[str, QPushButton] = {}
        for i, (name, label, shortcut, kwargs) in enumerate(OPERATIONS):
            btn = QPushButton(label)
            btn.setToolTip(f"{label} ({shortcut})")
            btn.clicked.connect(lambda _c=False, n=name, k=kwargs: self.editor.apply_operation(n, **k))
            self.operation_buttons[name] = btn
            ops.addWidget(btn, i // 2, i % 2)
        grid.addLayout(ops, tool_rows + 1, 0, 1, 2)
        self.use_model_btn = QPushButton("Use model prediction")
        self.use_model_btn.setToolTip("Replace the current mask by the model's prediction (undoable)")
        self.use_model_btn.clicked.connect(self.use_model_prediction)
        grid.addWidget(self.use_model_btn, tool_rows + 2, 0, 1, 2)
        lay.addWidget(tools_box)

        ov_box = QGroupBox("Overlay")
        ov = QFormLayout(ov_box)
        self.overlay_visible = QCheckBox("Show (O)")
        self.overlay_visible.setChecked(True)
        self.overlay_visible.toggled.connect(self._on_overlay_style)
        self.overlay_mode = QComboBox()
        for mode, label in ((mask_ops.OUTLINE, "Outline"), (mask_ops.FILL, "Filled"),
                            (mask_ops.PROBABILITY, "Probability heat map")):
            self.overlay_mode.addItem(label, mode)
        self.overlay_mode.currentIndexChanged.connect(self._on_overlay_style)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(5, 100)
        self.opacity_slider.setValue(45)
        self.opacity_slider.valueChanged.connect(self._on_overlay_style)
        ov.addRow(self.overlay_visible)
        ov.addRow("Mode (M)", self.overlay_mode)
        ov.addRow("Opacity", self.opacity_slider)
        lay.addWidget(ov_box)

        model_box = QGroupBox("Model")
        mf = QVBoxLayout(model_box)
        self.model_label = QLabel("—")
        self.model_label.setWordWrap(True)
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.device_label_panel = QLabel("Device: not loaded yet")
        self.device_label_panel.setWordWrap(True)
        mf.addWidget(self.model_label)
        mf.addWidget(self.device_label_panel)
        row = QHBoxLayout()
        self.predict_btn = QPushButton("Predict again")
        self.predict_btn.clicked.connect(self.request_prediction)
        self.preannotate_btn = QPushButton("Pre-annotate all")
        self.preannotate_btn.clicked.connect(self.preannotate_all)
        row.addWidget(self.predict_btn)
        row.addWidget(self.preannotate_btn)
        mf.addLayout(row)
        row2 = QHBoxLayout()
        self.batch_progress = QProgressBar()
        self.batch_progress.setTextVisible(True)
        self.batch_progress.hide()
        self.batch_cancel = QPushButton("Cancel")
        self.batch_cancel.hide()
        self.batch_cancel.clicked.connect(self._cancel_batch)
        row2.addWidget(self.batch_progress, 1)
        row2.addWidget(self.batch_cancel)
        mf.addLayout(row2)
        lay.addWidget(model_box)

        review = QGroupBox("Review")
        rv = QHBoxLayout(review)
        self.accept_btn = QPushButton("Accept  (A)")
        self.accept_btn.setObjectName("acceptButton")
        self.accept_btn.clicked.connect(self.accept_current)
        self.tumour_free_btn = QPushButton("Tumour-free")
        self.tumour_free_btn.setToolTip("Approve as tumour-free: no tumour in this case (Ctrl+Shift+A)")
        self.tumour_free_btn.clicked.connect(self.approve_tumour_free)
        self.exclude_btn = QPushButton("Exclude… (X)")
        self.exclude_btn.clicked.connect(self.exclude_current_dialog)
        rv.addWidget(self.accept_btn)
        rv.addWidget(self.tumour_free_btn)
        rv.addWidget(self.exclude_btn)
        lay.addWidget(review)
        lay.addStretch(1)
        dock.setWidget(box)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.tools_dock = dock

    def _build_history_dock(self) -> None:
        dock = QDockWidget("History", self)
        dock.setObjectName("historyDock")
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(6, 6, 6, 6)
        self.history_table = QTableWidget(0, 6)
        self.history_table.setHorizontalHeaderLabels(["Rev", "Source", "Who", "When", "Area px", "Dice vs model"])
        self.history_table.verticalHeader().hide()
        self.history_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.history_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.history_table.horizontalHeader().setStretchLastSection(True)
        self.history_table.setWordWrap(False)
        rows = self.history_table.verticalHeader().defaultSectionSize()
        # always room for HISTORY_ROWS revisions (header, frame and a scroll bar included)
        self.history_table.setMinimumHeight(self.history_table.horizontalHeader().sizeHint().height()
                                            + HISTORY_ROWS * rows + 2 * self.history_table.frameWidth()
                                            + self.history_table.horizontalScrollBar().sizeHint().height())
        lay.addWidget(self.history_table, 1)
        self.restore_btn = QPushButton("Restore selected as new revision")
        self.restore_btn.clicked.connect(self.restore_selected_revision)
        lay.addWidget(self.restore_btn)
        dock.setWidget(box)
        # under the worklist (the tools panel on the right is as tall as the default window allows)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.history_dock = dock

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setMaximumHeight(14)
        self.busy.hide()
        self.device_label = QLabel("Device: loading…")
        self.device_label.setObjectName("deviceLabel")
        self.model_status_label = QLabel("Model: —")
        self.click_label = QLabel("Click tool off: model not trained with clicks")
        self.click_label.setObjectName("clickLabel")
        self.click_label.hide()
        self.case_label = QLabel("")
        sb.addWidget(self.case_label, 1)
        sb.addPermanentWidget(self.busy)
        sb.addPermanentWidget(self.click_label)
        sb.addPermanentWidget(self.model_status_label)
        sb.addPermanentWidget(self.device_label)

    def _action_slots(self) -> dict[str, Callable[[], Any]]:
        """What each action of viewer.actions.ACTIONS does (undo/redo come from the undo group)."""
        slots: dict[str, Callable[[], Any]] = {
            "new_workspace": self.new_workspace_dialog, "open_workspace": self.open_workspace_dialog,
            "import": self.import_dialog, "import_video": self.import_video_dialog, "export": self.export_dialog,
            "save": lambda: self.save_current("manual"), "quit": self.close,
            "brush_larger": lambda: self.editor.set_radius(self.editor.radius + max(1, self.editor.radius // 8)),
            "brush_smaller": lambda: self.editor.set_radius(self.editor.radius - max(1, self.editor.radius // 8)),
            "fit": self.pair.fit, "actual_size": self.pair.actual_size,
            "zoom_in": lambda: self.pair.zoom(1.25), "zoom_out": lambda: self.pair.zoom(0.8),
            "toggle_overlay": lambda: self.overlay_visible.toggle(), "overlay_mode": self._cycle_overlay_mode,
            "next_case": self.next_case, "previous_case": self.previous_case,
            "accept": self.accept_current, "approve_tumour_free": self.approve_tumour_free,
            "exclude": self.exclude_current_dialog, "predict": self.request_prediction,
            "preannotate": self.preannotate_all, "agreement": self.show_agreement_summary,
            "train": self.train_dialog, "model_versions": self.models_dialog,
            "shortcuts": self.show_shortcuts, "about": self.show_about,
        }
        for tool in TOOL_SHORTCUTS:
            slots[f"tool.{tool}"] = lambda t=tool: self.editor.set_tool(t)
        for name, _label, _key, kwargs in OPERATIONS:
            slots[f"op.{name}"] = lambda n=name, k=kwargs: self.editor.apply_operation(n, **k)
        for mode in LAYOUT_LABELS:
            slots[f"layout.{mode}"] = lambda m=mode: self.set_layout_mode(m)
        return slots

    def _create_actions(self) -> None:
        """One QAction per row of viewer.actions.ACTIONS, with its shortcuts, on the window."""
        slots = self._action_slots()
        groups: dict[str, QActionGroup] = {}
        self.qactions: dict[str, QAction] = {}
        for spec in ACTIONS:
            if spec.id == "undo":
                act = self.undo_group.createUndoAction(self, spec.text)
            elif spec.id == "redo":
                act = self.undo_group.createRedoAction(self, spec.text)
            else:
                act = QAction(spec.text, self)
                act.setCheckable(spec.checkable)
                act.triggered.connect(lambda _c=False, f=slots[spec.id]: f())
            if spec.shortcuts:
                act.setShortcuts([QKeySequence(k) for k in spec.shortcuts])
                act.setToolTip(f"{spec.text.rstrip('…')} ({spec.shortcuts[0]})")
            if spec.group:
                groups.setdefault(spec.group, QActionGroup(self)).addAction(act)
            self.addAction(act)
            self.qactions[spec.id] = act
        self.tool_group = groups["tools"]
        self.tool_actions: dict[str, QAction] = {t: self.qactions[f"tool.{t}"] for t in TOOL_SHORTCUTS}
        self.layout_actions: dict[str, QAction] = {m: self.qactions[f"layout.{m}"] for m in LAYOUTS}
        self.layout_actions["side_by_side"].setChecked(True)
        self.undo_action, self.redo_action = self.qactions["undo"], self.qactions["redo"]
        # C while the click tool is disabled says why (a disabled action's key would do nothing)
        self.click_off_shortcut = QShortcut(QKeySequence(TOOL_SHORTCUTS[CLICK]), self)
        self.click_off_shortcut.setEnabled(False)
        self.click_off_shortcut.activated.connect(lambda: self.statusBar().showMessage(self.click_status, 10000))
        self.export_action = self.qactions["export"]

    def _build_menus(self) -> None:
        """The menu bar, in the order of viewer.actions.ACTIONS, plus the docks' show/hide toggles."""
        menus = {name: self.menuBar().addMenu(f"&{name}") for name in MENUS}
        for spec in ACTIONS:
            if spec.separator_before:
                menus[spec.menu].addSeparator()
            menus[spec.menu].addAction(self.qactions[spec.id])
        menus["View"].addSeparator()
        for dock in (self.worklist_dock, self.tools_dock, self.history_dock):
            menus["View"].addAction(dock.toggleViewAction())
        self.model_menu = menus["Model"]

    # ================================================================== settings
    def _restore_settings(self) -> None:
        geo = self.settings.value("geometry")
        if isinstance(geo, QByteArray):
            self.restoreGeometry(geo)
        state = self.settings.value("windowState")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        mode = self.settings.value("overlay/mode", mask_ops.OUTLINE)
        idx = self.overlay_mode.findData(mode)
        if idx >= 0:
            self.overlay_mode.setCurrentIndex(idx)
        try:
            self.opacity_slider.setValue(int(self.settings.value("overlay/opacity", 45)))
        except (TypeError, ValueError):
            pass
        layout = str(self.settings.value("layout", "side_by_side"))
        if layout in LAYOUTS:
            self.set_layout_mode(layout)

    def _save_settings(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("windowState", self.saveState())
        self.settings.setValue("overlay/mode", self.overlay_mode.currentData())
        self.settings.setValue("overlay/opacity", self.opacity_slider.value())
        self.settings.setValue("layout", self.pair.layout_mode)
        if self.ws is not None:
            self.settings.setValue("last_workspace", str(self.ws.root))
        self.settings.sync()

    # ================================================================== workspace
    def open_workspace(self, path: Path) -> bool:
        """Open a workspace (closing the current one, saving first). False + message on failure."""
        from training.store import Workspace, WorkspaceError

        self.save_current("workspace switch")
        try:
            ws = Workspace.open(Path(path))
        except (WorkspaceError, OSError) as exc:
            self._error_dialog("Cannot open workspace", str(exc))
            return False
        self._close_workspace()
        self.ws = ws
        self.setWindowTitle(f"{APP_NAME} — {ws.root.name}" + (" (read-only)" if ws.readonly else ""))
        self.settings.setValue("last_workspace", str(ws.root))
        model_path, model_problem = self._model_for(ws)
        self._start_worker(model_path)
        self.reload_worklist()
        if not ws.readonly:
            self._offer_recovery()
        if self.worklist_proxy.rowCount() > 0:
            self._select_proxy_row(self._first_unreviewed_row())
        if ws.readonly:
            self.pair.show_error(f"{ws.root} is read-only: you can look and predict, but nothing can be saved here.")
        elif model_problem:
            self.pair.show_error(model_problem)
        return True

    def _model_for(self, ws: Any) -> tuple[Path | None, str | None]:
        """The model the worker loads, and a problem to show when there is none.

        A workspace always has an active model (DESIGN.md): one without gets the bundled model
        registered and activated here. A read-only workspace predicts with the bundled files as
        they are, without registering anything.
        """
        from training.paths import bundled_model_card

        if ws.readonly:
            path = ws.active_model_path()
            if path is None and bundled_model_card().is_file():
                path = bundled_model_card()
            return path, None
        try:
            ws.ensure_active_model()
        except WorkspaceError as exc:
            return None, (f"No model is active in this workspace and the bundled model could not be added ({exc}). "
                          "Use Model ▸ Model versions ▸ Add model file…")
        return ws.active_model_path(), None

    def _start_worker(self, model_path: Path | None) -> None:
        self._stop_worker()
        assert self.ws is not None
        self.model_status_label.setText(f"Model: {model_path.stem if model_path else 'none'}")
        self.model_label.setText(f"Active model: {model_path.stem if model_path else 'none'}")
        self._set_click_model(model_path.stem if model_path else "none", model_file_is_interactive(model_path))
        self.worker = InferenceWorker(self.ws.root, model_path, self.device, self.predictor_factory)
        self.worker.resultReady.connect(self._on_prediction)
        self.worker.clickReady.connect(self._on_click_result)
        self.worker.interactiveKnown.connect(self._on_interactive_known)
        self.worker.failed.connect(self._on_prediction_failed)
        self.worker.deviceReady.connect(self._on_device_ready)
        self.worker.busyChanged.connect(self.busy.setVisible)
        self.worker.batchProgress.connect(self._on_batch_progress)
        self.worker.batchFinished.connect(self._on_batch_finished)
        self.worker.prefetched.connect(self._on_prefetched)
        self.worker.start()

    def _stop_worker(self) -> None:
        if self.worker is not None:
            if self.worker.stop():
                self.worker.deleteLater()
            self.worker = None

    def _close_workspace(self) -> None:
        self._stop_worker()
        for session in self.sessions.values():
            self.undo_group.removeStack(session.undo)
        self.sessions.clear()
        self.current_case_id = None
        if self.ws is not None:
            self.ws.close()
            self.ws = None

    def reload_worklist(self) -> None:
        assert self.ws is not None
        current = self.current_case_id
        self.worklist_model.set_cases(self.ws.cases(), self.ws.video_sources())
        self._fit_worklist_columns()
        self._update_summary()
        if current is not None:
            self._select_case_in_worklist(current)

    def _fit_worklist_columns(self) -> None:
        """Status, Dice and Edited as wide as their longest text, the patient id at most 90 px
        (elided), the case id the rest: all five columns fit the worklist dock at the default size.

        Measured from the texts, not resizeColumnToContents: that also reserves room for the sort
        arrow in every header and reads up to 200 rows.
        """
        fm = self.worklist.fontMetrics()
        pad = 2 * self.worklist.style().pixelMetric(self.worklist.style().PixelMetric.PM_FocusFrameHMargin) + 12
        texts = {STATUS_COL: list(STATUS_LABELS.values()), DICE_COL: ["0.000"],
                 EDITED_COL: ["12-31 23:59", "2026-12-31"]}
        for col, values in texts.items():
            header = str(self.worklist_model.headerData(col, Qt.Orientation.Horizontal))
            self.worklist.setColumnWidth(col, max(fm.horizontalAdvance(t) for t in [*values, header]) + pad)
        self.worklist.resizeColumnToContents(PATIENT_COL)
        self.worklist.setColumnWidth(PATIENT_COL, min(self.worklist.columnWidth(PATIENT_COL), 90))
        # the time-in-video column only where a case came from a video (it would crowd the others)
        has_video = self.worklist_model.has_video()
        self.worklist.setColumnHidden(VIDEO_COL, not has_video)
        if has_video:
            self.worklist.setColumnWidth(VIDEO_COL, fm.horizontalAdvance("0:00:00.0") + pad)

    def _update_summary(self) -> None:
        total = self.worklist_model.rowCount()
        counts: dict[str, int] = {}
        for row in range(total):
            st = self.worklist_model.case_at(row).status
            counts[st] = counts.get(st, 0) + 1
        parts = [f"{total} cases"] + [f"{counts[s]} {STATUS_LABELS[s]}" for s in STATUS_LABELS if counts.get(s)]
        self.worklist_summary.setText(" · ".join(parts))

    # ================================================================== cases
    def _on_worklist_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        src = self.worklist_proxy.mapToSource(current)
        case_id = self.worklist_model.case_at(src.row()).id
        if case_id != self.current_case_id:
            self.open_case(case_id)

    def _select_proxy_row(self, row: int) -> None:
        if 0 <= row < self.worklist_proxy.rowCount():
            idx = self.worklist_proxy.index(row, 0)
            self.worklist.setCurrentIndex(idx)
            self.worklist.scrollTo(idx)

    def _select_case_in_worklist(self, case_id: str) -> None:
        row = self.worklist_model.row_of(case_id)
        if row is None:
            return
        idx = self.worklist_proxy.mapFromSource(self.worklist_model.index(row, 0))
        if idx.isValid():
            self.worklist.selectionModel().blockSignals(True)
            self.worklist.setCurrentIndex(idx)
            self.worklist.selectionModel().blockSignals(False)
            self.worklist.scrollTo(idx)

    def _first_unreviewed_row(self) -> int:
        for row in range(self.worklist_proxy.rowCount()):
            case = self.worklist_model.case_at(self.worklist_proxy.mapToSource(self.worklist_proxy.index(row, 0)).row())
            if case.status in UNREVIEWED:
                return row
        return 0

    def open_case(self, case_id: str) -> None:
        """Show a case: saved work first, then the pair, its mask, and a prediction request."""
        assert self.ws is not None
        if self.current_case_id is not None and self.current_case_id != case_id:
            self.save_current("case switch")
        case = self.ws.case(case_id)
        try:
            kept = self.worker.kept_images(case_id) if self.worker is not None else None  # prefetched: no decode
            wli, nbi = kept if kept is not None else (self.ws.load_wli(case_id), self.ws.load_nbi(case_id))
        except Exception as exc:  # noqa: BLE001 - unreadable file: say so, keep the app usable
            self.pair.show_error(f"Cannot show case {case_id}: {exc}")
            return
        self.pair.show_error(None)
        self.current_case_id = case_id
        self.image_rgb = wli
        session = self._session_for(case, wli.shape[:2])
        if nbi is None:
            label = "No NBI for this case — WLI-only prediction"
        elif case.nbi_synthetic:
            label = "NBI — SYNTHETIC (generated from WLI)"
        else:
            label = "NBI (registered to WLI)" + (" — registration quality low" if case.reg_quality == "low" else "")
        self.pair.set_case(wli, nbi, case.homography if nbi is not None else None, label)
        assert self.pair.overlay is not None
        self.pair.overlay.style = self._overlay_style()
        self.pair.overlay.set_data(session.mask, session.prob)
        self.pair.set_click_markers(marker_points(session.clicks))
        self.editor.set_session(session, wli)
        self.undo_group.setActiveStack(session.undo)
        self._select_case_in_worklist(case_id)
        self._refresh_history()
        self._update_case_label()
        self.caseOpened.emit(case_id)
        self.request_prediction()

    def _session_for(self, case: Any, shape: tuple[int, int]) -> CaseSession:
        session = self.sessions.get(case.id)
        if session is not None and not session.dirty and case.latest_rev not in (None, session.base_rev):
            self.undo_group.removeStack(session.undo)  # another window saved since: show theirs, not a stale copy
            del self.sessions[case.id]
            session = None
        if session is not None:
            self.sessions.move_to_end(case.id)
            return session
        assert self.ws is not None
        rev = self.ws.latest_revision(case.id)
        if rev is not None:
            mask = self.ws.load_mask(rev).astype(np.uint8)
            source, base_rev, model_id = "revision", rev.rev, rev.model_id
        else:
            mask = np.zeros(shape, np.uint8)
            source, base_rev, model_id = "empty", None, None
        stack = QUndoStack(self)
        stack.setUndoLimit(UNDO_LIMIT_PER_CASE)
        self.undo_group.addStack(stack)
        session = CaseSession(case.id, np.ascontiguousarray(mask), stack, base_rev, model_id, None, source)
        stack.cleanChanged.connect(self._on_clean_changed)
        stack.indexChanged.connect(lambda _i, s=session: self._on_stack_changed(s))
        self.sessions[case.id] = session
        self._evict_sessions()
        return session

    def _evict_sessions(self) -> None:
        """Bound memory: forget the oldest clean sessions beyond MAX_SESSIONS."""
        while len(self.sessions) > MAX_SESSIONS:
            for cid, s in self.sessions.items():
                if cid != self.current_case_id and not s.dirty:
                    self.undo_group.removeStack(s.undo)
                    del self.sessions[cid]
                    break
            else:
                return

    def _on_stack_changed(self, session: CaseSession) -> None:
        # stacks may outlive the window's widgets while it is torn down
        if shiboken6.isValid(session.undo) and shiboken6.isValid(self.pair):
            self.editor.stack_changed(session)

    def _on_clean_changed(self, _clean: bool) -> None:
        if shiboken6.isValid(self.case_label):  # stacks may outlive the labels while the window is torn down
            self._update_case_label()

    def current_session(self) -> CaseSession | None:
        return self.sessions.get(self.current_case_id) if self.current_case_id else None

    def _update_case_label(self) -> None:
        s = self.current_session()
        if s is None or self.ws is None:
            self.case_label.setText("")
            return
        case = self.ws.case(s.case_id)
        src = {"revision": f"revision {s.base_rev}", "model": f"model {s.model_id}", "empty": "no mask yet"}[s.mask_source]
        dirty = " · unsaved changes" if s.dirty else ""
        self.case_label.setText(f"{s.case_id} · {STATUS_LABELS.get(case.status, case.status)} · showing {src}{dirty}")

    def next_case(self) -> None:
        self._step(+1)

    def previous_case(self) -> None:
        self._step(-1)

    def _step(self, delta: int) -> None:
        n = self.worklist_proxy.rowCount()
        if n == 0:
            return
        row = self.worklist.currentIndex().row()
        self._select_proxy_row(max(0, min(n - 1, row + delta)))

    # ================================================================== predictions
    def request_prediction(self) -> None:
        if self.worker is None or self.current_case_id is None:
            return
        self.prediction_errors.pop(self.current_case_id, None)
        self.current_request = self.worker.request(self.current_case_id)
        self._update_prefetch()

    def _update_prefetch(self) -> None:
        """Have the worker predict the next cases in worklist order while the clinician works on this one."""
        if self.worker is None:
            return
        row = self.worklist.currentIndex().row()
        end = min(self.worklist_proxy.rowCount(), row + 1 + PREFETCH_DEPTH)
        ids = [self.worklist_model.case_at(self.worklist_proxy.mapToSource(self.worklist_proxy.index(r, 0)).row()).id
               for r in range(row + 1, end)] if row >= 0 else []
        self.worker.set_prefetch(ids)

    def _on_prefetched(self, case_id: str) -> None:
        if self.ws is not None:  # a prefetched "new" case is now "predicted"
            self.worklist_model.update_case(self.ws.case(case_id))

    def _on_prediction(self, result: PredictionResult) -> None:
        if result.request_id and result.request_id != self.current_request:
            return  # superseded: the clinician has moved on
        session = self.sessions.get(result.case_id)
        if session is None:
            return
        session.prob = result.prob
        self.prediction_errors.pop(result.case_id, None)
        if session.mask_source in ("empty", "model") and session.undo.count() == 0:
            session.mask[...] = result.mask.astype(np.uint8)
            session.mask_source = "model"
            session.model_id = result.model_id
        elif session.model_id is None:
            session.model_id = result.model_id
        if result.case_id == self.current_case_id and self.pair.overlay is not None:
            self.pair.overlay.set_data(session.mask, session.prob)
            self.last_prediction_ms = dict(result.ms)
            origin = "cache" if result.from_cache else f"{result.ms.get('total', 0):.0f} ms"
            self.statusBar().showMessage(f"Prediction by {result.model_id} ({origin})", 5000)
            self._update_case_label()
            self.predictionShown.emit(result.case_id)
        if self.ws is not None:
            self.worklist_model.update_case(self.ws.case(result.case_id))

    def _on_prediction_failed(self, request_id: int, case_id: str, message: str) -> None:
        if request_id and request_id == self.click_request:
            message = message.replace("Prediction failed", "Click prediction failed", 1)
            self.pair.show_error(message)
            self.statusBar().showMessage(message, 10000)
            self.predictionFailed.emit(case_id, message)
            return
        if request_id and request_id != self.current_request:
            return
        if case_id:
            self.prediction_errors[case_id] = message
        self.pair.show_error(message)
        self.statusBar().showMessage(message, 10000)
        self.predictionFailed.emit(case_id, message)

    def _on_device_ready(self, reason: str, model_id: str) -> None:
        self.device_label.setText(reason)
        self.device_label_panel.setText(f"Device: {reason}")
        self.model_status_label.setText(f"Model: {model_id}")
        self.model_label.setText(f"Active model: {model_id}")

    # ================================================================== click to correct
    def _set_click_model(self, model_id: str, interactive: bool) -> None:
        """Enable the click tool for a model that takes clicks; otherwise disable it and say why
        (its tooltip, the Model panel, the status bar)."""
        known = self.click_model
        self.click_model = (model_id, interactive)
        act = self.tool_actions[CLICK]
        key = TOOL_SHORTCUTS[CLICK]
        act.setEnabled(interactive)
        self.click_off_shortcut.setEnabled(not interactive)
        self.editor.set_click_available(interactive)
        if interactive:
            act.setToolTip(f"{TOOL_LABELS[CLICK]} ({key}): left click = tumour, right or Shift+click = not "
                           "tumour; the model redraws the mask after each click")
            self.click_status = ""
        else:
            self.click_status = (f"Click to correct ({key}) is not available: model {model_id} was not trained "
                                 "with clicks. Activate a model that was (Model ▸ Model versions).")
            act.setToolTip(self.click_status)
            if known != self.click_model:
                self.statusBar().showMessage(self.click_status, 10000)
        self.model_label.setText(f"Active model: {model_id}" + ("" if interactive else
                                 "\nClick to correct: not available with this model"))
        self.model_label.setToolTip(self.click_status)
        self.click_label.setToolTip(self.click_status)
        self.click_label.setVisible(not interactive)

    def _on_interactive_known(self, model_id: str, interactive: bool, path: str) -> None:
        """The loaded model's own word on clicks, unless another model was activated meanwhile."""
        if self.worker is not None and path == str(self.worker.model_path):
            self._set_click_model(model_id, interactive)

    def _request_clicks(self, session: CaseSession) -> None:
        """The editor's newest click state needs its mask: ask the inference thread."""
        if self.worker is None:
            return
        self.click_request = self.worker.request_clicks(session.case_id, list(session.clicks),
                                                        session.mask.astype(bool))

    def _on_click_result(self, result: ClickResult) -> None:
        if result.request_id != self.click_request:
            return  # a newer click state was asked for
        session = self.sessions.get(result.case_id)
        if session is None or not self.editor.apply_click_result(session, result.mask, result.model_id):
            return
        if session.case_id != self.current_case_id:
            self._save_session(session, "clicks")  # the clinician moved on before it arrived
            return
        self.pair.show_error(None)
        self.statusBar().showMessage(f"Click {len(session.clicks)}: mask redrawn by {result.model_id} "
                                     f"({result.ms.get('total', 0):.0f} ms)", 5000)
        self.clickShown.emit(result.case_id)

    def _on_clicks_changed(self, case_id: str) -> None:
        s = self.sessions.get(case_id)
        if s is not None and case_id == self.current_case_id:
            self.pair.set_click_markers(marker_points(s.clicks))

    def _autosave(self) -> None:
        """Autosave, unless a click's prediction is on its way: its mask is what the clinician wants kept."""
        if self.editor.click_pending(self.current_session()):
            self.autosave_timer.start()
            return
        self.save_current("autosave")

    def preannotate_all(self) -> None:
        if self.worker is None or self.ws is None:
            return
        ids = [c.id for c in self.ws.cases() if c.status != "excluded"]
        self.batch_progress.setRange(0, len(ids))
        self.batch_progress.setValue(0)
        self.batch_progress.show()
        self.batch_cancel.show()
        self.worker.start_batch(ids)

    def _cancel_batch(self) -> None:
        if self.worker is not None:
            self.worker.cancel_batch()

    def _on_batch_progress(self, done: int, total: int) -> None:
        self.batch_progress.setMaximum(total)
        self.batch_progress.setValue(done)

    def _on_batch_finished(self, done: int, cancelled: bool) -> None:
        self.batch_progress.hide()
        self.batch_cancel.hide()
        self.statusBar().showMessage(f"Pre-annotation {'cancelled' if cancelled else 'finished'}: {done} cases", 8000)
        if self.ws is not None:
            self.reload_worklist()

    def use_model_prediction(self) -> None:
        s = self.current_session()
        if s is None or s.prob is None:
            self.statusBar().showMessage("No prediction for this case yet", 4000)
            return
        from model.postprocess import postprocess_mask

        self.editor.replace_mask(postprocess_mask(s.prob), "Use model prediction")

    # ================================================================== editing, saving
    def _on_mask_edited(self, case_id: str) -> None:
        s = self.sessions.get(case_id)
        if s is None or self.ws is None:
            return
        if s.dirty:
            self.autosave_timer.start()
            try:
                recovery.write_entry(self.ws.root, case_id, s.mask, s.base_rev, s.model_id, self.author)
                s.journaled = True
            except OSError as exc:
                s.journaled = False
                self.pair.show_error(f"Could not write the recovery journal ({exc.strerror or exc}): these edits are "
                                     "only in memory until they are saved.")
            case = self.ws.case(case_id)
            if case.status != "in_progress" and not self.ws.readonly:
                try:
                    self.ws.set_status(case_id, "in_progress", author=self.author)
                    self.worklist_model.update_case(self.ws.case(case_id))
                except WorkspaceError as exc:
                    self.pair.show_error(str(exc))
        else:
            try:
                recovery.clear_entry(self.ws.root, case_id)
            except OSError:
                pass
        self._update_case_label()

    def save_current(self, reason: str = "manual") -> Any:
        """Save the current case's unsaved edits as a new human revision (never overwrites)."""
        s = self.current_session()
        if s is None or self.ws is None or not s.dirty:
            return None
        return self._save_session(s, reason)

    def _save_session(self, s: CaseSession, reason: str, status: str = "corrected",
                      status_reason: str | None = None) -> Any:
        assert self.ws is not None
        self.autosave_timer.stop()
        provenance = self.editor.click_provenance(s)
        note = f"{reason} · {provenance['summary']}" if provenance else reason
        try:
            rev = self._add_on_base(s, "human", note, parent_rev=s.base_rev, reference_prob=s.prob,
                                    provenance=provenance)
            if rev is None:
                return None
            self.ws.set_status(s.case_id, status, reason=status_reason, author=self.author)
        except Exception as exc:  # noqa: BLE001 - disk full, read-only...: the journal keeps the work
            where = ("Your edits are kept in the recovery journal and offered again at the next start."
                     if s.journaled else
                     "Your edits are only in memory: keep ADF Viewer open, free disk space or make the "
                     "workspace writable, then press Ctrl+S.")
            msg = f"Could not save {s.case_id}: {exc}. {where}"
            self.pair.show_error(msg)
            self.statusBar().showMessage(msg, 15000)
            return None
        s.base_rev = rev.rev
        s.mask_source = "revision"
        s.saved_index = s.undo.index()
        s.undo.setClean()
        recovery.clear_entry(self.ws.root, s.case_id)
        self.worklist_model.update_case(self.ws.case(s.case_id))
        if s.case_id == self.current_case_id:
            self._refresh_history()
            self._update_case_label()
        self.statusBar().showMessage(f"Saved {s.case_id} as revision {rev.rev} ({reason})", 4000)
        self.saved.emit(s.case_id, rev.rev)
        return rev

    def _add_on_base(self, s: CaseSession, source: str, note: str, **kw: Any) -> Any:
        """Save the session's mask only on top of the revision its edits started from; when someone
        saved a newer one meanwhile, ask (viewer/save_conflict.py). None: not saved."""
        assert self.ws is not None
        expected = s.base_rev
        while True:
            try:
                return self.ws.add_revision(s.case_id, s.mask.astype(bool), source=source, author=self.author,
                                            model_id=s.model_id, note=note, expected_latest=expected, **kw)
            except RevisionConflict as conflict:
                if save_conflict.resolve(self, s, conflict) != save_conflict.MINE:
                    return None
                expected = conflict.latest.rev
                note = f"{note}; saved over revision {expected} by {conflict.latest.author}"

    def accept_current(self) -> None:
        """Approve the mask on screen (model's or corrected), save it, go to the next case to review.

        Refused, with a status-bar message, while there is nothing to accept: no revision, no edit and
        no prediction yet (pending or failed). Approving an empty mask then would record "no tumour"
        that nobody decided; that is its own action, approve_tumour_free.
        """
        if self.editor.has_open_shape():
            self.editor.close_shape()
            return
        s = self.current_session()
        if s is None or self.ws is None:
            return
        if self.editor.click_pending(s):
            self.statusBar().showMessage(f"The last click on {s.case_id} is still being predicted: accept once the "
                                         "mask has been redrawn.", 6000)
            return
        if not s.dirty and s.mask_source == "empty":
            failed = self.prediction_errors.get(s.case_id)
            why = failed.rstrip(".") if failed else "the model's prediction has not arrived yet"
            self.statusBar().showMessage(
                f"Nothing to accept for {s.case_id}: {why}. Outline the tumour, wait for the prediction, or use "
                "Case ▸ Approve as tumour-free.", 10000)
            return
        if s.dirty:
            if self._save_session(s, "accept", status="approved") is None:
                return
        else:
            try:
                if s.mask_source == "model":
                    rev = self._add_on_base(s, "model", "accepted as predicted")
                    if rev is None:
                        return
                    s.base_rev, s.mask_source = rev.rev, "revision"
                self.ws.set_status(s.case_id, "approved", author=self.author)
            except Exception as exc:  # noqa: BLE001
                self.pair.show_error(f"Could not approve {s.case_id}: {exc}")
                return
        self.worklist_model.update_case(self.ws.case(s.case_id))
        self._refresh_history()
        self._goto_next_unreviewed()

    def approve_tumour_free(self) -> None:
        """Case ▸ Approve as tumour-free: the clinician's explicit "no tumour" decision.

        Saves an empty mask as a new human revision noted TUMOUR_FREE_NOTE (the status event carries
        the same reason), whatever is on screen; an outline on screen is cleared as one undoable
        edit first and stays in the history. Then goes to the next case to review.
        """
        if self.editor.has_open_shape():
            self.editor.cancel_shape()
        s = self.current_session()
        if s is None or self.ws is None:
            return
        if s.mask.any():
            self.editor.replace_mask(np.zeros(s.mask.shape, bool), "Approve as tumour-free")
        if s.dirty:
            rev = self._save_session(s, TUMOUR_FREE_NOTE, status="approved", status_reason=TUMOUR_FREE_NOTE)
            if rev is None:
                return
        else:
            try:
                rev = self._add_on_base(s, "human", TUMOUR_FREE_NOTE, parent_rev=s.base_rev,
                                        reference_prob=s.prob)  # s.mask is empty here
                if rev is None:
                    return
                s.base_rev, s.mask_source = rev.rev, "revision"
                self.ws.set_status(s.case_id, "approved", reason=TUMOUR_FREE_NOTE, author=self.author)
            except Exception as exc:  # noqa: BLE001
                self.pair.show_error(f"Could not approve {s.case_id}: {exc}")
                return
            recovery.clear_entry(self.ws.root, s.case_id)
        self.worklist_model.update_case(self.ws.case(s.case_id))
        self._refresh_history()
        self.statusBar().showMessage(f"{s.case_id} approved as tumour-free (revision {rev.rev})", 6000)
        self._goto_next_unreviewed()

    def _goto_next_unreviewed(self) -> None:
        n = self.worklist_proxy.rowCount()
        start = self.worklist.currentIndex().row()
        for k in range(1, n + 1):
            row = (start + k) % n
            case = self.worklist_model.case_at(self.worklist_proxy.mapToSource(self.worklist_proxy.index(row, 0)).row())
            if case.status in UNREVIEWED and case.id != self.current_case_id:
                self._select_proxy_row(row)
                return
        self.statusBar().showMessage("Every case is reviewed.", 6000)

    def exclude_current_dialog(self) -> None:
        if self.current_case_id is None:
            return
        reason, ok = QInputDialog.getText(self, "Exclude case", "Why is this case excluded? (e.g. blurred, no lesion visible)")
        if ok:
            self.exclude_current(reason.strip() or "no reason given")

    def exclude_current(self, reason: str) -> None:
        s = self.current_session()
        if s is None or self.ws is None:
            return
        self.save_current("before exclude")
        self.ws.set_status(s.case_id, "excluded", reason=reason, author=self.author)
        self.worklist_model.update_case(self.ws.case(s.case_id))
        self._goto_next_unreviewed()

    def _refresh_history(self) -> None:
        self.history_table.setRowCount(0)
        if self.ws is None or self.current_case_id is None:
            return
        revs = list(reversed(self.ws.history(self.current_case_id)))
        self.history_table.setRowCount(len(revs))
        for i, r in enumerate(revs):
            dice = "" if r.dice_vs_model is None else f"{r.dice_vs_model:.3f}"
            values = [str(r.rev), r.source, r.author or "", (r.created_at or "")[:19].replace("T", " "),
                      str(r.area), dice]
            for j, val in enumerate(values):
                item = QTableWidgetItem(val)
                item.setData(Qt.ItemDataRole.UserRole, r.rev)
                if r.note:
                    item.setToolTip(r.note)  # e.g. "autosave · 3 clicks (2 +, 1 −)"
                self.history_table.setItem(i, j, item)
        self.history_table.resizeColumnsToContents()

    def restore_selected_revision(self) -> None:
        """Bring an older revision back as a *new* revision (history is never rewritten)."""
        s = self.current_session()
        row = self.history_table.currentRow()
        if s is None or self.ws is None or row < 0:
            return
        rev_no = self.history_table.item(row, 0).data(Qt.ItemDataRole.UserRole)
        rev = next(r for r in self.ws.history(s.case_id) if r.rev == rev_no)
        mask = self.ws.load_mask(rev)
        self.editor.replace_mask(mask, f"Restore revision {rev_no}")
        self._save_session(s, f"restored from revision {rev_no}")

    # ================================================================== recovery
    def _offer_recovery(self) -> None:
        if self.ws is None:
            return
        entries = recovery.pending_entries(self.ws.root)
        if not entries:
            return
        names = ", ".join(e.case_id for e in entries[:8]) + ("…" if len(entries) > 8 else "")
        box = QMessageBox(QMessageBox.Icon.Question, "Unsaved edits found",
                          f"{len(entries)} case(s) have edits that were not saved when {APP_NAME} last "
                          f"closed: {names}.\n\nRestore them as new revisions?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setDefaultButton(QMessageBox.StandardButton.Yes)
        if self.settings.value("recovery/auto", "") == "restore" or box.exec() == QMessageBox.StandardButton.Yes:
            self.restore_recovery(entries)

    def restore_recovery(self, entries: list[recovery.JournalEntry]) -> int:
        """Save every journal entry as a new human revision; returns how many were restored."""
        assert self.ws is not None
        restored = 0
        for e in entries:
            try:
                self.ws.add_revision(e.case_id, e.mask, source="human", author=e.author or self.author,
                                     model_id=e.model_id, parent_rev=e.base_rev, note="recovered after a crash")
                self.ws.set_status(e.case_id, "corrected", author=e.author or self.author)
                recovery.clear_entry(self.ws.root, e.case_id)
                restored += 1
            except Exception as exc:  # noqa: BLE001
                self._error_dialog("Recovery failed", f"{e.case_id}: {exc}")
        self.reload_worklist()
        return restored

    # ================================================================== overlay, layout
    def _overlay_style(self) -> mask_ops.OverlayStyle:
        return mask_ops.OverlayStyle(mode=self.overlay_mode.currentData(), opacity=self.opacity_slider.value() / 100.0,
                                     visible=self.overlay_visible.isChecked())

    def _on_overlay_style(self, *_args: Any) -> None:
        if self.pair.overlay is not None:
            self.pair.overlay.style = self._overlay_style()
            self.pair.overlay.refresh(None)

    def _cycle_overlay_mode(self) -> None:
        self.overlay_mode.setCurrentIndex((self.overlay_mode.currentIndex() + 1) % self.overlay_mode.count())

    def set_layout_mode(self, mode: str) -> None:
        self.pair.set_layout_mode(mode)
        if mode in getattr(self, "layout_actions", {}):
            self.layout_actions[mode].setChecked(True)

    # ================================================================== dialogs
    def show_about(self) -> None:
        from viewer.dialogs import about_text

        QMessageBox.about(self, f"About {APP_NAME}", about_text(self.ws))

    def show_shortcuts(self) -> None:
        from viewer.dialogs import ShortcutsDialog

        ShortcutsDialog(self).exec()

    def show_agreement_summary(self) -> None:
        from viewer.dialogs import AgreementDialog

        if self.ws is not None:
            dlg = AgreementDialog(self.ws.cases(), self)
            dlg.caseChosen.connect(self._select_case_in_worklist_and_open)
            dlg.exec()

    def _select_case_in_worklist_and_open(self, case_id: str) -> None:
        self.open_case(case_id)

    def new_workspace_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose an empty folder for the new workspace")
        if path:
            from training.store import Workspace, WorkspaceError

            try:
                Workspace.open(Path(path), create=True).close()
            except (WorkspaceError, OSError) as exc:
                self._error_dialog("Cannot create workspace", str(exc))
                return
            self.open_workspace(Path(path))

    def open_workspace_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a workspace folder")
        if path:
            self.open_workspace(Path(path))

    def import_dialog(self) -> None:
        from viewer.dialogs import ImportDialog

        if self.ws is None:
            return
        self.save_current("before import")
        dlg = ImportDialog(self.ws.root, self)
        dlg.exec()
        self.reload_worklist()

    def import_video_dialog(self) -> None:
        from viewer.video_import_dialog import VideoImportDialog

        if self.ws is None:
            return
        self.save_current("before import")
        VideoImportDialog(self.ws.root, self, self.settings).exec()
        self.reload_worklist()

    def export_dialog(self) -> None:
        from viewer.export_dialog import ExportDialog

        if self.ws is None:
            return
        self.save_current("before export")
        ExportDialog(self.ws.root, self).exec()

    def train_dialog(self) -> None:
        from viewer.train_dialog import TrainDialog

        if self.ws is None:
            return
        self.save_current("before training")
        dlg = TrainDialog(self.ws.root, self.ws.models(), self)
        dlg.finishedWith.connect(self._on_training_finished)
        dlg.activateRequested.connect(self.activate_model)
        dlg.exec()

    def _on_training_finished(self, result: dict | None) -> None:
        """The trainer registered a new version; predict with it only if the trainer activated it
        (it beat its base model on the held-out cases). Otherwise the dialog offers "Activate anyway"."""
        if result and result.get("registered") and result.get("activated") and self.ws is not None:
            self.activate_model(str(result["registered"]))

    def models_dialog(self) -> None:
        from viewer.models_dialog import ModelsDialog

        if self.ws is None:
            return
        dlg = ModelsDialog(self.ws.models(), self, workspace_root=None if self.ws.readonly else self.ws.root)
        dlg.activated.connect(self.activate_model)
        dlg.exec()

    def activate_model(self, model_id: str) -> None:
        """Make a model version active; predictions follow lazily, human revisions stay as they are."""
        assert self.ws is not None
        self.ws.set_active_model(model_id)
        path = self.ws.active_model_path()
        if self.worker is not None:
            self.worker.set_model(path)
        self.model_status_label.setText(f"Model: {model_id}")
        self._set_click_model(model_id, model_file_is_interactive(path))
        for s in self.sessions.values():
            s.prob = None
            if s.mask_source == "model" and not s.dirty and s.undo.count() == 0:
                s.mask[...] = 0
                s.mask_source = "empty"
        if self.current_case_id is not None and self.pair.overlay is not None:
            s = self.current_session()
            self.pair.overlay.set_data(s.mask, None)
            self.request_prediction()
        self.statusBar().showMessage(f"Model {model_id} is now active", 6000)

    def _error_dialog(self, title: str, text: str) -> None:
        if QApplication.platformName() == "offscreen":
            self.statusBar().showMessage(f"{title}: {text}", 15000)
            self.pair.show_error(f"{title}: {text}")
            return
        QMessageBox.warning(self, title, text)

    # ================================================================== closing
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.save_current("close")
        self._save_settings()
        self._close_workspace()
        event.accept()


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return "unknown"


def now_ms() -> float:
    return time.perf_counter() * 1000.0
