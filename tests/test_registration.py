"""model/registration.py: NBI->WLI homography recovered from a WLI -> pseudo-NBI pair."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from model.pseudo_nbi import pseudo_nbi
from model.registration import corner_error, register_pair
from tests.conftest import FIXTURE_WLI, TEST_DATA
from training.imageio import read_rgb


def _pair(name: str, seed: int, nbi_scale: tuple[float, float] = (1.0, 1.0)):
    """WLI, a pseudo-NBI of a different size, and the true NBI->WLI homography."""
    wli = read_rgb(TEST_DATA / name)
    nbi, h = pseudo_nbi(wli, seed, max_corner_shift=0.05)
    h_img, w_img = wli.shape[:2]
    size = (round(w_img * nbi_scale[0]), round(h_img * nbi_scale[1]))
    nbi = cv2.resize(nbi, size, interpolation=cv2.INTER_AREA)
    s = np.diag([size[0] / w_img, size[1] / h_img, 1.0])
    return wli, nbi, h @ np.linalg.inv(s)


@pytest.mark.parametrize("name,seed,scale", [
    ("vf_0041.png", 1, (1.0, 1.0)),
    ("vf_0070.png", 2, (1.5, 1.25)),      # NBI bigger and of another aspect ratio
    ("kv_cju0qkwl.jpg", 3, (0.8, 0.8)),  # NBI smaller
])
def test_known_homography_recovered_within_2px(name: str, seed: int, scale) -> None:
    wli, nbi, h_true = _pair(name, seed, scale)
    reg = register_pair(wli, nbi)
    assert reg.quality == "good", reg
    assert reg.inliers >= 12
    assert reg.homography.shape == (3, 3) and reg.homography.dtype == np.float64
    err = corner_error(reg.homography, h_true, nbi.shape)
    assert err < 2.0, f"corner error {err:.2f} px"
    # and the identity would have been clearly wrong, so the test measures something
    assert corner_error(np.eye(3), h_true, nbi.shape) > 2.0


def test_mean_corner_error_over_fixture_pairs() -> None:
    errs = []
    for i in range(8):
        wli, nbi, h_true = _pair(FIXTURE_WLI[i % len(FIXTURE_WLI)], 100 + i, (1.0 + 0.1 * (i % 3), 1.0))
        reg = register_pair(wli, nbi)
        errs.append(corner_error(reg.homography, h_true, nbi.shape))
    assert np.mean(errs) < 1.0 and max(errs) < 2.0, errs


def test_unregistrable_pair_falls_back_to_identity_low() -> None:
    rng = np.random.default_rng(0)
    wli = read_rgb(TEST_DATA / "vf_0041.png")
    noise = rng.integers(0, 256, size=(100, 140, 3), dtype=np.uint8)
    flat = np.full((64, 64, 3), 90, np.uint8)
    for other in (noise, flat):
        reg = register_pair(wli, other)
        assert reg.quality == "low"
        assert np.array_equal(reg.homography, np.eye(3))
