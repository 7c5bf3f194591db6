"""Case sessions: the working mask and undo history of each case opened since the workspace opened.

A session outlives case switches (Ctrl+Z still works when the clinician comes back), up to
MAX_SESSIONS cases; beyond that the oldest *clean* sessions are forgotten (a dirty one is never
dropped: its edits are not saved yet). A clean session whose case another window saved since is
replaced by a fresh one, so the newer revision is shown rather than a stale copy.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoGroup, QUndoStack

from viewer.tools import CaseSession

MAX_SESSIONS = 64          # cases whose undo history is kept in memory at once
UNDO_LIMIT_PER_CASE = 500  # strokes; each holds only its bounding-box patch, bit-packed


class CaseSessions:
    """The sessions by case id (oldest first) and the undo group their stacks belong to."""

    def __init__(self, parent: QObject, on_stack_changed: Callable[[CaseSession], None],
                 on_clean_changed: Callable[[bool], None]) -> None:
        self.parent = parent
        self.undo_group = QUndoGroup(parent)
        self.by_id: OrderedDict[str, CaseSession] = OrderedDict()
        self._on_stack_changed = on_stack_changed
        self._on_clean_changed = on_clean_changed

    def get(self, case_id: str | None) -> CaseSession | None:
        return self.by_id.get(case_id) if case_id else None

    def session_for(self, ws: Any, case: Any, shape: tuple[int, int], current_id: str | None) -> CaseSession:
        """The session of ``case``: the one in memory, else a new one on its latest revision (or empty)."""
        session = self.by_id.get(case.id)
        if session is not None and not session.dirty and case.latest_rev not in (None, session.base_rev):
            self._drop(case.id)  # another window saved since: show theirs, not a stale copy
            session = None
        if session is not None:
            self.by_id.move_to_end(case.id)
            return session
        rev = ws.latest_revision(case.id)
        if rev is not None:
            mask = ws.load_mask(rev).astype(np.uint8)
            source, base_rev, model_id = "revision", rev.rev, rev.model_id
        else:
            mask = np.zeros(shape, np.uint8)
            source, base_rev, model_id = "empty", None, None
        stack = QUndoStack(self.parent)
        stack.setUndoLimit(UNDO_LIMIT_PER_CASE)
        self.undo_group.addStack(stack)
        session = CaseSession(case.id, np.ascontiguousarray(mask), stack, base_rev, model_id, None, source)
        stack.cleanChanged.connect(self._on_clean_changed)
        stack.indexChanged.connect(lambda _i, s=session: self._on_stack_changed(s))
        self.by_id[case.id] = session
        self._evict(current_id)
        return session

    def _evict(self, current_id: str | None) -> None:
        """Bound memory: forget the oldest clean sessions beyond MAX_SESSIONS."""
        while len(self.by_id) > MAX_SESSIONS:
            for cid, s in self.by_id.items():
                if cid != current_id and not s.dirty:
                    self._drop(cid)
                    break
            else:
                return

    def _drop(self, case_id: str) -> None:
        self.undo_group.removeStack(self.by_id.pop(case_id).undo)

    def clear(self) -> None:
        for session in self.by_id.values():
            self.undo_group.removeStack(session.undo)
        self.by_id.clear()
