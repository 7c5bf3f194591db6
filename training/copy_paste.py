"""Lesion copy-paste: a training recording's tumour placed elsewhere, blended into the mucosa.

Why (issue 15): with one laryngeal recording per fold, the network learns that recording's one
lesion in its one context, and on the other recording it misses tiny lesions (fold b on seq1)
and calls the flatter, redder part of a lesion normal mucosa (fold a on seq2). Pasting the
training lesion at another place, size and orientation, on the recording's own frames or on a
tumour-free recording's, shows it in contexts and at scales the recording never had. The paste
is a Poisson blend (``cv2.seamlessClone``, Perez et al. 2003): it keeps the lesion's texture
(its gradients) and takes its low-frequency colour from the mucosa it lands on, so each paste
is also a lesion of another colour. Copy-paste as augmentation: Ghiasi et al., CVPR 2021.
Decoys (``decoy_region``): the same cut-and-blend of a lesion-shaped piece of *normal* mucosa,
label unchanged. Without them the network can learn "a patch that does not match its
surroundings is tumour" (a shortcut the pastes teach), and it then marks whitish specular
spots and pale patches on tumour-free mucosa (r11 on seq6). No torch, no Qt.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["CopyPasteConfig", "decoy_region", "paste_lesion"]


@dataclass(frozen=True)
class CopyPasteConfig:
    """How a lesion is resized and where it may land."""

    scale: tuple[float, float] = (0.5, 1.4)  # log-uniform factor on the lesion's size
    ring_px: int = 3  # mucosa around the lesion the blend is solved over (its boundary colour)
    tries: int = 10  # positions drawn before giving up on this sample
    min_brightness: float = 0.6  # landing spot's mean grey >= this x the source ring's: not in the dark lumen
    own_colour: tuple[float, float] = (0.25, 1.0)  # share of the lesion's own colour kept over the blend's
    # share of pastes placed across the frame's edge, cut by it (a tumour leaving the endoscope's
    # view); 0 draws no extra random number, so runs without it are unchanged
    edge_cut: float = 0.0
    edge_inside: tuple[float, float] = (0.15, 0.85)  # share of the cut paste's extent left in the frame


def paste_lesion(
    dst: np.ndarray,
    dst_mask: np.ndarray,
    src: np.ndarray,
    src_mask: np.ndarray,
    rng: np.random.Generator,
    cfg: CopyPasteConfig = CopyPasteConfig(),
    label: bool = True,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """(image, mask, pasted): ``src``'s lesion blended into ``dst`` away from ``dst``'s lesion.

    ``dst``/``src`` are RGB uint8, the masks boolean of the images' sizes. The new mask is the
    union of ``dst_mask`` and the pasted lesion (``label`` False: ``dst_mask`` unchanged, the
    piece is a decoy); when no landing spot fits (lesion too big, frame all lumen), ``dst`` and
    ``dst_mask`` come back unchanged with ``pasted`` False.
    """
    if not src_mask.any():
        return dst, dst_mask, False
    ring = cfg.ring_px
    x0, y0, bw, bh = cv2.boundingRect(src_mask.astype(np.uint8))
    y1, x1 = y0 + bh, x0 + bw
    pad = ring + 2
    sy0, sy1 = max(0, y0 - pad), min(src.shape[0], y1 + pad)
    sx0, sx1 = max(0, x0 - pad), min(src.shape[1], x1 + pad)
    patch = src[sy0:sy1, sx0:sx1]
    lesion = src_mask[sy0:sy1, sx0:sx1].astype(np.uint8)
    s = float(np.exp(rng.uniform(np.log(cfg.scale[0]), np.log(cfg.scale[1]))))
    ph, pw = max(3, round(patch.shape[0] * s)), max(3, round(patch.shape[1] * s))
    patch = cv2.resize(patch, (pw, ph), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    lesion = cv2.resize(lesion, (pw, ph), interpolation=cv2.INTER_NEAREST)
    if rng.random() < 0.5:
        patch, lesion = patch[:, ::-1], lesion[:, ::-1]
    if rng.random() < 0.5:
        patch, lesion = patch[::-1], lesion[::-1]
    patch, lesion = np.ascontiguousarray(patch), np.ascontiguousarray(lesion)  # cv2 wants contiguous buffers
    if not lesion.any():
        return dst, dst_mask, False
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring + 1, 2 * ring + 1))
    blend = cv2.dilate(lesion, kernel) > 0
    grey_src = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY).astype(np.float32)
    ring_mean = float(grey_src[blend & (lesion == 0)].mean()) if (blend & (lesion == 0)).any() else float(grey_src.mean())
    h, w = dst.shape[:2]
    if ph + 4 > h or pw + 4 > w:
        return dst, dst_mask, False
    # a paste across the edge is solved on the frame mirrored outwards (its blend needs mucosa on
    # every side) and cropped back: only the part inside the frame is seen and labelled
    margin = max(ph, pw) + 2 if cfg.edge_cut > 0 and rng.random() < cfg.edge_cut else 0
    canvas_dst = cv2.copyMakeBorder(dst, margin, margin, margin, margin, cv2.BORDER_REFLECT_101) if margin else dst
    canvas_mask = np.pad(dst_mask, margin) if margin else dst_mask
    inside = np.pad(np.ones((h, w), bool), margin) if margin else None  # which canvas pixels are the frame
    grey_dst = cv2.cvtColor(canvas_dst, cv2.COLOR_RGB2GRAY).astype(np.float32)
    keep_out = cv2.dilate(canvas_mask.astype(np.uint8), kernel) > 0
    lesion_px = int((lesion > 0).sum())
    for _ in range(cfg.tries):
        if margin:
            ty, tx = _spot_across_edge(h, w, ph, pw, rng, cfg.edge_inside)
            ty, tx = ty + margin, tx + margin
        else:
            ty, tx = int(rng.integers(2, h - ph - 1)), int(rng.integers(2, w - pw - 1))
        seen = inside[ty:ty + ph, tx:tx + pw] if margin else blend
        if (keep_out[ty:ty + ph, tx:tx + pw] & blend).any():
            continue
        if margin:
            kept = int(((lesion > 0) & seen).sum())
            if kept < max(4, 0.1 * lesion_px) or kept == lesion_px:  # a sliver at least, and really cut
                continue
        if grey_dst[ty:ty + ph, tx:tx + pw][blend & seen].mean() < cfg.min_brightness * ring_mean:
            continue
        out, new_mask = _blend_at(canvas_dst, canvas_mask, patch, lesion, blend, ty, tx, rng, cfg, label)
        if margin:
            out = np.ascontiguousarray(out[margin:margin + h, margin:margin + w])
            new_mask = np.ascontiguousarray(new_mask[margin:margin + h, margin:margin + w])
        return out, new_mask, True
    return dst, dst_mask, False


def _spot_across_edge(h: int, w: int, ph: int, pw: int, rng: np.random.Generator,
                      inside: tuple[float, float]) -> tuple[int, int]:
    """Top-left corner (frame coordinates, may be negative) of a ``ph x pw`` patch that one frame
    edge, drawn at random, cuts so that a share in ``inside`` of its extent stays in the frame."""
    side = int(rng.integers(4))
    v = float(rng.uniform(*inside))
    if side < 2:  # top or bottom edge
        tx = int(rng.integers(2, w - pw - 1))
        return (-round((1.0 - v) * ph) if side == 0 else h - round(v * ph)), tx
    ty = int(rng.integers(2, h - ph - 1))
    return ty, (-round((1.0 - v) * pw) if side == 2 else w - round(v * pw))


def _blend_at(dst: np.ndarray, dst_mask: np.ndarray, patch: np.ndarray, lesion: np.ndarray, blend: np.ndarray,
              ty: int, tx: int, rng: np.random.Generator, cfg: CopyPasteConfig,
              label: bool) -> tuple[np.ndarray, np.ndarray]:
    """``patch`` Poisson-blended into ``dst`` with its top-left corner at (ty, tx); the new mask."""
    h, w = dst.shape[:2]
    ph, pw = patch.shape[:2]
    # src, mask and dst in one frame, so seamlessClone's placement (the mask's bounding box
    # centred on p) is the identity and the label lands exactly where the lesion does
    canvas = dst.copy()
    canvas[ty:ty + ph, tx:tx + pw] = patch
    blend_full = np.zeros((h, w), np.uint8)
    blend_full[ty:ty + ph, tx:tx + pw] = blend.astype(np.uint8) * 255
    bx, by, bw, bh = cv2.boundingRect(blend_full)
    centre = (bx + (bw - 1) // 2, by + (bh - 1) // 2)
    # (seamlessClone writes into the mask it is given: hand it a copy)
    poisson = cv2.seamlessClone(canvas, dst, blend_full.copy(), centre, cv2.NORMAL_CLONE).astype(np.float32)
    # the Poisson blend alone can fade a pale lesion into the mucosa it is labelled apart
    # from; keep a random share of its own colour, and touch nothing outside the blend
    # region (seamlessClone rewrites its whole bounding box slightly)
    own = rng.uniform(*cfg.own_colour)
    weight = cv2.GaussianBlur(blend_full.astype(np.float32) / 255.0, (0, 0), 1.0)[..., None]
    weight[blend_full == 0] = 0.0
    mixed = own * canvas.astype(np.float32) + (1.0 - own) * poisson
    out = np.clip(weight * mixed + (1.0 - weight) * dst.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)
    new_mask = dst_mask.copy()
    if label:
        new_mask[ty:ty + ph, tx:tx + pw] |= lesion > 0
    return out, new_mask


def decoy_region(
    src: np.ndarray,
    src_mask: np.ndarray,
    shape: np.ndarray,
    rng: np.random.Generator,
    cfg: CopyPasteConfig = CopyPasteConfig(),
) -> np.ndarray | None:
    """A lesion-shaped region of ``src``'s normal mucosa to cut as a decoy, or None if none fits.

    ``shape`` is a lesion mask (any frame's); its outline is placed at a random spot of ``src``
    clear of ``src``'s own lesion (``src_mask``, with the blend ring) and out of the dark lumen.
    The region is then cut and pasted like a lesion (``paste_lesion(..., label=False)``).
    """
    if not shape.any():
        return None
    x0, y0, bw, bh = cv2.boundingRect(shape.astype(np.uint8))
    outline = shape[y0:y0 + bh, x0:x0 + bw]
    h, w = src.shape[:2]
    pad = cfg.ring_px + 2
    if bh + 2 * pad >= h or bw + 2 * pad >= w:
        return None
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pad + 1, 2 * pad + 1))
    keep_out = cv2.dilate(src_mask.astype(np.uint8), kernel) > 0
    grey = cv2.cvtColor(src, cv2.COLOR_RGB2GRAY).astype(np.float32)
    lit = float(np.percentile(grey, 75))  # the lit mucosa's level, whatever share of the frame is lumen
    for _ in range(cfg.tries):
        ty, tx = int(rng.integers(pad, h - bh - pad)), int(rng.integers(pad, w - bw - pad))
        if (keep_out[ty:ty + bh, tx:tx + bw] & outline).any():
            continue
        if grey[ty:ty + bh, tx:tx + bw][outline].mean() < cfg.min_brightness * lit:
            continue
        region = np.zeros((h, w), bool)
        region[ty:ty + bh, tx:tx + bw] = outline
        return region
    return None
