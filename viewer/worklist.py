"""Worklist: a table model over the workspace's case rows, with status filter and text search.

Rows come from one store query (no per-row disk reads), so 10,000 cases open at once.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QCoreApplication,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush, QColor

from model.i18n_marks import QT_TRANSLATE_NOOP
from viewer import i18n

STATUS_COLORS = {
    "new": QColor(178, 178, 178),
    "predicted": QColor(110, 168, 255),
    "in_progress": QColor(230, 145, 56),
    "corrected": QColor(190, 130, 230),
    "approved": QColor(46, 160, 67),
    "excluded": QColor(240, 100, 90),
}
# English sources, shown translated (status_label(), headerData)
STATUS_LABELS = {
    "new": QT_TRANSLATE_NOOP("Status", "new"), "predicted": QT_TRANSLATE_NOOP("Status", "predicted"),
    "in_progress": QT_TRANSLATE_NOOP("Status", "in progress"), "corrected": QT_TRANSLATE_NOOP("Status", "corrected"),
    "approved": QT_TRANSLATE_NOOP("Status", "approved"), "excluded": QT_TRANSLATE_NOOP("Status", "excluded"),
}
COLUMNS = (QT_TRANSLATE_NOOP("Worklist", "Case"), QT_TRANSLATE_NOOP("Worklist", "Patient"),
           QT_TRANSLATE_NOOP("Worklist", "Status"), QT_TRANSLATE_NOOP("Worklist", "Dice"),
           QT_TRANSLATE_NOOP("Worklist", "Edited"), QT_TRANSLATE_NOOP("Worklist", "Video"))
COLUMN_TIPS = (QT_TRANSLATE_NOOP("Worklist", "Case id (full id in each row's tooltip)"),
               QT_TRANSLATE_NOOP("Worklist", "Patient id"), QT_TRANSLATE_NOOP("Worklist", "Review status"),
               QT_TRANSLATE_NOOP("Worklist", "Dice between the model's prediction and the clinician's latest revision"),
               QT_TRANSLATE_NOOP("Worklist", "When the case last changed (local time)"),
               QT_TRANSLATE_NOOP("Worklist", "Time of the WLI frame in the recording the case was imported from "
                                 "(video imports)"))


def status_label(status: str) -> str:
    """A case status as the clinician reads it, in the UI language."""
    label = STATUS_LABELS.get(status)
    return QCoreApplication.translate("Status", label) if label else status
CASE_COL, PATIENT_COL, STATUS_COL, DICE_COL, EDITED_COL, VIDEO_COL = range(6)
CASE_ID_ROLE = Qt.ItemDataRole.UserRole + 2

Index = QModelIndex | QPersistentModelIndex


class WorklistModel(QAbstractTableModel):
    """One row per case; the row objects are the store's frozen ``Case`` records."""

    def __init__(self, cases: Sequence[Any] = (), parent: Any = None) -> None:
        super().__init__(parent)
        self._cases: list[Any] = list(cases)
        self._row_of: dict[str, int] = {c.id: i for i, c in enumerate(self._cases)}

    def set_cases(self, cases: Iterable[Any], video: dict[str, dict] | None = None) -> None:
        """Show ``cases``; ``video``: ``Workspace.video_sources()`` for the time-in-video column."""
        self.beginResetModel()
        self._video = dict(video or {})
        self._cases = list(cases)
        self._sort_rows()
        self.endResetModel()

    def has_video(self) -> bool:
        """Whether any shown case was imported from a video (the Video column is worth showing)."""
        return bool(self._video)

    def update_case(self, case: Any) -> None:
        """Replace one row (after a save or status change) without resetting the view."""
        row = self._row_of.get(case.id)
        if row is None:
            return
        self._cases[row] = case
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
        if self._sort_column in (STATUS_COL, DICE_COL, EDITED_COL):  # the row may have to move
            self.layoutAboutToBeChanged.emit()
            old = {c.id: i for i, c in enumerate(self._cases)}
            self._sort_rows()
            self._move_persistent(old)
            self.layoutChanged.emit()

    # Sorting lives here, in Python's sort over precomputed keys: a QSortFilterProxyModel sort
    # would call data() from C++ for every comparison (10,000 rows: over a second).
    _sort_column = CASE_COL
    _sort_order = Qt.SortOrder.AscendingOrder
    _video: dict[str, dict] = {}

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.layoutAboutToBeChanged.emit()
        old = {c.id: i for i, c in enumerate(self._cases)}
        self._sort_column, self._sort_order = column, order
        self._sort_rows()
        self._move_persistent(old)
        self.layoutChanged.emit()

    def _sort_rows(self) -> None:
        if self._sort_column == VIDEO_COL:
            self._cases.sort(key=lambda c: video_sort_key(c, self._video.get(c.id)),
                             reverse=self._sort_order == Qt.SortOrder.DescendingOrder)
            self._row_of = {c.id: i for i, c in enumerate(self._cases)}
            return
        self._cases.sort(key=lambda c: sort_key(c, self._sort_column),
                         reverse=self._sort_order == Qt.SortOrder.DescendingOrder)
        self._row_of = {c.id: i for i, c in enumerate(self._cases)}

    def _move_persistent(self, old_rows: dict[str, int]) -> None:
        ids = {i: cid for cid, i in old_rows.items()}
        for idx in self.persistentIndexList():
            cid = ids.get(idx.row())
            if cid is not None:
                self.changePersistentIndex(idx, self.index(self._row_of[cid], idx.column()))

    def case_at(self, row: int) -> Any:
        return self._cases[row]

    def row_of(self, case_id: str) -> int | None:
        return self._row_of.get(case_id)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._cases)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return QCoreApplication.translate("Worklist", COLUMNS[section])
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return QCoreApplication.translate("Worklist", COLUMN_TIPS[section])
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        case = self._cases[index.row()]
        col = index.column()
        if role == CASE_ID_ROLE:
            return case.id
        if role == Qt.ItemDataRole.DisplayRole:
            if col == CASE_COL:
                return case.id
            if col == PATIENT_COL:
                return case.patient_id or ""
            if col == STATUS_COL:
                return status_label(case.status)
            if col == DICE_COL:
                return "" if case.dice_vs_model is None else i18n.number(case.dice_vs_model, 3)
            if col == EDITED_COL:
                return edited_text(case.updated_at)
            if col == VIDEO_COL:
                v = self._video.get(case.id)
                return video_time_text(v["wli_time_s"]) if v else ""
        if role == Qt.ItemDataRole.ToolTipRole and col == VIDEO_COL and case.id in self._video:
            v = self._video[case.id]
            nbi = "" if v["nbi_frame"] is None else QCoreApplication.translate(
                "Worklist", ", NBI frame {frame} at {time}").format(frame=v["nbi_frame"],
                                                                   time=video_time_text(v["nbi_time_s"]))
            return QCoreApplication.translate("Worklist", "{video}: WLI frame {frame} at {time}").format(
                video=Path(v["video_path"]).name, frame=v["wli_frame"], time=video_time_text(v["wli_time_s"])) + nbi
        if role == Qt.ItemDataRole.ForegroundRole and col == STATUS_COL:
            return QBrush(STATUS_COLORS.get(case.status, QColor(200, 200, 200)))
        if role == Qt.ItemDataRole.ToolTipRole and col == STATUS_COL and case.status == "excluded":
            return QCoreApplication.translate("Worklist", "Excluded: {reason}").format(
                reason=case.exclude_reason or QCoreApplication.translate("Worklist", "no reason given"))
        if role == Qt.ItemDataRole.ToolTipRole and col == EDITED_COL:
            return edited_text(case.updated_at, full=True) or None
        if role == Qt.ItemDataRole.ToolTipRole and col in (CASE_COL, PATIENT_COL):
            return case.id if col == CASE_COL else (case.patient_id or None)  # long ids are elided in the cell
        if role == Qt.ItemDataRole.TextAlignmentRole and col == DICE_COL:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def edited_text(updated_at: str | None, full: bool = False) -> str:
    """A stored UTC timestamp in local time, short enough for the worklist column.

    "MM-DD HH:MM" within the current year, "YYYY-MM-DD" before it; ``full``: "YYYY-MM-DD HH:MM:SS"
    (the tooltip). Unparsable text is shown as stored.
    """
    if not updated_at:
        return ""
    try:
        when = _dt.datetime.fromisoformat(updated_at)
    except ValueError:
        return updated_at[:16].replace("T", " ")
    if when.tzinfo is not None:
        when = when.astimezone()
    if full:
        return when.strftime("%Y-%m-%d %H:%M:%S")
    return when.strftime("%m-%d %H:%M" if when.year == _dt.datetime.now().year else "%Y-%m-%d")


def sort_key(case: Any, column: int) -> Any:
    """The value a column sorts by (no Qt call involved)."""
    if column == PATIENT_COL:
        return (case.patient_id or "", case.id)
    if column == STATUS_COL:
        order = list(STATUS_COLORS)
        return (order.index(case.status) if case.status in order else 99, case.id)
    if column == DICE_COL:
        return (-1.0 if case.dice_vs_model is None else float(case.dice_vs_model), case.id)
    if column == EDITED_COL:
        return (case.updated_at or "", case.id)
    return case.id


class WorklistFilter(QSortFilterProxyModel):
    """Status filter (a set of statuses, empty = all) plus case/patient text search."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._statuses: set[str] = set()
        self._text = ""
        self.setDynamicSortFilter(False)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sorting is done by the source model (fast); the proxy keeps its order and only filters."""
        source = self.sourceModel()
        if source is not None and column >= 0:
            source.sort(column, order)

    def set_statuses(self, statuses: Iterable[str]) -> None:
        self._refilter(lambda: setattr(self, "_statuses", set(statuses)))

    def set_text(self, text: str) -> None:
        self._refilter(lambda: setattr(self, "_text", text.strip().lower()))

    def _refilter(self, change: Callable[[], None]) -> None:
        """Apply a filter change (Qt >= 6.9 wants begin/endFilterChange around it)."""
        if hasattr(self, "beginFilterChange"):
            self.beginFilterChange()
            change()
            self.endFilterChange()
        else:  # pragma: no cover - older Qt
            change()
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:  # noqa: N802
        model = self.sourceModel()
        assert isinstance(model, WorklistModel)
        case = model.case_at(source_row)
        if self._statuses and case.status not in self._statuses:
            return False
        return not self._text or self._text in case.id.lower() or self._text in (case.patient_id or "").lower()


def video_time_text(seconds: float | None) -> str:
    """Time in the recording as h:mm:ss.s or m:ss.s (what a video player shows)."""
    if seconds is None:
        return ""
    tenths = int(round(float(seconds) * 10))
    h, rest = divmod(tenths, 36000)
    m, rest = divmod(rest, 600)
    sec = rest / 10
    return f"{h}:{m:02d}:{sec:04.1f}" if h else f"{m}:{sec:04.1f}"


def video_sort_key(case: Any, video: dict | None) -> Any:
    """Video cases by file then time; cases not from a video last."""
    if video is None:
        return (1, "", 0.0, case.id)
    return (0, video["video_path"], float(video["wli_time_s"]), case.id)
