"""``python -m training evaluate-clicks``: a robot clinician corrects every case with clicks.

    python -m training evaluate-clicks --model M --csv FILE [--pseudo-nbi] [--max-clicks 20]
        [--method model|grabcut] [--device D] [--per-case OUT.csv]

The standard protocol of interactive segmentation benchmarks (``model.interactive``): the first
click is positive, at the reference lesion's most interior point; every next click goes to the
largest error region of the current mask, at its most interior point (positive for a miss,
negative for a false region). Both methods start from the model's automatic prediction, so
click 0 is what the clinician sees when the case opens:

- ``model``: the network's interactive mode redraws the whole mask from all clicks so far and
  the current mask;
- ``grabcut``: the viewer's GrabCut refine (``model.interactive.grabcut``) with every click so
  far as a certain seed disk, from the current mask.

Cases without a lesion are skipped (there is nothing to click). NoC@85 / NoC@90 = clicks until
Dice >= 0.85 / 0.90 (0 when the automatic prediction already is); a case that never gets there
counts as --max-clicks. The last stdout line is one JSON object: n, method, noc85, noc90,
dice_by_click (mean Dice after 0..max clicks), ms_per_click (the method's own time per click,
not the robot's), model_id.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from training.evaluate import _load_label, prepare_inputs, read_cases
from training.metrics import dice_score

GRABCUT_SEED_RADIUS = 5  # px at image resolution: a click is a small certain disk, as a brush dot


def noc(dices: list[float], threshold: float, max_clicks: int) -> int:
    """Clicks until Dice reaches ``threshold`` (dices[k] = Dice after k clicks); max_clicks if never."""
    for k, d in enumerate(dices):
        if d >= threshold:
            return k
    return max_clicks


def run_case(predictor, wli: np.ndarray, nbi: np.ndarray | None, hom: np.ndarray | None, gt: np.ndarray,
             method: str, max_clicks: int) -> tuple[list[float], list[float], list]:
    """(Dice after 0..max_clicks clicks, ms per click, the clicks) for one case."""
    from model.interactive import click_disks, first_click, grabcut, next_click

    mask = predictor.predict(wli, nbi, homography=hom).mask
    dices = [dice_score(mask, gt)]
    ms: list[float] = []
    clicks: list = []
    for k in range(max_clicks):
        c = first_click(gt) if k == 0 else next_click(mask, gt)
        if c is None:  # the mask is exact: nothing left to click
            dices += [dices[-1]] * (max_clicks - k)
            break
        clicks.append(c)
        t = time.perf_counter()
        if method == "model":
            mask = predictor.predict_clicks(wli, nbi, hom, clicks, mask).mask
        else:
            fg, bg = click_disks(clicks, gt.shape, GRABCUT_SEED_RADIUS)
            res = grabcut(wli, mask | fg, fg, bg)
            if res is not None:
                mask = res[0]
            mask = (mask | fg) & ~bg
        ms.append((time.perf_counter() - t) * 1000.0)
        dices.append(dice_score(mask, gt))
    return dices, ms, clicks


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training evaluate-clicks", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="the model's .json card or its path without extension")
    p.add_argument("--csv", required=True, help="CSV with wli_path,nbi_path,label_path (relative to the CSV)")
    p.add_argument("--pseudo-nbi", action="store_true", help="synthesise NBI where nbi_path is empty")
    p.add_argument("--max-clicks", type=int, default=20)
    p.add_argument("--method", default="model", choices=["model", "grabcut"])
    p.add_argument("--device", default="auto")
    p.add_argument("--per-case", default=None, metavar="OUT.csv", help="Dice after each click, per case")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def fail(msg: str) -> int:
        print(f"error: {msg}", file=sys.stderr)
        print(json.dumps({"error": msg}), flush=True)
        return 2

    if args.max_clicks < 1:
        return fail("--max-clicks must be at least 1")
    try:
        rows = read_cases(args.csv)
    except (OSError, ValueError) as e:
        return fail(str(e))
    from model.predictor import Predictor

    try:
        predictor = Predictor.load(args.model, device=args.device)
    except (OSError, ValueError) as e:
        return fail(str(e))
    if args.method == "model" and not predictor.interactive:
        return fail(f"model {predictor.model_id} has no interactive mode; use --method grabcut or a model "
                    "trained with clicks (--interactive)")
    per_case: list[tuple[str, list[float]]] = []
    ms: list[float] = []
    for i, row in enumerate(rows):
        wli, nbi, hom, _, _ = prepare_inputs(row, args.pseudo_nbi, False, False)
        gt = _load_label(row.label, wli.shape[:2])
        if not gt.any():
            continue
        dices, case_ms, _ = run_case(predictor, wli, nbi, hom, gt, args.method, args.max_clicks)
        per_case.append((row.name, dices))
        ms += case_ms
        if not args.no_progress:
            print(f"{i + 1}/{len(rows)} {row.name}: Dice {dices[0]:.3f} -> {dices[-1]:.3f}", file=sys.stderr)
    if not per_case:
        return fail("no case with a lesion in the CSV")
    if args.per_case:
        out = Path(args.per_case)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["case", *[f"dice_{k}" for k in range(args.max_clicks + 1)]])
            for name, d in per_case:
                w.writerow([name, *[f"{x:.4f}" for x in d]])
    curves = np.array([d for _, d in per_case])
    summary = {
        "n": len(per_case),
        "method": args.method,
        "noc85": float(np.mean([noc(d, 0.85, args.max_clicks) for _, d in per_case])),
        "noc90": float(np.mean([noc(d, 0.90, args.max_clicks) for _, d in per_case])),
        "dice_by_click": [round(float(x), 4) for x in curves.mean(axis=0)],
        "ms_per_click": float(np.mean(ms)) if ms else None,
        "max_clicks": args.max_clicks,
        "model_id": predictor.model_id,
        "device": predictor.device,
        "csv": str(args.csv),
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
