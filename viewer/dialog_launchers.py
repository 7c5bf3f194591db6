"""Opening the window's dialogs: what is saved before each, what is refreshed after it.

The dialogs themselves live in their own modules (viewer/dialogs.py, export_dialog.py,
train_dialog.py, models_dialog.py, video_import_dialog.py) and are imported when first opened,
so the window starts without them. Work on the open case is saved before a dialog that reads
the workspace (import, export, training) so that it sees the clinician's latest revision.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMessageBox

from training import recovery
from viewer import i18n
from viewer.app import APP_NAME

if TYPE_CHECKING:
    from viewer.main_window import MainWindow


def error(win: MainWindow, title: str, text: str) -> None:
    """A warning box; offscreen (tests, --self-test) the banner and the status bar say it instead."""
    if QApplication.platformName() == "offscreen":
        win.statusBar().showMessage(f"{title}: {text}", 15000)
        win.pair.show_error(f"{title}: {text}")
        return
    QMessageBox.warning(win, title, text)


def ask_restore_recovery(win: MainWindow, entries: list[recovery.JournalEntry]) -> bool:
    """Restore unsaved edits found in the recovery journal? (setting recovery/auto=restore: yes, unasked)"""
    box = recovery_box(win, entries)
    return win.settings.value("recovery/auto", "") == "restore" or box.exec() == QMessageBox.StandardButton.Yes


def recovery_box(win: MainWindow, entries: list[recovery.JournalEntry]) -> QMessageBox:
    """The question of ask_restore_recovery (built apart so that the tests can measure it)."""
    names = ", ".join(e.case_id for e in entries[:8]) + ("…" if len(entries) > 8 else "")
    text = QCoreApplication.translate(
        "Dialogs", "{n} case(s) have edits that were not saved when {app} last closed: {names}.\n\n"
        "Restore them as new revisions?").format(n=i18n.integer(len(entries)), app=APP_NAME, names=names)
    box = QMessageBox(QMessageBox.Icon.Question, QCoreApplication.translate("Dialogs", "Unsaved edits found"), text,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, win)
    box.setDefaultButton(QMessageBox.StandardButton.Yes)
    return box


def exclude_reason(win: MainWindow) -> str | None:
    """Why the case on screen is excluded (None: cancelled)."""
    dlg = exclude_dialog(win)
    ok = dlg.exec() == QInputDialog.DialogCode.Accepted
    return (dlg.textValue().strip() or "no reason given") if ok else None  # stored: the default stays English


def exclude_dialog(win: MainWindow) -> QInputDialog:
    """The question of exclude_reason (built apart so that the tests can measure it)."""
    dlg = QInputDialog(win)
    dlg.setInputMode(QInputDialog.InputMode.TextInput)
    dlg.setWindowTitle(QCoreApplication.translate("Dialogs", "Exclude case"))
    dlg.setLabelText(QCoreApplication.translate("Dialogs", "Why is this case excluded? (e.g. blurred, no lesion visible)"))
    return dlg


# --- Help -------------------------------------------------------------------------------------------
def about(win: MainWindow) -> None:
    about_box(win).exec()


def about_box(win: MainWindow) -> QMessageBox:
    """Help ▸ About: what QMessageBox.about shows (the app icon, the text with its disclaimer)."""
    from viewer.dialogs import about_text

    box = QMessageBox(QMessageBox.Icon.NoIcon, QCoreApplication.translate("Dialogs", "About {app}").format(app=APP_NAME),
                      about_text(win.ws), QMessageBox.StandardButton.Ok, win)
    icon = win.windowIcon()
    if not icon.isNull():
        box.setIconPixmap(icon.pixmap(64, 64))
    return box


def settings(win: MainWindow) -> None:
    from viewer.settings_dialog import SettingsDialog

    SettingsDialog(win.settings, win).exec()


def shortcuts(win: MainWindow) -> None:
    from viewer.dialogs import ShortcutsDialog

    ShortcutsDialog(win).exec()


# --- File -------------------------------------------------------------------------------------------
def new_workspace(win: MainWindow) -> None:
    path = QFileDialog.getExistingDirectory(
        win, QCoreApplication.translate("Dialogs", "Choose an empty folder for the new workspace"))
    if path:
        from training.store import Workspace, WorkspaceError

        try:
            Workspace.open(Path(path), create=True).close()
        except (WorkspaceError, OSError) as exc:
            error(win, QCoreApplication.translate("Dialogs", "Cannot create workspace"), i18n.error_text(exc))
            return
        win.open_workspace(Path(path))


def open_workspace(win: MainWindow) -> None:
    path = QFileDialog.getExistingDirectory(win, QCoreApplication.translate("Dialogs", "Open a workspace folder"))
    if path:
        win.open_workspace(Path(path))


def import_pairs(win: MainWindow) -> None:
    from viewer.dialogs import ImportDialog

    if win.ws is None:
        return
    win.save_current("before import")
    ImportDialog(win.ws.root, win).exec()
    win.reload_worklist()


def import_video(win: MainWindow) -> None:
    from viewer.video_import_dialog import VideoImportDialog

    if win.ws is None:
        return
    win.save_current("before import")
    VideoImportDialog(win.ws.root, win, win.settings).exec()
    win.reload_worklist()


def export(win: MainWindow) -> None:
    from viewer.export_dialog import ExportDialog

    if win.ws is None:
        return
    win.save_current("before export")
    ExportDialog(win.ws.root, win).exec()


# --- Case -------------------------------------------------------------------------------------------
def agreement_summary(win: MainWindow) -> None:
    from viewer.dialogs import AgreementDialog

    if win.ws is not None:
        dlg = AgreementDialog(win.ws.cases(), win)
        dlg.caseChosen.connect(win.open_case)
        dlg.exec()


# --- Model ------------------------------------------------------------------------------------------
def train(win: MainWindow) -> None:
    from viewer.train_dialog import TrainDialog

    if win.ws is None:
        return
    win.save_current("before training")
    dlg = TrainDialog(win.ws.root, win.ws.models(), win)
    dlg.finishedWith.connect(win._on_training_finished)
    dlg.activateRequested.connect(win.activate_model)
    dlg.exec()


def training_finished(win: MainWindow, result: dict | None) -> None:
    """The trainer registered a new version; predict with it only if the trainer activated it
    (it beat its base model on the held-out cases). Otherwise the dialog offers "Activate anyway"."""
    if result and result.get("registered") and result.get("activated") and win.ws is not None:
        win.activate_model(str(result["registered"]))


def model_versions(win: MainWindow) -> None:
    from viewer.models_dialog import ModelsDialog

    if win.ws is None:
        return
    dlg = ModelsDialog(win.ws.models(), win, workspace_root=None if win.ws.readonly else win.ws.root)
    dlg.activated.connect(win.activate_model)
    dlg.exec()
