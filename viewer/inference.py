"""Inference off the UI thread.

One worker thread owns the model (torch is imported there, lazily, so the window appears before
torch has loaded) and its own workspace connection. Interactive requests supersede each other:
only the newest pending one runs, and every result carries its request id so the window can
drop a result that is no longer wanted. "Pre-annotate all" runs in the same thread between
interactive requests and can be cancelled. Click-to-correct requests have their own slot, run
before a pending case prediction (a clinician waiting on a click comes first) and supersede only
each other; the last case's images stay in memory so a click does not decode them again.

Prefetch (issue 17): while the clinician works on a case, the window hands the worker the next
cases in worklist order (`set_prefetch`). When nothing else is asked the worker predicts them,
writes each prediction to the workspace cache (and moves a ``new`` case to ``predicted``),
and keeps the last results, with the decoded images, in memory. Moving to such a case is then
served from memory on the UI thread's next event-loop turn, without waiting for the thread. The
prefetch yields at once: a clinician's request (or a batch, a model switch, a stop) interrupts
a prefetch prediction between two network blocks (a forward pre-hook raises `Preempted`), and
prefetch runs on at most cores - 1 torch threads (and no more than a request) so the brush keeps a core
(both in viewer/preemption.py).
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, QThread, QTimer, Signal

from viewer import i18n
from viewer.preemption import Preempted, ThreadBudget, install_preemption
from viewer.timeline import stamp

PredictorFactory = Callable[[Path | None, str], Any]
_PARKED: list[QThread] = []  # workers still finishing a prediction when their window closed
log = logging.getLogger(__name__)

MEMORY_RESULTS = 8     # recent results (prob + mask + images) kept for instant case switches
PREFETCH_DEPTH = 3     # how many following cases the window asks for
PREFETCH_SETTLE_S = 0.15  # after the clinician asks for something, prefetch waits this long: the
                          # case switch paints without a prediction competing for the CPU and the GIL


@dataclass
class _Kept:
    """One case's result in the in-memory cache, with the decoded images the window needs."""

    model_id: str
    prob: np.ndarray
    mask: np.ndarray
    images: tuple[np.ndarray, np.ndarray | None] | None


@dataclass
class ClickResult:
    """The mask a click state redraws (``Predictor.predict_clicks``), for one request."""

    request_id: int
    case_id: str
    model_id: str
    prob: np.ndarray
    mask: np.ndarray
    ms: dict[str, float] = field(default_factory=dict)


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
    origin: str = "model"    # "model" | "disk" (workspace cache) | "memory" (prefetched / recent)


def default_predictor_factory(model_path: Path, device: str) -> Any:
    """Load the real ADF predictor (imports torch; called in the worker thread only)."""
    from model.predictor import Predictor

    stamp("torch_imported")
    predictor = Predictor.load(model_path, device=device)
    stamp("model_loaded")
    return predictor


def mask_from_prob(prob: np.ndarray) -> np.ndarray:
    """The boolean mask the app shows for a cached probability map (same rule as the predictor)."""
    from model.postprocess import postprocess_mask

    return postprocess_mask(prob)


class InferenceWorker(QThread):
    """Background predictions for the open workspace and the active model."""

    resultReady = Signal(object)            # PredictionResult
    failed = Signal(int, str, str)          # request id, case id, message
    deviceReady = Signal(str, str)          # device reason, model id
    busyChanged = Signal(bool)
    batchProgress = Signal(int, int)        # done, total
    batchFinished = Signal(int, bool)       # done, cancelled
    prefetched = Signal(str)                # case id whose prediction is now cached (its status may have changed)
    clickReady = Signal(object)             # ClickResult
    interactiveKnown = Signal(str, bool, str)  # model id, whether it takes clicks, the model path it loaded

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
        self._prefetch: list[str] = []            # still to prefetch, in order
        self._wanted: list[str] = []              # the window's latest prefetch list
        self._prefetching: str | None = None      # case being prefetched right now
        self._prefetch_after = 0.0                # time.monotonic() before which no prefetch starts
        self._preempt = threading.Event()         # set: the running prefetch must stop
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._model_id: str | None = None          # the active model's id (from its card; no torch)
        self._threads = ThreadBudget()            # fewer torch threads while prefetching
        self.stats = {"prefetched": 0, "preempted": 0, "memory_hits": 0}

    # --- called from the UI thread ---------------------------------------------------------
    def request(self, case_id: str) -> int:
        """Ask for a case's prediction; any older pending request is dropped. Returns its id.

        A case kept in memory (prefetched or seen recently) is answered on the UI thread's next
        event-loop turn without queueing. Otherwise a running prefetch of another case stops."""
        with self._cond:
            self._next_id += 1
            request_id = self._next_id
            self._prefetch_after = time.monotonic() + PREFETCH_SETTLE_S
            kept = self._kept.get(case_id)
            if kept is not None and kept.model_id == self._active_model_id():
                self._kept.move_to_end(case_id)
                self._pending = None  # an older pending request is superseded all the same
                self.stats["memory_hits"] += 1
                result = PredictionResult(request_id, case_id, kept.model_id, kept.prob, kept.mask,
                                          {"total": 0.0}, from_cache=True, origin="memory")
                # with self as context: dropped if the worker is deleted first (window closed)
                QTimer.singleShot(0, self, lambda: self.resultReady.emit(result))
                return request_id
            self._pending = (request_id, case_id)
            if self._prefetching is not None and self._prefetching != case_id:
                self._preempt.set()  # stop prefetching another case (the one asked for is let finish)
            self._cond.notify()
            return request_id

    def request_clicks(self, case_id: str, clicks: list, prev_mask: np.ndarray | None) -> int:
        """Ask for the mask of a click state (``model.interactive.Click`` list in WLI pixels, the
        mask before the newest click); an older pending click request is dropped. Returns its id.
        A running prefetch stops: the clinician is waiting."""
        with self._cond:
            self._next_id += 1
            mask = None if prev_mask is None else np.array(prev_mask, dtype=bool, copy=True)
            self._pending_click = (self._next_id, case_id, list(clicks), mask)
            self._prefetch_after = time.monotonic() + PREFETCH_SETTLE_S
            if self._prefetching is not None:
                self._preempt.set()
            self._cond.notify()
            return self._next_id

    def set_prefetch(self, case_ids: list[str]) -> None:
        """The cases to predict in the background, in this order (replaces the previous list)."""
        with self._cond:
            self._wanted = list(dict.fromkeys(case_ids))
            self._prefetch_after = time.monotonic() + PREFETCH_SETTLE_S
            self._prefetch = [c for c in self._wanted if c not in self._kept]
            running = self._prefetching
            asked = self._pending[1] if self._pending is not None else None
            if running is not None and running not in self._wanted and running != asked:
                self._preempt.set()  # no longer wanted (the case asked for is let finish)
            self._cond.notify()

    def kept_images(self, case_id: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The decoded (WLI, NBI) of a case the worker has in memory, else None (UI thread: no disk read)."""
        with self._cond:
            kept = self._kept.get(case_id)
            return kept.images if kept is not None else None

    def start_batch(self, case_ids: list[str]) -> None:
        with self._cond:
            self._batch = list(case_ids)
            self._batch_total = len(self._batch)
            self._batch_done = 0
            self._cancel_batch = False
            self._preempt.set()
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
            self._model_id = None
            self._kept.clear()
            self._preempt.set()

    def stop(self, wait_ms: int = 60000) -> bool:
        """Ask the thread to end after its current prediction; True once it has ended.

        A prediction cannot be interrupted mid-forward; if it outlasts ``wait_ms`` the thread is
        parked (kept referenced) instead of destroyed, since destroying a running QThread aborts.
        """
        with self._cond:
            self._stop = True
            self._cancel_batch = True
            self._preempt.set()
            self._cond.notify()
        if self.wait(wait_ms):
            return True
        _PARKED.append(self)
        return False

    # --- the worker thread --------------------------------------------------------------------
    def run(self) -> None:  # noqa: D401
        from training.store import Workspace

        stamp("worker_started")
        try:
            self._ws = Workspace.open(self.workspace_root)
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a crash
            self.failed.emit(0, "", QCoreApplication.translate("Inference", "Cannot open the workspace for predictions: {error}")
                             .format(error=i18n.error_text(exc)))
            return
        try:
            while True:
                with self._cond:
                    while (not self._stop and self._pending is None and self._pending_click is None
                           and not self._batch and not self._prefetch):
                        self._cond.wait()
                    if self._stop:
                        break
                    if self._cancel_batch and self._batch:
                        done = self._batch_done
                        self._batch = []
                        self.batchFinished.emit(done, True)
                        continue
                    self._preempt.clear()
                    click_job, self._pending_click = self._pending_click, None
                    if click_job is not None:
                        job = (click_job[0], click_job[1])
                        batch_item = False
                    elif self._pending is not None:
                        job, self._pending = self._pending, None
                        batch_item = False
                    elif self._batch:
                        job = (0, self._batch.pop(0))
                        batch_item = True
                    else:
                        settle = self._prefetch_after - time.monotonic()
                        if settle > 0:  # the clinician just asked for something: let the UI finish first
                            self._cond.wait(settle)
                            continue
                        self._prefetching = self._prefetch.pop(0)
                if self._prefetching is not None:
                    self._run_prefetch(self._prefetching)
                    continue
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
                raise RuntimeError(QCoreApplication.translate(
                    "Inference", "No model is active in this workspace (Model ▸ Model versions ▸ Add model file…)."))
            path = Path(self.model_path) if self.model_path is not None else None
            predictor = self.predictor_factory(path, self.device)
            self._threads.reset()
            install_preemption(predictor, self._prefetch_preempted)
            with self._cond:
                self._predictor = predictor
                self._model_id = str(getattr(predictor, "model_id", "")) or None
            self.deviceReady.emit(str(getattr(predictor, "device_reason", "")),
                                  str(getattr(predictor, "model_id", "")))
            self.interactiveKnown.emit(str(getattr(predictor, "model_id", "")),
                                       bool(getattr(predictor, "interactive", False)), str(path))
        return self._predictor

    def _load_pair(self, case_id: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(wli, nbi, homography or None) of a case: from the prefetch memory, else the last case
        decoded, else the disk (case files never change)."""
        if self._pair_cache is None or self._pair_cache[0] != case_id:
            case = self._ws.case(case_id)
            with self._cond:
                kept = self._kept.get(case_id)
            images = kept.images if kept is not None and kept.images is not None else \
                (self._ws.load_wli(case_id), self._ws.load_nbi(case_id))
            wli, nbi = images
            self._pair_cache = (case_id, wli, nbi, case.homography if nbi is not None else None)
        return self._pair_cache[1], self._pair_cache[2], self._pair_cache[3]

    def _predict_clicks(self, request_id: int, case_id: str, clicks: list,
                        prev_mask: np.ndarray | None) -> ClickResult:
        predictor = self._ensure_predictor()
        if not getattr(predictor, "interactive", False):
            raise RuntimeError(QCoreApplication.translate(
                "Inference", "model {model} has no click mode (it was not trained with clicks)").format(
                model=predictor.model_id))
        self._use_threads(prefetch=False)
        wli, nbi, hom = self._load_pair(case_id)
        pred = predictor.predict_clicks(wli, nbi, hom, clicks, prev_mask)
        return ClickResult(request_id, case_id, str(pred.model_id), np.asarray(pred.prob),
                           np.asarray(pred.mask, bool), dict(pred.ms))

    def _active_model_id(self) -> str | None:
        """The active model's id: the loaded predictor's, else its JSON card's (read once; no torch)."""
        if self._predictor is not None:
            return str(self._predictor.model_id)
        if self._model_id is None and self.model_path is not None:
            from model.card_file import card_id, read_card_json

            try:
                card, js = read_card_json(self.model_path)
                self._model_id = card_id(card, js)
            except (OSError, ValueError):
                return None
        return self._model_id

    # --- prefetch ----------------------------------------------------------------------------
    def _prefetch_preempted(self) -> bool:
        """Whether the running prefetch must stop (checked between network blocks)."""
        return self._prefetching is not None and self._preempt.is_set()

    def _use_threads(self, prefetch: bool) -> None:
        self._threads.use(self._predictor, prefetch)

    def _run_prefetch(self, case_id: str) -> None:
        try:
            if self._prefetch_one(case_id):
                self.prefetched.emit(case_id)
        except Preempted:
            with self._cond:
                self.stats["preempted"] += 1
                if case_id in self._wanted and case_id not in self._prefetch and case_id not in self._kept:
                    self._prefetch.insert(0, case_id)  # still wanted: try again after the urgent work
        except Exception as exc:  # noqa: BLE001 - background work: logged, never a banner
            log.warning("prefetch of %s failed: %s", case_id, exc)
        finally:
            with self._cond:
                self._prefetching = None
            self._use_threads(prefetch=False)

    def _prefetch_one(self, case_id: str) -> bool:
        """Predict (or read from the workspace cache) one following case into memory; True when done."""
        model_id = self._active_model_id()
        with self._cond:
            kept = self._kept.get(case_id)
        if kept is not None and kept.model_id == model_id:
            return False
        case = self._ws.case(case_id)
        images = (self._ws.load_wli(case_id), self._ws.load_nbi(case_id))
        cached = self._ws.cached_prediction(case_id, model_id) if model_id else None
        if cached is not None:
            self._keep(case_id, model_id, cached, mask_from_prob(cached), images)
            return True
        if self._preempt.is_set():
            raise Preempted()
        predictor = self._ensure_predictor()
        self._use_threads(prefetch=True)
        prob, mask, _ms = self._run_model(predictor, case, images)
        self._store(case, str(predictor.model_id), prob)
        self._keep(case_id, str(predictor.model_id), prob, mask, images)
        with self._cond:
            self.stats["prefetched"] += 1
        return True

    def _keep(self, case_id: str, model_id: str, prob: np.ndarray, mask: np.ndarray,
              images: tuple[np.ndarray, np.ndarray | None] | None) -> None:
        with self._cond:
            self._kept[case_id] = _Kept(model_id, prob, mask, images)
            self._kept.move_to_end(case_id)
            while len(self._kept) > MEMORY_RESULTS:
                self._kept.popitem(last=False)

    # --- one prediction ------------------------------------------------------------------------
    def _run_model(self, predictor: Any, case: Any,
                   images: tuple[np.ndarray, np.ndarray | None]) -> tuple[np.ndarray, np.ndarray, dict]:
        wli, nbi = images
        pred = predictor.predict(wli, nbi, case.homography if nbi is not None else None)
        prob = np.asarray(pred.prob)
        if prob.dtype != np.uint8:
            prob = np.clip(np.rint(prob.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
        return prob, np.asarray(pred.mask, bool), dict(pred.ms)

    def _store(self, case: Any, model_id: str, prob: np.ndarray) -> None:
        """Cache the prediction in the workspace; a ``new`` case becomes ``predicted``."""
        if self._ws.readonly:  # a read-only workspace still gets predictions, just no cache
            return
        self._ws.save_prediction(case.id, model_id, prob)
        if case.status == "new":  # re-checked in the write: the clinician may have excluded it meanwhile
            self._ws.set_status(case.id, "predicted", author="model", only_from=("new",))

    def _predict(self, request_id: int, case_id: str) -> PredictionResult | None:
        t0 = time.perf_counter()
        model_id = self._active_model_id()
        with self._cond:
            kept = self._kept.get(case_id)
        if kept is not None and kept.model_id == model_id:  # prefetched while this request waited
            return PredictionResult(request_id, case_id, kept.model_id, kept.prob, kept.mask,
                                    {"total": (time.perf_counter() - t0) * 1000.0}, from_cache=True, origin="memory")
        cached = self._ws.cached_prediction(case_id, model_id) if model_id else None
        if cached is not None:  # shown at once; torch and the model load only when a case needs them
            mask = mask_from_prob(cached)
            self._keep(case_id, model_id, cached, mask, None)
            return PredictionResult(request_id, case_id, model_id, cached, mask,
                                    {"total": (time.perf_counter() - t0) * 1000.0}, from_cache=True, origin="disk")
        predictor = self._ensure_predictor()
        self._use_threads(prefetch=False)
        model_id = str(predictor.model_id)
        case = self._ws.case(case_id)
        wli, nbi, _ = self._load_pair(case_id)
        images = (wli, nbi)
        prob, mask, ms = self._run_model(predictor, case, images)
        stamp("first_prediction")
        self._store(case, model_id, prob)
        self._keep(case_id, model_id, prob, mask, images)
        return PredictionResult(request_id, case_id, model_id, prob, mask, ms)


def _describe(exc: BaseException) -> str:
    """One line for the banner; the traceback goes to the log, not to the clinician."""
    text = i18n.error_text(exc).strip() or exc.__class__.__name__
    traceback.print_exception(exc)
    return QCoreApplication.translate("Inference", "Prediction failed") + ": " + text.splitlines()[0]
