"""Child processes for the multi-writer tests: real processes that open one workspace through the store.

    python -m tests.store_children die-mid-save WS CASE          # SIGKILLs itself between file and row
    python -m tests.store_children save WS CASES N AUTHOR [--wait] # N saves, prints SAVED <case> <rev> <sha>
    python -m tests.store_children save-cas WS CASE N AUTHOR     # N saves, each only on the newest revision
    python -m tests.store_children hold-lock WS HOST USER        # holds the write lock until stdin closes
    python -m tests.store_children hold-open WS                  # keeps the workspace open until stdin closes

``--fs TYPE[:OPTIONS]`` (before the command) makes the store believe the workspace is on that
filesystem (e.g. ``nfs4:rw,vers=4.2``), the way the network-share tests inject it; ``--host NAME``
makes the presence record claim another machine.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _inject(argv: list[str]) -> list[str]:
    """Apply ``--fs`` / ``--host`` and return the remaining arguments."""
    while argv and argv[0] in ("--fs", "--host"):
        from training import sharing

        opt, val, argv = argv[0], argv[1], argv[2:]
        if opt == "--fs":
            fstype, _, options = val.partition(":")
            sharing.filesystem_of = lambda _p, _t=fstype, _o=options: sharing.FsInfo(_t, "/", _o)  # type: ignore[assignment]
        else:
            sharing.host_name = lambda _v=val: _v  # type: ignore[assignment]
    return argv


def main(argv: list[str]) -> int:
    argv = _inject(argv)
    import numpy as np

    from training.store import Workspace

    cmd, ws_path = argv[0], argv[1]
    if cmd == "die-mid-save":
        ws = Workspace.open(ws_path)
        cid = argv[2]
        case = ws.case(cid)
        real_event = Workspace._event

        def die(db, kind, case_id, detail):  # the revision's file is renamed into place, its row not committed
            if kind == "revision":
                os.kill(os.getpid(), signal.SIGKILL)
            return real_event(db, kind, case_id, detail)

        Workspace._event = staticmethod(die)  # type: ignore[method-assign]
        ws.add_revision(cid, np.ones((case.height, case.width), bool), "human", "dead-writer")
        return 3  # not reached
    if cmd == "save":
        cases, n, author = argv[2].split(","), int(argv[3]), argv[4]
        rng = np.random.default_rng(abs(hash(author)) % (1 << 32))
        with Workspace.open(ws_path) as ws:
            if "--wait" in argv:  # opened, now wait for "go" (the test kills other writers meanwhile)
                print("READY", flush=True)
                sys.stdin.readline()
            for i in range(n):
                cid = cases[i % len(cases)]
                case = ws.case(cid)
                mask = rng.random((case.height, case.width)) < 0.3
                rev = ws.add_revision(cid, mask, "human", author, note=f"{author} {i}")
                print(f"SAVED {cid} {rev.rev} {rev.sha256}", flush=True)
        return 0
    if cmd == "save-cas":  # read the newest revision, edit, save only if it is still the newest
        from training.store import RevisionConflict

        cid, n, author = argv[2], int(argv[3]), argv[4]
        rng = np.random.default_rng(abs(hash(author)) % (1 << 32))
        with Workspace.open(ws_path) as ws:
            case = ws.case(cid)
            saved = 0
            while saved < n:
                latest = ws.latest_revision(cid)
                base = latest.rev if latest else None
                mask = rng.random((case.height, case.width)) < 0.3
                try:
                    rev = ws.add_revision(cid, mask, "human", author, parent_rev=base, expected_latest=base)
                except RevisionConflict as exc:
                    print(f"CONFLICT {exc.latest.rev} {exc.latest.author}", flush=True)
                    continue
                print(f"SAVED {cid} {rev.rev} {rev.sha256}", flush=True)
                saved += 1
        return 0
    if cmd == "hold-lock":
        from training import sharing

        sharing.host_name = lambda: argv[2]  # type: ignore[assignment]
        sharing.user_name = lambda: argv[3]  # type: ignore[assignment]
        ws = Workspace.open(ws_path)
        ws._db.execute("BEGIN IMMEDIATE")
        print("LOCKED", flush=True)
        sys.stdin.read()
        ws._db.execute("ROLLBACK")
        ws.close()
        return 0
    if cmd == "hold-open":
        ws = Workspace.open(ws_path)
        print(f"READY {ws.db_journal_mode()}", flush=True)
        ws.cases()
        sys.stdin.read()
        ws.close()
        return 0
    raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
