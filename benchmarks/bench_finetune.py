"""Fine-tuning the bundled model on 30 corrected cases for 20 epochs on the CPU, as the Train
dialog does, with Dice before/after on 30 other held-out cases.

The 60 cases are Kvasir-SEG images from the validation split fixed before the bundled model was
trained (index % 5 == 0 of the sorted names: never trained on), with pseudo-NBI: 30 are imported
into a fresh workspace as corrected cases, 30 are only evaluated. Reads ../shared/data (a
benchmark, not a test). Last stdout line: one JSON object.

    .venv/bin/python benchmarks/bench_finetune.py [--cases 30] [--epochs 20] [--shared ../shared/data]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def evaluate(model: Path, csv_path: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "training", "evaluate", "--model", str(model), "--csv", str(csv_path),
                          "--pseudo-nbi", "--device", "cpu", "--no-progress"], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--model", default=str(ROOT / "resources" / "models" / "adf-tiny.json"))
    ap.add_argument("--lr", default=None, help="peak learning rate (default: the trainer's fine-tuning default)")
    args = ap.parse_args()
    import cv2

    from model.pseudo_nbi import pseudo_nbi
    from training.imageio import read_rgb
    from training.importer import import_sources
    from training.store import Workspace

    kv = Path(args.shared) / "kvasir-seg-256"
    names = sorted(p.name for p in (kv / "images").glob("*.jpg"))
    val = [n for i, n in enumerate(names) if i % 5 == 0]
    train_names, test_names = val[: args.cases], val[args.cases: 2 * args.cases]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        src = tmp_path / "pairs"
        src.mkdir()
        for i, n in enumerate(train_names):
            stem = Path(n).stem
            wli = read_rgb(kv / "images" / n)
            nbi, _ = pseudo_nbi(wli, 1000 + i)
            cv2.imwrite(str(src / f"{stem}_wli.png"), wli[:, :, ::-1])
            cv2.imwrite(str(src / f"{stem}_nbi.png"), nbi[:, :, ::-1])
            cv2.imwrite(str(src / f"{stem}_mask.png"), cv2.imread(str(kv / "masks" / f"{stem}.png"), 0))
        ws_path = tmp_path / "ws"
        with Workspace.open(ws_path, create=True) as ws:
            summary = import_sources(ws, [src], nbi_synthetic=True)
            ws.register_model(args.model, activate=True)
        test_csv = tmp_path / "held_out.csv"
        with open(test_csv, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["wli_path", "nbi_path", "label_path"])
            for n in test_names:
                w.writerow([str(kv / "images" / n), "", str(kv / "masks" / f"{Path(n).stem}.png")])
        before = evaluate(Path(args.model), test_csv)
        out = tmp_path / "run"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "training", "train", "--data", str(ws_path), "--init", args.model,
                               "--epochs", str(args.epochs), "--val-fraction", "0", "--out", str(out), "--model-id",
                               "adf-finetuned-bench", "--no-tqdm", *(["--lr", args.lr] if args.lr else [])], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"training failed ({proc.returncode})")
        done = json.loads(proc.stdout.strip().splitlines()[-1])
        after = evaluate(Path(done["model"]), test_csv)
    result = {"cases": summary["imported"], "epochs": args.epochs, "seconds": round(seconds, 1),
              "dice_before": round(before["dice"], 4), "dice_after": round(after["dice"], 4),
              "dice_gain": round(after["dice"] - before["dice"], 4), "held_out": len(test_names),
              "iou_before": round(before["iou"], 4), "iou_after": round(after["iou"], 4), "threads": os.cpu_count(),
              "lr": args.lr or "trainer default"}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
