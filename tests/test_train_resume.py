"""training.train --resume continues the same run; --init fine-tunes and records the parent."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.test_train import FAST, _last_json, make_export


def test_resume_continues_the_same_run(tmp_path, capsys):
    from safetensors.torch import load_file

    from training.train import main

    data = make_export(tmp_path / "export", 4)
    common = ["--data", str(data), "--epochs", "2", "--seed", "3", *FAST]
    assert main([*common, "--out", str(tmp_path / "straight")]) == 0
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "split"), "--stop-after", "1"]) == 0
    first = _last_json(capsys.readouterr().out)
    assert first["epochs_done"] == 1 and first["stopped_by"] == "stop-after"
    assert main([*common, "--out", str(tmp_path / "split"), "--resume"]) == 0
    out = capsys.readouterr().out
    resumed = [json.loads(x) for x in out.strip().splitlines()]
    assert resumed[0]["event"] == "resume" and resumed[0]["epoch"] == 1
    assert [r["epoch"] for r in resumed if r["event"] == "epoch"] == [2]
    assert resumed[-1]["epochs_done"] == 2
    # same epochs, same images, same optimizer state and RNG -> the same weights
    a = load_file(tmp_path / "straight" / "checkpoints" / "last.safetensors")
    b = load_file(tmp_path / "split" / "checkpoints" / "last.safetensors")
    assert a.keys() == b.keys()
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst < 1e-5, worst
    # the optimizer state survived too (AdamW step count after epoch 2)
    st = torch.load(tmp_path / "split" / "checkpoints" / "last_state.pt", weights_only=True)
    steps = {int(v["step"]) for v in st["optimizer"]["state"].values()}
    assert max(steps) == st["step"] == 2 * 2  # 3 train cases / batch 2 = 2 steps per epoch


def test_finetune_records_parent(tmp_path, capsys):
    from model.card import load_model
    from training.train import main

    data = make_export(tmp_path / "export", 3)
    rc = main(["--data", str(data), "--epochs", "1", "--out", str(tmp_path / "a"), "--model-id", "a", *FAST])
    assert rc == 0
    parent = _last_json(capsys.readouterr().out)["model"]
    rc = main(["--data", str(data), "--epochs", "1", "--out", str(tmp_path / "b"), "--model-id", "b",
               "--init", parent, *FAST])
    assert rc == 0
    net, card = load_model(_last_json(capsys.readouterr().out)["model"])
    pnet, pcard = load_model(parent)
    assert card["parent"]["id"] == "a" and card["parent"]["sha256"] == pcard["sha256"]
    # fine-tuning keeps the parent's BatchNorm statistics (while the weights do move) ...
    bn = [n for n, b in pnet.named_buffers() if n.endswith("running_mean")]
    assert bn and all(torch.equal(dict(net.named_buffers())[n], dict(pnet.named_buffers())[n]) for n in bn)
    assert not torch.equal(net.dec_fuse[0].weight, pnet.dec_fuse[0].weight)
    assert card["training"]["norm_stats"] == "frozen" and pcard["training"]["norm_stats"] == "updated"
    # ... unless asked to update them
    rc = main(["--data", str(data), "--epochs", "1", "--out", str(tmp_path / "c"), "--model-id", "c",
               "--init", parent, "--norm-stats", "update", *FAST])
    assert rc == 0
    unet, _ = load_model(_last_json(capsys.readouterr().out)["model"])
    assert not all(torch.equal(dict(unet.named_buffers())[n], dict(pnet.named_buffers())[n]) for n in bn)
    # --freeze-encoders: both encoders stay the parent's, the rest learns
    rc = main(["--data", str(data), "--epochs", "1", "--out", str(tmp_path / "d"), "--model-id", "d",
               "--init", parent, "--freeze-encoders", *FAST])
    assert rc == 0
    fnet, fcard = load_model(_last_json(capsys.readouterr().out)["model"])
    pstate, fstate = pnet.state_dict(), fnet.state_dict()
    enc = [k for k in pstate if k.startswith(("enc_w.", "enc_n."))]
    assert enc and all(torch.equal(fstate[k], pstate[k]) for k in enc)
    assert not torch.equal(fstate["dec_fuse.0.weight"], pstate["dec_fuse.0.weight"])
    assert fcard["training"]["frozen_encoders"] is True
    assert card["training_data"]["kind"] == "export"


def test_finetune_releases_the_blend_of_parent_and_fine_tuned_weights(tmp_path, capsys):
    """--parent-blend 0.5 releases parent + 0.5 x (fine-tuned - parent) (WiSE-FT); the card records
    the share and the parent's Dice on the same held-out cases; --parent-blend 1 turns it off; the
    default with --init is auto (tests/test_parent_blend_auto.py)."""
    from safetensors.torch import load_file

    from model.card import load_model
    from training.train import main

    data = make_export(tmp_path / "export", 3)
    rc = main(["--data", str(data), "--epochs", "1", "--out", str(tmp_path / "a"), "--model-id", "a", *FAST])
    assert rc == 0
    parent = _last_json(capsys.readouterr().out)["model"]
    pstate = load_model(parent)[0].state_dict()

    def finetune(name: str, *extra: str) -> tuple[dict, dict, dict, list[dict]]:
        rc = main(["--data", str(data), "--epochs", "2", "--lr", "3e-3", "--out", str(tmp_path / name),
                   "--model-id", name, "--init", parent, *extra, *FAST])
        assert rc == 0
        events = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
        net, card = load_model(events[-1]["model"])
        ck = tmp_path / name / "checkpoints"
        tuned = load_file(ck / ("best.safetensors" if card["metrics"]["selected"] == "best" else "last.safetensors"))
        return net.state_dict(), tuned, card, events

    released, tuned, card, events = finetune("half", "--parent-blend", "0.5")
    moved = [k for k, v in pstate.items() if v.is_floating_point() and not torch.equal(tuned[k], v)]
    assert moved, "fine-tuning moved the weights"
    for k in moved:
        assert torch.allclose(released[k], pstate[k] + 0.5 * (tuned[k] - pstate[k]), atol=1e-6), k
    assert card["training"]["parent_blend"] == 0.5 and card["training"]["parent_blend_rule"] is None
    parent_val = [e for e in events if e.get("event") == "parent_val"]
    assert len(parent_val) == 1 and card["metrics"]["parent_val_dice"] == pytest.approx(parent_val[0]["val_dice"], abs=1e-5)
    # the released model's own held-out Dice is measured on the blend, not taken from an epoch
    assert isinstance(card["metrics"]["val_dice"], float)

    released, tuned, card, _ = finetune("full", "--parent-blend", "1")
    assert all(torch.equal(released[k], tuned[k]) for k in moved)
    assert card["training"]["parent_blend"] == 1.0


def test_parent_blend_without_a_parent_or_out_of_range_is_a_clear_error(tmp_path, capsys):
    from training.train import main

    for extra, words in ((["--parent-blend", "0.5"], "needs --init"),
                         (["--init", "nowhere", "--parent-blend", "0"], "in (0, 1]")):
        rc = main(["--data", str(tmp_path / "unused"), "--out", str(tmp_path / "run"), *extra, *FAST])
        assert rc == 2
        msg = _last_json(capsys.readouterr().out)
        assert msg["event"] == "error" and words in msg["message"]
        assert not (tmp_path / "run").exists()


def test_a_failed_checkpoint_write_keeps_the_last_one_and_leaves_no_temp(tmp_path, monkeypatch):
    """The trainer writes checkpoints through model.atomic (it had its own write that left a temp
    file when the write failed): a failure keeps the previous checkpoint, resumable, and no temp."""
    import argparse
    import dataclasses
    import os

    from model import atomic
    from model.adf import ADFNet
    from model.config import get_preset
    from training.checkpoint import RunState, load_checkpoint, save_checkpoint

    cfg = dataclasses.replace(get_preset("tiny"), embed_dims=(8, 16, 24, 32), num_heads=(1, 2, 3, 4),
                              disent_dim=16, decoder_dim=8)
    net = ADFNet(cfg)
    opt = torch.optim.AdamW(net.parameters())
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    ckdir = tmp_path / "checkpoints"
    ckdir.mkdir()

    def save(epoch: int) -> None:
        save_checkpoint(ckdir, net, opt, scaler, RunState(epoch=epoch, step=2 * (epoch + 1), commands=["c"]),
                        [torch.get_rng_state()], best=True, model_id="m", config=cfg.to_dict(),
                        args=argparse.Namespace(seed=1))

    save(0)
    before = {p.name: p.read_bytes() for p in ckdir.iterdir()}
    assert sorted(before) == ["best.safetensors", "last.safetensors", "last_state.pt"]
    real_replace = os.replace

    def fail_on_state(src, dst, *a, **k):
        if str(dst).endswith("last_state.pt"):
            raise OSError("disk full")
        return real_replace(src, dst, *a, **k)

    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    monkeypatch.setattr(atomic.os, "replace", fail_on_state)
    with pytest.raises(OSError, match="disk full"):
        save(1)
    monkeypatch.undo()
    assert sorted(p.name for p in ckdir.iterdir()) == sorted(before)  # no temp file left
    assert (ckdir / "last_state.pt").read_bytes() == before["last_state.pt"]
    run = load_checkpoint(ckdir, net, opt, scaler, 0, "again")
    assert (run.epoch, run.step, run.commands) == (1, 2, ["c", "again"])


def test_finetune_keeps_the_parents_inference_size_threshold_and_views(tmp_path, capsys):
    """Release 3 chose its input size, views and decision threshold on held-out recordings; a
    clinic's fine-tune (the Train dialog runs the CLI with --init) must keep them, or its model
    would silently fall back to 0.5 and two 64 px views. --tta-flips still overrides the views."""
    from model.card import load_model
    from model.predictor import Predictor
    from training.train import main

    data = make_export(tmp_path / "export", 3)
    assert main(["--data", str(data), "--epochs", "1", "--out", str(tmp_path / "a"), "--model-id", "a", *FAST]) == 0
    parent = _last_json(capsys.readouterr().out)["model"]
    _, plain = load_model(parent)
    assert plain["test_time_flips"] == ["none", "h"] and "decision_threshold" not in plain
    card = json.loads(Path(parent).read_text())
    card.update({"inference_input_size": 96, "inference_no_upsampling": True, "decision_threshold": 0.3,
                 "test_time_flips": ["none"]})
    Path(parent).write_text(json.dumps(card))

    def finetune(name: str, *extra: str) -> dict:
        assert main(["--data", str(data), "--epochs", "1", "--out", str(tmp_path / name), "--model-id", name,
                     "--init", parent, *extra, *FAST]) == 0
        return load_model(_last_json(capsys.readouterr().out)["model"])[1]

    child = finetune("b")
    assert child["inference_input_size"] == 96 and child["decision_threshold"] == 0.3
    assert child["inference_no_upsampling"] is True
    assert child["test_time_flips"] == ["none"]
    pred = Predictor.load(tmp_path / "b" / "b.json", device="cpu")
    assert pred.input_size == 96 and pred.decision_threshold == 0.3 and pred.flips == [()]
    assert finetune("c", "--tta-flips", "none,v")["test_time_flips"] == ["none", "v"]


def test_finetune_records_its_held_out_gain_over_the_parent_with_an_interval(tmp_path, capsys):
    """The card carries the paired held-out difference (new - parent Dice on the same tumour images)
    and its bootstrap interval; the per-image Dice behind it stays out of logs and card."""
    import csv

    from model.card import load_model
    from training.train import main
    from training.validation import held_out_gain

    data = make_export(tmp_path / "export", 6)
    with open(data / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(data / "manifest.csv", "w", newline="") as f:  # three held-out cases, not one
        w = csv.writer(f)
        w.writerow(["id", "split"])
        w.writerows([r["id"], "val" if i >= 3 else "train"] for i, r in enumerate(rows))
    assert main(["--data", str(data), "--epochs", "1", "--out", str(tmp_path / "p"), "--model-id", "p", *FAST]) == 0
    parent = _last_json(capsys.readouterr().out)["model"]
    assert main(["--data", str(data), "--epochs", "2", "--lr", "3e-3", "--out", str(tmp_path / "f"), "--model-id", "f",
                 "--init", parent, "--parent-blend", "1", *FAST]) == 0
    out = capsys.readouterr().out
    done = _last_json(out)
    m = load_model(done["model"])[1]["metrics"]
    assert done["metrics"]["val_dice_gain_ci95"] == m["val_dice_gain_ci95"]  # what the Train dialog reads
    assert m["val_dice_gain_n"] == 3
    assert m["val_dice_gain"] == pytest.approx(m["val_dice"] - m["parent_val_dice"], abs=1e-9)
    lo, hi = m["val_dice_gain_ci95"]
    assert lo <= m["val_dice_gain"] <= hi
    assert "case_dice" not in out and "case_dice" not in (tmp_path / "f" / "log.jsonl").read_text()
    assert "case_dice" not in json.dumps(m)
    # no interval without two paired tumour images, or across groups (val_dice is then a mean of groups)
    assert held_out_gain({"case_dice": [0.5]}, {"case_dice": [0.4]}) is None
    assert held_out_gain({"case_dice": [0.5, 0.6]}, {"case_dice": [0.4]}) is None
    assert held_out_gain({"case_dice": [0.5, 0.6], "val_dice_a": 1, "val_dice_b": 1},
                         {"case_dice": [0.4, 0.5]}) is None
    g = held_out_gain({"case_dice": [0.9, 0.5, 0.7]}, {"case_dice": [0.8, 0.4, 0.6]})
    assert g["val_dice_gain"] == pytest.approx(0.1) and g["val_dice_gain_ci95"] == pytest.approx([0.1, 0.1])
