"""The paired WLI | NBI view: two QGraphicsViews over WLI-space scenes with one shared view transform.

The NBI pixmap carries the case's NBI->WLI homography as its QTransform, so a scene point means
the same WLI pixel in both views: zoom and pan are shared by copying the transform and centre,
the crosshair in the other view is drawn at the same scene point (which lands on the
homography-mapped NBI pixel), and one overlay buffer and one set of tools serve both views.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import qimage2ndarray
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QCursor,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsLineItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QLabel,
    QSplitter,
    QStyleOptionGraphicsItem,
    QVBoxLayout,
    QWidget,
)

from viewer.overlay import OverlayBuffer, OverlayItem

WLI, NBI = "wli", "nbi"
NO_NBI_FILL = QColor(52, 52, 52)  # the NBI side of a case without NBI: lighter than the view's background
LAYOUTS = ("side_by_side", "wli_only", "nbi_only", "swapped")
ZOOM_STEP = 1.25
MIN_SCALE, MAX_SCALE = 0.02, 64.0


def homography_to_qtransform(h: np.ndarray) -> QTransform:
    """Qt uses row vectors (p' = p M), numpy homographies column vectors (p' = H p): transpose."""
    h = np.asarray(h, dtype=np.float64)
    return QTransform(h[0, 0], h[1, 0], h[2, 0], h[0, 1], h[1, 1], h[2, 1], h[0, 2], h[1, 2], h[2, 2])


class ToolHandler(Protocol):
    """What the editing layer implements; returning True means the event was consumed."""

    def mouse_press(self, view: PairGraphicsView, pos: QPointF, event: QMouseEvent) -> bool: ...
    def mouse_move(self, view: PairGraphicsView, pos: QPointF, event: QMouseEvent) -> bool: ...
    def mouse_release(self, view: PairGraphicsView, pos: QPointF, event: QMouseEvent) -> bool: ...
    def wheel(self, view: PairGraphicsView, event: QWheelEvent) -> bool: ...
    def key_press(self, view: PairGraphicsView, event: QKeyEvent) -> bool: ...


class ClickMarker(QGraphicsItem):
    """A click of the click tool: a green (+) or red (−) disc of constant screen size."""

    RADIUS = 8.0  # screen pixels

    def __init__(self, x: float, y: float, positive: bool) -> None:
        super().__init__()
        self.positive = positive
        self.setPos(x, y)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setZValue(45)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        r = self.RADIUS + 2.0
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,  # noqa: D401
              widget: QWidget | None = None) -> None:
        r = self.RADIUS
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor(0, 0, 0, 160), 1.0))  # a dark rim: visible on pale mucosa too
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(QPointF(0, 0), r + 1.0, r + 1.0)
        painter.setPen(QPen(QColor(255, 255, 255), 1.5))
        painter.setBrush(QColor(20, 190, 70) if self.positive else QColor(225, 40, 40))
        painter.drawEllipse(QPointF(0, 0), r, r)
        painter.setPen(QPen(QColor(255, 255, 255), 2.0))
        arm = r * 0.55
        painter.drawLine(QPointF(-arm, 0), QPointF(arm, 0))
        if self.positive:
            painter.drawLine(QPointF(0, -arm), QPointF(0, arm))


class PairGraphicsView(QGraphicsView):
    """One side of the pair. Wheel zooms at the cursor, middle/right drag pans, left goes to the
    tool (right too, for a tool that takes it: the click tool's "not tumour")."""

    viewChanged = Signal(object)      # self, after zoom/pan
    hovered = Signal(object, object)  # self, QPointF scene pos or None when the cursor leaves

    def __init__(self, role: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setBackgroundBrush(QBrush(QColor(24, 24, 24)))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setMouseTracking(True)
        # Panning is by drag; scroll bars would only eat image space.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.tool: ToolHandler | None = None
        self.tool_cursor: Qt.CursorShape | None = None  # the active tool's cursor, back after a pan
        self._pan_from: QPointF | None = None
        self.horizontalScrollBar().valueChanged.connect(lambda _v: self.viewChanged.emit(self))
        self.verticalScrollBar().valueChanged.connect(lambda _v: self.viewChanged.emit(self))

    # --- zoom / pan -------------------------------------------------------------------------
    def zoom_by(self, factor: float, anchor_view_pos: QPointF | None = None) -> None:
        """Zoom keeping the scene point under ``anchor_view_pos`` (or the centre) fixed."""
        current = self.transform().m11()
        factor = max(MIN_SCALE / current, min(MAX_SCALE / current, factor))
        if anchor_view_pos is None:
            anchor_view_pos = QPointF(self.viewport().rect().center())
        before = self.mapToScene(anchor_view_pos.toPoint())
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.scale(factor, factor)
        after = self.mapToScene(anchor_view_pos.toPoint())
        delta = after - before
        self.translate(delta.x(), delta.y())
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.viewChanged.emit(self)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        if self.tool is not None and self.tool.wheel(self, event):
            return
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(ZOOM_STEP ** steps, event.position())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """Left and right go to the active tool; what it declines (and middle drags) pans."""
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        if (event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton) and self.tool is not None
                and self.tool.mouse_press(self, _exact_scene_pos(self, event), event)):
            event.accept()
            return
        self._pan_from = event.position()
        self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = _exact_scene_pos(self, event)
        self.hovered.emit(self, pos)
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(round(delta.x())))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(round(delta.y())))
        elif self.tool is not None:
            self.tool.mouse_move(self, pos, event)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pan_from is not None:
            self._pan_from = None
            self.set_tool_cursor(self.tool_cursor)
        elif self.tool is not None:
            self.tool.mouse_release(self, _exact_scene_pos(self, event), event)
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.mousePressEvent(event)

    def set_tool_cursor(self, shape: Qt.CursorShape | None) -> None:
        """The cursor over the image while a tool is active (None: the default arrow)."""
        self.tool_cursor = shape
        if shape is None:
            self.viewport().unsetCursor()
        else:
            self.viewport().setCursor(QCursor(shape))

    def leaveEvent(self, event) -> None:  # noqa: N802, ANN001
        self.hovered.emit(self, None)
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if self.tool is not None and self.tool.key_press(self, event):
            return
        super().keyPressEvent(event)


def _exact_scene_pos(view: QGraphicsView, event: QMouseEvent) -> QPointF:
    """Scene position with sub-pixel precision (mapToScene(QPoint) would round the view pos)."""
    inv, _ok = view.viewportTransform().inverted()
    return inv.map(event.position())


class PairView(QWidget):
    """Two linked views (WLI | NBI), their image items, the shared overlay and the crosshair."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.views: dict[str, PairGraphicsView] = {WLI: PairGraphicsView(WLI), NBI: PairGraphicsView(NBI)}
        self.image_items: dict[str, QGraphicsPixmapItem] = {}
        self.overlay_items: dict[str, OverlayItem] = {}
        self.crosshairs: dict[str, tuple[QGraphicsLineItem, QGraphicsLineItem]] = {}
        self.brush_cursors: dict[str, QGraphicsEllipseItem] = {}
        self.click_markers: dict[str, list[ClickMarker]] = {WLI: [], NBI: []}
        self.titles: dict[str, QLabel] = {}
        self.containers: dict[str, QWidget] = {}
        self.overlay: OverlayBuffer | None = None
        self.homography = np.eye(3)
        self.layout_mode = "side_by_side"
        self._syncing = False
        self._fit_mode = True
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setHandleWidth(4)
        for role, view in self.views.items():
            box = QWidget()
            lay = QVBoxLayout(box)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.setSpacing(0)
            title = QLabel(role.upper())
            title.setObjectName("viewTitle")
            title.setAlignment(Qt.AlignmentFlag.AlignCenter)
            title.setMinimumHeight(26)
            lay.addWidget(title)
            lay.addWidget(view, 1)
            self.titles[role] = title
            self.containers[role] = box
            self.splitter.addWidget(box)
            view.viewChanged.connect(self._sync_from)
            view.hovered.connect(self._on_hover)
            self._make_scene_items(role)
        self.banner = QLabel(self)
        self.banner.setObjectName("errorBanner")
        self.banner.setWordWrap(True)
        self.banner.hide()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.banner)
        lay.addWidget(self.splitter, 1)

    # --- scene contents ---------------------------------------------------------------------
    def _make_scene_items(self, role: str) -> None:
        scene = self.views[role].scene()
        img = QGraphicsPixmapItem()
        img.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        img.setZValue(0)
        scene.addItem(img)
        self.image_items[role] = img
        pen = QPen(QColor(0, 255, 255, 220), 0)  # cosmetic: 1 px at any zoom
        pen.setCosmetic(True)
        lines = (QGraphicsLineItem(), QGraphicsLineItem())
        for line in lines:
            line.setPen(pen)
            line.setZValue(30)
            line.hide()
            scene.addItem(line)
        self.crosshairs[role] = lines
        cursor = QGraphicsEllipseItem()
        cpen = QPen(QColor(255, 255, 255, 230), 0)
        cpen.setCosmetic(True)
        cursor.setPen(cpen)
        cursor.setZValue(40)
        cursor.hide()
        scene.addItem(cursor)
        self.brush_cursors[role] = cursor

    def set_case(self, wli: np.ndarray, nbi: np.ndarray | None, homography: np.ndarray | None,
                 nbi_label: str = "NBI") -> None:
        """Show a new pair: WLI as is, NBI through its NBI->WLI homography, overlay reset."""
        h, w = wli.shape[:2]
        self.homography = np.eye(3) if homography is None else np.asarray(homography, np.float64)
        self.image_items[WLI].setPixmap(_to_pixmap(wli))
        if nbi is not None:
            self.image_items[NBI].setPixmap(_to_pixmap(nbi))
            self.image_items[NBI].setTransform(homography_to_qtransform(self.homography))
            self.image_items[NBI].show()
        else:
            # No NBI: a flat frame of the WLI's size, so the outline, the clicks and the crosshair this
            # side still takes sit inside a visible image area instead of floating on the background.
            blank = QPixmap(w, h)
            blank.fill(NO_NBI_FILL)
            self.image_items[NBI].setPixmap(blank)
            self.image_items[NBI].setTransform(QTransform())
            self.image_items[NBI].show()
        self.titles[WLI].setText("WLI")
        self.titles[NBI].setText(nbi_label)
        if self.overlay is None or self.overlay.size != (w, h):
            style = self.overlay.style if self.overlay is not None else None
            for item in self.overlay_items.values():
                item.detach()
                item.scene().removeItem(item)
            self.overlay = OverlayBuffer(w, h)
            if style is not None:
                self.overlay.style = style
            for role, view in self.views.items():
                item = OverlayItem(self.overlay)
                view.scene().addItem(item)
                self.overlay_items[role] = item
        self.overlay.set_data(None, None)
        rect = QRectF(0, 0, w, h)
        for view in self.views.values():
            view.scene().setSceneRect(rect.adjusted(-w, -h, w, h))  # room to pan past the edges
        self.fit()

    def scene_rect(self) -> QRectF:
        if self.overlay is None:
            return QRectF()
        w, h = self.overlay.size
        return QRectF(0, 0, w, h)

    # --- linked zoom / pan ------------------------------------------------------------------
    def _sync_from(self, src: PairGraphicsView) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            center = src.mapToScene(src.viewport().rect().center())
            for view in self.views.values():
                if view is src:
                    continue
                view.setTransform(src.transform())
                view.centerOn(center)
        finally:
            self._syncing = False

    def fit(self) -> None:
        """Fit the image in the view (both views follow)."""
        rect = self.scene_rect()
        if rect.isEmpty():
            return
        self._fit_mode = True
        src = self.primary_view()
        src.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        self._sync_from(src)

    def actual_size(self) -> None:
        """One screen pixel per image pixel, keeping the current centre."""
        src = self.primary_view()
        center = src.mapToScene(src.viewport().rect().center())
        src.setTransform(QTransform())
        src.centerOn(center)
        self._fit_mode = False
        self._sync_from(src)

    def zoom(self, factor: float) -> None:
        self._fit_mode = False
        self.primary_view().zoom_by(factor)

    def primary_view(self) -> PairGraphicsView:
        return self.views[NBI] if self.layout_mode == "nbi_only" else self.views[WLI]

    def resizeEvent(self, event) -> None:  # noqa: N802, ANN001
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()

    # --- layouts ------------------------------------------------------------------------------
    def set_layout_mode(self, mode: str) -> None:
        """Side by side, WLI only, NBI only or swapped (NBI left)."""
        if mode not in LAYOUTS:
            raise ValueError(f"unknown layout {mode!r}")
        self.layout_mode = mode
        self.containers[WLI].setVisible(mode != "nbi_only")
        self.containers[NBI].setVisible(mode != "wli_only")
        first = self.containers[NBI] if mode == "swapped" else self.containers[WLI]
        self.splitter.insertWidget(0, first)
        if mode in ("side_by_side", "swapped"):
            self.splitter.setSizes([1, 1])
        if self._fit_mode:
            self.fit()

    # --- crosshair and brush cursor -----------------------------------------------------------
    def _on_hover(self, src: PairGraphicsView, pos: QPointF | None) -> None:
        for role, view in self.views.items():
            show = pos is not None and view is not src
            for line in self.crosshairs[role]:
                line.setVisible(show)
            if show:
                self._place_crosshair(role, pos)

    def _place_crosshair(self, role: str, pos: QPointF) -> None:
        scale = self.views[role].transform().m11() or 1.0
        arm = 14.0 / scale
        hline, vline = self.crosshairs[role]
        hline.setLine(pos.x() - arm, pos.y(), pos.x() + arm, pos.y())
        vline.setLine(pos.x(), pos.y() - arm, pos.x(), pos.y() + arm)

    def crosshair_position(self, role: str) -> QPointF | None:
        """Scene position of the crosshair shown in ``role``'s view (None when hidden)."""
        hline, _ = self.crosshairs[role]
        if not hline.isVisible():
            return None
        line = hline.line()
        return QPointF((line.x1() + line.x2()) / 2.0, line.y1())

    def nbi_pixel_at(self, scene_pos: QPointF) -> QPointF:
        """The raw NBI pixel shown at a scene (WLI) point: the inverse homography."""
        return self.image_items[NBI].mapFromScene(scene_pos)

    def set_brush_cursor(self, view: PairGraphicsView | None, pos: QPointF | None, radius: float) -> None:
        """A round cursor at true brush size on the hovered view only."""
        for role, item in self.brush_cursors.items():
            on = view is not None and pos is not None and self.views[role] is view and radius > 0
            item.setVisible(on)
            if on:
                item.setRect(pos.x() - radius, pos.y() - radius, 2 * radius, 2 * radius)

    # --- messages -----------------------------------------------------------------------------
    def show_error(self, text: str | None) -> None:
        """A non-modal red banner above the views (never blocks the clinician)."""
        if text:
            self.banner.setText(text)
            self.banner.show()
        else:
            self.banner.hide()

    def set_tool(self, tool: ToolHandler | None) -> None:
        for view in self.views.values():
            view.tool = tool

    def set_tool_cursor(self, shape: Qt.CursorShape | None) -> None:
        for view in self.views.values():
            view.set_tool_cursor(shape)

    def set_click_markers(self, clicks: list[tuple[float, float, bool]]) -> None:
        """Draw the click tool's clicks, (x, y, positive) in WLI space, on both views."""
        for role, view in self.views.items():
            for item in self.click_markers[role]:
                view.scene().removeItem(item)
            self.click_markers[role] = []
            for x, y, positive in clicks:
                item = ClickMarker(x, y, positive)
                view.scene().addItem(item)
                self.click_markers[role].append(item)


def _to_pixmap(rgb: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(qimage2ndarray.array2qimage(np.ascontiguousarray(rgb)))
