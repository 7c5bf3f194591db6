"""Every bad input of the corpus (tests/make_bad_inputs.py) through the real code path: a clear
message, the right result and exit code, no traceback to the user, nothing saved lost.

The scenarios are the ones docs/RELIABILITY.md tables; a scenario marked ``known_bug`` documents a
bug found here and not fixed yet (the test is a strict xfail, so fixing the bug turns it red and
asks for the mark to go). Plus unit checks of the fixes this corpus forced: header size checks for
TIFF and WebP, refusal of non-regular files, recovery-journal temp files cleaned on open.
"""
from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from tests import make_bad_inputs as corpus
from training import imageio
from training.imageio import ImageReadError

WORK = "bad-inputs"


@pytest.fixture(scope="module")
def work_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for every scenario of this module, so the saved-work template is built once."""
    return tmp_path_factory.mktemp(WORK)


def _param(sc: corpus.Scenario):
    marks = [pytest.mark.xfail(strict=True, reason=sc.known_bug)] if sc.known_bug else []
    return pytest.param(sc, id=sc.key, marks=marks)


@pytest.mark.parametrize("sc", [_param(s) for s in corpus.SCENARIOS if not s.gui])
def test_bad_input(sc: corpus.Scenario, work_root: Path) -> None:
    outcome = corpus.run_scenario(sc, work_root / re.sub(r"\W", "_", sc.key))
    assert corpus.check(sc, outcome) == [], outcome


@pytest.mark.parametrize("sc", [_param(s) for s in corpus.SCENARIOS if s.gui])
def test_bad_input_in_the_window(sc: corpus.Scenario, work_root: Path, qtbot) -> None:
    outcome = corpus.run_scenario(sc, work_root / re.sub(r"\W", "_", sc.key))
    assert corpus.check(sc, outcome) == [], outcome


def test_every_input_the_issue_names_is_in_the_corpus() -> None:
    keys = " ".join(s.key for s in corpus.SCENARIOS)
    for needed in ("truncated.png", "truncated.jpg", "zero_byte", "text.png", "deep16", "grey", "rgba", "cmyk",
                   "one_pixel", "bomb.png", "bomb:memory", "pair:sizes", "non_utf8", "name:long", "csv:dotdot",
                   "symlink_loop", "readonly", "disk_full:revision", "gui:disk_full_save", "db:random",
                   "model:pickle", "model:shapes", "model:sha", "gui:model_pickle", "gui:corrupt_workspace"):
        assert needed in keys, needed


# ----------------------------------------------------------------------- the fixes, unit by unit
def test_tiff_and_webp_sizes_come_from_the_header() -> None:
    import cv2

    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    for ext, params in ((".tif", []), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),
                        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80])):
        ok, buf = cv2.imencode(ext, img, params)
        assert imageio.image_size(buf.tobytes()) == (53, 37), ext
    rgba = np.dstack([img, np.full((37, 53), 200, np.uint8)])
    ok, buf = cv2.imencode(".webp", rgba, [cv2.IMWRITE_WEBP_QUALITY, 80])
    assert imageio.image_size(buf.tobytes()) == (53, 37)
    assert imageio.image_size(corpus.tiff_bomb(3000, big_endian=True)) == (3000, 3000)
    assert imageio.image_size(corpus.webp_bomb_header(16383)) == (16383, 16383)


@pytest.mark.parametrize("maker", [lambda: corpus.tiff_bomb(20000), lambda: corpus.tiff_bomb(20000, True),
                                   lambda: corpus.webp_bomb_header(16383)], ids=["tiff-le", "tiff-be", "webp"])
def test_tiff_and_webp_bombs_are_refused_before_decoding(maker, monkeypatch: pytest.MonkeyPatch) -> None:
    called = []
    monkeypatch.setattr(imageio.cv2, "imdecode", lambda *a: called.append(1))
    with pytest.raises(ImageReadError, match=r"image too large"):
        imageio.decode_rgb(maker(), "bomb")
    assert not called


def test_damaged_tiff_header_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    called = []
    monkeypatch.setattr(imageio.cv2, "imdecode", lambda *a: called.append(1))
    bad = b"II*\x00" + struct.pack("<I", 4000) + b"\x00" * 16   # IFD offset past the end
    with pytest.raises(ImageReadError, match="damaged TIFF header"):
        imageio.decode_rgb(bad, "x.tif")
    assert not called


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX only")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageReadError, match="not a regular file"):
        imageio.read_rgb(fifo)  # reading it would wait forever for a writer


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "big.png"
    p.write_bytes((corpus.TEST_DATA / "vf_0041.png").read_bytes())
    monkeypatch.setattr(imageio, "MAX_FILE_BYTES", 100)
    monkeypatch.setattr(imageio.np, "fromfile", lambda *a, **k: pytest.fail("read anyway"))
    with pytest.raises(ImageReadError, match=r"file too large \(\d+ bytes > 100\)"):
        imageio.read_rgb(p)


def test_a_journal_temp_file_of_a_dead_writer_is_removed_on_open(tmp_path: Path) -> None:
    """A writer killed inside recovery.write_entry left its temp file: the next open removes it,
    and pending_entries never mistakes it for an entry."""
    from training import recovery
    from training.store import Workspace

    with Workspace.open(tmp_path / "ws", create=True) as ws:
        root = ws.root
    recovery.write_entry(root, "c1", np.ones((4, 5), bool))
    dead = 2 ** 22 + 12345  # above any pid the kernel hands out by default
    while True:
        try:
            os.kill(dead, 0)
            dead += 1
        except ProcessLookupError:
            break
    tmp = root / recovery.JOURNAL_DIR / f"{imageio.TEMP_PREFIX}{dead}-c2.npz.tmp"
    tmp.write_bytes(b"half an entry")
    assert [e.case_id for e in recovery.pending_entries(root)] == ["c1"]
    Workspace.open(root).close()
    assert not tmp.exists()
    assert [e.case_id for e in recovery.pending_entries(root)] == ["c1"]


def test_a_complete_journal_temp_file_is_not_an_entry(tmp_path: Path) -> None:
    """Journal entries are written by model.atomic, whose temp names end like the final name
    (.npz): one complete but not yet renamed (the writer was killed just before the rename) is
    still not an entry."""
    from model.atomic import temp_name
    from training import recovery

    recovery.write_entry(tmp_path / "a", "c1", np.ones((4, 5), bool))
    c2 = recovery.write_entry(tmp_path / "b", "c2", np.ones((4, 5), bool))
    folder = tmp_path / "a" / recovery.JOURNAL_DIR
    (folder / temp_name(folder / c2.name).name).write_bytes(c2.read_bytes())
    assert [e.case_id for e in recovery.pending_entries(tmp_path / "a")] == ["c1"]


def test_a_failed_journal_write_leaves_no_temp_file(tmp_path: Path) -> None:
    from model import atomic
    from training import recovery

    with corpus.disk_full(atomic), pytest.raises(OSError, match="No space left"):
        recovery.write_entry(tmp_path, "c1", np.ones((4, 5), bool))
    assert list((tmp_path / recovery.JOURNAL_DIR).iterdir()) == []
