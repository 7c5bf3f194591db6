"""The window's side of the inference worker (viewer/inference.py): which model it loads, what it is
asked (the case on screen, the next cases to prefetch, click states, "Pre-annotate all"), and what
its answers do on screen (overlay, status bar, labels, the click tool's availability).

Results carry their request id: one the clinician has moved on from is dropped. A prediction
fills the mask only while the case has no revision and no edit (a prediction is not a revision
until it is accepted); a click's result goes through the editor, which keeps it only while that
click is still the newest thing on the undo stack.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QCoreApplication

from training.store import WorkspaceError
from viewer import i18n
from viewer.actions import TOOL_SHORTCUTS
from viewer.clicks import marker_points, model_file_is_interactive
from viewer.inference import PREFETCH_DEPTH, ClickResult, InferenceWorker, PredictionResult
from viewer.tools import CLICK, TOOL_LABELS, CaseSession

if TYPE_CHECKING:
    from viewer.main_window import MainWindow


def model_for(ws: Any) -> tuple[Path | None, str | None]:
    """The model the worker loads for a workspace, and a problem to show when there is none.

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
        return None, QCoreApplication.translate(
            "Predictions", "No model is active in this workspace and the bundled model could not be added ({error}). "
            "Use Model ▸ Model versions ▸ Add model file…").format(error=i18n.error_text(exc))
    return ws.active_model_path(), None


class Predictions:
    """The inference worker of the open workspace and everything the window does with its answers."""

    def __init__(self, win: MainWindow) -> None:
        self.win = win
        self.worker: InferenceWorker | None = None
        self.current_request = 0          # id of the newest request for the case on screen
        self.errors: dict[str, str] = {}  # case id -> why its last prediction failed
        self.last_ms: dict[str, float] = {}
        self.click_status = ""            # why the click tool is off ("" when it is on)
        self.click_request = 0            # id of the newest click request (older results are stale)
        self.click_model: tuple[str, bool] | None = None  # (model id, takes clicks) once known

    # --- the worker ---------------------------------------------------------------------------------
    def start(self, model_path: Path | None) -> None:
        self.stop()
        win = self.win
        assert win.ws is not None
        name = model_path.stem if model_path else QCoreApplication.translate("Predictions", "none")
        win.model_status_label.setText(QCoreApplication.translate("Predictions", "Model: {model}").format(model=name))
        win.model_label.setText(QCoreApplication.translate("Predictions", "Active model: {model}").format(model=name))
        self.set_click_model(name, model_file_is_interactive(model_path))
        self.worker = worker = InferenceWorker(win.ws.root, model_path, win.device, win.predictor_factory)
        worker.resultReady.connect(self.on_prediction)
        worker.clickReady.connect(self.on_click_result)
        worker.interactiveKnown.connect(self.on_interactive_known)
        worker.failed.connect(self.on_failed)
        worker.deviceReady.connect(self.on_device_ready)
        worker.busyChanged.connect(win.busy.setVisible)
        worker.batchProgress.connect(self.on_batch_progress)
        worker.batchFinished.connect(self.on_batch_finished)
        worker.prefetched.connect(self.on_prefetched)
        worker.start()

    def stop(self) -> None:
        if self.worker is not None:
            if self.worker.stop():
                self.worker.deleteLater()
            self.worker = None

    def activate_model(self, model_id: str) -> None:
        """Make a model version active; predictions follow lazily, human revisions stay as they are."""
        win = self.win
        assert win.ws is not None
        win.ws.set_active_model(model_id)
        path = win.ws.active_model_path()
        if self.worker is not None:
            self.worker.set_model(path)
        win.model_status_label.setText(QCoreApplication.translate("Predictions", "Model: {model}").format(model=model_id))
        self.set_click_model(model_id, model_file_is_interactive(path))
        for s in win.sessions.values():
            s.prob = None
            if s.mask_source == "model" and not s.dirty and s.undo.count() == 0:
                s.mask[...] = 0
                s.mask_source = "empty"
        if win.current_case_id is not None and win.pair.overlay is not None:
            s = win.current_session()
            win.pair.overlay.set_data(s.mask, None)
            self.request()
        win.statusBar().showMessage(QCoreApplication.translate("Predictions", "Model {model} is now active").format(model=model_id), 6000)

    # --- the case on screen and the next ones -------------------------------------------------------
    def request(self) -> None:
        win = self.win
        if self.worker is None or win.current_case_id is None:
            return
        self.errors.pop(win.current_case_id, None)
        self.current_request = self.worker.request(win.current_case_id)
        self.update_prefetch()

    def update_prefetch(self) -> None:
        """Have the worker predict the next cases in worklist order while the clinician works on this one."""
        if self.worker is not None:
            self.worker.set_prefetch(self.win.worklist_panel.ids_after_current(PREFETCH_DEPTH))

    def on_prefetched(self, case_id: str) -> None:
        if self.win.ws is not None:  # a prefetched "new" case is now "predicted"
            self.win.worklist_model.update_case(self.win.ws.case(case_id))

    def on_prediction(self, result: PredictionResult) -> None:
        win = self.win
        if result.request_id and result.request_id != self.current_request:
            return  # superseded: the clinician has moved on
        session = win.sessions.get(result.case_id)
        if session is None:
            return
        session.prob = result.prob
        self.errors.pop(result.case_id, None)
        if session.mask_source in ("empty", "model") and session.undo.count() == 0:
            session.mask[...] = result.mask.astype(np.uint8)
            session.mask_source = "model"
            session.model_id = result.model_id
        elif session.model_id is None:
            session.model_id = result.model_id
        if result.case_id == win.current_case_id and win.pair.overlay is not None:
            win.pair.overlay.set_data(session.mask, session.prob)
            self.last_ms = dict(result.ms)
            origin = QCoreApplication.translate("Predictions", "cache") if result.from_cache else QCoreApplication.translate("Predictions", "{ms} ms").format(
                ms=i18n.integer(round(result.ms.get("total", 0))))
            win.statusBar().showMessage(QCoreApplication.translate("Predictions", "Prediction by {model} ({origin})").format(
                model=result.model_id, origin=origin), 5000)
            win._update_case_label()
            win.predictionShown.emit(result.case_id)
        if win.ws is not None:
            win.worklist_model.update_case(win.ws.case(result.case_id))

    def on_failed(self, request_id: int, case_id: str, message: str) -> None:
        win = self.win
        if request_id and request_id == self.click_request:
            message = message.replace(QCoreApplication.translate("Inference", "Prediction failed"), QCoreApplication.translate("Predictions", "Click prediction failed"), 1)
        elif request_id and request_id != self.current_request:
            return
        elif case_id:
            self.errors[case_id] = message
        win.pair.show_error(message)
        win.statusBar().showMessage(message, 10000)
        win.predictionFailed.emit(case_id, message)

    def on_device_ready(self, reason: str, model_id: str) -> None:
        win = self.win
        reason = i18n.device_text(reason)
        win.device_label.setText(reason)
        win.device_label_panel.setText(QCoreApplication.translate("Predictions", "Device: {device}").format(device=reason))
        win.model_status_label.setText(QCoreApplication.translate("Predictions", "Model: {model}").format(model=model_id))
        win.model_label.setText(QCoreApplication.translate("Predictions", "Active model: {model}").format(model=model_id))

    # --- click to correct ---------------------------------------------------------------------------
    def set_click_model(self, model_id: str, interactive: bool) -> None:
        """Enable the click tool for a model that takes clicks; otherwise disable it and say why
        (its tooltip, the Model panel, the status bar)."""
        win = self.win
        known = self.click_model
        self.click_model = (model_id, interactive)
        act = win.tool_actions[CLICK]
        key = TOOL_SHORTCUTS[CLICK]
        act.setEnabled(interactive)
        win.click_off_shortcut.setEnabled(not interactive)
        win.editor.set_click_available(interactive)
        if interactive:
            act.setToolTip(QCoreApplication.translate("Predictions", "{tool} ({key}): left click = tumour, right or Shift+click = not "
                             "tumour; the model redraws the mask after each click").format(
                tool=QCoreApplication.translate("Actions", TOOL_LABELS[CLICK]), key=key))
            self.click_status = ""
        else:
            self.click_status = QCoreApplication.translate("Predictions", "Click to correct ({key}) is not available: model {model} was not "
                                  "trained with clicks. Activate a model that was (Model ▸ Model versions).").format(
                key=key, model=model_id)
            act.setToolTip(self.click_status)
            if known != self.click_model:
                win.statusBar().showMessage(self.click_status, 10000)
        win.model_label.setText(QCoreApplication.translate("Predictions", "Active model: {model}").format(model=model_id) + (
            "" if interactive else "\n" + QCoreApplication.translate("Predictions", "Click to correct: not available with this model")))
        win.model_label.setToolTip(self.click_status)
        win.click_label.setToolTip(self.click_status)
        win.click_label.setVisible(not interactive)

    def on_interactive_known(self, model_id: str, interactive: bool, path: str) -> None:
        """The loaded model's own word on clicks, unless another model was activated meanwhile."""
        if self.worker is not None and path == str(self.worker.model_path):
            self.set_click_model(model_id, interactive)

    def request_clicks(self, session: CaseSession) -> None:
        """The editor's newest click state needs its mask: ask the inference thread."""
        if self.worker is None:
            return
        self.click_request = self.worker.request_clicks(session.case_id, list(session.clicks),
                                                        session.mask.astype(bool))

    def on_click_result(self, result: ClickResult) -> None:
        win = self.win
        if result.request_id != self.click_request:
            return  # a newer click state was asked for
        session = win.sessions.get(result.case_id)
        if session is None or not win.editor.apply_click_result(session, result.mask, result.model_id):
            return
        if session.case_id != win.current_case_id:
            win.review.save(session, "clicks")  # the clinician moved on before it arrived
            return
        win.pair.show_error(None)
        win.statusBar().showMessage(QCoreApplication.translate("Predictions", "Click {n}: mask redrawn by {model} ({ms} ms)").format(
            n=len(session.clicks), model=result.model_id, ms=i18n.integer(round(result.ms.get("total", 0)))), 5000)
        win.clickShown.emit(result.case_id)

    def on_clicks_changed(self, case_id: str) -> None:
        s = self.win.sessions.get(case_id)
        if s is not None and case_id == self.win.current_case_id:
            self.win.pair.set_click_markers(marker_points(s.clicks))

    # --- pre-annotate all ---------------------------------------------------------------------------
    def preannotate_all(self) -> None:
        win = self.win
        if self.worker is None or win.ws is None:
            return
        ids = [c.id for c in win.ws.cases() if c.status != "excluded"]
        win.batch_progress.setRange(0, len(ids))
        win.batch_progress.setValue(0)
        win.batch_progress.show()
        win.batch_cancel.show()
        self.worker.start_batch(ids)

    def cancel_batch(self) -> None:
        if self.worker is not None:
            self.worker.cancel_batch()

    def on_batch_progress(self, done: int, total: int) -> None:
        self.win.batch_progress.setMaximum(total)
        self.win.batch_progress.setValue(done)

    def on_batch_finished(self, done: int, cancelled: bool) -> None:
        win = self.win
        win.batch_progress.hide()
        win.batch_cancel.hide()
        text = (QCoreApplication.translate("Predictions", "Pre-annotation cancelled: {n} cases") if cancelled
                else QCoreApplication.translate("Predictions", "Pre-annotation finished: {n} cases"))
        win.statusBar().showMessage(text.format(n=i18n.integer(done)), 8000)
        if win.ws is not None:
            win.reload_worklist()

    def use_model_prediction(self) -> None:
        """Replace the mask by the model's prediction of this case (one undoable edit)."""
        s = self.win.current_session()
        if s is None or s.prob is None:
            self.win.statusBar().showMessage(QCoreApplication.translate("Predictions", "No prediction for this case yet"), 4000)
            return
        from model.postprocess import postprocess_mask

        self.win.editor.replace_mask(postprocess_mask(s.prob), QCoreApplication.translate("Predictions", "Use model prediction"))
