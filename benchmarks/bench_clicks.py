"""Clicks to correct: the network's interactive mode against GrabCut, side by side in one run.

    .venv/bin/python benchmarks/bench_clicks.py [--model resources/models/adf-tiny] [--max-clicks 20]
        [--kvasir N] [--shared ../shared/data]

On the project's validation splits, with the robot clinician of ``python -m training
evaluate-clicks`` (same protocol, same first click, both starting from the automatic prediction):
Kvasir's ``val_report`` half (never used to choose anything; ``--kvasir N`` scores the first N)
and the laryngeal recording seq2 (the bundled model trains on seq1 only: fold "a"). Then the
time of one click on a 1348x1076 pair (a seq2 frame scaled up to the other hospital's frame
size, with pseudo-NBI), median over clicks, the method's own time. Last stdout line: one JSON
object {"kvasir": {"model": {...}, "grabcut": {...}}, "seq2": {...}, "ms_per_click_1348x1076": {...},
"fewer_clicks": ...}. ``--timing-only``: the last part alone; ``--load N``: the timing again next to N busy
processes, in the same run (``model_loaded_over_quiet``).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def run_set(predictor, rows, method: str, max_clicks: int, pseudo_nbi: bool = True) -> dict:
    from training.evaluate import _load_label, prepare_inputs
    from training.evaluate_clicks import noc, run_case

    curves, ms = [], []
    for row in rows:
        wli, nbi, hom, _, _ = prepare_inputs(row, pseudo_nbi, False, False)
        gt = _load_label(row.label, wli.shape[:2])
        if not gt.any():
            continue
        d, m, _ = run_case(predictor, wli, nbi, hom, gt, method, max_clicks)
        curves.append(d)
        ms += m
    arr = np.array(curves)
    return {"n": len(curves), "noc85": round(float(np.mean([noc(d, 0.85, max_clicks) for d in curves])), 3),
            "noc90": round(float(np.mean([noc(d, 0.90, max_clicks) for d in curves])), 3),
            "dice_by_click": [round(float(x), 4) for x in arr.mean(axis=0)],
            "ms_per_click": round(float(np.mean(ms)), 1) if ms else None}


def click_time_large(predictor, shared: Path, clicks: int = 10) -> dict:
    """Median ms per click of each method on a 1348x1076 pair."""
    import cv2

    from model.interactive import Click, click_disks, grabcut
    from model.pseudo_nbi import pseudo_nbi
    from training.data import read_public_label, vocalfolds_split
    from training.imageio import read_rgb

    item = vocalfolds_split(shared / "vocalfolds", "val", "a")[0][10]
    wli = cv2.resize(read_rgb(item.image), (1348, 1076), interpolation=cv2.INTER_CUBIC)
    gt = cv2.resize(read_public_label(item).astype(np.uint8), (1348, 1076), interpolation=cv2.INTER_NEAREST) > 0
    nbi, hom = pseudo_nbi(wli, 3)
    mask = predictor.predict(wli, nbi, homography=hom).mask
    ys, xs = np.nonzero(gt)
    rng = np.random.default_rng(0)
    pts = [Click(float(xs[j]), float(ys[j]), bool(i % 3 != 2)) for i, j in enumerate(rng.integers(0, len(xs), clicks))]
    out = {}
    for method in ("model", "grabcut"):
        ts = []
        for k in range(1, clicks + 1):
            t = time.perf_counter()
            if method == "model":
                predictor.predict_clicks(wli, nbi, hom, pts[:k], mask)
            else:
                fg, bg = click_disks(pts[:k], gt.shape, 5)
                grabcut(wli, mask | fg, fg, bg)
            ts.append((time.perf_counter() - t) * 1000.0)
        out[method] = round(statistics.median(ts), 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "resources" / "models" / "adf-tiny"))
    ap.add_argument("--max-clicks", type=int, default=20)
    ap.add_argument("--kvasir", type=int, default=0, help="score only the first N Kvasir val_report images")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--load", type=int, default=0,
                    help="also time the clicks next to N busy processes (benchmarks/busy_load.py), same run")
    ap.add_argument("--timing-only", action="store_true",
                    help="only the ms per click on the 1348x1076 pair (e.g. again on a quiet machine)")
    args = ap.parse_args()
    from model.predictor import Predictor
    from training.data import write_public_eval_csvs
    from training.evaluate import read_cases

    predictor = Predictor.load(args.model, device="cpu")
    if not predictor.interactive:
        raise SystemExit(f"{args.model}: no interactive mode")
    shared = Path(args.shared)
    with tempfile.TemporaryDirectory() as tmp:
        csvs = write_public_eval_csvs(shared, Path(tmp))
        kv = read_cases(csvs["kvasir_val_report"])
        kv = kv[: args.kvasir] if args.kvasir else kv
        seq2 = read_cases(csvs["vocal_seq2"])
        res: dict = {"model_id": predictor.model_id, "max_clicks": args.max_clicks}
        for name, rows in () if args.timing_only else (("kvasir_val_report", kv), ("seq2", seq2)):
            res[name] = {m: run_set(predictor, rows, m, args.max_clicks) for m in ("model", "grabcut")}
            g, m = res[name]["grabcut"]["noc85"], res[name]["model"]["noc85"]
            res[name]["fewer_clicks_x"] = round(g / m, 2) if m > 0 else None
            print(json.dumps({name: res[name]}), file=sys.stderr, flush=True)
    res["ms_per_click_1348x1076"] = click_time_large(predictor, shared)
    if args.load > 0:
        from busy_load import busy_processes, machine

        with busy_processes(args.load):
            loaded = click_time_large(predictor, shared)
        res["ms_per_click_1348x1076_loaded"] = {**loaded, "busy_processes": args.load, "machine": machine()}
        res["model_loaded_over_quiet"] = round(loaded["model"] / res["ms_per_click_1348x1076"]["model"], 2)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
