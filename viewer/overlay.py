"""Mask overlay: one premultiplied ARGB buffer shared with numpy, painted by two scene items.

Both views' scenes are in WLI pixel coordinates (DESIGN.md), so the very same buffer serves the
WLI view and the NBI view; an edit recolours only its bounding box and asks both items to repaint
only that rectangle.
"""
from __future__ import annotations

import numpy as np
import qimage2ndarray
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from viewer import mask_ops
from viewer.mask_ops import BBox, OverlayStyle


class OverlayBuffer:
    """Owns the working mask, the probability map and the ARGB image they are drawn into."""

    def __init__(self, width: int, height: int) -> None:
        self.image = QImage(width, height, QImage.Format.Format_ARGB32_Premultiplied)
        self.image.fill(0)
        # byte_view shares memory with the QImage: writing the array changes the picture.
        self.bgra = qimage2ndarray.byte_view(self.image)
        self.mask: np.ndarray | None = None
        self.prob: np.ndarray | None = None
        self.style = OverlayStyle()
        self.items: list[OverlayItem] = []

    @property
    def size(self) -> tuple[int, int]:
        return self.image.width(), self.image.height()

    def set_data(self, mask: np.ndarray | None, prob: np.ndarray | None) -> None:
        """Replace mask/probability (e.g. a new case or a new prediction) and redraw everything."""
        self.mask = mask
        self.prob = prob
        self.refresh(None)

    def refresh(self, bbox: BBox | None) -> None:
        """Recolour ``bbox`` (all when None) and repaint exactly that part of every view."""
        box = mask_ops.render_overlay(self.bgra, self.mask, self.prob, self.style, bbox)
        if box is None:
            return
        rect = QRectF(box[0], box[1], box[2] - box[0], box[3] - box[1])
        for item in self.items:
            item.update(rect)


class OverlayItem(QGraphicsItem):
    """Paints the shared overlay image; only the exposed rectangle is drawn."""

    def __init__(self, buffer: OverlayBuffer) -> None:
        super().__init__()
        self.buffer = buffer
        buffer.items.append(self)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.setAcceptedMouseButtons(self.acceptedMouseButtons().NoButton)
        self.setZValue(10)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        w, h = self.buffer.size
        return QRectF(0, 0, w, h)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,  # noqa: D401
              widget: QWidget | None = None) -> None:
        exposed = option.exposedRect.intersected(self.boundingRect()).toAlignedRect()
        if exposed.isEmpty():
            return
        painter.drawImage(exposed, self.buffer.image, exposed)

    def detach(self) -> None:
        """Stop receiving repaints from the buffer (the item is being removed)."""
        if self in self.buffer.items:
            self.buffer.items.remove(self)
