"""Busy processes for the ``--load N`` benchmarks: what a clinician's other programs do to the CPU.

Each is a separate Python process spinning at normal priority (``while True: pass``), so the
benchmark measures the same code quiet and then sharing the cores with N of them, in one run.
Not a benchmark itself (no ``bench_`` prefix).
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator


@contextlib.contextmanager
def busy_processes(n: int, settle_s: float = 0.5) -> Iterator[list[int]]:
    """Start ``n`` spinning processes, yield their pids, and always kill them afterwards."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
             for _ in range(max(0, n))]
    try:
        time.sleep(settle_s if procs else 0.0)
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def machine() -> dict:
    """What the figures ran on: cores and the 1-minute load average when they were taken."""
    try:
        load1 = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        load1 = None
    return {"cpu_count": os.cpu_count(), "loadavg_1min": load1}
