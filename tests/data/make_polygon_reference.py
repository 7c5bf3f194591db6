"""Maintainer tool: reference masks of polygons as labelme and pycocotools rasterise them.

Writes ``tests/data/polygon_reference.npz``, which tests/test_annotations.py compares our
numpy ports with (the tests need neither tool). Run it with the tools installed in a separate
virtual environment, never the app's (they are not app dependencies):

    python3 -m venv /tmp/toolsvenv
    /tmp/toolsvenv/bin/pip install labelme pycocotools pillow
    /tmp/toolsvenv/bin/python tests/data/make_polygon_reference.py

The committed file was made with labelme 6.3.1, Pillow 13.0.0, pycocotools 2.0.11, numpy 2.4.6.
Shapes are random (fixed seed): star-shaped and self-intersecting polygons with fractional,
integer and half-pixel vertices, repeated vertices and horizontal runs, partly outside the image,
plus rectangles and circles (labelme), and two polygons on a 1076 x 1348 frame like the
laryngeal pairs of issue 14.
"""
from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
from labelme.utils.shape import shape_to_mask
from pycocotools import mask as coco_mask

OUT = Path(__file__).resolve().parent / "polygon_reference.npz"


def random_polygon(rng: np.random.Generator, h: int, w: int, kind: int) -> np.ndarray:
    """(n, 2) float x, y vertices of one of several kinds of polygon."""
    n = int(rng.integers(3, 30))
    cx, cy = rng.uniform(-0.1 * w, 1.1 * w), rng.uniform(-0.1 * h, 1.1 * h)
    r = rng.uniform(2, 0.6 * max(h, w))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * rng.uniform(0.3, 1.0, n)
    pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)
    if kind == 1:       # integer vertices
        pts = np.round(pts)
    elif kind == 2:     # half-pixel vertices, a repeated vertex, a horizontal run
        pts = np.round(pts * 2) / 2
        if n > 4:
            pts[2] = pts[1]
            pts[4, 1] = pts[3, 1]
    elif kind == 3:     # self-intersecting
        pts = np.stack([rng.uniform(-5, w + 5, n), rng.uniform(-5, h + 5, n)], 1)
    elif kind == 4:     # a few pixels across
        pts = np.stack([cx % w + rng.uniform(-3, 3, n), cy % h + rng.uniform(-3, 3, n)], 1)
    return pts


def main() -> None:
    rng = np.random.default_rng(20260114)
    shapes: list[dict] = []
    for i in range(90):
        h, w = int(rng.integers(20, 72)), int(rng.integers(20, 72))
        shapes.append({"kind": "polygon", "h": h, "w": w, "points": random_polygon(rng, h, w, i % 6).tolist()})
    for _ in range(20):
        h, w = int(rng.integers(10, 60)), int(rng.integers(10, 60))
        shapes.append({"kind": "rectangle", "h": h, "w": w, "points": rng.uniform(-8, 68, (2, 2)).tolist()})
        c = rng.uniform(3, 55, 2)
        edge = c + rng.uniform(-18, 18, 2)
        shapes.append({"kind": "circle", "h": h, "w": w, "points": [c.tolist(), edge.tolist()]})
    for _ in range(2):  # the size of issue 14's frames, a tumour-sized outline
        n = int(rng.integers(40, 120))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = 60 * rng.uniform(0.7, 1.0, n)
        pts = np.stack([600 + rad * np.cos(ang), 500 + rad * np.sin(ang)], 1)
        shapes.append({"kind": "polygon", "h": 1076, "w": 1348, "points": pts.tolist()})
    labelme, coco = [], []
    for s in shapes:
        h, w, pts = s["h"], s["w"], s["points"]
        labelme.append(np.packbits(shape_to_mask((h, w), pts, s["kind"])))
        if s["kind"] == "polygon":
            flat = [float(v) for p in pts for v in p]
            coco.append(np.packbits(coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects([flat], h, w))) > 0))
        else:
            coco.append(np.zeros(0, np.uint8))
    tools = {name: version(name) for name in ("labelme", "pillow", "pycocotools", "numpy")}
    # bit-packed masks, one flat array per tool plus where each shape's bits start (no pickle)
    np.savez_compressed(OUT, shapes=np.array(json.dumps(shapes)), tools=np.array(json.dumps(tools)),
                        labelme=np.concatenate(labelme), labelme_start=np.cumsum([0] + [len(a) for a in labelme]),
                        coco=np.concatenate(coco), coco_start=np.cumsum([0] + [len(a) for a in coco]))
    print(f"{OUT}: {len(shapes)} shapes, {tools}")


if __name__ == "__main__":
    main()
