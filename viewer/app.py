"""Application start-up: Qt application, settings, the workspace to open, the self-test.

Kept light on purpose: nothing here imports torch (the worker thread does, after the window is
shown), so the window appears within a second.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

APP_ORG = "ADF Viewer"
APP_NAME = "ADF Viewer"


def display_available() -> bool:
    """Whether Qt can open a window here (avoids Qt's misleading 'xcb-cursor0' abort)."""
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def make_app(argv: list[str] | None = None, settings: Any = None) -> Any:
    """The QApplication with our style sheet, names and translators (reused if one exists, e.g. under
    pytest-qt). The language: ``$ADF_LANG``, else the Settings dialog's choice in ``settings``,
    else the OS's (viewer/i18n.py)."""
    os.environ.setdefault("QT_DRIVER", "PySide6")
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication(argv or [sys.argv[0]])
    app.setOrganizationName(APP_ORG)
    app.setApplicationName(APP_NAME)
    from training.paths import resource_path

    qss = resource_path("style.qss")
    if qss.is_file():
        app.setStyleSheet(qss.read_text(encoding="utf-8"))
    icon = resource_path("icons", "adf-viewer.png")
    if icon.is_file():
        from PySide6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(icon)))
    app.setDesktopFileName("adf-viewer")  # matches packaging/linux/adf-viewer.desktop (dock icon on Wayland)
    from viewer import i18n

    i18n.install(app, settings)
    return app


def settings_at(path: Path | None = None) -> Any:
    """QSettings in the usual place, or in an INI file (tests, self-test)."""
    from PySide6.QtCore import QSettings

    if path is not None:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings(APP_ORG, APP_NAME)


def _apply_lang_option(args: Any) -> None:
    """``--lang`` overrides the language for this run (through ``$ADF_LANG``, read by viewer/i18n.py)."""
    lang = getattr(args, "lang", None)
    if lang is not None:
        os.environ["ADF_LANG"] = "" if lang == "system" else lang


def choose_workspace(requested: str | None, settings: Any) -> Path | None:
    """--workspace, else the last one used; None: the demo workspace (`start_window` builds it)."""
    if requested:
        return Path(requested).expanduser()
    last = settings.value("last_workspace", "")
    if last and (Path(str(last)) / "workspace.sqlite").is_file():
        return Path(str(last))
    return None


class DemoBuilder:
    """Builds (or updates) the demo workspace in a worker thread, then opens it in the window.

    A first start imports and registers the demo pairs (1.4 s on a quiet 2-core machine): done on
    the UI thread it kept the window from appearing. Now the window shows at once with a status
    line, and opens the demo when it is ready."""

    def __init__(self, win: Any) -> None:
        from PySide6.QtCore import QObject, QThread, Signal

        class _Thread(QThread):
            built = Signal(str)
            failed = Signal(str)

            def run(self) -> None:  # noqa: D401
                try:
                    from training import demo, paths

                    self.built.emit(str(demo.build_demo_workspace(paths.default_demo_workspace())))
                except Exception as exc:  # noqa: BLE001 - one clear line in the window
                    from viewer.i18n import error_text

                    self.failed.emit(error_text(exc))

        assert isinstance(win, QObject)
        self.win = win
        self.preload: threading.Thread | None = None
        self.thread = _Thread()
        self.thread.built.connect(self._built)
        self.thread.failed.connect(self._failed)

    def start(self) -> None:
        from PySide6.QtCore import QCoreApplication

        self.win.statusBar().showMessage(QCoreApplication.translate("App", "Preparing the demo workspace (first start)…"))
        self.win.busy.show()
        self.thread.start()
        self.preload = preload_torch()

    def _built(self, path: str) -> None:
        self.win.busy.hide()
        self.win.statusBar().clearMessage()
        # the clinician may have opened another workspace meanwhile: keep it
        if self.win.ws is None and not self.win.open_workspace(Path(path)):
            print(f"ADF Viewer: cannot open workspace {path}", file=sys.stderr)
        from viewer.timeline import stamp

        stamp("workspace_open")

    def _failed(self, message: str) -> None:
        self.win.busy.hide()
        from PySide6.QtCore import QCoreApplication

        self.win.error_dialog(QCoreApplication.translate("App", "Cannot prepare the demo workspace"), message)
        print(f"ADF Viewer: cannot prepare the demo workspace: {message}", file=sys.stderr)

    def wait(self) -> None:
        """Let a build in progress finish (it renames a complete workspace into place) before exit."""
        self.thread.wait()
        if self.preload is not None:
            self.preload.join()


def preload_torch() -> threading.Thread:
    """Import torch in a thread now (the worker's own import then waits for it, never imports twice).

    Only beside the first-run demo build: that build is mostly OpenCV and SQLite work, which
    releases the GIL, so the two really run in parallel on two cores. At a plain start the
    import would only compete with Qt for the GIL: measured on 2 cores, the window came 0.6 s
    later and the first overlay no sooner (docs/DESIGN-NOTES.md 21). Not a daemon: the
    interpreter never shuts down under a half-done import."""
    def load() -> None:
        try:
            import torch  # noqa: F401
        except Exception:  # noqa: BLE001 - the worker imports it again and reports the error
            pass

    thread = threading.Thread(target=load, name="preload-torch")
    thread.start()
    return thread


def start_window(args: Any, settings: Any, **window_kwargs: Any) -> tuple[Any, DemoBuilder | None]:
    """Show the main window, then open the workspace; the demo workspace is built off the UI thread.

    Returns the window and the demo builder (None when a workspace was given or remembered)."""
    from viewer.main_window import MainWindow
    from viewer.timeline import stamp

    win = MainWindow(settings, device=args.device, **window_kwargs)
    win.show()
    stamp("window_shown")
    ws_path = choose_workspace(args.workspace, settings)
    if ws_path is None:
        builder = DemoBuilder(win)
        builder.start()
        return win, builder
    if not win.open_workspace(ws_path):
        print(f"ADF Viewer: cannot open workspace {ws_path}", file=sys.stderr)
    stamp("workspace_open")
    return win, None


def run(args: Any, t_start: float) -> int:
    """Open the main window on a workspace and run the event loop."""
    if not display_available():
        print("ADF Viewer needs a display. No DISPLAY or WAYLAND_DISPLAY is set; run it on a desktop, "
              "or set QT_QPA_PLATFORM=offscreen for a headless self-test.", file=sys.stderr)
        return 2
    from viewer.timeline import stamp

    _apply_lang_option(args)
    settings = settings_at()
    app = make_app(settings=settings)
    stamp("qt_ready")
    win, builder = start_window(args, settings)
    if os.environ.get("ADF_VIEWER_REPORT_STARTUP"):
        _report_startup(win, t_start)
    code = app.exec()
    if builder is not None:
        builder.wait()
    return code


def _report_startup(win: Any, t_start: float) -> None:
    """For benchmarks: print when the window was shown and when the first overlay painted."""
    from PySide6.QtCore import QTimer

    shown = time.time()
    print(json.dumps({"event": "window_shown", "t": shown}), flush=True)

    def on_overlay(_case_id: str) -> None:
        from viewer.timeline import snapshot

        print(json.dumps({"event": "first_overlay", "t": time.time(), "stages": snapshot(),
                          "cpu_s": round(time.process_time(), 3)}), flush=True)
        if os.environ.get("ADF_VIEWER_REPORT_STARTUP") == "exit":
            QTimer.singleShot(0, win.close)

    win.predictionShown.connect(on_overlay)


def self_test(args: Any, t_start: float) -> int:
    """Build a temporary demo workspace, open the window, predict, check the overlay, close.

    Prints one JSON line: {"ok", "device", "ms_window", "ms_first_overlay", "case",
    "predicted_pixels", "overlay_pixels", "shown_pixels"} (+ "error" when not ok). ``ok`` means
    the model found something on a demo case and its overlay reached the screen: the predicted
    mask is not empty, the overlay buffer is painted, and the WLI view differs with the overlay
    on and off. A window that opens but shows no overlay is not ok.
    """
    if not os.environ.get("QT_QPA_PLATFORM") and not display_available():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    result: dict[str, Any] = {"ok": False, "device": None, "ms_window": None, "ms_first_overlay": None}
    try:
        with tempfile.TemporaryDirectory(prefix="adf-selftest-") as tmp:
            result.update(_self_test_in(Path(tmp), args, t_start))
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        result["error"] = f"{exc.__class__.__name__}: {exc}"
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


def _self_test_in(tmp: Path, args: Any, t_start: float) -> dict[str, Any]:
    _apply_lang_option(args)
    app = make_app()
    from PySide6.QtCore import QEventLoop

    from training.demo import build_demo_workspace
    from viewer.main_window import MainWindow

    win = MainWindow(settings_at(tmp / "settings.ini"), device=args.device)
    win.show()
    app.processEvents()
    ms_window = (time.perf_counter() - t_start) * 1000.0
    ws_path = build_demo_workspace(tmp / "demo-workspace")
    loop = QEventLoop()
    state: dict[str, Any] = {}
    win.predictionShown.connect(lambda cid: (state.setdefault("case", cid), loop.quit()))
    win.predictionFailed.connect(lambda _cid, msg: (state.setdefault("error", msg), loop.quit()))
    try:
        if not win.open_workspace(ws_path):
            raise RuntimeError("the demo workspace did not open")
        _wait_for_first_overlay(win, loop, state, args)
        ms_overlay = (time.perf_counter() - t_start) * 1000.0
        check = _overlay_check(app, win)
        # an empty prediction paints nothing: look for a demo case where the model finds something
        for _ in range(win.worklist_proxy.rowCount() - 1):
            if check["predicted_pixels"]:
                break
            state.pop("case", None)
            win.next_case()
            _wait_for_first_overlay(win, loop, state, args)
            check = _overlay_check(app, win)
        device = win.device_label.text()
    finally:
        win.close()
        app.processEvents()
    ok = check["predicted_pixels"] > 0 and check["overlay_pixels"] > 0 and check["shown_pixels"] > 0
    from viewer import i18n

    out = {"ok": ok, "device": device, "ms_window": round(ms_window, 1), "ms_first_overlay": round(ms_overlay, 1),
           "language": i18n.QLocale().name(), "translations": [p.name for p in i18n.installed_files()], **check}
    if not ok:
        out["error"] = ("the model predicted an empty mask on every demo case" if not check["predicted_pixels"]
                        else "the prediction's overlay did not reach the screen")
    return out


def _overlay_check(app: Any, win: Any) -> dict[str, Any]:
    """The shown case's predicted pixels, painted overlay pixels, and WLI-view pixels the overlay changes."""
    import numpy as np
    import qimage2ndarray
    from PySide6.QtGui import QImage

    from viewer.pair_view import WLI

    session = win.current_session()
    predicted = int(session.mask.sum()) if session is not None and session.mask_source == "model" else 0
    overlay = win.pair.overlay
    painted = int((overlay.bgra[..., 3] > 0).sum()) if overlay is not None else 0
    view = win.pair.views[WLI]

    def screen() -> np.ndarray:
        app.processEvents()
        return qimage2ndarray.rgb_view(view.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)).copy()

    visible = win.overlay_visible.isChecked()
    with_overlay = screen()
    win.overlay_visible.setChecked(False)
    without = screen()
    win.overlay_visible.setChecked(visible)
    shown = int((with_overlay != without).any(axis=2).sum()) if visible else 0
    return {"case": win.current_case_id, "predicted_pixels": predicted, "overlay_pixels": painted,
            "shown_pixels": shown}


def _wait_for_first_overlay(win: Any, loop: Any, state: dict[str, Any], args: Any) -> None:
    """Run the event loop until the shown case's prediction reached the overlay (or failed, or timed out)."""
    from PySide6.QtCore import QTimer

    if "case" not in state and "error" not in state:
        timer = QTimer()
        timer.setSingleShot(True)
        timer.timeout.connect(loop.quit)
        timer.start(int(getattr(args, "self_test_timeout", 180) * 1000))
        loop.exec()
        timer.stop()
    if "error" in state:
        raise RuntimeError(state["error"])
    if "case" not in state:
        raise RuntimeError("no prediction reached the overlay in time")
