"""Turn a finished training run's model into the bundled model files, with a complete card.

Why a script: the trainer writes a card that knows its own run; the bundled card must also carry
the lineage of commands (parent runs first), the release id the app registers it under, the
test-time views the predictor uses, and the held-out evaluation measured after training.
Writing that by hand is how cards end up wrong.

    .venv/bin/python docs/release_model.py RUN_MODEL_STEM --id adf-tiny-r2 \\
        --eval runs/eval/r2.jsonl [--tta none,h] [--out resources/models/adf-tiny] [--parent-card CARD]

``--eval`` is the JSON-lines file written by evaluating the model on the fixed split
(one ``{"csv": ..., "mode": ..., "result": {...}}`` per line); see docs/MODEL.md.
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.card import check_test_time_flips, load_model, read_card  # noqa: E402

MODES = {
    "adf": "--pseudo-nbi (registration on), test-time views of the card",
    "noreg": "--pseudo-nbi --no-registration",
    "wli": "--wli-only",
    "adf_notta": "--pseudo-nbi --no-tta (one plain view)",
    "wli_notta": "--wli-only --no-tta",
}


def lineage_of(card_path: str, sha256: str | None, ancestors: list[str]) -> list[str]:
    """Every training command from scratch to the card with this sha256, oldest first ([] when the
    card at card_path is not it). Grandparents are found at their recorded path or among
    ``ancestors`` (a release replaced in resources/models is found through a copy)."""
    candidates = [card_path, *ancestors]
    for path in candidates:
        try:
            pcard, _ = read_card(path)
        except (ValueError, OSError):
            continue
        if pcard.get("sha256") != sha256:
            continue
        own = list(pcard.get("commands") or [pcard.get("command")])
        grand = pcard.get("parent") or {}
        if not grand.get("sha256"):
            return own
        if pcard.get("release_command"):  # a release's card already lists its ancestors' commands
            return own
        earlier = lineage_of(grand.get("path") or "", grand["sha256"], ancestors)
        return earlier + own if earlier else own
    return []


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_model", help="the run's model (.json card or stem), e.g. runs/cont/adf-tiny")
    ap.add_argument("--id", required=True, help="release id the app registers the model under")
    ap.add_argument("--eval", required=True, help="JSON lines of the held-out evaluation")
    ap.add_argument("--tta", default="none,h", help="test_time_flips written to the card")
    ap.add_argument("--inference-size", type=int, default=None,
                    help="inference_input_size written to the card (default: the training input size)")
    ap.add_argument("--no-upsampling", action="store_true",
                    help="inference_no_upsampling: images smaller than --inference-size run at their own size")
    ap.add_argument("--threshold", type=float, default=None,
                    help="decision_threshold written to the card (default 0.5; chosen on data the report does not use)")
    ap.add_argument("--replaces", default=None,
                    help="id of the bundled release this one supersedes, when its parent is an intermediate run "
                         "(demo workspaces then switch to it)")
    ap.add_argument("--split", default=None, help="the evaluation's split, in words, for the card")
    ap.add_argument("--note", action="append", default=[], help="extra lines for the card's release_notes")
    ap.add_argument("--out", default=str(ROOT / "resources" / "models" / "adf-tiny"))
    ap.add_argument("--ancestor-card", action="append", default=[],
                    help="an earlier card of the lineage (matched by sha256; repeatable), e.g. a copy of the "
                         "release the parent was fine-tuned from, so the card lists every command from scratch")
    ap.add_argument("--parent-card", default=None,
                    help="where the parent's card is now (default: the path the run recorded; "
                         "give a copy when --out has already replaced it)")
    args = ap.parse_args()

    card, js = read_card(args.run_model)
    try:
        flips = check_test_time_flips([f for f in args.tta.split(",") if f])
    except ValueError as e:
        raise SystemExit(f"--tta: {e}") from None
    parent = card.get("parent") or {}
    lineage: list[str] = []
    parent_card = args.parent_card or parent.get("path")
    if parent_card:
        lineage = lineage_of(parent_card, parent.get("sha256"), args.ancestor_card)
        if not lineage:
            raise SystemExit(f"the parent's card at {parent_card} is missing or is not the parent (sha256 differs)")
    results: dict[str, dict[str, dict]] = {}
    for line in Path(args.eval).read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            results.setdefault(row["csv"], {})[row["mode"]] = row["result"]
    out = Path(args.out)
    weights = js.parent / card["weights"]
    release = dict(card)
    release.update(
        {
            "id": args.id,
            "weights": out.name + ".safetensors",
            "test_time_flips": flips,
            "commands": lineage + list(card.get("commands") or [card["command"]]),
            "release_command": "python docs/release_model.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "evaluation": {
                "split": args.split or "fixed split of docs/MODEL.md (kvasir index%5==0; vocalfolds patient1/seq1 "
                "0041-0080; patient2/seq6 tumour-free)",
                "modes": {m: MODES.get(m, m) for r in results.values() for m in r},
                "results": results,
            },
            "intended_use": "Research demonstration on public data with synthetic NBI; NOT a diagnostic device.",
        }
    )
    if args.inference_size:
        release["inference_input_size"] = int(args.inference_size)
    if args.no_upsampling:
        release["inference_no_upsampling"] = True
    if args.threshold is not None:
        if not 0.0 < args.threshold < 1.0:
            raise SystemExit("--threshold must be in (0, 1)")
        release["decision_threshold"] = float(args.threshold)
    if args.note:
        release["release_notes"] = list(args.note)
    if args.replaces:
        release["replaces"] = args.replaces
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_w = out.with_name(out.name + ".safetensors.tmp")
    shutil.copyfile(weights, tmp_w)
    tmp_w.replace(out.with_name(out.name + ".safetensors"))
    out.with_name(out.name + ".json").write_text(json.dumps(release, indent=2) + "\n")
    load_model(out)  # the written pair must load (sha256, config, shapes)
    print(json.dumps({"model": str(out) + ".json", "id": args.id, "sha256": release["sha256"],
                      "test_time_flips": flips, "evaluated": sorted(results)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
