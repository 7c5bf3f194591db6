"""Load: a workspace of 10,000 cases with 100 revisions on one case, driven through the real window.

10,000 case rows are bulk-inserted in the store's schema (benchmarks/bench_startup.make_big_workspace;
the worklist reads no files), then 6 real cases of 1280x1024 with pseudo-NBI are imported and one
of them gets 100 mask revisions through ``Workspace.add_revision``. Timed (ms, offscreen, a
stand-in predictor so no model time is counted):

- ``Workspace.open`` and ``ws.cases()`` (cold, then warm);
- ``MainWindow.open_workspace`` (worklist model filled and sorted, first case shown);
- ``reload_worklist`` (10,000 rows again), a status filter, a text search;
- switching between real cases with ``open_case`` (median and max of 30 switches: image read,
  pair view, overlay, history);
- the history of the 100-revision case (``MainWindow._refresh_history``, median of 20) and
  ``ws.history`` alone; opening that case (its newest mask loaded).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_load.py

Last stdout line: one JSON object.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_DRIVER", "PySide6")
ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import numpy as np  # noqa: E402

N_CASES = 10_000
N_REAL = 6
N_REVISIONS = 100
SIZE = (1024, 1280)  # h, w


class InstantPredictor:
    """Predicts an empty mask at once: the benchmark measures the store and the window, not a model."""

    model_id = "bench-instant"
    device = "cpu"
    device_reason = "CPU — benchmark stand-in"

    def predict(self, wli, nbi=None, homography=None):  # noqa: ANN001, ANN201
        from types import SimpleNamespace

        h, w = wli.shape[:2]
        return SimpleNamespace(prob=np.zeros((h, w), np.uint8), mask=np.zeros((h, w), bool), model_id=self.model_id,
                               ms={"total": 0.0})


def ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 1)


def build(path: Path) -> tuple[list[str], str, float]:
    """The big workspace; returns (real case ids, the 100-revision case, seconds to write its revisions)."""
    import cv2
    from bench_startup import make_big_workspace

    from model.pseudo_nbi import pseudo_nbi
    from training.store import Workspace

    make_big_workspace(path, N_CASES)
    src = path.parent / "src"
    src.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    h, w = SIZE
    for i in range(N_REAL):
        small = rng.integers(0, 256, (h // 16, w // 16, 3), dtype=np.uint8)
        wli = cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 2)
        nbi, _ = pseudo_nbi(wli, rng=i)
        cv2.imwrite(str(src / f"real{i}_wli.jpg"), wli[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
        cv2.imwrite(str(src / f"real{i}_nbi.jpg"), nbi[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    ids = []
    with Workspace.open(path) as ws:
        for i in range(N_REAL):
            cid, reason = ws.import_pair(src / f"real{i}_wli.jpg", src / f"real{i}_nbi.jpg", nbi_synthetic=True,
                                         patient_id=f"R{i}")
            assert reason is None, reason
            ids.append(cid)
        target = ids[0]
        yy, xx = np.mgrid[0:h, 0:w]
        t0 = time.perf_counter()
        for k in range(N_REVISIONS):
            cx, cy, r = w / 2 + 3 * k, h / 2, 150 + k
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
            ws.add_revision(target, mask, source="human", author="bench", note=f"rev {k + 1}")
        t_revs = time.perf_counter() - t0
        assert len(ws.history(target)) == N_REVISIONS
    return ids, target, t_revs


def main() -> int:
    from PySide6.QtWidgets import QApplication

    from training.store import Workspace
    from viewer.app import make_app, settings_at
    from viewer.main_window import MainWindow

    app = make_app()
    out: dict = {"cases": N_CASES + N_REAL, "revisions_on_one_case": N_REVISIONS, "image_size": f"{SIZE[1]}x{SIZE[0]}"}
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        tmp_path = Path(tmp)
        ws_path = tmp_path / "ws"
        t0 = time.perf_counter()
        ids, target, t_revs = build(ws_path)
        out["build_s"] = round(time.perf_counter() - t0, 1)
        out["add_revision_ms_mean"] = round(t_revs * 1000 / N_REVISIONS, 1)
        out["db_mb"] = round((ws_path / "workspace.sqlite").stat().st_size / 1e6, 2)

        t0 = time.perf_counter()
        ws = Workspace.open(ws_path)
        out["store_open_ms"] = ms(t0)
        t0 = time.perf_counter()
        n = len(ws.cases())
        out["store_cases_cold_ms"] = ms(t0)
        t0 = time.perf_counter()
        ws.cases()
        out["store_cases_warm_ms"] = ms(t0)
        t0 = time.perf_counter()
        ws.history(target)
        out["store_history_100_ms"] = ms(t0)
        ws.close()
        assert n == N_CASES + N_REAL

        settings = settings_at(tmp_path / "settings.ini")
        settings.setValue("recovery/auto", "restore")
        pred = InstantPredictor()
        win = MainWindow(settings, device="cpu", predictor_factory=lambda _p, _d: pred, author="bench",
                         autosave_ms=600000)
        win.resize(1500, 900)
        win.show()
        app.processEvents()
        t0 = time.perf_counter()
        assert win.open_workspace(ws_path)
        app.processEvents()
        out["window_open_workspace_ms"] = ms(t0)
        assert win.worklist_proxy.rowCount() == N_CASES + N_REAL

        t0 = time.perf_counter()
        win.reload_worklist()
        out["worklist_reload_ms"] = ms(t0)
        corrected = win.status_filter.findText("Corrected")
        t0 = time.perf_counter()
        win.status_filter.setCurrentIndex(corrected)
        app.processEvents()
        out["filter_status_ms"] = ms(t0)
        out["filter_rows"] = win.worklist_proxy.rowCount()
        win.status_filter.setCurrentIndex(0)
        t0 = time.perf_counter()
        win.search_edit.setText("P042")
        app.processEvents()
        out["search_ms"] = ms(t0)
        out["search_rows"] = win.worklist_proxy.rowCount()
        win.search_edit.setText("")
        app.processEvents()

        # first open of the 100-revision case (loads its newest mask), then switches among real cases
        others = [c for c in ids if c != target]
        t0 = time.perf_counter()
        win.open_case(target)
        app.processEvents()
        out["open_case_100_revisions_ms"] = ms(t0)
        switches = []
        order = [others[i % len(others)] if i % 2 else target for i in range(30)]
        for cid in order:
            t0 = time.perf_counter()
            win.open_case(cid)
            app.processEvents()
            switches.append((time.perf_counter() - t0) * 1000.0)
        out["switch_case_ms_median"] = round(statistics.median(switches), 1)
        out["switch_case_ms_max"] = round(max(switches), 1)

        win.open_case(target)
        app.processEvents()
        hist = []
        for _ in range(20):
            t0 = time.perf_counter()
            win._refresh_history()
            app.processEvents()
            hist.append((time.perf_counter() - t0) * 1000.0)
        assert win.history_table.rowCount() == N_REVISIONS
        out["history_100_revisions_ms_median"] = round(statistics.median(hist), 1)
        out["history_100_revisions_ms_max"] = round(max(hist), 1)
        win.close()
        QApplication.processEvents()
    out["cpu_threads"] = os.cpu_count()
    out["load_avg_1min"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
