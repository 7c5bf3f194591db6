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
- Polygons: vertices at **pixel centres** (integer pixel indices, x = column, y = row), the
  labelme convention; rasterised with ``cv2.fillPoly`` (boundary pixels included), one polygon
  at a time and OR-ed (COCO and labelme both mean the union of the polygons). A hole is written
  as a "keyhole": the hole's outline is spliced into its outer outline through a zero-width cut,
  so a single simple-fill polygon reproduces it (``fillPoly`` is even-odd within one polygon).
  pycocotools puts polygon vertices on a half-pixel-shifted grid, so its rasterisation of these
  polygons differs at the border by about half a pixel; the exporter therefore writes COCO
  masks as RLE (exact) and uses polygons only for labelme.
"""
from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "AnnotationError",
    "rle_encode",
    "rle_decode",
    "rle_to_string",
    "rle_from_string",
    "mask_to_polygons",
    "polygons_to_mask",
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


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two bool masks (both empty: 1.0)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int(np.count_nonzero(a & b)) / s


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
    if isinstance(seg, list):  # polygons: a list of flat coordinate lists
        return polygons_to_mask(seg, h, w)
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
    keep (None = all). Lines and points have no area and are ignored. Raises AnnotationError.
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
        if kind == "polygon" and len(pts) >= 3:
            cv2.fillPoly(one, [np.round(pts).astype(np.int32)], 1)
        elif kind == "rectangle" and len(pts) == 2:
            (x0, y0), (x1, y1) = np.round(pts).astype(int)
            cv2.rectangle(one, (min(x0, x1), min(y0, y1)), (max(x0, x1), max(y0, y1)), 1, -1)
        elif kind == "circle" and len(pts) == 2:
            r = int(round(float(np.linalg.norm(pts[1] - pts[0]))))
            cv2.circle(one, (int(round(pts[0][0])), int(round(pts[0][1]))), r, 1, -1)
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
    x0, y0 = (int(round(v)) for v in pts[0])
    one = np.zeros((h, w), np.uint8)
    ys, xs = max(y0, 0), max(x0, 0)
    ye, xe = min(y0 + sub.shape[0], h), min(x0 + sub.shape[1], w)
    if ye > ys and xe > xs:
        one[ys:ye, xs:xe] = sub[ys - y0:ye - y0, xs - x0:xe - x0] > 0
    return one
