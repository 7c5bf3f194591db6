"""Edit ▸ Settings…: the app's language (System default, English, 简体中文), applied at the next start.

Why at the next start: every widget is built with its strings translated once; re-translating a
running window would need a ``changeEvent`` in each of them for a choice made once per install.
"""
from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout, QWidget

from viewer import i18n


class SettingsDialog(QDialog):
    """The language choice, stored in QSettings under ``language`` ("" follows the OS)."""

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle(self.tr("Settings"))
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.language = QComboBox()
        for value, label in i18n.language_names():
            self.language.addItem(label, value)
        stored = str(settings.value(i18n.SETTING_KEY, i18n.SYSTEM) or "")
        idx = self.language.findData(stored)
        self.language.setCurrentIndex(max(0, idx))
        form.addRow(self.tr("Language"), self.language)
        lay.addLayout(form)
        note = QLabel(self.tr("The new language is used after ADF Viewer is restarted."))
        note.setWordWrap(True)
        lay.addWidget(note)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)

    def accept(self) -> None:
        """Store the choice (the window reads it at the next start)."""
        self.settings.setValue(i18n.SETTING_KEY, self.language.currentData())
        self.settings.sync()
        super().accept()
