"""Crash test of the workspace store, in the manner of SQLite's: SIGKILL writers at random moments.

Each cycle starts child processes that open one workspace through the real store and save mask
revisions in a loop the way the app does (recovery journal entry written, ``add_revision``, status
change, journal entry cleared; now and then a prediction-cache write or an audit event). A child
prints ``SAVED <case> <rev> <sha256>`` (flushed) after each ``add_revision`` returned. The parent
SIGKILLs every child at a random moment - while it imports Python, opens the database, writes a PNG,
fsyncs, commits - then reopens the workspace (which cleans leftovers of dead writers) and checks:

- ``PRAGMA integrity_check`` is ok;
- every revision row has its file, and the file's sha256 is the row's;
- the case rows agree with their revisions (``latest_rev`` = the newest revision);
- no temp file survives the open, anywhere under the workspace;
- every revision a child reported as saved is there with the reported sha256 ("lost" otherwise);
- every recovery-journal entry on disk is readable.

Only process death is simulated: the kernel keeps what was written, so this proves atomicity
and ordering against crashes of the app, not durability against power loss (that rests on the
fsyncs, which need a VM or dm-flakey to test).

    .venv/bin/python benchmarks/bench_crash.py [--kills 200] [--writers 2] [--seed 0] [--load N]

``--fs nfs4`` makes every process believe the workspace is on that filesystem (as
tests/test_network_share.py does), so the run exercises the rollback journal used on network
shares instead of WAL.

``--load N`` starts N busy processes beside the writers for the whole run (even ones spin the
CPU, odd ones write and fsync a scratch file in a loop, so fsyncs and lock hold times get slow):
the conditions in which a live writer meets a dead writer's leftovers most often.

Last stdout line: one JSON object {"kills", "lost", "corrupt", ...}.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

N_CASES = 6
H, W = 96, 128


# ------------------------------------------------------------------------------------- child
def inject_fs(fstype: str | None) -> None:
    """Make the store see ``fstype`` (e.g. "nfs4") under the workspace (see --fs)."""
    if fstype:
        from training import sharing

        sharing.filesystem_of = lambda _p: sharing.FsInfo(fstype, "/", "rw")


def child(ws_path: str, seed: int) -> int:
    """Save revisions forever (until killed), reporting each one that returned."""
    import numpy as np

    from training import recovery
    from training.store import Workspace

    rng = np.random.default_rng(seed)
    ws = Workspace.open(ws_path)
    case_ids = [c.id for c in ws.cases()]
    out = sys.stdout
    out.write("READY\n")
    out.flush()
    n = 0
    while True:
        cid = case_ids[int(rng.integers(len(case_ids)))]
        # a random blob mask: a few rectangles, different every time
        mask = np.zeros((H, W), bool)
        for _ in range(int(rng.integers(1, 4))):
            y, x = int(rng.integers(0, H - 8)), int(rng.integers(0, W - 8))
            mask[y : y + int(rng.integers(4, 40)), x : x + int(rng.integers(4, 40))] = True
        latest = ws.latest_revision(cid)
        recovery.write_entry(ws.root, cid, mask, latest.rev if latest else None, None, f"crash-{seed}")
        rev = ws.add_revision(cid, mask, source="human", author=f"crash-{seed}",
                              parent_rev=latest.rev if latest else None, note=f"bench {n}")
        out.write(f"SAVED {cid} {rev.rev} {rev.sha256}\n")
        out.flush()
        ws.set_status(cid, "corrected", author=f"crash-{seed}")
        recovery.clear_entry(ws.root, cid)
        n += 1
        if n % 5 == 0:
            prob = (rng.random((H, W)) * 255).astype(np.uint8)
            ws.save_prediction(cid, "crash-model", prob)
        if n % 7 == 0:
            ws.log_event("bench", cid, {"n": n})


# ------------------------------------------------------------------------------------ load
def busy(kind: str, scratch: str) -> int:
    """Keep one CPU (``cpu``) or the disk (``io``: 64 KiB write + fsync in a loop) busy until killed."""
    if kind == "cpu":
        x = 0
        while True:
            x = (x * 1103515245 + 12345) & 0xFFFFFFFF
    block = os.urandom(1 << 16)
    with open(scratch, "wb") as fh:
        while True:
            fh.seek(0)
            fh.write(block)
            fh.flush()
            os.fsync(fh.fileno())


def start_load(n: int, folder: Path, env: dict) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, __file__, "--busy", "cpu" if i % 2 == 0 else "io",
                              "--busy-file", str(folder / f"busy-{i}.bin")], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(n)]


# ------------------------------------------------------------------------------------ parent
def make_workspace(path: Path) -> list[str]:
    import cv2
    import numpy as np

    from training.store import Workspace

    rng = np.random.default_rng(1)
    src = path.parent / "src"
    src.mkdir(parents=True, exist_ok=True)
    with Workspace.open(path, create=True) as ws:
        for i in range(N_CASES):
            img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
            p = src / f"c{i}.png"
            cv2.imwrite(str(p), img)
            cid, reason = ws.import_pair(p, register=False)
            assert reason is None, reason
        return [c.id for c in ws.cases()]


def check(ws_path: Path, reported: dict[tuple[str, int], str]) -> dict[str, set[str]]:
    """Reopen the workspace after a kill and audit it (see the module docstring).

    Returns the problems found, by kind, as sets of stable strings (a problem seen again in a
    later cycle is not counted twice), plus "revisions" and "orphans" for information.
    """
    from training import recovery
    from training.imageio import TEMP_PREFIX, sha256_file
    from training.store import Workspace, WorkspaceError

    res: dict[str, set[str]] = {k: set() for k in ("lost", "corrupt", "temp_left", "journal_unreadable",
                                                    "revisions", "orphans")}
    try:
        ws = Workspace.open(ws_path)
    except WorkspaceError as exc:
        res["corrupt"].add(f"open failed: {exc}")
        return res
    try:
        ic = ws.integrity_check()
        if ic != "ok":
            res["corrupt"].add(f"integrity_check: {ic}")
        have: dict[tuple[str, int], str] = {}
        for case in ws.cases():
            revs = ws.history(case.id)
            if revs and case.latest_rev != revs[-1].rev:
                res["corrupt"].add(f"{case.id}: latest_rev {case.latest_rev} != {revs[-1].rev}")
            for r in revs:
                have[(r.case_id, r.rev)] = r.sha256
                if not r.mask_path.is_file():
                    res["corrupt"].add(f"missing file {r.mask_path.relative_to(ws_path)}")
                elif sha256_file(r.mask_path) != r.sha256:
                    res["corrupt"].add(f"sha256 mismatch {r.mask_path.relative_to(ws_path)}")
        res["revisions"] = {f"{k[0]}/{k[1]}" for k in have}
        for key, sha in reported.items():
            if have.get(key) != sha:
                res["lost"].add(f"reported {key[0]} rev {key[1]} {sha[:12]}, found {str(have.get(key))[:12]}")
        res["temp_removed"] = {json.dumps(e["detail"]) for e in ws.events(kind="cleanup_temp")}
        res["journal"] = {ws.db_journal_mode()}
    finally:
        ws.close()
    for dirpath, dirnames, filenames in os.walk(ws_path):
        for name in filenames + dirnames:
            rel = str(Path(dirpath, name).relative_to(ws_path))
            if name.startswith(TEMP_PREFIX) or name.endswith(".tmp"):
                res["temp_left"].add(f"temp survived open: {rel}")
            if ".orphan-" in name:
                res["orphans"].add(rel)
    jdir = ws_path / recovery.JOURNAL_DIR
    for p in sorted(jdir.glob("*.npz")) if jdir.is_dir() else []:
        try:
            recovery.read_entry(p)
        except ValueError as exc:
            res["journal_unreadable"].add(str(exc))
    return res


def run_cycle(ws_path: Path, rng: random.Random, writers: int, env: dict) -> tuple[dict, dict]:
    """Start the writers, kill each at its random moment, collect what they reported as saved."""
    procs = []
    sel = selectors.DefaultSelector()
    t0 = time.monotonic()
    for _ in range(writers):
        seed = rng.randrange(1 << 30)
        p = subprocess.Popen([sys.executable, __file__, "--child", str(ws_path), "--seed", str(seed),
                              *(["--fs", env["BENCH_FS"]] if env.get("BENCH_FS") else [])],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        os.set_blocking(p.stdout.fileno(), False)
        # 1 in 8 is killed at a random moment after its start (import, open, cleanup); the others at
        # a random moment after READY, i.e. while saving.
        early = rng.random() < 0.125
        st = {"proc": p, "buf": b"", "ready_at": None, "killed": False, "early": early,
              "delay": rng.uniform(0.0, 1.0) if early else rng.uniform(0.0, 0.4), "lines": []}
        procs.append(st)
        sel.register(p.stdout, selectors.EVENT_READ, st)
    deadline = t0 + 300  # python + numpy + cv2 start-up under --load can take a while
    while any(not s["killed"] for s in procs):
        now = time.monotonic()
        for s in procs:
            if s["killed"]:
                continue
            start = t0 if s["early"] else s["ready_at"]
            if start is not None and now >= start + s["delay"]:
                os.kill(s["proc"].pid, signal.SIGKILL)
                s["killed"] = True
            elif s["proc"].poll() is not None:  # died by itself: that is a failure of the bench
                s["killed"] = True
                s["crashed"] = s["proc"].stderr.read().decode(errors="replace")[-2000:]
        if now > deadline:
            raise RuntimeError("a writer never became ready")
        for key, _ in sel.select(timeout=0.002):
            s = key.data
            chunk = s["proc"].stdout.read() or b""
            s["buf"] += chunk
            if s["ready_at"] is None and b"READY\n" in s["buf"]:
                s["ready_at"] = time.monotonic()
    reported: dict[tuple[str, int], str] = {}
    info = {"saves": 0, "crashed": []}
    for s in procs:
        s["proc"].wait()
        rest = s["proc"].stdout.read() or b""
        s["buf"] += rest
        sel.unregister(s["proc"].stdout)
        s["proc"].stdout.close()
        s["proc"].stderr.close()
        for line in s["buf"].split(b"\n")[:-1]:  # a partial last line is not a report
            parts = line.decode().split()
            if parts and parts[0] == "SAVED":
                reported[(parts[1], int(parts[2]))] = parts[3]
                info["saves"] += 1
        if "crashed" in s:
            info["crashed"].append(s["crashed"])
    sel.close()
    return reported, info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=200, help="SIGKILLs in all (cycles = kills / writers)")
    ap.add_argument("--writers", type=int, default=2, help="concurrent writer processes per cycle")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", default=None, help="keep the workspace in this folder")
    ap.add_argument("--load", type=int, default=0, help="busy processes (CPU / fsync) running beside the writers")
    ap.add_argument("--fs", default=None, help="pretend the workspace is on this filesystem type (e.g. nfs4)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--busy", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--busy-file", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    inject_fs(args.fs)
    if args.child:
        return child(args.child, args.seed)
    if args.busy:
        return busy(args.busy, args.busy_file)

    import logging

    logging.getLogger("training.store").setLevel(logging.ERROR)  # leftovers removed on open are counted below
    rng = random.Random(args.seed)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "BENCH_FS": args.fs or ""}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-crash-") as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        ws_path = base / "ws"
        make_workspace(ws_path)
        load = start_load(args.load, base, env)
        try:
            all_reported: dict[tuple[str, int], str] = {}
            found: dict[str, set[str]] = {k: set() for k in ("lost", "corrupt", "temp_left", "journal_unreadable")}
            kills = cycles = saves = 0
            crashed: list[str] = []
            last: dict[str, set[str]] = {}
            for cycle in range(max(1, args.kills // args.writers)):
                reported, info = run_cycle(ws_path, rng, args.writers, env)
                all_reported.update(reported)
                last = check(ws_path, all_reported)   # everything ever reported must still be there
                cycles += 1
                kills += args.writers - len(info["crashed"])
                saves += info["saves"]
                crashed += [f"cycle {cycle}: {c}" for c in info["crashed"]]
                for k in found:
                    found[k] |= {f"{p} (first seen after cycle {cycle})" if p not in found[k] else p for p in last[k]
                                 if not any(q.startswith(p) for q in found[k])}
                if sum(len(v) for v in found.values()) + len(crashed) > 50:
                    break
            load_avg = os.getloadavg()[0]
        finally:
            for p in load:
                p.kill()
                p.wait()
    problems = [p for k in found for p in sorted(found[k])] + crashed
    result = {
        "kills": kills, "lost": len(found["lost"]), "corrupt": len(found["corrupt"]),
        "temp_left_after_open": len(found["temp_left"]), "journal_unreadable": len(found["journal_unreadable"]),
        "writer_crashed": len(crashed), "cycles": cycles, "writers_per_cycle": args.writers,
        "saves_reported": saves, "revisions_checked_last": len(last.get("revisions", ())),
        "orphan_files_set_aside": len(last.get("orphans", ())),
        "temp_removed_by_open": sum(len(json.loads(d)["removed"]) for d in last.get("temp_removed", ())),
        "seconds": round(time.perf_counter() - t_start, 1), "seed": args.seed, "load_processes": args.load, "fs": args.fs or "real",
        "journal_mode": ",".join(sorted(last.get("journal", ()))),
        "load_avg_1min_at_end": round(load_avg, 2), "cpu_count": os.cpu_count(),
        "problems": problems[:10],
    }
    print(json.dumps(result))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
