"""Inference off the UI thread.

One worker thread owns the model (torch is imported there, lazily, so the window appears before
torch has loaded) and its own workspace connection. Interactive requests supersede each other:
only the newest pending one runs, and every result carries its request id so the window can
drop a result that is no longer wanted. "Pre-annotate all" runs in the same thread between
interactive requests and can be cancelled. Click-to-correct requests have their own slot, run
before a pending case prediction (a clinician waiting on a click comes first) and supersede only
each other; the last case's images stay in memory so a click does not decode them again.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QThread, Signal

PredictorFactory = Callable[[Path | None, str], Any]
_PARKED: list[QThread] = []  # workers still finishing a prediction when their window closed


@dataclass
class PredictionResult:
    """What the worker hands back to the window for one case."""

    request_id: int
    case_id: str
    model_id: str
    prob: np.ndarray
    mask: np.ndarray
    ms: dict[str, float] = field(default_factory=dict)
    from_cache: bool = False


@dataclass
class ClickResult:
    """The mask a click state redraws (``Predictor.predict_clicks``), for one request."""

    request_id: int
    case_id: str
    model_id: str
    prob: np.ndarray
    mask: np.ndarray
    ms: dict[str, float] = field(default_factory=dict)


def default_predictor_factory(model_path: Path, device: str) -> Any:
    """Load the real ADF predictor (imports torch; called in the worker thread only)."""
    from model.predictor import Predictor

    return Predictor.load(model_path, device=device)


def mask_from_prob(prob: np.ndarray) -> np.ndarray:
    """The boolean mask the app shows for a cached probability map (same rule as the predictor)."""
    from model.postprocess import postprocess_mask

    return postprocess_mask(prob)


class InferenceWorker(QThread):
    """Background predictions for the open workspace and the active model."""

    resultReady = Signal(object)            # PredictionResult
    clickReady = Signal(object)             # ClickResult
    interactiveKnown = Signal(str, bool, str)  # model id, whether it takes clicks, the model path it loaded
    failed = Signal(int, str, str)          # request id, case id, message
    deviceReady = Signal(str, str)          # device reason, model id
    busyChanged = Signal(bool)
    batchProgress = Signal(int, int)        # done, total
    batchFinished = Signal(int, bool)       # done, cancelled

    def __init__(self, workspace_root: Path, model_path: Path | None, device: str = "auto",
                 predictor_factory: PredictorFactory | None = None) -> None:
        super().__init__()
        self.workspace_root = Path(workspace_root)
        self.model_path = model_path
        self.device = device
        self.predictor_factory = predictor_factory or default_predictor_factory
        self._cond = threading.Condition()
        self._pending: tuple[int, str] | None = None
        self._pending_click: tuple[int, str, list, np.ndarray | None] | None = None
        self._pair_cache: tuple[str, np.ndarray, np.ndarray | None, np.ndarray | None] | None = None
        self._batch: list[str] = []
        self._batch_total = 0
        self._batch_done = 0
        self._cancel_batch = False
        self._stop = False
        self._next_id = 0
        self._predictor: Any = None
        self._ws: Any = None

    # --- called from the UI thread ---------------------------------------------------------
    def request(self, case_id: str) -> int:
        """Ask for a case's prediction; any older pending request is dropped. Returns its id."""
        with self._cond:
            self._next_id += 1
            self._pending = (self._next_id, case_id)
            self._cond.notify()
            return self._next_id

    def request_clicks(self, case_id: str, clicks: list, prev_mask: np.ndarray | None) -> int:
        """Ask for the mask of a click state (``model.interactive.Click`` list in WLI pixels, the
        mask before the newest click); an older pending click request is dropped. Returns its id."""
        with self._cond:
            self._next_id += 1
            mask = None if prev_mask is None else np.array(prev_mask, dtype=bool, copy=True)
            self._pending_click = (self._next_id, case_id, list(clicks), mask)
            self._cond.notify()
            return self._next_id

    def start_batch(self, case_ids: list[str]) -> None:
        with self._cond:
            self._batch = list(case_ids)
            self._batch_total = len(self._batch)
            self._batch_done = 0
            self._cancel_batch = False
            self._cond.notify()

    def cancel_batch(self) -> None:
        with self._cond:
            self._cancel_batch = True
            self._cond.notify()

    def set_model(self, model_path: Path | None) -> None:
        """Switch the model (the next prediction loads it)."""
        with self._cond:
            self.model_path = model_path
            self._predictor = None

    def stop(self, wait_ms: int = 60000) -> bool:
        """Ask the thread to end after its current prediction; True once it has ended.

        A prediction cannot be interrupted mid-forward; if it outlasts ``wait_ms`` the thread is
        parked (kept referenced) instead of destroyed, since destroying a running QThread aborts.
        """
        with self._cond:
            self._stop = True
            self._cancel_batch = True
            self._cond.notify()
        if self.wait(wait_ms):
            return True
        _PARKED.append(self)
        return False

    # --- the worker thread --------------------------------------------------------------------
    def run(self) -> None:  # noqa: D401
        from training.store import Workspace

        try:
            self._ws = Workspace.open(self.workspace_root)
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a crash
            self.failed.emit(0, "", f"Cannot open the workspace for predictions: {exc}")
            return
        try:
            while True:
                with self._cond:
                    while (not self._stop and self._pending is None and self._pending_click is None
                           and not self._batch):
                        self._cond.wait()
                    if self._stop:
                        break
                    if self._cancel_batch and self._batch:
                        done = self._batch_done
                        self._batch = []
                        self.batchFinished.emit(done, True)
                        continue
                    click_job = self._pending_click
                    self._pending_click = None
                    if click_job is not None:
                        job = (click_job[0], click_job[1])
                        batch_item = False
                    elif self._pending is not None:
                        job, self._pending = self._pending, None
                        batch_item = False
                    else:
                        job = (0, self._batch.pop(0))
                        batch_item = True
                self.busyChanged.emit(True)
                try:
                    if click_job is not None:
                        self.clickReady.emit(self._predict_clicks(*click_job))
                        continue
                    result = self._predict(job[0], job[1])
                    if result is not None:
                        self.resultReady.emit(result)
                    if result is not None and result.from_cache and self._predictor is None:
                        self._ensure_predictor()  # so the status bar can say where the model runs
                except Exception as exc:  # noqa: BLE001
                    self.failed.emit(job[0], job[1], _describe(exc))
                finally:
                    self.busyChanged.emit(False)
                if batch_item:
                    with self._cond:
                        self._batch_done += 1
                        self.batchProgress.emit(self._batch_done, self._batch_total)
                        if not self._batch:
                            self.batchFinished.emit(self._batch_done, False)
        finally:
            self._ws.close()

    def _ensure_predictor(self) -> Any:
        if self._predictor is None:
            if self.model_path is None and self.predictor_factory is default_predictor_factory:
                raise RuntimeError("No model is active in this workspace (Model ▸ Model versions ▸ Add model file…).")
            path = Path(self.model_path) if self.model_path is not None else None
            self._predictor = self.predictor_factory(path, self.device)
            self.deviceReady.emit(str(getattr(self._predictor, "device_reason", "")),
                                  str(getattr(self._predictor, "model_id", "")))
            self.interactiveKnown.emit(str(getattr(self._predictor, "model_id", "")),
                                       bool(getattr(self._predictor, "interactive", False)), str(path))
        return self._predictor

    def _load_pair(self, case_id: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(wli, nbi, homography or None) of a case; the last case is kept (case files never change)."""
        if self._pair_cache is None or self._pair_cache[0] != case_id:
            case = self._ws.case(case_id)
            wli = self._ws.load_wli(case_id)
            nbi = self._ws.load_nbi(case_id)
            self._pair_cache = (case_id, wli, nbi, case.homography if nbi is not None else None)
        return self._pair_cache[1], self._pair_cache[2], self._pair_cache[3]

    def _predict_clicks(self, request_id: int, case_id: str, clicks: list,
                        prev_mask: np.ndarray | None) -> ClickResult:
        predictor = self._ensure_predictor()
        if not getattr(predictor, "interactive", False):
            raise RuntimeError(f"model {predictor.model_id} has no click mode (it was not trained with clicks)")
        wli, nbi, hom = self._load_pair(case_id)
        pred = predictor.predict_clicks(wli, nbi, hom, clicks, prev_mask)
        return ClickResult(request_id, case_id, str(pred.model_id), np.asarray(pred.prob),
                           np.asarray(pred.mask, bool), dict(pred.ms))

    def _card_model_id(self) -> str | None:
        """The active model's id from its JSON card (no torch needed to find a cached prediction)."""
        if self._predictor is not None:
            return str(self._predictor.model_id)
        if self.model_path is None:
            return None
        try:
            import json

            return str(json.loads(Path(self.model_path).with_suffix(".json").read_text(encoding="utf-8"))["id"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _predict(self, request_id: int, case_id: str) -> PredictionResult | None:
        t0 = time.perf_counter()
        model_id = self._card_model_id()
        cached = self._ws.cached_prediction(case_id, model_id) if model_id else None
        if cached is not None:  # shown at once; torch and the model load only when a case needs them
            return PredictionResult(request_id, case_id, model_id, cached, mask_from_prob(cached),
                                    {"total": (time.perf_counter() - t0) * 1000.0}, from_cache=True)
        predictor = self._ensure_predictor()
        model_id = str(predictor.model_id)
        case = self._ws.case(case_id)
        wli, nbi, hom = self._load_pair(case_id)
        pred = predictor.predict(wli, nbi, hom)
        prob = np.asarray(pred.prob)
        if prob.dtype != np.uint8:
            prob = np.clip(np.rint(prob.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
        if not self._ws.readonly:  # a read-only workspace still gets predictions, just no cache
            self._ws.save_prediction(case_id, model_id, prob)
            if case.status == "new":  # re-checked in the write: the clinician may have excluded it meanwhile
                self._ws.set_status(case_id, "predicted", author="model", only_from=("new",))
        return PredictionResult(request_id, case_id, model_id, prob, np.asarray(pred.mask, bool),
                                dict(pred.ms))


def _describe(exc: BaseException) -> str:
    """One line for the banner; the traceback goes to the log, not to the clinician."""
    text = str(exc).strip() or exc.__class__.__name__
    traceback.print_exception(exc)
    return f"Prediction failed: {text.splitlines()[0]}"
