"""Nothing leaves the machine: no code path opens a socket (import, prediction, training, export, the
window driven through a session).

Two nets, both in this process:
- a Python audit hook (``sys.addaudithook``) sees every socket created, bound or connected and
  every name lookup or HTTP request made from Python (urllib, http.client, requests, asyncio,
  torch.hub downloads...), in any thread; it records the event and refuses it;
- a sampler reads ``/proc/self/fd`` every few milliseconds during each phase and records any
  socket file descriptor that was not open before, which also catches sockets opened by C/C++
  code (Qt, torch, OpenCV) that Python's audit hooks cannot see. (A socket opened and closed
  between two samples would slip through this second net; the first one has no such gap.)

Each phase must record nothing. ``socket.gethostname`` (a local system call, no traffic) is
allowed but reported.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

NETWORK_EVENTS = {
    "socket.__new__", "socket.bind", "socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
    "socket.gethostbyaddr", "socket.getnameinfo", "socket.sendto", "socket.sendmsg", "urllib.Request",
    "http.client.connect", "http.client.send", "ftplib.connect", "smtplib.connect", "webbrowser.open",
}
HARMLESS = {"socket.gethostname"}


class _Watch:
    """Process-wide recorder behind the audit hook (hooks cannot be removed, so it is armed per phase)."""

    def __init__(self) -> None:
        self.armed = False
        self.events: list[str] = []
        self.harmless: list[str] = []

    def hook(self, event: str, args: tuple) -> None:
        if not self.armed or not event.startswith(("socket.", "urllib.", "http.", "ftplib.", "smtplib.",
                                                   "webbrowser.")):
            return
        where = threading.current_thread().name
        if event in HARMLESS:
            self.harmless.append(f"{event} in {where}")
            return
        if event in NETWORK_EVENTS:
            self.events.append(f"{event}{_short(args)} in thread {where}")
            raise PermissionError(f"network access blocked by the no-network test: {event}")


def _short(args: tuple) -> str:
    text = repr(args)
    return text if len(text) < 160 else text[:157] + "..."


def _watch() -> _Watch:
    w = getattr(sys, "_adf_no_network_watch", None)
    if w is None:
        w = _Watch()
        sys.addaudithook(w.hook)
        sys._adf_no_network_watch = w  # type: ignore[attr-defined]
    return w


def _socket_fds() -> dict[int, str]:
    out = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return out
    for n in names:
        try:
            target = os.readlink(f"/proc/self/fd/{n}")
        except OSError:
            continue
        if target.startswith("socket:"):
            out[int(n)] = target
    return out


def _describe(sockets: set[str]) -> list[str]:
    """Each 'socket:[inode]' with what the kernel's tables say it is (kind and path or address), so a
    failure names the socket: a unix socket's path (a D-Bus or X connection, say) or an IP address."""
    out = []
    for fd in sorted(sockets):
        inode = fd[len("socket:["):-1]
        found = "not in /proc/net (closed since?)"
        for table, column in (("unix", 6), ("tcp", 9), ("tcp6", 9), ("udp", 9), ("udp6", 9), ("netlink", 9)):
            try:
                rows = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
            except OSError:
                continue
            hit = next((r for r in rows if r.split()[column:column + 1] == [inode]), None)
            if hit is not None:
                found = f"{table}: {hit.strip()}"
                break
        out.append(f"{fd} {found}")
    return out


@contextmanager
def no_sockets(phase: str) -> Iterator[None]:
    """Fail if anything in the block opens a socket (see the module docstring)."""
    if not Path("/proc/self/fd").is_dir():
        pytest.fail("this test needs /proc/self/fd (Linux) for its second net")
    w = _watch()
    before = set(_socket_fds().values())
    seen: set[str] = set()
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen.update(v for v in _socket_fds().values() if v not in before)
            stop.wait(0.003)

    sampler = threading.Thread(target=sample, name="socket-sampler", daemon=True)
    w.events.clear()
    w.harmless.clear()
    w.armed = True
    sampler.start()
    try:
        yield
    finally:
        w.armed = False
        stop.set()
        sampler.join(5)
        seen.update(v for v in _socket_fds().values() if v not in before)
    if w.harmless:
        print(f"[{phase}] allowed, no traffic: {sorted(set(w.harmless))}")
    assert w.events == [], f"{phase}: Python opened network resources: {w.events}"
    assert not seen, f"{phase}: socket file descriptors appeared (C/C++ code?): {_describe(seen)}"


def test_the_watch_catches_a_socket_from_python_and_from_c(tmp_path: Path) -> None:
    """The nets work: a Python socket, a resolver call and a socket made outside Python's socket module."""
    import ctypes
    import socket

    with pytest.raises(AssertionError, match=r"socket\.__new__"), no_sockets("self-test"), \
            pytest.raises(PermissionError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(AssertionError, match=r"socket\.getaddrinfo"), no_sockets("self-test"), \
            pytest.raises(PermissionError):
        socket.getaddrinfo("localhost", 80)
    libc = ctypes.CDLL(None, use_errno=True)
    with pytest.raises(AssertionError, match=r"socket file descriptors appeared"), no_sockets("self-test"):
        fd = libc.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)  # C code: no audit event
        assert fd >= 0
        time.sleep(0.05)
        os.close(fd)


def test_a_failure_names_the_socket_it_saw() -> None:
    """The sampler's message says what kind of socket appeared (here an unbound unix one), not only its inode."""
    import socket

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)  # outside any phase: the hook is not armed
    try:
        fd = os.readlink(f"/proc/self/fd/{a.fileno()}")
        assert fd.startswith("socket:[")
        (line,) = _describe({fd})
        assert line.startswith(fd) and " unix: " in line
    finally:
        a.close()
        b.close()
    assert _describe({"socket:[999999999]"}) == ["socket:[999999999] not in /proc/net (closed since?)"]


def _tiny_model(dest: Path) -> Path:
    from tests.make_bad_inputs import tiny_model

    return tiny_model(dest, "tiny-offline")


def test_import_predict_train_export_open_no_socket(tmp_path: Path, fixture_pair_dir: Path, capsys) -> None:
    from training.store import Workspace

    ws_root = tmp_path / "ws"
    with no_sockets("import"):
        from training.importer import import_sources

        with Workspace.open(ws_root, create=True) as ws:
            summary = import_sources(ws, [fixture_pair_dir])
    assert summary["imported"] == 3

    card = _tiny_model(tmp_path / "model")
    with no_sockets("prediction"):
        from model.predictor import Predictor

        with Workspace.open(ws_root) as ws:
            case = ws.cases()[0]
            pred = Predictor.load(card, device="auto")
            out = pred.predict(ws.load_wli(case.id), ws.load_nbi(case.id), case.homography)
    assert out.prob.shape == (case.height, case.width)

    with no_sockets("training"):
        from training.train import main as train_main

        rc = train_main(["--data", str(ws_root), "--epochs", "1", "--steps-per-epoch", "2", "--size", "64",
                         "--val-size", "64", "--batch-size", "2", "--threads", "1", "--workers", "0", "--no-tqdm",
                         "--out", str(tmp_path / "run"), "--model-id", "offline-1", "--init", str(card),
                         "--val-fraction", "0.34", "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    with Workspace.open(ws_root) as ws:
        assert any(m["id"] == "offline-1" for m in ws.models())

    with no_sockets("export"):
        from training.export import main as export_main

        rc = export_main(["--workspace", str(ws_root), "--format", "coco", "--out", str(tmp_path / "export"),
                          "--quiet"])
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "export").is_dir()


def test_a_window_session_opens_no_socket(qtbot, tmp_path: Path, fixture_pair_dir: Path) -> None:
    """Start-up, a real prediction in the worker thread, an edit, a save, accept, close."""
    from tests.viewer_fixtures import make_window
    from training.store import Workspace

    ws_root = tmp_path / "ws"
    with Workspace.open(ws_root, create=True) as ws:
        from training.importer import import_sources

        import_sources(ws, [fixture_pair_dir])
        ws.register_model(_tiny_model(tmp_path / "model"), activate=True)
    with no_sockets("window session"):
        win = make_window(qtbot, tmp_path, predictor=None, autosave_ms=600000)
        win.predictor_factory = None  # the real Predictor, loaded in the worker thread
        assert win.open_workspace(ws_root)
        qtbot.waitUntil(lambda: win.current_session() is not None and win.current_session().prob is not None,
                        timeout=60000)
        mask = win.current_session().mask.astype(bool)
        mask[5:25, 5:25] = ~mask[5:25, 5:25]
        assert win.editor.replace_mask(mask, "no-network edit")
        rev = win.save_current("manual")
        assert rev is not None
        device = win.device_label.text()
        win.accept_current()
        win.close()
    assert device.startswith("CPU"), device  # the real predictor reported its device


CHILD = r"""
import os, sys
sys.path.insert(0, {root!r})
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from pathlib import Path
from tests.test_no_network import no_sockets
with no_sockets("fresh process: Qt start-up, window, real prediction, close"):
    from PySide6.QtWidgets import QApplication
    from viewer.app import make_app, settings_at
    from viewer.main_window import MainWindow
    from tests.make_bad_inputs import _process_until
    app = make_app()
    win = MainWindow(settings_at(Path({tmp!r}) / "s.ini"), device="cpu")
    win.show()
    assert win.open_workspace(Path({ws!r}))
    shown = []
    win.predictionShown.connect(shown.append)
    assert _process_until(lambda: bool(shown), 120), win.pair.banner.text()
    win.close()
    app.processEvents()
print("NO_SOCKETS_OK", shown[0])
"""


def test_a_fresh_process_from_qt_start_up_to_close_opens_no_socket(tmp_path: Path, fixture_pair_dir: Path) -> None:
    """In a new process the nets are armed before QApplication exists (Qt could reach for D-Bus
    or accessibility buses at start-up; pytest-qt's application is made before a test body runs)."""
    import subprocess

    from training.store import Workspace

    ws_root = tmp_path / "ws"
    with Workspace.open(ws_root, create=True) as ws:
        from training.importer import import_sources

        import_sources(ws, [fixture_pair_dir], register=False)
        ws.register_model(_tiny_model(tmp_path / "model"), activate=True)
    root = str(Path(__file__).resolve().parents[1])
    script = CHILD.format(root=root, tmp=str(tmp_path), ws=str(ws_root))
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "NO_SOCKETS_OK" in p.stdout, p.stdout[-2000:] + p.stderr[-4000:]
