"""Where does a model's under-segmentation of small, flat lesions come from? Prints one JSON object.

    python benchmarks/bench_small_lesions.py --model resources/models/adf-tiny \
        --csv runs/eval/vocal_seq2.csv [--pseudo-nbi] [--sizes 256,384] [--thresholds 0.5,0.3,0.2]
        [--views card,none]

For every case the probability map is computed once per network input size; then the mask
rule is varied: the threshold, and the island removal of ``model.postprocess`` on or off. Each
variant reports mean Dice, sensitivity and the share of lesions touched at all, overall and by
lesion size (share of the image). Reading it:
- a large gain from a lower threshold = the model ranks the lesion right but is under-confident
  (calibration / class balance of the loss);
- a gain from a larger input size = resolution (the lesion is too few pixels at 256 px);
- a gain without island removal = post-processing deletes true small lesions;
- none of these = the model does not see the lesion at all (data / augmentation).
The CSV must not be one the model was trained or selected on (docs/MODEL.md says which are).
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.postprocess import postprocess_mask  # noqa: E402
from training.evaluate import _load_label, prepare_inputs, read_cases  # noqa: E402
from training.metrics import aggregate, by_lesion_size, case_metrics  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--csv", required=True)
    p.add_argument("--pseudo-nbi", action="store_true")
    p.add_argument("--sizes", default="256,384", help="network input sizes to compare (px)")
    p.add_argument("--thresholds", default="0.5,0.4,0.3,0.2")
    p.add_argument("--views", default="card",
                   help="test-time views to compare: 'card' (the card's flips), 'none' (one plain view), or both")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)

    from model.predictor import Predictor

    pred = Predictor.load(args.model, device=args.device)
    rows = read_cases(args.csv)
    sizes = [int(s) for s in args.sizes.split(",")]
    views = [v for v in args.views.split(",") if v]
    card_flips = pred.flips
    pred.decision_threshold = 0.5  # raw probabilities: the thresholds below are applied to them
    ths = [float(t) for t in args.thresholds.split(",")]
    cases = []
    for row in rows:
        wli, nbi, hom, _, _ = prepare_inputs(row, args.pseudo_nbi, False, False)
        gt = _load_label(row.label, wli.shape[:2])
        probs = {}
        for s in sizes:
            for v in views:
                pred.input_size, pred.no_upsampling = s, False
                pred.flips = card_flips if v == "card" else [()]
                probs[s, v] = pred.predict(wli, nbi, homography=hom).prob
        cases.append((gt, probs))
    result: dict = {"model": str(args.model), "csv": str(args.csv), "n": len(cases), "variants": []}
    for s, v, t, islands in itertools.product(sizes, views, ths, (True, False)):
        ms = []
        for gt, probs in cases:
            m = postprocess_mask(probs[s, v], threshold=t, min_island_fraction=0.001 if islands else 0.0)
            ms.append(case_metrics(m, gt))
        agg = aggregate(ms)
        result["variants"].append({
            "input_px": s, "views": v, "threshold": t, "island_removal": islands,
            "dice": agg["dice"], "sensitivity": agg["sensitivity"],
            "false_positive_rate": agg["false_positive_rate"],
            "by_size": by_lesion_size(ms),
        })
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
