"""File ▸ Import video… (issue 20): the real dialog, driven offscreen, checked on the workspace."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from tests.video_fixtures import Shot, short_shots, write_recording
from tests.viewer_fixtures import FakePredictor, make_window
from training.store import Workspace

FPS = 25.0


def _dialog(qtbot, ws_dir: Path, tmp_path: Path):
    from viewer.video_import_dialog import VideoImportDialog

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    dlg = VideoImportDialog(ws_dir, settings=settings)
    qtbot.addWidget(dlg)
    return dlg, settings


def test_dialog_imports_in_the_background_with_its_settings_and_sums_up(qtbot, tmp_path) -> None:
    video = write_recording(tmp_path / "recordings" / "P3" / "lx.mp4", short_shots(FPS), fps=FPS).path
    ws_dir = tmp_path / "ws"
    Workspace.open(ws_dir, create=True).close()
    dlg, settings = _dialog(qtbot, ws_dir, tmp_path)
    assert not dlg.keep_text_box.isChecked() and not dlg.wli_only_box.isChecked()   # defaults
    dlg.wli_only_box.setChecked(True)
    with qtbot.waitSignal(dlg.finishedWith, timeout=120000) as blocker:
        dlg.start([tmp_path / "recordings"])   # what "Choose a folder…" hands over
        assert not dlg.choose_btn.isEnabled() and dlg.cancel_btn.isEnabled()   # busy, cancellable
    summary = blocker.args[0]
    assert isinstance(summary, dict), summary
    text = dlg.report.toPlainText()
    assert "Imported 2 case(s) (1 WLI/NBI pair(s), 1 WLI-only)" in text
    assert "lx.mp4: 1 pair(s) from 1 NBI segment(s), patient P3" in text
    assert settings.value("video/wli_only") in (True, "true")      # the choice is remembered
    with Workspace.open(ws_dir) as ws:
        cases = ws.cases()
        assert len(cases) == 2 and {c.patient_id for c in cases} == {"P3"}
        assert sorted(c.nbi_path is None for c in cases) == [False, True]
        assert all(ws.video_source(c.id)["video_path"] == str(video.resolve()) for c in cases)
    dlg2, _ = _dialog(qtbot, ws_dir, tmp_path)
    assert dlg2.wli_only_box.isChecked()


def test_cancel_in_the_dialog_imports_nothing(qtbot, tmp_path) -> None:
    video = write_recording(tmp_path / "long.mp4", [Shot("wli", 150, 0), Shot("nbi", 150, 0)], fps=FPS).path
    ws_dir = tmp_path / "ws"
    Workspace.open(ws_dir, create=True).close()
    dlg, _ = _dialog(qtbot, ws_dir, tmp_path)
    with qtbot.waitSignal(dlg.finishedWith, timeout=120000) as blocker:
        dlg.start([video])
        qtbot.waitUntil(lambda: "decode" in dlg.stage.text(), timeout=60000)   # decoding has begun
        dlg.cancel()
    summary = blocker.args[0]
    assert summary["cancelled"] and summary["imported"] == 0
    assert "Cancelled" in dlg.report.toPlainText()
    with Workspace.open(ws_dir) as ws:
        assert ws.case_count() == 0 and ws.video_sources() == {}
    assert not list((ws_dir / "images").iterdir())


def test_file_menu_import_video_fills_the_worklist_with_video_times(qtbot, tmp_path, monkeypatch) -> None:
    from PySide6.QtCore import Qt

    from viewer import video_import_dialog
    from viewer.worklist import VIDEO_COL

    video = write_recording(tmp_path / "lx.mp4", short_shots(FPS), fps=FPS).path
    ws_dir = tmp_path / "ws"
    Workspace.open(ws_dir, create=True).close()

    def run_instead_of_exec(self) -> int:       # the modal loop, replaced by: import, wait, close
        self.start([video])
        qtbot.waitUntil(lambda: self.summary is not None, timeout=120000)
        return 0

    monkeypatch.setattr(video_import_dialog.VideoImportDialog, "exec", run_instead_of_exec)
    win = make_window(qtbot, tmp_path, FakePredictor())
    assert win.open_workspace(ws_dir)
    action = next(a for a in win.menuBar().actions()[0].menu().actions() if a.text() == "Import video…")
    action.trigger()
    model = win.worklist_model
    assert model.rowCount() == 1
    with Workspace.open(ws_dir) as ws:
        prov = ws.video_source(model.case_at(0).id)
    shown = model.data(model.index(0, VIDEO_COL), Qt.ItemDataRole.DisplayRole)
    t = prov["wli_time_s"]
    assert shown == f"{int(t // 60)}:{t % 60:04.1f}"
    tip = model.data(model.index(0, VIDEO_COL), Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith(f"lx.mp4: WLI frame {prov['wli_frame']}") and f"NBI frame {prov['nbi_frame']}" in tip
    assert not win.worklist.isColumnHidden(VIDEO_COL)  # shown once a case came from a video
