"""Keeping a workspace tidy and checked. On every writable open: temp files of dead writers are
removed (on a share only this machine's are judged by pid, the others by age), and revision files
that no row owns (a writer killed between the file's rename and the row's commit) are set aside,
never deleted. ``integrity_check`` is SQLite's own.
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import shutil
from pathlib import Path

from training import sharing
from training.imageio import HOST_TAG, TEMP_PREFIX
from training.sharing import pid_alive
from training.store.records import _rel
from training.store.revisions import _set_aside

log = logging.getLogger(__name__)

_TEMP_MAX_AGE_S = 24 * 3600  # a temp file of a live process older than this is stale anyway


_TEMP_RE = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)-(?:(h[0-9a-f]{8})-)?")


def _is_stale_temp(entry: os.DirEntry, shared: bool = False) -> bool:
    """A dead writer's temp file. On a workspace other machines use (``shared``), a pid in the name
    may be another machine's live writer: only files tagged with this machine are judged by pid,
    the others by age."""
    m = _TEMP_RE.match(entry.name)
    if not m:
        return False
    try:
        age = _dt.datetime.now().timestamp() - entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return False
    if shared and m.group(2) != HOST_TAG:  # untagged, or another machine's: its pid is not ours to check
        return age > _TEMP_MAX_AGE_S
    return not pid_alive(int(m.group(1))) or age > _TEMP_MAX_AGE_S


class MaintenanceMixin:
    """Workspace's clean-up at open and its integrity check (uses its root, fs, _read, _write, _event)."""

    def _cleanup(self) -> None:
        """Remove temp files of dead writers; set aside revision files that no row owns."""
        removed: list[str] = []
        orphan_candidates: list[tuple[str, int]] = []
        max_rev = {r["case_id"]: r["m"] for r in self._read("SELECT case_id, max(rev) AS m FROM revisions GROUP BY case_id")}
        shared = self.fs.network or bool(sharing.other_hosts(self.root))
        for top in ("images", "masks", "predictions", "models", "recovery", sharing.PRESENCE_DIR):
            base = self.root / top
            if not base.is_dir():
                continue
            stack = [base]
            depth = {base: 0}
            while stack:
                d = stack.pop()
                try:
                    entries = list(os.scandir(d))
                except OSError:
                    continue
                for e in entries:
                    if _is_stale_temp(e, shared):
                        p = Path(e.path)
                        try:
                            if e.is_dir(follow_symlinks=False):
                                shutil.rmtree(p)
                            else:
                                p.unlink()
                            removed.append(_rel(self.root, p))
                        except OSError as exc:
                            log.warning("cannot remove leftover temp %s: %s", p, exc)
                    elif top == "masks" and depth[d] == 1 and re.fullmatch(r"\d+\.png", e.name):
                        rev = int(e.name[:-4])
                        if rev > (max_rev.get(Path(d).name) or 0):
                            orphan_candidates.append((Path(d).name, rev))
                    elif e.is_dir(follow_symlinks=False) and depth[d] < 1:
                        depth[Path(e.path)] = depth[d] + 1
                        stack.append(Path(e.path))
        if removed:
            log.warning("workspace %s: removed %d leftover temp file(s): %s", self.root, len(removed),
                        ", ".join(removed[:10]))
            with self._write() as db:
                self._event(db, "cleanup_temp", None, {"removed": removed})
        if orphan_candidates:
            self._set_aside_orphans(orphan_candidates)

    def _set_aside_orphans(self, candidates: list[tuple[str, int]]) -> None:
        """Revision files with no row (a crash between rename and commit) are renamed out of the way.

        Checked under the write lock: a live writer writes its file and commits while holding it,
        so a file without a row at this point is truly orphaned. Never deleted (it may be work).
        """
        moved = []
        with self._write() as db:
            for case_id, rev in candidates:
                path = self.root / "masks" / case_id / f"{rev}.png"
                owned = db.execute("SELECT 1 FROM revisions WHERE case_id = ? AND rev = ?", (case_id, rev)).fetchone()
                if owned is None and path.is_file():
                    aside = _set_aside(path)
                    if aside is not None:
                        moved.append(_rel(self.root, aside))
            if moved:
                self._event(db, "orphan_revision_files", None, {"set_aside": moved})

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: "ok" or the first problems found."""
        rows = self._read("PRAGMA integrity_check")
        msgs = [next(iter(r.values())) for r in rows]
        return "ok" if msgs == ["ok"] else "; ".join(str(m) for m in msgs)
