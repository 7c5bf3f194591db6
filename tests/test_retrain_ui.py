"""GUI tests of issue 7's app side: Train dialog (real subprocess), cancel, model versions, Export dialog."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.viewer_fixtures import FakePredictor, make_window

FAST = ["--size", "64", "--val-size", "64", "--steps-per-epoch", "2", "--batch-size", "2", "--threads", "1"]


@pytest.fixture
def trainable_workspace(filled_workspace, tmp_path):
    """The 3 fixture cases (status corrected, imported masks) plus a random-init active base model."""
    import torch

    from model.adf import ADFNet
    from model.card import save_model
    from model.config import get_preset

    torch.manual_seed(0)
    cfg = get_preset("tiny")
    card = save_model(ADFNet(cfg).eval(), cfg, tmp_path / "base" / "adf-base", {"id": "adf-base"})
    filled_workspace.register_model(card, activate=True)
    return filled_workspace


def test_train_dialog_keeps_the_base_model_when_the_new_version_is_not_better(qtbot, trainable_workspace,
                                                                             tmp_path) -> None:
    """--lr 0 makes the new version equal to its base: not better on the held-out case, so it is
    registered but not activated, the dialog says so, and "Activate anyway" switches to it."""
    from viewer.train_dialog import TrainDialog

    ws = trainable_workspace
    win = make_window(qtbot, tmp_path, FakePredictor())
    assert win.open_workspace(ws.root)
    dlg = TrainDialog(ws.root, ws.models(), extra_args=[*FAST, "--lr", "0"])
    qtbot.addWidget(dlg)
    dlg.finishedWith.connect(win._on_training_finished)
    dlg.activateRequested.connect(win.activate_model)
    dlg.show()
    qtbot.waitExposed(dlg)
    assert dlg.activate_btn.isHidden()
    dlg.epochs.setValue(1)
    assert "adf-base" in dlg.base.currentText()
    with qtbot.waitSignal(dlg.finishedWith, timeout=240000) as blocker:
        dlg.start_btn.click()
    result = blocker.args[0]
    assert result is not None, dlg.log.toPlainText()
    new_id = result["registered"]
    assert result["activated"] is False
    models = {m["id"]: m for m in ws.models()}
    assert new_id in models and not models[new_id]["active"] and models["adf-base"]["active"]
    assert new_id not in win.model_status_label.text()  # the window did not switch to it
    card = models[new_id]["card"]
    assert card.get("parent") and "adf-base" in json.dumps(card["parent"])
    # the default blend is chosen on the held-out cases (all blends alike at lr 0: the tie goes to 0.5)
    assert card["metrics"]["held_out_chose"].startswith("the parent blend")
    assert [c["blend"] for c in card["metrics"]["parent_blend_choice"]] == [0.25, 0.5, 0.75, 1.0]
    # the base model was scored on the same held-out case, and the dialog says how the new one compares
    log = dlg.log.toPlainText()
    assert card["metrics"]["val_dice"] == card["metrics"]["parent_val_dice"]
    assert isinstance(card["metrics"]["parent_val_dice"], float) and card["training"]["parent_blend"] == 0.5
    assert f"Base model on the 1 held-out cases: Dice {card['metrics']['parent_val_dice']:.3f}" in log
    assert "registered but NOT activated" in log and "not better than the base model's" in log
    assert ("The held-out cases scored every share alike, so its weights lie 50% of the way from the base model's to "
            "the fine-tuned ones, the default") in log  # lr 0: every share is the base model
    assert dlg.plot.loss, "the live plot received the epoch's loss"
    assert dlg.activate_btn.isVisible() and dlg.activate_btn.isEnabled()
    qtbot.mouseClick(dlg.activate_btn, Qt.MouseButton.LeftButton)
    assert [m["id"] for m in ws.models() if m["active"]] == [new_id]
    assert new_id in win.model_status_label.text()
    # The new model loads and predicts (the card and weights in the workspace are complete).
    from model.predictor import Predictor

    pred = Predictor.load(ws.active_model_path(), device="cpu")
    out = pred.predict(ws.load_wli(ws.cases()[0].id))
    assert out.mask.shape == (ws.cases()[0].height, ws.cases()[0].width)


def _train_one_epoch(qtbot, dlg):
    """Click Start on a Train dialog set to one epoch; (dialog, the trainer's done event)."""
    qtbot.addWidget(dlg)
    dlg.epochs.setValue(1)
    with qtbot.waitSignal(dlg.finishedWith, timeout=240000) as blocker:
        dlg.start_btn.click()
    result = blocker.args[0]
    assert result is not None, dlg.log.toPlainText()
    return dlg, result


def test_train_dialog_activates_a_version_with_no_base_to_compare_with(qtbot, filled_workspace) -> None:
    from viewer.train_dialog import TrainDialog

    ws = filled_workspace
    dlg, result = _train_one_epoch(qtbot, TrainDialog(ws.root, [], extra_args=FAST))
    assert result["activated"] is True and result["activation"] == "no parent to compare with"
    assert [m["id"] for m in ws.models() if m["active"]] == [result["registered"]]
    assert "registered and activated" in dlg.log.toPlainText() and dlg.activate_btn.isHidden()


def test_cancelling_training_leaves_no_half_model(qtbot, trainable_workspace) -> None:
    from viewer.train_dialog import TrainDialog

    ws = trainable_workspace
    before = {m["id"] for m in ws.models()}
    dlg = TrainDialog(ws.root, ws.models(), extra_args=FAST)
    qtbot.addWidget(dlg)
    dlg.epochs.setValue(50)
    dlg.start_btn.click()
    qtbot.waitUntil(lambda: "Training on" in dlg.log.toPlainText() or dlg.process.state() == 0, timeout=120000)
    with qtbot.waitSignal(dlg.finishedWith, timeout=30000) as blocker:
        dlg.cancel_btn.click()
    assert blocker.args[0] is None
    assert {m["id"] for m in ws.models()} == before
    assert [m["id"] for m in ws.models() if m["active"]] == ["adf-base"]
    assert dlg.out_dir is not None and not dlg.out_dir.exists()
    assert not list((ws.root / "models").glob("adf-ft-*"))


def test_models_dialog_activates_and_rolls_back_without_touching_revisions(qtbot, trainable_workspace, tmp_path) -> None:
    import torch

    from model.adf import ADFNet
    from model.card import save_model
    from model.config import get_preset
    from viewer.models_dialog import ModelsDialog

    ws = trainable_workspace
    torch.manual_seed(1)
    cfg = get_preset("tiny")
    parent = {"id": "adf-base", "sha256": "0" * 64, "path": "base/adf-base.json"}  # as the trainer writes it
    card = save_model(ADFNet(cfg).eval(), cfg, tmp_path / "v2" / "adf-v2",
                      {"id": "adf-v2", "parent": parent,
                       "metrics": {"val_dice": 0.5, "parent_val_dice": 0.45, "val_dice_gain": 0.05,
                                   "val_dice_gain_ci95": [-0.04, 0.13], "val_dice_gain_n": 5}})
    ws.register_model(card, activate=True)
    revs_before = {c.id: [r.sha256 for r in ws.history(c.id)] for c in ws.cases()}
    win = make_window(qtbot, tmp_path, FakePredictor())
    assert win.open_workspace(ws.root)
    dlg = ModelsDialog(win.ws.models(), win)
    qtbot.addWidget(dlg)
    assert dlg.table.rowCount() == 2 and dlg.table.item(1, 2).text() == "adf-base"
    assert dlg.table.item(1, 3).text() == "0.500 (parent 0.450)"
    assert dlg.table.item(1, 3).toolTip() == ("Difference +0.050 (95 % interval -0.040 to +0.130) over 5 held-out "
                                              "tumour cases: too few to tell the two apart.")
    assert dlg.table.item(0, 3).toolTip() == ""  # the base model: nothing to compare with
    dlg.activated.connect(win.activate_model)
    dlg.roll_back()
    assert [m["id"] for m in ws.models() if m["active"]] == ["adf-base"]
    assert "adf-base" in win.model_status_label.text()
    assert {c.id: [r.sha256 for r in ws.history(c.id)] for c in ws.cases()} == revs_before


def test_export_dialog_writes_the_dataset_off_the_ui_thread(qtbot, filled_workspace, tmp_path) -> None:
    from viewer.export_dialog import ExportDialog

    dlg = ExportDialog(filled_workspace.root)
    qtbot.addWidget(dlg)
    out = tmp_path / "export"
    dlg.out_edit.setText(str(out))
    dlg.format.setCurrentIndex(dlg.format.findData("nnunet"))
    dlg.export_btn.click()
    qtbot.waitUntil(lambda: dlg.summary is not None or "not written" in dlg.result_label.text(), timeout=60000)
    assert dlg.summary is not None, dlg.result_label.text()
    assert dlg.summary["cases"] == 3
    dataset = next(out.glob("Dataset*"))
    meta = json.loads((dataset / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "tumor": 1}
    import cv2

    labels = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in (dataset / "labelsTr").glob("*.png")]
    assert labels and set(np.unique(np.concatenate([x.ravel() for x in labels]))) <= {0, 1}
    # Zero cases: the dialog says so and writes nothing.
    dlg2 = ExportDialog(filled_workspace.root)
    qtbot.addWidget(dlg2)
    for cb in dlg2.statuses.values():
        cb.setChecked(False)
    dlg2.statuses["predicted"].setChecked(True)
    dlg2.out_edit.setText(str(tmp_path / "empty-export"))
    dlg2.export_btn.click()
    qtbot.waitUntil(lambda: "not written" in dlg2.result_label.text(), timeout=60000)
    assert not (tmp_path / "empty-export").exists()


def test_main_py_runs_the_training_cli_like_python_dash_m(tmp_path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "main.py"), "-m", "training", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "train" in proc.stdout and "export" in proc.stdout


def test_train_dialog_says_when_the_held_out_cases_cannot_tell_the_versions_apart(qtbot, trainable_workspace) -> None:
    """Two held-out cases and --lr 0 (the new version equals its base): the dialog's verdict carries
    the paired difference (0, an interval of 0 to 0: said as the same Dice), read from the card the trainer wrote."""
    from viewer.train_dialog import TrainDialog

    ws = trainable_workspace
    dlg, result = _train_one_epoch(
        qtbot, TrainDialog(ws.root, ws.models(), extra_args=[*FAST, "--lr", "0", "--val-fraction", "0.67"]))
    card = {m["id"]: m for m in ws.models()}[result["registered"]]["card"]
    assert card["metrics"]["val_dice_gain_n"] == 2 and card["metrics"]["val_dice_gain_ci95"] == [0.0, 0.0]
    assert "The two versions outline the 2 held-out tumour cases with the same Dice." in dlg.log.toPlainText()


def test_the_blend_sentence_tells_a_choice_from_a_tie(qtbot, trainable_workspace) -> None:
    from viewer.train_dialog import TrainDialog

    dlg = TrainDialog(trainable_workspace.root, trainable_workspace.models())
    qtbot.addWidget(dlg)
    chose = [{"blend": b, "score": sc} for b, sc in ((0.25, 0.7), (0.5, 0.8), (0.75, 0.9), (1.0, 0.85))]
    assert "75% of the way" in dlg._blend_summary(0.75, chose) and "that share scored best" in dlg._blend_summary(
        0.75, chose)
    assert "used as they are" in dlg._blend_summary(1.0, [{**c, "score": c["blend"]} for c in chose])
    tie = [{"blend": b, "score": 1.0} for b in (0.25, 0.5, 0.75, 1.0)]  # e.g. only tumour-free cases held out
    assert dlg._blend_summary(0.5, tie).startswith(" The held-out cases scored every share alike")
    assert "which forgets less" in dlg._blend_summary(0.5, None) and dlg._blend_summary(None, None) == ""


def test_held_out_summary_says_whether_the_new_version_beat_its_parent() -> None:
    from viewer.train_dialog import held_out_summary

    better = held_out_summary({"val_dice": 0.84, "parent_val_dice": 0.79})
    assert better == " Held-out Dice 0.840, better than the base model's 0.790 on the same cases."
    worse = held_out_summary({"val_dice": 0.78, "parent_val_dice": 0.79})
    assert "not better than the base model's 0.790" in worse and "roll back" in worse
    assert held_out_summary({"val_dice": 0.5}) == " Held-out Dice 0.500."
    assert held_out_summary({}) == ""
    assert held_out_summary({"val_dice": None, "val_fpr": 0.0}) == (
        " No tumour case was held out, so the two versions' tumour outlines were not compared.")
    # the trainer's paired interval (training.validation.held_out_gain): a "better" the cases cannot back
    lucky = held_out_summary({"val_dice": 0.84, "parent_val_dice": 0.79, "val_dice_gain": 0.05,
                              "val_dice_gain_ci95": [-0.02, 0.11], "val_dice_gain_n": 6})
    assert lucky == (" Held-out Dice 0.840, better than the base model's 0.790 on the same cases. Difference +0.050 "
                     "(95 % interval -0.020 to +0.110) over 6 held-out tumour cases: too few to tell the two apart.")
    clear = held_out_summary({"val_dice": 0.84, "parent_val_dice": 0.69, "val_dice_gain": 0.15,
                              "val_dice_gain_ci95": [0.08, 0.22], "val_dice_gain_n": 12})
    assert clear.endswith("Difference +0.150 (95 % interval +0.080 to +0.220) over 12 held-out tumour cases.")


def test_live_plot_labels_the_loss_on_its_own_scale(qtbot) -> None:
    """The loss is drawn to its own maximum; that maximum is painted in the loss's colour on the
    right, and Dice's 0-1 on the left in Dice's colour (a flat loss is not read as Dice 1.0)."""
    import qimage2ndarray

    from viewer import i18n
    from viewer.train_dialog import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(400, 180)
    assert plot.axis_labels()["loss_top"] == ""  # nothing to scale yet
    for loss, dice in ((0.25, 0.4), (0.18, 0.6), (0.12, 0.7)):
        plot.add(loss, dice)
    labels = plot.axis_labels()
    assert labels["loss_top"] == i18n.number(0.25, 3) and labels["dice_top"] == i18n.number(1.0, 1)
    qimg = plot.grab().toImage()
    img = qimage2ndarray.rgb_view(qimg).copy()  # a view into qimg: keep qimg alive while copying

    def has(colour, cols: slice) -> bool:
        c = colour.red(), colour.green(), colour.blue()
        return bool((np.abs(img[:30, cols].astype(int) - c).sum(-1) < 40).any())

    assert has(LossPlot.LOSS_COLOUR, slice(-40, None)), "the loss's top value is painted on the right"
    assert has(LossPlot.DICE_COLOUR, slice(0, 30)), "Dice's 1.0 is painted on the left in Dice's colour"
    assert not has(LossPlot.LOSS_COLOUR, slice(0, 30))
