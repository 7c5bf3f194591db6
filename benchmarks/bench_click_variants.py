"""Which click inference to ship: the variants compared on Kvasir ``val_choose`` (issue 16).

    .venv/bin/python benchmarks/bench_click_variants.py --csv runs/eval/kvasir_val_choose.csv \\
        [--model resources/models/adf-tiny] [--max-clicks 10] [--variants old,r8,r8+last,r8+all,r8+focal] [--limit N]

Same robot clinician as ``python -m training evaluate-clicks``, starting from the automatic mask.
Variants (the shipped predictor is ``r8+all``; this script switches its parts off):
``old``: 5 px click disks at the network input whatever its size, no sticking (before stop 24);
``rN``: disks of N px at the input; ``gK``: click maps multiplied by K (join parts with ``*``, e.g. ``g2*r8+all``); ``+last``: only the
newest click's disk keeps its sign; ``+all``: every click's disk does (``stick_clicks``);
``+focal``: FocalClick-style merge (the old mask outside the changed region at the click).
``click_fixed`` is the share of clicks whose pixel the network itself put on the click's side.
One JSON line per variant; ``evaluate`` CSVs come from ``python -m training.data ../shared/data runs/eval``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import model.interactive as mi  # noqa: E402

REAL_CLICK_MAPS = mi.click_maps
REAL_STICK = mi.stick_clicks


def _focal(prev: np.ndarray, new: np.ndarray, c: mi.Click) -> np.ndarray:
    _, lab = cv2.connectedComponents((new != prev).astype(np.uint8), connectivity=8)
    k = lab[int(c.y), int(c.x)]
    out = prev.copy()
    if k > 0:
        out[lab == k] = new[lab == k]
    return out


def run_variant(pred, rows, variant: str, max_clicks: int) -> dict:
    from training.evaluate import _load_label, prepare_inputs
    from training.evaluate_clicks import noc
    from training.metrics import dice_score

    gain, radius = 1.0, None
    head, _, tail = variant.partition("+")
    for part in head.split("*"):
        if part == "old":
            radius = mi.CLICK_RADIUS
        elif part.startswith("r"):
            radius = int(part[1:])
        elif part.startswith("g"):
            gain = float(part[1:])

    def maps(clicks, prev, src, size, r=mi.CLICK_RADIUS):  # noqa: ANN001
        m = REAL_CLICK_MAPS(clicks, prev, src, size, radius if radius is not None else r)
        m[..., :2] *= gain
        return m

    mi.click_maps = maps
    mi.stick_clicks = lambda mask, clicks, r: mask.astype(bool).copy()  # the predictor's own sticking off
    curves, fixed = [], []
    try:
        for row in rows:
            wli, nbi, hom, _, _ = prepare_inputs(row, True, False, False)
            gt = _load_label(row.label, wli.shape[:2])
            if not gt.any():
                continue
            h, w = gt.shape
            size = pred.size_for(h, w)
            rr = (radius if radius is not None else mi.input_radius(size))
            axes = (rr * w / size, rr * h / size)
            mask = pred.predict(wli, nbi, homography=hom).mask
            d, clicks = [dice_score(mask, gt)], []
            for k in range(max_clicks):
                c = mi.first_click(gt) if k == 0 else mi.next_click(mask, gt)
                if c is None:
                    d += [d[-1]] * (max_clicks - k)
                    break
                clicks.append(c)
                new = pred.predict_clicks(wli, nbi, hom, clicks, mask).mask
                fixed.append(bool(new[int(c.y), int(c.x)]) == c.positive)
                if tail == "focal":
                    new = _focal(mask, new, c)
                elif tail == "last":
                    new = REAL_STICK(new, [c], axes)
                elif tail == "all":
                    new = REAL_STICK(new, clicks, axes)
                mask = new
                d.append(dice_score(mask, gt))
            curves.append(d)
    finally:
        mi.click_maps, mi.stick_clicks = REAL_CLICK_MAPS, REAL_STICK
    arr = np.array(curves)
    return {"variant": variant, "n": len(curves),
            "noc85": round(float(np.mean([noc(x, 0.85, max_clicks) for x in curves])), 3),
            "noc90": round(float(np.mean([noc(x, 0.90, max_clicks) for x in curves])), 3),
            "dice_by_click": [round(float(v), 4) for v in arr.mean(axis=0)],
            "click_fixed": round(float(np.mean(fixed)), 3) if fixed else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", required=True)
    ap.add_argument("--model", default=str(ROOT / "resources" / "models" / "adf-tiny"))
    ap.add_argument("--max-clicks", type=int, default=10)
    ap.add_argument("--variants", default="old,r8,r8+last,r8+all,r8+focal")
    ap.add_argument("--limit", type=int, default=0, help="only the first N cases (a quick look)")
    args = ap.parse_args()
    from model.predictor import Predictor
    from training.evaluate import read_cases

    rows = read_cases(args.csv)
    rows = rows[: args.limit] if args.limit else rows
    pred = Predictor.load(args.model, device="cpu")
    if not pred.interactive:
        raise SystemExit(f"{args.model}: no interactive mode")
    for v in args.variants.split(","):
        t = time.perf_counter()
        res = run_variant(pred, rows, v.strip(), args.max_clicks)
        res["seconds"] = round(time.perf_counter() - t, 1)
        print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
