"""Turning a probability map into the mask the clinician sees (no torch, no Qt).

One function used by the predictor and by the viewer when it shows a cached prediction, so a
cached and a fresh prediction of the same model give the same mask.
"""
from __future__ import annotations

import cv2
import numpy as np

THRESHOLD = 0.5
MIN_ISLAND_FRACTION = 0.001  # drop specks under 0.1 % of the image


def postprocess_mask(prob: np.ndarray, threshold: float = THRESHOLD,
                     min_island_fraction: float = MIN_ISLAND_FRACTION) -> np.ndarray:
    """Threshold, fill holes and drop islands smaller than a fraction of the image.

    ``prob`` is uint8 (prob x 255) or float in [0, 1]; returns a bool mask of the same size.
    """
    if prob.dtype == np.uint8:
        mask = (prob.astype(np.uint16) * 2 > int(round(threshold * 510))).astype(np.uint8)
    else:
        mask = (prob > threshold).astype(np.uint8)
    if not mask.any():
        return mask.astype(bool)
    h, w = mask.shape
    return drop_islands(fill_holes(mask), max(1, int(round(min_island_fraction * h * w))))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """A copy of a 0/1 (or bool) mask in which every background region that does not touch the
    image border is foreground, as uint8 0/1: the clean-up above and the editor's Fill holes tool."""
    h, w = mask.shape
    padded = np.zeros((h + 2, w + 2), np.uint8)
    padded[1:-1, 1:-1] = mask
    flood = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(padded, flood, (0, 0), 1)  # the background connected to the border
    out = np.asarray(mask, np.uint8).copy()
    out[padded[1:-1, 1:-1] == 0] = 1
    return out


def drop_islands(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """The mask (0/1 or bool) without its 8-connected foreground components smaller than
    ``min_pixels``, as bool: the clean-up above and the editor's Remove islands tool."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(np.asarray(mask, np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_pixels
    return keep[labels]
