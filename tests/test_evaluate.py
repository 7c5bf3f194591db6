"""training.metrics + training.evaluate: numbers checked on hand-made masks (perfect, empty,
shifted), the aggregation rules of the CLI, and the CLI itself end to end."""
from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.evaluate import CaseRow, evaluate_rows, main, read_cases, write_per_case
from training.metrics import (
    aggregate,
    bootstrap_ci,
    case_metrics,
    dice_score,
    hd95,
    interval_summary,
    iou_score,
)

H, W = 60, 80


def square(x: int, y: int, s: int = 20) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y : y + s, x : x + s] = True
    return m


def test_perfect_prediction():
    gt = square(20, 15)
    m = case_metrics(gt.copy(), gt)
    assert (m.dice, m.iou, m.hd95, m.sensitivity) == (1.0, 1.0, 0.0, 1.0)
    assert m.specificity == 1.0 and m.gt_area == m.pred_area == 400


def test_empty_prediction_on_a_tumour():
    gt = square(20, 15)
    m = case_metrics(np.zeros_like(gt), gt)
    assert m.dice == 0.0 and m.iou == 0.0 and m.sensitivity == 0.0
    assert m.hd95 == pytest.approx(math.hypot(H, W))  # the image diagonal, finite
    assert m.pred_area == 0


@pytest.mark.parametrize("d", [2, 5, 10])
def test_shifted_prediction(d):
    gt = square(20, 15)
    pred = square(20 + d, 15)
    # overlap 20 x (20 - d): Dice = (20-d)/20, IoU = (20-d)/(20+d)
    assert dice_score(pred, gt) == pytest.approx((20 - d) / 20)
    assert iou_score(pred, gt) == pytest.approx((20 - d) / (20 + d))
    # the left/right outlines are d pixels apart: the 95th percentile distance is d
    assert hd95(pred, gt) == pytest.approx(d, abs=0.01)
    m = case_metrics(pred, gt)
    assert m.sensitivity == pytest.approx((20 - d) / 20)
    fp, tn = 20 * d, H * W - 400 - 20 * d
    assert m.specificity == pytest.approx(tn / (tn + fp))


def test_both_empty_and_shape_mismatch():
    z = np.zeros((H, W), bool)
    m = case_metrics(z, z)
    assert (m.dice, m.hd95, m.gt_area, m.pred_area) == (1.0, 0.0, 0, 0)
    with pytest.raises(ValueError):
        case_metrics(z, np.zeros((H + 1, W), bool))


def test_aggregate_averages_positives_and_counts_false_positive_cases():
    gt = square(20, 15)
    empty = np.zeros((H, W), bool)
    cases = [
        case_metrics(gt, gt),  # perfect
        case_metrics(empty, gt),  # missed
        case_metrics(square(25, 15), gt),  # shifted by 5: dice 0.75
        case_metrics(square(0, 0, 3), empty),  # tumour-free, false positive
        case_metrics(empty, empty),  # tumour-free, clean
    ]
    s = aggregate(cases)
    assert s["n"] == 5 and s["n_positive"] == 3
    assert s["dice"] == pytest.approx((1 + 0 + 0.75) / 3)
    assert s["iou"] == pytest.approx((1 + 0 + 15 / 25) / 3)
    assert s["hd95"] == pytest.approx((0 + math.hypot(H, W) + 5) / 3, abs=0.01)
    assert s["sensitivity"] == pytest.approx((1 + 0 + 0.75) / 3)
    assert s["false_positive_rate"] == pytest.approx(0.5)
    assert 0.0 < s["specificity"] < 1.0
    # no tumour-free case: the rate is undefined, not 0
    assert aggregate(cases[:3])["false_positive_rate"] is None
    assert aggregate(cases[3:])["dice"] is None


def test_bootstrap_interval_brackets_the_mean_repeats_and_narrows_with_more_cases():
    values = np.random.default_rng(1).uniform(0.0, 1.0, 300)
    lo, hi = bootstrap_ci(values[:30])
    assert lo < float(np.mean(values[:30])) < hi
    assert bootstrap_ci(values[:30]) == (lo, hi)  # seeded: one answer per input
    assert bootstrap_ci(values[:30], seed=1) != (lo, hi)
    lo300, hi300 = bootstrap_ci(values)
    assert (hi300 - lo300) < 0.5 * (hi - lo)  # ten times the cases: ~1/sqrt(10) of the width
    assert bootstrap_ci([0.5] * 10) == (0.5, 0.5)
    assert bootstrap_ci([0.7]) is None and bootstrap_ci([]) is None
    assert bootstrap_ci([float("nan"), 0.2, 0.4]) == bootstrap_ci([0.2, 0.4])  # NaN (no lesion) left out


def test_block_bootstrap_widens_the_interval_when_consecutive_frames_are_alike():
    """A recording that misses the tumour for five frames running, then finds it for five: resampling
    frame by frame treats those as 30 independent draws; runs of 3 do not, and the interval widens.
    The same values in an order with no runs do not widen."""
    runs = ([0.0] * 5 + [1.0] * 5) * 3
    alternating = [0.0, 1.0] * 15
    width = {}
    for name, v in (("runs", runs), ("alternating", alternating)):
        for block in (1, 3):
            lo, hi = bootstrap_ci(v, block=block)
            assert lo < 0.5 < hi
            width[name, block] = hi - lo
    assert width["runs", 3] > 1.2 * width["runs", 1]
    assert width["alternating", 3] < width["alternating", 1]
    assert bootstrap_ci(runs, block=100) is not None  # a block longer than the values is clamped


def test_interval_summary_covers_positive_cases_only():
    gt, empty = square(20, 15), np.zeros((H, W), bool)
    cases = [case_metrics(gt, gt), case_metrics(empty, gt), case_metrics(square(25, 15), gt),
             case_metrics(square(0, 0, 3), empty)]
    ci = interval_summary(cases, block=2)
    assert ci["block"] == 2
    assert ci["dice"] == list(bootstrap_ci([1.0, 0.0, 0.75], block=2))
    assert ci["sensitivity"][0] < aggregate(cases)["sensitivity"] < ci["sensitivity"][1]
    assert interval_summary(cases[3:]) == {"dice": None, "sensitivity": None, "block": 1}


def _write_case(d: Path, name: str, mask: np.ndarray, colour: int) -> tuple[str, str]:
    img = np.full((H, W, 3), colour, np.uint8)
    cv2.imwrite(str(d / f"{name}.png"), img)
    cv2.imwrite(str(d / f"{name}_mask.png"), mask.astype(np.uint8) * 255)
    return f"{name}.png", f"{name}_mask.png"


def test_evaluate_rows_on_hand_made_cases(tmp_path):
    """Predictions are looked up per case (a fake model): perfect, empty, shifted, FP, clean."""
    gt = square(20, 15)
    empty = np.zeros((H, W), bool)
    plan = {  # name: (label, prediction)
        "perfect": (gt, gt),
        "missed": (gt, empty),
        "shifted": (gt, square(30, 15)),
        "fp": (empty, square(0, 0, 4)),
        "clean": (empty, empty),
    }
    with open(tmp_path / "cases.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["wli_path", "nbi_path", "label_path"])
        for i, (name, (label, _)) in enumerate(plan.items()):
            img, lab = _write_case(tmp_path, name, label, 10 + 20 * i)
            w.writerow([img, "", lab])
    rows = read_cases(tmp_path / "cases.csv")
    assert [r.name for r in rows] == [f"{n}.png" for n in plan]
    by_colour = {10 + 20 * i: pred for i, (_, pred) in enumerate(plan.values())}

    def predict(wli, nbi, hom):
        assert nbi is None and hom is None  # no NBI, no --pseudo-nbi: WLI-only
        return by_colour[int(wli[0, 0, 0])]

    summary, per_case = evaluate_rows(rows, predict, progress=False)
    assert summary["n"] == 5 and summary["n_positive"] == 3
    assert summary["dice"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert summary["false_positive_rate"] == pytest.approx(0.5)
    assert summary["ms_per_case"] >= 0
    assert summary["ci95"]["block"] == 1
    assert summary["ci95"]["dice"][0] <= summary["dice"] <= summary["ci95"]["dice"][1]
    assert evaluate_rows(rows, predict, progress=False, ci_block=2)[0]["ci95"]["block"] == 2
    out = tmp_path / "pc.csv"
    write_per_case(out, per_case)
    with open(out) as f:
        recs = list(csv.DictReader(f))
    assert list(recs[0].keys()) == ["case", "dice", "iou", "hd95", "gt_area", "pred_area"]
    assert [r["case"] for r in recs] == [f"{n}.png" for n in plan]
    assert float(recs[2]["dice"]) == pytest.approx(0.5) and float(recs[2]["hd95"]) == pytest.approx(10, abs=0.01)
    assert int(recs[3]["pred_area"]) == 16 and int(recs[3]["gt_area"]) == 0


def test_pseudo_nbi_is_seeded_per_case_and_switches_apply(tmp_path):
    from training.evaluate import prepare_inputs

    src = Path(__file__).parent / "data" / "vf_0041.png"
    row = CaseRow("a/vf.png", src, None, src)
    w1, n1, h1, synth, _ = prepare_inputs(row, pseudo_nbi=True, wli_only=False, no_registration=True)
    _, n2, _, _, _ = prepare_inputs(row, pseudo_nbi=True, wli_only=False, no_registration=True)
    assert synth and n1 is not None and np.array_equal(n1, n2) and np.array_equal(h1, np.eye(3))
    _, n3, _, _, _ = prepare_inputs(CaseRow("b/vf.png", src.parent / "vf_0055.png", None, src), True, False, True)
    assert not np.array_equal(n1, n3)  # another image, another warp
    # the same image listed under another path string (a CSV in another folder): the same draw
    _, n3b, _, _, _ = prepare_inputs(CaseRow("../../elsewhere/vf.png", src, None, src), True, False, True)
    assert np.array_equal(n1, n3b)
    _, n4, h4, _, _ = prepare_inputs(row, pseudo_nbi=True, wli_only=False, no_registration=False)
    assert h4.shape == (3, 3) and not np.allclose(h4, np.eye(3))  # registration ran
    _, n5, h5, _, _ = prepare_inputs(row, pseudo_nbi=True, wli_only=True, no_registration=False)
    assert n5 is None and h5 is None
    # a re-rendered WLI (a diagnostic's colour transfer) gets its NBI made the same way from it
    darker = (w1 // 2).astype(np.uint8)
    w6, n6, _, _, _ = prepare_inputs(row, pseudo_nbi=True, wli_only=False, no_registration=True, wli=darker)
    assert w6 is darker and not np.array_equal(n6, n1)
    w7, n7, _, _, _ = prepare_inputs(row, True, False, True, wli=w1.copy())
    assert np.array_equal(w7, w1) and np.array_equal(n7, n1)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """An untrained tiny network at 64 px saved as a model file (fast to run)."""
    import dataclasses

    import torch

    from model.adf import ADFNet
    from model.card import save_model
    from model.config import get_preset

    torch.manual_seed(0)
    cfg = dataclasses.replace(get_preset("tiny"), input_size=64)
    d = tmp_path_factory.mktemp("model")
    return save_model(ADFNet(cfg), cfg, d / "m", {"id": "m", "training_data": None, "command": "test",
                                                  "test_time_flips": ["none", "h"]})


@pytest.fixture
def vf_csv(tmp_path) -> Path:
    data = Path(__file__).parent / "data"
    with open(tmp_path / "vf.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["wli_path", "nbi_path", "label_path"])
        for n in ("vf_0041", "vf_0055"):
            w.writerow([str(data / f"{n}.png"), "", str(data / f"{n}_mask.png")])
        # a tumour-free case: the kvasir image with an empty mask
        cv2.imwrite(str(tmp_path / "empty.png"), np.zeros((96, 96), np.uint8))
        w.writerow([str(data / "kv_cju0qkwl.jpg"), "", "empty.png"])
    return tmp_path / "vf.csv"


KEYS = {"n", "n_positive", "dice", "iou", "hd95", "sensitivity", "specificity", "false_positive_rate", "ms_per_case"}


@pytest.mark.parametrize("mode", [["--pseudo-nbi"], ["--pseudo-nbi", "--no-registration"], ["--wli-only"], [],
                                  ["--wli-only", "--no-tta"]])
def test_cli_end_to_end(tiny_model, vf_csv, tmp_path, capsys, mode):
    model_stem = str(tiny_model)[: -len(".json")]
    args = ["--model", model_stem, "--csv", str(vf_csv), "--device", "cpu", "--no-progress", *mode]
    if mode == ["--pseudo-nbi"]:
        args += ["--per-case", str(tmp_path / "pc.csv"), "--report", str(tmp_path / "rep"), "--ci-block", "2"]
    assert main(args) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    res = json.loads(last)
    assert set(res) >= KEYS
    assert res["n"] == 3 and res["n_positive"] == 2
    assert res["false_positive_rate"] in (0.0, 1.0)
    assert res["model_id"] == "m"
    assert res["test_time_views"] == (1 if "--no-tta" in mode else 2)  # the card's ["none", "h"] unless --no-tta
    if mode == ["--pseudo-nbi"]:
        with open(tmp_path / "pc.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 3 and rows[2]["gt_area"] == "0"
        assert res["ci95"]["block"] == 2 and len(res["ci95"]["sensitivity"]) == 2
        sheet = cv2.imread(str(tmp_path / "rep" / "report.png"))
        assert sheet is not None and sheet.shape[1] >= 3 * 200


def test_cli_refuses_a_bootstrap_block_under_one(tiny_model, vf_csv, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--model", str(tiny_model), "--csv", str(vf_csv), "--ci-block", "0"])
    assert e.value.code == 2
    assert "--ci-block" in capsys.readouterr().err


def test_cli_bad_csv_is_a_clear_error(tiny_model, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("image,mask\na.png,b.png\n")
    assert main(["--model", str(tiny_model), "--csv", str(bad)]) == 2
    assert "wli_path" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]


def test_a_case_scores_the_same_whichever_folder_its_csv_lives_in(tiny_model, tmp_path, capsys):
    """The pseudo-NBI, noise and other-device draws follow the image, not the CSV's path string:
    two CSVs listing the same cases from different folders (relative paths of different text)
    give the same figures to the last digit, the NBI-noise check included."""
    data = Path(__file__).parent / "data"
    figures = []
    for folder in (tmp_path / "a", tmp_path / "deeper" / "still" / "b"):
        folder.mkdir(parents=True)
        with open(folder / "vf.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["wli_path", "nbi_path", "label_path"])
            for n in ("vf_0041", "vf_0055"):
                w.writerow([os.path.relpath(data / f"{n}.png", folder), "",
                            os.path.relpath(data / f"{n}_mask.png", folder)])
        assert main(["--model", str(tiny_model), "--csv", str(folder / "vf.csv"), "--device", "cpu",
                     "--no-progress", "--pseudo-nbi", "--other-device"]) == 0
        res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        figures.append((res["dice"], res["dice_nbi_noise"], res["iou"]))
    assert figures[0][1] is not None
    assert figures[0] == figures[1]
