"""The bad-input corpus: generate every awkward input, run each through the real code path, report.

Why: a clinician's corrections are hours of work and the files they import come from anywhere,
so every bad input must end in a clear message (a skip reason in the import summary, a one-line
CLI error with an exit code, a banner in the window) with nothing already saved lost. The
corpus is generated at test time (only tests/data is read), the scenarios run the same code the
user runs, and the table in docs/RELIABILITY.md is printed from their real outcomes:

    .venv/bin/python tests/make_bad_inputs.py --table          # run every scenario, print markdown
    .venv/bin/python tests/make_bad_inputs.py --write DIR      # only write the corpus files into DIR

``tests/test_bad_inputs.py`` runs the same scenarios and checks each against its ``expect`` and
``message`` pattern.
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
TEST_DATA = ROOT / "tests" / "data"
BOMB_SIDE = 30000


# ======================================================================== corpus files
def textured(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth random RGB texture (registration finds features on it)."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 2.0)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _zeros_deflated(row_bytes: int, rows: int) -> bytes:
    """zlib stream of rows x row_bytes zero bytes, compressed a block at a time (little memory)."""
    co = zlib.compressobj(1)  # fastest; the file is still ~0.5 MB for 900 MB of pixels
    block = bytes(row_bytes * 1000)
    out = []
    for start in range(0, rows, 1000):
        n = min(1000, rows - start)
        out.append(co.compress(block if n == 1000 else bytes(row_bytes * n)))
    out.append(co.flush())
    return b"".join(out)


def png_bomb(side: int = BOMB_SIDE) -> bytes:
    """A complete, valid side x side 1-bit grey PNG (~0.5 MB on disk, ~900 MB once decoded)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    row = 1 + (side + 7) // 8  # filter byte + packed bits
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", _zeros_deflated(row, side))
            + _png_chunk(b"IEND", b""))


def tiff_bomb(side: int = BOMB_SIDE, big_endian: bool = False) -> bytes:
    """A complete side x side 1-bit deflate TIFF, one strip (~0.5 MB, ~900 MB decoded)."""
    strip = _zeros_deflated((side + 7) // 8, side)
    e = ">" if big_endian else "<"
    # tag, type (3 SHORT, 4 LONG), value; StripOffsets is patched below
    entries = [(256, 4, side), (257, 4, side), (258, 3, 1), (259, 3, 8), (262, 3, 1), (273, 4, 0),
               (277, 3, 1), (278, 4, side), (279, 4, len(strip))]
    data_off = 8 + 2 + 12 * len(entries) + 4
    out = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(e + "I", 8) + struct.pack(e + "H", len(entries))
    for tag, typ, val in entries:
        val = data_off if tag == 273 else val
        out += (struct.pack(e + "HHIHH", tag, typ, 1, val, 0) if typ == 3 else struct.pack(e + "HHII", tag, typ, 1, val))
    return out + struct.pack(e + "I", 0) + strip


def jpeg_bomb_header(side: int = BOMB_SIDE) -> bytes:
    """A real JPEG whose frame header (SOF) claims side x side pixels."""
    from training.imageio import _jpeg_sof

    data = bytearray((TEST_DATA / "kv_cju0qkwl.jpg").read_bytes())
    off, _ = _jpeg_sof(bytes(data))
    data[off + 5 : off + 9] = struct.pack(">HH", side, side)
    return bytes(data)


def webp_bomb_header(side: int = 16383) -> bytes:
    """A WebP whose VP8X header claims a side x side canvas (the format's maximum)."""
    body = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (side - 1).to_bytes(3, "little") * 2
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def _enc(ext: str, img: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, img, params or [])
    assert ok
    return buf.tobytes()


def image_corpus() -> dict[str, bytes]:
    """file name -> bytes of every single-image bad or awkward input."""
    rgb = textured(48, 64, 1)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    png = _enc(".png", bgr)
    jpg = _enc(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return {
        "truncated.png": png[: len(png) // 2],
        "truncated.jpg": jpg[: len(jpg) // 2],
        "zero_byte.png": b"",
        "text.png": b"patient list\nthis is not an image\n",
        "png_magic_then_garbage.png": png[:8] + bytes(range(256)) * 2,
        "deep16.png": _enc(".png", bgr.astype(np.uint16) * 257),
        "grey.png": _enc(".png", cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)),
        "rgba.png": _enc(".png", cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)),
        "cmyk.jpg": (TEST_DATA / "cmyk.jpg").read_bytes(),
        "one_pixel.png": _enc(".png", bgr[:1, :1]),
        "bomb.png": png_bomb(),
        "bomb.tif": tiff_bomb(),
        "bomb.jpg": jpeg_bomb_header(),
        "bomb.webp": webp_bomb_header(),
    }


NON_UTF8 = b"caf\xe9-\xff_wli.png"              # Latin-1 bytes: not valid UTF-8
LONG_STEM = "\u00e9" * 123 + "x_wli"            # 251 UTF-8 bytes + ".png" = 255 bytes, Linux's NAME_MAX


def write_corpus(dest: Path, images: bool = True) -> dict[str, Path]:
    """Write every corpus input under ``dest``; returns name -> path (files and folders)."""
    dest.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    if images:
        (dest / "images").mkdir(exist_ok=True)
        for name, data in image_corpus_cached().items():
            (dest / "images" / name).write_bytes(data)
            out[name] = dest / "images" / name
    # WLI and NBI of different sizes (and the NBI rotated a little): allowed, registration maps it
    pair = dest / "sizes"
    pair.mkdir(exist_ok=True)
    wli = textured(240, 320, 2)
    from model.pseudo_nbi import pseudo_nbi

    nbi, _ = pseudo_nbi(wli, rng=3, max_corner_shift=0.04)
    cv2.imwrite(str(pair / "sizes_wli.png"), wli[:, :, ::-1])
    cv2.imwrite(str(pair / "sizes_nbi.jpg"), cv2.resize(nbi, (200, 150))[:, :, ::-1])
    out["sizes"] = pair
    # names: not UTF-8, and the longest a file name may be
    names = dest / "names"
    names.mkdir(exist_ok=True)
    odd = Path(os.fsdecode(os.fsencode(names) + b"/" + NON_UTF8))
    odd.write_bytes(_enc(".png", textured(40, 56, 4)))
    long_ = names / (LONG_STEM + ".png")
    long_.write_bytes(_enc(".png", textured(40, 56, 5)))
    out["non_utf8"], out["long_name"], out["names"] = odd, long_, names
    # a CSV whose rows point outside its folder
    csvdir = dest / "csv" / "inside"
    csvdir.mkdir(parents=True, exist_ok=True)
    (csvdir / "ok_wli.png").write_bytes(_enc(".png", textured(40, 56, 6)))
    (dest / "csv" / "outside.png").write_bytes(_enc(".png", textured(40, 56, 7)))
    (csvdir / "pairs.csv").write_text(
        "wli_path,nbi_path,label_path,patient_id\n"
        "ok_wli.png,,,P1\n"
        "../outside.png,,,P2\n"
        f"{dest / 'csv' / 'outside.png'},,,P3\n"
        "ok_wli.png,../../../../etc/passwd,,P4\n"
        "ok_wli.png,,../outside.png,P5\n", encoding="utf-8")
    out["csv"] = csvdir / "pairs.csv"
    # symlink loops: two links pointing at each other, and a folder link to its own parent
    loops = dest / "loops"
    loops.mkdir(exist_ok=True)
    for a, b in (("loop_a.png", "loop_b.png"), ("loop_b.png", "loop_a.png")):
        with contextlib.suppress(FileExistsError):
            os.symlink(b, loops / a)
    with contextlib.suppress(FileExistsError):
        os.symlink(".", loops / "again", target_is_directory=True)
    (loops / "real.png").write_bytes(_enc(".png", textured(40, 56, 8)))
    out["loops"] = loops
    # things that are not files: a named pipe (reading it would block forever), a device
    special = dest / "special"
    special.mkdir(exist_ok=True)
    if hasattr(os, "mkfifo") and not (special / "fifo_wli.png").exists():
        os.mkfifo(special / "fifo_wli.png")
    if Path("/dev/zero").exists():
        with contextlib.suppress(FileExistsError):
            os.symlink("/dev/zero", special / "zero_wli.png")
    (special / "folder.png").mkdir(exist_ok=True)
    out["special"] = special
    return out


# ======================================================================== outcomes
@dataclass
class Outcome:
    """What the user saw for one bad input."""

    where: str                      # the code path: "python -m training import", "window: save", ...
    result: str                     # imported | skipped | refused | error
    message: str                    # the text the user sees (normalised paths)
    exit_code: int | None = None
    intact: bool = True             # everything saved before is still there, byte for byte
    traceback: bool = False         # a Python traceback reached the user
    notes: str = ""
    issues: list[str] = field(default_factory=list)   # behaviour that is wrong although nothing was lost
    raw: dict = field(default_factory=dict)


@dataclass
class Scenario:
    key: str
    what: str                       # the bad input, as the table names it
    expect: str                     # the result it must have
    message: str                    # regex the message must match
    run: Callable[[Path], Outcome]
    gui: bool = False
    known_bug: str = ""             # a bug found here and not fixed yet: the test expects it to fail


SCENARIOS: list[Scenario] = []


def scenario(key: str, what: str, expect: str, message: str, gui: bool = False, known_bug: str = ""):
    def deco(fn: Callable[[Path], Outcome]) -> Callable[[Path], Outcome]:
        SCENARIOS.append(Scenario(key, what, expect, message, fn, gui, known_bug))
        return fn
    return deco


def _norm(text: str, *roots: Path) -> str:
    """Replace temp folders by <dir> so messages read the same on every run."""
    for r in sorted({str(p) for p in roots}, key=len, reverse=True):
        text = text.replace(r, "<dir>")
    text = re.sub(r"file has [0-9a-f]{12}\.\.\.", "file has <sha256>...", text)  # random-init weights
    return re.sub(r"orphan-[0-9a-f]{8}", "orphan-<random>", text).strip()


# ======================================================================== workspace helpers
@dataclass
class Sentinel:
    """Work saved before the bad input arrives: it must all be there afterwards."""

    ws: Path
    revisions: list[tuple[str, int, str]]   # case, rev, sha256
    db_bytes: bytes = b""


def _template(work: Path) -> Path:
    tpl = work.parent / "_template"  # shared by every scenario run under the same parent
    if (tpl / "ws" / "workspace.sqlite").is_file():
        return tpl
    from training.store import Workspace

    src = tpl / "src"
    src.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(src / "saved_wli.png"), textured(60, 80, 9)[:, :, ::-1])
    mask = np.zeros((60, 80), bool)
    mask[10:40, 20:60] = True
    with Workspace.open(tpl / "ws", create=True) as ws:
        cid, reason = ws.import_pair(src / "saved_wli.png", mask=mask, register=False)
        assert reason is None, reason
        mask2 = mask.copy()
        mask2[30:50, 5:30] = True
        ws.add_revision(cid, mask2, source="human", author="dr.sentinel", note="hours of work")
    return tpl


def fresh_workspace(work: Path, name: str) -> Sentinel:
    """A copy of a workspace holding one case with two saved revisions."""
    from training.store import Workspace

    dest = work / name
    shutil.copytree(_template(work) / "ws", dest)
    with Workspace.open(dest) as ws:
        revs = [(r.case_id, r.rev, r.sha256) for c in ws.cases() for r in ws.history(c.id)]
    return Sentinel(dest, revs)


def still_intact(s: Sentinel) -> bool:
    """Every sentinel revision is in the database and its file has the recorded sha256."""
    from training.imageio import sha256_file
    from training.store import Workspace, WorkspaceError

    try:
        with Workspace.open(s.ws) as ws:
            if ws.integrity_check() != "ok":
                return False
            for cid, rev, sha in s.revisions:
                r = ws.revision(cid, rev)
                if r.sha256 != sha or sha256_file(r.mask_path) != sha:
                    return False
                ws.load_mask(r)
    except (WorkspaceError, KeyError, OSError):
        return False
    return True


def files_unchanged(s: Sentinel) -> bool:
    """For a workspace whose database is the bad input: the database and mask files are untouched."""
    from training.imageio import sha256_file

    if s.db_bytes and (s.ws / "workspace.sqlite").read_bytes() != s.db_bytes:
        return False
    return all(sha256_file(s.ws / "masks" / cid / f"{rev}.png") == sha for cid, rev, sha in s.revisions)


def no_temp_files(root: Path) -> bool:
    from training.imageio import TEMP_PREFIX

    return not any(n.startswith(TEMP_PREFIX) for _d, dirs, files in os.walk(root) for n in dirs + files)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``python -m training ARGV`` in this process; (exit code, stdout, stderr)."""
    from training.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return int(code), out.getvalue(), err.getvalue()


def run_cli_process(argv: list[str], timeout: float = 120) -> tuple[int, str, str]:
    """``python -m training ARGV`` as a real process (exit code and stderr exactly as a user sees them)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("ADF_DEBUG", None)
    p = subprocess.run([sys.executable, "-m", "training", *argv], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def import_outcome(work: Path, name: str, sources: list[Path],
                   during: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> Outcome:
    """Import ``sources`` with the CLI into a workspace holding saved work; summarise what it said.

    ``during`` is entered around the import only (e.g. a full disk).
    """
    s = fresh_workspace(work, name)
    with during():
        code, out, err = run_cli(["import", *map(str, sources), "--workspace", str(s.ws), "--quiet"])
    tb = "Traceback" in out + err
    roots = [s.ws, work, *(p.parent for p in sources)]
    if code != 0:
        return Outcome("python -m training import", "error", _norm(err.strip().splitlines()[-1], *roots), code,
                       still_intact(s) and no_temp_files(s.ws), tb, raw={"stderr": err})
    summary = json.loads(out.strip().splitlines()[-1])
    skipped = summary["skipped"]
    msgs = [f"{Path(k['path']).name}: {k['reason']}" for k in skipped]
    if summary["imported"]:
        from training.store import Workspace

        with Workspace.open(s.ws) as ws:
            new = [c for c in ws.cases() if c.id not in {r[0] for r in s.revisions}]
            shapes = []
            for c in new:
                img = ws.load_wli(c.id)  # the stored copy decodes
                nbi = f", NBI {c.nbi_width}x{c.nbi_height} registered ({c.reg_quality})" if c.nbi_path else ""
                shapes.append(f"case {c.id!r} {img.shape[1]}x{img.shape[0]} RGB{nbi}")
        msgs = [f"imported {', '.join(shapes)}"] + msgs
    result = "imported" if summary["imported"] else ("skipped" if skipped else "nothing")
    return Outcome("python -m training import", result, _norm("; ".join(msgs), *roots), code,
                   still_intact(s) and no_temp_files(s.ws), tb, raw=summary)


# ======================================================================== image scenarios
_IMAGE_CASES = [
    ("truncated.png", "PNG cut in half", "skipped", r"truncated PNG"),
    ("truncated.jpg", "JPEG cut in half", "skipped", r"truncated JPEG"),
    ("zero_byte.png", "zero-byte file", "skipped", r"empty file \(0 bytes\)"),
    ("text.png", "text file named .png", "skipped", r"not an image \(unknown format\)"),
    ("png_magic_then_garbage.png", "PNG signature followed by garbage", "skipped", r"damaged PNG header"),
    ("deep16.png", "16-bit RGB PNG", "imported", r"imported case 'deep16' 64x48 RGB"),
    ("grey.png", "greyscale PNG", "imported", r"imported case 'grey' 64x48 RGB"),
    ("rgba.png", "RGBA PNG", "imported", r"imported case 'rgba' 64x48 RGB"),
    ("cmyk.jpg", "CMYK JPEG", "imported", r"imported case 'cmyk' 48x48 RGB"),
    ("one_pixel.png", "1x1 image", "imported", r"imported case 'one_pixel' 1x1 RGB"),
    ("bomb.png", f"{BOMB_SIDE}x{BOMB_SIDE} PNG, 1-bit, complete (0.5 MB; 900 MB decoded)", "skipped",
     rf"image too large \({BOMB_SIDE}x{BOMB_SIDE} > 50000000 pixels\)"),
    ("bomb.tif", f"{BOMB_SIDE}x{BOMB_SIDE} deflate TIFF, 1-bit, complete (0.5 MB)", "skipped",
     rf"image too large \({BOMB_SIDE}x{BOMB_SIDE} > 50000000 pixels\)"),
    ("bomb.jpg", f"JPEG whose header claims {BOMB_SIDE}x{BOMB_SIDE}", "skipped",
     rf"image too large \({BOMB_SIDE}x{BOMB_SIDE} > 50000000 pixels\)"),
    ("bomb.webp", "WebP whose header claims 16383x16383", "skipped", r"image too large \(16383x16383 > 50000000"),
]


def _image_runner(fname: str) -> Callable[[Path], Outcome]:
    def run(work: Path) -> Outcome:
        src = work / f"in-{Path(fname).stem}"
        src.mkdir(parents=True, exist_ok=True)
        (src / fname).write_bytes(image_corpus_cached()[fname])
        return import_outcome(work, f"ws-{Path(fname).stem}", [src / fname])
    return run


_CORPUS_CACHE: dict[str, bytes] = {}


def image_corpus_cached() -> dict[str, bytes]:
    if not _CORPUS_CACHE:
        _CORPUS_CACHE.update(image_corpus())
    return _CORPUS_CACHE


for _f, _what, _expect, _msg in _IMAGE_CASES:
    scenario(f"image:{_f}", _what, _expect, _msg)(_image_runner(_f))


BOMB_PROBE = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from training.imageio import ImageReadError, read_rgb
from training.store import Workspace
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = {}
t = time.perf_counter()
with Workspace.open(sys.argv[2], create=True) as ws:
    for p in sys.argv[3:]:
        try:
            read_rgb(p)
            out[p] = "decoded"
        except ImageReadError as e:
            out[p] = e.reason
        out[p + " import"] = ws.import_pair(p)[1]
out["seconds"] = time.perf_counter() - t
out["rss_before_mb"] = rss0 / 1024
out["rss_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


@scenario("bomb:memory", "the four bombs above, read and imported in a fresh process", "refused",
          r"refused all 4 before decoding; peak memory \d+ MB")
def _bomb_memory(work: Path) -> Outcome:
    src = work / "bombs"
    src.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in ("bomb.png", "bomb.tif", "bomb.jpg", "bomb.webp"):
        (src / name).write_bytes(image_corpus_cached()[name])
        paths.append(str(src / name))
    p = subprocess.run([sys.executable, "-c", BOMB_PROBE, str(ROOT), str(work / "ws-bombs"), *paths],
                       capture_output=True, text=True, timeout=120)
    res = json.loads(p.stdout.strip().splitlines()[-1])
    refused = [q for q in paths if "too large" in str(res[q]) and "too large" in str(res[q + " import"])]
    peak = res["rss_peak_mb"]
    # ~900 MB would be the decoded 1-bit bombs alone; anything near the idle process size means no decode
    ok = len(refused) == 4 and peak - res["rss_before_mb"] < 100
    msg = (f"refused all {len(refused)} before decoding; peak memory {peak:.0f} MB "
           f"(process at start {res['rss_before_mb']:.0f} MB), {res['seconds'] * 1000:.0f} ms"
           if ok else f"NOT all refused cheaply: {res}")
    return Outcome("read_rgb + Workspace.import_pair (subprocess)", "refused" if ok else "error", msg, None, True,
                   "Traceback" in p.stderr, raw=res)


# ======================================================================== folder / name scenarios
def _corpus(work: Path) -> dict[str, Path]:
    d = work / "corpus"
    return write_corpus(d, images=False)


@scenario("pair:sizes", "WLI 320x240 + NBI 200x150 (different sizes, warped)", "imported",
          r"imported case 'sizes' 320x240 RGB, NBI 200x150 registered \((good|low)\)")
def _pair_sizes(work: Path) -> Outcome:
    return import_outcome(work, "ws-sizes", [_corpus(work)["sizes"]])


@scenario("name:non_utf8", "file name with non-UTF-8 bytes (b'caf\\xe9-\\xff_wli.png')", "imported",
          r"imported case 'caf_-_wli' 56x40 RGB")
def _name_non_utf8(work: Path) -> Outcome:
    c = _corpus(work)
    o = import_outcome(work, "ws-nonutf8", [c["non_utf8"]])
    from training.store import Workspace

    with Workspace.open(work / "ws-nonutf8") as ws:
        o.notes = "source path recorded as " + repr(Path(ws.cases()[0].source_wli).name)
    return o


@scenario("name:long", "255-byte file name (123 x 'é' + 'x_wli.png')", "imported",
          r"imported case 'x_wli' 56x40 RGB")
def _name_long(work: Path) -> Outcome:
    path = _corpus(work)["long_name"]
    o = import_outcome(work, "ws-longname", [path])
    o.notes = f"name is {len(os.fsencode(path.name))} bytes"
    return o


@scenario("csv:dotdot", "CSV rows with ../ paths, an absolute path outside, /etc/passwd as NBI", "imported",
          r"imported case 'ok' 56x40 RGB; pairs.csv:3: wli_path '../outside.png' escapes the CSV's folder; "
          r"pairs.csv:4: wli_path .* escapes the CSV's folder; pairs.csv:5: nbi_path '../../../../etc/passwd' "
          r"escapes the CSV's folder; pairs.csv:6: label_path '../outside.png' escapes the CSV's folder")
def _csv_dotdot(work: Path) -> Outcome:
    return import_outcome(work, "ws-csv", [_corpus(work)["csv"]])


@scenario("fs:symlink_loop", "folder with a symlink loop (a -> b -> a) and a folder link to itself", "imported",
          r"imported case 'real' 56x40 RGB; loop_a.png: WLI: unreadable \(Too many levels of symbolic links\); "
          r"loop_b.png: WLI: unreadable \(Too many levels of symbolic links\)")
def _symlink_loop(work: Path) -> Outcome:
    return import_outcome(work, "ws-loops", [_corpus(work)["loops"]])


@scenario("fs:special", "a named pipe, a link to /dev/zero and a folder, all named like images", "skipped",
          r"fifo_wli.png: WLI: not a regular file \(pipe, device or socket\); "
          r"zero_wli.png: WLI: not a regular file \(pipe, device or socket\)")
def _special(work: Path) -> Outcome:
    return import_outcome(work, "ws-special", [_corpus(work)["special"]])


@scenario("cli:missing_source", "a source path that does not exist", "error",
          r"error: source not found: .*nowhere")
def _missing(work: Path) -> Outcome:
    return import_outcome(work, "ws-missing", [work / "nowhere"])


# ======================================================================== workspace scenarios
@contextlib.contextmanager
def disk_full(*modules: object) -> Iterator[list[str]]:
    """Make ``open()`` for writing inside ``modules`` write half its bytes, then fail with ENOSPC.

    That is what a full disk does to the store's atomic writer (temp file, write, fsync,
    rename): the temp file gets a partial write and write(2) returns ENOSPC.
    """
    import builtins

    hits: list[str] = []
    real_open = builtins.open

    class FullFile:
        def __init__(self, fh: io.BufferedWriter, name: str) -> None:
            self._fh, self._name = fh, name

        def write(self, data: bytes) -> int:
            self._fh.write(bytes(data)[: len(data) // 2])
            self._fh.flush()
            hits.append(self._name)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self._name)

        def __getattr__(self, name: str) -> object:
            return getattr(self._fh, name)

        def __enter__(self) -> FullFile:
            return self

        def __exit__(self, *exc: object) -> None:
            self._fh.close()

    def fake_open(file, mode="r", *args, **kwargs):  # noqa: ANN001, ANN202
        fh = real_open(file, mode, *args, **kwargs)
        return FullFile(fh, os.fspath(file)) if any(c in mode for c in "wxa") else fh

    for m in modules:
        m.open = fake_open  # type: ignore[attr-defined]
    try:
        yield hits
    finally:
        for m in modules:
            with contextlib.suppress(AttributeError):
                del m.open  # type: ignore[attr-defined]


@scenario("disk_full:revision", "disk full (ENOSPC) while a revision is saved", "error",
          r"cannot write revision .*masks/saved/3\.png: No space left on device")
def _enospc_revision(work: Path) -> Outcome:
    from model import atomic
    from training.store import Workspace, WorkspaceError

    s = fresh_workspace(work, "ws-enospc-rev")
    with Workspace.open(s.ws) as ws:
        mask = np.ones((60, 80), bool)
        with disk_full(atomic) as hits:
            try:
                ws.add_revision("saved", mask, source="human", author="dr.x")
                msg, res = "saved despite a full disk?", "saved"
            except WorkspaceError as exc:
                msg, res = str(exc), "error"
        rows = len(ws.history("saved"))
    ok = rows == 2 and bool(hits)
    return Outcome("Workspace.add_revision", res, _norm(msg, s.ws), None,
                   still_intact(s) and no_temp_files(s.ws) and ok, notes="no row added, temp file removed")


@scenario("disk_full:import", "disk full (ENOSPC) while importing", "error",
          r"error: cannot write to workspace <dir>: No space left on device")
def _enospc_import(work: Path) -> Outcome:
    from model import atomic

    src = work / "in-enospc"
    src.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(src / "new_wli.png"), textured(40, 56, 11)[:, :, ::-1])
    o = import_outcome(work, "ws-enospc-import", [src], during=lambda: disk_full(atomic))
    from training.store import Workspace

    with Workspace.open(work / "ws-enospc-import") as ws:
        leftovers = [p.name for p in (ws.root / "images").iterdir() if p.name != "saved"]
        o.intact = o.intact and ws.case_count() == 1 and not leftovers
    o.notes = "no half case, no files left in images/"
    return o


@scenario("disk_full:database", "database full (SQLITE_FULL) while a revision is committed", "error",
          r"database or disk is full")
def _sqlite_full(work: Path) -> Outcome:
    from training.store import Workspace, WorkspaceError

    s = fresh_workspace(work, "ws-dbfull")
    with Workspace.open(s.ws) as ws:
        n = ws._db.execute("PRAGMA page_count").fetchone()[0]
        ws._db.execute(f"PRAGMA max_page_count = {n}")
        try:
            ws.add_revision("saved", np.ones((60, 80), bool), source="human", author="dr.x", note="x" * 20000)
            msg, res = "committed despite a full database?", "saved"
        except WorkspaceError as exc:
            msg, res = str(exc), "error"
    aside = sorted(p.name for p in (s.ws / "masks" / "saved").iterdir())
    return Outcome("Workspace.add_revision", res, _norm(msg, s.ws), None, still_intact(s) and no_temp_files(s.ws),
                   notes=_norm(f"the written mask is kept aside, never deleted: {aside}"))


def _corrupt(kind: str, db: Path) -> None:
    data = bytearray(db.read_bytes())
    if kind == "random":
        db.write_bytes(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes())
    elif kind == "truncated":
        db.write_bytes(bytes(data[: len(data) // 2]))
    elif kind == "header":
        data[:16] = b"SQLite format 2\x00"
        db.write_bytes(bytes(data))


def _corrupt_workspace(work: Path, name: str, kind: str) -> Sentinel:
    from training.store import Workspace

    s = fresh_workspace(work, name)
    with Workspace.open(s.ws) as ws:  # a bigger database, so truncation cuts tables
        for i in range(30):
            ws.log_event("filler", "saved", {"i": i, "pad": "x" * 400})
    _corrupt(kind, s.ws / "workspace.sqlite")
    s.db_bytes = (s.ws / "workspace.sqlite").read_bytes()
    return s


for _kind, _what, _msg in (("random", "workspace.sqlite overwritten with random bytes", "file is not a database"),
                           ("truncated", "workspace.sqlite truncated to half", "database disk image is malformed"),
                           ("header", "workspace.sqlite with a damaged header", "file is not a database")):
    def _mk(kind: str = _kind) -> Callable[[Path], Outcome]:
        def run(work: Path) -> Outcome:
            s = _corrupt_workspace(work, f"ws-corrupt-{kind}", kind)
            src = work / "in-corrupt"
            src.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(src / "new_wli.png"), textured(40, 56, 12)[:, :, ::-1])
            code, out, err = run_cli(["import", str(src), "--workspace", str(s.ws), "--quiet"])
            code2, _o2, err2 = run_cli(["export", "--workspace", str(s.ws), "--format", "folder",
                                        "--out", str(work / f"out-{kind}"), "--quiet"])
            lines = err.strip().splitlines()
            ok = len(lines) == 1 and code2 != 0 and len(err2.strip().splitlines()) == 1
            return Outcome("python -m training import / export", "error", _norm(lines[-1] if lines else out, s.ws),
                           code, files_unchanged(s) and ok, "Traceback" in err + err2,
                           notes=f"export exits {code2} with the same line; the file is left as it was")
        return run
    scenario(f"db:{_kind}", _what, "error", rf"error: <dir>/workspace.sqlite is corrupt or not an ADF Viewer "
             rf"database \({_msg}\)")(_mk())


@scenario("db:random_process", "corrupt workspace.sqlite, CLI run as a real process", "error",
          r"^error: <dir>/workspace.sqlite is corrupt or not an ADF Viewer database \(file is not a database\)$")
def _corrupt_process(work: Path) -> Outcome:
    s = _corrupt_workspace(work, "ws-corrupt-proc", "random")
    code, out, err = run_cli_process(["import", str(_template(work) / "src"), "--workspace", str(s.ws), "--quiet"])
    return Outcome("python -m training import (process)", "error", _norm(err, s.ws), code,
                   files_unchanged(s) and len(err.strip().splitlines()) == 1, "Traceback" in out + err,
                   notes="stderr is exactly one line")


@scenario("db:garbage_wal", "random bytes in workspace.sqlite-wal (a crash's leftover)", "imported",
          r"imported case 'new' 56x40 RGB")
def _garbage_wal(work: Path) -> Outcome:
    s = fresh_workspace(work, "ws-wal")
    (s.ws / "workspace.sqlite-wal").write_bytes(np.random.default_rng(1).integers(0, 256, 20000, np.uint8).tobytes())
    src = work / "in-wal"
    src.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(src / "new_wli.png"), textured(40, 56, 13)[:, :, ::-1])
    code, out, err = run_cli(["import", str(src), "--workspace", str(s.ws), "--quiet"])
    summary = json.loads(out.strip().splitlines()[-1])
    msg = f"imported case {summary and 'new'!r} 56x40 RGB" if summary["imported"] == 1 else out
    return Outcome("python -m training import", "imported", msg, code, still_intact(s), "Traceback" in err,
                   notes="SQLite ignores WAL frames whose checksums do not match")


def _immutable(paths: list[Path], on: bool) -> bool:
    """chattr +i / -i (stops even root from writing); False where the filesystem or container refuses."""
    if not shutil.which("chattr"):
        return False
    r = subprocess.run(["chattr", "-R", "+i" if on else "-i", *map(str, paths)], capture_output=True)
    return r.returncode == 0


@scenario("readonly:workspace", "read-only workspace (folder and files immutable)", "error",
          r"error: workspace <dir> is read-only")
def _readonly(work: Path) -> Outcome:
    """Tests run as root, which ignores permission bits: use the immutable attribute where the
    filesystem allows it (a real read-only workspace), else make the store's os.access say so."""
    from unittest import mock

    s = fresh_workspace(work, "ws-readonly")
    src = work / "in-ro"
    src.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(src / "new_wli.png"), textured(40, 56, 14)[:, :, ::-1])
    real = _immutable([s.ws], True)
    try:
        if real:
            method = "chattr +i on the workspace (root cannot write either)"
            code, out, err = run_cli(["import", str(src), "--workspace", str(s.ws), "--quiet"])
        else:
            method = "os.access(workspace, W_OK) made False (chattr unavailable here)"
            with mock.patch("training.store.workspace.os.access", return_value=False):
                code, out, err = run_cli(["import", str(src), "--workspace", str(s.ws), "--quiet"])
        from training.store import Workspace, WorkspaceError

        with Workspace.open(s.ws) as ws:  # opens read-only by itself
            ro = ws.readonly
            try:
                ws.add_revision("saved", np.ones((60, 80), bool), source="human", author="dr.x")
                api = "add_revision succeeded?"
            except WorkspaceError as exc:
                api = str(exc)
    finally:
        if real:
            _immutable([s.ws], False)
    lines = err.strip().splitlines()
    return Outcome("python -m training import; Workspace.add_revision", "error", _norm(lines[-1] if lines else out, s.ws),
                   code, still_intact(s) and ro and "read-only" in api, "Traceback" in err,
                   notes=f"{method}; opens read-only (readonly={ro}); add_revision: {_norm(api, s.ws)}")


# ======================================================================== model scenarios
def tiny_model(dest: Path, model_id: str = "tiny-test") -> Path:
    """A random-init ADF net small enough to build in ~0.1 s, saved the real way (safetensors + card)."""
    import dataclasses

    import torch

    from model.adf import ADFNet
    from model.card import save_model
    from model.config import get_preset

    torch.manual_seed(0)
    cfg = dataclasses.replace(get_preset("tiny"), embed_dims=(8, 16, 24, 32), num_heads=(1, 2, 3, 4),
                              disent_dim=16, decoder_dim=8, input_size=64)
    return save_model(ADFNet(cfg), cfg, dest / model_id, {"id": model_id, "training_data": "none (random init)"})


def _rewrite_sha(card: Path) -> None:
    import hashlib

    c = json.loads(card.read_text())
    c["sha256"] = hashlib.sha256((card.parent / c["weights"]).read_bytes()).hexdigest()
    card.write_text(json.dumps(c))


def break_model(card: Path, kind: str, marker: Path) -> None:
    """Damage a saved model in place: "pickle" payload, "shapes" wrong, "sha" on the card wrong."""
    import pickle

    weights = card.with_suffix(".safetensors")
    if kind == "pickle":
        class Evil:
            def __reduce__(self):  # noqa: ANN204 - runs on unpickling: must never happen
                return (Path.write_text, (marker, "unpickled!"))

        weights.write_bytes(pickle.dumps({"state_dict": Evil()}))
        _rewrite_sha(card)  # even with a matching hash it must not be unpickled
    elif kind == "shapes":
        from safetensors.torch import load_file, save_file

        state = load_file(str(weights))
        state["dec_pred.weight"] = state["dec_pred.weight"].new_zeros((2, *state["dec_pred.weight"].shape[1:]))
        save_file(state, str(weights))
        _rewrite_sha(card)
    elif kind == "sha":
        c = json.loads(card.read_text())
        c["sha256"] = "0" * 64
        card.write_text(json.dumps(c))


_MODEL_CASES = [
    ("pickle", "weights file holding a pickle payload (card hash rewritten to match)",
     r"not a valid safetensors file"),
    ("shapes", "weights with a wrong tensor shape", r"tensor dec_pred\.weight has shape \[2, 8, 1, 1\], config needs "
     r"\[1, 8, 1, 1\]"),
    ("sha", "model card with a wrong sha256", r"sha256 mismatch: file has (<sha256>|[0-9a-f]{12})\.\.\., card says "
     r"000000000000\.\.\. \(corrupt or replaced\)"),
]


def _model_runner(kind: str) -> Callable[[Path], Outcome]:
    def run(work: Path) -> Outcome:
        from model.card import ModelFileError
        from model.predictor import Predictor

        d = work / f"model-{kind}"
        d.mkdir(parents=True, exist_ok=True)
        card = tiny_model(d)
        marker = d / "PWNED"
        break_model(card, kind, marker)
        try:
            Predictor.load(card, device="cpu")
            api = "loaded?"
        except ModelFileError as exc:
            api = str(exc)
        csv = d / "eval.csv"
        cv2.imwrite(str(d / "e_wli.png"), textured(40, 56, 15)[:, :, ::-1])
        cv2.imwrite(str(d / "e_mask.png"), np.full((40, 56), 255, np.uint8))
        csv.write_text("wli_path,nbi_path,label_path\ne_wli.png,,e_mask.png\n")
        code, out, err = run_cli(["evaluate", "--model", str(card), "--csv", str(csv), "--device", "cpu",
                                  "--no-progress"])
        lines = err.strip().splitlines()
        return Outcome("Predictor.load; python -m training evaluate", "refused" if api != "loaded?" else "loaded",
                       _norm(lines[-1] if lines else out, d), code,
                       not marker.exists() and len(lines) == 1 and api.endswith(lines[-1].split(": ", 2)[-1]),
                       "Traceback" in err, notes=f"Predictor.load raises ModelFileError: {_norm(api, d)}")
    return run


for _kind, _what, _msg in _MODEL_CASES:
    scenario(f"model:{_kind}", _what, "refused", _msg)(_model_runner(_kind))


# ======================================================================== window scenarios
def _process_until(cond: Callable[[], bool], timeout: float = 20.0) -> bool:
    from PySide6.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        QApplication.processEvents()
        if cond():
            return True
        time.sleep(0.01)
    return cond()


@contextlib.contextmanager
def window(work: Path, predictor: object | None = "fake") -> Iterator[object]:
    """A real MainWindow offscreen (settings in a temp INI); ``predictor=None`` loads the workspace's model."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from tests.viewer_fixtures import FakePredictor
    from viewer.app import make_app, settings_at
    from viewer.main_window import MainWindow

    make_app()
    settings = settings_at(work / f"settings-{time.monotonic_ns()}.ini")
    settings.setValue("recovery/auto", "restore")
    pred = FakePredictor() if predictor == "fake" else predictor
    factory = None if pred is None else (lambda _p, _d: pred)
    win = MainWindow(settings, device="cpu", predictor_factory=factory, author="dr.test", autosave_ms=600000)
    win.resize(1000, 700)
    win.show()
    try:
        yield win
    finally:
        from PySide6.QtCore import QCoreApplication, QEvent

        win.close()
        win.deleteLater()
        # destroy it now, inside the scenario (processEvents alone leaves deferred deletes pending,
        # and whatever the destruction raises would surface in some later test)
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
        _process_until(lambda: True, 0.05)


def _banner(win: object) -> str:
    b = win.pair.banner  # type: ignore[attr-defined]
    return b.text() if b.isVisible() else ""


@scenario("gui:disk_full_save", "disk full (ENOSPC) when the window saves an edit", "error",
          r"Could not save saved: cannot write revision .*: No space left on device\. Your edits are kept in the "
          r"recovery journal and offered again at the next start\.", gui=True)
def _gui_enospc(work: Path) -> Outcome:
    from model import atomic
    from training import recovery

    s = fresh_workspace(work, "ws-gui-enospc")
    with window(work) as win:
        assert win.open_workspace(s.ws)
        win.open_case("saved")
        mask = win.current_session().mask.astype(bool)
        mask[0:10, 0:10] = True
        win.editor.replace_mask(mask, "test edit")
        journal = [e.case_id for e in recovery.pending_entries(s.ws)]
        with disk_full(atomic):
            rev = win.save_current("manual")
        banner = _banner(win)
        kept = [e.case_id for e in recovery.pending_entries(s.ws)]
        still_dirty = win.current_session().dirty
        rev2 = win.save_current("manual")  # space is back: the same edit saves
        after = [e.case_id for e in recovery.pending_entries(s.ws)]
    ok = (journal == ["saved"] and rev is None and kept == ["saved"] and still_dirty and rev2 is not None
          and rev2.rev == 3 and not after)
    return Outcome("window: save (Ctrl+S / autosave)", "error" if rev is None else "saved", _norm(banner, s.ws), None,
                   still_intact(s) and no_temp_files(s.ws) and ok, "Traceback" in banner,
                   notes="journal entry kept, edit stays unsaved; once space is back the same edit saves as rev 3")


@scenario("gui:corrupt_workspace", "opening a workspace whose database is corrupt", "error",
          r"Cannot open workspace: <dir>/workspace.sqlite is corrupt or not an ADF Viewer database "
          r"\(file is not a database\)", gui=True)
def _gui_corrupt(work: Path) -> Outcome:
    good = fresh_workspace(work, "ws-gui-good")
    bad = _corrupt_workspace(work, "ws-gui-corrupt", "random")
    with window(work) as win:
        assert win.open_workspace(good.ws)
        opened = win.open_workspace(bad.ws)
        banner = _banner(win)
        still = win.ws is not None and win.ws.root == good.ws.resolve()
    return Outcome("window: File > Open workspace", "error" if not opened else "opened",
                   _norm(banner, bad.ws), None, files_unchanged(bad) and still_intact(good) and still,
                   "Traceback" in banner, notes="the workspace already open stays open")


@scenario("gui:import_dialog", "the whole image corpus (+ a non-UTF-8 name) imported through File > Import",
          "imported",
          r"Imported 5 case\(s\); the workspace now holds 6\..*Skipped 10 file\(s\)", gui=True)
def _gui_import(work: Path) -> Outcome:
    from viewer.dialogs import ImportDialog

    s = fresh_workspace(work, "ws-gui-import")
    src = work / "in-gui-import"
    src.mkdir(parents=True, exist_ok=True)
    for name, data in image_corpus_cached().items():
        (src / name).write_bytes(data)
    odd = os.fsdecode(os.fsencode(src) + b"/caf\xe9-truncated.png")  # a non-UTF-8 name in the report
    Path(odd).write_bytes(image_corpus_cached()["truncated.png"])
    with window(work) as win:
        assert win.open_workspace(s.ws)
        dlg = ImportDialog(s.ws, win)
        dlg.start([src])
        _process_until(lambda: dlg.summary is not None or dlg.report.toPlainText().startswith("Import failed"), 60)
        text = dlg.report.toPlainText()
        dlg.deleteLater()
    shown = re.search(r"<dir>/(caf\S*truncated\.png)", _norm(text, src))
    return Outcome("window: File > Import pairs", "imported" if dlg.summary else "error",
                   _norm(text.replace("\n", " "), src, s.ws), None, still_intact(s), "Traceback" in text,
                   notes="the non-UTF-8 name b'caf\\xe9-truncated.png' is listed as "
                         f"{shown.group(1) if shown else None!r} (Qt drops undecodable bytes)")


def _gui_model_runner(kind: str) -> Callable[[Path], Outcome]:
    def run(work: Path) -> Outcome:
        from training.store import Workspace

        s = fresh_workspace(work, f"ws-gui-model-{kind}")
        d = work / f"gui-model-{kind}"
        d.mkdir(parents=True, exist_ok=True)
        card = tiny_model(d, f"broken-{kind}")
        with Workspace.open(s.ws) as ws:
            mid = ws.register_model(card, activate=True)
            installed = ws.active_model_path()
        marker = d / "PWNED"
        break_model(installed, kind, marker)
        failed: list[str] = []
        with window(work, predictor=None) as win:
            win.predictionFailed.connect(lambda _c, m: failed.append(m))
            assert win.open_workspace(s.ws)
            _process_until(lambda: bool(failed), 60)
            banner = _banner(win)
            # the window stays usable: edit and save without a model
            mask = win.current_session().mask.astype(bool)
            mask[5:15, 5:15] = True
            win.editor.replace_mask(mask, "edit without a model")
            rev = win.save_current("manual")
        ok = rev is not None and rev.rev == 3 and not marker.exists()
        return Outcome("window: prediction with the active model", "refused" if failed else "loaded?",
                       _norm(banner, s.ws), None, still_intact(s) and ok, "Traceback" in banner,
                       notes=f"model {mid}: the banner shows, editing and saving go on (saved rev {rev and rev.rev})")
    return run


for _kind, _what, _msg in _MODEL_CASES:
    scenario(f"gui:model_{_kind}", f"{_what}, active in the workspace", "refused",
             rf"Prediction failed: <dir>/models/broken-{_kind}\.(safetensors|json): .*" + _msg.split(":")[0],
             gui=True)(_gui_model_runner(_kind))


@scenario("gui:odd_images", "16-bit, grey, RGBA, CMYK and 1x1 images opened in the window with a real model",
          "imported", r"5 cases shown with a prediction, no banner", gui=True)
def _gui_odd(work: Path) -> Outcome:
    from training.store import Workspace

    s = fresh_workspace(work, "ws-gui-odd")
    src = work / "in-gui-odd"
    src.mkdir(parents=True, exist_ok=True)
    for name in ("deep16.png", "grey.png", "rgba.png", "cmyk.jpg", "one_pixel.png"):
        (src / name).write_bytes(image_corpus_cached()[name])
    d = work / "gui-odd-model"
    d.mkdir(parents=True, exist_ok=True)
    with Workspace.open(s.ws) as ws:
        from training.importer import import_sources

        ids = import_sources(ws, [src])["case_ids"]
        ws.register_model(tiny_model(d, "tiny-odd"), activate=True)
    shown, problems = [], []
    with window(work, predictor=None) as win:
        win.predictionShown.connect(shown.append)
        win.predictionFailed.connect(lambda c, m: problems.append(f"{c}: {m}"))
        assert win.open_workspace(s.ws)
        for cid in ids:
            win.open_case(cid)
            if not _process_until(lambda c=cid: c in shown or bool(problems), 60):
                problems.append(f"{cid}: no prediction")
            if _banner(win):
                problems.append(f"{cid}: banner {_banner(win)!r}")
    ok = len(ids) == 5 and not problems
    msg = f"{len(set(shown) & set(ids))} cases shown with a prediction, no banner" if ok else "; ".join(problems)
    return Outcome("window: open case + real predictor", "imported" if ok else "error", _norm(msg, s.ws), None,
                   still_intact(s), "Traceback" in msg)


@contextlib.contextmanager
def read_only(ws: Path) -> Iterator[str]:
    """Make a workspace read-only for real where possible (chattr +i stops root too), else make
    the store's ``os.access`` check say so; yields which method was used."""
    from unittest import mock

    if _immutable([ws], True):
        try:
            yield "chattr +i on the workspace (even root cannot write)"
        finally:
            _immutable([ws], False)
    else:
        with mock.patch("training.store.workspace.os.access", return_value=False):
            yield "os.access(workspace, W_OK) made False (chattr unavailable here)"


@scenario("gui:readonly", "read-only workspace opened in the window: predict, edit, save", "error",
          r"Could not save saved: workspace <dir> is read-only", gui=True)
def _gui_readonly(work: Path) -> Outcome:
    s = fresh_workspace(work, "ws-gui-ro")
    uncaught: list[str] = []
    old_hook = sys.excepthook
    sys.excepthook = lambda t, v, tb: uncaught.append(f"{t.__name__}: {v}")
    failed: list[str] = []
    try:
        with read_only(s.ws) as method, window(work) as win:
            win.predictionFailed.connect(lambda _c, m: failed.append(m))
            assert win.open_workspace(s.ws)
            predicted = _process_until(lambda: win.current_session().prob is not None or bool(failed), 20)
            predicted = predicted and not failed
            mask = win.current_session().mask.astype(bool)
            mask[0:6, 0:6] = True
            win.editor.replace_mask(mask, "edit in a read-only workspace")
            rev = win.save_current("manual")
            banner = _banner(win)
            from training import recovery

            journal = bool(recovery.pending_entries(s.ws))
    finally:
        sys.excepthook = old_hook
    honest = journal or "recovery journal" not in banner
    problems = ([] if predicted else [f"no prediction shown ({'; '.join(failed)})"]) + uncaught + \
        ([] if honest else ["the banner claims a recovery journal that could not be written"])
    return Outcome("window: open, predict, edit, save", "error" if rev is None else "saved", _norm(banner, s.ws), None,
                   still_intact(s), "Traceback" in banner, notes=method,
                   issues=[_norm(p, s.ws) for p in problems])


# ======================================================================== runner, table
def run_scenario(sc: Scenario, work: Path) -> Outcome:
    work.mkdir(parents=True, exist_ok=True)
    return sc.run(work)


def check(sc: Scenario, o: Outcome) -> list[str]:
    """Why an outcome is not what the scenario expects (empty list: as expected)."""
    bad = []
    if o.result != sc.expect:
        bad.append(f"result {o.result!r} != expected {sc.expect!r}")
    if not re.search(sc.message, o.message, re.S):
        bad.append(f"message {o.message!r} does not match {sc.message!r}")
    if not o.intact:
        bad.append("saved work or workspace state not intact")
    if o.traceback:
        bad.append("a traceback reached the user")
    return bad + o.issues


def markdown(rows: list[tuple[Scenario, Outcome]]) -> str:
    def cell(t: str) -> str:
        return t.replace("|", "\\|").replace("\n", " ")

    out = ["| # | bad input | where | outcome | exit | what the user sees | saved work intact | notes |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for i, (sc, o) in enumerate(rows, 1):
        out.append(f"| {i} | {cell(sc.what)} | {cell(o.where)} | {o.result} | "
                   f"{'' if o.exit_code is None else o.exit_code} | `{cell(o.message)}` | "
                   f"{'yes' if o.intact else '**NO**'} | {cell(o.notes)}"
                   f"{'. **Wrong:** ' + cell('; '.join(o.issues)) if o.issues else ''}"
                   f"{' **Known bug:** ' + cell(sc.known_bug) if sc.known_bug else ''} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Write the bad-input corpus, or run it and print the outcome table.")
    ap.add_argument("--write", metavar="DIR", help="only write the corpus files into DIR")
    ap.add_argument("--table", action="store_true", help="run every scenario and print a markdown table")
    ap.add_argument("--json", action="store_true", help="run every scenario and print JSON lines")
    ap.add_argument("-k", default="", help="only scenarios whose key contains this")
    args = ap.parse_args(argv)
    if args.write:
        for name, p in write_corpus(Path(args.write)).items():
            print(f"{name}\t{p}")
        return 0
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    rows, failures = [], 0
    with tempfile.TemporaryDirectory(prefix="bad-inputs-") as tmp:
        for sc in SCENARIOS:
            if args.k not in sc.key:
                continue
            o = run_scenario(sc, Path(tmp) / re.sub(r"\W", "_", sc.key))
            problems = check(sc, o)
            failures += bool(problems) != bool(sc.known_bug)  # a known bug must still fail; others must pass
            rows.append((sc, o))
            if args.json:
                print(json.dumps({"key": sc.key, "what": sc.what, **{k: v for k, v in o.__dict__.items() if k != "raw"},
                                  "problems": problems}))
            elif problems:
                print(f"<!-- {sc.key}: {'; '.join(problems)} -->", file=sys.stderr)
    if args.table:
        print(markdown(rows))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
