"""Start-up stages stamped with wall-clock time, so a benchmark can say where the time goes.

Qt-free and torch-free; a stamp is kept only the first time it is made (start-up, not every
case). `viewer.app` prints them with the first overlay when ADF_VIEWER_REPORT_STARTUP is set.
"""
from __future__ import annotations

import threading
import time

STAMPS: dict[str, float] = {}
_lock = threading.Lock()


def stamp(name: str) -> None:
    """Record ``name`` at the current time.time(), unless it was recorded already."""
    with _lock:
        STAMPS.setdefault(name, time.time())


def snapshot() -> dict[str, float]:
    with _lock:
        return dict(STAMPS)
