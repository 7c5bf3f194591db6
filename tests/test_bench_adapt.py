"""benchmarks/bench_adapt.py (issue 15, retraining that adapts to a clinic): each fold adapts to the
recording it never trained on — seq2 for a fold-a model, seq1 for a fold-b model — from the first K
frames, and scores the rest. Runs on tests/data/public_mini only."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
MINI = ROOT / "tests" / "data" / "public_mini"
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_each_fold_adapts_to_the_recording_it_never_trained_on(tmp_path: Path) -> None:
    from bench_adapt import build_frames

    for fold, seq in (("a", "seq2"), ("b", "seq1")):
        frames = build_frames(MINI, "plain", tmp_path / fold, fold)
        expected = sorted(p.stem for p in (MINI / "vocalfolds" / "images" / "patient1" / seq).glob("*.png"))
        assert [f[0] for f in frames] == expected
        for stem, wli, nbi, mask in frames:
            label = cv2.imread(str(MINI / "vocalfolds" / "labels" / "patient1" / seq / f"{stem}.png"),
                               cv2.IMREAD_UNCHANGED)
            assert np.array_equal(cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE) > 0, label == 4)
            original = cv2.imread(str(MINI / "vocalfolds" / "images" / "patient1" / seq / f"{stem}.png"))
            assert np.array_equal(cv2.imread(str(wli)), original)  # plain: the frame as recorded
            assert cv2.imread(str(nbi)).shape == original.shape
    # the old name of the plain scenario renders the same frames
    old = build_frames(MINI, "seq2", tmp_path / "old", "b")
    assert [f[0] for f in old] == [f[0] for f in build_frames(MINI, "plain", tmp_path / "b2", "b")]


def test_a_fold_b_model_adapts_to_seq1_through_the_trainer(tmp_path: Path) -> None:
    """End to end with an untrained tiny model: the first frame of seq1 is the clinic's corrected
    case, the trainer runs with the given options, the rest of seq1 is scored before and after."""
    from model.adf import ADFNet
    from model.card import save_model
    from model.config import get_preset

    cfg = get_preset("tiny")
    torch.manual_seed(0)
    model = save_model(ADFNet(cfg), cfg, tmp_path / "m" / "fold-b", {"id": "fold-b", "inference_input_size": 64})
    fast = "--epochs 1 --size 64 --val-size 64 --batch-size 1 --threads 1 --workers 0 --val-fraction 0"
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_adapt.py"), "--model", str(model),
                          "--fold", "b", "--ks", "1", "--config", f"fast={fast}", "--shared", str(MINI),
                          "--keep", str(tmp_path / "keep")],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["fold"] == "b" and res["recording"] == "seq1" and res["frames"] == 2
    run = res["runs"][0]
    assert run["k"] == 1 and run["config"] == "fast"
    for key in ("before", "after"):
        assert 0.0 <= run[key]["dice"] <= 1.0 and 0.0 <= run[key]["sensitivity"] <= 1.0
    # the clinic's one corrected frame went into a workspace under the recording's own patient id
    from training.store import Workspace

    with Workspace.open(tmp_path / "keep" / "k1_fast" / "ws") as ws:
        cases = ws.cases()
        assert len(cases) == 1 and cases[0].patient_id == "seq1"
