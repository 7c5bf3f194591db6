"""model/pseudo_nbi.py: the (G, B, B) synthesis, the homography it returns, determinism."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from model.pseudo_nbi import nbi_colour, pseudo_nbi
from tests.conftest import TEST_DATA
from training.imageio import read_rgb


@pytest.fixture(scope="module")
def wli() -> np.ndarray:
    return read_rgb(TEST_DATA / "vf_0055.png")


def test_deterministic_for_int_seed(wli: np.ndarray) -> None:
    a, ha = pseudo_nbi(wli, 7)
    b, hb = pseudo_nbi(wli, 7)
    c, hc = pseudo_nbi(wli, 8)
    assert np.array_equal(a, b) and np.array_equal(ha, hb)
    assert not np.allclose(ha, hc)
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    assert np.array_equal(pseudo_nbi(wli, g1)[1], pseudo_nbi(wli, g2)[1])


def test_colour_is_g_b_b_and_nbi_like(wli: np.ndarray) -> None:
    nbi, h = pseudo_nbi(wli, warp=False)
    assert np.array_equal(h, np.eye(3))
    assert nbi.shape == wli.shape and nbi.dtype == np.uint8
    assert np.array_equal(nbi[..., 1], nbi[..., 2])           # blue band shown in green and blue
    # red channel follows the WLI green band (monotone contrast mapping), not the WLI red
    corr_g = np.corrcoef(nbi[..., 0].ravel(), wli[..., 1].ravel())[0, 1]
    corr_r = np.corrcoef(nbi[..., 0].ravel(), wli[..., 0].ravel())[0, 1]
    assert corr_g > 0.9 and corr_g > corr_r
    assert nbi[..., 0].mean() < wli[..., 0].mean()           # red-dominated WLI becomes not red


def test_homography_maps_nbi_back_to_wli(wli: np.ndarray) -> None:
    base = nbi_colour(wli)
    nbi, h = pseudo_nbi(wli, 1, max_corner_shift=0.06)
    assert h.shape == (3, 3) and h.dtype == np.float64
    assert not np.allclose(h, np.eye(3), atol=1e-3)
    back = cv2.warpPerspective(nbi, h, (wli.shape[1], wli.shape[0]))
    inner = (slice(12, -12), slice(12, -12))  # away from the border the warp had to invent
    err = np.abs(back[inner].astype(int) - base[inner].astype(int)).mean()
    naive = np.abs(nbi[inner].astype(int) - base[inner].astype(int)).mean()
    # two bilinear resamplings of a CLAHE-sharpened 128 px image cost ~8 grey levels by themselves
    assert err < naive / 3, (err, naive)


def test_corner_shift_bounded(wli: np.ndarray) -> None:
    h_img, w_img = wli.shape[:2]
    corners = np.float64([[0, 0], [w_img - 1, 0], [w_img - 1, h_img - 1], [0, h_img - 1]]).reshape(-1, 1, 2)
    for seed in range(20):
        _, h = pseudo_nbi(wli, seed, max_corner_shift=0.04)
        moved = cv2.perspectiveTransform(corners, np.linalg.inv(h)).reshape(-1, 2) - corners.reshape(-1, 2)
        assert np.all(np.abs(moved[:, 0]) <= 0.04 * w_img + 1e-6)
        assert np.all(np.abs(moved[:, 1]) <= 0.04 * h_img + 1e-6)


def test_rejects_non_rgb() -> None:
    with pytest.raises(ValueError):
        pseudo_nbi(np.zeros((4, 4), np.uint8))
