"""What the ADF Viewer bundle leaves out, and how many bytes that saves.

PyInstaller's hooks collect whole packages: torch brings its C++ test programs and test
libraries, Qt brings every translation and platform plugin. The app uses none of them. The
spec passes its collected file lists through :func:`filter_toc` (so the files are never copied)
and writes a JSON report; ``python packaging/prune.py DIST_DIR`` applies the same rules to a
finished bundle (a safety net and a check: ``--check`` fails when anything prunable is left).

Rules match a file's destination path inside the bundle (``torch/test/...``), with ``/``
separators on every OS. A library that only a pruned file needed (on Linux: the GTK theme
plugin's cairo/pango/atk...) goes too: ``DT_NEEDED`` entries of the ELF files are read here, so
nothing that a kept file links against is ever removed.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import posixpath
import struct
import sys
from collections.abc import Iterable
from pathlib import Path

# (glob on the destination path, reason). fnmatch's "*" also matches "/", so "dir/*" is recursive.
RULES: list[tuple[str, str]] = [
    # torch: C++ test programs and libraries, headers, CMake files, static/import libraries
    ("torch/test/*", "torch C++ test programs"),
    ("torch/bin/*", "torch developer/test executables"),
    ("torch/include/*", "torch C++ headers"),
    ("torch/share/*", "torch CMake files"),
    ("torch/lib/*.a", "static libraries"),
    ("torch/lib/*.lib", "Windows import libraries"),
    ("torch/lib/*test*", "torch test libraries"),
    ("torch/lib/*aoti_custom_ops*", "torch test libraries"),
    ("torch/lib/*backend_with_compiler*", "torch test libraries"),
    ("torch/*.pyi", "type stubs"),
    ("triton/*", "triton (GPU compiler; no torch.compile here)"),
    # Qt: translations (the UI is English only) and plugins for embedded/remote displays
    ("PySide6/*translations/*", "Qt translations"),
    ("PySide6/*plugins/platforms/*qeglfs*", "Qt embedded platform plugins"),
    ("PySide6/*plugins/platforms/*qlinuxfb*", "Qt embedded platform plugins"),
    ("PySide6/*plugins/platforms/*qminimalegl*", "Qt embedded platform plugins"),
    ("PySide6/*plugins/platforms/*qvnc*", "Qt embedded platform plugins"),
    ("PySide6/*plugins/platforms/*qvkkhrdisplay*", "Qt embedded platform plugins"),
    ("PySide6/*plugins/platforms/*qdirect2d*", "Qt embedded platform plugins"),
    ("PySide6/*plugins/egldeviceintegrations/*", "Qt embedded platform plugins"),
    ("PySide6/*plugins/generic/*", "Qt evdev/TUIO input plugins (embedded)"),
    # The GTK3 theme plugin would load the system's GTK against bundled glib/cairo (a known crash
    # source in frozen apps); the app draws with its own style sheet anyway.
    ("PySide6/*plugins/platformthemes/*qgtk3*", "Qt GTK3 theme plugin"),
    ("*/__pycache__/*", "byte-code caches"),
]

# Never pruned, whatever the rules say (torch's shared-memory helper for DataLoader workers).
KEEP: list[str] = ["torch/bin/torch_shm_manager", "torch/bin/torch_shm_manager.exe"]

ORPHAN_REASON = "library needed only by pruned files"


def prune_reason(dest: str) -> str | None:
    """Why the file at bundle path ``dest`` is left out, or None to keep it."""
    dest = dest.replace("\\", "/")
    if any(fnmatch.fnmatchcase(dest, k) for k in KEEP):
        return None
    for pattern, reason in RULES:
        if fnmatch.fnmatchcase(dest, pattern):
            return reason
    return None


# ---------------------------------------------------------------------------------------------
# ELF DT_NEEDED (Linux). Windows/macOS bundles skip the orphan step (rules still apply).

def elf_needed(path: str | os.PathLike[str]) -> list[str] | None:
    """The DT_NEEDED sonames of an ELF file; None when it is not ELF (or unreadable)."""
    try:
        with open(path, "rb") as f:
            ident = f.read(16)
            if len(ident) < 16 or ident[:4] != b"\x7fELF":
                return None
            is64 = ident[4] == 2
            end = "<" if ident[5] == 1 else ">"
            if is64:
                hdr = struct.unpack(end + "HHIQQQIHHHHHH", f.read(48))
                shoff, shentsize, shnum = hdr[5], hdr[10], hdr[11]
                sh_fmt, dyn_fmt = end + "IIQQQQIIQQ", end + "qQ"
            else:
                hdr = struct.unpack(end + "HHIIIIIHHHHHH", f.read(36))
                shoff, shentsize, shnum = hdr[5], hdr[10], hdr[11]
                sh_fmt, dyn_fmt = end + "IIIIIIIIII", end + "iI"
            if not shoff or not shnum:
                return []
            f.seek(shoff)
            raw = f.read(shentsize * shnum)
            sections = [struct.unpack_from(sh_fmt, raw, i * shentsize) for i in range(shnum)]
            out: list[str] = []
            dyn_size = struct.calcsize(dyn_fmt)
            for sec in sections:
                if sec[1] != 6:  # SHT_DYNAMIC
                    continue
                offset, size, link = sec[4], sec[5], sec[6]
                strtab = sections[link]
                f.seek(strtab[4])
                strings = f.read(strtab[5])
                f.seek(offset)
                dyn = f.read(size)
                for i in range(0, len(dyn) - dyn_size + 1, dyn_size):
                    tag, val = struct.unpack_from(dyn_fmt, dyn, i)
                    if tag == 0:
                        break
                    if tag == 1:  # DT_NEEDED
                        out.append(strings[val:strings.index(b"\0", val)].decode("utf-8", "replace"))
            return out
    except (OSError, struct.error, IndexError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------

Entry = tuple[str, str, str]  # PyInstaller TOC entry: (dest, src, typecode)


def _size(src: str, typecode: str) -> int:
    if typecode == "SYMLINK":
        return 0
    try:
        return os.path.getsize(src)
    except OSError:
        return 0


def _link_target(entry: Entry) -> str:
    dest, target, _ = entry
    return posixpath.normpath(posixpath.join(posixpath.dirname(dest.replace("\\", "/")), target.replace("\\", "/")))


def filter_toc(entries: Iterable[Entry], orphans: bool = True) -> tuple[list[Entry], list[tuple[Entry, str]]]:
    """Split a PyInstaller TOC into (kept, [(pruned, reason)]).

    Rule matches go first; then, when ``orphans``, every library that a pruned file needed and
    that no kept file needs (directly or through other kept libraries) goes too; then symlinks
    whose target went. Raises RuntimeError when a rule prunes a library a kept file links against.
    """
    entries = list(entries)
    reasons: dict[int, str] = {}
    for i, (dest, _src, _tc) in enumerate(entries):
        r = prune_reason(dest)
        if r:
            reasons[i] = r
    real = [i for i, e in enumerate(entries) if e[2] != "SYMLINK"]
    by_name: dict[str, list[int]] = {}
    for i in real:
        by_name.setdefault(posixpath.basename(entries[i][0].replace("\\", "/")), []).append(i)
    needed_cache: dict[int, list[str]] = {}

    def needed(i: int) -> list[str]:
        if i not in needed_cache:
            binary = entries[i][2] in ("BINARY", "EXTENSION", "EXECUTABLE")
            needed_cache[i] = (elf_needed(entries[i][1]) or []) if binary else []
        return needed_cache[i]

    def closure(roots: Iterable[int]) -> set[int]:
        seen: set[int] = set()
        stack = list(roots)
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            for name in needed(i):
                stack.extend(by_name.get(name, []))
        return seen

    if orphans and sys.platform.startswith("linux"):
        ruled = set(reasons)
        candidates = closure(ruled) - ruled
        live = closure(i for i in real if i not in ruled and i not in candidates)
        broken = sorted(entries[i][0] for i in ruled & live)
        if broken:
            raise RuntimeError(f"prune rules remove libraries that kept files link against: {broken}")
        for i in candidates - live:
            reasons[i] = ORPHAN_REASON
    pruned_dests = {entries[i][0].replace("\\", "/") for i in reasons}
    for i, e in enumerate(entries):
        if e[2] == "SYMLINK" and i not in reasons and _link_target(e) in pruned_dests:
            reasons[i] = "symlink to a pruned file"
    kept = [e for i, e in enumerate(entries) if i not in reasons]
    pruned = [(entries[i], reasons[i]) for i in sorted(reasons)]
    return kept, pruned


def report(pruned: list[tuple[Entry, str]]) -> dict:
    """Bytes and file counts saved, per reason, plus the file list."""
    by_reason: dict[str, dict[str, int]] = {}
    total = 0
    files = []
    for (dest, src, tc), reason in pruned:
        size = _size(src, tc)
        total += size
        slot = by_reason.setdefault(reason, {"files": 0, "bytes": 0})
        slot["files"] += 1
        slot["bytes"] += size
        files.append({"path": dest, "bytes": size, "reason": reason})
    return {"pruned_files": len(pruned), "pruned_bytes": total, "by_reason": by_reason, "files": files}


def contents_dir(bundle: Path) -> Path:
    """The folder whose relative paths the rules match (``_internal`` in PyInstaller 6)."""
    for cand in (bundle / "_internal", bundle / "Contents" / "Frameworks"):
        if cand.is_dir():
            return cand
    return bundle


def prune_tree(bundle: Path, dry_run: bool = False) -> dict:
    """Apply the rules to a built bundle folder (not the orphan step); returns the report."""
    root = contents_dir(bundle)
    entries: list[Entry] = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            entries.append((rel, str(p), "SYMLINK" if p.is_symlink() else "DATA"))
    pruned = [(e, r) for e in entries if (r := prune_reason(e[0]))]
    rep = report(pruned)
    if not dry_run:
        for (_dest, src, _tc), _r in pruned:
            os.unlink(src)
        for dirpath, dirs, files in os.walk(root, topdown=False):
            if not dirs and not files and Path(dirpath) != root:
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
    return rep


def summary_line(rep: dict) -> str:
    parts = ", ".join(f"{r}: {v['bytes'] / 1e6:.1f} MB" for r, v in
                      sorted(rep["by_reason"].items(), key=lambda kv: -kv[1]["bytes"]))
    return f"pruned {rep['pruned_files']} files, {rep['pruned_bytes'] / 1e6:.1f} MB ({parts or 'nothing'})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Remove what the ADF Viewer bundle does not need; report bytes saved.")
    ap.add_argument("bundle", type=Path, help="the built folder, e.g. dist/ADF-Viewer")
    ap.add_argument("--check", action="store_true", help="remove nothing; exit 1 if anything prunable is left")
    ap.add_argument("--json", action="store_true", help="print the full JSON report")
    args = ap.parse_args(argv)
    if not args.bundle.is_dir():
        print(f"error: no bundle at {args.bundle}", file=sys.stderr)
        return 2
    rep = prune_tree(args.bundle, dry_run=args.check)
    print(json.dumps(rep) if args.json else summary_line(rep))
    return 1 if args.check and rep["pruned_files"] else 0


if __name__ == "__main__":
    sys.exit(main())
