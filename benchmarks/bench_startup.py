"""Start-up time of the app and the worklist open time for 10,000 cases.

Window: median over 5 fresh processes (``main.py --workspace <fresh copy of the demo workspace>``,
offscreen) of the time from spawning the process to the window being shown, and to the first
prediction painted on the overlay (no cached prediction: each run gets a fresh copy).
Worklist: a generated workspace of 10,000 cases (rows bulk-inserted in the store's schema), timed
from opening the workspace to a filled, sorted worklist model; plus a status filter and a search.

    .venv/bin/python benchmarks/bench_startup.py [--runs 5]

Last stdout line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_DRIVER", "PySide6")


def time_app(demo: Path, tmp: Path, runs: int) -> dict:
    windows, overlays = [], []
    for i in range(runs):
        ws = tmp / f"ws-{i}"
        shutil.copytree(demo, ws)
        shutil.rmtree(ws / "predictions", ignore_errors=True)
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "ADF_VIEWER_REPORT_STARTUP": "exit",
               "XDG_CONFIG_HOME": str(tmp / f"cfg-{i}"), "PYTHONUNBUFFERED": "1"}
        t0 = time.time()
        proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--workspace", str(ws), "--device", "cpu"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        events = {}
        try:
            out, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        for line in out.splitlines():
            if line.startswith("{"):
                ev = json.loads(line)
                events[ev["event"]] = ev["t"]
        if "window_shown" not in events or "first_overlay" not in events:
            raise RuntimeError(f"run {i}: no start-up events (rc={proc.returncode}): {err[-2000:]}")
        windows.append((events["window_shown"] - t0) * 1000.0)
        overlays.append((events["first_overlay"] - t0) * 1000.0)
    return {"window_ms_median": round(statistics.median(windows), 1),
            "first_overlay_ms_median": round(statistics.median(overlays), 1),
            "window_ms_runs": [round(v, 1) for v in windows], "first_overlay_ms_runs": [round(v, 1) for v in overlays]}


def make_big_workspace(path: Path, n: int = 10000) -> Path:
    """n case rows in the real schema (files are not needed to list them: the worklist reads none)."""
    import sqlite3

    from training.store import Workspace

    Workspace.open(path, create=True).close()
    db = sqlite3.connect(path / "workspace.sqlite")
    statuses = ("new", "predicted", "in_progress", "corrected", "approved", "excluded")
    ident = "[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]"
    rows = [(f"case-{i:05d}", f"P{i % 500:03d}", statuses[i % 6], f"images/case-{i:05d}/wli.png",
             f"{i:064x}", 1920, 1080, ident, "2026-11-27T00:00:00Z", f"2026-11-27T00:{i % 60:02d}:00Z",
             (i % 100) / 100.0 if i % 6 in (3, 4) else None) for i in range(n)]
    db.executemany("INSERT INTO cases (id, patient_id, status, wli_path, wli_sha256, width, height, homography, "
                   "created_at, updated_at, dice_vs_model) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.commit()
    db.close()
    return path


def time_worklist(path: Path) -> dict:
    from PySide6.QtCore import Qt

    from training.store import Workspace
    from viewer.app import make_app
    from viewer.worklist import WorklistFilter, WorklistModel

    make_app()
    model = WorklistModel()
    proxy = WorklistFilter()
    proxy.setSourceModel(model)
    t0 = time.perf_counter()
    ws = Workspace.open(path)
    cases = ws.cases()
    model.set_cases(cases)
    proxy.sort(0, Qt.SortOrder.AscendingOrder)
    t_open = (time.perf_counter() - t0) * 1000.0
    t1 = time.perf_counter()
    proxy.set_statuses({"corrected"})
    n_filtered = proxy.rowCount()
    t_filter = (time.perf_counter() - t1) * 1000.0
    proxy.set_statuses(set())
    t2 = time.perf_counter()
    proxy.set_text("P042")
    n_search = proxy.rowCount()
    t_search = (time.perf_counter() - t2) * 1000.0
    ws.close()
    return {"worklist_10k_open_ms": round(t_open, 1), "worklist_filter_ms": round(t_filter, 1),
            "worklist_search_ms": round(t_search, 1), "cases": len(cases), "filtered": n_filtered,
            "search_hits": n_search}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    from training.demo import build_demo_workspace

    result: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        demo = build_demo_workspace(tmp_path / "demo")
        result.update(time_app(demo, tmp_path, args.runs))
        result.update(time_worklist(make_big_workspace(tmp_path / "big")))
    result["cpu_threads"] = os.cpu_count()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
