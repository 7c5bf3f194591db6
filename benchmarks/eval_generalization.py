"""Every held-out figure of one model on data that chose nothing, in one run. Prints one JSON object.

    .venv/bin/python benchmarks/eval_generalization.py --model M --fold a|b [--input-size N]
        [--modes adf,wli,nbi,other,notta] [--jsonl OUT.jsonl] [--shared ../shared/data]

Sets (``training.data.write_public_eval_csvs``):
- the laryngeal recording the fold did not train on (fold a: seq2, fold b: seq1), every frame;
- the tumour-free recording seq6 (false-positive rate);
- Kvasir's ``val_report`` half (nothing is chosen on it).
Modes: ``adf`` (both streams, registration, the card's views), ``wli`` (WLI only), ``nbi``
(NBI only), ``other`` (both streams, every image rendered as the held-out other device),
``notta`` (one plain view). Every ``adf``/``other``/``notta`` row also carries the Dice with NBI
replaced by noise (``dice_nbi_noise``). ``--jsonl`` writes one ``{"csv", "mode", "result"}`` line
per run, the format docs/release_model.py puts into the card.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODE_ARGS = {
    "adf": ["--pseudo-nbi"],
    "wli": ["--wli-only"],
    "nbi": ["--pseudo-nbi", "--nbi-only", "--no-noise-check"],
    "other": ["--pseudo-nbi", "--other-device"],
    "notta": ["--pseudo-nbi", "--no-tta"],
}
HELD_OUT_SEQ = {"a": "vocal_seq2", "b": "vocal_seq1"}


def evaluate_with(model: str, csv_path: Path, options: list[str]) -> dict:
    """``python -m training evaluate`` on the CPU in its own process: its summary, or {"error": ...}."""
    out = subprocess.run([sys.executable, "-m", "training", "evaluate", "--model", model, "--csv", str(csv_path),
                          "--device", "cpu", "--no-progress", *options],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        return {"error": (out.stdout + out.stderr).strip().splitlines()[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def ci_block_for(set_name: str) -> int:
    """Bootstrap block (``ci95``): frames of a laryngeal recording are alike, so they are resampled in
    runs of 3 (~n^(1/3) for ~30 frames, Hall, Horowitz & Jing 1995); Kvasir's images one by one."""
    return 3 if set_name.startswith("vocal") else 1


def evaluate(model: str, csv_path: Path, mode: str, input_size: int | None) -> dict:
    extra = ["--input-size", str(input_size)] if input_size else []
    extra += ["--ci-block", str(ci_block_for(csv_path.stem))]
    return evaluate_with(model, csv_path, [*MODE_ARGS[mode], *extra])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--fold", required=True, choices=sorted(HELD_OUT_SEQ))
    ap.add_argument("--input-size", type=int, default=None)
    ap.add_argument("--modes", default="adf,wli,nbi,other,notta")
    ap.add_argument("--sets", default="seq,neg,kvasir")
    ap.add_argument("--jsonl", default=None)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    args = ap.parse_args()
    from training.data import write_public_eval_csvs

    modes = [m for m in args.modes.split(",") if m]
    wanted = set(args.sets.split(","))
    summary: dict = {"model": args.model, "fold": args.fold, "input_size": args.input_size, "results": {}}
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        csvs = write_public_eval_csvs(Path(args.shared), Path(tmp))
        sets = {"seq": HELD_OUT_SEQ[args.fold], "neg": "vocal_neg_val", "kvasir": "kvasir_val_report"}
        for key, name in sets.items():
            if key not in wanted:
                continue
            for mode in modes:
                if key == "neg" and mode in ("nbi", "notta"):
                    continue
                res = evaluate(args.model, csvs[name], mode, args.input_size)
                keep = {k: res.get(k) for k in ("n", "n_positive", "dice", "sensitivity", "false_positive_rate",
                                                "hd95", "dice_nbi_noise", "fpr_nbi_noise", "by_size", "ci95",
                                                "ms_per_case", "error")}
                summary["results"].setdefault(name, {})[mode] = keep
                lines.append({"csv": name, "mode": mode, "result": keep})
                print(json.dumps({"set": name, "mode": mode, "dice": keep.get("dice"),
                                  "fpr": keep.get("false_positive_rate"), "noise": keep.get("dice_nbi_noise")}),
                      file=sys.stderr, flush=True)
    if args.jsonl:
        Path(args.jsonl).write_text("".join(json.dumps(x) + "\n" for x in lines))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
