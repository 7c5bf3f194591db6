"""A release rule's gates for one fine-tune: parent + s x (fine-tuned - parent) for each share s,
each measured on one choosing set at the card's operating point. Prints one JSON object.

    .venv/bin/python benchmarks/blend_gates.py --parent P --model M --shares 0.5,0.75,1 \\
        --set kvasir_val_choose|vocal_seq1|... --out runs/r14blend/a [--operating-point-of R]

The blends are written as models (``<out>/s<share>/<id>-s<share>``, the exact ``python -m training
blend`` command in each card) so the one a rule picks can be released as it was measured. Sets are
``training.data.write_public_eval_csvs``'s; the choosing ones are Kvasir ``val_choose`` and, for a
fold-b twin, seq1 (that figure then chose the share and is not clean: say so where it is reported).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def share_tag(share: float) -> str:
    """0.5 -> '05', 0.75 -> '075', 1.0 -> '1' (the run folders' names since r9)."""
    return f"{share:g}".replace(".", "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parent", required=True, help="the model the fine-tune started from")
    ap.add_argument("--model", required=True, help="the fine-tuned model")
    ap.add_argument("--shares", default="0.5,0.75,1")
    ap.add_argument("--set", required=True, dest="set_name", help="e.g. kvasir_val_choose, vocal_seq1")
    ap.add_argument("--out", required=True, help="folder for the blends")
    ap.add_argument("--operating-point-of", default=None, metavar="MODEL")
    ap.add_argument("--no-noise-check", action="store_true", help="skip the NBI-as-noise second pass")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    args = ap.parse_args()
    from eval_generalization import ci_block_for, evaluate_with

    from model.card import read_card
    from training.blend import blend_models
    from training.data import write_public_eval_csvs
    from training.model_cli import command_line

    prefix = str(read_card(args.model)[0].get("id"))
    summary: dict = {"parent": args.parent, "model": args.model, "set": args.set_name, "results": {}}
    with tempfile.TemporaryDirectory() as tmp:
        csvs = write_public_eval_csvs(Path(args.shared), Path(tmp))
        if args.set_name not in csvs:
            print(json.dumps({"error": f"unknown set {args.set_name!r}; one of {sorted(csvs)}"}))
            return 2
        for share in (float(s) for s in args.shares.split(",") if s.strip()):
            tag = share_tag(share)
            model_id = f"{prefix}-s{tag}"
            stem = Path(args.out) / f"s{tag}" / model_id
            argv = ["--parent", args.parent, "--model", args.model, "--share", f"{share:g}", "--out", str(stem),
                    "--id", model_id]
            if args.operating_point_of:
                argv += ["--operating-point-of", args.operating_point_of]
            js = blend_models(args.parent, args.model, share, str(stem), model_id, command_line("blend", argv),
                              operating_point_of=args.operating_point_of)
            extra = ["--ci-block", str(ci_block_for(args.set_name))]
            extra += ["--no-noise-check"] if args.no_noise_check else []
            res = evaluate_with(str(js), csvs[args.set_name], ["--pseudo-nbi", *extra])
            keep = {k: res.get(k) for k in ("n", "dice", "sensitivity", "false_positive_rate", "dice_nbi_noise",
                                            "by_size", "ci95", "error")}
            summary["results"][f"{share:g}"] = {"blend": str(js), **keep}
            print(json.dumps({"share": share, "dice": keep.get("dice"), "sensitivity": keep.get("sensitivity")}),
                  file=sys.stderr, flush=True)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
