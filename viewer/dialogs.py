"""Dialogs: About (research-use disclaimer), shortcuts, agreement summary, import."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QThread, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from model.card_file import card_id, read_card_json
from model.i18n_marks import QT_TRANSLATE_NOOP
from viewer import i18n

# English sources; about_text() shows them translated (context "About")
DISCLAIMER = QT_TRANSLATE_NOOP(
    "About",
    "<b>Research demonstration — not a medical device.</b> The bundled model was trained on public "
    "endoscopy data (colon polyps and laryngeal frames) with <i>synthetic</i> NBI generated from white light. "
    "It has not been validated for clinical use and must not be used for diagnosis or treatment decisions. "
    "Every mask must be reviewed by a qualified clinician."
)

ATTRIBUTIONS = QT_TRANSLATE_NOOP(
    "About",
    "Demo cases and training data (CC BY 4.0):<br>"
    "• Kvasir-SEG — D. Jha et al., MMM 2020; HyperKvasir — H. Borgli et al., Scientific Data 7:283, 2020.<br>"
    "• Laryngeal endoscopic images — M.-H. Laves, J. Bicker, L. A. Kahrs, T. Ortmaier, IJCARS 14(3):483–492, 2019.<br>"
    "Method after the Align-Disentangle-Fusion paper (arXiv 2508.16882)."
)


def disclaimer() -> str:
    """The medical disclaimer of the About box, in the UI language."""
    return QCoreApplication.translate("About", DISCLAIMER)


def about_text(ws: Any = None) -> str:
    """About box body: what this is, the disclaimer, the data it learned from, the active model."""
    model = ""
    if ws is not None:
        try:
            path = ws.active_model_path()
            if path is not None:
                card, _ = read_card_json(path)
                model = QCoreApplication.translate("About", "<p>Active model: <b>{model}</b> ({preset})</p>").format(
                    model=card_id(card, path), preset=card.get("preset", "?"))
        except (OSError, ValueError):
            model = ""
    intro = QCoreApplication.translate(
        "About", "<p>Paired WLI | NBI endoscopy viewer with a local Align-Disentangle-Fusion tumour segmentation "
        "model. Everything runs on this computer; no image or mask ever leaves it.</p>")
    attributions = QCoreApplication.translate("About", ATTRIBUTIONS)
    return f"<h3>ADF Viewer</h3>{intro}<p>{disclaimer()}</p>{model}<p>{attributions}</p>"


class ShortcutsDialog(QDialog):
    """Help ▸ Keyboard shortcuts, built from viewer.actions (the same table as the menus)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        from PySide6.QtCore import Qt

        from viewer.actions import help_sections

        super().__init__(parent)
        self.setWindowTitle(self.tr("Keyboard shortcuts"))
        lay = QVBoxLayout(self)
        sections = help_sections()
        rows = sum(len(items) + 1 for _g, items in sections)
        table = QTableWidget(rows, 2)
        table.setHorizontalHeaderLabels([self.tr("Keys"), self.tr("Action")])
        table.verticalHeader().hide()
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        r = 0
        for group, items in sections:
            head = QTableWidgetItem(group)
            font = head.font()
            font.setBold(True)
            head.setFont(font)
            table.setItem(r, 0, head)
            r += 1
            for keys, text, action_id in items:
                shown = ", ".join(QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) or k for k in keys) \
                    if action_id is not None else keys[0]
                key_item = QTableWidgetItem(shown)
                key_item.setData(Qt.ItemDataRole.UserRole, action_id)  # None: a mouse gesture / drawing key
                table.setItem(r, 0, key_item)
                table.setItem(r, 1, QTableWidgetItem(text))
                r += 1
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        table.resizeColumnToContents(0)
        # a long help line (and most lines in Chinese) wraps in its row instead of being elided
        table.setWordWrap(True)
        table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        lay.addWidget(table)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)
        self.table = table
        self.resize(600, 720)


class AgreementDialog(QDialog):
    """Model-vs-human agreement over the workspace: mean Dice and the worst cases (click to open)."""

    caseChosen = Signal(str)

    def __init__(self, cases: list[Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Model vs clinician agreement"))
        scored = sorted((c for c in cases if c.dice_vs_model is not None), key=lambda c: c.dice_vs_model)
        lay = QVBoxLayout(self)
        if scored:
            mean = sum(c.dice_vs_model for c in scored) / len(scored)
            text = self.tr("{n} corrected cases compared with the model's prediction. Mean Dice {mean}; "
                           "worst {worst}.").format(n=i18n.integer(len(scored)), mean=i18n.number(mean, 3),
                                                    worst=i18n.number(scored[0].dice_vs_model, 3))
        else:
            mean = None
            text = self.tr("No case has both a model prediction and a clinician's revision yet.")
        self.summary = QLabel(text)
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)
        self.mean_dice = mean
        table = QTableWidget(min(20, len(scored)), 3)
        table.setHorizontalHeaderLabels([self.tr("Case"), self.tr("Patient"), self.tr("Dice")])
        table.verticalHeader().hide()
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        for i, c in enumerate(scored[:20]):
            for j, v in enumerate((c.id, c.patient_id or "", i18n.number(c.dice_vs_model, 3))):
                table.setItem(i, j, QTableWidgetItem(v))
        table.cellDoubleClicked.connect(lambda r, _c: self._choose(table.item(r, 0).text()))
        table.horizontalHeader().setStretchLastSection(True)
        lay.addWidget(QLabel(self.tr("Worst cases (double-click to open):")))
        lay.addWidget(table)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)
        self.table = table
        self.resize(480, 520)

    def _choose(self, case_id: str) -> None:
        self.caseChosen.emit(case_id)
        self.accept()


class _ImportThread(QThread):
    progress = Signal(int, int)
    finishedWith = Signal(object)   # dict summary or an exception

    def __init__(self, workspace_root: Path, sources: list[Path]) -> None:
        super().__init__()
        self.workspace_root = workspace_root
        self.sources = sources

    def run(self) -> None:  # noqa: D401
        from training.importer import import_sources
        from training.store import Workspace

        try:
            with Workspace.open(self.workspace_root) as ws:
                summary = import_sources(ws, self.sources, progress=lambda d, t: self.progress.emit(d, t))
            self.finishedWith.emit(summary)
        except Exception as exc:  # noqa: BLE001 - reported in the dialog
            self.finishedWith.emit(exc)


def _printable(path: str) -> str:
    """A file name with undecodable bytes shown as U+FFFD instead of silently dropped."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class ImportDialog(QDialog):
    """File ▸ Import: pick a folder or CSV, import it in a background thread, show what was skipped."""

    def __init__(self, workspace_root: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Import WLI/NBI pairs"))
        self.workspace_root = Path(workspace_root)
        self.summary: dict[str, Any] | None = None
        lay = QVBoxLayout(self)
        intro = QLabel(self.tr(
            "Import a folder (X_wli + X_nbi, WLI/ + NBI/, X_1 + X_2 [+ X_1_label]) or a CSV "
            "(wli_path, nbi_path[, label_path][, patient_id]). Files are copied into the workspace."))
        intro.setWordWrap(True)
        lay.addWidget(intro)
        row = QHBoxLayout()
        self.folder_btn = QPushButton(self.tr("Import folder…"))
        self.csv_btn = QPushButton(self.tr("Import CSV…"))
        row.addWidget(self.folder_btn)
        row.addWidget(self.csv_btn)
        lay.addLayout(row)
        self.progress = QProgressBar()
        self.progress.hide()
        lay.addWidget(self.progress)
        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        lay.addWidget(self.report, 1)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)
        self.folder_btn.clicked.connect(self._pick_folder)
        self.csv_btn.clicked.connect(self._pick_csv)
        self._thread: _ImportThread | None = None
        self.resize(620, 420)

    def _pick_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, self.tr("Folder with WLI/NBI pairs"))
        if path:
            self.start([Path(path)])

    def _pick_csv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("CSV of pairs"), "", self.tr("CSV files (*.csv)"))
        if path:
            self.start([Path(path)])

    def start(self, sources: list[Path]) -> None:
        """Run the import in the background (the dialog stays responsive)."""
        self.folder_btn.setEnabled(False)
        self.csv_btn.setEnabled(False)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.report.setPlainText(self.tr("Importing…"))
        self._thread = _ImportThread(self.workspace_root, sources)
        self._thread.progress.connect(self._on_progress)
        self._thread.finishedWith.connect(self._on_done)
        self._thread.start()

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def _on_done(self, result: Any) -> None:
        if self._thread is not None:
            self._thread.wait()  # it has emitted its last signal; a QThread destroyed while running aborts
        self.progress.hide()
        self.folder_btn.setEnabled(True)
        self.csv_btn.setEnabled(True)
        if isinstance(result, Exception):
            self.report.setPlainText(self.tr("Import failed: {error}").format(error=i18n.error_text(result)))
            return
        self.summary = result
        lines = [self.tr("Imported {n} case(s); the workspace now holds {total}.").format(
            n=i18n.integer(result["imported"]), total=i18n.integer(result["cases"]))]
        skipped = result.get("skipped", [])
        if skipped:
            lines.append("\n" + self.tr("Skipped {n} file(s):").format(n=i18n.integer(len(skipped))))
            lines += [f"  • {_printable(s['path'])}: {i18n.error_text(s['reason'])}" for s in skipped]
        self.report.setPlainText("\n".join(lines))

    def wait_done(self, ms: int = 60000) -> bool:
        return self._thread.wait(ms) if self._thread is not None else True
