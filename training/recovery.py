"""Crash-recovery journal for unsaved edits (no Qt, no torch).

The editor writes the working mask of a case here at the end of every stroke; a save deletes the
entry. If the app dies between the two, the next start finds the entry and offers it back, so a
stroke is never lost even when the 2-second autosave had not fired yet. Entries are written
atomically (temp file, fsync, rename, fsync of the folder) and never unpickled on load.
"""
from __future__ import annotations

import io
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.imageio import TEMP_PREFIX, fsync_dir, write_bytes_atomic

JOURNAL_DIR = "recovery"
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class JournalEntry:
    """An unsaved mask found on disk."""

    case_id: str
    mask: np.ndarray          # bool (H, W)
    base_rev: int | None
    model_id: str | None
    author: str | None
    written_at: float
    path: Path


def _entry_path(workspace_root: Path, case_id: str) -> Path:
    return Path(workspace_root) / JOURNAL_DIR / (_SAFE.sub("_", case_id) + ".npz")


def write_entry(workspace_root: Path, case_id: str, mask: np.ndarray, base_rev: int | None = None,
                model_id: str | None = None, author: str | None = None) -> Path:
    """Durably record the current working mask of ``case_id`` (replacing its previous entry)."""
    path = _entry_path(workspace_root, case_id)
    meta = {"case_id": case_id, "base_rev": base_rev, "model_id": model_id, "author": author,
            "written_at": time.time(), "shape": list(mask.shape)}
    buf = io.BytesIO()
    np.savez(buf, bits=np.packbits(mask.astype(bool), axis=None),
             meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8))
    # Written atomically with the store's temp naming (pid inside): a writer killed mid-write leaves
    # a .tmp-* file that the next Workspace.open removes, and pending_entries skips.
    write_bytes_atomic(path, buf.getvalue())
    return path


def read_entry(path: Path) -> JournalEntry:
    """Load one journal file (no pickle); raises ValueError when it is unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode("utf-8"))
            shape = tuple(int(v) for v in meta["shape"])
            bits = np.unpackbits(data["bits"], count=shape[0] * shape[1])
    except Exception as exc:  # noqa: BLE001 - any damage means "cannot recover this one"
        raise ValueError(f"{path}: unreadable recovery entry ({exc})") from exc
    return JournalEntry(meta["case_id"], bits.reshape(shape).astype(bool), meta.get("base_rev"),
                        meta.get("model_id"), meta.get("author"), float(meta.get("written_at", 0.0)), path)


def pending_entries(workspace_root: Path) -> list[JournalEntry]:
    """Every readable unsaved entry of a workspace, oldest first (unreadable ones are skipped)."""
    folder = Path(workspace_root) / JOURNAL_DIR
    if not folder.is_dir():
        return []
    entries = []
    for path in sorted(folder.glob("*.npz")):
        if path.name.startswith(TEMP_PREFIX):  # another writer's (or a dead one's) file in the making
            continue
        try:
            entries.append(read_entry(path))
        except ValueError:
            continue
    return sorted(entries, key=lambda e: e.written_at)


def clear_entry(workspace_root: Path, case_id: str) -> None:
    """Forget the unsaved entry of a case (after it was saved as a revision or discarded)."""
    path = _entry_path(workspace_root, case_id)
    try:
        path.unlink()
    except FileNotFoundError:
        return
    fsync_dir(path.parent)
