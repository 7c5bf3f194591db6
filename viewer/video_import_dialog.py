"""File ▸ Import video…: endoscopy recordings -> WLI/NBI cases, in a background thread.

The work is ``training.video_import.import_videos`` (Qt-free); this file only picks the files,
holds the two settings (WLI-only cases, keep burned-in text; remembered in the app's QSettings),
shows progress, cancels and sums up. A cancel is honoured between videos and inside the decode
of one; a video's cases are written only once it has been analysed whole, so a cancel never
leaves half a video in the workspace.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QSettings, QThread, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from model.i18n_marks import QT_TRANSLATE_NOOP
from viewer import i18n

VIDEO_FILTER = QT_TRANSLATE_NOOP("VideoImportDialog",
                                 "Videos (*.mp4 *.m4v *.avi *.mov *.mkv *.mpg *.mpeg *.webm *.wmv);;All files (*)")


class _VideoImportThread(QThread):
    progress = Signal(str, int, int)
    finishedWith = Signal(object)   # dict summary or an exception

    def __init__(self, workspace_root: Path, videos: list[Path], settings: Any) -> None:
        super().__init__()
        self.workspace_root = workspace_root
        self.videos = videos
        self.settings = settings
        self.cancel_event = threading.Event()

    def run(self) -> None:  # noqa: D401
        from training.store import Workspace
        from training.video_import import find_videos, import_videos

        try:
            with Workspace.open(self.workspace_root) as ws:
                summary = import_videos(ws, find_videos(self.videos), self.settings,
                                        progress=lambda s, d, t: self.progress.emit(s, d, t),
                                        cancel=self.cancel_event.is_set)
                summary["cases"] = ws.case_count()
            self.finishedWith.emit(summary)
        except Exception as exc:  # noqa: BLE001 - reported in the dialog
            self.finishedWith.emit(exc)


def summary_text(summary: dict) -> str:
    """What the import did, in a few lines (also what the tests read)."""
    v = summary["video"]
    lines = []
    if summary.get("cancelled"):
        lines.append(QCoreApplication.translate("VideoImportDialog", "Cancelled: the video being analysed was not imported."))
    lines.append(QCoreApplication.translate("VideoImportDialog", "Imported {n} case(s) ({pairs} WLI/NBI pair(s), {wli_only} WLI-only); the workspace now holds "
                    "{total}.").format(n=i18n.integer(summary["imported"]), pairs=i18n.integer(v["pairs"]),
                                       wli_only=i18n.integer(v["wli_only"]), total=summary.get("cases", "?")))
    lines.append(QCoreApplication.translate("VideoImportDialog", "Frames: {frames} — WLI {wli}, NBI {nbi}, unusable {unusable}.").format(
        frames=i18n.integer(v["frames"]), wli=i18n.integer(v["wli"]), nbi=i18n.integer(v["nbi"]),
        unusable=i18n.integer(v["unusable"])))
    for entry in v["videos"]:
        name = Path(entry["path"]).name
        if "skipped" in entry:
            lines.append("  • " + QCoreApplication.translate("VideoImportDialog", "{name}: not imported — {reason}").format(name=name, reason=entry["skipped"]))
        else:
            extra = ""
            if entry.get("nbi_segments_without_pair"):
                extra = QCoreApplication.translate("VideoImportDialog", "; {n} NBI segment(s) without a registrable WLI partner").format(
                    n=entry["nbi_segments_without_pair"])
            lines.append("  • " + QCoreApplication.translate("VideoImportDialog", "{name}: {pairs} pair(s) from {segments} NBI segment(s), patient {patient}").format(
                name=name, pairs=entry["pairs"], segments=entry["nbi_segments"], patient=entry["patient_id"]) + extra)
    others = [s for s in summary["skipped"] if not any(s["path"] == e["path"] for e in v["videos"])]
    if others:
        lines.append(QCoreApplication.translate("VideoImportDialog", "Skipped {n} case(s):").format(n=i18n.integer(len(others))))
        lines += [f"  • {s['path']}: {i18n.error_text(s['reason'])}" for s in others]
    return "\n".join(lines)


class VideoImportDialog(QDialog):
    """Pick videos, choose the two settings, import in the background with progress and cancel."""

    finishedWith = Signal(object)

    def __init__(self, workspace_root: Path, parent: QWidget | None = None,
                 settings: QSettings | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Import endoscopy videos"))
        self.workspace_root = Path(workspace_root)
        self.app_settings = settings
        self.summary: dict[str, Any] | None = None
        lay = QVBoxLayout(self)
        intro = QLabel(self.tr(
            "Every frame is classified as white light, NBI or unusable from its content; the sharpest NBI "
            "frames are paired with the nearest sharp white-light frame of the same scene and kept only when "
            "their registration holds. Patient id: the sub-folder of the chosen folder, else the file name."))
        intro.setWordWrap(True)
        lay.addWidget(intro)
        self.wli_only_box = QCheckBox(self.tr("Also import white-light-only cases from scenes never seen in NBI"))
        self.keep_text_box = QCheckBox(self.tr("Keep burned-in text (patient name, date); by default it is blacked out"))
        lay.addWidget(self.wli_only_box)
        lay.addWidget(self.keep_text_box)
        if settings is not None:
            self.wli_only_box.setChecked(str(settings.value("video/wli_only", "false")).lower() == "true")
            self.keep_text_box.setChecked(str(settings.value("video/keep_text", "false")).lower() == "true")
        row = QHBoxLayout()
        self.choose_btn = QPushButton(self.tr("Choose videos…"))
        self.folder_btn = QPushButton(self.tr("Choose a folder (one sub-folder per patient)…"))
        row.addWidget(self.choose_btn)
        row.addWidget(self.folder_btn)
        lay.addLayout(row)
        self.stage = QLabel("")
        lay.addWidget(self.stage)
        self.progress = QProgressBar()
        self.progress.hide()
        lay.addWidget(self.progress)
        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        lay.addWidget(self.report, 1)
        bb = QDialogButtonBox()
        self.cancel_btn = bb.addButton(self.tr("Cancel import"), QDialogButtonBox.ButtonRole.ActionRole)
        self.cancel_btn.setEnabled(False)
        close = bb.addButton(QDialogButtonBox.StandardButton.Close)
        close.clicked.connect(self.reject)
        lay.addWidget(bb)
        self.choose_btn.clicked.connect(self._choose)
        self.folder_btn.clicked.connect(self._choose_folder)
        self.cancel_btn.clicked.connect(self.cancel)
        self._thread: _VideoImportThread | None = None
        self.resize(640, 440)

    def video_settings(self) -> Any:
        from training.video import VideoSettings

        return VideoSettings(wli_only=self.wli_only_box.isChecked(), keep_text=self.keep_text_box.isChecked())

    def _choose(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, self.tr("Endoscopy videos"), "", self.tr(VIDEO_FILTER))
        if paths:
            self.start([Path(p) for p in paths])

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, self.tr("Folder of recordings (one sub-folder per patient)"))
        if path:
            self.start([Path(path)])

    def start(self, videos: list[Path]) -> None:
        """Import ``videos`` (files or folders) in the background with the current settings."""
        if self.app_settings is not None:
            self.app_settings.setValue("video/wli_only", self.wli_only_box.isChecked())
            self.app_settings.setValue("video/keep_text", self.keep_text_box.isChecked())
        for w in (self.choose_btn, self.folder_btn, self.wli_only_box, self.keep_text_box):
            w.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.summary = None
        self.progress.setRange(0, 0)
        self.progress.show()
        self.report.setPlainText(self.tr("Importing…"))
        self._thread = _VideoImportThread(self.workspace_root, videos, self.video_settings())
        self._thread.progress.connect(self._on_progress)
        self._thread.finishedWith.connect(self._on_done)
        self._thread.start()

    def cancel(self) -> None:
        if self._thread is not None and self._thread.isRunning():
            self._thread.cancel_event.set()
            self.stage.setText(self.tr("Cancelling…"))
            self.cancel_btn.setEnabled(False)

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        if not self.cancel_btn.isEnabled():
            return
        self.stage.setText(stage)
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(min(done, max(1, total)))

    def _on_done(self, result: Any) -> None:
        if self._thread is not None:
            self._thread.wait()   # it emitted as its last act: let run() return before anyone deletes it
        self.progress.hide()
        self.cancel_btn.setEnabled(False)
        for w in (self.choose_btn, self.folder_btn, self.wli_only_box, self.keep_text_box):
            w.setEnabled(True)
        self.stage.setText("")
        if isinstance(result, Exception):
            self.report.setPlainText(self.tr("Import failed: {error}").format(error=i18n.error_text(result)))
        else:
            self.summary = result
            self.report.setPlainText(summary_text(result))
        self.finishedWith.emit(result)

    def wait_done(self, ms: int = 120000) -> bool:
        return self._thread.wait(ms) if self._thread is not None else True

    def reject(self) -> None:
        """Closing while importing cancels first and waits for the thread (nothing is left half-written)."""
        if self._thread is not None and self._thread.isRunning():
            self.cancel()
            self._thread.wait()
        super().reject()
