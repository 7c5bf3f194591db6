"""Build the one-folder ADF Viewer app and (optionally) test the built bundle.

    .venv/bin/python packaging/build.py                    # make package: always rebuilds
    .venv/bin/python packaging/build.py --if-needed --test # make package-test

Build: PyInstaller on packaging/adf_viewer.spec -> dist/ADF-Viewer/ (ADF-Viewer + _internal/),
then the Linux desktop entry and its installer are copied beside the executable and the bundle is
checked against packaging/prune.py's rules. ``--if-needed`` skips the build when the bundle was
made from exactly the current inputs (a hash of the app's code, resources, spec and pins).

Test (``--test``), all headless and in a throw-away HOME, from a foreign working directory:
  1. ``ADF-Viewer --self-test``: window + one prediction with the bundled model, JSON ok;
  1b. ``ADF-Viewer --self-test`` with a Chinese OS locale: it starts in zh_CN with its .qm files;
  2. ``ADF-Viewer`` as on a first double-click: the demo workspace is built in the user data
     folder and the first prediction is painted (ADF_VIEWER_REPORT_STARTUP=exit closes it);
  3. ``ADF-Viewer -m training <cmd> --help`` for every command (all modules were bundled);
  4. ``-m training import`` of the bundled demo pairs + a 1-step ``train`` on them: the frozen
     training path the Train dialog uses (torch autograd/optimiser without the excluded extras);
  5. the bundle folder is byte-for-byte unchanged afterwards (the app never writes into it).

Last stdout line: one JSON object (build seconds, bundle bytes, bytes pruned, test results).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
sys.path.insert(0, str(PACKAGING))
import prune  # noqa: E402

APP = "ADF-Viewer"
SPEC = PACKAGING / "adf_viewer.spec"
INPUT_GLOBS = ("main.py", "viewer/**/*.py", "training/**/*.py", "model/**/*.py", "resources/**/*", "requirements.txt",
               "packaging/adf_viewer.spec", "packaging/prune.py", "packaging/linux/*")
TRAINING_COMMANDS = ("import", "train", "evaluate", "export")
TRANSLATIONS = ("adf_viewer_zh_CN.qm", "qtbase_zh_CN.qm")  # in resources/i18n of the bundle


def executable(bundle: Path, cli: bool = True) -> Path:
    """The bundle's program (on Windows the console one, for tests and `-m training`)."""
    if sys.platform == "win32":
        return bundle / (f"{APP}-cli.exe" if cli else f"{APP}.exe")
    return bundle / APP


def inputs_fingerprint(root: Path = ROOT) -> str:
    """sha256 over every build input's path and bytes, plus the Python and PyInstaller versions."""
    h = hashlib.sha256()
    files: set[Path] = set()
    for pattern in INPUT_GLOBS:
        files.update(p for p in root.glob(pattern) if p.is_file() and "__pycache__" not in p.parts)
    for p in sorted(files):
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    try:
        from PyInstaller import __version__ as pyi_version
    except ImportError:  # the fingerprint still works for the test of this function
        pyi_version = "none"
    h.update(f"{sys.version}|{pyi_version}".encode())
    return h.hexdigest()


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (symlinks not followed or counted)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def snapshot(path: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``path``: relative path -> (size, mtime_ns); directories included."""
    snap: dict[str, tuple[int, int]] = {}
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            p = Path(dirpath) / name
            st = p.lstat()
            snap[p.relative_to(path).as_posix()] = (0 if name in dirs else st.st_size, st.st_mtime_ns)
    return snap


def snapshot_diff(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    """Human-readable differences between two snapshots (empty: nothing was written)."""
    out = [f"added {k}" for k in sorted(after.keys() - before.keys())]
    out += [f"removed {k}" for k in sorted(before.keys() - after.keys())]
    out += [f"changed {k}" for k in sorted(before.keys() & after.keys()) if before[k] != after[k]]
    return out


def build(dist: Path, work: Path, clean: bool) -> dict:
    """Run PyInstaller, add the desktop entry files, check the pruning; returns the build facts."""
    if not any((ROOT / "resources" / "models").glob("*.json")):
        raise SystemExit("error: no bundled model in resources/models/ (adf-tiny.json + .safetensors); "
                         "the app must ship with one")
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
           "--distpath", str(dist), "--workpath", str(work), str(SPEC)]
    if clean:
        cmd.insert(3, "--clean")
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True)
    build_s = time.perf_counter() - t0
    bundle = dist / APP
    if sys.platform.startswith("linux"):
        for name in ("adf-viewer.desktop", "install-desktop-entry.sh"):
            shutil.copy2(PACKAGING / "linux" / name, bundle / name)
        (bundle / "install-desktop-entry.sh").chmod(0o755)
    leftover = prune.prune_tree(bundle)  # normally nothing: the spec filtered already
    report = json.loads((work / SPEC.stem / "prune-report.json").read_text())  # PyInstaller's per-spec workpath
    return {"build_s": round(build_s, 1), "bundle_bytes": tree_bytes(bundle),
            "pruned_bytes": report["pruned_bytes"] + leftover["pruned_bytes"],
            "pruned_files": report["pruned_files"] + leftover["pruned_files"],
            "pruned_by_reason": {k: v["bytes"] for k, v in report["by_reason"].items()},
            "pruned_after_build": leftover["pruned_files"]}


def isolated_env(home: Path) -> dict[str, str]:
    """Environment for running the bundle: offscreen, a throw-away HOME and data folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "QT_", "XDG_", "ADF_"))}
    env.update({"QT_QPA_PLATFORM": "offscreen", "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
                "XDG_DATA_HOME": str(home / "data"), "XDG_CACHE_HOME": str(home / "cache"),
                "USERPROFILE": str(home), "LOCALAPPDATA": str(home / "appdata"), "APPDATA": str(home / "appdata")})
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float) -> tuple[int, str, str, float]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr, time.perf_counter() - t0


def _json_or_empty(line: str) -> dict:
    if line.startswith("{"):
        try:
            value = json.loads(line)
            return value if isinstance(value, dict) else {}
        except json.JSONDecodeError:
            pass
    return {}


def _last_json(text: str) -> dict:
    for line in reversed(text.splitlines()):
        if value := _json_or_empty(line):
            return value
    return {}


def test_bundle(bundle: Path, timeout: float = 600.0) -> dict:
    """The checks listed in the module docstring; returns their results with "ok"."""
    exe = executable(bundle)
    if not exe.is_file():
        raise SystemExit(f"error: no built app at {exe}; run `make package` first")
    before = snapshot(bundle)
    res: dict = {"ok": False}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="adf-package-test-") as tmp_s:
        tmp = Path(tmp_s)
        env = isolated_env(tmp / "home")
        (tmp / "home").mkdir()
        rc, out, err, secs = _run([str(exe), "--self-test"], env, tmp, timeout)
        st = _last_json(out)
        res["self_test"] = {"rc": rc, "s": round(secs, 1), **st}
        if rc != 0 or not st.get("ok"):
            failures.append(f"--self-test rc={rc}: {st.get('error') or err[-1500:]}")
        # on a Chinese OS the app starts in Chinese: its own .qm and Qt's are bundled and loaded (issue 21)
        i18n_dir = prune.contents_dir(bundle) / "resources" / "i18n"
        missing_qm = [n for n in TRANSLATIONS if not (i18n_dir / n).is_file()]
        zh_env = {**env, "LANG": "zh_CN.UTF-8", "LC_ALL": "zh_CN.UTF-8", "LANGUAGE": "zh_CN"}
        rc, out, err, secs = _run([str(exe), "--self-test"], zh_env, tmp, timeout)
        st = _last_json(out)
        res["self_test_zh_CN"] = {"rc": rc, "s": round(secs, 1), "ok": st.get("ok"), "language": st.get("language"),
                                  "translations": st.get("translations"), "missing_in_bundle": missing_qm}
        if missing_qm or rc != 0 or not st.get("ok") or st.get("language") != "zh_CN" \
                or sorted(st.get("translations") or []) != sorted(TRANSLATIONS):
            failures.append(f"zh_CN start: {res['self_test_zh_CN']} {st.get('error') or err[-800:]}")
        # a first double-click: no --workspace, so the demo workspace is built in the user data folder
        rc, out, err, secs = _run([str(exe)], {**env, "ADF_VIEWER_REPORT_STARTUP": "exit"}, tmp, timeout)
        events = {e.get("event") for e in map(_json_or_empty, out.splitlines())}
        demo_ws = tmp / "home" / "data" / "adf-viewer" / "demo-workspace" / "workspace.sqlite"
        res["first_start"] = {"rc": rc, "s": round(secs, 1), "events": sorted(e for e in events if e),
                              "demo_workspace_in_user_data": demo_ws.is_file()}
        if rc != 0 or "first_overlay" not in events or not demo_ws.is_file():
            failures.append(f"first start (demo workspace in the user data folder) rc={rc}: {err[-1500:]}")
        helps = {}
        for cmd in TRAINING_COMMANDS:
            rc, out, err, secs = _run([str(exe), "-m", "training", cmd, "--help"], env, tmp, timeout)
            helps[cmd] = rc
            if rc != 0 or "usage" not in out.lower():
                failures.append(f"-m training {cmd} --help rc={rc}: {err[-800:]}")
        res["training_help_rc"] = helps
        demo = prune.contents_dir(bundle) / "resources" / "demo"
        ws, run_dir = tmp / "ws", tmp / "run"
        rc, out, err, secs = _run([str(exe), "-m", "training", "import", str(demo), "--workspace", str(ws)],
                                  env, tmp, timeout)
        res["import"] = {"rc": rc, "s": round(secs, 1), **_last_json(out)}
        if rc != 0:
            failures.append(f"-m training import rc={rc}: {err[-800:]}")
        else:
            rc, out, err, secs = _run([str(exe), "-m", "training", "train", "--data", str(ws), "--epochs", "1",
                                       "--steps-per-epoch", "1", "--batch-size", "2", "--size", "64",
                                       "--val-size", "64", "--no-tqdm", "--threads", "1", "--out", str(run_dir),
                                       "--model-id", "package-test"], env, tmp, timeout)
            done = _last_json(out)
            res["train"] = {"rc": rc, "s": round(secs, 1), "event": done.get("event")}
            if rc != 0 or done.get("event") != "done" or not (run_dir / "package-test.safetensors").is_file():
                failures.append(f"-m training train rc={rc}: {err[-1500:]}")
    changes = snapshot_diff(before, snapshot(bundle))
    res["bundle_changes"] = changes[:20]
    if changes:
        failures.append(f"the app wrote inside its own folder: {changes[:5]}")
    res["failures"] = failures
    res["ok"] = not failures
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dist", type=Path, default=ROOT / "dist")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller")
    ap.add_argument("--if-needed", action="store_true", help="skip the build when the bundle matches the inputs")
    ap.add_argument("--clean", action="store_true", help="empty PyInstaller's cache first (slower)")
    ap.add_argument("--test", action="store_true", help="run the bundle's checks after building")
    ap.add_argument("--no-build", action="store_true", help="never build (with --test: test the existing bundle)")
    args = ap.parse_args(argv)
    bundle = args.dist / APP
    stamp = args.work / "inputs.sha256"
    result: dict = {"bundle": str(bundle)}
    fingerprint = inputs_fingerprint()
    up_to_date = (executable(bundle).is_file() and stamp.is_file()
                  and stamp.read_text().strip() == fingerprint)
    if args.no_build or (args.if_needed and up_to_date):
        result["built"] = False
        result["up_to_date"] = up_to_date
    else:
        if stamp.exists():
            stamp.unlink()
        result.update(build(args.dist, args.work, args.clean))
        stamp.write_text(fingerprint + "\n")
        result["built"] = True
        print(f"built {bundle} in {result['build_s']} s: {result['bundle_bytes'] / 1e6:.0f} MB; "
              f"pruned {result['pruned_files']} files, {result['pruned_bytes'] / 1e6:.0f} MB", flush=True)
    if args.test:
        result["test"] = test_bundle(bundle)
        for f in result["test"]["failures"]:
            print(f"FAIL: {f}", file=sys.stderr)
    print(json.dumps(result))
    return 0 if result.get("test", {"ok": True})["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
