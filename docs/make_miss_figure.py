"""docs/seq2-what-is-missed.jpg: which part of an unseen recording's tumour does a model miss?

Top row: WLI with the reference outline (green) and the model's mask (yellow); bottom row: the
model's probability (blue 0, red 1); four seq2 frames side by side, at half size.

    .venv/bin/python docs/make_miss_figure.py resources/models/adf-tiny docs/seq2-what-is-missed.jpg

Needs runs/eval/vocal_seq2.csv (docs/MODEL.md, "Reproduce") and ../shared/data beside the checkout.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.predictor import Predictor  # noqa: E402
from model.pseudo_nbi import pseudo_nbi  # noqa: E402

EVAL = Path("runs/eval")
GREEN, YELLOW = (0, 255, 0), (255, 255, 0)


def outlined(wli: np.ndarray, masks: list[tuple[np.ndarray, tuple[int, int, int]]]) -> np.ndarray:
    """The WLI frame with each mask's outer contour drawn in its colour."""
    out = wli.copy()
    for mask, colour in masks:
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, colour, 2)
    return out


def main(model: Path, dest: Path) -> None:
    with open(EVAL / "vocal_seq2.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    predictor = Predictor.load(model, device="cpu")
    tiles = []
    for row in rows[2::7][:4]:  # frames 0092, 0106, 0130, 0151
        wli = cv2.cvtColor(cv2.imread(str(EVAL / row["wli_path"])), cv2.COLOR_BGR2RGB)
        reference = cv2.imread(str(EVAL / row["label_path"]), cv2.IMREAD_GRAYSCALE) > 127
        nbi, _ = pseudo_nbi(wli, 0)
        result = predictor.predict(wli, nbi)
        heat = cv2.applyColorMap(result.prob, cv2.COLORMAP_JET)[..., ::-1]
        tiles.append(np.vstack([outlined(wli, [(reference, GREEN), (result.mask > 0, YELLOW)]), heat]))
    figure = cv2.resize(np.hstack(tiles), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(dest), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
