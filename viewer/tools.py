"""Editing tools on either view, and per-stroke undo commands.

The controller turns mouse/key events (already in WLI scene coordinates, whichever view they
came from) into calls of the Qt-free :mod:`viewer.mask_ops`, repaints only the touched rectangle
and pushes one undo command per stroke holding just the changed patch (bit-packed before/after).

Click to correct (``C``): each click is one undo command at once (so Ctrl+Z removes it even
before its prediction arrives); the window sends the session's click state to the inference
thread, and the result fills in the command's mask patch if that command is still the newest
thing on the undo stack (anything pushed, undone or redone meanwhile makes the result stale).
Undoing back to a click whose result never arrived asks for it again.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QCoreApplication, QEvent, QObject, QPointF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QKeyEvent,
    QMouseEvent,
    QPainterPath,
    QPen,
    QUndoCommand,
    QUndoStack,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsPathItem

from model.i18n_marks import QT_TRANSLATE_NOOP
from model.interactive import Click
from viewer import mask_ops
from viewer.clicks import MINUS, PLUS, click_at, click_provenance
from viewer.mask_ops import BBox

if TYPE_CHECKING:
    from viewer.pair_view import PairGraphicsView, PairView

NAVIGATE, BRUSH, ERASER, POLYGON, POLYGON_ERASE, LASSO, LASSO_ERASE, PUSH_PULL, CLICK = (
    "navigate", "brush", "eraser", "polygon", "polygon_erase", "lasso", "lasso_erase", "push_pull", "click")
TOOLS = (NAVIGATE, BRUSH, ERASER, POLYGON, POLYGON_ERASE, LASSO, LASSO_ERASE, PUSH_PULL, CLICK)
# English sources, translated where shown (viewer.actions.translated, context "Actions")
TOOL_LABELS = {
    NAVIGATE: QT_TRANSLATE_NOOP("Actions", "Navigate"), BRUSH: QT_TRANSLATE_NOOP("Actions", "Brush"),
    ERASER: QT_TRANSLATE_NOOP("Actions", "Eraser"), POLYGON: QT_TRANSLATE_NOOP("Actions", "Polygon fill"),
    POLYGON_ERASE: QT_TRANSLATE_NOOP("Actions", "Polygon erase"), LASSO: QT_TRANSLATE_NOOP("Actions", "Lasso fill"),
    LASSO_ERASE: QT_TRANSLATE_NOOP("Actions", "Lasso erase"), PUSH_PULL: QT_TRANSLATE_NOOP("Actions", "Push / pull"),
    CLICK: QT_TRANSLATE_NOOP("Actions", "Click to correct"),
}
# the undo entry of each mask operation (Edit ▸ Undo <text>)
OPERATION_UNDO_TEXT = {
    "smooth": QT_TRANSLATE_NOOP("Tools", "Smooth"), "grow": QT_TRANSLATE_NOOP("Tools", "Grow"),
    "shrink": QT_TRANSLATE_NOOP("Tools", "Shrink"), "fill_holes": QT_TRANSLATE_NOOP("Tools", "Fill holes"),
    "remove_islands": QT_TRANSLATE_NOOP("Tools", "Remove islands"), "refine": QT_TRANSLATE_NOOP("Tools", "Refine"),
}
MIN_RADIUS, MAX_RADIUS = 1, 400


@dataclass
class CaseSession:
    """Everything the editor keeps for one case while the app runs (survives case switches)."""

    case_id: str
    mask: np.ndarray                      # uint8 0/1 working mask, WLI space
    undo: QUndoStack
    base_rev: int | None = None           # revision the edits started from
    model_id: str | None = None           # model whose prediction the edits started from
    prob: np.ndarray | None = None        # that model's probability map, if any
    mask_source: str = "empty"            # "revision" | "model" | "empty"
    saved_index: int = 0                  # undo index at the last save
    strokes: dict[str, np.ndarray] = field(default_factory=dict)  # GrabCut seeds: "fg", "bg"
    journaled: bool = False               # the unsaved edits are in the recovery journal
    clicks: list[Click] = field(default_factory=list)  # click-to-correct state the mask answers
    click_model_id: str | None = None     # model whose click prediction is on the mask

    @property
    def dirty(self) -> bool:
        return self.undo.index() != self.saved_index


class MaskEditCommand(QUndoCommand):
    """One stroke or operation: the bounding-box patch before and after, bit-packed."""

    def __init__(self, session: CaseSession, bbox: BBox, before: np.ndarray, after: np.ndarray,
                 text: str, on_change: Callable[[CaseSession, BBox | None], None],
                 clicks: tuple[tuple[Click, ...], tuple[Click, ...]] | None = None) -> None:
        super().__init__(text)
        self.session = session
        self.bbox = bbox
        self._before = mask_ops.pack_patch(before)
        self._after = mask_ops.pack_patch(after)
        self._on_change = on_change
        self._clicks = clicks  # (before, after) when the edit also ends a click session
        self._first = True

    def nbytes(self) -> int:
        return len(self._before[0]) + len(self._after[0])

    def _apply(self, packed: tuple[bytes, tuple[int, int]], clicks: tuple[Click, ...] | None) -> None:
        x0, y0, x1, y1 = self.bbox
        self.session.mask[y0:y1, x0:x1] = mask_ops.unpack_patch(*packed)
        if clicks is not None:
            self.session.clicks = list(clicks)
        self._on_change(self.session, self.bbox)

    def redo(self) -> None:
        if self._first:  # the edit is already on the mask when the command is pushed
            self._first = False
            return
        self._apply(self._after, self._clicks[1] if self._clicks else None)

    def undo(self) -> None:
        self._apply(self._before, self._clicks[0] if self._clicks else None)


class ClickCommand(QUndoCommand):
    """One click of the click tool: the click list before and after it and, once its prediction
    has arrived (``predicted``), the bit-packed patch of the mask it changed."""

    def __init__(self, session: CaseSession, click: Click,
                 on_change: Callable[[CaseSession, BBox | None], None]) -> None:
        super().__init__(QCoreApplication.translate("Tools", "Click {sign}").format(sign=PLUS if click.positive else MINUS))
        self.session = session
        self.click = click
        self.clicks_before = tuple(session.clicks)
        self.clicks_after = (*self.clicks_before, click)
        self.predicted = False
        self.bbox: BBox | None = None
        self._before: tuple[bytes, tuple[int, int]] | None = None
        self._after: tuple[bytes, tuple[int, int]] | None = None
        self._on_change = on_change
        self._first = True

    def set_result(self, bbox: BBox | None, before: np.ndarray | None, after: np.ndarray | None) -> None:
        """Record what the prediction changed (already on the mask); bbox None: nothing changed."""
        self.predicted = True
        self.bbox = bbox
        if bbox is not None and before is not None and after is not None:
            self._before, self._after = mask_ops.pack_patch(before), mask_ops.pack_patch(after)

    def _apply(self, packed: tuple[bytes, tuple[int, int]] | None, clicks: tuple[Click, ...]) -> None:
        self.session.clicks = list(clicks)
        if self.bbox is not None and packed is not None:
            x0, y0, x1, y1 = self.bbox
            self.session.mask[y0:y1, x0:x1] = mask_ops.unpack_patch(*packed)
        self._on_change(self.session, self.bbox)

    def redo(self) -> None:
        if self._first:  # the click is already in the session when the command is pushed
            self._first = False
            return
        self._apply(self._after, self.clicks_after)

    def undo(self) -> None:
        self._apply(self._before, self.clicks_before)


class EditController(QObject):
    """The active tool; implements the PairView's ToolHandler protocol."""

    toolChanged = Signal(str)
    radiusChanged = Signal(int)
    maskEdited = Signal(str)      # case id, after any change (stroke end, undo, redo, operation)
    clicksChanged = Signal(str)   # case id: its click markers need redrawing
    clickRequested = Signal(object)  # CaseSession whose newest click state needs a prediction

    def __init__(self, pair: PairView) -> None:
        super().__init__()
        self.pair = pair
        self.session: CaseSession | None = None
        self.tool = NAVIGATE
        self.radius = 12
        self.image_rgb: np.ndarray | None = None
        self._stroke_before: np.ndarray | None = None
        self._stroke_bbox: BBox | None = None
        self._last: QPointF | None = None
        self._points: list[tuple[float, float]] = []
        self._path_items: dict[str, QGraphicsPathItem] = {}
        self._drag_start: QPointF | None = None
        self.click_available = False  # the active model has a click mode (set by the window)
        self.pending_click: tuple[CaseSession, ClickCommand] | None = None
        pair.set_tool(self)

    # --- state -----------------------------------------------------------------------------
    def set_session(self, session: CaseSession | None, image_rgb: np.ndarray | None) -> None:
        self.cancel_shape()
        self.session = session
        self.image_rgb = image_rgb

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(tool)
        if tool == CLICK and not self.click_available:
            return  # the window says why (status bar, the tool's tooltip)
        self.cancel_shape()
        self.tool = tool
        self.pair.set_brush_cursor(None, None, 0)
        self.pair.set_tool_cursor(Qt.CursorShape.CrossCursor if tool == CLICK else None)
        self.toolChanged.emit(tool)

    def set_click_available(self, available: bool) -> None:
        """Whether the active model takes clicks; leaving the click tool when it no longer does."""
        self.click_available = bool(available)
        if not available:
            self.pending_click = None
            if self.tool == CLICK:
                self.set_tool(NAVIGATE)

    def set_radius(self, radius: int) -> None:
        self.radius = int(max(MIN_RADIUS, min(MAX_RADIUS, radius)))
        self.radiusChanged.emit(self.radius)

    def _editable(self) -> bool:
        return self.session is not None and self.pair.overlay is not None

    # --- ToolHandler -------------------------------------------------------------------------
    def mouse_press(self, view: PairGraphicsView, pos: QPointF, event: QMouseEvent) -> bool:
        if self.tool == NAVIGATE or not self._editable():
            return False
        assert self.session is not None
        if self.tool == CLICK:
            if event.type() == QEvent.Type.MouseButtonDblClick:
                return True  # the second press of a double click is not a second click
            h, w = self.session.mask.shape
            click = click_at(pos.x(), pos.y(), (w, h), event.button() == Qt.MouseButton.RightButton,
                             bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier))
            if click is None or not self.click_available:
                return False  # off the image: the press pans
            self.add_click(click)
            return True
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        if self.tool in (BRUSH, ERASER):
            self._stroke_before = self.session.mask.copy()
            self._stroke_bbox = None
            self._last = pos
            self._paint_to(pos)
            return True
        if self.tool in (POLYGON, POLYGON_ERASE):
            self._points.append((pos.x(), pos.y()))
            self._update_path(closed=False)
            return True
        if self.tool in (LASSO, LASSO_ERASE):
            self._points = [(pos.x(), pos.y())]
            self._update_path(closed=False)
            return True
        if self.tool == PUSH_PULL:
            self._stroke_before = self.session.mask.copy()
            self._stroke_bbox = None
            self._drag_start = pos
            return True
        return False

    def mouse_move(self, view: PairGraphicsView, pos: QPointF, event: QMouseEvent) -> bool:
        if self.tool in (BRUSH, ERASER, PUSH_PULL):
            self.pair.set_brush_cursor(view, pos, self.radius)
        pressed = bool(event.buttons() & Qt.MouseButton.LeftButton)
        if not pressed or not self._editable():
            if self.tool in (POLYGON, POLYGON_ERASE) and self._points:
                self._update_path(closed=False, hover=pos)
            return False
        if self.tool in (BRUSH, ERASER) and self._last is not None:
            self._paint_to(pos)
            return True
        if self.tool in (LASSO, LASSO_ERASE) and self._points:
            last = self._points[-1]
            if (pos.x() - last[0]) ** 2 + (pos.y() - last[1]) ** 2 >= 1.0:
                self._points.append((pos.x(), pos.y()))
                self._update_path(closed=False)
            return True
        if self.tool == PUSH_PULL and self._drag_start is not None:
            assert self.session is not None
            start = (self._drag_start.x(), self._drag_start.y())
            bbox = mask_ops.push_pull(self.session.mask, start, (pos.x(), pos.y()), self.radius)
            self._drag_start = pos
            if bbox is not None:
                self._stroke_bbox = mask_ops.union_bbox(self._stroke_bbox, bbox)
                self.pair.overlay.refresh(bbox)
            return True
        return False

    def mouse_release(self, view: PairGraphicsView, pos: QPointF, event: QMouseEvent) -> bool:
        if not self._editable():
            return False
        if self.tool in (BRUSH, ERASER) and self._last is not None:
            self._last = None
            self._end_stroke(QCoreApplication.translate("Tools", "Brush stroke") if self.tool == BRUSH
                             else QCoreApplication.translate("Tools", "Erase stroke"))
            return True
        if self.tool in (LASSO, LASSO_ERASE) and self._points:
            self.close_shape()
            return True
        if self.tool == PUSH_PULL and self._drag_start is not None:
            self._drag_start = None
            self._end_stroke(QCoreApplication.translate("Tools", "Push/pull"))
            return True
        return False

    def wheel(self, view: PairGraphicsView, event: QWheelEvent) -> bool:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = event.angleDelta().y() / 120.0
            self.set_radius(int(round(self.radius * (1.15 ** steps))) + (1 if steps > 0 else -1 if steps < 0 else 0))
            self.pair.set_brush_cursor(view, view.mapToScene(event.position().toPoint()), self.radius)
            event.accept()
            return True
        return False

    def key_press(self, view: PairGraphicsView, event: QKeyEvent) -> bool:
        if self.tool in (POLYGON, POLYGON_ERASE) and self._points:
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.close_shape()
                return True
            if event.key() == Qt.Key.Key_Escape:
                self.cancel_shape()
                return True
            if event.key() == Qt.Key.Key_Backspace:
                self._points.pop()
                self._update_path(closed=False)
                return True
        return False

    def has_open_shape(self) -> bool:
        return bool(self._points)

    # --- strokes -------------------------------------------------------------------------------
    def _paint_to(self, pos: QPointF) -> None:
        assert self.session is not None and self._last is not None
        value = 1 if self.tool == BRUSH else 0
        bbox = mask_ops.stamp_segment(self.session.mask, (self._last.x(), self._last.y()),
                                      (pos.x(), pos.y()), self.radius, value)
        self._last = pos
        if bbox is not None:
            self._stroke_bbox = mask_ops.union_bbox(self._stroke_bbox, bbox)
            self.pair.overlay.refresh(bbox)

    def _end_stroke(self, text: str) -> None:
        assert self.session is not None
        before, bbox = self._stroke_before, self._stroke_bbox
        self._stroke_before, self._stroke_bbox = None, None
        if before is None or bbox is None:
            return
        x0, y0, x1, y1 = bbox
        self.push_edit(bbox, before[y0:y1, x0:x1].copy(), text)

    def push_edit(self, bbox: BBox, before_patch: np.ndarray, text: str,
                  clicks: tuple[tuple[Click, ...], tuple[Click, ...]] | None = None) -> None:
        """Record an edit that is already on the mask as one undoable command (``clicks``: the
        click list before and after it, when the edit changes that too)."""
        assert self.session is not None
        x0, y0, x1, y1 = bbox
        after = self.session.mask[y0:y1, x0:x1].copy()
        if np.array_equal(after, before_patch):
            if clicks is not None:
                self.session.clicks = list(clicks[0])
            return
        cmd = MaskEditCommand(self.session, bbox, before_patch, after, text, self._after_undo_redo, clicks)
        self.session.undo.push(cmd)
        self.maskEdited.emit(self.session.case_id)

    def _after_undo_redo(self, session: CaseSession, bbox: BBox | None) -> None:
        if bbox is not None and session is self.session and self.pair.overlay is not None:
            self.pair.overlay.refresh(bbox)
        self.maskEdited.emit(session.case_id)

    # --- click to correct --------------------------------------------------------------------------
    def add_click(self, click: Click) -> None:
        """Add a click to the current case as one undoable command; its prediction follows."""
        if not self._editable():
            return
        assert self.session is not None
        s = self.session
        cmd = ClickCommand(s, click, self._after_undo_redo)
        s.clicks.append(click)
        s.undo.push(cmd)  # stack_changed asks for the prediction
        self.maskEdited.emit(s.case_id)

    def stack_changed(self, session: CaseSession) -> None:
        """Any push, undo or redo on a case's stack (connected to its indexChanged): a click result
        still on its way is stale unless its command is the newest again; an unpredicted click on
        top asks for its prediction."""
        if self.pending_click is not None and self.pending_click[0] is session:
            self.pending_click = None
        top = top_command(session)
        if isinstance(top, ClickCommand) and not top.predicted:
            self.pending_click = (session, top)
            self.clickRequested.emit(session)
        self.clicksChanged.emit(session.case_id)

    def click_pending(self, session: CaseSession | None) -> bool:
        """Whether the newest click of ``session`` waits for its prediction."""
        return session is not None and self.pending_click is not None and self.pending_click[0] is session

    def apply_click_result(self, session: CaseSession, mask: np.ndarray, model_id: str | None) -> bool:
        """Put a click prediction on the mask if its click is still the newest command (True)."""
        if self.pending_click is None or self.pending_click[0] is not session:
            return False
        cmd = self.pending_click[1]
        self.pending_click = None
        if top_command(session) is not cmd:
            return False
        before = session.mask.copy()
        bbox = mask_ops.replace_into(session.mask, np.asarray(mask).astype(np.uint8))
        if bbox is None:
            cmd.set_result(None, None, None)
        else:
            x0, y0, x1, y1 = bbox
            cmd.set_result(bbox, before[y0:y1, x0:x1], session.mask[y0:y1, x0:x1])
            if session is self.session and self.pair.overlay is not None:
                self.pair.overlay.refresh(bbox)
        session.click_model_id = model_id
        if bbox is not None and session.saved_index == session.undo.index():
            session.saved_index = -1  # saved while the prediction was on its way: save again
        self.maskEdited.emit(session.case_id)
        return True

    def click_provenance(self, session: CaseSession) -> dict | None:
        """What the revision saved from ``session`` records about its clicks (None without)."""
        return click_provenance(session.clicks, session.click_model_id,
                                edited_after=bool(session.clicks) and not isinstance(top_command(session), ClickCommand),
                                pending=self.click_pending(session))

    # --- polygon / lasso -------------------------------------------------------------------------
    def _update_path(self, closed: bool, hover: QPointF | None = None) -> None:
        pts = list(self._points) + ([(hover.x(), hover.y())] if hover is not None else [])
        for role, view in self.pair.views.items():
            item = self._path_items.get(role)
            if item is None:
                item = QGraphicsPathItem()
                pen = QPen(QColor(0, 230, 255), 0)
                pen.setCosmetic(True)
                pen.setStyle(Qt.PenStyle.DashLine)
                item.setPen(pen)
                item.setZValue(35)
                view.scene().addItem(item)
                self._path_items[role] = item
            path = QPainterPath()
            if pts:
                path.moveTo(*pts[0])
                for p in pts[1:]:
                    path.lineTo(*p)
                if closed:
                    path.closeSubpath()
            item.setPath(path)

    def close_shape(self) -> None:
        """Fill or erase the polygon/lasso drawn so far as one undoable edit."""
        if not self._editable() or len(self._points) < 3:
            self.cancel_shape()
            return
        assert self.session is not None
        value = 0 if self.tool in (POLYGON_ERASE, LASSO_ERASE) else 1
        before = self.session.mask.copy()
        bbox = mask_ops.fill_polygon(self.session.mask, self._points, value)
        label = QCoreApplication.translate("Actions", TOOL_LABELS[self.tool])
        self.cancel_shape()
        if bbox is not None:
            self.pair.overlay.refresh(bbox)
            x0, y0, x1, y1 = bbox
            self.push_edit(bbox, before[y0:y1, x0:x1], label)

    def cancel_shape(self) -> None:
        self._points = []
        for item in self._path_items.values():
            item.setPath(QPainterPath())

    # --- whole-mask operations ----------------------------------------------------------------
    def apply_operation(self, name: str, **kwargs: float) -> bool:
        """Run a mask_ops operation (smooth, grow/shrink, fill holes, islands, refine) undoably."""
        if not self._editable():
            return False
        assert self.session is not None
        before = self.session.mask.copy()
        mask = self.session.mask
        if name == "smooth":
            bbox = mask_ops.smooth(mask, kwargs.get("sigma", 2.0))
        elif name == "grow":
            bbox = mask_ops.grow_shrink(mask, int(kwargs.get("pixels", 2)))
        elif name == "shrink":
            bbox = mask_ops.grow_shrink(mask, -int(kwargs.get("pixels", 2)))
        elif name == "fill_holes":
            bbox = mask_ops.fill_holes(mask)
        elif name == "remove_islands":
            bbox = mask_ops.remove_islands(mask, int(kwargs.get("min_pixels", 50)))
        elif name == "refine":
            if self.image_rgb is None:
                return False
            bbox = mask_ops.grabcut_refine(self.image_rgb, mask)
        else:
            raise ValueError(f"unknown operation {name!r}")
        if bbox is None:
            return False
        self.pair.overlay.refresh(bbox)
        x0, y0, x1, y1 = bbox
        self.push_edit(bbox, before[y0:y1, x0:x1], QCoreApplication.translate("Tools", OPERATION_UNDO_TEXT[name]))
        return True

    def replace_mask(self, new_mask: np.ndarray, text: str) -> bool:
        """Swap in a whole mask (e.g. 'use the model's prediction') as one undoable edit; it also
        ends a click session (undo brings the clicks back), since its clicks no longer describe
        the new mask."""
        if not self._editable():
            return False
        assert self.session is not None
        before = self.session.mask.copy()
        bbox = mask_ops.replace_into(self.session.mask, new_mask.astype(np.uint8))
        if bbox is None:
            return False
        self.pair.overlay.refresh(bbox)
        x0, y0, x1, y1 = bbox
        clicks = (tuple(self.session.clicks), ()) if self.session.clicks else None
        if clicks is not None:
            self.session.clicks = []
        self.push_edit(bbox, before[y0:y1, x0:x1], text, clicks)
        return True


def top_command(session: CaseSession) -> QUndoCommand | None:
    """The newest command still applied on a case's undo stack."""
    i = session.undo.index()
    return session.undo.command(i - 1) if i > 0 else None
