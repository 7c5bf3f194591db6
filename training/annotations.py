"""Tumour masks <-> the annotation formats the field uses: COCO (RLE and polygons) and labelme.

Why this module exists: an export must come back as the same masks (the round-trip target of
issue 7), and annotations made in other tools must be importable. Everything here is numpy + cv2:
pycocotools is deliberately not a dependency (it needs a C build on every platform we package
for), so COCO RLE is implemented here from its definition.

Conventions (fixed here, relied on by training/export.py and the importer):
- Masks are ``bool`` (H, W) arrays in WLI pixel space (docs/CONTRACTS.md).
- COCO RLE: ``{"size": [h, w], "counts": [...]}``; runs alternate background / foreground,
  starting with background (a leading 0 when the first pixel is foreground), over the pixels in
  **column-major (Fortran) order**, exactly as COCO defines it. ``counts`` may also be the
  compressed string form of pycocotools (``rleToString``); both are decoded, the list is written.
- Polygons we write: vertices at **pixel centres** (integer pixel indices, x = column, y = row),
  one polygon per region with holes spliced in as "keyholes" (a zero-width cut), so labelme's
  fill gives the mask back; ``polygons_to_mask`` (``cv2.fillPoly`` per polygon, OR-ed) is the
  inverse used for our own round trips.
- Polygons we read are rasterised as the tool that wrote them does: labelme shapes as labelme's
  ``shape_to_mask`` draws them with Pillow (``pil_polygon_mask``, ``pil_rectangle_mask``,
  ``pil_ellipse_mask``: vertices truncated, Pillow's scanline fill), COCO polygons as
  pycocotools' ``annToMask`` decodes them (``coco_polygons_mask``: its 5x upsampled outline).
  Both are numpy ports checked pixel for pixel against the real tools
  (tests/data/polygon_reference.npz). pycocotools reads pixel-centre outlines half a pixel
  inside, so the exporter writes COCO masks as RLE (exact) and uses polygons only for labelme.
"""
from __future__ import annotations

import base64
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from training.metrics import dice_score as dice  # the one Dice, re-exported (annotations.dice)

__all__ = [
    "AnnotationError",
    "rle_encode",
    "rle_decode",
    "rle_to_string",
    "rle_from_string",
    "mask_to_polygons",
    "polygons_to_mask",
    "pil_polygon_mask",
    "pil_rectangle_mask",
    "pil_ellipse_mask",
    "coco_polygon_mask",
    "coco_polygons_mask",
    "mask_to_coco_annotations",
    "masks_from_coco",
    "mask_to_labelme",
    "mask_from_labelme",
    "dice",
]

_MAX_PIXELS = 50_000_000  # same decompression-bomb bound as training.imageio.MAX_PIXELS
_MAX_JSON_BYTES = 512 * 1024 * 1024
LABELME_VERSION = "5.4.1"


class AnnotationError(ValueError):
    """An annotation file or record that cannot be turned into a mask (message says why)."""


def _check_size(h: int, w: int, where: str = "") -> tuple[int, int]:
    try:
        h, w = int(h), int(w)
    except (TypeError, ValueError):
        raise AnnotationError(f"{where}invalid image size {h!r}x{w!r}") from None
    if h <= 0 or w <= 0 or h * w > _MAX_PIXELS:
        raise AnnotationError(f"{where}invalid image size {w}x{h}")
    return h, w


# ------------------------------------------------------------------------------------ COCO RLE
def rle_encode(mask: np.ndarray) -> dict:
    """Uncompressed COCO RLE of a bool mask: ``{"size": [h, w], "counts": [int, ...]}``."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    h, w = m.shape
    flat = m.astype(bool).ravel(order="F")
    if flat.size == 0:
        return {"size": [int(h), int(w)], "counts": []}
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds).astype(np.int64).tolist()
    if flat[0]:
        counts = [0, *counts]
    return {"size": [int(h), int(w)], "counts": counts}


def rle_decode(rle: dict) -> np.ndarray:
    """bool (h, w) mask of a COCO RLE (``counts`` a list, or pycocotools' compressed string)."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise AnnotationError("RLE must be a dict with 'size' and 'counts'")
    try:
        h, w = rle["size"]
    except (TypeError, ValueError):
        raise AnnotationError(f"RLE size {rle.get('size')!r} is not [h, w]") from None
    h, w = _check_size(h, w, "RLE: ")
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    if isinstance(counts, str):
        counts = rle_from_string(counts)
    try:
        c = np.asarray(counts, dtype=np.int64).ravel()
    except (TypeError, ValueError):
        raise AnnotationError("RLE counts are not integers") from None
    if c.size and c.min() < 0:
        raise AnnotationError("RLE has a negative run length")
    if int(c.sum()) != h * w:
        raise AnnotationError(f"RLE runs cover {int(c.sum())} pixels, the image has {h * w}")
    values = np.zeros(c.size, dtype=bool)
    values[1::2] = True
    return np.repeat(values, c).reshape((h, w), order="F")


def rle_to_string(counts: Iterable[int]) -> str:
    """pycocotools' compressed RLE string of run lengths (``rleToString`` in maskApi.c)."""
    cnts = [int(v) for v in counts]
    out = []
    for i, v in enumerate(cnts):
        x = v - cnts[i - 2] if i > 2 else v
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift, like C's on a signed long
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def rle_from_string(s: str) -> list[int]:
    """Run lengths of pycocotools' compressed RLE string (``rleFrString`` in maskApi.c)."""
    cnts: list[int] = []
    p, n = 0, len(s)
    while p < n:
        x, k, more = 0, 0, True
        while more:
            if p >= n:
                raise AnnotationError("compressed RLE string ends inside a number")
            c = ord(s[p]) - 48
            if c < 0 or c > 0x3F:
                raise AnnotationError(f"invalid character {s[p]!r} in compressed RLE")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(cnts) > 2:
            x += cnts[-2]
        cnts.append(x)
    return cnts


# ------------------------------------------------------------------------------------ polygons
def _keyhole(outer: np.ndarray, holes: list[np.ndarray]) -> np.ndarray:
    """Splice each hole into the outer outline through a zero-width cut (nearest vertex pair)."""
    poly = outer
    for hole in holes:
        # nearest (poly vertex, hole vertex) pair; chunked so a long outline stays cheap in memory
        best = (np.inf, 0, 0)
        hp = hole.astype(np.float64)
        for start in range(0, len(poly), 2048):
            chunk = poly[start:start + 2048].astype(np.float64)
            d = ((chunk[:, None, :] - hp[None, :, :]) ** 2).sum(axis=2)
            k = int(np.argmin(d))
            i, j = divmod(k, d.shape[1])
            if d[i, j] < best[0]:
                best = (float(d[i, j]), start + i, j)
        _, i, j = best
        loop = np.concatenate((hole[j:], hole[:j + 1]))
        poly = np.concatenate((poly[:i + 1], loop, poly[i:]))
    return poly


def mask_to_polygons(mask: np.ndarray) -> list[np.ndarray]:
    """Polygons (each an int32 (N, 2) array of x, y pixel centres) whose union is ``mask``.

    One polygon per outer outline (``cv2.findContours``, RETR_CCOMP), its holes spliced in as
    keyholes, so ``polygons_to_mask`` gives the mask back (exactly for ordinary shapes; a
    one-pixel-wide cut may add a few pixels where a hole's nearest outline is across background).
    Every polygon has at least 3 vertices (a single pixel is repeated) so labelme accepts it.
    """
    m = np.ascontiguousarray(np.asarray(mask, dtype=bool).astype(np.uint8))
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    contours, hierarchy = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None or not contours:
        return []
    hier = hierarchy[0]
    polys = []
    for idx, c in enumerate(contours):
        if hier[idx][3] != -1:  # a hole: handled with its parent
            continue
        outer = c.reshape(-1, 2)
        holes = []
        child = hier[idx][2]
        while child != -1:
            holes.append(contours[child].reshape(-1, 2))
            child = hier[child][0]
        poly = _keyhole(outer, holes) if holes else outer
        if len(poly) < 3:
            poly = np.concatenate([poly, np.repeat(poly[-1:], 3 - len(poly), axis=0)])
        polys.append(poly.astype(np.int32))
    return polys


def polygons_to_mask(polygons: Iterable, height: int, width: int) -> np.ndarray:
    """bool (height, width) union of polygons given as (N, 2) arrays or flat [x0, y0, x1, ...] lists."""
    h, w = _check_size(height, width)
    out = np.zeros((h, w), np.uint8)
    one = np.zeros((h, w), np.uint8)
    for poly in polygons:
        try:
            pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        except (TypeError, ValueError):
            raise AnnotationError("polygon with malformed coordinates") from None
        if len(pts) == 0 or not np.isfinite(pts).all():
            continue
        one[:] = 0
        # each polygon alone: cv2.fillPoly of several polygons at once would XOR their overlaps
        cv2.fillPoly(one, [np.round(pts).astype(np.int32)], 1)
        out |= one
    return out.astype(bool)


# ------------------------------------------------------------ the annotation tools' own rasterisers
# A polygon with fractional vertices has no single "right" set of pixels: each tool decides which
# border pixels it fills. The importer rasterises a polygon as the tool that wrote it does, so the
# mask it stores is the one the annotator saw (issue 14: a labelme polygon imported with Dice 0.989
# and a COCO polygon with 0.984 against their tools when vertices were rounded and filled by OpenCV).
# Both ports below follow the tools' C code operation by operation (integer casts, float32 where
# the C code uses float), verified against labelme 6.3.1 / Pillow 13.0.0 and pycocotools 2.0.11
# on random polygons (tests/data/polygon_reference.npz, tests/data/make_polygon_reference.py).

def _roundf(v: float) -> float:
    """C ``roundf``: halves away from zero, on the exact float32 value."""
    a = abs(float(v))
    r = float(np.floor(a))
    r += 1.0 if a - r >= 0.5 else 0.0
    return float(np.float32(-r if v < 0 else r))


def _pil_round_up(v: np.float32) -> int:
    """Pillow's ROUND_UP macro (Draw.c): float32 ``v + 0.5F`` for v >= 0, double ``fabs(v) + 0.5`` below."""
    if v >= 0:
        return int(np.floor(np.float32(v) + np.float32(0.5)))
    return -int(np.floor(abs(float(v)) + 0.5))


def _pil_round_down(v: np.float32) -> int:
    """Pillow's ROUND_DOWN macro (Draw.c)."""
    if v >= 0:
        return int(np.ceil(np.float32(v) - np.float32(0.5)))
    return -int(np.ceil(abs(float(v)) - 0.5))


def _pil_hline(out: np.ndarray, x0: int, y: int, x1: int) -> None:
    """Pillow's hline8: one row span, clipped to the image."""
    h, w = out.shape
    if not 0 <= y < h or x0 >= w or x1 < 0:
        return
    x0, x1 = max(x0, 0), min(x1, w - 1)
    if x0 <= x1:
        out[y, x0:x1 + 1] = True


def pil_polygon_mask(points: Iterable, height: int, width: int) -> np.ndarray:
    """bool mask of ``PIL.ImageDraw.Draw(img "L").polygon(points, fill=1, outline=1)``.

    What labelme's ``shape_to_mask`` draws for a polygon (with outline == fill Pillow draws the
    fill only). Pillow truncates each vertex to int (C cast, toward zero), then fills scanlines
    between edge crossings computed in float32, with its corner rule (libImaging/Draw.c,
    ``ImagingDrawPolygon`` and ``polygon_generic``). Ported here so the app needs no Pillow.
    """
    h, w = _check_size(height, width)
    try:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        raise AnnotationError("polygon with malformed coordinates") from None
    out = np.zeros((h, w), bool)
    if len(pts) == 0:
        return out
    if not np.isfinite(pts).all():
        raise AnnotationError("polygon with non-finite coordinates")
    lim = 2.0 ** 30  # keep the C int arithmetic in range; such vertices lie far outside any image
    xy = np.trunc(np.clip(pts, -lim, lim)).astype(np.int64)
    # edges (x0, y0, x1, y1, xmin, xmax, ymin, ymax); consecutive horizontal edges merge as in Draw.c
    edges: list[list[int]] = []

    def add_edge(x0: int, y0: int, x1: int, y1: int) -> None:
        edges.append([x0, y0, x1, y1, min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)])

    n = len(xy)
    i = 0
    for i in range(n - 1):
        x0, y0 = int(xy[i, 0]), int(xy[i, 1])
        x1, y1 = int(xy[i + 1, 0]), int(xy[i + 1, 1])
        if y0 == y1 and i != 0 and y0 == int(xy[i - 1, 1]):
            px = int(xy[i - 1, 0])
            if x1 > x0 > px:
                edges[-1][5] = x1
                continue
            if x1 < x0 < px:
                edges[-1][4] = x1
                continue
        add_edge(x0, y0, x1, y1)
    last = n - 1 if n > 1 else 0
    if n == 1 or int(xy[last, 0]) != int(xy[0, 0]) or int(xy[last, 1]) != int(xy[0, 1]):
        add_edge(int(xy[last, 0]), int(xy[last, 1]), int(xy[0, 0]), int(xy[0, 1]))
    if not edges:
        return out
    ymin, ymax = h - 1, 0
    table = []
    for e in edges:
        ymin, ymax = min(ymin, e[6]), max(ymax, e[7])
        if e[6] == e[7]:
            _pil_hline(out, e[4], e[6], e[5])
        else:
            table.append(e)
    if not table:
        return out
    ymin, ymax = max(ymin, 0), min(ymax, h)
    ex0 = np.array([e[0] for e in table], np.int64)
    ey0 = np.array([e[1] for e in table], np.int64)
    e_ymin = np.array([e[6] for e in table], np.int64)
    e_ymax = np.array([e[7] for e in table], np.int64)
    dx = (np.array([e[2] - e[0] for e in table], np.float64).astype(np.float32)
          / np.array([e[3] - e[1] for e in table], np.float64).astype(np.float32))
    fx0 = ex0.astype(np.float32)

    def x_at(k: int, y: int) -> np.float32:
        return np.float32(np.float32(y - ey0[k]) * dx[k]) + fx0[k]

    for y in range(ymin, ymax + 1):
        active = np.flatnonzero((e_ymin <= y) & (y <= e_ymax))
        if active.size == 0:
            continue
        xs = (y - ey0[active]).astype(np.float32) * dx[active] + fx0[active]
        at_end = (e_ymax[active] == y) & (y < ymax)
        extra = [xs[at_end]]
        corner = ~at_end & ((e_ymin[active] == y) | (e_ymax[active] == y)) & (dx[active] != 0)
        for pos in np.flatnonzero(corner):
            i = int(active[pos])
            xi = xs[pos]
            for k in range(i):
                if (y != e_ymin[k] and y != e_ymax[k]) or dx[k] == 0:
                    continue
                if _roundf(xi) != _roundf(x_at(k, y)):
                    continue
                offset = -1 if y == e_ymax[i] else 1
                adj = x_at(i, y + offset)
                if e_ymin[k] <= y + offset <= e_ymax[k]:
                    adj_other = x_at(k, y + offset)
                    if xi > adj + np.float32(1) and xi > adj_other + np.float32(1):
                        xs[pos] = np.float32(_roundf(max(float(adj), float(adj_other))) + 1)
                    elif xi < adj - np.float32(1) and xi < adj_other - np.float32(1):
                        xs[pos] = np.float32(_roundf(min(float(adj), float(adj_other))) - 1)
                    break
        xx = np.sort(np.concatenate([xs, *extra]))
        for j in range(1, len(xx), 2):
            _pil_hline(out, _pil_round_up(xx[j - 1]), y, _pil_round_down(xx[j]))
    return out


def pil_rectangle_mask(p0: Iterable[float], p1: Iterable[float], height: int, width: int) -> np.ndarray:
    """bool mask of ``ImageDraw.rectangle(((min x, min y), (max x, max y)), fill=1)`` as labelme draws it.

    Pillow truncates the corners to int and fills both ends inclusive.
    """
    h, w = _check_size(height, width)
    (ax, ay), (bx, by) = (tuple(float(v) for v in p) for p in (p0, p1))
    lim = 2.0 ** 30
    x0, x1 = (int(np.trunc(np.clip(v, -lim, lim))) for v in (min(ax, bx), max(ax, bx)))
    y0, y1 = (int(np.trunc(np.clip(v, -lim, lim))) for v in (min(ay, by), max(ay, by)))
    out = np.zeros((h, w), bool)
    if y0 >= h or y1 < 0:
        return out
    for y in range(max(y0, 0), min(y1, h) + 1):
        _pil_hline(out, x0, y, x1)
    return out


class _Quarter:
    """Pillow's quarter_state (Draw.c): a quarter ellipse on the step-2 integer grid, Bresenham style."""

    def __init__(self, a: int, b: int) -> None:
        self.finished = a < 0 or b < 0
        if not self.finished:
            self.cx, self.cy, self.ex, self.ey = a, b % 2, a % 2, b
            self.a2, self.b2 = a * a, b * b
            self.a2b2 = self.a2 * self.b2

    def _delta(self, x: int, y: int) -> int:
        return abs(self.a2 * y * y + self.b2 * x * x - self.a2b2)

    def next(self) -> tuple[int, int] | None:
        if self.finished:
            return None
        ret = (self.cx, self.cy)
        if self.cx == self.ex and self.cy == self.ey:
            self.finished = True
        else:
            nx, ny = self.cx, self.cy + 2
            nd = self._delta(nx, ny)
            if nx > 1:
                d = self._delta(self.cx - 2, self.cy + 2)
                if nd > d:
                    nx, ny, nd = self.cx - 2, self.cy + 2, d
                d = self._delta(self.cx - 2, self.cy)
                if nd > d:
                    nx, ny = self.cx - 2, self.cy
            self.cx, self.cy = nx, ny
        return ret


def pil_ellipse_mask(x0: float, y0: float, x1: float, y1: float, height: int, width: int) -> np.ndarray:
    """bool mask of ``ImageDraw.ellipse(((x0, y0), (x1, y1)), fill=1)``: what labelme draws for a circle.

    Pillow truncates the box to int and fills the rows of its ellipse_state iteration
    (``ellipseNew``, ``ellipse_next`` in Draw.c with width = a + b).
    """
    h, w = _check_size(height, width)
    lim = 2.0 ** 20
    bx0, by0, bx1, by1 = (int(np.trunc(np.clip(float(v), -lim, lim))) for v in (x0, y0, x1, y1))
    out = np.zeros((h, w), bool)
    a, b = bx1 - bx0, by1 - by0
    if a < 0 or b < 0:
        return out
    leftmost = a % 2
    outer = _Quarter(a, b)
    first = outer.next()
    if first is None:
        return out
    pr, py = first
    inner = _Quarter(a - 2 * (a + b - 1), b - 2 * (a + b - 1))
    pl = leftmost
    finished = False
    while not finished:
        y, left, r = py, pl, pr
        nxt = outer.next()
        while nxt is not None and nxt[1] <= y:
            nxt = outer.next()
        if nxt is None:
            finished = True
        else:
            pr, py = nxt
        nxt = inner.next()
        while nxt is not None and nxt[1] <= y:
            left = nxt[0]
            nxt = inner.next()
        pl = leftmost if nxt is None else nxt[0]
        spans = []
        if (left > 0 or left < r) and y > 0:
            spans.append((2 if left == 0 else left, y, r))
        if y > 0:
            spans.append((-r, y, -left))
        if left > 0 or left < r:
            spans.append((2 if left == 0 else left, -y, r))
        spans.append((-r, -y, -left))
        for sx0, sy, sx1 in spans:
            _pil_hline(out, bx0 + (sx0 + a) // 2, by0 + (sy + b) // 2, bx0 + (sx1 + a) // 2)
    return out


def coco_polygon_mask(xy: Iterable[float], height: int, width: int) -> np.ndarray:
    """bool mask of one COCO polygon ``[x0, y0, x1, y1, ...]`` as pycocotools decodes it.

    ``rleFrPoly`` in pycocotools' maskApi.c: vertices scaled by 5 and truncated to int, the
    outline walked densely in that upsampled grid, the points where it crosses a pixel column's
    centre kept (downsampled, y rounded up), and the column-major runs between them filled.
    """
    h, w = _check_size(height, width)
    try:
        flat = np.asarray(xy, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise AnnotationError("polygon with malformed coordinates") from None
    if not np.isfinite(flat).all():
        raise AnnotationError("polygon with non-finite coordinates")
    k = flat.size // 2
    if k == 0:
        return np.zeros((h, w), bool)
    scale = 5.0
    lim = 2.0 ** 28
    x = np.trunc(np.clip(scale * flat[0:2 * k:2] + 0.5, -lim, lim)).astype(np.int64)
    y = np.trunc(np.clip(scale * flat[1:2 * k:2] + 0.5, -lim, lim)).astype(np.int64)
    x, y = np.append(x, x[0]), np.append(y, y[0])
    us, vs = [], []
    for j in range(k):
        xs, xe, ys, ye = int(x[j]), int(x[j + 1]), int(y[j]), int(y[j + 1])
        dx, dy = abs(xe - xs), abs(ys - ye)
        flip = (dx >= dy and xs > xe) or (dx < dy and ys > ye)
        if flip:
            xs, xe, ys, ye = xe, xs, ye, ys
        if dx >= dy:
            t = np.arange(dx + 1, dtype=np.int64)
            if flip:
                t = dx - t
            if dx == 0:  # a repeated vertex: C computes 0/0 here, but that v is never used (u does not change)
                v = np.full(t.shape, ys, np.int64)
            else:
                v = np.trunc(ys + ((ye - ys) / dx) * t + 0.5).astype(np.int64)
            us.append(t + xs)
            vs.append(v)
        else:
            t = np.arange(dy + 1, dtype=np.int64)
            if flip:
                t = dy - t
            us.append(np.trunc(xs + ((xe - xs) / dy) * t + 0.5).astype(np.int64))
            vs.append(t + ys)
    u, v = np.concatenate(us), np.concatenate(vs)
    change = np.flatnonzero(u[1:] != u[:-1]) + 1
    uj, uprev = u[change], u[change - 1]
    xd = np.where(uj < uprev, uj, uj - 1).astype(np.float64)
    xd = (xd + 0.5) / scale - 0.5
    keep = (np.floor(xd) == xd) & (xd >= 0) & (xd <= w - 1)
    yd = np.minimum(v[change], v[change - 1]).astype(np.float64)
    yd = (yd + 0.5) / scale - 0.5
    yd = np.ceil(np.clip(yd, 0, h))
    pos = (xd[keep].astype(np.int64) * h + yd[keep].astype(np.int64))
    toggles = np.zeros(h * w + 1, np.int64)
    np.add.at(toggles, pos, 1)
    flat_mask = (np.cumsum(toggles[: h * w]) & 1).astype(bool)
    return flat_mask.reshape((h, w), order="F")


def coco_polygons_mask(segmentation: list, height: int, width: int) -> np.ndarray:
    """bool union of a COCO polygon ``segmentation`` as ``pycocotools`` ``annToMask`` builds it.

    ``frPyObjects`` reads the list by its first entry: more than four numbers make every entry a
    polygon of ``len // 2`` points; four or fewer is refused (pycocotools 2.0.11 raises on it too:
    four numbers would be a box, which it accepts only as a numpy array).
    """
    h, w = _check_size(height, width)
    out = np.zeros((h, w), bool)
    if not segmentation:
        return out
    try:
        first = len(segmentation[0])
    except TypeError:
        raise AnnotationError("polygon segmentation is not a list of coordinate lists") from None
    if first <= 4:
        raise AnnotationError("polygon with fewer than 3 points")
    for poly in segmentation:
        out |= coco_polygon_mask(poly, h, w)
    return out


# ------------------------------------------------------------------------------------ COCO files
def mask_to_coco_annotations(mask: np.ndarray, image_id: int, first_id: int, category_id: int = 1,
                             as_polygons: bool = False) -> list[dict]:
    """COCO annotations of one mask: one per 8-connected tumour region (iscrowd 0).

    Segmentation is uncompressed RLE (exact) unless ``as_polygons``. The union of the returned
    annotations is the mask; an empty mask gives none (the image is then a negative example).
    """
    m = np.asarray(mask, dtype=bool)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    anns = []
    for k in range(1, n):
        comp = labels == k
        x, y, bw, bh, area = (int(v) for v in stats[k])
        if as_polygons:
            seg = [[float(v) for v in p.ravel()] for p in mask_to_polygons(comp)]
        else:
            seg = rle_encode(comp)
        anns.append({"id": first_id + len(anns), "image_id": int(image_id), "category_id": int(category_id),
                     "segmentation": seg, "area": area, "bbox": [x, y, bw, bh], "iscrowd": 0})
    return anns


def _load_json(path: os.PathLike | str) -> object:
    p = Path(path)
    try:
        if p.stat().st_size > _MAX_JSON_BYTES:
            raise AnnotationError(f"{p}: JSON file too large")
        return json.loads(p.read_text(encoding="utf-8-sig"))
    except AnnotationError:
        raise
    except (OSError, ValueError) as exc:
        raise AnnotationError(f"{p}: unreadable JSON ({exc})") from None


def _segmentation_mask(seg: object, h: int, w: int) -> np.ndarray:
    if isinstance(seg, list):  # polygons (or boxes): rasterised as pycocotools' annToMask does
        return coco_polygons_mask(seg, h, w)
    if isinstance(seg, dict):
        m = rle_decode(seg)
        if m.shape != (h, w):
            raise AnnotationError(f"RLE size {m.shape} != image size {(h, w)}")
        return m
    raise AnnotationError(f"unknown segmentation type {type(seg).__name__}")


def masks_from_coco(json_path: os.PathLike | str, categories: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """{image ``file_name``: bool mask} of a COCO file: the union of each image's annotations.

    ``categories``: names to keep (None = every category). Images without annotations map to an
    empty mask (a negative example). ``file_name`` is as written in the file (relative to the
    image folder, which for our exports is the folder of the JSON). Raises AnnotationError.
    """
    data = _load_json(json_path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise AnnotationError(f"{json_path}: not a COCO file (no 'images' list)")
    keep: set | None = None
    if categories is not None:
        wanted = {str(c).lower() for c in categories}
        keep = {c.get("id") for c in data.get("categories") or [] if isinstance(c, dict)
                and str(c.get("name", "")).lower() in wanted}
    images: dict[object, tuple[str, int, int]] = {}
    masks: dict[str, np.ndarray] = {}
    for im in data["images"]:
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            raise AnnotationError(f"{json_path}: image entry without id/file_name")
        h, w = _check_size(im.get("height"), im.get("width"), f"{json_path}: image {im.get('file_name')!r}: ")
        name = str(im["file_name"])
        images[im["id"]] = (name, h, w)
        masks.setdefault(name, np.zeros((h, w), bool))
    for ann in data.get("annotations") or []:
        if not isinstance(ann, dict):
            continue
        if keep is not None and ann.get("category_id") not in keep:
            continue
        if ann.get("image_id") not in images:
            raise AnnotationError(f"{json_path}: annotation {ann.get('id')!r} refers to unknown image "
                                  f"{ann.get('image_id')!r}")
        name, h, w = images[ann["image_id"]]
        try:
            masks[name] |= _segmentation_mask(ann.get("segmentation"), h, w)
        except AnnotationError as exc:
            raise AnnotationError(f"{json_path}: annotation {ann.get('id')!r}: {exc}") from None
    return masks


# ------------------------------------------------------------------------------------ labelme
def mask_to_labelme(mask: np.ndarray, image_path: str, label: str = "tumor") -> dict:
    """A labelme annotation (dict) of ``mask``: one polygon shape per region, ``imageData`` null.

    ``image_path`` is stored as given (make it relative to the JSON: labelme resolves it so).
    """
    m = np.asarray(mask, dtype=bool)
    h, w = m.shape
    shapes = [{"label": label, "points": [[int(x), int(y)] for x, y in poly], "group_id": None,
               "description": "", "shape_type": "polygon", "flags": {}, "mask": None}
              for poly in mask_to_polygons(m)]
    return {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": image_path,
            "imageData": None, "imageHeight": int(h), "imageWidth": int(w)}


def mask_from_labelme(json_path: os.PathLike | str, shape: tuple[int, int] | None = None,
                      labels: Iterable[str] | None = None) -> np.ndarray:
    """bool mask of a labelme JSON: union of its polygon / rectangle / circle / mask shapes.

    ``shape`` = (height, width) of the image; needed when the JSON lacks ``imageHeight`` /
    ``imageWidth``, and checked against them when both are present. ``labels``: shape labels to
    keep (None = all). Polygons, rectangles and circles are filled as labelme's ``shape_to_mask``
    fills them (Pillow's rules, ported). Lines and points are ignored: they outline no region
    (labelme's own label export would draw them 10 px wide). Raises AnnotationError.
    """
    data = _load_json(json_path)
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise AnnotationError(f"{json_path}: not a labelme annotation (no 'shapes' list)")
    jh, jw = data.get("imageHeight"), data.get("imageWidth")
    if shape is not None:
        h, w = _check_size(*shape, where=f"{json_path}: ")
        if isinstance(jh, int) and isinstance(jw, int) and (jh, jw) != (h, w):
            raise AnnotationError(f"{json_path}: annotation is for a {jw}x{jh} image, the image is {w}x{h}")
    elif isinstance(jh, int) and isinstance(jw, int):
        h, w = _check_size(jh, jw, f"{json_path}: ")
    else:
        raise AnnotationError(f"{json_path}: no imageHeight/imageWidth and no image size given")
    wanted = None if labels is None else {str(lb) for lb in labels}
    out = np.zeros((h, w), bool)
    for s in data["shapes"]:
        if not isinstance(s, dict) or (wanted is not None and str(s.get("label")) not in wanted):
            continue
        kind = s.get("shape_type") or "polygon"
        try:
            pts = np.asarray(s.get("points") or [], dtype=np.float64).reshape(-1, 2)
        except (TypeError, ValueError):
            raise AnnotationError(f"{json_path}: shape with malformed points") from None
        if not np.isfinite(pts).all():
            raise AnnotationError(f"{json_path}: shape with non-finite points")
        one = np.zeros((h, w), np.uint8)
        if kind in ("polygon", "oriented_rectangle") and len(pts) >= 3:
            one = pil_polygon_mask(pts, h, w)   # labelme's shape_to_mask: Pillow's polygon fill
        elif kind == "rectangle" and len(pts) == 2:
            one = pil_rectangle_mask(pts[0], pts[1], h, w)
        elif kind == "circle" and len(pts) == 2:
            (cx, cy), (px, py) = pts
            d = math.sqrt((cx - px) ** 2 + (cy - py) ** 2)
            one = pil_ellipse_mask(cx - d, cy - d, cx + d, cy + d, h, w)
        elif kind == "mask" and s.get("mask") and len(pts) >= 1:
            one = _labelme_mask_shape(s["mask"], pts, h, w, json_path)
        out |= one.astype(bool)
    return out


def _labelme_mask_shape(b64: str, pts: np.ndarray, h: int, w: int, where: object) -> np.ndarray:
    """labelme >= 5.3 "mask" shape: a base64 PNG of the region starting at points[0]."""
    try:
        raw = base64.b64decode(b64, validate=False)
        sub = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_GRAYSCALE)
    except (ValueError, cv2.error):
        sub = None
    if sub is None:
        raise AnnotationError(f"{where}: undecodable mask shape")
    x0, y0 = (int(v) for v in pts[0])  # labelme: np.asarray(points).astype(int), i.e. truncated
    one = np.zeros((h, w), np.uint8)
    ys, xs = max(y0, 0), max(x0, 0)
    ye, xe = min(y0 + sub.shape[0], h), min(x0 + sub.shape[1], w)
    if ye > ys and xe > xs:
        one[ys:ye, xs:xe] = sub[ys - y0:ye - y0, xs - x0:xe - x0] > 0
    return one
