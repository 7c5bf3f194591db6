"""Maintainer tool: (re)build the tiny test fixtures in tests/data/ from the shared public data folder beside the checkout.

Tests never read that folder; they use the files this script wrote (committed, CC BY 4.0, see
ATTRIBUTION.md). Run from the repository root: ``.venv/bin/python tests/data/make_fixtures.py``.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from training.imageio import read_mask, read_rgb  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
OUT = Path(__file__).resolve().parent

VOCALFOLDS = ["0041.png", "0055.png", "0070.png"]  # patient1/seq1, frames with tumour (label 4)
KVASIR_INDEX = [0, 5, 10]                           # sorted names, validation split (index % 5 == 0)
# public_mini/: the shared data folder's layout in miniature, real frames and the real label format
MINI_KVASIR_N = 10                                  # the first 10 sorted names: 2 in the validation split
MINI_VOCALFOLDS = {                                 # sequence -> frames (seq2 0090: tumour-free)
    "patient1/seq1": ["0041.png", "0070.png"], "patient1/seq2": ["0089.png", "0090.png", "0096.png"],
    "patient1/seq3": None, "patient1/seq4": None, "patient2/seq5": None, "patient2/seq6": 2,
}


def save(path: Path, rgb: np.ndarray, jpeg: bool = False) -> None:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, 90] if jpeg else [cv2.IMWRITE_PNG_COMPRESSION, 9]
    ok, buf = cv2.imencode(path.suffix, bgr, params)
    assert ok
    path.write_bytes(buf.tobytes())


def save_mask(path: Path, mask: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", mask.astype(np.uint8) * 255, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok
    path.write_bytes(buf.tobytes())


def main() -> None:
    for name in VOCALFOLDS:
        img = read_rgb(SHARED / "vocalfolds/images/patient1/seq1" / name)
        lab = read_mask(SHARED / "vocalfolds/labels/patient1/seq1" / name, label_value=4)
        img = cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)
        lab = cv2.resize(lab.astype(np.uint8), (128, 128), interpolation=cv2.INTER_NEAREST) > 0
        save(OUT / f"vf_{Path(name).stem}.png", img)
        save_mask(OUT / f"vf_{Path(name).stem}_mask.png", lab)
    names = sorted(p.name for p in (SHARED / "kvasir-seg-256/images").glob("*.jpg"))
    for i in KVASIR_INDEX:
        stem = Path(names[i]).stem
        img = read_rgb(SHARED / "kvasir-seg-256/images" / names[i])
        m = read_mask(SHARED / "kvasir-seg-256/masks" / f"{stem}.png")
        img = cv2.resize(img, (96, 96), interpolation=cv2.INTER_AREA)
        m = cv2.resize(m.astype(np.uint8), (96, 96), interpolation=cv2.INTER_NEAREST) > 0
        save(OUT / f"kv_{stem[:8]}.jpg", img, jpeg=True)
        save_mask(OUT / f"kv_{stem[:8]}_mask.png", m)
    public_mini(OUT / "public_mini")
    # A CMYK JPEG (OpenCV cannot write one): ImageMagick, from the first vocalfolds fixture.
    subprocess.run(["convert", str(OUT / "vf_0041.png"), "-resize", "48x48", "-colorspace", "CMYK",
                    "-quality", "90", str(OUT / "cmyk.jpg")], check=True)


def public_mini(dest: Path) -> None:
    """A few real frames in the layout of the shared data folder, smaller: Kvasir 256 -> 64 px JPEG, masks
    0/255; vocalfolds 512 -> 96 px, labels kept as class maps (nearest) so ``label == 4`` is
    what the code under test reads. ``None``: the sequence's first frame; an int: its first N."""
    names = sorted(p.name for p in (SHARED / "kvasir-seg-256/images").glob("*.jpg"))[:MINI_KVASIR_N]
    for sub in ("images", "masks"):
        (dest / "kvasir-seg-256" / sub).mkdir(parents=True, exist_ok=True)
    for name in names:
        stem = Path(name).stem
        img = cv2.resize(read_rgb(SHARED / "kvasir-seg-256/images" / name), (64, 64), interpolation=cv2.INTER_AREA)
        m = cv2.resize(read_mask(SHARED / "kvasir-seg-256/masks" / f"{stem}.png").astype(np.uint8), (64, 64),
                       interpolation=cv2.INTER_NEAREST) > 0
        save(dest / "kvasir-seg-256/images" / name, img, jpeg=True)
        save_mask(dest / "kvasir-seg-256/masks" / f"{stem}.png", m)
    for seq, frames in MINI_VOCALFOLDS.items():
        all_frames = sorted(p.name for p in (SHARED / "vocalfolds/images" / seq).glob("*.png"))
        chosen = frames if isinstance(frames, list) else all_frames[: frames or 1]
        for sub in ("images", "labels"):
            (dest / "vocalfolds" / sub / seq).mkdir(parents=True, exist_ok=True)
        for name in chosen:
            img = cv2.resize(read_rgb(SHARED / "vocalfolds/images" / seq / name), (96, 96), interpolation=cv2.INTER_AREA)
            lab = cv2.imread(str(SHARED / "vocalfolds/labels" / seq / name), cv2.IMREAD_UNCHANGED)
            lab = cv2.resize(lab, (96, 96), interpolation=cv2.INTER_NEAREST)
            save(dest / "vocalfolds/images" / seq / name, img)
            ok, buf = cv2.imencode(".png", lab, [cv2.IMWRITE_PNG_COMPRESSION, 9])
            assert ok
            (dest / "vocalfolds/labels" / seq / name).write_bytes(buf.tobytes())


if __name__ == "__main__":
    main()
