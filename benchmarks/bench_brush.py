"""Brush latency and undo memory on a 1920x1080 case, driving the real window offscreen.

1,000 mouse-move events of a radius-20 brush across the image (each timed from sending the
event to the end of the repaint it causes), then 500 separate strokes to measure what their undo
history holds. Last stdout line: {"median_ms", "p99_ms", "undo_mb_500_strokes", ...}.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_brush.py
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_DRIVER", "PySide6")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402


class EmptyPredictor:
    """No model needed to measure the editor: predicts nothing, instantly."""

    model_id = "bench-empty"
    device_reason = "CPU — benchmark stand-in"

    def predict(self, wli, nbi=None, homography=None):  # noqa: ANN001, ANN201
        from types import SimpleNamespace

        h, w = wli.shape[:2]
        return SimpleNamespace(prob=np.zeros((h, w), np.uint8), mask=np.zeros((h, w), bool), model_id=self.model_id,
                               ms={})


def main() -> int:
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from training.store import Workspace
    from viewer.app import make_app, settings_at
    from viewer.main_window import MainWindow
    from viewer.pair_view import WLI

    app = make_app()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        rng = np.random.default_rng(0)
        wli = cv2.resize(rng.integers(0, 255, (108, 192, 3), dtype=np.uint8), (1920, 1080))
        cv2.imwrite(str(tmp_path / "big_wli.png"), wli)
        cv2.imwrite(str(tmp_path / "big_nbi.png"), wli[:, :, [0, 0, 1]])
        with Workspace.open(tmp_path / "ws", create=True) as ws:
            ws.import_pair(tmp_path / "big_wli.png", tmp_path / "big_nbi.png", register=False)
        win = MainWindow(settings_at(tmp_path / "s.ini"), device="cpu", predictor_factory=lambda _p, _d: EmptyPredictor(),
                         autosave_ms=10 ** 9)
        win.resize(1600, 900)
        win.show()
        app.processEvents()
        win.open_workspace(tmp_path / "ws")
        deadline = time.time() + 30
        while (win.current_session() is None or win.current_session().prob is None) and time.time() < deadline:
            app.processEvents()
            time.sleep(0.01)
        win.editor.set_tool("brush")
        win.editor.set_radius(20)
        view = win.pair.views[WLI]
        vp = view.viewport()

        def move(pos: QPointF, buttons: Qt.MouseButton = Qt.MouseButton.LeftButton) -> None:
            ev = QMouseEvent(QEvent.Type.MouseMove, pos, QPointF(vp.mapToGlobal(pos.toPoint())), Qt.MouseButton.NoButton,
                             buttons, Qt.KeyboardModifier.NoModifier)
            QApplication.sendEvent(vp, ev)

        # 1,000 moves in one long stroke zig-zagging across the whole image.
        pts = [view.mapFromScene(QPointF(x, 540 + 400 * np.sin(x / 90.0))) for x in np.linspace(20, 1900, 1001)]
        QTest.mousePress(vp, Qt.MouseButton.LeftButton, pos=pts[0])
        app.processEvents()
        times = []
        for p in pts[1:]:
            t0 = time.perf_counter()
            move(QPointF(p))
            app.processEvents()      # includes the repaint of the dirty rectangle
            times.append((time.perf_counter() - t0) * 1000.0)
        QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=pts[-1])
        app.processEvents()
        session = win.current_session()
        session.undo.clear()
        session.mask[...] = 0          # start the undo measurement from an empty mask
        win.pair.overlay.refresh(None)

        # 500 strokes of 8 moves each at random places: what does their undo history hold?
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(500):
            x, y = rng.uniform(40, 1880), rng.uniform(40, 1040)
            stroke = [view.mapFromScene(QPointF(x + 12 * k, y + 6 * k)) for k in range(8)]
            QTest.mousePress(vp, Qt.MouseButton.LeftButton, pos=stroke[0])
            for p in stroke[1:]:
                move(QPointF(p))
            QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=stroke[-1])
        app.processEvents()
        held = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        packed = sum(session.undo.command(i).nbytes() for i in range(session.undo.count()))
        result = {
            "median_ms": round(float(np.median(times)), 3),
            "p99_ms": round(float(np.percentile(times, 99)), 3),
            "max_ms": round(float(np.max(times)), 3),
            "moves": len(times),
            "undo_mb_500_strokes": round(held / 1e6, 3),
            "undo_patch_mb_500_strokes": round(packed / 1e6, 3),
            "undo_commands": session.undo.count(),
            "image": "1920x1080",
            "radius": 20,
        }
        win.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
