"""Render resources/icons/adf-viewer.svg to the raster icons each platform wants.

    .venv/bin/python packaging/make_icons.py

Writes adf-viewer.png (256 px, the Linux desktop entry and the window), adf-viewer-48.png,
adf-viewer.ico (Windows EXE) and adf-viewer.icns (macOS app bundle) next to the SVG, with Qt's
own SVG renderer and image writers (no extra tool). The outputs are committed, so a build never
needs to run this; rerun it after editing the SVG.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"
SVG = ICONS / "adf-viewer.svg"


def render(size: int):  # -> QImage
    """The SVG drawn at size x size with a transparent background."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise RuntimeError(f"cannot parse {SVG}")
    img = QImage(size, size, QImage.Format.Format_ARGB32)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(p)
    p.end()
    return img


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    outputs = {"adf-viewer.png": (256, "PNG"), "adf-viewer-48.png": (48, "PNG"),
               "adf-viewer.ico": (256, "ICO"), "adf-viewer.icns": (256, "ICNS")}
    for name, (size, fmt) in outputs.items():
        if not render(size).save(str(ICONS / name), fmt):
            raise RuntimeError(f"Qt could not write {name} ({fmt})")
        print(f"{ICONS / name}  {(ICONS / name).stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
