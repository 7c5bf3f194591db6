"""docs/seq2-what-is-missed.jpg: which part of an unseen recording's tumour does a model miss?

Top row: WLI with the reference outline (green) and the model's mask (yellow); bottom row: the
model's probability (blue 0, red 1); four seq2 frames side by side, at half size. Inputs are made
as every evaluation makes them (`training.evaluate.prepare_inputs`: pseudo-NBI, registered back).

    .venv/bin/python docs/make_miss_figure.py resources/models/adf-tiny docs/seq2-what-is-missed.jpg

Needs runs/eval/vocal_seq2.csv (docs/MODEL.md, "Reproduce") and ../shared/data beside the checkout.
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.predictor import Predictor  # noqa: E402
from training.evaluate import draw_outline, prepare_inputs, read_cases  # noqa: E402
from training.imageio import read_mask  # noqa: E402

SEQ2 = Path("runs/eval/vocal_seq2.csv")
GREEN, YELLOW = (0, 255, 0), (255, 255, 0)


def main(model: Path, dest: Path) -> None:
    predictor = Predictor.load(model, device="cpu")
    tiles = []
    for row in read_cases(SEQ2)[2::7][:4]:  # frames 0092, 0106, 0130, 0151
        wli, nbi, homography, _, _ = prepare_inputs(row, True, False, False)
        result = predictor.predict(wli, nbi, homography)
        over = wli.copy()
        draw_outline(over, read_mask(row.label), GREEN, 2)
        draw_outline(over, result.mask > 0, YELLOW, 2)
        heat = cv2.applyColorMap(result.prob, cv2.COLORMAP_JET)[..., ::-1]
        tiles.append(np.vstack([over, heat]))
    figure = cv2.resize(np.hstack(tiles), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(dest), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
