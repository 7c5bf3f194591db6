"""Start-up time of the app, stage by stage, quiet and under CPU load; case switching; worklist.

Window: median over ``--runs`` fresh processes (``main.py --workspace <fresh copy of the demo
workspace>``, offscreen) of the time from spawning the process to the window being shown, and to
the first prediction painted on the overlay (no cached prediction: each run gets a fresh copy).
``stages_ms`` are the medians of viewer/timeline.py's stamps, in ms after the spawn: interpreter
up, Qt ready, window shown, workspace open (first case on screen, prediction asked), torch and
the model code imported (by the worker, after the window), model loaded,
first prediction done, overlay painted.
First run: the same with no workspace given or remembered (empty user data folder), so the demo
workspace is built (in a thread, after the window is shown).
Next case: in this process, the real window on a fresh demo copy with the bundled model; after
the first overlay, each PgDn once the worker has prefetched the next case, timed from the key
action to the next case's overlay painted; and the same with prefetch switched off (each case
predicted when opened, the behaviour before issue 17).
``--load N``: every figure again with N busy processes started by the benchmark
(benchmarks/busy_load.py), and the loaded/quiet ratios. Worklist: a generated workspace of
10,000 cases, timed from opening it to a filled, sorted model; plus a status filter and a search.

    .venv/bin/python benchmarks/bench_startup.py [--runs 5] [--load 2]

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
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_DRIVER", "PySide6")
from model.cpu_policy import apply_thread_policy  # noqa: E402

apply_thread_policy()  # this process runs the in-process window: the app's policy, before torch loads
from busy_load import busy_processes, machine  # noqa: E402

STAGES = ("python_ready", "qt_ready", "window_shown", "workspace_open", "torch_imported", "model_loaded",
          "first_prediction", "first_overlay")


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def time_app(demo: Path | None, tmp: Path, runs: int, tag: str) -> dict:
    """``runs`` fresh app processes on a fresh demo copy (or, demo=None, a first run that builds it)."""
    windows, overlays, stages = [], [], {k: [] for k in STAGES}
    for i in range(runs):
        cmd = [sys.executable, str(ROOT / "main.py"), "--device", "cpu"]
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "ADF_VIEWER_REPORT_STARTUP": "exit",
               "XDG_CONFIG_HOME": str(tmp / f"cfg-{tag}-{i}"), "PYTHONUNBUFFERED": "1"}
        for key in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME"):
            env.pop(key, None)  # the app chooses its own policy, as on a clinician's machine
        if demo is not None:
            ws = tmp / f"ws-{tag}-{i}"
            shutil.copytree(demo, ws)
            shutil.rmtree(ws / "predictions", ignore_errors=True)
            cmd += ["--workspace", str(ws)]
        else:
            env["ADF_VIEWER_DATA"] = str(tmp / f"data-{tag}-{i}")  # empty: the demo is built on this start
        t0 = time.time()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            out, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        events = {}
        for line in out.splitlines():
            if line.startswith("{"):
                ev = json.loads(line)
                events[ev["event"]] = ev
        if "window_shown" not in events or "first_overlay" not in events:
            raise RuntimeError(f"run {tag}-{i}: no start-up events (rc={proc.returncode}): {err[-2000:]}")
        windows.append((events["window_shown"]["t"] - t0) * 1000.0)
        overlays.append((events["first_overlay"]["t"] - t0) * 1000.0)
        stamps = dict(events["first_overlay"].get("stages", {}))
        stamps["first_overlay"] = events["first_overlay"]["t"]
        for k in STAGES:
            if k in stamps:
                stages[k].append((stamps[k] - t0) * 1000.0)
    return {"window_ms_median": _median(windows), "first_overlay_ms_median": _median(overlays),
            "window_ms_runs": [round(v, 1) for v in windows], "first_overlay_ms_runs": [round(v, 1) for v in overlays],
            "stages_ms": {k: _median(v) for k, v in stages.items()}}


def _wait(app, condition, timeout_s: float) -> bool:
    """Run the Qt event loop until ``condition()`` or the timeout (no busy spinning)."""
    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.time() + timeout_s
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: loop.quit() if condition() or time.time() > deadline else None)
    timer.start()
    if not condition():
        loop.exec()
    timer.stop()
    return bool(condition())


def time_next_case(demo: Path, tmp: Path, tag: str, prefetch: bool, steps: int = 5) -> dict:
    """PgDn through a fresh demo copy in the real window; ms from the step to the next overlay painted."""
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    import viewer.main_window as mw
    import viewer.predictions as preds
    from viewer.app import make_app, settings_at

    app = make_app()
    ws = tmp / f"nc-{tag}-{'on' if prefetch else 'off'}"
    shutil.copytree(demo, ws)
    shutil.rmtree(ws / "predictions", ignore_errors=True)
    depth = preds.PREFETCH_DEPTH  # how many following cases the window asks the worker to prefetch
    preds.PREFETCH_DEPTH = depth if prefetch else 0
    win = mw.MainWindow(settings_at(tmp / f"nc-{tag}.ini"), device="cpu")
    win.resize(1400, 850)
    win.show()
    shown: list[str] = []
    win.predictionShown.connect(shown.append)
    times: list[float] = []
    try:
        win.open_workspace(ws)
        if not _wait(app, lambda: bool(shown), 180):
            raise RuntimeError("no first overlay")
        for _ in range(steps):
            row = win.worklist.currentIndex().row()
            if row + 1 >= win.worklist_proxy.rowCount():
                break
            nxt = win.worklist_model.case_at(win.worklist_proxy.mapToSource(win.worklist_proxy.index(row + 1, 0)).row()).id
            if prefetch and not _wait(app, lambda n=nxt: win.worker.kept_images(n) is not None, 180):
                raise RuntimeError(f"{nxt} was never prefetched")
            _wait(app, lambda: False, 0.2)  # let the UI settle, as a clinician looks at the case
            shown.clear()
            loop = QEventLoop()
            win.predictionShown.connect(loop.quit)  # signal-driven: no polling delay in the figure
            QTimer.singleShot(180000, loop.quit)
            t0 = time.perf_counter()
            win.next_case()
            if nxt not in shown:
                loop.exec()
            win.predictionShown.disconnect(loop.quit)
            if nxt not in shown:
                raise RuntimeError(f"no overlay for {nxt}")
            QApplication.processEvents()  # the repaint the new overlay asked for
            times.append((time.perf_counter() - t0) * 1000.0)
        stats = dict(win.worker.stats)
    finally:
        win.close()
        preds.PREFETCH_DEPTH = depth
        QApplication.processEvents()
    return {"ms_median": _median(times), "ms_max": round(max(times), 1) if times else None,
            "ms_runs": [round(t, 1) for t in times], "worker": stats}


def next_case_figures(demo: Path, tmp: Path, tag: str) -> dict:
    return {"from_prefetch": time_next_case(demo, tmp, tag, prefetch=True),
            "without_prefetch": time_next_case(demo, tmp, tag, prefetch=False)}


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


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--first-runs", type=int, default=3, help="runs that build the demo workspace (0: skip)")
    ap.add_argument("--load", type=int, default=0, help="also measure with N busy processes (0: quiet only)")
    ap.add_argument("--no-next-case", action="store_true")
    ap.add_argument("--no-worklist", action="store_true")
    args = ap.parse_args()
    from training.demo import build_demo_workspace

    result: dict = {"quiet_machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        demo = build_demo_workspace(tmp_path / "demo")
        result.update(time_app(demo, tmp_path, args.runs, "quiet"))
        if args.first_runs:
            result["first_run"] = time_app(None, tmp_path, args.first_runs, "first-quiet")
        if not args.no_next_case:
            result["next_case"] = next_case_figures(demo, tmp_path, "quiet")
        if args.load > 0:
            with busy_processes(args.load):
                loaded = time_app(demo, tmp_path, args.runs, "loaded")
                if args.first_runs:
                    loaded["first_run"] = time_app(None, tmp_path, args.first_runs, "first-loaded")
                if not args.no_next_case:
                    loaded["next_case"] = next_case_figures(demo, tmp_path, "loaded")
                loaded["machine"] = machine()
            loaded["busy_processes"] = args.load
            result["loaded"] = loaded
            result["first_overlay_loaded_over_quiet"] = _ratio(loaded["first_overlay_ms_median"],
                                                               result["first_overlay_ms_median"])
            result["window_loaded_over_quiet"] = _ratio(loaded["window_ms_median"], result["window_ms_median"])
        if not args.no_worklist:
            result.update(time_worklist(make_big_workspace(tmp_path / "big")))
    result["cpu_threads"] = os.cpu_count()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
