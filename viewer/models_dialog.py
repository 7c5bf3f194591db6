"""Model ▸ Model versions: every model of the workspace with its metrics; activate, roll back, add.

Activating only changes which model predicts next (predictions are cached per model id and
recomputed lazily); human revisions are never touched. "Add model file…" registers a model card
(.json + .safetensors) after checking it the way the predictor will load it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt, QThread, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from viewer import i18n
from viewer.train_dialog import gain_interval


def _metric(card: dict, *keys: str) -> str:
    metrics = card.get("metrics") or {}
    for key in keys:
        val = metrics.get(key)
        if isinstance(val, (int, float)):
            return i18n.number(val, 3)
    return ""


def _parent_id(card: dict) -> str:
    parent = card.get("parent")
    return str(parent.get("id") or "") if isinstance(parent, dict) else str(parent or "")


def _val_dice(card: dict) -> str:
    """Held-out Dice, and the parent's on the same held-out cases where the trainer measured it."""
    own, base = _metric(card, "val_dice", "dice"), _metric(card, "parent_val_dice")
    return QCoreApplication.translate("ModelsDialog", "{own} (parent {base})").format(own=own, base=base) \
        if own and base else own


def _click_mode(card: dict) -> str:
    """Whether the model answers clicks, and with its own network (DESIGN-NOTES 26) or the one that
    predicts the automatic mask."""
    from model.card_file import has_click_network
    from viewer.clicks import card_is_interactive

    if not card_is_interactive(card):
        return QCoreApplication.translate("ModelsDialog", "no")
    if has_click_network(card):
        return QCoreApplication.translate("ModelsDialog", "own network")
    return QCoreApplication.translate("ModelsDialog", "yes")


def check_and_register_model(workspace_root: Path, path: Path) -> str:
    """Check a model file like the predictor will load it, then register it; returns its id.

    Why the full load: a card that parses but names other weights, a truncated or replaced
    safetensors, or tensors of another architecture must be refused here with one clear line,
    not fail later at the first prediction. Imports torch (call it off the UI thread).
    Raises model.card.ModelFileError or training.store.WorkspaceError.
    """
    from model.card import ModelFileError, load_model
    from training.imageio import sha256_file
    from training.store import Workspace

    _net, card = load_model(path)  # card keys, format, sha256 of the weights, tensor names and shapes
    stem = path.with_suffix("") if path.suffix.lower() in (".json", ".safetensors") else path
    weights = stem.with_name(stem.name + ".safetensors")
    if not weights.is_file() or sha256_file(weights) != card["sha256"]:
        raise ModelFileError(weights, f"the card names the weights {card['weights']!r}; the file beside it "
                                      f"must be {weights.name} with the same content")
    with Workspace.open(workspace_root) as ws:
        return ws.register_model(stem.with_name(stem.name + ".json"))


class _AddModelThread(QThread):
    finishedWith = Signal(object)  # the registered model id (str) or the exception

    def __init__(self, workspace_root: Path, path: Path) -> None:
        super().__init__()
        self.workspace_root, self.path = workspace_root, path

    def run(self) -> None:  # noqa: D401
        try:
            self.finishedWith.emit(check_and_register_model(self.workspace_root, self.path))
        except Exception as exc:  # noqa: BLE001 - shown in the dialog
            self.finishedWith.emit(exc)


class ModelsDialog(QDialog):
    """Lists model versions (newest last) with parent, data and validation metrics."""

    activated = Signal(str)  # model id
    modelAdded = Signal(str)  # model id

    def __init__(self, models: list[dict], parent: QWidget | None = None,
                 workspace_root: Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Model versions"))
        self.models = models
        self.workspace_root = workspace_root
        self._thread: _AddModelThread | None = None
        lay = QVBoxLayout(self)
        intro = QLabel(self.tr("The active model predicts new cases. Activating another one re-predicts lazily; "
                               "clinicians' revisions are never changed."))
        intro.setWordWrap(True)
        lay.addWidget(intro)
        self.table = QTableWidget(0, 7)
        self.table.setHorizontalHeaderLabels(["", self.tr("Model"), self.tr("Parent"), self.tr("Held-out Dice"),
                                              self.tr("Clicks"), self.tr("Created"), self.tr("Training data")])
        self.table.horizontalHeaderItem(4).setToolTip(
            self.tr("Click to correct: whether the model redraws the mask from clicks, and whether its click "
                    "mode has a network of its own (the automatic mask then stays exactly the release's)"))
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._fill(models)
        lay.addWidget(self.table, 1)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.message)
        row = QHBoxLayout()
        self.activate_btn = QPushButton(self.tr("Activate selected"))
        self.rollback_btn = QPushButton(self.tr("Roll back to previous"))
        self.add_btn = QPushButton(self.tr("Add model file…"))
        self.add_btn.setToolTip(self.tr("Register a model card (.json) and its weights (.safetensors) in this workspace"))
        self.add_btn.setEnabled(workspace_root is not None)
        close = QPushButton(self.tr("Close"))
        row.addWidget(self.activate_btn)
        row.addWidget(self.rollback_btn)
        row.addWidget(self.add_btn)
        row.addStretch(1)
        row.addWidget(close)
        lay.addLayout(row)
        self.activate_btn.clicked.connect(self._activate_selected)
        self.rollback_btn.clicked.connect(self.roll_back)
        self.add_btn.clicked.connect(self._pick_model_file)
        close.clicked.connect(self.accept)
        self.resize(760, 380)

    def _fill(self, models: list[dict]) -> None:
        self.models = models
        self.table.setRowCount(len(models))
        for i, m in enumerate(models):
            card = m.get("card", {})
            data = card.get("data") or card.get("training_data") or ""
            if isinstance(data, dict):
                data = data.get("source") or data.get("kind") or ", ".join(f"{k}={v}" for k, v in list(data.items())[:2])
            created = i18n.stored_time(str(m["created_at"])) if m.get("created_at") else ""
            values = ["●" if m.get("active") else "", m["id"], _parent_id(card), _val_dice(card), _click_mode(card),
                      created, str(data)]
            for j, v in enumerate(values):
                item = QTableWidgetItem(v)
                item.setData(Qt.ItemDataRole.UserRole, m["id"])
                self.table.setItem(i, j, item)
            self.table.item(i, 3).setToolTip(gain_interval(card.get("metrics") or {}).strip())
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)

    def _pick_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("Add a model file"), "",
                                              self.tr("ADF model (*.json *.safetensors);;All files (*)"))
        if path:
            self.add_model_file(Path(path))

    def add_model_file(self, path: Path) -> None:
        """Check and register ``path`` in the background; the table and message follow."""
        if self.workspace_root is None or (self._thread is not None and self._thread.isRunning()):
            return
        self.add_btn.setEnabled(False)
        self.message.setStyleSheet("")
        self.message.setText(self.tr("Checking {file}…").format(file=path.name))
        self._thread = _AddModelThread(self.workspace_root, path)
        self._thread.finishedWith.connect(lambda result, p=path: self._on_added(p, result))
        self._thread.start()

    def _on_added(self, path: Path, result: object) -> None:
        if self._thread is not None:
            self._thread.wait()  # it has emitted its last signal; a QThread destroyed while running aborts
        self.add_btn.setEnabled(True)
        if isinstance(result, Exception):
            text = i18n.error_text(result).strip()
            reason = text.splitlines()[0] if text else type(result).__name__
            self.message.setStyleSheet("color: #e5534b;")
            self.message.setText(self.tr("Cannot add {file}: {reason}").format(file=path.name, reason=reason))
            return
        from training.store import Workspace

        model_id = str(result)
        with Workspace.open(self.workspace_root) as ws:
            self._fill(ws.models())
        row = next(i for i, m in enumerate(self.models) if m["id"] == model_id)
        self.table.selectRow(row)
        active = self.models[row].get("active")
        self.message.setText((self.tr("{model} is registered and active.") if active else
                              self.tr("{model} is registered. Select it and press Activate selected to predict with "
                                      "it.")).format(model=model_id))
        self.modelAdded.emit(model_id)

    def wait_done(self, ms: int = 120000) -> bool:
        return self._thread.wait(ms) if self._thread is not None else True

    def _activate_selected(self) -> None:
        row = self.table.currentRow()
        if row >= 0:
            self.activated.emit(self.table.item(row, 1).data(Qt.ItemDataRole.UserRole))
            self.accept()

    def roll_back(self) -> None:
        """Activate the model registered just before the active one."""
        ids = [m["id"] for m in self.models]
        active = next((i for i, m in enumerate(self.models) if m.get("active")), None)
        if active is not None and active > 0:
            self.activated.emit(ids[active - 1])
            self.accept()

    def selected_id(self) -> Any:
        row = self.table.currentRow()
        return self.table.item(row, 1).data(Qt.ItemDataRole.UserRole) if row >= 0 else None
