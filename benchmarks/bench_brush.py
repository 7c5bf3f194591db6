"""Brush latency and undo memory on a 1920x1080 case, driving the real window offscreen.

1,000 mouse-move events of a radius-20 brush across the image (each timed from sending the
event to the end of the repaint it causes), then 500 separate strokes to measure what their undo
history holds. Last stdout line: {"median_ms", "p99_ms", "undo_mb_500_strokes", ...}.

``--background prefetch,train`` repeats the 1,000 moves while something else works (issue 17):
- ``prefetch``: the worker predicts the following 1920x1080 cases with the bundled model (as
  it does while a clinician works on a case); ``predictions_during`` counts them.
- ``train``: a trainer process started the way the Train dialog starts it (passive OpenMP wait,
  cores - 1 threads, lower priority: viewer.train_dialog.trainer_environment) on the public data.
- ``train-default``: the same trainer with torch's defaults (all cores, spinning wait, normal
  priority), i.e. without the dialog's policy, for comparison.
Each is reported under ``during`` with its median/p99/max.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_brush.py [--background prefetch,train]
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_DRIVER", "PySide6")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from model.cpu_policy import apply_thread_policy  # noqa: E402

apply_thread_policy()  # the app's policy, before torch loads (the prefetch run loads the model in this process)

import cv2  # noqa: E402
import numpy as np  # noqa: E402

BACKGROUNDS = ("prefetch", "train", "train-default")


class EmptyPredictor:
    """No model needed to measure the editor: predicts nothing, instantly."""

    model_id = "bench-empty"
    device_reason = "CPU — benchmark stand-in"

    def predict(self, wli, nbi=None, homography=None):  # noqa: ANN001, ANN201
        from types import SimpleNamespace

        h, w = wli.shape[:2]
        return SimpleNamespace(prob=np.zeros((h, w), np.uint8), mask=np.zeros((h, w), bool), model_id=self.model_id,
                               ms={})


def start_trainer(out: Path, policy: bool) -> tuple[subprocess.Popen, queue.Queue]:
    """A trainer on the public data, as the Train dialog starts it (policy) or with torch's defaults."""
    from viewer.train_dialog import trainer_environment, training_command

    args = ["train", "--data", "public", "--preset", "tiny", "--epochs", "50", "--max-minutes", "10",
            "--out", str(out), "--model-id", "bench-brush-train", "--no-tqdm", "--progress-every", "2"]
    program, argv = training_command(args)
    if policy:
        qenv = trainer_environment()
        env = dict(item.split("=", 1) for item in qenv.toStringList())
    else:
        env = {k: v for k, v in os.environ.items()
               if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME", "ADF_LOW_PRIORITY")}
        env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen([program, *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    return proc, lines


def wait_for_training(proc: subprocess.Popen, lines: queue.Queue, timeout: float = 300.0) -> None:
    """Until the trainer reports its first optimizer steps (data loaded, model built)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"trainer exited early (rc={proc.returncode})")
        try:
            line = lines.get(timeout=1.0)
        except queue.Empty:
            continue
        if '"event": "step"' in line or '"event": "epoch"' in line:
            return
    raise RuntimeError("trainer did not start training in time")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--background", default="", help=f"comma list of {', '.join(BACKGROUNDS)}")
    ap.add_argument("--moves", type=int, default=1000)
    args = ap.parse_args()
    backgrounds = [b for b in args.background.split(",") if b]
    for b in backgrounds:
        if b not in BACKGROUNDS:
            ap.error(f"unknown background {b!r}")

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
        extra = 40 if "prefetch" in backgrounds else 0
        with Workspace.open(tmp_path / "ws", create=True) as ws:
            ws.import_pair(tmp_path / "big_wli.png", tmp_path / "big_nbi.png", register=False)
            for i in range(extra):  # more 1920x1080 cases for the prefetch to work on
                img = cv2.resize(rng.integers(0, 255, (108, 192, 3), dtype=np.uint8), (1920, 1080))
                cv2.imwrite(str(tmp_path / f"p{i:02d}_wli.png"), img)
                cv2.imwrite(str(tmp_path / f"p{i:02d}_nbi.png"), img[:, :, [0, 0, 1]])
                ws.import_pair(tmp_path / f"p{i:02d}_wli.png", tmp_path / f"p{i:02d}_nbi.png", register=False)
            if extra:
                ws.register_model(ROOT / "resources" / "models" / "adf-tiny.json", activate=True)
            others = [c.id for c in ws.cases()][1:]
        factory = None if extra else (lambda _p, _d: EmptyPredictor())
        win = MainWindow(settings_at(tmp_path / "s.ini"), device="cpu", predictor_factory=factory,
                         autosave_ms=10 ** 9)
        win.resize(1600, 900)
        win.show()
        app.processEvents()
        win.open_workspace(tmp_path / "ws")
        win.worker.set_prefetch([])  # prefetch only when a measurement asks for it
        deadline = time.time() + 120
        while (win.current_session() is None or win.current_session().prob is None) and time.time() < deadline:
            app.processEvents()
            time.sleep(0.01)
        win.worker.set_prefetch([])
        win.editor.set_tool("brush")
        win.editor.set_radius(20)
        view = win.pair.views[WLI]
        vp = view.viewport()

        def move(pos: QPointF, buttons: Qt.MouseButton = Qt.MouseButton.LeftButton) -> None:
            ev = QMouseEvent(QEvent.Type.MouseMove, pos, QPointF(vp.mapToGlobal(pos.toPoint())), Qt.MouseButton.NoButton,
                             buttons, Qt.KeyboardModifier.NoModifier)
            QApplication.sendEvent(vp, ev)

        def stroke_times() -> list[float]:
            """One long stroke zig-zagging across the whole image; ms per move including its repaint."""
            session = win.current_session()
            session.undo.clear()
            session.mask[...] = 0
            win.pair.overlay.refresh(None)
            pts = [view.mapFromScene(QPointF(x, 540 + 400 * np.sin(x / 90.0)))
                   for x in np.linspace(20, 1900, args.moves + 1)]
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
            return times

        def summary(times: list[float]) -> dict:
            return {"median_ms": round(float(np.median(times)), 3), "p99_ms": round(float(np.percentile(times, 99)), 3),
                    "max_ms": round(float(np.max(times)), 3), "moves": len(times)}

        quiet = summary(stroke_times())
        during: dict[str, dict] = {}
        for bg in backgrounds:
            if bg == "prefetch":
                before = win.worker.stats["prefetched"]
                win.worker.set_prefetch(others)
                deadline = time.time() + 120
                while win.worker._prefetching is None and time.time() < deadline:
                    app.processEvents()
                    time.sleep(0.005)
                t0 = time.time()
                res = summary(stroke_times())
                res["stroke_s"] = round(time.time() - t0, 2)
                res["predictions_during"] = win.worker.stats["prefetched"] - before
                res["prefetch_still_running_at_end"] = win.worker._prefetching is not None
                win.worker.set_prefetch([])
            else:
                proc, lines = start_trainer(tmp_path / f"run-{bg}", policy=(bg == "train"))
                try:
                    wait_for_training(proc, lines)
                    res = summary(stroke_times())
                    res["trainer_running_at_end"] = proc.poll() is None
                finally:
                    proc.kill()
                    proc.wait()
            during[bg] = res

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
            **quiet,
            "undo_mb_500_strokes": round(held / 1e6, 3),
            "undo_patch_mb_500_strokes": round(packed / 1e6, 3),
            "undo_commands": session.undo.count(),
            "image": "1920x1080",
            "radius": 20,
        }
        if during:
            result["during"] = during
        try:
            result["loadavg_1min"] = round(os.getloadavg()[0], 2)
        except OSError:
            pass
        win.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
