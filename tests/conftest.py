"""Test-wide setup: headless Qt, PySide6 for qimage2ndarray, the repo root on sys.path."""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_DRIVER", "PySide6")
os.environ.setdefault("ADF_LANG", "en")  # the tests read English strings, whatever the OS language
os.environ.setdefault("OMP_NUM_THREADS", "2")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TEST_DATA = ROOT / "tests" / "data"


def modules_loaded_by(module: str, watched: tuple[str, ...]) -> list[str]:
    """Which of ``watched`` (e.g. "torch", "PySide6") a fresh interpreter has loaded after
    ``import module`` (the torch-free and Qt-free rules of docs/CONTRACTS.md)."""
    import subprocess

    code = f"import sys, {module}; print(','.join(m for m in {watched!r} if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [m for m in r.stdout.strip().split(",") if m]


# ---- fixtures of the workspace store / import (issue 2) -------------------------------------
import shutil  # noqa: E402

import pytest  # noqa: E402

FIXTURE_WLI = ["vf_0041.png", "vf_0055.png", "vf_0070.png", "kv_cju0qkwl.jpg", "kv_cju0s2a9.jpg",
               "kv_cju17hw9.jpg"]


def make_fixture_pairs(dest: Path, n: int = 3, seed: int = 0, with_masks: bool = True) -> list[str]:
    """Write ``n`` pairs ``<name>_wli.<ext>`` + ``<name>_nbi.png`` (pseudo-NBI, small warp, fixed
    seed) + ``<name>_mask.png`` into ``dest``; returns the names. Uses only tests/data."""
    import cv2

    from model.pseudo_nbi import pseudo_nbi
    from training.imageio import read_rgb

    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for i, fname in enumerate(FIXTURE_WLI[:n]):
        src = TEST_DATA / fname
        name = Path(fname).stem
        shutil.copyfile(src, dest / f"{name}_wli{src.suffix}")
        nbi, _ = pseudo_nbi(read_rgb(src), seed + i)
        cv2.imwrite(str(dest / f"{name}_nbi.png"), cv2.cvtColor(nbi, cv2.COLOR_RGB2BGR))
        if with_masks:
            shutil.copyfile(TEST_DATA / f"{name}_mask.png", dest / f"{name}_mask.png")
        names.append(name)
    return names


@pytest.fixture
def fixture_pair_dir(tmp_path: Path) -> Path:
    """A folder with 3 ``X_wli``/``X_nbi``/``X_mask`` pairs built from tests/data."""
    d = tmp_path / "pairs"
    make_fixture_pairs(d, 3)
    return d


@pytest.fixture
def workspace(tmp_path: Path):
    """An open, empty Workspace in tmp_path; asserts PRAGMA integrity_check is clean at teardown."""
    from training.store import Workspace

    ws = Workspace.open(tmp_path / "ws", create=True)
    try:
        yield ws
        assert ws.integrity_check() == "ok"
    finally:
        ws.close()


@pytest.fixture
def filled_workspace(workspace, fixture_pair_dir: Path):
    """The ``workspace`` fixture with the 3 fixture pairs imported (registration on)."""
    for name in sorted(p.name[: -len("_nbi.png")] for p in fixture_pair_dir.glob("*_nbi.png")):
        wli = next(fixture_pair_dir.glob(f"{name}_wli.*"))
        cid, reason = workspace.import_pair(wli, fixture_pair_dir / f"{name}_nbi.png",
                                            fixture_pair_dir / f"{name}_mask.png", nbi_synthetic=True)
        assert reason is None, reason
    return workspace
