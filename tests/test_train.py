"""training.train: a 1-epoch run on a fixture workspace gives a loadable model with a complete
card (resume: test_train_resume.py; DDP: test_train_ddp.py). Helpers here are shared by those."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import torch

from tests.conftest import make_fixture_pairs

# tiny, fast settings shared by the tests: 64 px, batch 2
FAST = ["--input-size", "64", "--batch-size", "2", "--no-tqdm", "--threads", "1", "--workers", "0"]
# one thread: on a shared, oversubscribed CPU two OpenMP threads can be many times slower


def _last_json(text: str) -> dict:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return json.loads(lines[-1])


def make_export(dest: Path, n: int = 4) -> Path:
    """An exported-dataset folder (images/<id>_wli.png, _nbi.png, masks/<id>.png, manifest.csv)."""
    import cv2

    pairs = dest / "pairs"
    names = make_fixture_pairs(pairs, n)
    (dest / "images").mkdir(parents=True)
    (dest / "masks").mkdir()
    with open(dest / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "split"])
        for i, name in enumerate(names):
            wli = cv2.imread(str(next(pairs.glob(f"{name}_wli.*"))))
            cv2.imwrite(str(dest / "images" / f"{name}_wli.png"), wli)
            shutil.copyfile(pairs / f"{name}_nbi.png", dest / "images" / f"{name}_nbi.png")
            shutil.copyfile(pairs / f"{name}_mask.png", dest / "masks" / f"{name}.png")
            w.writerow([name, "val" if i == n - 1 else "train"])
    shutil.rmtree(pairs)
    return dest


def test_one_epoch_on_workspace_gives_loadable_model_with_complete_card(filled_workspace, tmp_path, capsys):
    from model.card import load_model
    from training.train import main

    out = tmp_path / "run"
    rc = main(["--data", str(filled_workspace.root), "--epochs", "1", "--out", str(out),
               "--model-id", "ws-ft-1", "--val-fraction", "0.34", "--progress-every", "1e-6", *FAST])
    assert rc == 0
    stdout = capsys.readouterr().out
    done = _last_json(stdout)
    assert done["event"] == "done"
    # every stdout line is one JSON object (the Train dialog parses them)
    events = [json.loads(ln)["event"] for ln in stdout.strip().splitlines()]
    assert events[0] == "start" and "epoch" in events and "step" in events
    net, card = load_model(done["model"])
    assert card["id"] == "ws-ft-1"
    assert card["input_size"] == 64
    for key in ("training_data", "command", "parent", "metrics", "machine", "training", "sha256", "config"):
        assert key in card, key
    td = card["training_data"]
    assert td["kind"] == "workspace"
    assert td["train"]["n_items"] + td["val"]["n_items"] == 3
    assert len(td["train"]["case_list_sha256"]) == 64
    assert card["command"].startswith("python -m training train --data ")
    assert card["parent"] is None
    assert card["test_time_flips"] == ["none", "h"]  # the trainer's default views for the predictor
    assert 0.0 <= card["metrics"]["val_dice"] <= 1.0
    assert card["training"]["epochs_done"] == 1 and card["training"]["images_seen"] == td["train"]["n_items"]
    # the run's log is JSON lines with the per-epoch numbers
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert "step" not in {r["event"] for r in log}  # progress lines are for stdout only
    ep = [r for r in log if r["event"] == "epoch"][0]
    for key in ("epoch", "loss_total", "loss_bce", "loss_dice", "val_dice", "lr", "images_per_s", "seconds"):
        assert key in ep, key
    # registered in the workspace it came from
    assert done["registered"] == "ws-ft-1"
    assert any(m.get("id") == "ws-ft-1" for m in filled_workspace.models())
    # the model predicts (eval mode, right shape)
    with torch.no_grad():
        o = net(torch.zeros(1, 3, 64, 64))
    assert o.logits.shape == (1, 1, 64, 64)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    from training.train import main

    data = make_export(tmp_path / "export", 2)
    rc = main(["--data", str(data), "--epochs", "1", "--out", str(tmp_path / "none"), "--resume", *FAST])
    assert rc == 2
    msg = _last_json(capsys.readouterr().out)
    assert msg["event"] == "error" and "no checkpoint" in msg["message"]


def test_bad_tta_flips_is_a_clear_error(tmp_path, capsys):
    from training.train import main

    rc = main(["--data", str(tmp_path / "unused"), "--epochs", "1", "--out", str(tmp_path / "run"),
               "--tta-flips", "none,sideways", *FAST])
    assert rc == 2
    msg = _last_json(capsys.readouterr().out)
    assert msg["event"] == "error" and "--tta-flips" in msg["message"] and "sideways" in msg["message"]
    assert not (tmp_path / "run").exists()


def test_lr_schedule_warmup_follows_the_time_budget_too():
    from training.train import lr_factor

    # steps govern: linear warm-up over warmup_steps, then poly decay to 1 % of the peak
    assert lr_factor(0.0, 0, 100, 0.05) == 0.01
    assert abs(lr_factor(0.0, 49, 100, 0.05) - 0.5) < 1e-9
    assert abs(lr_factor(0.5, 100, 100, 0.05) - 0.5 ** 0.9) < 1e-9
    assert lr_factor(1.0, 10_000, 100, 0.05) == 0.01
    # a time budget far shorter than the planned steps: 5 % of the budget has passed after only
    # 30 of 600 warm-up steps; the warm-up is over, as its share promises
    assert abs(lr_factor(0.05, 30, 600, 0.05) - 0.95 ** 0.9) < 1e-9
    assert abs(lr_factor(0.025, 30, 600, 0.05) - 0.5 * 0.975 ** 0.9) < 1e-9


def test_run_progress_follows_the_steps_or_the_time_budget():
    from training.schedule import run_progress

    assert run_progress(5, 10, 0.0, None, 2) == 0.5
    assert run_progress(5, 10, 90.0, 100.0, 2) == 0.9   # the budget is further along
    assert run_progress(5, 10, 10.0, 100.0, 2) == 0.5   # the steps are
    assert run_progress(5, 10, 10.0, 100.0, 0) == 0.1   # --epochs 0: the budget alone
    assert run_progress(30, 10, 500.0, 100.0, 2) == 1.0


def test_cuda_requested_without_cuda_is_refused(tmp_path, capsys, monkeypatch) -> None:
    """The trainer uses the app's device rule without its CPU fallback: --device cuda on a machine
    without a usable CUDA stops with one error line before anything is built or written."""
    from training.train import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc = main(["--data", str(tmp_path / "nothing"), "--device", "cuda", "--out", str(tmp_path / "run"), "--no-tqdm"])
    assert rc == 2
    err = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert err["event"] == "error" and err["message"].startswith("--device cuda: CUDA requested but not available: ")
    assert not (tmp_path / "run").exists()


def test_fn_weight_trains_for_sensitivity_and_is_in_the_card(filled_workspace, tmp_path):
    """--fn-weight (Tversky): the same short run with misses weighted 0.9 outlines more of the
    lesions than with the Dice loss (0.5), and the card says which overlap loss trained it."""
    import numpy as np

    from model.card import load_model
    from training.train import main

    def run(name: str, weight: str) -> tuple[float, dict]:
        out = tmp_path / name
        rc = main(["--data", str(filled_workspace.root), "--epochs", "3", "--out", str(out), "--model-id", name,
                   "--val-fraction", "0", "--lr", "3e-3", "--seed", "5", "--fn-weight", weight, *FAST])
        assert rc == 0
        net, card = load_model(out / f"{name}.json")
        ds_masks, inputs = [], []
        from training.data import WorkspaceDataset

        ds = WorkspaceDataset(filled_workspace.root, size=64, train=False)
        for i in range(len(ds)):
            item = ds[i]
            inputs.append(item["wli"])
            ds_masks.append(item["mask"])
        with torch.no_grad():
            prob = torch.sigmoid(net(torch.stack(inputs)).logits)
        mask = torch.stack(ds_masks).float().view_as(prob)
        sensitivity = float((prob * mask).sum() / mask.sum())
        return sensitivity, card

    dice_sens, dice_card = run("dice", "0.5")
    recall_sens, recall_card = run("recall", "0.9")
    assert recall_sens > dice_sens + 0.02, (recall_sens, dice_sens)
    assert dice_card["training"]["overlap_loss"] == {"kind": "dice", "fn_weight": 0.5}
    assert recall_card["training"]["overlap_loss"] == {"kind": "tversky", "fn_weight": 0.9}
    assert "--fn-weight 0.9" in recall_card["command"]
    assert np.isfinite(recall_sens)


def test_fn_weight_outside_0_1_is_refused(tmp_path, capsys):
    from training.train import main

    data = make_export(tmp_path / "export", 2)
    rc = main(["--data", str(data), "--epochs", "1", "--out", str(tmp_path / "run"), "--fn-weight", "1", *FAST])
    assert rc == 2
    assert "--fn-weight" in _last_json(capsys.readouterr().out)["message"]


def test_the_time_budget_counts_the_time_spent_loading_batches(filled_workspace, tmp_path, monkeypatch, capsys):
    """--max-minutes is wall time: a run whose batches take long to load (augmentation on the main
    process) stops at its budget, not after budget / (share of time spent in the network)."""
    import time

    from training.data import WorkspaceDataset
    from training.train import main

    slow_getitem = WorkspaceDataset.__getitem__

    def getitem(self, i):
        time.sleep(0.4)
        return slow_getitem(self, i)

    monkeypatch.setattr(WorkspaceDataset, "__getitem__", getitem)
    t0 = time.monotonic()
    rc = main(["--data", str(filled_workspace.root), "--epochs", "50", "--max-minutes", "0.05", "--out",
               str(tmp_path / "run"), "--model-id", "budget", "--val-fraction", "0", *FAST])
    wall = time.monotonic() - t0
    assert rc == 0
    done = _last_json(capsys.readouterr().out)
    assert done["stopped_by"] == "time budget"
    # 3 s of budget at >= 0.8 s of loading per batch of 2: a handful of steps, not 50 epochs
    card = json.loads((tmp_path / "run" / "budget.json").read_text())
    assert card["training"]["epochs_done"] <= 3, card["training"]["epochs_done"]
    assert wall < 60
