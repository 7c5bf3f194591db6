"""The main window: worklist, paired view, tools/model panel, history, status bar.

This file composes the window from parts that each have their own module:

- viewer/docks.py: the panels (worklist, tools and model, history) and the status bar's labels;
- viewer/menus.py: what each action of viewer/actions.py does, its QAction and the menus;
- viewer/sessions.py: each open case's working mask and undo history;
- viewer/review.py: saving, accept, approve as tumour-free, exclude, restore, recovery journal
  (with viewer/save_conflict.py when someone saved the same case meanwhile);
- viewer/predictions.py: the inference worker's requests and answers (prefetch, clicks, batch);
- viewer/dialog_launchers.py: opening the dialogs;
- viewer/window_settings.py: what the window remembers between starts.

Here: the wiring, opening a workspace and a case, the overlay style. The window keeps the names
of its widgets and the old entry points (tests, the self-test and the benchmarks use them).
Array work lives in viewer.mask_ops, storage in training.store, predictions in the worker thread.
"""
from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import numpy as np
import shiboken6
from PySide6.QtCore import QModelIndex, QSettings, Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QMainWindow

from training import recovery
from training.store import RevisionConflict, WorkspaceError
from viewer import dialog_launchers as dialogs
from viewer import i18n, menus, save_conflict, window_settings
from viewer.actions import OPERATIONS, TOOL_SHORTCUTS
from viewer.app import APP_NAME
from viewer.clicks import marker_points
from viewer.docks import WORKLIST_WIDTH, HistoryPanel, StatusWidgets, ToolsPanel, WorklistPanel, add_dock
from viewer.inference import InferenceWorker, PredictorFactory
from viewer.pair_view import LAYOUTS, PairView
from viewer.predictions import Predictions, model_for
from viewer.review import ReviewController
from viewer.sessions import CaseSessions
from viewer.tools import CLICK, NAVIGATE, CaseSession, EditController
from viewer.worklist import status_label

DEFAULT_SIZE = (1600, 1000)  # first start (later starts restore the last geometry)


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
        self.current_case_id: str | None = None
        self.image_rgb: np.ndarray | None = None
        self.setWindowTitle(APP_NAME)
        self.resize(DEFAULT_SIZE[0], DEFAULT_SIZE[1])

        self.pair = PairView(self)
        self.setCentralWidget(self.pair)
        self.editor = EditController(self.pair)
        self.case_sessions = CaseSessions(self, self._on_stack_changed, self._on_clean_changed)
        self.sessions, self.undo_group = self.case_sessions.by_id, self.case_sessions.undo_group
        self.review = ReviewController(self, self.editor, autosave_ms, timer_parent=self)
        self.autosave_timer = self.review.autosave_timer
        self.predictions = Predictions(self)
        self.editor.maskEdited.connect(self._on_mask_edited)
        self.editor.clicksChanged.connect(self.predictions.on_clicks_changed)
        self.editor.clickRequested.connect(self.predictions.request_clicks)

        self._create_actions()
        self._build_docks()
        self._build_status_bar()
        self.model_menu = menus.build_menus(self, self.qactions,
                                            (self.worklist_dock, self.tools_dock, self.history_dock))["Model"]
        window_settings.restore(self)

    # ================================================================== construction
    def _create_actions(self) -> None:
        self.qactions, groups = menus.create_actions(self, menus.action_slots(self), self.undo_group)
        self.tool_group = groups["tools"]
        self.tool_actions = {t: self.qactions[f"tool.{t}"] for t in TOOL_SHORTCUTS}
        self.layout_actions = {m: self.qactions[f"layout.{m}"] for m in LAYOUTS}
        self.layout_actions["side_by_side"].setChecked(True)
        self.undo_action, self.redo_action = self.qactions["undo"], self.qactions["redo"]
        # C while the click tool is disabled says why (a disabled action's key would do nothing)
        self.click_off_shortcut = QShortcut(QKeySequence(TOOL_SHORTCUTS[CLICK]), self)
        self.click_off_shortcut.setEnabled(False)
        self.click_off_shortcut.activated.connect(lambda: self.statusBar().showMessage(self.click_status, 10000))
        self.export_action = self.qactions["export"]

    def _build_docks(self) -> None:
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        # each panel's widgets are also reached by name on the window (the panels own them)
        wl = self.worklist_panel = WorklistPanel()
        self.worklist_dock = add_dock(self, self.tr("Worklist"), "worklistDock", wl, left, min_width=300)
        self.resizeDocks([self.worklist_dock], [WORKLIST_WIDTH], Qt.Orientation.Horizontal)
        self.worklist, self.worklist_model, self.worklist_proxy = wl.table, wl.model, wl.proxy
        self.search_edit, self.status_filter = wl.search_edit, wl.status_filter
        wl.table.selectionModel().currentRowChanged.connect(self._on_worklist_row)

        tp = self.tools_panel = ToolsPanel(self.tool_actions, self.editor.radius)
        self.radius_spin, self.operation_buttons, self.use_model_btn = tp.radius_spin, tp.operation_buttons, tp.use_model_btn
        self.overlay_visible, self.overlay_mode, self.opacity_slider = tp.overlay_visible, tp.overlay_mode, tp.opacity_slider
        self.model_label, self.device_label_panel = tp.model_label, tp.device_label_panel
        self.batch_progress, self.batch_cancel = tp.batch_progress, tp.batch_cancel
        self.accept_btn, self.tumour_free_btn, self.exclude_btn = tp.accept_btn, tp.tumour_free_btn, tp.exclude_btn
        self.tool_actions[NAVIGATE].setChecked(True)
        self.editor.toolChanged.connect(lambda t: self.tool_actions[t].setChecked(True))
        tp.radius_spin.valueChanged.connect(self.editor.set_radius)
        self.editor.radiusChanged.connect(tp.radius_spin.setValue)
        for name, _label, _key, kwargs in OPERATIONS:
            tp.operation_buttons[name].clicked.connect(
                lambda _c=False, n=name, k=kwargs: self.editor.apply_operation(n, **k))
        tp.use_model_btn.clicked.connect(self.use_model_prediction)
        tp.overlay_visible.toggled.connect(self._on_overlay_style)
        tp.overlay_mode.currentIndexChanged.connect(self._on_overlay_style)
        tp.opacity_slider.valueChanged.connect(self._on_overlay_style)
        tp.predict_btn.clicked.connect(self.request_prediction)
        tp.preannotate_btn.clicked.connect(self.preannotate_all)
        tp.batch_cancel.clicked.connect(self.predictions.cancel_batch)
        tp.accept_btn.clicked.connect(self.accept_current)
        tp.tumour_free_btn.clicked.connect(self.approve_tumour_free)
        tp.exclude_btn.clicked.connect(self.exclude_current_dialog)
        self.tools_dock = add_dock(self, self.tr("Tools and model"), "toolsDock", tp, right)

        hp = self.history_panel = HistoryPanel()
        self.history_table = hp.table
        hp.restore_btn.clicked.connect(self.restore_selected_revision)
        # under the worklist (the tools panel on the right is as tall as the default window allows)
        self.history_dock = add_dock(self, self.tr("History"), "historyDock", hp, left)

    def _build_status_bar(self) -> None:
        st = StatusWidgets(self.statusBar())
        self.case_label, self.busy, self.click_label = st.case_label, st.busy, st.click_label
        self.model_status_label, self.device_label = st.model_status_label, st.device_label

    # ================================================================== workspace
    def open_workspace(self, path: Path) -> bool:
        """Open a workspace (closing the current one, saving first). False + message on failure."""
        from training.store import Workspace

        self.save_current("workspace switch")
        try:
            ws = Workspace.open(Path(path))
        except (WorkspaceError, OSError) as exc:
            self.error_dialog(self.tr("Cannot open workspace"), i18n.error_text(exc))
            return False
        self._close_workspace()
        self.ws = ws
        self.setWindowTitle(f"{APP_NAME} — {ws.root.name}" + (self.tr(" (read-only)") if ws.readonly else ""))
        self.settings.setValue("last_workspace", str(ws.root))
        model_path, model_problem = model_for(ws)
        self.predictions.start(model_path)
        self.reload_worklist()
        if not ws.readonly:
            self.review.offer_recovery()
        if self.worklist_proxy.rowCount() > 0:
            self.worklist_panel.select_row(self.worklist_panel.first_unreviewed_row())
        if ws.readonly:
            self.pair.show_error(self.tr("{path} is read-only: you can look and predict, but nothing can be saved "
                                         "here.").format(path=ws.root))
        elif model_problem:
            self.pair.show_error(model_problem)
        return True

    def _close_workspace(self) -> None:
        self.predictions.stop()
        self.case_sessions.clear()
        self.current_case_id = None
        if self.ws is not None:
            self.ws.close()
            self.ws = None

    def reload_worklist(self) -> None:
        assert self.ws is not None
        current = self.current_case_id
        self.worklist_panel.set_cases(self.ws.cases(), self.ws.video_sources())
        if current is not None:
            self.worklist_panel.show_case(current)

    # ================================================================== cases
    def _on_worklist_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            case_id = self.worklist_panel.case_of(current).id
            if case_id != self.current_case_id:
                self.open_case(case_id)

    def _select_proxy_row(self, row: int) -> None:
        self.worklist_panel.select_row(row)

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
            self.pair.show_error(self.tr("Cannot show case {case}: {error}").format(case=case_id,
                                                                                   error=i18n.error_text(exc)))
            return
        self.pair.show_error(None)
        self.current_case_id = case_id
        self.image_rgb = wli
        session = self.case_sessions.session_for(self.ws, case, wli.shape[:2], self.current_case_id)
        if nbi is None:
            label = self.tr("No NBI for this case — WLI-only prediction")
        elif case.nbi_synthetic:
            label = self.tr("NBI — SYNTHETIC (generated from WLI)")
        else:
            label = self.tr("NBI (registered to WLI)") + (self.tr(" — registration quality low")
                                                           if case.reg_quality == "low" else "")
        self.pair.set_case(wli, nbi, case.homography if nbi is not None else None, label)
        assert self.pair.overlay is not None
        self.pair.overlay.style = self.tools_panel.overlay_style()
        self.pair.overlay.set_data(session.mask, session.prob)
        self.pair.set_click_markers(marker_points(session.clicks))
        self.editor.set_session(session, wli)
        self.undo_group.setActiveStack(session.undo)
        self.worklist_panel.show_case(case_id)
        self._refresh_history()
        self._update_case_label()
        self.caseOpened.emit(case_id)
        self.request_prediction()

    def current_session(self) -> CaseSession | None:
        return self.case_sessions.get(self.current_case_id)

    def _on_stack_changed(self, session: CaseSession) -> None:
        # stacks may outlive the window's widgets while it is torn down
        if shiboken6.isValid(session.undo) and shiboken6.isValid(self.pair):
            self.editor.stack_changed(session)

    def _on_clean_changed(self, _clean: bool) -> None:
        if shiboken6.isValid(self.case_label):  # stacks may outlive the labels while the window is torn down
            self._update_case_label()

    def _on_mask_edited(self, case_id: str) -> None:
        s = self.sessions.get(case_id)
        if s is not None and self.ws is not None:
            self.review.mask_edited(s)
            self._update_case_label()

    def _update_case_label(self) -> None:
        s = self.current_session()
        if s is None or self.ws is None:
            self.case_label.setText("")
            return
        case = self.ws.case(s.case_id)
        src = {"revision": self.tr("showing revision {rev}").format(rev=s.base_rev),
               "model": self.tr("showing model {model}").format(model=s.model_id),
               "empty": self.tr("no mask yet")}[s.mask_source]
        dirty = self.tr(" · unsaved changes") if s.dirty else ""
        self.case_label.setText(f"{s.case_id} · {status_label(case.status)} · {src}{dirty}")

    def _refresh_history(self) -> None:
        if self.ws is None or self.current_case_id is None:
            self.history_panel.clear()
        else:
            self.history_panel.show_revisions(self.ws.history(self.current_case_id))

    def next_case(self) -> None:
        self.worklist_panel.step(+1)

    def previous_case(self) -> None:
        self.worklist_panel.step(-1)

    # ================================================================== review (viewer/review.py)
    def save_current(self, reason: str = "manual") -> Any:
        """Save the current case's unsaved edits as a new human revision (never overwrites)."""
        return self.review.save_current(reason)

    def accept_current(self) -> None:
        self.review.accept()

    def approve_tumour_free(self) -> None:
        self.review.approve_tumour_free()

    def exclude_current_dialog(self) -> None:
        if self.current_case_id is not None and (reason := dialogs.exclude_reason(self)) is not None:
            self.exclude_current(reason)

    def exclude_current(self, reason: str) -> None:
        self.review.exclude(reason)

    def restore_selected_revision(self) -> None:
        rev_no = self.history_panel.selected_rev()
        if rev_no is not None:
            self.review.restore_revision(rev_no)

    def restore_recovery(self, entries: list[recovery.JournalEntry]) -> int:
        return self.review.restore_recovery(entries)

    # what the review controller asks of the window (viewer.review.ReviewUi)
    def show_error(self, text: str | None) -> None:
        self.pair.show_error(text)

    def show_message(self, text: str, ms: int) -> None:
        self.statusBar().showMessage(text, ms)

    def case_status_changed(self, case_id: str) -> None:
        self.worklist_model.update_case(self.ws.case(case_id))

    def case_saved(self, case_id: str) -> None:
        self.case_status_changed(case_id)
        if case_id == self.current_case_id:
            self._refresh_history()
            self._update_case_label()

    def revision_saved(self, case_id: str, rev: int) -> None:
        self.saved.emit(case_id, rev)

    def next_to_review(self) -> None:
        row = self.worklist_panel.next_unreviewed_row(self.current_case_id)
        if row is None:
            self.statusBar().showMessage(self.tr("Every case is reviewed."), 6000)
        else:
            self.worklist_panel.select_row(row)

    def resolve_conflict(self, session: CaseSession, conflict: RevisionConflict) -> str:
        return save_conflict.resolve(self, session, conflict)

    def prediction_error(self, case_id: str) -> str | None:
        return self.predictions.errors.get(case_id)

    def ask_restore_recovery(self, entries: list[recovery.JournalEntry]) -> bool:
        return dialogs.ask_restore_recovery(self, entries)

    def error_dialog(self, title: str, text: str) -> None:
        dialogs.error(self, title, text)

    # ================================================================== predictions (viewer/predictions.py)
    @property
    def worker(self) -> InferenceWorker | None:
        return self.predictions.worker

    @property
    def click_model(self) -> tuple[str, bool] | None:
        return self.predictions.click_model

    @property
    def click_status(self) -> str:
        return self.predictions.click_status

    def request_prediction(self) -> None:
        self.predictions.request()

    def preannotate_all(self) -> None:
        self.predictions.preannotate_all()

    def use_model_prediction(self) -> None:
        self.predictions.use_model_prediction()

    def activate_model(self, model_id: str) -> None:
        self.predictions.activate_model(model_id)

    # ================================================================== overlay, layout
    def _on_overlay_style(self, *_args: Any) -> None:
        if self.pair.overlay is not None:
            self.pair.overlay.style = self.tools_panel.overlay_style()
            self.pair.overlay.refresh(None)

    def set_layout_mode(self, mode: str) -> None:
        self.pair.set_layout_mode(mode)
        if mode in getattr(self, "layout_actions", {}):
            self.layout_actions[mode].setChecked(True)

    # ================================================================== dialogs (viewer/dialog_launchers.py)
    def export_dialog(self) -> None:
        dialogs.export(self)

    def train_dialog(self) -> None:
        dialogs.train(self)

    def _on_training_finished(self, result: dict | None) -> None:
        dialogs.training_finished(self, result)

    def models_dialog(self) -> None:
        dialogs.model_versions(self)

    # ================================================================== closing
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.save_current("close")
        window_settings.save(self)
        self._close_workspace()
        event.accept()


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return "unknown"
