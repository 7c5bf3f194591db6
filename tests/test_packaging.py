"""Packaging (issue 8), fast checks only: no PyInstaller build runs here (`make package-test` does that).

The spec is executed with stand-ins for PyInstaller's Analysis/EXE/COLLECT in a throw-away copy
of the repository layout, so what it would bundle is checked in milliseconds.
"""
from __future__ import annotations

import ast
import configparser
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


prune = _load("adf_packaging_prune", PACKAGING / "prune.py")
build = _load("adf_packaging_build", PACKAGING / "build.py")

APP_PACKAGES = ("viewer", "training", "model")


# ---- running the spec with stand-ins ---------------------------------------------------------

class _Recorder:
    """Stands in for PyInstaller's build classes; keeps its arguments."""

    calls: list[tuple[str, tuple, dict]] = []

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        _Recorder.calls.append((type(self).__name__, args, kwargs))


class FakeAnalysis(_Recorder):
    extra_binaries: list[tuple[str, str, str]] = []

    def __init__(self, scripts, **kwargs):
        super().__init__(scripts, **kwargs)
        self.pure, self.scripts = [], list(scripts)
        self.binaries = list(FakeAnalysis.extra_binaries)
        self.datas = [(f"{dest}/{Path(src).name}", src, "DATA") for src, dest in kwargs["datas"]]


class PYZ(_Recorder):
    pass


class EXE(_Recorder):
    pass


class COLLECT(_Recorder):
    pass


class BUNDLE(_Recorder):
    pass


def make_tree(tmp: Path, with_model: bool = True) -> Path:
    """A copy of the repo layout the spec reads: real code and small resources, a dummy model."""
    root = tmp / "repo"
    (root / "packaging").mkdir(parents=True)
    for name in ("adf_viewer.spec", "prune.py"):
        shutil.copy2(PACKAGING / name, root / "packaging" / name)
    shutil.copy2(ROOT / "main.py", root / "main.py")
    for pkg in APP_PACKAGES:
        shutil.copytree(ROOT / pkg, root / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    res = root / "resources"
    shutil.copytree(ROOT / "resources" / "demo", res / "demo")
    shutil.copytree(ROOT / "resources" / "icons", res / "icons")
    shutil.copy2(ROOT / "resources" / "style.qss", res / "style.qss")
    shutil.copytree(ROOT / "resources" / "i18n", res / "i18n")  # the .ts and the .qm `make qm` built from it
    (res / "models").mkdir()
    if with_model:
        (res / "models" / "adf-tiny.json").write_text("{}")
        (res / "models" / "adf-tiny.safetensors").write_bytes(b"\0" * 64)
    return root


def run_spec(root: Path, work: Path) -> dict[str, list]:
    """Execute the spec as PyInstaller would (its globals + our stand-ins); returns the calls."""
    _Recorder.calls = []
    spec = root / "packaging" / "adf_viewer.spec"
    glb = {"__file__": str(spec), "__name__": "__main__", "SPEC": str(spec), "SPECPATH": str(spec.parent),
           "specnm": "adf_viewer", "workpath": str(work), "DISTPATH": str(root / "dist"),
           "Analysis": FakeAnalysis, "PYZ": PYZ, "EXE": EXE, "COLLECT": COLLECT, "BUNDLE": BUNDLE}
    saved_path = list(sys.path)
    saved_prune = sys.modules.pop("prune", None)
    try:
        exec(compile(spec.read_text(), str(spec), "exec"), glb)
    finally:
        sys.path[:] = saved_path
        sys.modules.pop("prune", None)
        if saved_prune is not None:
            sys.modules["prune"] = saved_prune
    calls: dict[str, list] = {}
    for name, args, kwargs in _Recorder.calls:
        calls.setdefault(name, []).append((args, kwargs))
    return calls


@pytest.fixture
def spec_run(tmp_path):
    root = make_tree(tmp_path)
    calls = run_spec(root, tmp_path / "work")
    return root, calls, tmp_path / "work"


def test_spec_bundles_model_demo_style_icons(spec_run):
    root, calls, _work = spec_run
    (args, kwargs), = calls["FakeAnalysis"]
    assert args[0] == [str(root / "main.py")]
    dests = {(Path(src).name, dest) for src, dest in kwargs["datas"]}
    assert ("adf-tiny.json", "resources/models") in dests
    assert ("adf-tiny.safetensors", "resources/models") in dests
    assert ("style.qss", "resources") in dests
    assert ("ATTRIBUTION.md", "resources/demo") in dests  # the demo images' licence ships with them
    # the translations (issue 21): the app's compiled .qm and Qt's own for the standard buttons
    assert ("adf_viewer_zh_CN.qm", "resources/i18n") in dests and ("qtbase_zh_CN.qm", "resources/i18n") in dests
    assert not any(name.endswith(".ts") for name, _d in dests)
    assert ("adf-viewer.png", "resources/icons") in dests
    demo_pairs = sorted(n for n, d in dests if d == "resources/demo" and n.endswith("_wli.jpg"))
    assert demo_pairs == sorted(p.name for p in (ROOT / "resources" / "demo").glob("*_wli.jpg"))
    assert ("make_demo.py", "resources/demo") not in dests  # a developer script, not data
    for src, _dest in kwargs["datas"]:
        assert Path(src).is_file(), src


def test_every_resource_the_code_asks_for_is_bundled(spec_run):
    """Each resource_path("<first>", ...) in the app's code must have <first> under resources/ in the bundle."""
    _root, calls, _work = spec_run
    (_args, kwargs), = calls["FakeAnalysis"]
    bundled = {dest.split("/", 1)[1] if "/" in dest else Path(src).name for src, dest in kwargs["datas"]}
    bundled |= {Path(src).name for src, dest in kwargs["datas"] if dest == "resources"}
    asked: set[str] = set()
    for path in [ROOT / "main.py", *[p for pkg in APP_PACKAGES for p in (ROOT / pkg).rglob("*.py")]]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None))
                    == "resource_path" and node.args and isinstance(node.args[0], ast.Constant)):
                asked.add(node.args[0].value)
    assert asked, "resource_path is used by the app"
    assert asked <= bundled, f"asked for but not bundled: {asked - bundled}"


def test_spec_imports_every_app_module_and_excludes_none_it_uses(spec_run):
    _root, calls, _work = spec_run
    (_args, kwargs), = calls["FakeAnalysis"]
    hidden, excludes = set(kwargs["hiddenimports"]), kwargs["excludes"]
    for mod in ("training.train", "training.evaluate", "training.export", "training.importer", "model.predictor",
                "viewer.main_window", "training.store.workspace", "safetensors.torch"):
        if mod.startswith(APP_PACKAGES) and not (ROOT / (mod.replace(".", "/") + ".py")).is_file():
            continue  # a module another helper has not written yet
        assert mod in hidden, mod
    used: set[str] = set()
    for path in [ROOT / "main.py", *[p for pkg in APP_PACKAGES for p in (ROOT / pkg).rglob("*.py")]]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                used |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                used.add(node.module)
    clashes = sorted(m for m in used for ex in excludes if m == ex or m.startswith(ex + "."))
    assert not clashes, f"the app imports excluded modules: {clashes}"
    assert {"triton", "PySide6.QtNetwork", "PySide6.QtQml", "torch.testing._internal.common_utils"} <= set(excludes)
    # what torch itself imports on the app's paths (found by the frozen self-test and 1-step training)
    needed_by_torch = ("torch.testing._internal.logging_tensor", "torch.testing._internal.common_dtype",
                       "torch.testing._internal.distributed.fake_pg", "torch._dynamo", "torch._inductor", "sympy",
                       "mpmath", "torchgen")
    clashes = sorted(m for m in needed_by_torch for ex in excludes if m == ex or m.startswith(ex + "."))
    assert not clashes, f"torch needs these at run time: {clashes}"


def test_spec_builds_one_folder_and_prunes_before_copying(tmp_path):
    root = make_tree(tmp_path)
    lib = tmp_path / "libs"
    lib.mkdir()
    for name, size in (("test_api", 3000), ("libtorch_cpu.so", 100), ("qt_de.qm", 500)):
        (lib / name).write_bytes(b"x" * size)
    FakeAnalysis.extra_binaries = [("torch/test/test_api", str(lib / "test_api"), "BINARY"),
                                   ("torch/lib/libtorch_cpu.so", str(lib / "libtorch_cpu.so"), "BINARY"),
                                   ("PySide6/Qt/translations/qt_de.qm", str(lib / "qt_de.qm"), "DATA")]
    try:
        calls = run_spec(root, tmp_path / "work")
    finally:
        FakeAnalysis.extra_binaries = []
    (cargs, ckw), = calls["COLLECT"]
    assert ckw["name"] == "ADF-Viewer"
    collected = [e for arg in cargs if isinstance(arg, list) for e in arg]
    dests = {e[0] for e in collected}
    assert "torch/lib/libtorch_cpu.so" in dests
    assert "torch/test/test_api" not in dests and "PySide6/Qt/translations/qt_de.qm" not in dests
    assert "resources/models/adf-tiny.json" in dests
    exes = calls["EXE"]
    assert all(kw["exclude_binaries"] for _a, kw in exes)  # one folder: binaries sit beside the exe
    assert exes[0][1]["name"] == "ADF-Viewer"
    rep = json.loads((tmp_path / "work" / "prune-report.json").read_text())
    assert rep["pruned_bytes"] == 3500 and rep["pruned_files"] == 2


def test_spec_refuses_to_build_without_the_model(tmp_path):
    root = make_tree(tmp_path, with_model=False)
    with pytest.raises(SystemExit, match="model"):
        run_spec(root, tmp_path / "work")


def test_spec_refuses_to_bundle_uncompiled_translations(tmp_path):
    root = make_tree(tmp_path)
    for qm in (root / "resources" / "i18n").glob("*.qm"):
        qm.unlink()
    with pytest.raises(SystemExit, match="make qm"):
        run_spec(root, tmp_path / "work")


# ---- prune rules -----------------------------------------------------------------------------

@pytest.mark.parametrize("dest", [
    "torch/test/op_registration_test", "torch/bin/test_api", "torch/bin/protoc", "torch/include/ATen/ATen.h",
    "torch/share/cmake/Torch/TorchConfig.cmake", "torch/lib/libtorchbind_test.so", "torch/lib/libjitbackend_test.so",
    "torch/lib/libaoti_custom_ops.so", "torch/lib/dnnl.lib", "torch/lib/libfoo.a", "triton/_C/libtriton.so",
    "PySide6/Qt/translations/qtbase_de.qm", "PySide6/Qt/plugins/platforms/libqvnc.so",
    "PySide6/Qt/plugins/platforms/libqeglfs.so", "PySide6/Qt/plugins/generic/libqevdevmouseplugin.so",
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so", "PySide6/translations/qt_fr.qm",
    "PySide6/plugins/platforms/qdirect2d.dll",
])
def test_prune_rules_drop_unused(dest):
    assert prune.prune_reason(dest)
    assert prune.prune_reason(dest.replace("/", "\\"))  # Windows separators too


@pytest.mark.parametrize("dest", [
    "torch/lib/libtorch_cpu.so", "torch/lib/libc10.so", "torch/lib/libgomp.so.1", "torch/lib/libtorch_python.so",
    "torch/bin/torch_shm_manager", "torch/nn/modules/conv.py", "PySide6/Qt/lib/libQt6Core.so.6",
    "PySide6/Qt/plugins/platforms/libqxcb.so", "PySide6/Qt/plugins/platforms/libqwayland.so",
    "PySide6/Qt/plugins/platforms/libqoffscreen.so", "PySide6/plugins/platforms/qwindows.dll",
    "PySide6/Qt/plugins/platforms/libqcocoa.dylib", "PySide6/Qt/plugins/imageformats/libqjpeg.so",
    "PySide6/Qt/plugins/platformthemes/libqxdgdesktopportal.so", "resources/models/adf-tiny.safetensors",
    "resources/demo/vf_0056_wli.jpg", "cv2/cv2.abi3.so", "libpython3.11.so.1.0",
])
def test_prune_rules_keep_what_the_app_needs(dest):
    assert prune.prune_reason(dest) is None


def test_orphaned_libraries_go_with_the_plugin_that_needed_them(tmp_path, monkeypatch):
    """gtk theme plugin pruned -> its private deps go, a dep shared with a kept file stays, symlinks follow."""
    needs = {"libqgtk3.so": ["libgtk-3.so.0", "libshared.so.1"], "libgtk-3.so.0": ["libdeep.so.2"],
             "QtGui.abi3.so": ["libshared.so.1"], "libshared.so.1": [], "libdeep.so.2": [], "libkept.so": []}
    monkeypatch.setattr(prune, "elf_needed", lambda src: needs.get(Path(src).name, []))
    monkeypatch.setattr(prune.sys, "platform", "linux")
    for name in needs:
        (tmp_path / name).write_bytes(b"\0" * 10)
    toc = [("PySide6/Qt/plugins/platformthemes/libqgtk3.so", str(tmp_path / "libqgtk3.so"), "BINARY"),
           ("libgtk-3.so.0", str(tmp_path / "libgtk-3.so.0"), "BINARY"),
           ("libdeep.so.2", str(tmp_path / "libdeep.so.2"), "BINARY"),
           ("libshared.so.1", str(tmp_path / "libshared.so.1"), "BINARY"),
           ("PySide6/QtGui.abi3.so", str(tmp_path / "QtGui.abi3.so"), "EXTENSION"),
           ("libkept.so", str(tmp_path / "libkept.so"), "BINARY"),  # needed by nobody: not ours to judge
           ("sub/libgtk-3.so.0", "../libgtk-3.so.0", "SYMLINK")]
    kept, pruned = prune.filter_toc(toc)
    gone = {e[0]: r for e, r in pruned}
    assert set(gone) == {"PySide6/Qt/plugins/platformthemes/libqgtk3.so", "libgtk-3.so.0", "libdeep.so.2",
                         "sub/libgtk-3.so.0"}
    assert gone["libdeep.so.2"] == prune.ORPHAN_REASON
    assert {e[0] for e in kept} == {"libshared.so.1", "PySide6/QtGui.abi3.so", "libkept.so"}
    rep = prune.report(pruned)
    assert rep["pruned_bytes"] == 30 and rep["by_reason"][prune.ORPHAN_REASON]["files"] == 2


def test_pruning_a_library_a_kept_file_links_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(prune, "elf_needed", lambda src: ["libtorchbind_test.so"] if "keep" in src else [])
    monkeypatch.setattr(prune.sys, "platform", "linux")
    toc = [("torch/lib/libtorchbind_test.so", str(tmp_path / "x"), "BINARY"),
           ("torch/lib/libkeep.so", str(tmp_path / "keep"), "BINARY")]
    with pytest.raises(RuntimeError, match="libtorchbind_test"):
        prune.filter_toc(toc)


def test_elf_needed_reads_a_real_binary(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("ELF only on Linux")
    needed = prune.elf_needed(sys.executable)
    assert needed is not None and any(n.startswith("libc.so") for n in needed), needed
    (tmp_path / "text").write_text("not an ELF")
    (tmp_path / "trunc").write_bytes(Path(sys.executable).read_bytes()[:100])
    assert prune.elf_needed(tmp_path / "text") is None
    assert prune.elf_needed(tmp_path / "trunc") in (None, [])


def test_prune_tree_removes_and_check_reports(tmp_path):
    internal = tmp_path / "ADF-Viewer" / "_internal"
    (internal / "torch" / "test").mkdir(parents=True)
    (internal / "torch" / "lib").mkdir()
    (internal / "torch" / "test" / "a_test").write_bytes(b"x" * 70)
    (internal / "torch" / "lib" / "libtorch_cpu.so").write_bytes(b"y" * 5)
    assert prune.main([str(tmp_path / "ADF-Viewer"), "--check"]) == 1
    assert (internal / "torch" / "test" / "a_test").exists()
    rep = prune.prune_tree(tmp_path / "ADF-Viewer")
    assert rep["pruned_bytes"] == 70
    assert not (internal / "torch" / "test").exists() and (internal / "torch" / "lib" / "libtorch_cpu.so").exists()
    assert prune.main([str(tmp_path / "ADF-Viewer"), "--check"]) == 0


# ---- resources from source and frozen; never inside the app folder ---------------------------

def test_resource_path_frozen_and_from_source(tmp_path, monkeypatch):
    from training import paths

    assert paths.resource_path("style.qss") == ROOT / "resources" / "style.qss"
    assert paths.resource_path("style.qss").is_file()
    bundle = tmp_path / "ADF-Viewer" / "_internal"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    assert paths.resource_path("models", "adf-tiny.json") == bundle / "resources" / "models" / "adf-tiny.json"
    assert paths.resource_path("demo") == bundle / "resources" / "demo"
    # user data never lands in the (possibly read-only) app folder, whatever the platform's defaults
    monkeypatch.delenv("ADF_VIEWER_DATA", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for p in (paths.user_data_dir(), paths.default_demo_workspace()):
        assert not p.is_relative_to(tmp_path / "ADF-Viewer"), p
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "somewhere"), raising=False)
    monkeypatch.setattr(sys, "frozen", False)
    assert paths.resource_path("demo") == ROOT / "resources" / "demo"  # not frozen: _MEIPASS is ignored


# ---- Linux desktop entry and icons -----------------------------------------------------------

DESKTOP = PACKAGING / "linux" / "adf-viewer.desktop"
INSTALL = PACKAGING / "linux" / "install-desktop-entry.sh"
KNOWN_KEYS = {"Type", "Version", "Name", "GenericName", "Comment", "Exec", "TryExec", "Icon", "Terminal",
              "Categories", "Keywords", "StartupNotify", "StartupWMClass"}
MAIN_CATEGORIES = {"AudioVideo", "Audio", "Video", "Development", "Education", "Game", "Graphics", "Network",
                   "Office", "Science", "Settings", "System", "Utility"}


def parse_desktop(path: Path) -> dict[str, str]:
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "[Desktop Entry]"
    keys: dict[str, str] = {}
    for ln in lines[1:]:
        assert "=" in ln and not ln.startswith("["), ln
        k, v = ln.split("=", 1)
        assert k not in keys, f"duplicate key {k}"
        keys[k] = v
    return keys


def test_desktop_entry_is_valid():
    keys = parse_desktop(DESKTOP)
    assert set(keys) <= KNOWN_KEYS, set(keys) - KNOWN_KEYS
    assert keys["Type"] == "Application" and keys["Terminal"] == "false"
    assert keys["Name"] and keys["Exec"] and keys["Icon"] == "adf-viewer"
    for list_key in ("Categories", "Keywords"):
        assert keys[list_key].endswith(";")
    assert set(keys["Categories"].split(";")) & MAIN_CATEGORIES
    assert keys["Version"] in ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5")
    assert keys["StartupNotify"] in ("true", "false")
    cp = configparser.ConfigParser(interpolation=None, strict=True)
    cp.optionxform = str
    cp.read_string(DESKTOP.read_text(encoding="utf-8"))
    validator = shutil.which("desktop-file-validate")
    if validator:  # the freedesktop tool, where installed, on top of the checks above
        out = subprocess.run([validator, str(DESKTOP)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_install_script_points_the_menu_at_the_bundle(tmp_path):
    bundle = tmp_path / "My Apps & Co" / "ADF-Viewer"
    (bundle / "_internal" / "resources" / "icons").mkdir(parents=True)
    shutil.copy2(ROOT / "resources" / "icons" / "adf-viewer.png", bundle / "_internal" / "resources" / "icons")
    shutil.copy2(DESKTOP, bundle / "adf-viewer.desktop")
    shutil.copy2(INSTALL, bundle / "install-desktop-entry.sh")
    exe = bundle / "ADF-Viewer"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    data = tmp_path / "data"
    env = {**os.environ, "XDG_DATA_HOME": str(data), "HOME": str(tmp_path)}
    out = subprocess.run(["sh", str(bundle / "install-desktop-entry.sh")], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    installed = data / "applications" / "adf-viewer.desktop"
    keys = parse_desktop(installed)
    assert keys["Exec"] == f'"{exe}"'
    assert keys["TryExec"] == str(exe)
    assert Path(keys["Icon"]).read_bytes() == (ROOT / "resources" / "icons" / "adf-viewer.png").read_bytes()
    assert keys["Name"] == parse_desktop(DESKTOP)["Name"]
    out = subprocess.run(["sh", str(bundle / "install-desktop-entry.sh"), "--uninstall"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0 and not installed.exists()
    odd = tmp_path / "cost$HOME" / "ADF-Viewer"
    shutil.copytree(bundle, odd)
    out = subprocess.run(["sh", str(odd / "install-desktop-entry.sh")], env=env, capture_output=True, text=True)
    assert out.returncode == 1 and "move the folder" in out.stderr and not installed.exists()


def test_icons_are_real_images():
    icons = ROOT / "resources" / "icons"
    root = ET.parse(icons / "adf-viewer.svg").getroot()
    assert root.tag.endswith("svg") and root.get("viewBox") == "0 0 256 256"
    for name, size in (("adf-viewer.png", 256), ("adf-viewer-48.png", 48)):
        head = (icons / name).read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", head[16:24]) == (size, size)
    ico = (icons / "adf-viewer.ico").read_bytes()
    assert struct.unpack("<HHH", ico[:6]) == (0, 1, 1)  # reserved, type=icon, one image
    assert (icons / "adf-viewer.icns").read_bytes()[:4] == b"icns"


# ---- build helpers (the parts of make package / package-test that run without a build) --------

def test_fingerprint_follows_inputs(tmp_path):
    (tmp_path / "viewer").mkdir()
    (tmp_path / "main.py").write_text("print(1)\n")
    (tmp_path / "viewer" / "a.py").write_text("x = 1\n")
    first = build.inputs_fingerprint(tmp_path)
    assert build.inputs_fingerprint(tmp_path) == first
    (tmp_path / "viewer" / "a.py").write_text("x = 2\n")
    second = build.inputs_fingerprint(tmp_path)
    assert second != first
    (tmp_path / "notes.txt").write_text("not an input")
    assert build.inputs_fingerprint(tmp_path) == second


def test_snapshot_sees_any_write_into_the_bundle(tmp_path):
    (tmp_path / "_internal").mkdir()
    (tmp_path / "_internal" / "a.bin").write_bytes(b"abc")
    before = build.snapshot(tmp_path)
    assert build.snapshot_diff(before, build.snapshot(tmp_path)) == []
    (tmp_path / "_internal" / "__pycache__").mkdir()
    assert build.snapshot_diff(before, build.snapshot(tmp_path)) == ["added _internal/__pycache__",
                                                                     "changed _internal"]
    os.rmdir(tmp_path / "_internal" / "__pycache__")
    before = build.snapshot(tmp_path)
    (tmp_path / "_internal" / "a.bin").write_bytes(b"abcd")
    assert build.snapshot_diff(before, build.snapshot(tmp_path)) == ["changed _internal/a.bin"]
    os.symlink("a.bin", tmp_path / "_internal" / "link")
    assert build.tree_bytes(tmp_path) == 4  # links are not counted twice


def test_package_test_refuses_a_missing_bundle(tmp_path):
    with pytest.raises(SystemExit, match="make package"):
        build.test_bundle(tmp_path / "ADF-Viewer")
