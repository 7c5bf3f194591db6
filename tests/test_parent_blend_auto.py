"""--parent-blend auto (issue 15, retraining that adapts to a clinic): the blend between parent
and fine-tuned weights is chosen per run on the held-out cases, with tumour-free held-out cases
counting, and the activation rule counts them too."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

FAST = ["--input-size", "64", "--batch-size", "3", "--no-tqdm", "--threads", "1", "--workers", "0"]


def _fake_run(score_of_weight, with_val: bool = True) -> SimpleNamespace:
    """A Run stand-in: one weight, parent 0, fine-tuned 1; validate() scores the current weight."""
    net = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(1.0)
    r = SimpleNamespace(net=net, parent_state={"weight": torch.zeros(1, 1)}, val_ds=[0] if with_val else None)
    r.validate = lambda: {"val_dice": score_of_weight(float(net.weight.detach())), "val_fpr": None}
    return r


def test_choose_blend_takes_the_best_held_out_score_and_leaves_the_net_blended() -> None:
    from training.release import choose_blend

    r = _fake_run(lambda w: 1.0 - abs(w - 0.75))
    share, table, val = choose_blend(r)
    assert val["val_dice"] == pytest.approx(1.0)
    assert share == 0.75 and [t["blend"] for t in table] == [0.25, 0.5, 0.75, 1.0]
    assert float(r.net.weight.detach()) == pytest.approx(0.75)
    assert table[2]["score"] == pytest.approx(1.0) and table[0]["score"] == pytest.approx(0.5)


def test_choose_blend_ties_go_to_the_default_then_the_parent_side_and_no_held_out_falls_back() -> None:
    from training.release import FALLBACK_BLEND, choose_blend

    r = _fake_run(lambda w: 0.6)  # every blend alike (e.g. only tumour-free held-out cases, none flagged)
    share, _, _ = choose_blend(r)
    assert share == FALLBACK_BLEND and float(r.net.weight.detach()) == pytest.approx(FALLBACK_BLEND)
    r = _fake_run(lambda w: 0.6 if w > 0.6 else 0.5)  # 0.75 and 1 tie at the top: the one nearer 0.5
    share, _, _ = choose_blend(r)
    assert share == 0.75 and float(r.net.weight.detach()) == pytest.approx(0.75)
    r = _fake_run(lambda w: 0.6, with_val=False)
    share, table, val = choose_blend(r)
    assert share == FALLBACK_BLEND and table is None and val is None and float(r.net.weight.detach()) == pytest.approx(FALLBACK_BLEND)


def test_held_out_score_counts_tumour_free_false_positives_and_activation_uses_it() -> None:
    from training.release import activation_verdict, held_out_score

    assert held_out_score(0.8, None) == 0.8
    assert held_out_score(None, 0.25) == 0.75
    assert held_out_score(0.8, 0.5) == pytest.approx(0.65)
    assert held_out_score(None, None) is None
    # higher Dice but every tumour-free held-out frame now gets a false tumour: not activated
    ok, why = activation_verdict({"val_dice": 0.8, "parent_val_dice": 0.7, "val_fpr": 1.0, "parent_val_fpr": 0.0})
    assert ok is False and "specificity" in why
    ok, _ = activation_verdict({"val_dice": 0.8, "parent_val_dice": 0.7, "val_fpr": 0.0, "parent_val_fpr": 0.0})
    assert ok is True


def test_parent_blend_auto_needs_a_parent(tmp_path: Path, capsys) -> None:
    from training.train import main

    rc = main(["--data", str(tmp_path), "--parent-blend", "auto", "--out", str(tmp_path / "run"), *FAST])
    assert rc == 2
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["event"] == "error" and "--parent-blend" in last["message"]


def test_a_fine_tune_with_auto_blend_releases_the_chosen_blend(filled_workspace, tmp_path: Path, capsys) -> None:
    """Through the trainer CLI on a workspace with held-out patients: the card lists every
    candidate's held-out score, records the best as the release's blend, and the released weights
    are exactly parent + blend x (last epoch - parent)."""
    from safetensors.torch import load_file

    from model.adf import ADFNet
    from model.card import save_model
    from model.config import get_preset
    from training.checkpoint import LAST_WEIGHTS
    from training.train import main

    ws = filled_workspace
    for i, c in enumerate(ws.cases()):
        ws.set_patient(c.id, f"P{i}")
    ws_path = ws.root
    torch.manual_seed(0)
    cfg = get_preset("tiny")
    parent = save_model(ADFNet(cfg).eval(), cfg, tmp_path / "parent", {"id": "parent"})
    rc = main(["--data", str(ws_path), "--init", str(parent), "--parent-blend", "auto", "--val-fraction", "0.34",
               "--epochs", "2", "--lr", "3e-3", "--out", str(tmp_path / "run"), "--model-id", "auto", *FAST])
    assert rc == 0
    done = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    card = json.loads((tmp_path / "run" / "auto.json").read_text())
    table = card["metrics"]["parent_blend_choice"]
    assert [t["blend"] for t in table] == [0.25, 0.5, 0.75, 1.0]
    best = max(t["score"] for t in table)
    chosen = min((t["blend"] for t in table if t["score"] >= best - 1e-9), key=lambda b: (abs(b - 0.5), b))
    assert card["training"]["parent_blend"] == chosen == done["parent_blend"]
    row = next(t for t in table if t["blend"] == chosen)
    assert card["metrics"]["val_dice"] == pytest.approx(row["val_dice"], abs=1e-5), "the card's held-out figure is the chosen blend's"
    assert card["training"]["parent_blend_rule"].startswith("auto")
    assert "parent blend" in card["metrics"]["held_out_chose"]
    released = load_file(str(tmp_path / "run" / "auto.safetensors"))
    last = load_file(str(tmp_path / "run" / "checkpoints" / LAST_WEIGHTS))
    before = load_file(str(tmp_path / "parent.safetensors"))
    moved = 0
    for k, w in released.items():
        if w.is_floating_point():
            want = before[k].lerp(last[k], chosen)
            assert torch.allclose(w, want, atol=1e-6), k
            moved += int(not torch.equal(before[k], last[k]))
    assert moved > 0, "the fine-tune changed weights"
