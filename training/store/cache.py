"""The prediction cache: ``predictions/<case>/<model id>.png``, probability x 255 in WLI pixels.

A cache, not a record (DESIGN-NOTES.md 7): a prediction becomes a revision only when the clinician
saves or accepts it, so an entry may be replaced, and an unreadable one is ignored (logged).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from model.i18n_marks import QT_TRANSLATE_NOOP, Message
from model.names import safe_id, safe_model_id
from training.imageio import ImageReadError, decode_rgb, read_file_bytes, write_png_atomic
from training.store.records import WorkspaceError

log = logging.getLogger(__name__)


class PredictionCacheMixin:
    """Workspace's prediction cache (uses its root, readonly, case)."""

    def prediction_path(self, case_id: str, model_id: str) -> Path:
        return self.root / "predictions" / safe_id(case_id) / f"{safe_model_id(model_id)}.png"

    def cached_prediction(self, case_id: str, model_id: str) -> np.ndarray | None:
        """The cached probability map (uint8, WLI size) of ``model_id`` for a case, or None."""
        p = self.prediction_path(case_id, model_id)
        if not p.is_file():
            return None
        try:
            data = read_file_bytes(p)
            img = decode_rgb(data, p)[:, :, 0]
        except ImageReadError as exc:
            log.warning("ignoring unreadable cached prediction %s: %s", p, exc.reason)
            return None
        return np.ascontiguousarray(img)

    def save_prediction(self, case_id: str, model_id: str, prob: np.ndarray) -> None:
        """Cache a probability map (uint8 prob x 255, WLI size); a cache, so it may be replaced."""
        arr = np.asarray(prob)
        if arr.dtype != np.uint8 or arr.ndim != 2:
            raise ValueError(f"prediction must be uint8 (H, W), got {arr.dtype} {arr.shape}")
        case = self.case(case_id)
        if arr.shape != (case.height, case.width):
            raise ValueError(f"prediction shape {arr.shape} != case {case_id} WLI size {(case.height, case.width)}")
        if self.readonly:
            raise WorkspaceError(Message(QT_TRANSLATE_NOOP("Errors", "workspace {root} is read-only"), root=self.root))
        try:
            write_png_atomic(self.prediction_path(case_id, model_id), arr)
        except OSError as exc:
            raise WorkspaceError(Message(QT_TRANSLATE_NOOP("Errors", "cannot write prediction cache: {error}"), error=exc.strerror or exc)) from None
