"""How the app's processes use a CPU that other programs share (no torch, no Qt).

A clinician's computer is never idle. OpenMP's default "active" wait makes torch's worker
threads spin between operations; with other programs on the same cores the spinning threads
fight them and one 256 px prediction went from ~130 ms to ~3,000 ms (issue 17). The cure has
to be chosen before torch loads, because OpenMP reads its settings once, when the library
starts: `apply_thread_policy` is called first thing in ``main.py`` (source and frozen app
alike, and the ``-m training`` form the Train dialog uses) and in ``python -m training``.

The Train dialog's trainer is a separate process that should only take what the window leaves:
`background_environment` gives it the same passive wait, one thread less than the cores, and
asks it (``ADF_LOW_PRIORITY``) to lower its own priority at start with `lower_priority`, before
it creates any thread, so every thread it makes inherits the lower priority (on Linux priority
is per thread).
"""
from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

MAX_APP_THREADS = 4           # more threads do not speed up the tiny model's small kernels
LOW_PRIORITY_ENV = "ADF_LOW_PRIORITY"
NICE_INCREMENT = 10           # POSIX nice for background work; Windows: BELOW_NORMAL_PRIORITY_CLASS
_BELOW_NORMAL_PRIORITY_CLASS = 0x00004000


def physical_cores() -> int:
    """Physical cores available to this process (hyper-threads do not help these kernels)."""
    try:
        avail = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        avail = os.cpu_count() or 1
    cores: set[tuple[str, str]] = set()
    try:
        phys = ""
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("physical id"):
                    phys = line.split(":", 1)[1].strip()
                elif line.startswith("core id"):
                    cores.add((phys, line.split(":", 1)[1].strip()))
    except OSError:
        pass
    return max(1, min(avail, len(cores) or avail))


def app_threads() -> int:
    """Intra-op threads for the app's predictions: half the physical cores, 1 to MAX_APP_THREADS.

    The tiny model scales poorly (2 threads: 1.37x one thread on this 2-core EPYC), and on a
    shared machine every extra thread is one more that a parallel region waits for when the
    scheduler gives its core away: next to two busy processes one thread predicted faster than
    two (168 vs 182 ms, docs/MODEL.md). Half the cores also leaves the window, and the
    clinician's other programs, a core during a prediction."""
    return max(1, min(physical_cores() // 2, MAX_APP_THREADS))


def background_threads() -> int:
    """Threads for background work (the Train dialog's trainer; prefetch uses at most this and at
    most the app's count): one core left for the window."""
    return max(1, physical_cores() - 1)


def apply_thread_policy(threads: int | None = None, environ: MutableMapping[str, str] | None = None,
                        count: bool = True) -> dict[str, str]:
    """Passive OpenMP waiting and a thread count, unless the user's environment already chose.

    Must run before torch is imported (OpenMP reads these once); returns what it set. Values
    the environment already has are kept, so ``OMP_NUM_THREADS=1 ADF-Viewer`` still works.
    ``count=False`` sets the waiting only (command-line training keeps torch's own count).
    """
    env = os.environ if environ is None else environ
    wanted = {
        "OMP_WAIT_POLICY": "PASSIVE",       # GNU and LLVM OpenMP: sleep, do not spin, between ops
        "KMP_BLOCKTIME": "0",               # Intel OpenMP (torch on Windows): the same
    }
    if count:
        wanted["OMP_NUM_THREADS"] = str(threads if threads is not None else app_threads())
    done = {}
    for key, value in wanted.items():
        if not env.get(key):
            env[key] = value
            done[key] = value
    return done


def background_environment(base: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a background torch process (the trainer): passive wait, cores - 1 threads, low priority.

    Unlike `apply_thread_policy` this overrides the app's own thread count, which the trainer
    would otherwise inherit."""
    env = dict(os.environ if base is None else base)
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    env["KMP_BLOCKTIME"] = "0"
    env["OMP_NUM_THREADS"] = str(background_threads())
    env[LOW_PRIORITY_ENV] = "1"
    return env


def lower_priority() -> bool:
    """Lower this process's CPU priority (nice +10; Windows BELOW_NORMAL). True when it did.

    Call before creating threads: on Linux a thread inherits its creator's priority, and
    ``os.nice`` changes only the calling thread."""
    try:
        if sys.platform.startswith("win"):
            import ctypes

            kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
            return bool(kernel32.SetPriorityClass(kernel32.GetCurrentProcess(), _BELOW_NORMAL_PRIORITY_CLASS))
        if os.getpriority(os.PRIO_PROCESS, 0) >= NICE_INCREMENT:
            return True  # already low (e.g. started with nice): do not go lower still
        os.nice(NICE_INCREMENT)
        return True
    except (OSError, AttributeError):
        return False


def apply_low_priority_request(environ: MutableMapping[str, str] | None = None) -> bool:
    """`lower_priority` when the parent asked for it through ``ADF_LOW_PRIORITY=1``; else nothing."""
    env = os.environ if environ is None else environ
    if env.get(LOW_PRIORITY_ENV) == "1":
        return lower_priority()
    return False


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
HEAP_MMAP_THRESHOLD = 32 << 20   # glibc's largest allowed value (DEFAULT_MMAP_THRESHOLD_MAX on 64 bit)
HEAP_TRIM_THRESHOLD = 128 << 20  # freed memory kept for reuse before it goes back to the system
_MALLOC_SETTLED: bool | None = None


def keep_freed_memory(environ: MutableMapping[str, str] | None = None) -> bool:
    """glibc (Linux): serve the network's large per-pass buffers from the heap, not from fresh
    pages that the kernel must zero on every pass; True when set.

    Why: glibc hands out blocks above its mmap threshold (128 KiB at start) as new mappings and
    unmaps them on free. It raises that threshold when a large block is freed, up to 32 MiB, so
    the speed of every later prediction depended on what the process happened to free first: after
    loading release 3's 21 MB weights file a click took ~120 ms at 1348x1076; after a 42 MB
    file (above 32 MiB, so no raise) ~150 ms, with inference and post-processing both slower
    (docs/MODEL.md). Setting the thresholds fixes them (and stops the adjusting) whatever was
    loaded. A user's own MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ wins; other C libraries
    are left alone."""
    global _MALLOC_SETTLED
    env = os.environ if environ is None else environ
    if _MALLOC_SETTLED is not None:
        return _MALLOC_SETTLED
    _MALLOC_SETTLED = False
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in env or "MALLOC_TRIM_THRESHOLD_" in env:
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    _MALLOC_SETTLED = bool(mallopt(_M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD))
    return _MALLOC_SETTLED
