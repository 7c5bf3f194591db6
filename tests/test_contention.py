"""Issue 17: fast on a busy machine. Thread policy before torch loads, a low-priority trainer,
prefetch of the next cases in the inference worker, and a first start whose demo build does not
hold the window back. Speed itself is measured by benchmarks (bench_inference/bench_startup
--load, bench_brush --background); these tests check the behaviour behind it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from model import cpu_policy
from tests.viewer_fixtures import (  # noqa: F401 - fixtures
    FakePredictor,
    gui_workspace,
    make_window,
    pair_folder,
    register_random_model,
    settle,
)

ROOT = Path(__file__).resolve().parents[1]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME", cpu_policy.LOW_PRIORITY_ENV)}
    env.update(extra)
    return env


# ---- thread policy and priority ------------------------------------------------------------------
def test_thread_policy_sets_passive_wait_and_count_but_keeps_what_the_user_chose() -> None:
    env: dict[str, str] = {}
    done = cpu_policy.apply_thread_policy(environ=env)
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["KMP_BLOCKTIME"] == "0"
    assert env["OMP_NUM_THREADS"] == str(cpu_policy.app_threads()) and done == env
    assert 1 <= cpu_policy.app_threads() <= cpu_policy.MAX_APP_THREADS
    mine = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "ACTIVE"}
    cpu_policy.apply_thread_policy(environ=mine)
    assert mine["OMP_NUM_THREADS"] == "1" and mine["OMP_WAIT_POLICY"] == "ACTIVE"
    only_wait: dict[str, str] = {}
    cpu_policy.apply_thread_policy(environ=only_wait, count=False)
    assert "OMP_NUM_THREADS" not in only_wait and only_wait["OMP_WAIT_POLICY"] == "PASSIVE"


def test_main_sets_the_policy_before_torch_loads_and_torch_follows_it() -> None:
    """main.py's start-up, in a fresh interpreter: the policy is in place before torch is imported,
    and the torch that loads afterwards runs the app's thread count."""
    code = ("import sys, main\n"
            "main._early_cpu_policy([])\n"
            "before = 'torch' in sys.modules\n"
            "import os, torch, json\n"
            "print(json.dumps({'torch_before': before, 'wait': os.environ.get('OMP_WAIT_POLICY'),"
            " 'threads': torch.get_num_threads()}))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_clean_env(), capture_output=True,
                         text=True, timeout=300, check=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    assert got == {"torch_before": False, "wait": "PASSIVE", "threads": cpu_policy.app_threads()}


@pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX nice values")
@pytest.mark.parametrize("entry", ["main", "training"])
def test_training_entry_lowers_its_priority_when_asked(entry: str) -> None:
    """`ADF-Viewer -m training` (frozen) and `python -m training` (source) both lower their own
    priority when the dialog sets ADF_LOW_PRIORITY=1, and only then."""
    call = ("import main; main.main(['-m', 'training', '--help'])" if entry == "main" else
            "from training.__main__ import main; main(['--help'])")
    code = f"{call}\nimport os\nprint('NICE', os.getpriority(os.PRIO_PROCESS, 0))\n"
    base = os.getpriority(os.PRIO_PROCESS, 0)

    def nice(env: dict[str, str]) -> int:
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300, check=True).stdout
        return int(next(line for line in out.splitlines() if line.startswith("NICE")).split()[1])

    assert nice(_clean_env()) == base
    assert nice(_clean_env(ADF_LOW_PRIORITY="1")) >= max(base, cpu_policy.NICE_INCREMENT)


def test_train_dialog_starts_the_trainer_passive_with_fewer_threads_and_lower_priority(
        qtbot, tmp_path, monkeypatch) -> None:
    """The real dialog launches the trainer entry point; the process reports what it runs with."""
    from viewer import train_dialog

    probe = ("from training.__main__ import main; main(['--help'])\n"
             "import os, json\n"
             "print(json.dumps({'event': 'done', 'nice': os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "
             "'getpriority') else None, 'wait': os.environ.get('OMP_WAIT_POLICY'), "
             "'threads': os.environ.get('OMP_NUM_THREADS')}))\n")
    monkeypatch.setattr(train_dialog, "training_command", lambda _args: (sys.executable, ["-c", probe]))
    dlg = train_dialog.TrainDialog(tmp_path, [])
    qtbot.addWidget(dlg)
    with qtbot.waitSignal(dlg.finishedWith, timeout=120000) as blocker:
        dlg.start_btn.click()
    got = blocker.args[0]
    assert got is not None, dlg.log.toPlainText()
    assert got["wait"] == "PASSIVE"
    assert got["threads"] == str(cpu_policy.background_threads())
    if got["nice"] is not None:
        assert got["nice"] >= cpu_policy.NICE_INCREMENT


# ---- prefetch -------------------------------------------------------------------------------------
def _ids_in_worklist_order(win) -> list[str]:
    return [win.worklist_model.case_at(win.worklist_proxy.mapToSource(win.worklist_proxy.index(r, 0)).row()).id
            for r in range(win.worklist_proxy.rowCount())]


def test_the_next_cases_are_predicted_and_cached_before_the_clinician_opens_them(
        qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    from training.store import Workspace

    pred = FakePredictor()
    win = make_window(qtbot, tmp_path, pred)
    results = []
    assert win.open_workspace(gui_workspace)
    win.worker.resultReady.connect(results.append)
    first, *following = _ids_in_worklist_order(win)
    assert win.current_case_id == first and len(following) == 2
    qtbot.waitUntil(lambda: win.worker.stats["prefetched"] == 2, timeout=20000)
    with Workspace.open(gui_workspace) as ws:  # in the workspace, from another connection
        for cid in following:
            assert ws.cached_prediction(cid, pred.model_id) is not None
            assert ws.case(cid).status == "predicted"
    qtbot.waitUntil(lambda: win.worklist_model.case_at(win.worklist_model.row_of(following[0])).status == "predicted")
    calls = len(pred.calls)
    with qtbot.waitSignal(win.predictionShown, timeout=10000):
        win.next_case()
    assert win.current_case_id == following[0]
    shown = [r for r in results if r.case_id == following[0]]
    assert shown and shown[-1].origin == "memory"
    assert len(pred.calls) == calls  # nothing was predicted again
    assert win.current_session().mask.any()


def test_a_prefetched_case_opens_from_memory_without_reading_its_images(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    win = make_window(qtbot, tmp_path, FakePredictor())
    assert win.open_workspace(gui_workspace)
    second = _ids_in_worklist_order(win)[1]
    qtbot.waitUntil(lambda: win.worker.kept_images(second) is not None, timeout=20000)

    def no_disk(_case_id: str):
        raise AssertionError("the window read an image the worker had in memory")

    win.ws.load_wli = no_disk
    win.ws.load_nbi = no_disk
    with qtbot.waitSignal(win.predictionShown, timeout=10000):
        win.next_case()
    assert win.current_case_id == second and win.image_rgb is not None


def test_prefetch_stops_mid_prediction_when_the_clinician_asks_for_another_case(
        qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    """A real (random-weight) ADF network: the prefetch of the second case is held inside its
    forward pass; the clinician opens the third; the prefetch stops at the next block, the third
    case is predicted and shown, and nothing of the stopped prefetch reaches the workspace."""
    import torch

    from model.predictor import Predictor
    from training.store import Workspace

    card = register_random_model(gui_workspace, tmp_path / "models", "adf-prefetch")
    predictor = Predictor.load(card, device="cpu", tta=False)
    held, release = threading.Event(), threading.Event()
    seen_threads: dict[str, int] = {}
    win = make_window(qtbot, tmp_path, predictor)
    ids: list[str] = []

    def hold(_module, _args) -> None:
        worker = win.worker
        job = "prefetch" if worker is not None and worker._prefetching is not None else "request"
        seen_threads.setdefault(job, torch.get_num_threads())
        if job == "prefetch" and worker._prefetching == ids[1] and not held.is_set():
            held.set()
            assert release.wait(30), "test never released the prefetch"

    predictor.net.enc_n.register_forward_pre_hook(hold)  # mid-forward: the WLI encoder has run
    assert win.open_workspace(gui_workspace)
    ids[:] = _ids_in_worklist_order(win)
    qtbot.waitUntil(held.is_set, timeout=60000)          # the second case's prefetch is mid-forward
    win._select_proxy_row(2)                             # the clinician jumps to the third case
    assert win.current_case_id == ids[2]
    release.set()
    qtbot.waitUntil(lambda: win.current_session().prob is not None, timeout=60000)
    assert win.worker.stats["preempted"] == 1
    with Workspace.open(gui_workspace) as ws:
        assert ws.cached_prediction(ids[2], "adf-prefetch") is not None
        assert ws.cached_prediction(ids[1], "adf-prefetch") is None   # the stopped prefetch left nothing
        assert ws.case(ids[1]).status == "new"
    # prefetch leaves a core (cores - 1 threads at most) and never uses more than a request
    assert seen_threads["prefetch"] == min(cpu_policy.background_threads(), seen_threads["request"])


def test_a_clinicians_request_jumps_ahead_of_the_prefetch_queue(qtbot, gui_workspace) -> None:  # noqa: F811
    """The worker on its own: prefetch [second, third] is held in the second case; a request for the
    first case is answered next, before the third case's prefetch."""
    from training.store import Workspace
    from viewer.inference import InferenceWorker

    gate = threading.Event()
    started: list[tuple[int, int]] = []

    class Held(FakePredictor):
        def predict(self, wli, nbi=None, homography=None):  # noqa: ANN001, ANN201
            started.append(wli.shape[:2])
            if worker._prefetching is not None and not gate.is_set():
                assert gate.wait(30)
            return super().predict(wli, nbi, homography)

    with Workspace.open(gui_workspace) as ws:
        cases = sorted(ws.cases(), key=lambda c: c.id)
    shape = {c.id: (c.height, c.width) for c in cases}
    pred = Held()
    worker = InferenceWorker(gui_workspace, None, "cpu", lambda _p, _d: pred)
    shown: list[str] = []
    worker.resultReady.connect(lambda r: shown.append(r.case_id))
    worker.start()
    try:
        worker.set_prefetch([cases[1].id, cases[2].id])
        qtbot.waitUntil(lambda: len(started) == 1, timeout=20000)      # the second case is held
        request_id = worker.request(cases[0].id)
        gate.set()
        qtbot.waitUntil(lambda: len(started) == 3 and worker.stats["prefetched"] == 2, timeout=20000)
        assert started == [shape[cases[1].id], shape[cases[0].id], shape[cases[2].id]]
        assert shown == [cases[0].id] and request_id > 0
    finally:
        worker.stop()


def test_a_failing_prefetch_stays_quiet(qtbot, tmp_path, gui_workspace) -> None:  # noqa: F811
    """Background work never puts a banner in front of the clinician; their own case still predicts."""
    failed: list[str] = []

    class FailsOnOthers(FakePredictor):
        def predict(self, wli, nbi=None, homography=None):  # noqa: ANN001, ANN201
            if win.worker._prefetching is not None:
                failed.append(win.worker._prefetching)
                raise RuntimeError("simulated failure in the background")
            return super().predict(wli, nbi, homography)

    win = make_window(qtbot, tmp_path, FailsOnOthers())
    assert win.open_workspace(gui_workspace)
    qtbot.waitUntil(lambda: win.current_session() is not None and win.current_session().prob is not None)
    qtbot.waitUntil(lambda: len(failed) == 2, timeout=20000)
    settle(0.2)
    assert not win.pair.banner.isVisible()


# ---- first start ----------------------------------------------------------------------------------
def test_first_start_shows_the_window_before_the_demo_is_built(qtbot, tmp_path, monkeypatch) -> None:
    """No workspace given or remembered: the window is up and responsive while the demo workspace
    is built in another thread (torch is imported beside it); then it opens on the demo."""
    from training import demo
    from viewer.app import make_app, settings_at, start_window

    monkeypatch.setenv("ADF_VIEWER_DATA", str(tmp_path / "data"))
    gate = threading.Event()
    built_in: list[str] = []
    real_build = demo.build_demo_workspace

    def gated_build(dest, source=None):  # noqa: ANN001, ANN202
        built_in.append(threading.current_thread().name)
        assert gate.wait(60), "test never let the demo build run"
        return real_build(dest, source)

    monkeypatch.setattr(demo, "build_demo_workspace", gated_build)
    make_app()
    win, builder = start_window(SimpleNamespace(workspace=None, device="cpu"), settings_at(tmp_path / "s.ini"),
                                predictor_factory=lambda _p, _d: FakePredictor())
    qtbot.addWidget(win)
    assert builder is not None and win.isVisible() and win.ws is None   # shown, demo not there yet
    assert builder.preload is not None and builder.preload.name == "preload-torch"  # torch loads beside the build
    assert "demo" in win.statusBar().currentMessage().lower()
    qtbot.waitUntil(lambda: bool(built_in), timeout=10000)
    assert built_in[0] != threading.main_thread().name
    win.next_case()                                                      # the UI answers meanwhile
    gate.set()
    qtbot.waitUntil(lambda: win.ws is not None, timeout=60000)
    assert win.ws.root == tmp_path / "data" / "demo-workspace"
    qtbot.waitUntil(lambda: win.current_session() is not None and win.current_session().prob is not None,
                    timeout=20000)
    builder.wait()
    win.close()


_MALLINFO_PROBE = """
import ctypes, json, sys
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
settled = None
if sys.argv[1] == "settle":
    from model.predictor import Predictor
    Predictor.load(sys.argv[2], device="cpu")  # the predictor settles malloc before reading the weights
    from model.cpu_policy import keep_freed_memory
    settled = keep_freed_memory()
import numpy as np
before = libc.mallinfo2().hblkhd
block = np.ones(8 << 20, np.uint8)  # the size of a full-frame probability map or an activation
print(json.dumps({"settled": settled, "mapped": libc.mallinfo2().hblkhd - before}))
"""


@pytest.mark.parametrize("mode", ["settle", "default", "user_env"])
def test_large_buffers_come_from_the_heap_once_a_model_is_loaded(tmp_path: Path, mode: str) -> None:
    """keep_freed_memory (called by Predictor.load): an 8 MiB buffer is served from the heap, not
    mapped afresh (whose zeroed pages cost every pass; docs/MODEL.md, release 4 timing). Without it
    glibc maps it; a user's MALLOC_MMAP_THRESHOLD_ is left to win."""
    from model.adf import ADFNet
    from model.card import save_model
    from model.config import get_preset

    cfg = get_preset("tiny")
    model = save_model(ADFNet(cfg), cfg, tmp_path / "m", {"id": "m"})
    env = _clean_env(PYTHONPATH=str(ROOT))
    if mode == "user_env":
        env["MALLOC_MMAP_THRESHOLD_"] = str(128 << 10)
    out = subprocess.run([sys.executable, "-c", _MALLINFO_PROBE, "default" if mode == "default" else "settle",
                          str(model)], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if mode == "settle":
        assert res == {"settled": True, "mapped": 0}
    else:
        assert res["mapped"] >= 8 << 20 and res["settled"] in (None, False)
