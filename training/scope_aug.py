"""What another hospital's endoscope changes in an image: augmentation, and one held-out "device".

Why: a model trained on two public sets meets other scopes, video processors and capture paths
in the clinic (issue 15: Dice 0.45 on 17 pairs from another hospital). What differs between
them is mostly the image formation, not the anatomy, so training draws, per image:

- colour response: a colour-mixing matrix near the identity and a per-channel tone curve;
- white balance: per-channel gains;
- vignetting: radial fall-off of the light, with an off-centre optical axis;
- specular highlights: small saturated white reflections (wet mucosa under a point light);
- motion blur: a short linear kernel at any angle;
- JPEG: re-encoding at a low to medium quality (recorders, PACS exports);
- resolution: a 1080p frame scaled down, or a lower-resolution sensor scaled up (down-up
  resampling).

``other_device`` is a fixed transform of a different kind that training never uses: the
processor's "structure enhancement" (unsharp masking), a hue rotation, sensor noise, a darker
tone curve and the octagonal field stop of some scopes. Evaluating with it on (``python -m
training evaluate --other-device``) says how a model copes with a change it was not shown,
which is what a new hospital is. No torch, no Qt.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["ScopeAugConfig", "scope_augment", "other_device"]


@dataclass(frozen=True)
class ScopeAugConfig:
    """Probabilities and strengths of the scope/processor augmentation."""

    colour_matrix: float = 0.08  # max off-diagonal weight of the colour-mixing matrix
    channel_gamma: float = 0.15  # per-channel exponent exp(+-)
    white_balance: float = 0.15  # per-channel gain 1 +- this
    vignette_p: float = 0.5
    vignette_max: float = 0.55  # light lost at the corners
    specular_p: float = 0.3
    specular_max: int = 6
    motion_blur_p: float = 0.2
    motion_blur_px: tuple[int, int] = (3, 9)
    jpeg_p: float = 0.3
    jpeg_quality: tuple[int, int] = (30, 90)
    resample_p: float = 0.3
    resample_scale: tuple[float, float] = (0.35, 0.8)


def _colour_response(x: np.ndarray, rng: np.random.Generator, cfg: ScopeAugConfig) -> np.ndarray:
    m = np.eye(3, dtype=np.float32) + rng.uniform(-cfg.colour_matrix, cfg.colour_matrix, (3, 3)).astype(np.float32)
    m /= m.sum(axis=1, keepdims=True)  # keep grey grey before the white balance
    x = np.clip(x @ m.T, 0.0, 1.0)
    gam = np.exp(rng.uniform(-cfg.channel_gamma, cfg.channel_gamma, 3)).astype(np.float32)
    gain = (1.0 + rng.uniform(-cfg.white_balance, cfg.white_balance, 3)).astype(np.float32)
    return np.clip(x ** gam * gain, 0.0, 1.0)


def _vignette(x: np.ndarray, rng: np.random.Generator, cfg: ScopeAugConfig) -> np.ndarray:
    h, w = x.shape[:2]
    cy, cx = h * (0.5 + rng.uniform(-0.15, 0.15)), w * (0.5 + rng.uniform(-0.15, 0.15))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((yy - cy) / (0.5 * h)) ** 2 + ((xx - cx) / (0.5 * w)) ** 2
    fall = 1.0 - rng.uniform(0.1, cfg.vignette_max) * np.clip(r2 / 2.0, 0.0, 1.0) ** rng.uniform(0.7, 1.5)
    return x * fall[..., None]


def _speculars(x: np.ndarray, rng: np.random.Generator, cfg: ScopeAugConfig) -> np.ndarray:
    h, w = x.shape[:2]
    spots = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, cfg.specular_max + 1))):
        c = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        ax = (max(1, int(rng.uniform(0.004, 0.03) * w)), max(1, int(rng.uniform(0.002, 0.012) * h)))
        cv2.ellipse(spots, c, ax, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    spots = cv2.GaussianBlur(spots, (0, 0), max(0.6, 0.004 * w))
    return x + (1.0 - x) * np.clip(spots, 0.0, 1.0)[..., None]


def _motion_blur(x: np.ndarray, rng: np.random.Generator, cfg: ScopeAugConfig) -> np.ndarray:
    n = int(rng.integers(cfg.motion_blur_px[0], cfg.motion_blur_px[1] + 1))
    k = np.zeros((n, n), np.float32)
    k[n // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((n - 1) / 2.0, (n - 1) / 2.0), float(rng.uniform(0, 180)), 1.0)
    k = cv2.warpAffine(k, rot, (n, n))
    return cv2.filter2D(x, -1, k / max(k.sum(), 1e-6), borderType=cv2.BORDER_REFLECT)


def _resample(img: np.ndarray, rng: np.random.Generator, cfg: ScopeAugConfig) -> np.ndarray:
    h, w = img.shape[:2]
    f = rng.uniform(*cfg.resample_scale)
    small = cv2.resize(img, (max(8, round(w * f)), max(8, round(h * f))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR if rng.random() < 0.5 else cv2.INTER_CUBIC)


def _jpeg(img: np.ndarray, rng: np.random.Generator, cfg: ScopeAugConfig) -> np.ndarray:
    q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else img


def scope_augment(img: np.ndarray, rng: np.random.Generator, cfg: ScopeAugConfig | None = None) -> np.ndarray:
    """One random scope/processor rendering of an RGB uint8 image (same size)."""
    cfg = cfg or ScopeAugConfig()
    x = img.astype(np.float32) / 255.0
    x = _colour_response(x, rng, cfg)
    if rng.random() < cfg.vignette_p:
        x = _vignette(x, rng, cfg)
    if rng.random() < cfg.specular_p:
        x = _speculars(x, rng, cfg)
    if rng.random() < cfg.motion_blur_p:
        x = _motion_blur(x, rng, cfg)
    out = np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < cfg.resample_p:
        out = _resample(out, rng, cfg)
    if rng.random() < cfg.jpeg_p:
        out = _jpeg(out, rng, cfg)
    return out


def other_device(img: np.ndarray, seed: int = 0) -> np.ndarray:
    """The held-out "other device": a fixed rendering built from operations training never uses.

    Structure enhancement (unsharp mask, amount 1.0), hue rotated by +10 degrees, a darker tone
    curve (gamma 1.3), Gaussian sensor noise (sigma 4/255, seeded) and an octagonal field stop
    (corners cut at 15 % of the short side). Deterministic for a seed."""
    x = img.astype(np.float32)
    blur = cv2.GaussianBlur(x, (0, 0), max(1.0, img.shape[1] / 256.0))
    x = np.clip(x + 1.0 * (x - blur), 0, 255).astype(np.uint8)
    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + 5) % 180).astype(np.uint8)  # OpenCV hue: 2 deg units
    x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32) / 255.0
    x = x ** 1.3
    noise = np.random.default_rng(seed).normal(0.0, 4.0 / 255.0, x.shape).astype(np.float32)
    x = np.clip(x + noise, 0.0, 1.0)
    h, w = x.shape[:2]
    c = int(round(0.15 * min(h, w)))
    stop = np.full((h, w), 255, np.uint8)
    for tri in ([(0, 0), (c, 0), (0, c)], [(w, 0), (w - c, 0), (w, c)],
                [(0, h), (c, h), (0, h - c)], [(w, h), (w - c, h), (w, h - c)]):
        cv2.fillPoly(stop, [np.array(tri, np.int32)], 0)
    x = x * (stop[..., None] / 255.0)
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def describe() -> dict:
    """What a card records about the augmentation (so a run says what it was shown)."""
    cfg = ScopeAugConfig()
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()} | {
        "order": "colour response, vignette, speculars, motion blur, resample, jpeg",
        "held_out": "other_device: unsharp mask, hue +10 deg, gamma 1.3, noise, octagonal stop (never trained)",
    }
