"""Model ▸ Model versions: every model of the workspace with its metrics; activate or roll back.

Activating only changes which model predicts next (predictions are cached per model id and
recomputed lazily); human revisions are never touched.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


def _metric(card: dict, *keys: str) -> str:
    metrics = card.get("metrics") or {}
    for key in keys:
        val = metrics.get(key)
        if isinstance(val, (int, float)):
            return f"{val:.3f}"
    return ""


def _parent_id(card: dict) -> str:
    parent = card.get("parent")
    return str(parent.get("id") or "") if isinstance(parent, dict) else str(parent or "")


def _val_dice(card: dict) -> str:
    """Held-out Dice, and the parent's on the same held-out cases where the trainer measured it."""
    own, base = _metric(card, "val_dice", "dice"), _metric(card, "parent_val_dice")
    return f"{own} (parent {base})" if own and base else own


class ModelsDialog(QDialog):
    """Lists model versions (newest last) with parent, data and validation metrics."""

    activated = Signal(str)  # model id

    def __init__(self, models: list[dict], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model versions")
        self.models = models
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("The active model predicts new cases. Activating another one re-predicts lazily; "
                             "clinicians' revisions are never changed."))
        self.table = QTableWidget(len(models), 6)
        self.table.setHorizontalHeaderLabels(["", "Model", "Parent", "Held-out Dice", "Created", "Training data"])
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for i, m in enumerate(models):
            card = m.get("card", {})
            data = card.get("data") or card.get("training_data") or ""
            if isinstance(data, dict):
                data = data.get("source") or data.get("kind") or ", ".join(f"{k}={v}" for k, v in list(data.items())[:2])
            created = str(m.get("created_at", ""))[:16].replace("T", " ")
            values = ["●" if m.get("active") else "", m["id"], _parent_id(card), _val_dice(card), created, str(data)]
            for j, v in enumerate(values):
                item = QTableWidgetItem(v)
                item.setData(Qt.ItemDataRole.UserRole, m["id"])
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        lay.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.activate_btn = QPushButton("Activate selected")
        self.rollback_btn = QPushButton("Roll back to previous")
        close = QPushButton("Close")
        row.addWidget(self.activate_btn)
        row.addWidget(self.rollback_btn)
        row.addStretch(1)
        row.addWidget(close)
        lay.addLayout(row)
        self.activate_btn.clicked.connect(self._activate_selected)
        self.rollback_btn.clicked.connect(self.roll_back)
        close.clicked.connect(self.accept)
        self.resize(760, 360)

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
