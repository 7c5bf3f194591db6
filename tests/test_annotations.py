"""training/annotations.py: COCO RLE (column-major, both count forms), polygons with holes, labelme."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import TEST_DATA
from training.annotations import (
    AnnotationError,
    coco_polygons_mask,
    dice,
    mask_from_labelme,
    mask_to_coco_annotations,
    mask_to_labelme,
    mask_to_polygons,
    masks_from_coco,
    polygons_to_mask,
    rle_decode,
    rle_encode,
    rle_from_string,
    rle_to_string,
)
from training.imageio import read_mask

FIXTURE_MASKS = sorted(TEST_DATA.glob("*_mask.png"))


def _random_masks(n: int = 25, seed: int = 0) -> list[np.ndarray]:
    """Blobs with holes, islands in holes, specks and image-border contact."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h, w = int(rng.integers(20, 70)), int(rng.integers(20, 70))
        m = np.zeros((h, w), np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            cv2.ellipse(m, (int(rng.integers(0, w)), int(rng.integers(0, h))),
                        (int(rng.integers(2, w // 2)), int(rng.integers(2, h // 2))), float(rng.uniform(0, 180)),
                        0, 360, 1, -1)
        for _ in range(int(rng.integers(0, 3))):  # holes
            cv2.circle(m, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(1, 6)), 0, -1)
        m[rng.random((h, w)) < 0.003] = 1  # single-pixel specks
        out.append(m.astype(bool))
    return out


# ------------------------------------------------------------------------------------- RLE
def test_rle_is_column_major_and_starts_with_background() -> None:
    m = np.array([[0, 1, 1],
                  [0, 1, 0]], bool)
    # Fortran order: (0,0)=0 (1,0)=0 (0,1)=1 (1,1)=1 (0,2)=1 (1,2)=0
    assert rle_encode(m) == {"size": [2, 3], "counts": [2, 3, 1]}
    first_on = np.array([[1, 0], [0, 0]], bool)
    assert rle_encode(first_on)["counts"] == [0, 1, 3]
    assert rle_encode(np.zeros((3, 4), bool))["counts"] == [12]
    assert rle_encode(np.ones((3, 4), bool))["counts"] == [0, 12]


def test_rle_round_trip_exact() -> None:
    for m in _random_masks() + [read_mask(p) for p in FIXTURE_MASKS]:
        rle = rle_encode(m)
        assert sum(rle["counts"]) == m.size
        assert np.array_equal(rle_decode(rle), m)
        # the compressed string form decodes to the same mask
        assert np.array_equal(rle_decode({"size": rle["size"], "counts": rle_to_string(rle["counts"])}), m)


def test_compressed_rle_matches_coco_algorithm_by_hand() -> None:
    # maskApi.c rleToString: counts from the 4th on are stored as deltas to counts[i-2];
    # [1, 5, 1, 1] -> '1', '5', '1', then 1 - 5 = -4 -> 5-bit group 28 (sign bit set, no more) -> chr(76)
    assert rle_to_string([1, 5, 1, 1]) == "151L"
    assert rle_from_string("151L") == [1, 5, 1, 1]
    big = [40000, 3, 70000, 1, 2, 300000]  # multi-group numbers and negative deltas
    assert rle_from_string(rle_to_string(big)) == big


def test_rle_decode_refuses_bad_input() -> None:
    with pytest.raises(AnnotationError, match="cover"):
        rle_decode({"size": [2, 2], "counts": [1, 2]})
    with pytest.raises(AnnotationError, match="negative"):
        rle_decode({"size": [2, 2], "counts": [5, -1]})
    with pytest.raises(AnnotationError):
        rle_decode({"size": [0, 2], "counts": []})
    with pytest.raises(AnnotationError):
        rle_decode({"counts": [4]})


# --------------------------------------------------------------------------------- polygons
def test_polygons_rasterise_back_with_dice_ge_099() -> None:
    for p in FIXTURE_MASKS:
        m = read_mask(p)
        polys = mask_to_polygons(m)
        assert polys and all(len(q) >= 3 for q in polys)
        assert dice(polygons_to_mask(polys, *m.shape), m) >= 0.99
    for m in _random_masks(40, seed=1):
        back = polygons_to_mask(mask_to_polygons(m), *m.shape)
        assert dice(back, m) >= 0.99


def test_hole_stays_a_hole() -> None:
    m = np.zeros((40, 40), bool)
    m[5:35, 5:35] = True
    m[15:25, 15:25] = False          # a hole
    m[19:21, 19:21] = True           # an island inside the hole
    polys = mask_to_polygons(m)
    back = polygons_to_mask(polys, 40, 40)
    assert np.array_equal(back, m)
    assert not back[16, 16] and back[20, 20] and back[10, 10]


def test_tiny_regions_and_union_of_overlapping_polygons() -> None:
    m = np.zeros((10, 10), bool)
    m[2, 2] = True                   # one pixel
    m[6, 3:8] = True                 # a one-pixel-wide line
    assert np.array_equal(polygons_to_mask(mask_to_polygons(m), 10, 10), m)
    # COCO / labelme mean the union: the overlap of two squares stays filled
    a = [[1, 1], [5, 1], [5, 5], [1, 5]]
    b = [3, 3, 8, 3, 8, 8, 3, 8]     # flat COCO style
    u = polygons_to_mask([a, b], 10, 10)
    assert u[4, 4] and u[2, 2] and u[7, 7] and int(u.sum()) == 25 + 36 - 9


# ------------------------------------------------------------------------------------- COCO
def test_coco_annotations_union_is_the_mask(tmp_path: Path) -> None:
    m = np.zeros((30, 40), bool)
    m[2:10, 3:12] = True
    m[20:28, 25:38] = True
    m[22:25, 28:31] = False
    anns = mask_to_coco_annotations(m, image_id=7, first_id=100)
    assert [a["id"] for a in anns] == [100, 101]
    assert all(a["image_id"] == 7 and a["iscrowd"] == 0 and a["category_id"] == 1 for a in anns)
    assert sorted(a["bbox"] for a in anns) == [[3, 2, 9, 8], [25, 20, 13, 8]]
    assert sum(a["area"] for a in anns) == int(m.sum())
    poly_anns = mask_to_coco_annotations(m, 1, 1, as_polygons=True)
    doc = {"images": [{"id": 7, "file_name": "a.png", "width": 40, "height": 30},
                      {"id": 1, "file_name": "b.png", "width": 40, "height": 30},
                      {"id": 2, "file_name": "empty.png", "width": 5, "height": 4}],
           "annotations": anns + poly_anns, "categories": [{"id": 1, "name": "tumor"}]}
    f = tmp_path / "coco.json"
    f.write_text(json.dumps(doc))
    masks = masks_from_coco(f)
    assert np.array_equal(masks["a.png"], m)                  # RLE: exact (what the exporter writes)
    # polygons are read as pycocotools' annToMask reads them (pixel-centre outlines lose part of
    # their border under that convention, which is why the exporter writes RLE)
    expected = np.zeros_like(m)
    for a in poly_anns:
        expected |= coco_polygons_mask(a["segmentation"], 30, 40)
    assert np.array_equal(masks["b.png"], expected) and dice(masks["b.png"], m) > 0.8
    assert masks["empty.png"].shape == (4, 5) and not masks["empty.png"].any()


def test_coco_reader_handles_compressed_rle_categories_and_errors(tmp_path: Path) -> None:
    m = np.zeros((6, 5), bool)
    m[1:4, 2:4] = True
    rle = rle_encode(m)
    doc = {"images": [{"id": 1, "file_name": "x.png", "width": 5, "height": 6}],
           "annotations": [
               {"id": 1, "image_id": 1, "category_id": 3, "iscrowd": 1,
                "segmentation": {"size": rle["size"], "counts": rle_to_string(rle["counts"])}},
               {"id": 2, "image_id": 1, "category_id": 4, "segmentation": [[0, 0, 1, 0, 1, 1, 0, 1]]}],
           "categories": [{"id": 3, "name": "tumor"}, {"id": 4, "name": "instrument"}]}
    f = tmp_path / "c.json"
    f.write_text(json.dumps(doc))
    assert np.array_equal(masks_from_coco(f, categories=["tumor"])["x.png"], m)
    both = masks_from_coco(f)["x.png"]
    # pycocotools fills only pixel (0, 0) for the unit square [0,0 1,0 1,1 0,1]
    assert both[0, 0] and np.array_equal(both & ~m, coco_polygons_mask([[0, 0, 1, 0, 1, 1, 0, 1]], 6, 5))
    assert int((both & ~m).sum()) == 1
    doc["annotations"].append({"id": 3, "image_id": 99, "category_id": 3, "segmentation": []})
    f.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match="unknown image"):
        masks_from_coco(f)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(AnnotationError):
        masks_from_coco(tmp_path / "bad.json")


# ----------------------------------------------------------------------------------- labelme
def test_labelme_round_trip_ours_and_the_importers_reader(tmp_path: Path) -> None:
    from training.importer import rasterise_labelme

    for i, m in enumerate([read_mask(p) for p in FIXTURE_MASKS] + _random_masks(10, seed=2)):
        doc = mask_to_labelme(m, f"img{i}.png")
        assert doc["imageData"] is None and doc["imagePath"] == f"img{i}.png"
        assert (doc["imageHeight"], doc["imageWidth"]) == m.shape
        assert all(s["shape_type"] == "polygon" and s["label"] == "tumor" for s in doc["shapes"])
        f = tmp_path / f"img{i}.json"
        f.write_text(json.dumps(doc))
        assert dice(mask_from_labelme(f), m) >= 0.99
        assert dice(rasterise_labelme(f), m) >= 0.99   # what `python -m training import` does with it


def test_labelme_other_shapes_labels_and_size_check(tmp_path: Path) -> None:
    doc = {"shapes": [
        {"label": "tumor", "shape_type": "rectangle", "points": [[1, 1], [3, 2]]},
        {"label": "tumor", "shape_type": "circle", "points": [[15, 15], [15, 17]]},
        {"label": "tumor", "shape_type": "line", "points": [[0, 19], [19, 19]]},
        {"label": "other", "shape_type": "polygon", "points": [[10, 0], [12, 0], [12, 2]]}],
        "imagePath": "x.png", "imageData": None, "imageHeight": 20, "imageWidth": 20}
    f = tmp_path / "x.json"
    f.write_text(json.dumps(doc))
    m = mask_from_labelme(f, labels=["tumor"])
    assert m[1:3, 1:4].all() and int(m[1:3, 1:4].sum()) == int(m[:5, :5].sum())
    assert m[15, 15] and m[17, 15] and not m[15, 18]
    assert not m[19].any()                                     # a line has no area
    assert not m[0:3, 10:13].any() and mask_from_labelme(f)[1, 11]
    with pytest.raises(AnnotationError, match="20x20"):
        mask_from_labelme(f, shape=(10, 10))
    del doc["imageHeight"], doc["imageWidth"]
    f.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match="no imageHeight"):
        mask_from_labelme(f)
    assert mask_from_labelme(f, shape=(20, 20))[1, 1]


# ------------------------------------------- polygons as the tools that wrote them rasterise them
# Issue 14: a labelme polygon with fractional vertices imported with Dice 0.989 against labelme's
# own shapes_to_label, and a COCO polygon with 0.984 against pycocotools' annToMask, because the
# importer rounded the vertices and filled with OpenCV. tests/data/polygon_reference.npz holds the
# masks the real tools made (tests/data/make_polygon_reference.py; labelme 6.3.1 / Pillow 13.0.0,
# pycocotools 2.0.11); the tests need neither tool.
REFERENCE = TEST_DATA / "polygon_reference.npz"


def _reference() -> list[tuple[dict, np.ndarray, np.ndarray | None]]:
    """(shape, labelme's mask, pycocotools' mask or None) for every reference shape."""
    ref = np.load(REFERENCE, allow_pickle=False)
    shapes = json.loads(str(ref["shapes"]))
    out = []
    for i, s in enumerate(shapes):
        n = s["h"] * s["w"]
        lab = np.unpackbits(ref["labelme"][ref["labelme_start"][i]:ref["labelme_start"][i + 1]])[:n]
        coco = np.unpackbits(ref["coco"][ref["coco_start"][i]:ref["coco_start"][i + 1]])[:n]
        out.append((s, lab.reshape(s["h"], s["w"]).astype(bool),
                    coco.reshape(s["h"], s["w"]).astype(bool) if coco.size else None))
    return out


def test_the_reference_covers_fractional_polygons_rectangles_circles_and_full_frames() -> None:
    ref = _reference()
    kinds = [s["kind"] for s, _l, _c in ref]
    assert kinds.count("polygon") >= 90 and kinds.count("rectangle") >= 20 and kinds.count("circle") >= 20
    fractional = [s for s, _l, _c in ref if s["kind"] == "polygon"
                  and any(v != int(v) for p in s["points"] for v in p)]
    assert len(fractional) >= 60
    assert any((s["h"], s["w"]) == (1076, 1348) for s, _l, _c in ref)
    assert sum(int(lab.sum()) for _s, lab, _c in ref) > 50_000


def test_labelme_shapes_import_exactly_as_labelme_rasterises_them(tmp_path: Path) -> None:
    """Through the reader the importer uses: one labelme JSON per shape, mask equal pixel for pixel."""
    from training.importer import rasterise_labelme

    worst = 1.0
    for i, (s, expected, _coco) in enumerate(_reference()):
        doc = {"version": "5.4.1", "flags": {}, "imagePath": "x.png", "imageData": None,
               "imageHeight": s["h"], "imageWidth": s["w"],
               "shapes": [{"label": "tumor", "points": s["points"], "shape_type": s["kind"], "group_id": None,
                           "flags": {}}]}
        f = tmp_path / f"s{i}.json"
        f.write_text(json.dumps(doc))
        got = rasterise_labelme(f)
        worst = min(worst, dice(got, expected))
        assert np.array_equal(got, expected), f"shape {i} ({s['kind']}): {int((got ^ expected).sum())} pixels differ"
    assert worst == 1.0


def test_coco_polygons_import_exactly_as_pycocotools_ann_to_mask_decodes_them(tmp_path: Path) -> None:
    """Through masks_from_coco: one image and one polygon annotation per reference polygon."""
    ref = [(s, c) for s, _lab, c in _reference() if c is not None]
    doc = {"images": [{"id": i + 1, "file_name": f"p{i}.png", "height": s["h"], "width": s["w"]}
                      for i, (s, _c) in enumerate(ref)],
           "annotations": [{"id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
                            "segmentation": [[float(v) for p in s["points"] for v in p]]}
                           for i, (s, _c) in enumerate(ref)],
           "categories": [{"id": 1, "name": "tumor"}]}
    f = tmp_path / "coco.json"
    f.write_text(json.dumps(doc))
    masks = masks_from_coco(f)
    for i, (_s, expected) in enumerate(ref):
        got = masks[f"p{i}.png"]
        assert np.array_equal(got, expected), f"polygon {i}: {int((got ^ expected).sum())} pixels differ"


def test_the_old_rounding_rasteriser_was_off_on_the_same_references() -> None:
    """Why the tools' conventions matter: rounded vertices filled by OpenCV miss the tools' masks."""
    frame = [(s, lab, coco) for s, lab, coco in _reference() if (s["h"], s["w"]) == (1076, 1348)]
    assert frame
    for s, lab, coco in frame:
        old = polygons_to_mask([s["points"]], s["h"], s["w"])
        assert dice(old, lab) < 0.999 and dice(old, coco) < 0.999


def test_coco_polygon_lists_follow_pycocotools_rules() -> None:
    # an odd trailing number is ignored (frPoly takes len // 2 points); fewer than 3 points is refused
    tri = [1.2, 1.7, 8.4, 2.2, 4.9, 7.6]
    assert np.array_equal(coco_polygons_mask([tri + [3.0]], 10, 10), coco_polygons_mask([tri], 10, 10))
    with pytest.raises(AnnotationError, match="fewer than 3 points"):
        coco_polygons_mask([[1, 2, 3, 4]], 10, 10)
    assert not coco_polygons_mask([], 4, 4).any()
    # union of several polygons, a repeated vertex is harmless
    two = coco_polygons_mask([tri, [5.0, 5.0, 9.0, 5.0, 9.0, 5.0, 9.0, 9.0]], 10, 10)
    assert np.array_equal(two, coco_polygons_mask([tri], 10, 10) | coco_polygons_mask([[5, 5, 9, 5, 9, 9]], 10, 10))
