"""The packaged app: build time, bundle size, cold start of the bundle.

Build: ``packaging/build.py --clean`` (PyInstaller with an empty cache, as on a fresh CI machine),
wall seconds. Size: bytes of the files in dist/ADF-Viewer (and what the prune step left out).
Cold start: median over N fresh processes of ``ADF-Viewer --workspace <fresh copy of the demo
workspace> --device cpu`` (offscreen, ADF_VIEWER_REPORT_STARTUP=exit, a throw-away HOME), from
spawning the process to the window being shown and to the first prediction painted. Before each
run every file of the bundle is evicted from the page cache (posix_fadvise DONTNEED, no root
needed), so the bundle's ~0.9 GB is read from disk as on a first double-click.

    .venv/bin/python benchmarks/bench_package.py [--runs 5] [--no-build]

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
sys.path.insert(0, str(ROOT / "packaging"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import build as pkg_build  # noqa: E402  (packaging/build.py)


def evict(path: Path) -> int:
    """Drop the bundle's files from the page cache; returns how many files were advised."""
    n = 0
    if not hasattr(os, "posix_fadvise"):
        return 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                continue
            try:
                fd = os.open(p, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                n += 1
            finally:
                os.close(fd)
    return n


def time_bundle(bundle: Path, demo: Path, tmp: Path, runs: int, cold: bool) -> dict:
    exe = pkg_build.executable(bundle)
    windows, overlays, evicted = [], [], 0
    for i in range(runs):
        ws = tmp / f"ws-{i}"
        shutil.copytree(demo, ws)
        shutil.rmtree(ws / "predictions", ignore_errors=True)
        home = tmp / f"home-{i}"
        home.mkdir()
        env = {**pkg_build.isolated_env(home), "ADF_VIEWER_REPORT_STARTUP": "exit"}
        if cold:
            evicted = evict(bundle)
        t0 = time.time()
        proc = subprocess.Popen([str(exe), "--workspace", str(ws), "--device", "cpu"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=tmp)
        try:
            out, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        events = {}
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
            "window_ms_runs": [round(v, 1) for v in windows],
            "first_overlay_ms_runs": [round(v, 1) for v in overlays], "files_evicted_per_run": evicted}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-build", action="store_true", help="time the existing dist/ADF-Viewer")
    ap.add_argument("--warm", action="store_true", help="also time N runs without evicting the page cache")
    args = ap.parse_args()
    bundle = ROOT / "dist" / pkg_build.APP
    result: dict = {"cpu_threads": os.cpu_count(), "load_avg_before": list(os.getloadavg())}
    if not args.no_build:
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py"), "--clean"], cwd=ROOT,
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stdout[-3000:], out.stderr[-3000:], file=sys.stderr)
            return 1
        built = json.loads(out.stdout.strip().splitlines()[-1])
        result.update({"build_s": built["build_s"], "build_total_s": round(time.perf_counter() - t0, 1),
                       "pruned_bytes": built["pruned_bytes"], "pruned_files": built["pruned_files"]})
    if not pkg_build.executable(bundle).is_file():
        print(f"no bundle at {bundle}: run make package (or drop --no-build)", file=sys.stderr)
        return 1
    result["bundle_bytes"] = pkg_build.tree_bytes(bundle)
    result["bundle_files"] = sum(len(f) for _d, _s, f in os.walk(bundle))
    from training.demo import build_demo_workspace

    with tempfile.TemporaryDirectory(prefix="adf-bench-package-") as tmp_s:
        tmp = Path(tmp_s)
        demo = build_demo_workspace(tmp / "demo")
        (tmp / "cold").mkdir()
        result["cold"] = time_bundle(bundle, demo, tmp / "cold", args.runs, cold=True)
        if args.warm:
            (tmp / "warm").mkdir()
            result["warm"] = time_bundle(bundle, demo, tmp / "warm", args.runs, cold=False)
    result["window_ms_median"] = result["cold"]["window_ms_median"]
    result["load_avg_after"] = list(os.getloadavg())
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
