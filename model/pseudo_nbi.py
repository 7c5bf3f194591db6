"""Pseudo-NBI: a Narrow-Band-Imaging-like image synthesised from a white-light image.

Why: no public paired WLI/NBI set with masks exists, so training on WLI-only public data needs an
NBI stand-in. NBI displays are built from two narrow bands: the 540 nm (green) band shown in red,
the 415 nm (blue) band shown in green and blue. From an RGB white-light frame that is
``nbi = (G, B, B)``; local contrast enhancement (CLAHE) and a darkening gamma give the dark
green-cyan look with dark vessels. A small random homography mimics the second capture, so the
registration step and the network see a misaligned pair as they will in the clinic.

No torch, no Qt (DESIGN.md).
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["pseudo_nbi", "nbi_colour", "random_homography"]

_CLAHE_CLIP = 2.0
_CLAHE_TILES = (8, 8)
_GAMMA = 1.25
_GAMMA_LUT = np.clip(((np.arange(256) / 255.0) ** _GAMMA) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def nbi_colour(wli: np.ndarray) -> np.ndarray:
    """The unwarped pseudo-NBI of an RGB uint8 image: (G, B, B), CLAHE per band, gamma 1.25."""
    if wli.ndim != 3 or wli.shape[2] != 3 or wli.dtype != np.uint8:
        raise ValueError(f"pseudo_nbi wants an (H, W, 3) uint8 RGB image, got {wli.shape} {wli.dtype}")
    clahe = cv2.createCLAHE(clipLimit=_CLAHE_CLIP, tileGridSize=_CLAHE_TILES)
    g = cv2.LUT(clahe.apply(np.ascontiguousarray(wli[:, :, 1])), _GAMMA_LUT)
    b = cv2.LUT(clahe.apply(np.ascontiguousarray(wli[:, :, 2])), _GAMMA_LUT)
    return np.ascontiguousarray(np.stack([g, b, b], axis=2))


def random_homography(width: int, height: int, rng: np.random.Generator,
                      max_corner_shift: float = 0.04) -> np.ndarray:
    """A WLI->NBI homography moving each corner by up to ``max_corner_shift`` x image size."""
    src = np.float32([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])
    shift = rng.uniform(-max_corner_shift, max_corner_shift, size=(4, 2)) * np.float32([width, height])
    dst = (src + shift).astype(np.float32)
    return cv2.getPerspectiveTransform(src, dst).astype(np.float64)


def pseudo_nbi(wli: np.ndarray, rng: np.random.Generator | int | None = None,
               warp: bool = True, max_corner_shift: float = 0.04) -> tuple[np.ndarray, np.ndarray]:
    """Synthesise an NBI image from ``wli`` (RGB uint8, H x W x 3).

    Returns ``(nbi, H)``: ``nbi`` has the size of ``wli``; ``H`` (float64 3x3) maps NBI pixel
    coordinates to WLI pixel coordinates, so ``cv2.warpPerspective(nbi, H, (w, h))`` is the
    unwarped pseudo-NBI (up to resampling and the border). Deterministic for an int seed or a
    seeded Generator; ``warp=False`` gives the identity and no resampling.
    """
    base = nbi_colour(wli)
    h, w = base.shape[:2]
    if not warp or max_corner_shift <= 0:
        return base, np.eye(3, dtype=np.float64)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    h_w2n = random_homography(w, h, gen, max_corner_shift)
    nbi = cv2.warpPerspective(base, h_w2n, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT_101)
    h_n2w = np.linalg.inv(h_w2n)
    return nbi, h_n2w / h_n2w[2, 2]
