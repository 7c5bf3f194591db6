"""File ▸ Export dataset: the same options as ``python -m training export``, run off the UI thread."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QThread, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from model.i18n_marks import QT_TRANSLATE_NOOP
from viewer import i18n
from viewer.worklist import status_label

FORMATS = (("folder", QT_TRANSLATE_NOOP("ExportDialog", "Folder (PNG images + masks + manifest.csv)")),
           ("coco", QT_TRANSLATE_NOOP("ExportDialog", "COCO (annotations.json)")),
           ("nnunet", QT_TRANSLATE_NOOP("ExportDialog", "nnU-Net v2 raw dataset")),
           ("labelme", QT_TRANSLATE_NOOP("ExportDialog", "labelme (one JSON per image)")))


class _ExportThread(QThread):
    progress = Signal(int, int)
    finishedWith = Signal(object)   # summary dict or an exception

    def __init__(self, workspace_root: Path, kwargs: dict[str, Any]) -> None:
        super().__init__()
        self.workspace_root = workspace_root
        self.kwargs = kwargs
        self.cancelled = False

    def run(self) -> None:  # noqa: D401
        from training.export import export_dataset
        from training.store import Workspace

        def progress(done: int, total: int) -> bool:
            self.progress.emit(done, total)
            return not self.cancelled

        try:
            with Workspace.open(self.workspace_root) as ws:
                self.finishedWith.emit(export_dataset(ws, progress=progress, **self.kwargs))
        except Exception as exc:  # noqa: BLE001 - shown in the dialog
            self.finishedWith.emit(exc)


class ExportDialog(QDialog):
    """Choose format, statuses, split and de-identification; export with a progress bar and summary."""

    def __init__(self, workspace_root: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Export corrected dataset"))
        self.workspace_root = Path(workspace_root)
        self.summary: dict[str, Any] | None = None
        self._thread: _ExportThread | None = None
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.format = QComboBox()
        for key, label in FORMATS:
            self.format.addItem(self.tr(label), key)
        self.statuses: dict[str, QCheckBox] = {}
        row = QHBoxLayout()
        for st in ("corrected", "approved", "predicted", "in_progress"):
            cb = QCheckBox(status_label(st))
            cb.setChecked(st in ("corrected", "approved"))
            self.statuses[st] = cb
            row.addWidget(cb)
        self.val_fraction = QDoubleSpinBox()
        self.val_fraction.setRange(0.0, 0.9)
        self.val_fraction.setSingleStep(0.05)
        self.val_fraction.setValue(0.2)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.keep_ids = QCheckBox(self.tr("Keep case and patient ids (off: stable pseudonyms)"))
        out_row = QHBoxLayout()
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText(self.tr("An empty folder (or a previous export)"))
        browse = QPushButton(self.tr("Choose…"))
        browse.clicked.connect(self._choose_out)
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(browse)
        form.addRow(self.tr("Format"), self.format)
        form.addRow(self.tr("Cases with status"), row)
        form.addRow(self.tr("Validation share (split by patient)"), self.val_fraction)
        form.addRow(self.tr("Split seed"), self.seed)
        form.addRow("", self.keep_ids)
        form.addRow(self.tr("Output folder"), out_row)
        lay.addLayout(form)
        note = QLabel(self.tr("Images are re-encoded without metadata; nothing is written outside the output folder."))
        note.setWordWrap(True)
        lay.addWidget(note)
        self.progress = QProgressBar()
        self.progress.hide()
        lay.addWidget(self.progress)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        lay.addWidget(self.result_label)
        buttons = QHBoxLayout()
        self.export_btn = QPushButton(self.tr("Export"))
        self.cancel_btn = QPushButton(self.tr("Cancel export"))
        self.cancel_btn.setEnabled(False)
        close = QPushButton(self.tr("Close"))
        buttons.addWidget(self.export_btn)
        buttons.addWidget(self.cancel_btn)
        buttons.addStretch(1)
        buttons.addWidget(close)
        lay.addLayout(buttons)
        self.export_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.cancel)
        close.clicked.connect(self.reject)
        self.resize(620, 360)

    def _choose_out(self) -> None:
        path = QFileDialog.getExistingDirectory(self, self.tr("Export into folder"))
        if path:
            self.out_edit.setText(path)

    def options(self) -> dict[str, Any]:
        return {"out_dir": Path(self.out_edit.text()).expanduser(), "fmt": self.format.currentData(),
                "statuses": [s for s, cb in self.statuses.items() if cb.isChecked()],
                "val_fraction": self.val_fraction.value(), "seed": self.seed.value(), "keep_ids": self.keep_ids.isChecked()}

    def start(self) -> None:
        if not self.out_edit.text().strip():
            self.result_label.setText(self.tr("Choose an output folder first."))
            return
        self.export_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.result_label.setText(self.tr("Exporting…"))
        self._thread = _ExportThread(self.workspace_root, self.options())
        self._thread.progress.connect(self._on_progress)
        self._thread.finishedWith.connect(self._on_done)
        self._thread.start()

    def cancel(self) -> None:
        if self._thread is not None:
            self._thread.cancelled = True

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def _on_done(self, result: Any) -> None:
        self.progress.hide()
        self.export_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)
        if isinstance(result, Exception):
            self.summary = None
            self.result_label.setText(self.tr("Export not written: {error}").format(error=i18n.error_text(result)))
            return
        self.summary = result
        notes = "".join(f"\n• {n}" for n in result.get("notes", []))
        self.result_label.setText(self.tr("Exported {n} cases ({train} train, {val} validation) as {fmt} to {out}.")
                                  .format(n=i18n.integer(result["cases"]), train=i18n.integer(result["train"]),
                                          val=i18n.integer(result["val"]), fmt=result["format"],
                                          out=result["out"]) + notes)

    def wait_done(self, ms: int = 60000) -> bool:
        return self._thread.wait(ms) if self._thread is not None else True
