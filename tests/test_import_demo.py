"""training/demo.py + training/paths.py: the demo workspace built from resources/demo/."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT
from training import demo, paths
from training.store import Workspace, WorkspaceError


def test_bundled_demo_is_complete_and_small() -> None:
    d = ROOT / "resources" / "demo"
    names = sorted(p.name[: -len("_wli.jpg")] for p in d.glob("*_wli.jpg"))
    assert 6 <= len(names) <= 10
    for n in names:
        assert (d / f"{n}_nbi.jpg").is_file() and (d / f"{n}_mask.png").is_file()
    assert "CC BY 4.0" in (d / "ATTRIBUTION.md").read_text()
    assert sum(p.stat().st_size for p in d.rglob("*") if p.is_file()) < 2_000_000


def test_build_demo_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a resources/ copy with a (fake) bundled model, so registering it is exercised too
    res = tmp_path / "res"
    (res / "models").mkdir(parents=True)
    (res / "models" / "adf-tiny.json").write_text(json.dumps({"model_id": "adf-tiny"}))
    (res / "models" / "adf-tiny.safetensors").write_bytes(b"fake weights")
    monkeypatch.setattr(demo, "resource_path", lambda *p: res.joinpath(*p))
    dest = tmp_path / "data" / "demo-workspace"
    out = demo.build_demo_workspace(dest, source=ROOT / "resources" / "demo")
    assert out == dest
    with Workspace.open(dest) as ws:
        cases = ws.cases()
        assert len(cases) == len(list((ROOT / "resources" / "demo").glob("*_wli.jpg")))
        for c in cases:
            assert c.nbi_synthetic and c.nbi_path is not None and c.reg_quality == "good"
            assert ws.history(c.id) == [] and c.status == "new"  # the model's prediction comes first
        assert ws.active_model_path() == dest / "models" / "adf-tiny.json"
        assert ws.integrity_check() == "ok"
        n_events = len(ws.events())
    assert not [p for p in dest.parent.iterdir() if p.name != "demo-workspace"]  # no temp build folder
    # idempotent: a second call returns the same workspace untouched
    assert demo.build_demo_workspace(dest) == dest
    with Workspace.open(dest) as ws:
        assert len(ws.events()) == n_events


def test_demo_workspace_takes_a_newer_bundled_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An app update with new weights (new id, parent = the old release) becomes active in the demo,
    unless the user has made another model active there; nothing else changes."""
    res = tmp_path / "res"
    (res / "models").mkdir(parents=True)

    def ship(card: dict, weights: bytes) -> None:
        (res / "models" / "adf-tiny.json").write_text(json.dumps(card))
        (res / "models" / "adf-tiny.safetensors").write_bytes(weights)

    monkeypatch.setattr(demo, "resource_path", lambda *p: res.joinpath(*p))
    ship({"id": "adf-tiny"}, b"release 1")
    src = _one_pair_demo_source(tmp_path)
    dest = demo.build_demo_workspace(tmp_path / "ws", source=src)
    with Workspace.open(dest) as ws:
        case = ws.cases()[0]
        ws.add_revision(case.id, np.ones((case.height, case.width), bool), source="human", author="clinician")
        history = ws.history(case.id)
    ship({"id": "adf-tiny-r2", "parent": {"id": "adf-tiny"}}, b"release 2")
    demo.build_demo_workspace(dest)
    with Workspace.open(dest) as ws:
        assert [(m["id"], m["active"]) for m in ws.models()] == [("adf-tiny", False), ("adf-tiny-r2", True)]
        assert ws.history(case.id) == history
        ws.register_model(_fake_model(tmp_path, "clinic-1"), activate=True)  # the user's own model
    ship({"id": "adf-tiny-r3", "parent": {"id": "adf-tiny-r2"}}, b"release 3")
    demo.build_demo_workspace(dest)
    demo.build_demo_workspace(dest)  # idempotent
    with Workspace.open(dest) as ws:
        states = {m["id"]: m["active"] for m in ws.models()}
        assert states == {"adf-tiny": False, "adf-tiny-r2": False, "clinic-1": True, "adf-tiny-r3": False}
        assert ws.history(case.id) == history
        assert ws.integrity_check() == "ok"
        ws.set_active_model("adf-tiny-r3")
    # a release trained through an intermediate run: its parent is that run, it names what it replaces
    ship({"id": "adf-tiny-r4", "parent": {"id": "r4-run-a"}, "replaces": "adf-tiny-r3"}, b"release 4")
    demo.build_demo_workspace(dest)
    with Workspace.open(dest) as ws:
        assert [m["id"] for m in ws.models() if m["active"]] == ["adf-tiny-r4"]
        assert ws.history(case.id) == history


def _one_pair_demo_source(tmp_path: Path) -> Path:
    """A demo source folder holding one bundled pair (fast to import)."""
    src = tmp_path / "mini"
    src.mkdir()
    for f in sorted((ROOT / "resources" / "demo").glob("vf_0056_*")):
        (src / f.name).write_bytes(f.read_bytes())
    return src


def _fake_model(tmp_path: Path, model_id: str) -> Path:
    d = tmp_path / f"model-{model_id}"
    d.mkdir()
    (d / "m.json").write_text(json.dumps({"id": model_id}))
    (d / "m.safetensors").write_bytes(model_id.encode())
    return d / "m.json"


def test_demo_without_bundled_model_and_refusing_foreign_folder(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "resource_path", lambda *p: tmp_path.joinpath("nothing", *p))
    src = _one_pair_demo_source(tmp_path)
    dest = demo.build_demo_workspace(tmp_path / "ws", source=src)
    with Workspace.open(dest) as ws:
        assert len(ws.cases()) == 1 and ws.active_model_path() is None
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(WorkspaceError, match="not an ADF Viewer workspace"):
        demo.build_demo_workspace(foreign, source=src)
    assert (foreign / "precious.txt").read_text() == "keep me"


def test_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert paths.resource_path("demo") == ROOT / "resources" / "demo"
    monkeypatch.setenv("ADF_VIEWER_DATA", str(tmp_path / "d"))
    assert paths.user_data_dir() == tmp_path / "d"
    assert paths.default_demo_workspace() == tmp_path / "d" / "demo-workspace"
    monkeypatch.delenv("ADF_VIEWER_DATA")
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
        assert paths.user_data_dir() == tmp_path / "xdg" / "adf-viewer"
        monkeypatch.delenv("XDG_DATA_HOME")
        assert paths.user_data_dir() == Path.home() / ".local" / "share" / "adf-viewer"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    assert paths.resource_path("style.qss") == tmp_path / "bundle" / "resources" / "style.qss"


def test_demo_masks_are_binary_and_match_images() -> None:
    from training.imageio import read_mask, read_rgb

    d = ROOT / "resources" / "demo"
    for w in sorted(d.glob("*_wli.jpg")):
        m = read_mask(d / w.name.replace("_wli.jpg", "_mask.png"))
        assert m.shape == read_rgb(w).shape[:2] and 0.01 < m.mean() < 0.5
        nbi = read_rgb(d / w.name.replace("_wli", "_nbi")).astype(int)
        assert np.abs(nbi[..., 1] - nbi[..., 2]).mean() < 3  # pseudo-NBI: green == blue (up to JPEG)
