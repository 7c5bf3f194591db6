"""Unit tests of the Qt-free editing and overlay array logic (viewer/mask_ops.py)."""
from __future__ import annotations

import numpy as np
import pytest

from viewer import mask_ops
from viewer.mask_ops import OverlayStyle


def blank(h: int = 60, w: int = 80) -> np.ndarray:
    return np.zeros((h, w), np.uint8)


def test_stamp_point_paints_a_disc_of_the_radius_centred_on_the_pixel() -> None:
    m = blank()
    bbox = mask_ops.stamp_segment(m, (40.5, 30.5), (40.5, 30.5), 5, 1)
    assert bbox is not None
    yy, xx = np.nonzero(m)
    assert m[30, 40] == 1
    assert xx.min() == 35 and xx.max() == 45 and yy.min() == 25 and yy.max() == 35
    # Every painted pixel lies within the radius (plus the pixel's half-diagonal).
    assert (np.hypot(xx - 40, yy - 30) <= 5.0).all()
    # Changes stay inside the reported box.
    x0, y0, x1, y1 = bbox
    outside = m.copy()
    outside[y0:y1, x0:x1] = 0
    assert not outside.any()


def test_stamp_segment_covers_the_whole_swept_capsule_and_erases() -> None:
    m = blank()
    mask_ops.stamp_segment(m, (10.5, 10.5), (60.5, 10.5), 3, 1)
    assert m[10, 10:61].all() and m[13, 30] == 1 and m[14, 30] == 0
    mask_ops.stamp_segment(m, (30.5, 10.5), (30.5, 10.5), 2, 0)
    assert m[10, 30] == 0 and m[10, 20] == 1


def test_stamp_off_image_is_a_no_op() -> None:
    m = blank()
    assert mask_ops.stamp_segment(m, (-50, -50), (-40, -40), 3, 1) is None
    assert not m.any()


def test_fill_polygon_fills_the_square_and_erase_removes_it() -> None:
    m = blank()
    bbox = mask_ops.fill_polygon(m, [(10, 10), (30, 10), (30, 30), (10, 30)], 1)
    assert bbox is not None
    assert m[10:30, 10:30].all()
    assert m.sum() <= 21 * 21 and m.sum() >= 20 * 20
    mask_ops.fill_polygon(m, [(10, 10), (20, 10), (20, 20), (10, 20)], 0)
    assert not m[11:19, 11:19].any() and m[25, 25] == 1


def test_grow_and_shrink_change_area_by_the_expected_ring() -> None:
    m = blank(100, 100)
    m[40:60, 40:60] = 1
    mask_ops.grow_shrink(m, 3)
    assert m[37, 50] == 1 and m[36, 50] == 0 and m[50, 62] == 1
    mask_ops.grow_shrink(m, -3)
    assert m[40, 50] == 1 and m[39, 50] == 0
    assert mask_ops.grow_shrink(m, 0) is None


def test_fill_holes_fills_inner_holes_but_not_border_background() -> None:
    m = blank()
    m[10:40, 10:40] = 1
    m[20:25, 20:25] = 0
    bbox = mask_ops.fill_holes(m)
    assert bbox == (20, 20, 25, 25)
    assert m[10:40, 10:40].all()
    assert m[0, 0] == 0


def test_remove_islands_drops_only_small_components() -> None:
    m = blank()
    m[5:25, 5:25] = 1          # 400 px
    m[40:43, 60:63] = 1        # 9 px
    mask_ops.remove_islands(m, 10)
    assert m[41, 61] == 0 and m[10, 10] == 1 and m.sum() == 400


def test_smooth_removes_a_one_pixel_spur_and_keeps_the_body() -> None:
    m = blank(80, 80)
    m[20:60, 20:60] = 1
    m[10:20, 40] = 1           # spur
    mask_ops.smooth(m, 2.0)
    assert m[12, 40] == 0 and m[40, 40] == 1


def test_push_pull_moves_the_boundary_in_the_drag_direction_locally() -> None:
    m = blank(100, 100)
    m[30:70, 30:70] = 1
    before = m.copy()
    bbox = mask_ops.push_pull(m, (50.5, 69.5), (50.5, 77.5), radius=10)
    assert bbox is not None
    assert m[74, 50] == 1                    # pulled out below the edge
    assert m[74, 31] == 0                    # far along the edge: unchanged
    assert (m[30:50, :] == before[30:50, :]).all()   # the far side did not move


def test_grabcut_refine_snaps_a_loose_mask_to_a_bright_object() -> None:
    rng = np.random.default_rng(0)
    img = (rng.normal(60, 5, (80, 80, 3))).clip(0, 255).astype(np.uint8)
    img[25:55, 25:55] = (rng.normal(200, 5, (30, 30, 3))).clip(0, 255).astype(np.uint8)
    m = blank(80, 80)
    m[20:60, 20:60] = 1                      # too large by 5 px all round
    mask_ops.grabcut_refine(img, m, margin=10)
    truth = blank(80, 80)
    truth[25:55, 25:55] = 1
    dice, _ = mask_ops.dice_iou(m, truth)
    assert dice > 0.95


def test_dice_iou_hand_computed() -> None:
    a = blank(10, 10)
    b = blank(10, 10)
    a[0:2, 0:5] = 1  # 10 px
    b[0:2, 3:8] = 1  # 10 px, overlap 4
    dice, iou = mask_ops.dice_iou(a, b)
    assert dice == pytest.approx(2 * 4 / 20)
    assert iou == pytest.approx(4 / 16)
    assert mask_ops.dice_iou(blank(), blank()) == (1.0, 1.0)


def test_pack_unpack_round_trip_is_exact_for_odd_shapes() -> None:
    rng = np.random.default_rng(1)
    patch = (rng.random((13, 29)) > 0.5).astype(np.uint8)
    data, shape = mask_ops.pack_patch(patch)
    assert len(data) == (13 * 29 + 7) // 8
    assert np.array_equal(mask_ops.unpack_patch(data, shape), patch)


def test_render_fill_colours_exactly_the_mask_pixels_premultiplied() -> None:
    m = blank(20, 30)
    m[5:10, 5:15] = 1
    buf = np.zeros((20, 30, 4), np.uint8)
    style = OverlayStyle(mode=mask_ops.FILL, color=(255, 0, 0), opacity=0.5)
    mask_ops.render_overlay(buf, m, None, style)
    assert (buf[..., 3] > 0).sum() == m.sum()
    assert ((buf[..., 3] > 0) == (m > 0)).all()
    px = buf[7, 7]
    assert tuple(px) == (0, 0, 128, 128)  # B, G, R, A premultiplied: red at half opacity


def test_render_outline_marks_the_boundary_and_repaints_a_changed_region() -> None:
    m = blank(40, 40)
    m[10:30, 10:30] = 1
    buf = np.zeros((40, 40, 4), np.uint8)
    style = OverlayStyle(mode=mask_ops.OUTLINE, opacity=0.4, outline_px=2)
    mask_ops.render_overlay(buf, m, None, style)
    assert buf[10, 20, 3] == 255 and buf[11, 20, 3] == 255   # 2-px boundary
    assert 0 < buf[20, 20, 3] < 255                           # faint inside
    assert buf[5, 5, 3] == 0
    m[10:30, 10:30] = 0
    box = mask_ops.render_overlay(buf, m, None, style, (10, 10, 30, 30))
    assert box is not None and not buf[..., 3].any()


def test_render_probability_and_hidden() -> None:
    prob = np.zeros((10, 10), np.uint8)
    prob[2:4, 2:4] = 255
    prob[6, 6] = 5          # below 5 %: transparent
    buf = np.zeros((10, 10, 4), np.uint8)
    mask_ops.render_overlay(buf, None, prob, OverlayStyle(mode=mask_ops.PROBABILITY, opacity=1.0))
    assert buf[2, 2, 3] == 255 and buf[6, 6, 3] == 0 and buf[0, 0, 3] == 0
    assert buf[2, 2, 2] == 255 and buf[2, 2, 0] == 0          # red at p = 1
    mask_ops.render_overlay(buf, None, prob, OverlayStyle(visible=False))
    assert not buf.any()
