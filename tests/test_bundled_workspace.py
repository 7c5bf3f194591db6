"""A clinician's own workspace predicts with the bundled model (issue 14, item 1).

Why: only the demo workspace used to register resources/models/adf-tiny, so every case of a new
workspace showed "Prediction failed: No model is active" and Model versions offered no way out.
DESIGN.md: a workspace always has an active model; without one, the bundled model is registered
and activated on create or open (a read-only workspace predicts with it without registering).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from tests.conftest import ROOT
from tests.viewer_fixtures import FakePredictor, gui_workspace, make_window, pair_folder  # noqa: F401
from training.store import Workspace

BUNDLED = ROOT / "resources" / "models" / "adf-tiny.json"
BUNDLED_ID = json.loads(BUNDLED.read_text(encoding="utf-8"))["id"]


def demo_pairs(dest: Path, names: tuple[str, ...] = ("vf_0056", "vf_0063")) -> Path:
    """Real laryngeal WLI + (synthetic) NBI pairs from the bundled demo, as a clinician's folder."""
    dest.mkdir(parents=True)
    for name in names:
        for kind in ("wli", "nbi"):
            shutil.copyfile(ROOT / "resources" / "demo" / f"{name}_{kind}.jpg", dest / f"{name}_{kind}.jpg")
    return dest


def test_cli_import_into_a_new_workspace_activates_the_bundled_model_and_says_so(tmp_path: Path, capsys) -> None:
    from training.importer import main

    src = demo_pairs(tmp_path / "src", ("vf_0056",))
    ws_root = tmp_path / "new-ws"
    assert main([str(src), "--workspace", str(ws_root), "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["imported"] == 1 and out["active_model"] == BUNDLED_ID
    with Workspace.open(ws_root) as ws:
        assert [(m["id"], m["active"]) for m in ws.models()] == [(BUNDLED_ID, True)]
        path = ws.active_model_path()
        assert path == ws_root / "models" / f"{BUNDLED_ID}.json"
        assert path.with_suffix(".safetensors").read_bytes() == BUNDLED.with_suffix(".safetensors").read_bytes()
        ws.register_model(_other_model(tmp_path), activate=True)  # the clinic's own model
    # importing more never replaces a model the clinic made active
    more = demo_pairs(tmp_path / "more", ("vf_0063",))
    assert main([str(more), "--workspace", str(ws_root), "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["active_model"] == "clinic-1"
    with Workspace.open(ws_root) as ws:
        assert ws.active_model_id() == "clinic-1"


def _other_model(tmp_path: Path) -> Path:
    d = tmp_path / "clinic"
    d.mkdir()
    (d / "clinic-1.json").write_text(json.dumps({"id": "clinic-1"}))
    (d / "clinic-1.safetensors").write_bytes(b"clinic weights")
    return d / "clinic-1.json"


def test_ensure_active_model_keeps_an_active_model_and_leaves_read_only_alone(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    with Workspace.open(root, create=True) as ws:
        assert ws.active_model_id() is None
    with mock.patch("training.store.workspace.os.access", return_value=False), Workspace.open(root) as ws:
        assert ws.readonly and ws.ensure_active_model() is None
    with Workspace.open(root) as ws:
        assert ws.models() == []  # nothing was written by the read-only open
        assert ws.ensure_active_model() == BUNDLED_ID
        ws.register_model(_other_model(tmp_path), activate=True)
        assert ws.ensure_active_model() == "clinic-1"
        assert [(m["id"], m["active"]) for m in ws.models()] == [(BUNDLED_ID, False), ("clinic-1", True)]
        n_events = len(ws.events())
        assert ws.ensure_active_model() == "clinic-1" and len(ws.events()) == n_events
        with pytest.raises(Exception, match="not found"):
            Workspace.open(tmp_path / "ws2", create=True).ensure_active_model(tmp_path / "missing.json")


def _real_window(qtbot, tmp_path: Path):
    """The real window with the real predictor (no predictor factory given)."""
    from viewer.app import make_app, settings_at
    from viewer.main_window import MainWindow

    make_app()
    win = MainWindow(settings_at(tmp_path / "settings.ini"), device="cpu", author="dr.test")
    qtbot.addWidget(win)
    win.resize(1400, 800)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=3000)
    return win


def test_new_workspace_then_import_shows_the_bundled_models_overlay(qtbot, tmp_path: Path, monkeypatch) -> None:
    """File ▸ New workspace, File ▸ Import pairs (the dialog), and the first case is predicted by the
    real bundled model: its overlay is on screen and its prediction is cached under its id."""
    from PySide6.QtWidgets import QFileDialog

    from viewer.dialogs import ImportDialog

    src = demo_pairs(tmp_path / "clinic-pairs")
    ws_root = tmp_path / "my-workspace"
    ws_root.mkdir()
    chosen = iter([str(ws_root), str(src)])  # the folder for New workspace, then the folder to import
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *_a, **_k: next(chosen)))
    win = _real_window(qtbot, tmp_path)
    shown: list[str] = []
    failed: list[str] = []
    win.predictionShown.connect(shown.append)
    win.predictionFailed.connect(lambda _c, msg: failed.append(msg))

    qtbot.keyClick(win, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)   # File ▸ New workspace
    assert win.ws is not None and win.ws.root == ws_root.resolve()
    assert win.ws.active_model_id() == BUNDLED_ID

    report: list[str] = []

    def drive_import_dialog() -> None:
        dlg = QApplication.activeModalWidget()
        if not isinstance(dlg, ImportDialog):
            QTimer.singleShot(50, drive_import_dialog)
            return
        qtbot.mouseClick(dlg.folder_btn, Qt.MouseButton.LeftButton)   # picks `src` (patched dialog)
        qtbot.waitUntil(lambda: dlg.summary is not None or "failed" in dlg.report.toPlainText(), timeout=60000)
        report.append(dlg.report.toPlainText())
        dlg.reject()

    QTimer.singleShot(0, drive_import_dialog)
    qtbot.keyClick(win, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)   # File ▸ Import pairs (modal)
    assert report and report[0].startswith("Imported 2 case(s)"), report
    assert win.worklist_model.rowCount() == 2
    if win.current_case_id is None:
        win.next_case()
    qtbot.waitUntil(lambda: bool(shown) or bool(failed), timeout=120000)
    assert not failed, failed
    case_id = win.current_case_id
    assert shown[-1] == case_id
    s = win.current_session()
    assert s.model_id == BUNDLED_ID and s.mask_source == "model" and s.mask.any()
    painted = win.pair.overlay.bgra[..., 3] > 0
    assert painted.sum() > 0 and painted[s.mask.astype(bool)].mean() > 0.0
    assert win.device_label.text().startswith("CPU") and BUNDLED_ID in win.model_status_label.text()
    cached = win.ws.cached_prediction(case_id, BUNDLED_ID)
    assert cached is not None and np.array_equal(cached, s.prob)


def test_open_workspace_registers_the_bundled_model_and_read_only_predicts_without(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    loaded: list[Path | None] = []

    def factory(path, _device):
        loaded.append(path)
        return FakePredictor()

    win = make_window(qtbot, tmp_path, FakePredictor())
    win.predictor_factory = factory
    # read-only first: predicts with the bundled files, registers nothing
    with mock.patch("training.store.workspace.os.access", return_value=False):
        assert win.open_workspace(gui_workspace)
        assert win.ws.readonly
        qtbot.waitUntil(lambda: bool(loaded), timeout=10000)
    assert loaded[-1] == BUNDLED
    with Workspace.open(gui_workspace) as ws:
        assert ws.models() == []
    # File ▸ Open workspace on the same folder, writable now: the bundled model is registered and active
    from PySide6.QtWidgets import QFileDialog

    with mock.patch.object(QFileDialog, "getExistingDirectory", return_value=str(gui_workspace)):
        qtbot.keyClick(win, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert not win.ws.readonly
    qtbot.waitUntil(lambda: len(loaded) == 2, timeout=10000)
    assert loaded[-1] == gui_workspace.resolve() / "models" / f"{BUNDLED_ID}.json"
    with Workspace.open(gui_workspace) as ws:
        assert [(m["id"], m["active"]) for m in ws.models()] == [(BUNDLED_ID, True)]


def test_models_dialog_adds_a_checked_model_file_and_explains_a_bad_one(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    from viewer.models_dialog import ModelsDialog

    win = make_window(qtbot, tmp_path, FakePredictor())
    assert win.open_workspace(gui_workspace)
    assert win.ws.active_model_id() == BUNDLED_ID
    dlg = ModelsDialog(win.ws.models(), win, workspace_root=win.ws.root)
    qtbot.addWidget(dlg)
    assert dlg.add_btn.isEnabled() and dlg.table.rowCount() == 1
    # a card whose weights were replaced: refused, nothing registered
    bad = tmp_path / "bad"
    bad.mkdir()
    card = json.loads(BUNDLED.read_text(encoding="utf-8"))
    card["id"], card["weights"] = "corrupt-1", "corrupt-1.safetensors"
    (bad / "corrupt-1.json").write_text(json.dumps(card))
    data = bytearray(BUNDLED.with_suffix(".safetensors").read_bytes())
    data[-100:] = b"\0" * 100
    (bad / "corrupt-1.safetensors").write_bytes(bytes(data))
    # a JSON file that is not a model card
    (bad / "notes.json").write_text(json.dumps({"hello": 1}))
    (bad / "notes.safetensors").write_bytes(b"x")
    for path, reason in ((bad / "corrupt-1.safetensors", "sha256 mismatch"), (bad / "notes.json", "lacks")):
        dlg.add_model_file(path)
        assert dlg.wait_done()
        qtbot.waitUntil(lambda: dlg.add_btn.isEnabled())
        assert dlg.message.text().startswith(f"Cannot add {path.name}:") and reason in dlg.message.text()
    with Workspace.open(gui_workspace) as ws:
        assert [m["id"] for m in ws.models()] == [BUNDLED_ID]
    # a good model file (another id, a copy of the bundled weights): registered, not activated
    good = tmp_path / "good"
    good.mkdir()
    card["id"], card["weights"] = "clinic-2", "clinic-2.safetensors"
    (good / "clinic-2.json").write_text(json.dumps(card))
    shutil.copyfile(BUNDLED.with_suffix(".safetensors"), good / "clinic-2.safetensors")
    from PySide6.QtWidgets import QFileDialog

    with mock.patch.object(QFileDialog, "getOpenFileName", return_value=(str(good / "clinic-2.json"), "")):
        qtbot.mouseClick(dlg.add_btn, Qt.MouseButton.LeftButton)
    assert dlg.wait_done()
    qtbot.waitUntil(lambda: dlg.table.rowCount() == 2)
    assert "clinic-2 is registered" in dlg.message.text() and dlg.selected_id() == "clinic-2"
    with Workspace.open(gui_workspace) as ws:
        assert [(m["id"], m["active"]) for m in ws.models()] == [(BUNDLED_ID, True), ("clinic-2", False)]
    activated: list[str] = []
    dlg.activated.connect(activated.append)
    qtbot.mouseClick(dlg.activate_btn, Qt.MouseButton.LeftButton)
    assert activated == ["clinic-2"]
