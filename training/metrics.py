"""Segmentation metrics on binary masks (numpy + OpenCV only, no torch).

Shared by ``training.evaluate`` (per case, at the WLI image's own resolution) and the
validation pass of ``training.train``, so the number a run selects its best checkpoint on is
computed the same way as the number the evaluation reports.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import cv2
import numpy as np


@dataclass
class CaseMetrics:
    """Metrics of one case. dice/iou/hd95/sensitivity are meaningful only if gt_area > 0."""

    dice: float
    iou: float
    hd95: float
    sensitivity: float
    specificity: float
    gt_area: int
    pred_area: int
    image_px: int = 0  # H*W, so a lesion's size can be told as a share of the image
    hit: bool = False  # the prediction overlaps the lesion at all (detection, not outline)

    def to_dict(self) -> dict:
        return asdict(self)


def _as_bool(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m.any(axis=2)
    return m.astype(bool, copy=False)


def dice_iou(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Dice 2|A∩B| / (|A|+|B|) and IoU |A∩B| / |A∪B| of two binary masks; two empty masks agree
    perfectly: (1.0, 1.0).

    The one implementation of both (issue 19): evaluation and validation, the store's agreement of
    a human revision with the model, the viewer's save-conflict dialog and the annotation tests all
    call it. Non-zero is inside; an (H, W, C) mask counts a pixel inside when any channel is.
    """
    p, g = _as_bool(a), _as_bool(b)
    inter = int(np.count_nonzero(p & g))
    sa, sb = int(np.count_nonzero(p)), int(np.count_nonzero(g))
    if sa + sb == 0:
        return 1.0, 1.0
    return 2.0 * inter / (sa + sb), inter / (sa + sb - inter)


def dice_score(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice = 2|P∩G| / (|P|+|G|); two empty masks agree perfectly (1.0)."""
    return dice_iou(pred, gt)[0]


def iou_score(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU = |P∩G| / |P∪G|; two empty masks give 1.0."""
    return dice_iou(pred, gt)[1]


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of the mask with a 4-neighbour outside it (the image border counts as outside)."""
    m = mask.astype(np.uint8)
    padded = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8))[1:-1, 1:-1]
    return np.logical_and(mask, eroded == 0)


def _dist_to(boundary: np.ndarray) -> np.ndarray:
    """Euclidean distance (pixels) from every pixel to the nearest boundary pixel."""
    src = np.where(boundary, 0, 255).astype(np.uint8)
    return cv2.distanceTransform(src, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def hd95(pred: np.ndarray, gt: np.ndarray) -> float:
    """Symmetric 95th-percentile Hausdorff distance between the mask outlines, in pixels.

    Both empty -> 0. Exactly one empty -> the image diagonal (the largest distance possible in
    the image), so a missed tumour is penalised by a finite number that can still be averaged.
    """
    p, g = _as_bool(pred), _as_bool(gt)
    if p.shape != g.shape:
        raise ValueError(f"mask shapes differ: {p.shape} vs {g.shape}")
    if not p.any() and not g.any():
        return 0.0
    if not p.any() or not g.any():
        return float(math.hypot(*p.shape))
    bp, bg = _boundary(p), _boundary(g)
    d_p_to_g = _dist_to(bg)[bp]
    d_g_to_p = _dist_to(bp)[bg]
    return float(np.percentile(np.concatenate([d_p_to_g, d_g_to_p]), 95))


def case_metrics(pred: np.ndarray, gt: np.ndarray) -> CaseMetrics:
    """All per-case numbers at once (pred and gt must have the same shape)."""
    p, g = _as_bool(pred), _as_bool(gt)
    if p.shape != g.shape:
        raise ValueError(f"mask shapes differ: {p.shape} vs {g.shape}")
    tp = int(np.logical_and(p, g).sum())
    gt_area, pred_area = int(g.sum()), int(p.sum())
    fp = pred_area - tp
    fn = gt_area - tp
    tn = p.size - tp - fp - fn
    dice, iou = dice_iou(p, g)
    return CaseMetrics(
        dice=dice,
        iou=iou,
        hd95=hd95(p, g),
        sensitivity=tp / gt_area if gt_area else float("nan"),
        specificity=tn / (tn + fp) if (tn + fp) else 1.0,
        gt_area=gt_area,
        pred_area=pred_area,
        image_px=int(p.size),
        hit=tp > 0,
    )


def _mean(values: list[float]) -> float | None:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else None


def aggregate(cases: Iterable[CaseMetrics]) -> dict:
    """Summary as the evaluate CLI reports it.

    dice/iou/hd95/sensitivity average over cases with a non-empty label; specificity over all
    cases; false_positive_rate = share of empty-label cases with any predicted tumour pixel.
    A number that has no case to average over is ``None`` (JSON null), never a made-up 0 or 1.
    """
    cases = list(cases)
    pos = [c for c in cases if c.gt_area > 0]
    neg = [c for c in cases if c.gt_area == 0]
    return {
        "n": len(cases),
        "n_positive": len(pos),
        "dice": _mean([c.dice for c in pos]),
        "iou": _mean([c.iou for c in pos]),
        "hd95": _mean([c.hd95 for c in pos]),
        "sensitivity": _mean([c.sensitivity for c in pos]),
        "specificity": _mean([c.specificity for c in cases]),
        "false_positive_rate": (sum(1 for c in neg if c.pred_area > 0) / len(neg)) if neg else None,
    }


def bootstrap_ci(
    values: Iterable[float], block: int = 1, resamples: int = 10_000, level: float = 0.95, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile interval of the mean of ``values`` by a moving-block bootstrap (Kuensch 1989).

    Why: a laryngeal recording gives ~30 tumour frames, and one frame moves their mean by ~0.03,
    so a figure near a target needs its interval beside it. Consecutive frames of one recording
    are alike; resampling them one by one (``block`` 1, right for independent images such as
    Kvasir) makes the interval too narrow, so runs of ``block`` consecutive values (in the order
    given) are drawn instead. NaN values are left out; under two values there is no interval
    (None). Seeded: the same values give the same interval.
    """
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=np.float64)
    n = len(v)
    if n < 2:
        return None
    block = max(1, min(int(block), n))
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - block + 1, size=(resamples, -(-n // block)))
    idx = (starts[:, :, None] + np.arange(block)).reshape(resamples, -1)[:, :n]
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(v[idx].mean(axis=1), [tail, 100.0 - tail])
    return float(lo), float(hi)


def interval_summary(cases: list[CaseMetrics], block: int = 1) -> dict:
    """95 % bootstrap intervals of the positive cases' mean Dice and sensitivity (``bootstrap_ci``),
    in the cases' order, with the block length used."""
    pos = [c for c in cases if c.gt_area > 0]
    ci = {k: bootstrap_ci([getattr(c, k) for c in pos], block=block) for k in ("dice", "sensitivity")}
    return {k: (list(v) if v else None) for k, v in ci.items()} | {"block": int(block)}


# Lesion size as a share of the image: seq2's tumour covers ~1 %, Kvasir polyps ~5-30 %.
SIZE_BINS = (0.01, 0.03, 0.10)


def by_lesion_size(cases: Iterable[CaseMetrics], bins: tuple[float, ...] = SIZE_BINS) -> list[dict]:
    """Dice, sensitivity and detection rate per lesion-size bin (cases with a lesion only).

    Why: a mean Dice hides whether a model misses small, flat lesions; this is the table
    issue 15 asks for. ``detected`` is the share of lesions the prediction touches at all."""
    edges = (0.0, *bins, 1.0 + 1e-9)
    out = []
    pos = [c for c in cases if c.gt_area > 0 and c.image_px > 0]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = [c for c in pos if lo <= c.gt_area / c.image_px < hi]
        out.append({
            "area_pct": f"{100 * lo:g}-{100 * min(hi, 1.0):g}",
            "n": len(sel),
            "dice": _mean([c.dice for c in sel]),
            "sensitivity": _mean([c.sensitivity for c in sel]),
            "detected": (sum(c.hit for c in sel) / len(sel)) if sel else None,
        })
    return out
