"""Is a recording's under-segmentation its colour? A diagnostic that chooses nothing.

Runs a model on the tumour frames of one recording as they are, after matching the recording's
colour statistics to the recording the model trained on (Reinhard: LAB mean and standard deviation
over all its frames), and after matching each image on its own (the form an app could use: it needs
no other frame). With ``--training-fold`` also each image matched to the statistics of that fold's
whole training set (Kvasir train + the fold's laryngeal sequences, at 256 px), which an app could
ship in the card. Prints one JSON object: pixel sensitivity and Dice per variant.

    .venv/bin/python benchmarks/diag_colour_match.py --model resources/models/adf-tiny \
        --trained-on runs/eval/vocal_seq1.csv --measured-on runs/eval/vocal_seq2.csv
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.predictor import Predictor  # noqa: E402
from training.data import kvasir_split, vocalfolds_split  # noqa: E402
from training.evaluate import prepare_inputs, read_cases  # noqa: E402
from training.imageio import read_mask, read_rgb  # noqa: E402
from training.metrics import case_metrics  # noqa: E402

VARIANTS = ("as_is", "recording_matched", "each_image_matched")


def lab_stats(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """LAB mean and standard deviation over all pixels of the images."""
    pixels = np.concatenate([cv2.cvtColor(im, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64) for im in images])
    return pixels.mean(0), pixels.std(0)


def matched(rgb: np.ndarray, src: tuple[np.ndarray, np.ndarray], dst: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The image with its LAB statistics moved from ``src`` to ``dst`` (Reinhard colour transfer)."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float64)
    lab = (lab - src[0]) / src[1] * dst[1] + dst[0]
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def training_set_stats(shared_data: Path, fold: str) -> tuple[np.ndarray, np.ndarray]:
    """LAB statistics of a fold's training images (each resized to 256 px, Kvasir's size)."""
    tumour, tumour_free = vocalfolds_split(shared_data / "vocalfolds", "train", fold)
    items = kvasir_split(shared_data / "kvasir-seg-256", "train") + tumour + tumour_free
    return lab_stats([cv2.resize(read_rgb(it.image), (256, 256), interpolation=cv2.INTER_AREA) for it in items])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--trained-on", type=Path, required=True, help="CSV of the recording the model trained on")
    ap.add_argument("--measured-on", type=Path, required=True, help="CSV of the recording it never saw")
    ap.add_argument("--training-fold", choices=["a", "b"], help="also match each image to this fold's training set")
    ap.add_argument("--shared-data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args(argv)
    variants = VARIANTS + (("each_image_to_training_set",) if args.training_fold else ())
    training_set = training_set_stats(args.shared_data, args.training_fold) if args.training_fold else None
    trained = lab_stats([read_rgb(r.wli) for r in read_cases(args.trained_on)])
    rows = read_cases(args.measured_on)
    measured = lab_stats([read_rgb(r.wli) for r in rows])
    predictor = Predictor.load(args.model, device="cpu")
    scores: dict[str, dict[str, list[float]]] = {v: {"sensitivity": [], "dice": []} for v in variants}
    for row in rows:
        reference = read_mask(row.label)
        if not reference.any():
            continue
        wli = read_rgb(row.wli)
        renderings = [("as_is", wli), ("recording_matched", matched(wli, measured, trained)),
                      ("each_image_matched", matched(wli, lab_stats([wli]), trained))]
        if training_set is not None:
            renderings.append(("each_image_to_training_set", matched(wli, lab_stats([wli]), training_set)))
        for variant, image in renderings:
            # pseudo-NBI from the rendered image and registered back, as every evaluation does
            _, nbi, homography, _, _ = prepare_inputs(row, True, False, False, wli=image)
            m = case_metrics(predictor.predict(image, nbi, homography).mask, reference)
            scores[variant]["sensitivity"].append(m.sensitivity)
            scores[variant]["dice"].append(m.dice)
    print(json.dumps({
        "model": str(args.model), "trained_on": str(args.trained_on), "measured_on": str(args.measured_on),
        "lab_mean_std": {"trained_on": [trained[0].round(1).tolist(), trained[1].round(1).tolist()],
                         "measured_on": [measured[0].round(1).tolist(), measured[1].round(1).tolist()],
                         **({"training_set": [training_set[0].round(1).tolist(), training_set[1].round(1).tolist()]}
                            if training_set is not None else {})},
        "tumour_frames": len(scores["as_is"]["dice"]),
        **{v: {k: round(float(np.mean(x)), 4) for k, x in s.items()} for v, s in scores.items()},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
