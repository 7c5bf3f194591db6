"""Several writers on one workspace (issue 18): real processes, dead writers' leftovers, conflicts.

Every writer here is a real process (tests/store_children.py) opening the workspace through the
store, as the app, ``python -m training import`` and the trainer do.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TEST_DATA
from training.imageio import encode_png, sha256_bytes, sha256_file
from training.store import RevisionConflict, Workspace

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def child(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.store_children", *args], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def make_ws(root: Path, n_cases: int = 2) -> list[str]:
    names = ["vf_0041.png", "vf_0055.png", "vf_0070.png"][:n_cases]
    with Workspace.open(root, create=True) as ws:
        for name in names:
            cid, reason = ws.import_pair(TEST_DATA / name, register=False)
            assert reason is None
        return [c.id for c in ws.cases()]


def die_mid_save(root: Path, cid: str) -> None:
    p = child("die-mid-save", str(root), cid)
    out, err = p.communicate(timeout=120)
    assert p.returncode == -9, err  # SIGKILL, after the file was renamed into place, before COMMIT


# ---------------------------------------------------------------------------------- item 1
def test_a_dead_writers_file_never_blocks_a_live_writers_save(tmp_path: Path) -> None:
    """The bench_crash failure: writer B dies between its file's rename and its row's commit while
    writer A stays open; A's next save wants the same number and used to be refused."""
    root = tmp_path / "ws"
    cid = make_ws(root, 1)[0]
    live = Workspace.open(root)  # opened before the dead writer ran: its open-time cleanup cannot help
    first = live.add_revision(cid, np.zeros((128, 128), bool), "human", "dr.a")
    die_mid_save(root, cid)
    leftover = root / "masks" / cid / "2.png"
    assert leftover.is_file() and [r.rev for r in live.history(cid)] == [1]
    dead_bytes = leftover.read_bytes()

    mine = np.zeros((128, 128), bool)
    mine[10:40, 10:40] = True
    rev = live.add_revision(cid, mine, "human", "dr.a", parent_rev=first.rev)

    assert rev.rev == 2 and np.array_equal(live.load_mask(rev), mine)
    assert rev.sha256 == sha256_file(root / "masks" / cid / "2.png")
    aside = list((root / "masks" / cid).glob("2.orphan-*.png"))
    assert len(aside) == 1 and aside[0].read_bytes() == dead_bytes  # kept, never deleted
    assert live.integrity_check() == "ok"
    live.close()


def test_live_writers_and_dying_writers_never_collide(tmp_path: Path) -> None:
    """Two live writer processes save on the same cases while writers die mid-save beside them:
    no save is refused, every reported revision is there with its bytes, no number is used twice."""
    root = tmp_path / "ws"
    cases = make_ws(root, 2)
    n = 12
    writers = [child("save", str(root), ",".join(cases), str(n), author, "--wait", stdin=subprocess.PIPE)
               for author in ("dr.a", "dr.b")]
    for w in writers:
        assert w.stdout.readline().strip() == "READY"  # both open before anyone dies
    die_mid_save(root, cases[0])                      # leaves case 0's next file without a row
    for w in writers:
        w.stdin.write("go\n")
        w.stdin.flush()
    for k in (1, 0):                                  # and more deaths while they save
        die_mid_save(root, cases[k])
    reported: dict[tuple[str, int], str] = {}
    for w in writers:
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
        lines = [ln.split() for ln in out.splitlines() if ln.startswith("SAVED")]
        assert len(lines) == n
        for _, cid, rev, sha in lines:
            assert (cid, int(rev)) not in reported
            reported[(cid, int(rev))] = sha
    with Workspace.open(root) as ws:
        assert ws.integrity_check() == "ok"
        rows = {(r.case_id, r.rev): r for c in cases for r in ws.history(c)}
        for key, sha in reported.items():
            assert rows[key].sha256 == sha == sha256_file(rows[key].mask_path)
        for c in cases:
            assert [r.rev for r in ws.history(c)] == list(range(1, len(ws.history(c)) + 1))
        assert {r.author for r in rows.values()} == {"dr.a", "dr.b"}  # the dead writers committed nothing
    orphans = [p for c in cases for p in (root / "masks" / c).glob("*.orphan-*.png")]
    assert len(orphans) == 3
    ones = sha256_bytes(encode_png(np.ones((128, 128), bool)))
    assert all(sha256_file(p) == ones for p in orphans)  # exactly the dead writers' masks



# ---------------------------------------------------------------------------------- item 3 (store)
def test_a_save_on_a_stale_base_is_refused_with_who_and_when(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    cid = make_ws(root, 1)[0]
    a, b = Workspace.open(root), Workspace.open(root)   # two windows
    m = np.zeros((128, 128), bool)
    assert a.add_revision(cid, m, "human", "dr.a", expected_latest=None).rev == 1
    with pytest.raises(RevisionConflict) as info:       # b also started from "no revision yet"
        b.add_revision(cid, ~m, "human", "dr.b", expected_latest=None)
    assert info.value.latest.rev == 1 and info.value.latest.author == "dr.a" and info.value.expected is None
    assert "was saved by dr.a at " in str(info.value)
    assert [r.rev for r in a.history(cid)] == [1]       # nothing written, no file either
    assert sorted(p.name for p in (root / "masks" / cid).iterdir()) == ["1.png"]
    rev = b.add_revision(cid, ~m, "human", "dr.b", parent_rev=None, expected_latest=1)  # "save mine as newer"
    assert rev.rev == 2 and np.array_equal(a.latest_mask(cid), ~m)
    assert b.add_revision(cid, m, "human", "dr.b").rev == 3  # without expected_latest: as before
    a.close()
    b.close()


def test_compare_and_save_holds_across_real_processes(tmp_path: Path) -> None:
    """Three processes loop "read newest, edit, save only if still newest": every committed revision
    was made on top of the one just before it, so no save ever hid another."""
    root = tmp_path / "ws"
    cid = make_ws(root, 1)[0]
    n = 8
    procs = [child("save-cas", str(root), cid, str(n), f"dr.{k}") for k in "xyz"]
    conflicts = 0
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert sum(ln.startswith("SAVED") for ln in out.splitlines()) == n
        conflicts += sum(ln.startswith("CONFLICT") for ln in out.splitlines())
    with Workspace.open(root) as ws:
        revs = ws.history(cid)
        assert [r.rev for r in revs] == list(range(1, 3 * n + 1))
        assert [r.parent_rev for r in revs] == [None, *range(1, 3 * n)]
        assert ws.integrity_check() == "ok"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
