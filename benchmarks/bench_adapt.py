"""A clinic corrects the first K frames of a recording the model never saw and retrains: how much
does it gain on the rest of that recording, and what does it forget? Prints one JSON object.

    .venv/bin/python benchmarks/bench_adapt.py --model runs/r3a/adf-tiny-r3a [--ks 5,10,20]
        [--config NAME="--epochs 20 --parent-blend 0.5" ...] [--scenario plain|nbi_only_lesion]
        [--fold a|b] [--old-data] [--keep DIR] [--visit-size V] [--normals N]

The model must not have trained on the recording: laryngeal seq2 with ``--fold a`` (the default;
a model of fold "a" of the release-3 split), seq1 with ``--fold b`` (a fold-b model). Below, "seq2"
is that recording. For each K and each trainer configuration: the first K frames of seq2 (by name, as a clinician
works through a recording) are imported with their reference masks as corrected cases into a
fresh workspace, with pseudo-NBI; ``python -m training train --data WS --init MODEL`` runs with
the configuration's options (the Train dialog's defaults otherwise, including its 20 % of
cases held out by patient); ``python -m training evaluate`` scores the released model on the
remaining frames of seq2 (``dice_rest``), and with ``--old-data`` on the Kvasir report half and
the tumour-free seq6 (forgetting).

A clinic with held-out cases (``--visit-size V --normals N``): the K frames are imported as
visits of V consecutive frames, each its own patient id, and N tumour-free frames of the fold's
training negatives (seq3, seq4, seq5; the model trained on them: they stand for the clinic's
normal cases) join as three more patients, so the trainer's held-out patients hold tumour and
tumour-free cases (what ``--parent-blend auto`` and the activation rule judge by). The visits are
frames of one recording: a held-out visit is no new patient, so the held-out figures are a
choosing signal, never a report; the report stays the rest of seq2, seq6 and Kvasir.

Scenario ``plain`` (also spelled ``seq2``, its first name): the frames as recorded. Scenario
``nbi_only_lesion``: NBI carries what WLI lacks. In every frame the lesion is
inpainted out of the WLI image (OpenCV Telea inpainting of the dilated mask), while the NBI is
the pseudo-NBI of the original frame, so only NBI shows the lesion. Scored with both streams,
WLI-only and with NBI replaced by noise: if fine-tuning teaches the NBI stream, both-streams
Dice rises above WLI-only.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_CONFIGS = {"default": ""}  # the trainer's defaults, as the Train dialog runs it


def evaluate(model: Path, csv_path: Path, *extra: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "training", "evaluate", "--model", str(model), "--csv", str(csv_path),
                          "--device", "cpu", "--no-progress", *extra], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


RECORDING = {"a": "seq2", "b": "seq1"}  # the laryngeal recording each fold never trained on


def build_frames(shared: Path, scenario: str, dest: Path, fold: str = "a") -> list[tuple[str, Path, Path, Path]]:
    """(name, wli, nbi, mask) files of every frame of the fold's unseen recording, rendered for the scenario."""
    import cv2

    from model.pseudo_nbi import pseudo_nbi
    from training.data import read_public_label, vocalfolds_split
    from training.imageio import read_rgb

    dest.mkdir(parents=True, exist_ok=True)
    items = vocalfolds_split(shared / "vocalfolds", "val", fold)[0]  # every frame of the unseen recording
    out = []
    for i, it in enumerate(items):
        wli = read_rgb(it.image)
        gt = read_public_label(it)
        nbi, _ = pseudo_nbi(wli, 5000 + i)
        if scenario == "nbi_only_lesion" and gt.any():
            hole = cv2.dilate(gt.astype(np.uint8) * 255, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15)))
            wli = cv2.inpaint(np.ascontiguousarray(wli), hole, 9, cv2.INPAINT_TELEA)
        stem = Path(it.name).stem
        paths = (dest / f"{stem}_wli.png", dest / f"{stem}_nbi.png", dest / f"{stem}_mask.png")
        cv2.imwrite(str(paths[0]), wli[:, :, ::-1])
        cv2.imwrite(str(paths[1]), nbi[:, :, ::-1])
        cv2.imwrite(str(paths[2]), gt.astype(np.uint8) * 255)
        out.append((stem, *paths))
    return out


def build_normals(shared: Path, n: int, dest: Path) -> list[tuple[str, list[tuple[str, Path, Path, Path]]]]:
    """(patient id, frames) of ``n`` tumour-free frames spread evenly over the training negatives
    (seq3, seq4, seq5 in both folds), one patient per sequence; empty masks, pseudo-NBI."""
    import cv2

    from model.pseudo_nbi import pseudo_nbi
    from training.data import vocalfolds_split
    from training.imageio import read_rgb

    negs = vocalfolds_split(shared / "vocalfolds", "train", "a")[1]
    picks = [negs[int(i)] for i in np.linspace(0, len(negs) - 1, n).round()] if n > 0 else []
    groups: dict[str, list] = {}
    dest.mkdir(parents=True, exist_ok=True)
    for i, it in enumerate(picks):
        seq = it.name.split("/")[-2]
        wli = read_rgb(it.image)
        nbi, _ = pseudo_nbi(wli, 9000 + i)
        stem = f"{seq}_{Path(it.name).stem}"
        paths = (dest / f"{stem}_wli.png", dest / f"{stem}_nbi.png", dest / f"{stem}_mask.png")
        cv2.imwrite(str(paths[0]), wli[:, :, ::-1])
        cv2.imwrite(str(paths[1]), nbi[:, :, ::-1])
        cv2.imwrite(str(paths[2]), np.zeros(wli.shape[:2], np.uint8))
        groups.setdefault(f"normal-{seq}", []).append((stem, *paths))
    return sorted(groups.items())


def write_csv(path: Path, frames: list[tuple[str, Path, Path, Path]]) -> Path:
    lines = ["wli_path,nbi_path,label_path"] + [f"{w},{n},{m}" for _, w, n, m in frames]
    path.write_text("\n".join(lines) + "\n")
    return path


def score(model: Path, csv_path: Path, scenario: str) -> dict:
    """The figures of one model on the rest of the recording (plus WLI-only in the NBI scenario)."""
    full = evaluate(model, csv_path)
    res = {"dice": round(full["dice"], 4), "sensitivity": round(full["sensitivity"], 4),
           "dice_nbi_noise": round(full["dice_nbi_noise"], 4) if full.get("dice_nbi_noise") is not None else None,
           "fpr": full["false_positive_rate"]}
    if scenario == "nbi_only_lesion":
        res["dice_wli_only"] = round(evaluate(model, csv_path, "--wli-only", "--no-noise-check")["dice"], 4)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a model that never trained on the fold's recording")
    ap.add_argument("--fold", default="a", choices=sorted(RECORDING),
                    help="a: adapt to seq2 (a fold-a model), b: adapt to seq1 (a fold-b model)")
    ap.add_argument("--ks", default="5,10,20")
    ap.add_argument("--config", action="append", default=[],
                    help='NAME="trainer options" (repeatable; default: the trainer defaults only)')
    ap.add_argument("--scenario", default="plain", choices=["plain", "seq2", "nbi_only_lesion"])
    ap.add_argument("--old-data", action="store_true", help="also score Kvasir val_report and seq6 (forgetting)")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--keep", default=None, help="work in this new folder and keep it")
    ap.add_argument("--visit-size", type=int, default=0,
                    help="import the K frames as patients of this many consecutive frames (0: one patient)")
    ap.add_argument("--normals", type=int, default=0, help="add this many tumour-free frames as three patients")
    args = ap.parse_args()
    configs = {} if args.config else dict(DEFAULT_CONFIGS)  # the trainer defaults only when none is given
    for c in args.config:
        name, _, opts = c.partition("=")
        configs[name] = opts
    ks = [int(k) for k in args.ks.split(",")]
    model = Path(args.model)

    def run(tmp: Path) -> dict:
        from training.data import write_public_eval_csvs
        from training.importer import import_sources
        from training.store import Workspace

        frames = build_frames(Path(args.shared), args.scenario, tmp / "frames", args.fold)
        rec_name = RECORDING[args.fold]
        normals = build_normals(Path(args.shared), args.normals, tmp / "normals")
        old = write_public_eval_csvs(Path(args.shared), tmp / "eval") if args.old_data else {}
        results: dict = {"scenario": args.scenario, "fold": args.fold, "recording": rec_name, "model": str(model),
                         "frames": len(frames), "runs": []}
        for k in ks:
            rest_csv = write_csv(tmp / f"rest_{k}.csv", frames[k:])
            before = score(model, rest_csv, args.scenario)
            for name, opts in configs.items():
                v = args.visit_size if args.visit_size > 0 else k
                patients = [(rec_name if v >= k else f"{rec_name}-visit{j // v + 1}", frames[j:j + v])
                            for j in range(0, k, v)]
                ws_path = tmp / f"k{k}_{name}" / "ws"
                with Workspace.open(ws_path, create=True) as ws:
                    for pid, group in [*patients, *normals]:
                        src = tmp / f"k{k}_{name}" / "pairs" / pid
                        src.mkdir(parents=True)
                        for stem, w, n, m in group:
                            for p, suffix in ((w, "wli"), (n, "nbi"), (m, "mask")):
                                os.link(p, src / f"{stem}_{suffix}.png")
                        import_sources(ws, [src], patient_id=pid, nbi_synthetic=True)
                t0 = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-m", "training", "train", "--data", str(ws_path), "--init", str(model),
                     "--out", str(ws_path.parent / "run"), "--model-id", f"adapt-k{k}-{name}", "--no-tqdm",
                     *shlex.split(opts)],
                    capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
                if proc.returncode != 0:
                    print(proc.stdout[-2000:], proc.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"k={k} {name}: training failed ({proc.returncode})")
                done = json.loads(proc.stdout.strip().splitlines()[-1])
                after = score(Path(done["model"]), rest_csv, args.scenario)
                rec = {"k": k, "config": name, "options": opts, "seconds": round(time.perf_counter() - t0, 1),
                       "before": before, "after": after, "gain": round(after["dice"] - before["dice"], 4),
                       "held_out_val_dice": done["metrics"].get("val_dice"),
                       "held_out_parent_val_dice": done["metrics"].get("parent_val_dice"),
                       "held_out_val_fpr": done["metrics"].get("val_fpr"),
                       "held_out_parent_val_fpr": done["metrics"].get("parent_val_fpr"),
                       "parent_blend": done.get("parent_blend"),
                       "parent_blend_choice": done["metrics"].get("parent_blend_choice"),
                       "activated_if_registered": done.get("activation")}
                if old:
                    rec["kvasir_report_dice"] = round(evaluate(Path(done["model"]), old["kvasir_val_report"],
                                                               "--pseudo-nbi", "--no-noise-check")["dice"], 4)
                    rec["seq6_fpr"] = evaluate(Path(done["model"]), old["vocal_neg_val"], "--pseudo-nbi",
                                               "--no-noise-check")["false_positive_rate"]
                print(json.dumps(rec), file=sys.stderr, flush=True)
                results["runs"].append(rec)
        if old:
            results["model_kvasir_report_dice"] = round(evaluate(model, old["kvasir_val_report"], "--pseudo-nbi",
                                                                 "--no-noise-check")["dice"], 4)
            results["model_seq6_fpr"] = evaluate(model, old["vocal_neg_val"], "--pseudo-nbi",
                                                 "--no-noise-check")["false_positive_rate"]
        return results

    if args.keep:
        keep = Path(args.keep).resolve()
        keep.mkdir(parents=True)
        results = run(keep)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            results = run(Path(tmp))
    print(json.dumps({"benchmark": "adapt", **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
