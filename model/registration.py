"""NBI -> WLI registration of one pair (a homography), computed on import and stored with the case.

Why it is not plain feature matching on RGB: WLI and NBI look very different (NBI is dark
green-cyan, vessels dark). What both share is the green band: an NBI display shows the 540 nm
band in its *red* channel, which is what a white-light camera's *green* channel mostly sees. So
the WLI green channel and the NBI red channel, each CLAHE-equalised, are matched with SIFT
(AKAZE when SIFT finds too little), a RANSAC homography is fitted, and optionally refined with
ECC on the same images. A pair that cannot be registered falls back to the identity with quality
"low" (the viewer shows it; the user can still work on the WLI).

No torch, no Qt.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Registration", "register_pair", "corner_error", "shared_band"]

_WORK_SIDE = 512          # features are found on images at most this big (speed), then scaled back
_MIN_SIDE = 320           # tiny images are upsampled so SIFT has enough octaves
_RATIO = 0.75             # Lowe's ratio test
_RANSAC_PX = 3.0          # in working-image pixels
_MIN_INLIERS = 12
_GOOD_REPROJ = 2.5        # mean inlier reprojection error (working pixels) for quality "good"


@dataclass
class Registration:
    """Result of registering an NBI image to its WLI image (homography maps NBI -> WLI pixels)."""

    homography: np.ndarray
    inliers: int
    reproj_error: float
    quality: str            # "good" | "low"
    method: str             # e.g. "sift+ransac+ecc", "akaze+ransac", "identity"

    def to_dict(self) -> dict:
        return {"homography": [float(v) for v in self.homography.ravel()], "inliers": int(self.inliers),
                "reproj_error": float(self.reproj_error), "quality": self.quality, "method": self.method}


def shared_band(img: np.ndarray, modality: str) -> np.ndarray:
    """The grey image both modalities share: WLI green / NBI red, CLAHE-equalised."""
    if img.ndim == 2:
        band = img
    else:
        band = img[:, :, 1] if modality == "wli" else img[:, :, 0]
    band = np.ascontiguousarray(band, dtype=np.uint8)
    return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(band)


def _scale_for(shape: tuple[int, ...]) -> float:
    side = max(shape[0], shape[1])
    if side > _WORK_SIDE:
        return _WORK_SIDE / side
    if side < _MIN_SIDE:
        return _MIN_SIDE / side
    return 1.0


def _resize(img: np.ndarray, s: float) -> np.ndarray:
    if s == 1.0:
        return img
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return cv2.resize(img, (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))), interpolation=interp)


def _scale_matrix(s: float) -> np.ndarray:
    return np.diag([s, s, 1.0])


def _sane(hm: np.ndarray, nbi_shape: tuple[int, ...], wli_shape: tuple[int, ...]) -> bool:
    """Reject degenerate fits: flips, extreme scale, strong perspective, corners far outside."""
    if hm is None or not np.all(np.isfinite(hm)) or abs(hm[2, 2]) < 1e-12:
        return False
    hm = hm / hm[2, 2]
    det = np.linalg.det(hm[:2, :2])
    if not 0.2 < det < 5.0:
        return False
    h, w = nbi_shape[:2]
    corners = np.float64([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]]).T
    mapped = hm @ corners
    if np.any(mapped[2] <= 0):
        return False
    pts = (mapped[:2] / mapped[2]).T
    wh, ww = wli_shape[:2]
    margin = 0.5 * max(wh, ww)
    if np.any(pts[:, 0] < -margin) or np.any(pts[:, 0] > ww + margin) or np.any(pts[:, 1] < -margin) \
            or np.any(pts[:, 1] > wh + margin):
        return False
    # convex, same orientation (no fold-over)
    cross = []
    for i in range(4):
        a, b, c = pts[i], pts[(i + 1) % 4], pts[(i + 2) % 4]
        cross.append((b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]))
    return all(v > 0 for v in cross) or all(v < 0 for v in cross)


def _match(detector, img_n: np.ndarray, img_w: np.ndarray, norm: int):
    kn, dn = detector.detectAndCompute(img_n, None)
    kw, dw = detector.detectAndCompute(img_w, None)
    if dn is None or dw is None or len(kn) < 4 or len(kw) < 4:
        return None, None
    matcher = cv2.BFMatcher(norm)
    pairs = matcher.knnMatch(dn, dw, k=2)
    good = [m for m_n in pairs if len(m_n) == 2 for m, n in [m_n] if m.distance < _RATIO * n.distance]
    if len(good) < 4:
        return None, None
    src = np.float32([kn[m.queryIdx].pt for m in good])
    dst = np.float32([kw[m.trainIdx].pt for m in good])
    return src, dst


def _fit(src: np.ndarray, dst: np.ndarray):
    hm, inl = cv2.findHomography(src, dst, cv2.RANSAC, _RANSAC_PX, maxIters=4000, confidence=0.999)
    if hm is None or inl is None:
        return None, 0, float("inf")
    mask = inl.ravel().astype(bool)
    n = int(mask.sum())
    if n < 4:
        return None, n, float("inf")
    proj = cv2.perspectiveTransform(src[mask].reshape(-1, 1, 2), hm).reshape(-1, 2)
    err = float(np.mean(np.linalg.norm(proj - dst[mask], axis=1)))
    return hm, n, err


def _ecc_refine(img_n: np.ndarray, img_w: np.ndarray, hm: np.ndarray) -> np.ndarray | None:
    """Refine an NBI->WLI homography with ECC; None when it does not converge or drifts away."""
    try:
        # ECC estimates W with input(W x) ~ template(x): input = NBI, template = WLI, W = H^-1.
        warp = np.linalg.inv(hm).astype(np.float32)
        warp /= warp[2, 2]
        tmpl = cv2.GaussianBlur(img_w, (5, 5), 0).astype(np.float32)
        inp = cv2.GaussianBlur(img_n, (5, 5), 0).astype(np.float32)
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 60, 1e-5)
        _, warp = cv2.findTransformECC(tmpl, inp, warp, cv2.MOTION_HOMOGRAPHY, criteria, None, 5)
        out = np.linalg.inv(warp.astype(np.float64))
        return out / out[2, 2]
    except (cv2.error, np.linalg.LinAlgError):
        return None


def corner_error(h_est: np.ndarray, h_true: np.ndarray, nbi_shape: tuple[int, ...]) -> float:
    """Mean distance (WLI pixels) between where the two homographies send the NBI corners."""
    h, w = nbi_shape[:2]
    corners = np.float64([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]).reshape(-1, 1, 2)
    a = cv2.perspectiveTransform(corners, np.asarray(h_est, np.float64)).reshape(-1, 2)
    b = cv2.perspectiveTransform(corners, np.asarray(h_true, np.float64)).reshape(-1, 2)
    return float(np.mean(np.linalg.norm(a - b, axis=1)))


def _identity(method: str = "identity", inliers: int = 0, err: float = float("nan")) -> Registration:
    return Registration(np.eye(3, dtype=np.float64), inliers, err, "low", method)


def register_pair(wli: np.ndarray, nbi: np.ndarray, refine: bool = False) -> Registration:
    """Estimate the NBI->WLI homography of a pair (the images may differ in size).

    ``quality`` is "good" when enough RANSAC inliers agree to within ``_GOOD_REPROJ`` working
    pixels and the matrix is sane; otherwise the identity is returned with quality "low".
    ``reproj_error`` is the mean inlier reprojection error in WLI pixels.
    """
    if wli is None or nbi is None or wli.size == 0 or nbi.size == 0:
        return _identity()
    gw, gn = shared_band(wli, "wli"), shared_band(nbi, "nbi")
    sw, sn = _scale_for(gw.shape), _scale_for(gn.shape)
    # One working scale per image; homography in full-resolution pixels = Sw^-1 Hwork Sn.
    iw, in_ = _resize(gw, sw), _resize(gn, sn)
    best = None
    for name, make, norm in (("sift", lambda: cv2.SIFT_create(nfeatures=2000), cv2.NORM_L2),
                             ("akaze", lambda: cv2.AKAZE_create(threshold=1e-4), cv2.NORM_HAMMING)):
        try:
            src, dst = _match(make(), in_, iw, norm)
        except cv2.error:
            continue
        if src is None:
            continue
        hm, n, err = _fit(src, dst)
        if hm is None:
            continue
        if best is None or n > best[1]:
            best = (hm, n, err, name)
        if n >= 3 * _MIN_INLIERS and err <= _GOOD_REPROJ:
            break  # confident enough; AKAZE would only cost time
    if best is None:
        return _identity()
    hm_work, n, err, name = best
    if not _sane(hm_work, in_.shape, iw.shape):
        return _identity(f"{name}+ransac(rejected)", n, err)
    method = f"{name}+ransac"
    if refine and n >= _MIN_INLIERS:
        ref = _ecc_refine(in_, iw, hm_work)
        if ref is not None and _sane(ref, in_.shape, iw.shape) \
                and corner_error(ref, hm_work, in_.shape) < 4 * _RANSAC_PX:
            hm_work = ref
            method += "+ecc"
    full = np.linalg.inv(_scale_matrix(sw)) @ hm_work @ _scale_matrix(sn)
    full /= full[2, 2]
    good = n >= _MIN_INLIERS and err <= _GOOD_REPROJ
    if not good:
        return Registration(np.eye(3, dtype=np.float64), n, err / sw, "low", method + "(weak->identity)")
    return Registration(full.astype(np.float64), n, err / sw, "good", method)
