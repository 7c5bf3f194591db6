"""Shared fixtures for the GUI tests: a small generated workspace, fake predictors, mouse helpers.

Images are generated here (textured, so registration finds features) rather than read from
the shared public data folder; the NBI side is pseudo-NBI warped by a known homography.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from model.pseudo_nbi import pseudo_nbi


def textured_image(h: int, w: int, seed: int) -> np.ndarray:
    """A mucosa-like RGB texture with blobs and vessels at several scales (plenty of features)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for scale, amp in ((3, 40), (9, 50), (25, 60)):
        noise = rng.normal(0, 1, (h // scale + 2, w // scale + 2, 3)).astype(np.float32)
        img += amp * cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    img += np.array([170, 90, 80], np.float32)
    for _ in range(12):
        p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(img, p0, p1, (90, 20, 30), int(rng.integers(1, 4)))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))
    return path


@dataclass
class FixtureCase:
    name: str
    wli: np.ndarray
    nbi: np.ndarray | None
    h_true: np.ndarray | None  # NBI -> WLI


def make_pairs(folder: Path) -> list[FixtureCase]:
    """Three pairs: two with warped pseudo-NBI (different sizes), one WLI-only."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (name, (h, w)) in enumerate((("alpha", (180, 240)), ("beta", (200, 200)))):
        wli = textured_image(h, w, seed=10 + i)
        nbi, h_true = pseudo_nbi(wli, rng=100 + i, max_corner_shift=0.05)
        write_rgb(folder / f"{name}_wli.png", wli)
        write_rgb(folder / f"{name}_nbi.png", nbi)
        out.append(FixtureCase(name, wli, nbi, h_true))
    wli = textured_image(150, 190, seed=30)
    write_rgb(folder / "gamma_wli.png", wli)
    out.append(FixtureCase("gamma", wli, None, None))
    return out


@pytest.fixture
def pair_folder(tmp_path: Path) -> tuple[Path, list[FixtureCase]]:
    folder = tmp_path / "src"
    return folder, make_pairs(folder)


@pytest.fixture
def gui_workspace(tmp_path: Path, pair_folder: tuple[Path, list[FixtureCase]]) -> Iterator[Path]:
    """A workspace with the three fixture cases imported through the real import code."""
    from training.store import Workspace

    folder, cases = pair_folder
    root = tmp_path / "ws"
    with Workspace.open(root, create=True) as ws:
        for c in cases:
            nbi = folder / f"{c.name}_nbi.png" if c.nbi is not None else None
            case_id, reason = ws.import_pair(folder / f"{c.name}_wli.png", nbi, nbi_synthetic=nbi is not None,
                                             patient_id=f"P-{c.name}")
            assert reason is None, reason
    yield root
    with Workspace.open(root) as ws:
        assert ws.integrity_check() == "ok"


def disc_mask(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r


@dataclass
class FakePrediction:
    prob: np.ndarray
    mask: np.ndarray
    model_id: str
    ms: dict = field(default_factory=dict)


class FakePredictor:
    """A deterministic stand-in for the ADF predictor: a disc in the image centre.

    ``gate`` (an Event) makes the first call block until set, to test superseding; ``fail``
    makes every call raise, to test error reporting.
    """

    def __init__(self, model_id: str = "fake-model-1", gate: threading.Event | None = None,
                 fail: bool = False) -> None:
        self.model_id = model_id
        self.device = "cpu"
        self.device_reason = "CPU — fake predictor for tests"
        self.gate = gate
        self.fail = fail
        self.calls: list[tuple[int, int]] = []

    def predict(self, wli: np.ndarray, nbi: np.ndarray | None = None, homography: np.ndarray | None = None):
        h, w = wli.shape[:2]
        self.calls.append((h, w))
        if self.gate is not None and len(self.calls) == 1:
            assert self.gate.wait(20), "test gate never opened"
        if self.fail:
            raise RuntimeError("simulated model failure (out of memory)")
        mask = disc_mask(h, w, w / 2, h / 2, min(h, w) / 4)
        prob = np.where(mask, 230, 10).astype(np.uint8)
        return FakePrediction(prob, mask, self.model_id, {"pre": 1.0, "infer": 2.0, "post": 1.0, "total": 4.0})


def make_window(qtbot, tmp_path: Path, predictor, autosave_ms: int = 2000, author: str = "dr.test"):
    """A MainWindow with settings in a temp INI and the given predictor, shown at a fixed size."""
    from viewer.app import make_app, settings_at
    from viewer.main_window import MainWindow

    make_app()
    settings = settings_at(tmp_path / "settings.ini")
    settings.setValue("recovery/auto", "restore")
    win = MainWindow(settings, device="cpu", predictor_factory=lambda _p, _d: predictor, author=author,
                     autosave_ms=autosave_ms)
    qtbot.addWidget(win)
    win.resize(1400, 800)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=3000)  # window shortcuts need an active window
    return win


def view_pos(view, scene_pt: tuple[float, float]) -> QPoint:
    return view.mapFromScene(QPointF(*scene_pt))


def send_move(view, pos: QPoint, buttons=Qt.MouseButton.LeftButton) -> None:
    ev = QMouseEvent(QEvent.Type.MouseMove, QPointF(pos), QPointF(view.viewport().mapToGlobal(pos)),
                     Qt.MouseButton.NoButton, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), ev)


def drag(qtbot, view, scene_points: list[tuple[float, float]]) -> list[QPointF]:
    """Press at the first point, move through the rest, release at the last (a real stroke).

    Returns the scene positions the view actually reported (view positions are whole pixels).
    """
    pts = [view_pos(view, p) for p in scene_points]
    qtbot.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=pts[0])
    for p in pts[1:]:
        send_move(view, p)
    qtbot.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=pts[-1])
    inv, _ = view.viewportTransform().inverted()
    return [inv.map(QPointF(p)) for p in pts]


def wait_for_prediction(qtbot, win, case_id: str | None = None, timeout: int = 10000) -> None:
    """Wait until the overlay of the current case shows a prediction."""
    def shown() -> None:
        s = win.current_session()
        assert s is not None and s.prob is not None
        if case_id is not None:
            assert s.case_id == case_id

    qtbot.waitUntil(shown, timeout=timeout)


def settle(seconds: float = 0.05) -> None:
    end = time.time() + seconds
    while time.time() < end:
        QApplication.processEvents()


def register_random_model(workspace_root: Path, model_dir: Path, model_id: str) -> Path:
    """Save an untrained tiny ADF model and make it the workspace's active model; returns its card."""
    import torch

    from model.adf import ADFNet
    from model.card import save_model
    from model.config import get_preset
    from training.store import Workspace

    torch.manual_seed(0)
    cfg = get_preset("tiny")
    card = save_model(ADFNet(cfg).eval(), cfg, model_dir / model_id, {"id": model_id})
    with Workspace.open(workspace_root) as ws:
        ws.register_model(card, activate=True)
    return card
