"""Held-out Dice of a fine-tuned run at several shares of the way from the parent's weights to the
fine-tuned ones (the trainer's ``--parent-blend``), without training again.

Why: the share is a release-time choice; scoring each share needs only the parent, the run's
checkpoint and ``python -m training evaluate``. Used for the share table in docs/MODEL.md with the
runs that ``bench_finetune.py --keep DIR`` leaves behind:

    .venv/bin/python benchmarks/bench_parent_blend.py --parent resources/models/adf-tiny.json \
        --weights DIR/margin/run/checkpoints/last.safetensors --csv DIR/margin/held_out.csv \
        --shares 0.25,0.5,0.75,0.9,1

One JSON line per share (``{"share": s, "dice": {csv: Dice}}``) on stdout.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parent", required=True, help="the parent model's card (.json)")
    ap.add_argument("--weights", required=True, help="the fine-tuned weights (a run's checkpoints/*.safetensors)")
    ap.add_argument("--csv", action="append", required=True, help="evaluation CSV (repeatable)")
    ap.add_argument("--shares", default="0.25,0.5,0.75,1")
    args = ap.parse_args()

    from safetensors.torch import load_file

    from benchmarks.bench_finetune import evaluate
    from model.card import load_model, save_model
    from model.config import ADFConfig
    from training.train import blend_with_parent

    net, card = load_model(args.parent)
    parent_state = {k: v.clone() for k, v in net.state_dict().items()}
    tuned = load_file(args.weights)
    cfg = ADFConfig.from_dict(card["config"])
    with tempfile.TemporaryDirectory() as tmp:
        for share in (float(s) for s in args.shares.split(",")):
            net.load_state_dict(tuned)
            blend_with_parent(net, parent_state, share)
            model = save_model(net, cfg, Path(tmp) / f"blend-{share}", {**card, "id": f"blend-{share}"})
            dice = {c: round(evaluate(model, Path(c).resolve())["dice"], 4) for c in args.csv}
            print(json.dumps({"share": share, "dice": dice}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
