"""Registration accuracy and speed, and import throughput of the demo pairs.

20 pairs made from the tests/data images: WLI -> pseudo-NBI with a random homography (corner
shifts up to 5 %), the NBI resized to another size (0.8-1.5x, other aspect); register_pair is
scored by the mean distance between where the true and the estimated NBI->WLI homographies send
the NBI corners. Then the bundled resources/demo/ pairs are imported into a fresh temporary
workspace (registration on). Last stdout line: one JSON object.

    .venv/bin/python benchmarks/bench_registration.py
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from model.pseudo_nbi import pseudo_nbi  # noqa: E402
from model.registration import corner_error, register_pair  # noqa: E402
from training.imageio import read_rgb  # noqa: E402


def registration(n: int = 20, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    files = sorted(p for p in (ROOT / "tests" / "data").iterdir()
                   if p.suffix in (".png", ".jpg") and "_mask" not in p.name and p.name != "cmyk.jpg")
    errs, ms, low = [], [], 0
    for i in range(n):
        wli = read_rgb(files[i % len(files)])
        nbi, h = pseudo_nbi(wli, rng, max_corner_shift=0.05)
        sx, sy = rng.uniform(0.8, 1.5), rng.uniform(0.8, 1.5)
        size = (round(wli.shape[1] * sx), round(wli.shape[0] * sy))
        nbi = cv2.resize(nbi, size, interpolation=cv2.INTER_AREA)
        h_true = h @ np.linalg.inv(np.diag([size[0] / wli.shape[1], size[1] / wli.shape[0], 1.0]))
        t = time.perf_counter()
        reg = register_pair(wli, nbi)
        ms.append(1000 * (time.perf_counter() - t))
        low += reg.quality != "good"
        errs.append(corner_error(reg.homography, h_true, nbi.shape))
    return {"pairs": n, "corner_err_mean_px": round(float(np.mean(errs)), 3),
            "corner_err_max_px": round(float(np.max(errs)), 3), "low_quality": low,
            "register_ms_mean": round(float(np.mean(ms)), 1)}


def demo_import() -> dict:
    from training.importer import import_sources
    from training.store import Workspace

    with tempfile.TemporaryDirectory() as tmp, Workspace.open(Path(tmp) / "ws", create=True) as ws:
        t = time.perf_counter()
        s = import_sources(ws, [ROOT / "resources" / "demo"], nbi_synthetic=True)
        dt = time.perf_counter() - t
    return {"demo_imported": s["imported"], "demo_import_s": round(dt, 2),
            "demo_import_ms_per_pair": round(1000 * dt / max(1, s["imported"]), 1)}


if __name__ == "__main__":
    cv2.setNumThreads(2)
    out = {"bench": "registration", **registration(), **demo_import()}
    print(json.dumps(out))
