"""Pure array logic behind the overlay and the editing tools (no Qt here).

Everything works on a *working mask*: a C-contiguous ``uint8`` array of 0/1 in WLI pixel space,
because OpenCV's drawing and morphology want uint8 and in-place edits of a sub-rectangle are
cheap. Every edit returns the bounding box it touched as ``(x0, y0, x1, y1)`` (exclusive end),
so the caller can repaint only that rectangle and keep only that patch for undo.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from model import postprocess
from training.metrics import dice_iou as dice_iou  # the one Dice/IoU (training/metrics.py), re-exported

BBox = tuple[int, int, int, int]

FILL, OUTLINE, PROBABILITY = "fill", "outline", "probability"
OVERLAY_MODES = (FILL, OUTLINE, PROBABILITY)


def clip_bbox(bbox: BBox, shape: tuple[int, ...]) -> BBox | None:
    """Clip a box to an image; None when nothing is left (edits off the image are no-ops)."""
    h, w = shape[:2]
    x0, y0, x1, y1 = bbox
    x0, y0 = max(0, int(x0)), max(0, int(y0))
    x1, y1 = min(w, int(x1)), min(h, int(y1))
    if x0 >= x1 or y0 >= y1:
        return None
    return (x0, y0, x1, y1)


def union_bbox(a: BBox | None, b: BBox | None) -> BBox | None:
    """Smallest box holding both (either may be None)."""
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def stamp_segment(mask: np.ndarray, p0: tuple[float, float], p1: tuple[float, float],
                  radius: float, value: int) -> BBox | None:
    """Paint (value=1) or erase (value=0) a round brush swept from p0 to p1.

    Only the segment's bounding box is touched, so a move event costs O(radius * length),
    not O(image).
    """
    r = max(0.5, float(radius))
    bbox = clip_bbox((int(np.floor(min(p0[0], p1[0]) - r)) - 1, int(np.floor(min(p0[1], p1[1]) - r)) - 1,
                      int(np.ceil(max(p0[0], p1[0]) + r)) + 2, int(np.ceil(max(p0[1], p1[1]) + r)) + 2),
                     mask.shape)
    if bbox is None:
        return None
    x0, y0, x1, y1 = bbox
    # Exact capsule: pixel (i, j) has its centre at (j + 0.5, i + 0.5) in scene coordinates and is
    # painted when that centre lies within r of the segment p0-p1.
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5
    ax, ay = float(p0[0]), float(p0[1])
    dx, dy = float(p1[0]) - ax, float(p1[1]) - ay
    length2 = dx * dx + dy * dy
    if length2 > 0:
        t = np.clip(((xs - ax) * dx + (ys - ay) * dy) / length2, 0.0, 1.0)
        px, py = xs - (ax + t * dx), ys - (ay + t * dy)
    else:
        px, py = xs - ax, ys - ay
    inside = px * px + py * py <= r * r
    mask[y0:y1, x0:x1][inside] = value
    return bbox


def fill_polygon(mask: np.ndarray, points: list[tuple[float, float]], value: int) -> BBox | None:
    """Fill (value=1) or erase (value=0) a closed polygon given in scene (WLI pixel) coordinates."""
    if len(points) < 3:
        return None
    pts = np.asarray(points, dtype=np.float64) - 0.5
    bbox = clip_bbox((int(np.floor(pts[:, 0].min())), int(np.floor(pts[:, 1].min())),
                      int(np.ceil(pts[:, 0].max())) + 1, int(np.ceil(pts[:, 1].max())) + 1), mask.shape)
    if bbox is None:
        return None
    x0, y0, x1, y1 = bbox
    sub = mask[y0:y1, x0:x1]
    local = np.round((pts - [x0, y0]) * 16).astype(np.int32)  # 4 bits of sub-pixel precision
    cv2.fillPoly(sub, [local], int(value), lineType=cv2.LINE_8, shift=4)
    return bbox


def _whole(mask: np.ndarray) -> BBox:
    return (0, 0, mask.shape[1], mask.shape[0])


def replace_into(mask: np.ndarray, new: np.ndarray) -> BBox | None:
    """Write ``new`` into ``mask`` and return the box of what changed (None if nothing did)."""
    diff = mask != new
    if not diff.any():
        return None
    ys, xs = np.nonzero(diff)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    x0, y0, x1, y1 = bbox
    mask[y0:y1, x0:x1] = new[y0:y1, x0:x1]
    return bbox


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def grow_shrink(mask: np.ndarray, pixels: int) -> BBox | None:
    """Dilate (pixels > 0) or erode (pixels < 0) the mask by a round element of that radius."""
    if pixels == 0:
        return None
    k = _disk(abs(int(pixels)))
    new = cv2.dilate(mask, k) if pixels > 0 else cv2.erode(mask, k, borderType=cv2.BORDER_REPLICATE)
    return replace_into(mask, new)


def smooth(mask: np.ndarray, sigma: float = 2.0) -> BBox | None:
    """Round off jagged boundaries: Gaussian blur of the mask, re-thresholded at one half."""
    if sigma <= 0:
        return None
    blurred = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), float(sigma))
    return replace_into(mask, (blurred >= 0.5).astype(np.uint8))


def fill_holes(mask: np.ndarray) -> BBox | None:
    """Fill background regions that do not touch the image border (model.postprocess's rule)."""
    return replace_into(mask, postprocess.fill_holes(mask))


def remove_islands(mask: np.ndarray, min_pixels: int) -> BBox | None:
    """Drop connected foreground components smaller than ``min_pixels`` (model.postprocess's rule)."""
    return replace_into(mask, postprocess.drop_islands(mask, min_pixels).astype(mask.dtype))


def push_pull(mask: np.ndarray, start: tuple[float, float], end: tuple[float, float],
              radius: float) -> BBox | None:
    """Drag the boundary near ``start`` towards ``end`` smoothly (a Gaussian 'liquify' warp).

    Pixels within about ``radius`` of the start move with the drag, weighted by a Gaussian fall-off,
    so a stretch of the contour bends in or out instead of being cut with a hard edge.
    """
    dx, dy = end[0] - start[0], end[1] - start[1]
    if dx == 0 and dy == 0:
        return None
    sigma = max(1.0, radius / 2.0)
    reach = radius + abs(dx) + abs(dy) + 2
    bbox = clip_bbox((int(start[0] - reach), int(start[1] - reach),
                      int(start[0] + reach) + 1, int(start[1] + reach) + 1), mask.shape)
    if bbox is None:
        return None
    x0, y0, x1, y1 = bbox
    sub = mask[y0:y1, x0:x1]
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
    # Sample each output pixel from where it came from: p - w(p) * d, w centred on the end point
    # (the inverse of pushing pixels from the start by d).
    w = np.exp(-((xx - end[0]) ** 2 + (yy - end[1]) ** 2) / (2 * sigma * sigma)).astype(np.float32)
    map_x = (xx - 0.5 - w * dx - x0).astype(np.float32)
    map_y = (yy - 0.5 - w * dy - y0).astype(np.float32)
    warped = cv2.remap(sub.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    new = (warped >= 0.5).astype(np.uint8)
    changed = new != sub
    if not changed.any():
        return None
    sub[...] = new
    return bbox


def grabcut_refine(image_rgb: np.ndarray, mask: np.ndarray, sure_fg: np.ndarray | None = None,
                   sure_bg: np.ndarray | None = None, iterations: int = 3, margin: int = 20) -> BBox | None:
    """Refine the mask in place with OpenCV GrabCut, seeded from the mask and the clinician's strokes
    (``model.interactive.grabcut``, which the robot clinician's GrabCut baseline also runs);
    returns the box that changed."""
    from model.interactive import grabcut

    res = grabcut(image_rgb, mask > 0, sure_fg, sure_bg, iterations, margin)
    if res is None:
        return None
    return replace_into(mask, res[0].astype(mask.dtype))


# ----------------------------------------------------------------------------------------------
# Overlay colouring. The overlay buffer is an (H, W, 4) uint8 view of a premultiplied ARGB32
# image, i.e. bytes B, G, R, A in memory on little-endian machines.
# ----------------------------------------------------------------------------------------------

@dataclass
class OverlayStyle:
    """How the mask is drawn: mode, colour (RGB) and opacity 0..1."""

    mode: str = OUTLINE
    color: tuple[int, int, int] = (255, 214, 0)
    opacity: float = 0.45
    visible: bool = True
    outline_px: int = 2


def _heat_lut() -> np.ndarray:
    """A perceptual-ish colour ramp (blue -> cyan -> yellow -> red) for probabilities."""
    ramp = np.zeros((256, 3), np.float32)
    stops = [(0, (0, 0, 255)), (96, (0, 200, 255)), (176, (255, 230, 0)), (255, (255, 0, 0))]
    for (i0, c0), (i1, c1) in zip(stops[:-1], stops[1:], strict=True):
        t = np.linspace(0.0, 1.0, i1 - i0 + 1)[:, None]
        ramp[i0:i1 + 1] = (1 - t) * np.array(c0) + t * np.array(c1)
    return ramp


HEAT_LUT = _heat_lut()


def render_overlay(buffer_bgra: np.ndarray, mask: np.ndarray | None, prob: np.ndarray | None,
                   style: OverlayStyle, bbox: BBox | None = None) -> BBox | None:
    """Recolour the overlay buffer inside ``bbox`` (whole image when None) from mask/prob.

    Returns the box actually rewritten (outline mode widens it by the outline width so a
    boundary that moved is redrawn on both sides).
    """
    h, w = buffer_bgra.shape[:2]
    if bbox is None:
        bbox = (0, 0, w, h)
    pad = style.outline_px + 1 if style.mode == OUTLINE else 0
    box = clip_bbox((bbox[0] - pad, bbox[1] - pad, bbox[2] + pad, bbox[3] + pad), (h, w))
    if box is None:
        return None
    x0, y0, x1, y1 = box
    out = buffer_bgra[y0:y1, x0:x1]
    if not style.visible:
        out[...] = 0
        return box
    if style.mode == PROBABILITY:
        if prob is None:
            out[...] = 0
            return box
        p = prob[y0:y1, x0:x1]
        rgb = HEAT_LUT[p]
        alpha = (p.astype(np.float32) / 255.0) * style.opacity
        alpha[p < 13] = 0.0  # below 5 %: leave the tissue visible
        _write_premultiplied(out, rgb, alpha)
        return box
    if mask is None:
        out[...] = 0
        return box
    if style.mode == OUTLINE:
        # Boundary = mask minus its erosion, computed with a margin so the box edge is exact.
        m0 = clip_bbox((x0 - style.outline_px, y0 - style.outline_px, x1 + style.outline_px,
                        y1 + style.outline_px), (h, w))
        assert m0 is not None
        region = mask[m0[1]:m0[3], m0[0]:m0[2]]
        k = _disk(max(1, style.outline_px // 2)) if style.outline_px > 2 else np.ones((3, 3), np.uint8)
        iters = 1 if style.outline_px > 2 else max(1, style.outline_px)
        eroded = cv2.erode(region, k, iterations=iters, borderType=cv2.BORDER_REPLICATE)
        edge = (region > 0) & (eroded == 0)
        edge = edge[y0 - m0[1]:y1 - m0[1], x0 - m0[0]:x1 - m0[0]]
        alpha = np.where(edge, 1.0, 0.0).astype(np.float32)
        # A faint fill inside the outline helps the eye without hiding the mucosa.
        inside = mask[y0:y1, x0:x1] > 0
        alpha[inside & ~edge] = style.opacity * 0.25
    else:
        alpha = np.where(mask[y0:y1, x0:x1] > 0, style.opacity, 0.0).astype(np.float32)
    rgb = np.broadcast_to(np.asarray(style.color, np.float32), alpha.shape + (3,))
    _write_premultiplied(out, rgb, alpha)
    return box


def _write_premultiplied(out_bgra: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> None:
    a = alpha[..., None]
    out_bgra[..., 0] = (rgb[..., 2] * alpha + 0.5).astype(np.uint8)
    out_bgra[..., 1] = (rgb[..., 1] * alpha + 0.5).astype(np.uint8)
    out_bgra[..., 2] = (rgb[..., 0] * alpha + 0.5).astype(np.uint8)
    out_bgra[..., 3] = (a[..., 0] * 255.0 + 0.5).astype(np.uint8)


def pack_patch(patch: np.ndarray) -> tuple[bytes, tuple[int, int]]:
    """Compress a 0/1 patch to bits (8x smaller) for the undo history."""
    return np.packbits(patch.astype(bool), axis=None).tobytes(), patch.shape


def unpack_patch(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`pack_patch`, back to a uint8 0/1 array."""
    n = shape[0] * shape[1]
    bits = np.unpackbits(np.frombuffer(data, np.uint8), count=n)
    return bits.reshape(shape).astype(np.uint8)
