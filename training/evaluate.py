"""``python -m training evaluate``: measure a model on a CSV of cases, at each WLI image's own size.

    python -m training evaluate --model PATH --csv FILE [--pseudo-nbi] [--wli-only | --nbi-only]
        [--no-registration] [--no-tta] [--other-device] [--no-noise-check] [--device D]
        [--per-case OUT.csv] [--report DIR] [--ci-block N]

PATH is the model's .json card or its path without extension. CSV columns
``wli_path,nbi_path,label_path`` (paths relative to the CSV; ``nbi_path`` may be empty; label
pixels > 0 = tumour). The last stdout line is one JSON object with n, n_positive, dice, iou,
hd95, sensitivity, specificity, false_positive_rate, ms_per_case (see training.metrics for
which cases each number averages over), ``by_size`` (Dice, sensitivity and detection per
lesion-size bin), ``ci95`` (95 % bootstrap intervals of Dice and sensitivity; ``--ci-block``) and,
whenever NBI is used, ``dice_nbi_noise``: the Dice with every NBI image
replaced by noise (seeded per case). A network that ignores its NBI stream scores the same
with noise; one that uses it drops.

The inference-time switches are the ablations of DESIGN.md: ``--wli-only`` ignores NBI,
``--nbi-only`` segments from NBI alone (networks with NBI skips, release 3 on),
``--no-registration`` feeds the NBI unregistered (identity homography) instead of the
homography that model.registration estimates, ``--no-tta`` ignores the card's test-time
flips (the model as the app would run it is the default), ``--pseudo-nbi`` synthesises NBI for cases
without one (seeded per case, with the same small random warp as training). ``--other-device``
renders every image (before any pseudo-NBI) with ``training.scope_aug.other_device``, a change
of endoscope that training never sees.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from training.metrics import CaseMetrics, aggregate, by_lesion_size, case_metrics, interval_summary


@dataclass
class CaseRow:
    """One CSV row with its paths resolved against the CSV's folder."""

    name: str
    wli: Path
    nbi: Path | None
    label: Path


def read_cases(csv_path: str | Path) -> list[CaseRow]:
    """Parse the evaluation CSV; raises ValueError with the line number on a bad row."""
    csv_path = Path(csv_path)
    base = csv_path.parent
    rows: list[CaseRow] = []
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        need = {"wli_path", "label_path"}
        if reader.fieldnames is None or not need <= {c.strip() for c in reader.fieldnames}:
            raise ValueError(f"{csv_path}: needs columns wli_path,nbi_path,label_path (got {reader.fieldnames})")
        for lineno, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            if not row.get("wli_path"):
                continue
            if not row.get("label_path"):
                raise ValueError(f"{csv_path}:{lineno}: empty label_path")
            nbi = row.get("nbi_path") or ""
            rows.append(
                CaseRow(
                    name=row["wli_path"],
                    wli=base / row["wli_path"],
                    nbi=(base / nbi) if nbi else None,
                    label=base / row["label_path"],
                )
            )
    return rows


def case_seed(row: CaseRow) -> int:
    """A stable per-case seed from the WLI file's bytes: the same pseudo-NBI, noise and other-device
    rendering for a case in every run and process, whichever CSV lists it from whatever folder.

    Why the content, not the CSV's path string: that string changes with where the CSV lives, and a
    seed from it moved the same weights' seq1 Dice by 0.011 between two copies of one CSV."""
    return int.from_bytes(hashlib.sha256(row.wli.read_bytes()).digest()[:8], "big")


def prepare_inputs(
    row: CaseRow, pseudo_nbi: bool, wli_only: bool, no_registration: bool, other_device: bool = False,
    wli: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, bool, float]:
    """(wli, nbi or None, homography NBI->WLI or None, synthetic?, registration ms).

    ``wli``: this image instead of the row's file (a diagnostic's re-rendering of it), so its
    pseudo-NBI and registration are made exactly as an evaluation makes them."""
    from training.imageio import read_rgb

    if wli is None:
        wli = read_rgb(row.wli)
    seed = case_seed(row)
    if other_device:
        from training.scope_aug import other_device as render

        wli = render(wli, seed % 2**32)
    nbi = None
    synthetic = False
    if not wli_only:
        if row.nbi is not None:
            nbi = read_rgb(row.nbi)
            if other_device:
                nbi = render(nbi, (seed + 1) % 2**32)
        elif pseudo_nbi:
            from model.pseudo_nbi import pseudo_nbi as make_pseudo

            nbi, _ = make_pseudo(wli, np.random.default_rng(seed), warp=True)
            synthetic = True
    if nbi is None:
        return wli, None, None, synthetic, 0.0
    if no_registration:
        if nbi.shape[:2] != wli.shape[:2]:
            # unregistered but different sizes: only a scale to the WLI frame
            sy, sx = wli.shape[0] / nbi.shape[0], wli.shape[1] / nbi.shape[1]
            return wli, nbi, np.diag([sx, sy, 1.0]), synthetic, 0.0
        return wli, nbi, np.eye(3), synthetic, 0.0
    from model.registration import register_pair

    t = time.perf_counter()
    reg = register_pair(wli, nbi)
    return wli, nbi, np.asarray(reg.homography, dtype=np.float64), synthetic, (time.perf_counter() - t) * 1000


def _load_label(path: Path, shape: tuple[int, int]) -> np.ndarray:
    from training.imageio import read_mask

    gt = read_mask(path)
    if gt.shape != shape:
        print(f"warning: {path}: label {gt.shape} resized to the WLI size {shape}", file=sys.stderr)
        gt = cv2.resize(gt.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    return gt


PredictFn = Callable[[np.ndarray, np.ndarray | None, np.ndarray | None], np.ndarray]


def noise_like(img: np.ndarray, row: CaseRow) -> np.ndarray:
    """Uniform noise of an image's shape, seeded by the case (the NBI-ignored check)."""
    return np.random.default_rng(case_seed(row) ^ 0x5EED).integers(0, 256, img.shape, dtype=np.uint8)


def evaluate_rows(
    rows: list[CaseRow],
    predict: PredictFn,
    pseudo_nbi: bool = False,
    wli_only: bool = False,
    no_registration: bool = False,
    progress: bool = True,
    other_device: bool = False,
    noise_check: bool = True,
    ci_block: int = 1,
) -> tuple[dict, list[tuple[str, CaseMetrics]]]:
    """Run ``predict(wli, nbi, homography) -> bool mask (H,W)`` on every row; (summary, per case).

    With ``noise_check`` every case that has NBI is predicted a second time with its NBI
    replaced by noise; the summary's ``dice_nbi_noise`` is that Dice (None without NBI).
    ``ci95``: 95 % bootstrap intervals of Dice and sensitivity, runs of ``ci_block`` consecutive
    cases resampled together (``training.metrics.bootstrap_ci``)."""
    per_case: list[tuple[str, CaseMetrics]] = []
    noise_case: list[CaseMetrics] = []
    ms: list[float] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(rows), desc="evaluate", file=sys.stderr, mininterval=2.0)
    for row in rows:
        wli, nbi, hom, _, reg_ms = prepare_inputs(row, pseudo_nbi, wli_only, no_registration, other_device)
        t1 = time.perf_counter()
        pred = predict(wli, nbi, hom)
        t2 = time.perf_counter()
        if pred.shape != wli.shape[:2]:
            raise ValueError(f"{row.name}: prediction {pred.shape} is not at the WLI size {wli.shape[:2]}")
        gt = _load_label(row.label, wli.shape[:2])
        per_case.append((row.name, case_metrics(pred, gt)))
        if noise_check and nbi is not None:
            noise_case.append(case_metrics(predict(wli, noise_like(nbi, row), hom), gt))
        # registration + network (not file decoding): what a user waits for per case
        ms.append((t2 - t1) * 1000 + reg_ms)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    summary = aggregate(m for _, m in per_case)
    summary["ms_per_case"] = float(np.mean(ms)) if ms else None
    summary["by_size"] = by_lesion_size(m for _, m in per_case)
    summary["ci95"] = interval_summary([m for _, m in per_case], block=ci_block)
    summary["dice_nbi_noise"] = aggregate(noise_case)["dice"] if noise_case else None
    summary["fpr_nbi_noise"] = aggregate(noise_case)["false_positive_rate"] if noise_case else None
    return summary, per_case


def write_per_case(path: str | Path, per_case: list[tuple[str, CaseMetrics]]) -> None:
    """``case,dice,iou,hd95,gt_area,pred_area`` (one row per case, CSV order)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["case", "dice", "iou", "hd95", "gt_area", "pred_area"])
        for name, m in per_case:
            w.writerow([name, f"{m.dice:.6f}", f"{m.iou:.6f}", f"{m.hd95:.3f}", m.gt_area, m.pred_area])


def draw_outline(img: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], thickness: int) -> None:
    """Draw the mask's outer contours onto ``img`` in place (reports and documentation figures)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(img, contours, -1, colour, thickness)


def _tile(img: np.ndarray, h: int) -> np.ndarray:
    f = h / img.shape[0]
    return cv2.resize(img, (max(1, round(img.shape[1] * f)), h), interpolation=cv2.INTER_AREA)


def write_report(
    out_dir: str | Path,
    rows: list[CaseRow],
    per_case: list[tuple[str, CaseMetrics]],
    predict: PredictFn,
    opts: dict,
    k: int = 4,
    tile_h: int = 256,
) -> Path:
    """A PNG sheet of the k best and k worst cases: WLI | NBI (in the WLI frame) | truth (green)
    vs prediction (red) outlines. Worst includes tumour-free cases with false positives."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_name = {r.name: r for r in rows}
    pos = [(n, m) for n, m in per_case if m.gt_area > 0]
    neg_fp = [(n, m) for n, m in per_case if m.gt_area == 0 and m.pred_area > 0]
    ranked = sorted(pos, key=lambda nm: nm[1].dice)
    worst = ranked[:k]
    best = ranked[::-1][:k]
    worst_neg = sorted(neg_fp, key=lambda nm: -nm[1].pred_area)[: max(0, k - len(worst))] if len(worst) < k else []
    picks = [("best", n, m) for n, m in best] + [("worst", n, m) for n, m in worst + worst_neg]
    lines = []
    for tag, name, m in picks:
        row = by_name[name]
        wli, nbi, hom, synth, _ = prepare_inputs(row, **opts)
        pred = predict(wli, nbi, hom)
        gt = _load_label(row.label, wli.shape[:2])
        h, w = wli.shape[:2]
        if nbi is not None:
            nbi_w = cv2.warpPerspective(nbi, hom if hom is not None else np.eye(3), (w, h))
        else:
            nbi_w = np.zeros_like(wli)
            cv2.putText(nbi_w, "no NBI (WLI-only)", (10, h // 2), cv2.FONT_HERSHEY_SIMPLEX, max(0.5, w / 600), (255, 255, 255), 2)
        over = wli.copy()
        th = max(1, round(max(h, w) / 300))
        draw_outline(over, gt, (0, 255, 0), th)
        draw_outline(over, pred, (255, 0, 0), th)
        tiles = [_tile(x, tile_h) for x in (wli, nbi_w, over)]
        line = np.concatenate(tiles, axis=1)
        label = f"{tag} dice={m.dice:.3f} gt={m.gt_area} pred={m.pred_area} {name}" + (" [synthetic NBI]" if synth else "")
        cv2.putText(line, label[:110], (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1, cv2.LINE_AA)
        lines.append(line)
    if not lines:
        lines = [np.zeros((tile_h, tile_h * 3, 3), np.uint8)]
    width = max(x.shape[1] for x in lines)
    lines = [np.pad(x, ((0, 0), (0, width - x.shape[1]), (0, 0))) for x in lines]
    sheet = np.concatenate(lines, axis=0)
    path = out / "report.png"
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return path


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="the model's .json card or its path without extension")
    p.add_argument("--csv", required=True, help="CSV with wli_path,nbi_path,label_path (relative to the CSV)")
    p.add_argument("--pseudo-nbi", action="store_true", help="synthesise NBI where nbi_path is empty")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--wli-only", action="store_true", help="ignore NBI (WLI-only mode)")
    mode.add_argument("--nbi-only", action="store_true",
                      help="segment from NBI alone where a case has it (networks with NBI skips)")
    p.add_argument("--other-device", action="store_true",
                   help="render every image as the held-out 'other device' (training.scope_aug.other_device)")
    p.add_argument("--input-size", type=int, default=None,
                   help="network input size in px instead of the card's (ablation: resolution)")
    p.add_argument("--no-noise-check", action="store_true",
                   help="skip the second pass with NBI replaced by noise (dice_nbi_noise)")
    p.add_argument("--no-registration", action="store_true", help="use NBI unregistered (identity homography)")
    p.add_argument("--no-tta", action="store_true", help="ignore the card's test_time_flips (one plain view)")
    p.add_argument("--ci-block", type=_positive_int, default=1, metavar="N",
                   help="bootstrap intervals resample runs of N consecutive cases (frames of one recording "
                        "are alike: use ~3 for a laryngeal sequence of 30 frames; 1 for independent images)")
    p.add_argument("--device", default="auto")
    p.add_argument("--per-case", default=None, metavar="OUT.csv")
    p.add_argument("--report", default=None, metavar="DIR")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rows = read_cases(args.csv)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        print(json.dumps({"error": str(e)}), flush=True)
        return 2
    from model.predictor import Predictor

    try:
        predictor = Predictor.load(args.model, device=args.device, tta=not args.no_tta)
    except (OSError, ValueError) as e:  # ModelFileError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        print(json.dumps({"error": str(e)}), flush=True)
        return 2

    if args.input_size:
        predictor.input_size = int(args.input_size)
        predictor.no_upsampling = False  # the ablation asks for exactly this size
    if args.nbi_only:
        try:
            predictor.set_streams("nbi")
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            print(json.dumps({"error": str(e)}), flush=True)
            return 2

    def predict(wli: np.ndarray, nbi: np.ndarray | None, hom: np.ndarray | None) -> np.ndarray:
        return predictor.predict(wli, nbi, homography=hom).mask

    opts = {"pseudo_nbi": args.pseudo_nbi, "wli_only": args.wli_only, "no_registration": args.no_registration,
            "other_device": args.other_device}
    summary, per_case = evaluate_rows(rows, predict, progress=not args.no_progress,
                                      noise_check=not args.no_noise_check, ci_block=args.ci_block, **opts)
    if args.per_case:
        write_per_case(args.per_case, per_case)
    if args.report:
        summary["report"] = str(write_report(args.report, rows, per_case, predict, opts))
    summary.update(
        {
            "model_id": predictor.model_id,
            "device": predictor.device,
            "csv": str(args.csv),
            "mode": "wli-only" if args.wli_only else "nbi-only" if args.nbi_only else
                    ("no-registration" if args.no_registration else "adf"),
            "other_device": args.other_device,
            "pseudo_nbi": args.pseudo_nbi,
            "test_time_views": len(predictor.flips),
            "input_size": predictor.input_size,
        }
    )
    print(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()}),
          flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
