"""What the window remembers between starts (QSettings): geometry, docks, overlay style, layout.

The workspace last opened is remembered too ("last_workspace", read by viewer/app.py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray

from viewer import mask_ops
from viewer.pair_view import LAYOUTS

if TYPE_CHECKING:
    from viewer.main_window import MainWindow


def restore(win: MainWindow) -> None:
    settings = win.settings
    geo = settings.value("geometry")
    if isinstance(geo, QByteArray):
        win.restoreGeometry(geo)
    state = settings.value("windowState")
    if isinstance(state, QByteArray):
        win.restoreState(state)
    mode = settings.value("overlay/mode", mask_ops.OUTLINE)
    idx = win.overlay_mode.findData(mode)
    if idx >= 0:
        win.overlay_mode.setCurrentIndex(idx)
    try:
        win.opacity_slider.setValue(int(settings.value("overlay/opacity", 45)))
    except (TypeError, ValueError):
        pass
    layout = str(settings.value("layout", "side_by_side"))
    if layout in LAYOUTS:
        win.set_layout_mode(layout)


def save(win: MainWindow) -> None:
    settings = win.settings
    settings.setValue("geometry", win.saveGeometry())
    settings.setValue("windowState", win.saveState())
    settings.setValue("overlay/mode", win.overlay_mode.currentData())
    settings.setValue("overlay/opacity", win.opacity_slider.value())
    settings.setValue("layout", win.pair.layout_mode)
    if win.ws is not None:
        settings.setValue("last_workspace", str(win.ws.root))
    settings.sync()
