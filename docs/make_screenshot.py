"""Render the main window on a demo case to docs/screenshot.png (the README's picture).

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python docs/make_screenshot.py
    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/make_screenshot.py      # also works
    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python docs/make_screenshot.py --lang zh_CN \
        --out docs/screenshot-zh_CN.png --dialog-out docs/screenshot-zh_CN-train.png \
        --about-out docs/screenshot-zh_CN-about.png                                  # in Chinese

The window keeps its first-start size (1600 x 1000, MainWindow's default) unless --size is given.
Regenerate it whenever the window changes.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_DRIVER", "PySide6")


def grab_window(app, widget, out: str) -> None:
    """Show a dialog, let it lay out and paint, save its picture, close it."""
    widget.show()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    widget.grab().save(out)
    print(f"wrote {out}")
    widget.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    ap.add_argument("--case", default=None, help="case id to show (default: the first vocal-fold case)")
    ap.add_argument("--size", default=None, help="WxH (default: the window's first-start size)")
    ap.add_argument("--mode", default="outline", choices=("outline", "fill", "probability"))
    ap.add_argument("--lang", default="en", help="language of the window (en, zh_CN; viewer/i18n.py)")
    ap.add_argument("--dialog-out", default=None, help="also render Model ▸ Train a new version… to this file")
    ap.add_argument("--about-out", default=None, help="also render Help ▸ About (the medical disclaimer) to this file")
    args = ap.parse_args()
    os.environ["ADF_LANG"] = args.lang
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from training.demo import build_demo_workspace
    from viewer.app import make_app, settings_at
    from viewer.main_window import MainWindow

    app = make_app()
    with tempfile.TemporaryDirectory() as tmp:
        ws = build_demo_workspace(Path(tmp) / "demo-workspace")
        win = MainWindow(settings_at(Path(tmp) / "s.ini"), device="cpu", author="demo")
        if args.size:
            w, h = (int(v) for v in args.size.split("x"))
            win.resize(w, h)
        win.show()
        win.open_workspace(ws)
        ids = [win.worklist_model.case_at(r).id for r in range(win.worklist_model.rowCount())]
        case = args.case or next((i for i in ids if "vf" in i or "vocal" in i), ids[0])
        win.open_case(case)
        mode_idx = win.overlay_mode.findData(args.mode)
        win.overlay_mode.setCurrentIndex(mode_idx)
        deadline = time.time() + 120
        while time.time() < deadline:
            app.processEvents()
            s = win.current_session()
            if s is not None and s.prob is not None:
                break
            time.sleep(0.02)
        # Show the crosshair as a clinician would see it while hovering the WLI view.
        from PySide6.QtCore import QPointF

        s = win.current_session()
        if s is not None and s.mask.any():
            import numpy as np

            ys, xs = np.nonzero(s.mask)
            win.pair._on_hover(win.pair.views["wli"], QPointF(float(xs.mean()), float(ys.mean())))
        for _ in range(20):
            app.processEvents()
            time.sleep(0.02)
        win.grab().save(args.out)
        print(f"wrote {args.out} ({case})")
        if args.dialog_out:
            from viewer.train_dialog import TrainDialog

            grab_window(app, TrainDialog(win.ws.root, win.ws.models(), win), args.dialog_out)
        if args.about_out:
            from viewer.dialog_launchers import about_box

            grab_window(app, about_box(win), args.about_out)
        win.close()
        QApplication.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
