"""Render the click tool at work to docs/screenshot-clicks.png (README, "Click to correct").

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python docs/make_screenshot_clicks.py --model CARD.json

Opens the demo workspace with ``--model`` active (default: the bundled model, which must have been
trained with clicks), chooses the click tool and clicks the views with real mouse events: one
positive click on the lesion in the WLI view, then ``--negative`` clicks (right button) on the
NBI view, waiting for each redrawn mask. Clicks are given in WLI pixels: ``--click X,Y`` for the
positive one, ``--negative X,Y`` (repeatable) for the others; by default the positive click goes
to the centre of the reference mask and no negative click is made.
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


def _xy(text: str) -> tuple[float, float]:
    x, y = (float(v) for v in text.split(","))
    return x, y


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshot-clicks.png"))
    ap.add_argument("--model", default=None, help="model card (.json) trained with clicks (default: bundled)")
    ap.add_argument("--case", default="vf_0063", help="demo case id")
    ap.add_argument("--click", type=_xy, default=None, help="positive click X,Y in WLI pixels")
    ap.add_argument("--negative", type=_xy, action="append", default=[], help="negative click X,Y (repeatable)")
    ap.add_argument("--size", default=None, help="window WxH (default: the first-start size)")
    ap.add_argument("--zoom", type=float, default=1.0, help="zoom factor over 'fit', centred on the positive click")
    args = ap.parse_args()
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from training.demo import build_demo_workspace
    from training.imageio import read_mask
    from training.paths import bundled_model_card
    from training.store import Workspace
    from viewer.app import make_app, settings_at
    from viewer.main_window import MainWindow
    from viewer.tools import CLICK, ClickCommand, top_command

    app = make_app()

    def pump(seconds: float) -> None:
        end = time.time() + seconds
        while time.time() < end:
            app.processEvents()
            time.sleep(0.02)

    def until(cond, timeout: float = 120.0) -> None:  # noqa: ANN001
        end = time.time() + timeout
        while time.time() < end and not cond():
            app.processEvents()
            time.sleep(0.02)

    with tempfile.TemporaryDirectory() as tmp:
        ws_path = build_demo_workspace(Path(tmp) / "demo-workspace")
        with Workspace.open(ws_path) as ws:
            ws.register_model(Path(args.model or bundled_model_card()), activate=True)
        win = MainWindow(settings_at(Path(tmp) / "s.ini"), device="cpu", author="demo")
        if args.size:
            w, h = (int(v) for v in args.size.split("x"))
            win.resize(w, h)
        win.show()
        win.open_workspace(ws_path)
        win.open_case(args.case)
        until(lambda: win.current_session() is not None and win.current_session().prob is not None)
        until(lambda: win.click_model is not None and win.click_model[1], 60)
        if not win.tool_actions[CLICK].isEnabled():
            print(f"the model has no click mode: {win.click_status}", file=sys.stderr)
            return 2
        win.editor.set_tool(CLICK)
        s = win.current_session()
        click = args.click
        if click is None:
            ref = read_mask(ROOT / "resources" / "demo" / f"{args.case}_mask.png")
            ys, xs = np.nonzero(ref)
            click = (float(xs.mean()), float(ys.mean()))
        if args.zoom != 1.0:
            win.pair.zoom(args.zoom)
            win.pair.primary_view().centerOn(QPointF(click[0] - 20.0, click[1]))
            pump(0.3)
        presses = [("wli", click, Qt.MouseButton.LeftButton)]
        presses += [("nbi", p, Qt.MouseButton.RightButton) for p in args.negative]
        for role, (x, y), button in presses:
            view = win.pair.views[role]
            QTest.mouseClick(view.viewport(), button, Qt.KeyboardModifier.NoModifier,
                             view.mapFromScene(QPointF(x + 0.5, y + 0.5)))
            until(lambda: isinstance(top_command(s), ClickCommand) and top_command(s).predicted)
        # the crosshair where the last click went, as while hovering
        last = s.clicks[-1]
        win.pair._on_hover(win.pair.views["wli"], QPointF(last.x + 0.5, last.y + 0.5))
        pump(0.5)
        win.grab().save(args.out)
        print(f"wrote {args.out} ({args.case}, {len(s.clicks)} clicks)")
        win.close()
        QApplication.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
