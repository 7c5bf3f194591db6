"""Release 3 (issue 15) and the training half of issue 14: NBI at every decoder scale, either
stream dropped, the upgrade from release 2, click inputs that are inert without clicks, the
cross-recording folds, scope augmentation and its held-out device, by-size and noise-NBI figures,
the activation rule, approved predictions as training data, and the split by patient."""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from model.adf import ADFNet, upgrade_state
from model.config import LEGACY_DEFAULTS, ADFConfig
from tests.test_model_net import small_cfg

ROOT = Path(__file__).resolve().parents[1]


def _nets(seed: int = 0) -> tuple[ADFNet, ADFNet]:
    """(a release-2-style network, the current network built from it by upgrade_state)."""
    torch.manual_seed(seed)
    old = ADFNet(dataclasses.replace(small_cfg(), **LEGACY_DEFAULTS)).eval()
    new = ADFNet(dataclasses.replace(small_cfg(), nbi_skips=True, click_chans=3)).eval()
    names = upgrade_state(new, old.state_dict())
    assert "dec_proj_n.0.weight" in names and "click_embed.weight" in names
    return old, new


def test_old_cards_rebuild_the_old_network_and_new_ones_the_new() -> None:
    d = small_cfg().to_dict()
    legacy = {k: v for k, v in d.items() if k not in LEGACY_DEFAULTS}
    cfg = ADFConfig.from_dict(legacy)
    assert (cfg.nbi_skips, cfg.click_chans) == (False, 0)
    assert ADFConfig.from_dict(d) == small_cfg() and small_cfg().nbi_skips and small_cfg().click_chans == 3
    assert not hasattr(ADFNet(cfg), "dec_proj_n") and not hasattr(ADFNet(cfg), "click_embed")
    with pytest.raises(ValueError):
        ADFConfig.from_dict({**d, "click_chans": 2})


def test_upgraded_network_computes_what_release_2_did_until_trained() -> None:
    old, new = _nets()
    x, n = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for args in ((x, n), (x, None), (x, n, torch.tensor([True, False]))):
            assert torch.equal(old(*args).logits, new(*args).logits)
        # all-zero click maps are the automatic mode, exactly
        assert torch.equal(new(x, n, clicks=torch.zeros(2, 3, 64, 64)).logits, new(x, n).logits)
    with pytest.raises(ValueError, match="lacks"):
        upgrade_state(old, new.state_dict())


def test_nbi_reaches_every_decoder_skip() -> None:
    """With NBI skips a local change of the NBI changes the logits near it through the shallow
    skips; deleting the NBI skip projections removes that path (the release-2 network had none)."""
    torch.manual_seed(1)
    net = ADFNet(small_cfg()).eval()
    x, n = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    n2 = n.clone()
    n2[..., 8:16, 8:16] += 3.0
    with torch.no_grad():
        base = net(x, n).logits
        moved = (net(x, n2).logits - base).abs()
        for p in net.dec_proj_n.parameters():
            p.zero_()
        net.skip_standin_n.zero_()
        cut = (net(x, n2).logits - net(x, n).logits).abs()
    assert moved.max() > 1e-3
    # what remains without the skips is only the deepest tokens' (global, 2x2 here) effect: the
    # skips carried most of the local change
    assert moved[..., 4:20, 4:20].mean() > 2 * cut[..., 4:20, 4:20].mean()


def test_either_stream_can_be_dropped_but_not_both() -> None:
    torch.manual_seed(2)
    net = ADFNet(small_cfg()).eval()
    x, n = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    both = torch.tensor([True, True])
    with torch.no_grad():
        nbi_only = net(x, n, both, torch.tensor([False, False])).logits
        other_wli = net(torch.randn(2, 3, 64, 64), n, both, torch.tensor([False, False])).logits
        other_nbi = net(x, torch.randn(2, 3, 64, 64), both, torch.tensor([False, False])).logits
    assert torch.equal(nbi_only, other_wli), "an absent WLI stream must not influence the output"
    assert not torch.allclose(nbi_only, other_nbi)
    with pytest.raises(ValueError, match="neither"):
        net(x, n, torch.tensor([False, True]), torch.tensor([False, True]))
    old, _ = _nets()
    with pytest.raises(ValueError, match="no NBI-only path"):
        old(x, n, both, torch.tensor([False, True]))


def test_pair_losses_use_only_samples_with_both_streams() -> None:
    from model.losses import adf_loss

    torch.manual_seed(3)
    net = ADFNet(small_cfg()).train()
    x, n = torch.randn(3, 3, 64, 64), torch.randn(3, 3, 64, 64)
    tgt = (torch.rand(3, 1, 64, 64) > 0.5).float()
    # sample 0 has NBI only, 1 WLI only, 2 both: the pair terms see only sample 2 ...
    out = net(x, n, torch.tensor([True, False, True]), torch.tensor([False, True, True]))
    _, parts = adf_loss(out, tgt, 0.6)
    ref = net(x[2:], n[2:])
    from model.losses import align_loss

    assert abs(parts["align"] - float(align_loss(ref.shared_w, ref.shared_n).detach())) < 1e-5
    # ... and with no sample having both, they are 0 and the loss still trains
    out = net(x[:2], n[:2], torch.tensor([True, False]), torch.tensor([False, True]))
    loss, parts = adf_loss(out, tgt[:2], 0.6)
    assert parts["align"] == parts["dacl"] == parts["mmd"] == 0.0
    loss.backward()


def test_scope_augmentation_is_seeded_and_the_held_out_device_is_fixed() -> None:
    from training.scope_aug import other_device, scope_augment

    img = cv2.cvtColor(cv2.imread(str(ROOT / "tests/data/vf_0041.png")), cv2.COLOR_BGR2RGB)
    img = cv2.resize(img, (128, 128))
    a = scope_augment(img, np.random.default_rng(5))
    b = scope_augment(img, np.random.default_rng(5))
    c = scope_augment(img, np.random.default_rng(6))
    assert a.shape == img.shape and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.abs(a.astype(int) - img).mean() > 1.0
    d1, d2 = other_device(img, 1), other_device(img, 1)
    assert np.array_equal(d1, d2) and np.abs(d1.astype(int) - img).mean() > 3.0
    assert d1[0, 0].max() == 0 and d1[-1, -1].max() == 0  # the octagonal field stop
    assert d1[64, 64].max() > 0


def test_scope_wide_renders_a_recording_as_dark_and_contrasted_as_seq2() -> None:
    """seq2 is darker (LAB L mean 0.79x) and more contrasted (L std 1.38x) than seq1; "scope" never
    draws that combination, "scope-wide" does, and the trainer's --aug accepts it."""
    from training.data import AUG_PRESETS, photometric
    from training.train_args import build_parser

    img = cv2.resize(cv2.cvtColor(cv2.imread(str(ROOT / "tests/data/vf_0041.png")), cv2.COLOR_BGR2RGB), (128, 128))
    base = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)[..., 0].astype(float)

    def seq2_like_share(preset: str) -> float:
        rng, hits = np.random.default_rng(0), 0
        for _ in range(400):
            lum = cv2.cvtColor(photometric(img, rng, AUG_PRESETS[preset]), cv2.COLOR_RGB2LAB)[..., 0].astype(float)
            hits += lum.mean() <= 0.85 * base.mean() and lum.std() >= 1.2 * base.std()
        return hits / 400

    assert seq2_like_share("scope") == 0.0
    assert seq2_like_share("scope-wide") >= 0.03
    assert AUG_PRESETS["scope-wide"].scope and AUG_PRESETS["scope-wide"].scale == AUG_PRESETS["scope"].scale
    assert build_parser().parse_args(["--aug", "scope-wide"]).aug == "scope-wide"


def test_by_lesion_size_bins_and_detection() -> None:
    from training.metrics import by_lesion_size, case_metrics

    gt_small = np.zeros((100, 100), bool)
    gt_small[10:15, 10:15] = True  # 0.25 %
    gt_big = np.zeros((100, 100), bool)
    gt_big[20:60, 20:60] = True  # 16 %
    cases = [case_metrics(np.zeros_like(gt_small), gt_small), case_metrics(gt_big, gt_big),
             case_metrics(np.zeros_like(gt_big), np.zeros_like(gt_big))]
    bins = by_lesion_size(cases)
    assert [b["n"] for b in bins] == [1, 0, 0, 1]
    assert bins[0]["dice"] == 0.0 and bins[0]["detected"] == 0.0 and bins[0]["area_pct"] == "0-1"
    assert bins[3]["dice"] == 1.0 and bins[3]["detected"] == 1.0 and bins[1]["dice"] is None


def test_every_evaluation_reports_the_dice_with_nbi_replaced_by_noise(tmp_path: Path) -> None:
    """A predictor that needs NBI scores lower with noise; one that ignores it scores the same."""
    from training.evaluate import evaluate_rows, read_cases

    img = np.zeros((32, 32, 3), np.uint8)
    img[8:24, 8:24] = 200
    mask = img[..., 0] > 0
    for name in ("a", "b"):
        cv2.imwrite(str(tmp_path / f"{name}_wli.png"), img)
        cv2.imwrite(str(tmp_path / f"{name}_nbi.png"), img)
        cv2.imwrite(str(tmp_path / f"{name}_mask.png"), mask.astype(np.uint8) * 255)
    (tmp_path / "c.csv").write_text("wli_path,nbi_path,label_path\n"
                                    + "".join(f"{n}_wli.png,{n}_nbi.png,{n}_mask.png\n" for n in "ab"))
    rows = read_cases(tmp_path / "c.csv")

    def uses_nbi(wli, nbi, hom):
        return (nbi[..., 0] > 100) & (nbi[..., 1] > 100) & (nbi[..., 2] > 100)

    def ignores_nbi(wli, nbi, hom):
        return wli[..., 0] > 100

    s1, _ = evaluate_rows(rows, uses_nbi, no_registration=True, progress=False)
    s2, _ = evaluate_rows(rows, ignores_nbi, no_registration=True, progress=False)
    assert s1["dice"] == 1.0 and s1["dice_nbi_noise"] < 0.5
    assert s2["dice"] == s2["dice_nbi_noise"] == 1.0
    s3, _ = evaluate_rows(rows, ignores_nbi, wli_only=True, progress=False)
    assert s3["dice_nbi_noise"] is None and s3["by_size"][3]["n"] == 2


def test_activation_verdict() -> None:
    from training.train import activation_verdict

    assert activation_verdict({"val_dice": 0.8, "parent_val_dice": 0.7})[0] is True
    ok, why = activation_verdict({"val_dice": 0.7, "parent_val_dice": 0.7})
    assert ok is False and "does not beat" in why
    assert activation_verdict({"val_dice": 0.5})[0] is True
    assert activation_verdict({"val_dice": None, "parent_val_dice": 0.7})[0] is True


def test_an_approved_case_trains_with_its_latest_revision_whatever_its_source(filled_workspace) -> None:
    from training.data import WorkspaceDataset

    ws = filled_workspace
    c = ws.cases()[0]
    pred = np.zeros((c.height, c.width), bool)
    pred[: c.height // 2] = True
    ws.add_revision(c.id, pred, source="model", author="model", model_id="m1")
    # corrected: the model revision is not ground truth, the imported mask is
    ds = WorkspaceDataset(ws, size=32, train=False, statuses=("corrected",))
    rec = next(r for r in ds.records if r.case_id == c.id)
    assert ws.latest_revision(c.id, sources=("human", "import")).mask_path.name == Path(rec.mask_path).name
    # approved exactly as predicted: the prediction is what the clinician stands behind
    ws.set_status(c.id, "approved")
    ds = WorkspaceDataset(ws, size=32, train=False, statuses=("approved",))
    assert ds.case_ids == [c.id]
    assert Path(ds.records[0].mask_path).name == ws.latest_revision(c.id).mask_path.name
    assert ws.latest_revision(c.id).source == "model"


def test_workspace_training_splits_by_patient(filled_workspace) -> None:
    from training.train import build_datasets

    ws = filled_workspace
    ids = [c.id for c in ws.cases()]
    ws.set_patient(ids[0], "P1")
    ws.set_patient(ids[1], "P1")
    ws.set_patient(ids[2], "P2")
    args = argparse.Namespace(data=str(ws.root), statuses="corrected,approved", val_fraction=0.67, seed=0,
                              aug="scope")
    seen = set()
    for seed in range(6):
        args.seed = seed
        tr, va, kind, _ = build_datasets(args, small_cfg(), 32, 32)
        assert kind == "workspace"
        train_ids, val_ids = set(tr.case_ids), set(va.case_ids)
        assert {ids[0], ids[1]} <= train_ids or {ids[0], ids[1]} <= val_ids, "patient P1 split across sides"
        seen.add(frozenset(val_ids))
        assert tr.aug.scope and tr.train and not va.train
    assert len(seen) == 2  # both patients end up held out for some seed


def _fake_shared(root: Path) -> Path:
    """A miniature shared-data tree with the real layout (tests must not read the real one)."""
    kv = root / "kvasir-seg-256"
    (kv / "images").mkdir(parents=True)
    (kv / "masks").mkdir()
    img = np.full((24, 24, 3), 90, np.uint8)
    m = np.zeros((24, 24), np.uint8)
    m[6:14, 6:14] = 255
    for i in range(20):
        cv2.imwrite(str(kv / "images" / f"k{i:02d}.jpg"), img)
        cv2.imwrite(str(kv / "masks" / f"k{i:02d}.png"), m)
    vf = root / "vocalfolds"
    for seq, n, tumour in (("patient1/seq1", 4, True), ("patient1/seq2", 3, True), ("patient1/seq3", 2, False),
                           ("patient1/seq4", 1, False), ("patient2/seq5", 1, False), ("patient2/seq6", 2, False)):
        (vf / "images" / seq).mkdir(parents=True)
        (vf / "labels" / seq).mkdir(parents=True)
        for j in range(n):
            lab = np.full((24, 24), 2, np.uint8)
            if tumour:
                lab[4:10, 4:10] = 4
            cv2.imwrite(str(vf / "images" / seq / f"{j:04d}.png"), img)
            cv2.imwrite(str(vf / "labels" / seq / f"{j:04d}.png"), lab)
    return root


def test_laryngeal_folds_never_measure_on_a_recording_they_trained_on(tmp_path: Path) -> None:
    from training.data import PublicDataset, kvasir_split, vocalfolds_split, write_public_eval_csvs

    shared = _fake_shared(tmp_path / "shared")
    vf = shared / "vocalfolds"
    for fold, tr_seq, va_seq in (("a", "seq1", "seq2"), ("b", "seq2", "seq1")):
        tr, neg_tr = vocalfolds_split(vf, "train", fold)
        va, neg_va = vocalfolds_split(vf, "val", fold)
        assert {i.name.split("/")[2] for i in tr} == {tr_seq} and {i.name.split("/")[2] for i in va} == {va_seq}
        assert not {i.name for i in tr} & {i.name for i in va}
        assert {i.name.split("/")[2] for i in neg_va} == {"seq6"} and "seq6" not in {i.name.split("/")[2] for i in neg_tr}
    assert len(vocalfolds_split(vf, "train", "all")[0]) == 7 and vocalfolds_split(vf, "val", "all")[0] == []
    with pytest.raises(ValueError):
        vocalfolds_split(vf, "train", "c")
    # Kvasir's validation split halves: disjoint, together the whole split, neither in train
    kv = shared / "kvasir-seg-256"
    ch, rep, val = (kvasir_split(kv, s) for s in ("val_choose", "val_report", "val"))
    assert {i.name for i in ch} | {i.name for i in rep} == {i.name for i in val} and not {i.name for i in ch} & {
        i.name for i in rep}
    assert not {i.name for i in val} & {i.name for i in kvasir_split(kv, "train")}
    # the datasets a fold trains and validates on
    ds = PublicDataset(shared, "train", fold="a", tumour_repeat=2, size=16)
    assert ds.describe()["laryngeal_tumour_sequences"] == ["patient1/seq1"]
    assert ds.groups().count("vocal_tumour") == 8
    va = PublicDataset(shared, "val", which=("kvasir",), fold="a", kvasir_val="val_choose", size=16)
    assert len(va) == len(ch) and va.describe()["kvasir"] == "val_choose"
    csvs = write_public_eval_csvs(shared, tmp_path / "eval")
    from training.evaluate import read_cases

    assert len(read_cases(csvs["vocal_seq2"])) == 3 and len(read_cases(csvs["vocal_seq1"])) == 4
    assert len(read_cases(csvs["kvasir_val_report"])) == len(rep)


def test_training_runs_the_adf_losses_and_drops_each_stream(filled_workspace, tmp_path, capsys, monkeypatch) -> None:
    """Issue 14 item 8: a trainer without the auxiliary ADF losses or without modality dropout
    must fail a test. Records what the network saw and what the loss returned."""
    import model.adf as adf
    import model.losses as losses
    from training.train import main

    seen: list[tuple[list[bool], list[bool] | None]] = []
    orig_forward = adf.ADFNet.forward

    def spy_forward(self, wli, nbi=None, nbi_present=None, wli_present=None, clicks=None):
        if self.training:
            seen.append(([bool(v) for v in nbi_present] if nbi_present is not None else [],
                         None if wli_present is None else [bool(v) for v in wli_present]))
        return orig_forward(self, wli, nbi, nbi_present, wli_present, clicks)

    monkeypatch.setattr(adf.ADFNet, "forward", spy_forward)
    calls: list[bool] = []
    orig_loss = losses.adf_loss

    def spy_loss(out, target, progress, aux=True, net=None, fn_weight=0.5):
        calls.append(aux)
        return orig_loss(out, target, progress, aux, net, fn_weight)

    monkeypatch.setattr(losses, "adf_loss", spy_loss)
    rc = main(["--data", str(filled_workspace.root), "--epochs", "6", "--out", str(tmp_path / "run"),
               "--model-id", "spy", "--val-fraction", "0", "--input-size", "64", "--batch-size", "3",
               "--no-tqdm", "--threads", "1", "--modality-dropout", "0.3", "--wli-dropout", "0.3", "--seed", "1"])
    assert rc == 0, capsys.readouterr().out
    assert calls and all(calls), "the trainer must train with the auxiliary ADF losses"
    flags = [(n, w) for ns, ws in seen for n, w in zip(ns, ws or [True] * len(ns), strict=True)]
    assert len(flags) == 18
    assert any(not n and w for n, w in flags), "some samples must lose their NBI"
    assert any(n and not w for n, w in flags), "some samples must lose their WLI"
    assert any(n and w for n, w in flags) and not any(not n and not w for n, w in flags)
    ep = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
          if json.loads(x)["event"] == "epoch"]
    assert all("loss_align" in e and "loss_mmd" in e for e in ep)
    assert any(e["loss_align"] > 0 for e in ep) and max(e["loss_w"] for e in ep) > 0


def _choose(tmp_path: Path, variants: list[dict]) -> dict:
    import subprocess
    import sys

    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"model": "m", "csv": "c.csv", "n": 3, "variants": variants}))
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "choose_operating_point.py"
    out = subprocess.run([sys.executable, str(script), str(bench)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _variant(px: int, thr: float, dice: float, fpr: float, views: str = "none") -> dict:
    return {"input_px": px, "views": views, "threshold": thr, "island_removal": True, "dice": dice,
            "sensitivity": dice, "false_positive_rate": fpr}


def test_operating_point_rule_keeps_the_false_positive_limit_and_falls_back_to_the_lowest(tmp_path: Path) -> None:
    """The cross-fold choice: the best Dice within the false-positive limit; when a recording's few
    tumour-free frames put every variant over it, the lowest false-positive rate competes, and the
    output says the limit was not met (instead of stopping with no operating point)."""
    within = _choose(tmp_path, [_variant(384, 0.2, 0.80, 0.5), _variant(384, 0.5, 0.70, 0.0),
                                _variant(256, 0.4, 0.72, 0.0), _variant(512, 0.2, 0.9, 0.0)])
    assert (within["input_px"], within["threshold"], within["fpr_limit_met"]) == (256, 0.4, True)
    over = _choose(tmp_path, [_variant(384, 0.2, 0.80, 0.5), _variant(384, 0.7, 0.60, 1 / 6),
                              _variant(256, 0.5, 0.65, 1 / 6), _variant(320, 0.3, 0.75, 2 / 6)])
    assert (over["input_px"], over["threshold"], over["fpr_limit_met"]) == (256, 0.5, False)


def test_colour_match_diagnostic_moves_an_image_to_the_target_colour_statistics() -> None:
    """benchmarks/diag_colour_match.py (issue 15's under-segmentation): the Reinhard transfer it
    measures with gives an image the target recording's LAB mean and spread."""
    import importlib.util

    import numpy as np

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "diag_colour_match.py"
    spec = importlib.util.spec_from_file_location("diag_colour_match", path)
    diag = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diag)
    rng = np.random.default_rng(0)
    dark = (rng.random((64, 64, 3)) * 90 + 20).astype(np.uint8)
    target = (np.array([150.0, 140.0, 135.0]), np.array([30.0, 6.0, 7.0]))
    moved = diag.matched(dark, diag.lab_stats([dark]), target)
    mean, std = diag.lab_stats([moved])
    assert np.allclose(mean, target[0], atol=2.0), mean
    assert np.allclose(std, target[1], atol=1.5), std
    assert not np.allclose(diag.lab_stats([dark])[0], target[0], atol=10.0)


def test_colour_diagnostic_training_set_statistics_leave_out_what_the_fold_measures_on(tmp_path: Path) -> None:
    """--training-fold matches images to the statistics of the fold's training images only: the
    recording it is measured on and Kvasir's validation images must not move them."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "diag_colour_match.py"
    spec = importlib.util.spec_from_file_location("diag_colour_match", path)
    diag = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diag)
    shared = _fake_shared(tmp_path / "shared")
    bright = np.full((24, 24, 3), 230, np.uint8)
    for f in (shared / "vocalfolds" / "images" / "patient1" / "seq2").glob("*.png"):
        cv2.imwrite(str(f), bright)  # measured on by fold a, trained on by fold b
    for i in range(0, 20, 5):
        cv2.imwrite(str(shared / "kvasir-seg-256" / "images" / f"k{i:02d}.jpg"), bright)  # Kvasir validation
    grey_l = diag.lab_stats([np.full((24, 24, 3), 90, np.uint8)])[0][0]
    fold_a, fold_b = diag.training_set_stats(shared, "a"), diag.training_set_stats(shared, "b")
    assert abs(fold_a[0][0] - grey_l) < 1.0 and fold_a[1][0] < 1.0
    assert fold_b[0][0] > grey_l + 10.0
