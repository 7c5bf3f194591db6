"""Maintainer tool: rebuild resources/demo/ from ../shared/data (not run by tests or the app).

8 small pairs: 4 vocalfolds tumour frames from the held-out block (patient1/seq1 0041..0080,
never trained on) and 4 Kvasir-SEG polyps from the validation split (sorted names, index % 5 == 0).
Each pair: ``<name>_wli.jpg`` (JPEG q90), ``<name>_nbi.jpg`` (pseudo-NBI with a small random
homography, fixed seed) and ``<name>_mask.png`` (0/255). Run from the repository root:
``.venv/bin/python resources/demo/make_demo.py``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from model.pseudo_nbi import pseudo_nbi  # noqa: E402
from training.imageio import read_mask, read_rgb  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
OUT = Path(__file__).resolve().parent
SEED = 20260827
VF_WIDTH = 384


def _jpeg(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    path.write_bytes(buf.tobytes())


def _mask(path: Path, m: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", m.astype(np.uint8) * 255, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok
    path.write_bytes(buf.tobytes())


def vocalfolds() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The 4 held-out frames with the largest tumour areas (visible in a demo)."""
    img_dir = SHARED / "vocalfolds/images/patient1/seq1"
    lab_dir = SHARED / "vocalfolds/labels/patient1/seq1"
    held_out = sorted(p.name for p in img_dir.glob("*.png"))[-11:]
    assert held_out[0] == "0041.png" and held_out[-1] == "0080.png", held_out
    scored = []
    for name in held_out:
        m = read_mask(lab_dir / name, label_value=4)
        scored.append((int(m.sum()), name, m))
    out = []
    for _area, name, m in sorted(scored, key=lambda t: -t[0])[:4]:
        img = read_rgb(img_dir / name)
        h = round(img.shape[0] * VF_WIDTH / img.shape[1])
        img = cv2.resize(img, (VF_WIDTH, h), interpolation=cv2.INTER_AREA)
        m = cv2.resize(m.astype(np.uint8), (VF_WIDTH, h), interpolation=cv2.INTER_NEAREST) > 0
        out.append((f"vf_{Path(name).stem}", img, m))
    return sorted(out, key=lambda t: t[0])


def kvasir() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The first 4 validation images whose polyp covers 5-30 % of the frame."""
    names = sorted(p.name for p in (SHARED / "kvasir-seg-256/images").glob("*.jpg"))
    out = []
    for i, name in enumerate(names):
        if i % 5:
            continue
        m = read_mask(SHARED / "kvasir-seg-256/masks" / f"{Path(name).stem}.png")
        if 0.05 <= m.mean() <= 0.30:
            out.append((f"kv_{Path(name).stem[:10]}", read_rgb(SHARED / "kvasir-seg-256/images" / name), m))
        if len(out) == 4:
            break
    return out


def main() -> None:
    for old in list(OUT.glob("*_wli.jpg")) + list(OUT.glob("*_nbi.jpg")) + list(OUT.glob("*_mask.png")):
        old.unlink()
    rng = np.random.default_rng(SEED)
    for name, img, m in vocalfolds() + kvasir():
        nbi, _h = pseudo_nbi(img, rng, max_corner_shift=0.03)
        _jpeg(OUT / f"{name}_wli.jpg", img)
        _jpeg(OUT / f"{name}_nbi.jpg", nbi)
        _mask(OUT / f"{name}_mask.png", m)
        print(name, img.shape, f"tumour {m.mean():.1%}")


if __name__ == "__main__":
    main()
