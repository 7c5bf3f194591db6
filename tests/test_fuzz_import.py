"""Fuzzing image decoding and import (hypothesis): random bytes and mutated valid PNG/JPEG/BMP/TIFF/WebP
files either decode to a well-formed array or raise ImageReadError; ``Workspace.import_pair``
either imports or skips with a reason, never raises anything else, and leaves nothing behind.

Reproducible on CI: ``derandomize=True`` (examples derive from the test, not from a clock), no
deadline (2 loaded cores), modest example counts (each test ~ a few seconds).
"""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from training import imageio
from training.imageio import ImageReadError, decode_mask, decode_rgb

FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _seeds() -> dict[str, bytes]:
    """Small valid files of every format and flavour the decoder meets."""
    rng = np.random.default_rng(7)
    bgr = cv2.GaussianBlur(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), (0, 0), 1.5)
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)

    def enc(ext: str, img: np.ndarray, params: list[int] | None = None) -> bytes:
        ok, buf = cv2.imencode(ext, img, params or [])
        assert ok
        return buf.tobytes()

    return {
        "png_rgb": enc(".png", bgr),
        "png_grey": enc(".png", grey),
        "png_rgba": enc(".png", cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)),
        "png_16": enc(".png", bgr.astype(np.uint16) * 257),
        "png_mask": enc(".png", (grey > 128).astype(np.uint8) * 255),
        "jpeg": enc(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 80]),
        "jpeg_progressive": enc(".jpg", bgr, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        "jpeg_grey": enc(".jpg", grey),
        "bmp": enc(".bmp", bgr),
        "tiff": enc(".tif", bgr),
        "tiff_16": enc(".tif", grey.astype(np.uint16) * 257),
        "webp": enc(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, 70]),
        "webp_lossless": enc(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, 101]),
    }


SEEDS = _seeds()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid seed file with a few byte-level mutations (flip, overwrite, insert, delete, truncate,
    and overwrites aimed at bytes 4-63, where the size fields live)."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "set", "header", "insert", "delete", "truncate"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[i] = draw(st.integers(0, 255))
        elif op == "header":
            j = draw(st.integers(min(4, len(data) - 1), min(63, len(data) - 1)))  # mostly past the magic
            chunk = draw(st.binary(min_size=1, max_size=4))
            data[j : j + len(chunk)] = chunk
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 32))]
        else:
            del data[i:]
    return bytes(data)


def _check_rgb(data: bytes) -> None:
    try:
        img = decode_rgb(data, "fuzz")
    except ImageReadError as exc:
        assert exc.reason and str(exc).startswith("fuzz: ")
        event(f"refused: {exc.reason.split(' (')[0]}")
        return
    event("decoded")
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert 0 < img.shape[0] * img.shape[1] <= imageio.MAX_PIXELS


def _check_mask(data: bytes, label_value: int | None) -> None:
    try:
        m = decode_mask(data, "fuzz", label_value)
    except ImageReadError as exc:
        assert exc.reason
        return
    assert m.dtype == np.bool_ and m.ndim == 2


@settings(FUZZ, max_examples=300)
@given(st.binary(max_size=2048))
def test_random_bytes_decode_or_raise_image_read_error(data: bytes) -> None:
    _check_rgb(data)
    _check_mask(data, None)


@settings(FUZZ, max_examples=400)
@given(mutated(), st.one_of(st.none(), st.integers(0, 255)))
def test_mutated_images_decode_or_raise_image_read_error(data: bytes, label_value: int | None) -> None:
    _check_rgb(data)
    _check_mask(data, label_value)


@settings(FUZZ, max_examples=150)
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_magic_plus_random_bytes(seed: str, data: st.DataObject) -> None:
    """A real file's first bytes (magic and part of the header) followed by noise."""
    head = SEEDS[seed][: data.draw(st.integers(2, 40))]
    _check_rgb(head + data.draw(st.binary(max_size=512)))


@pytest.fixture(scope="module")
def fuzz_ws(tmp_path_factory: pytest.TempPathFactory):
    from training.store import Workspace

    root = tmp_path_factory.mktemp("fuzz-import")
    ws = Workspace.open(root / "ws", create=True)
    yield ws, root
    assert ws.integrity_check() == "ok"
    ws.close()


@settings(FUZZ, max_examples=80)
@given(wli=st.one_of(st.sampled_from(sorted(SEEDS.values())), mutated(), st.binary(max_size=256)),
       nbi=st.one_of(st.none(), st.sampled_from(sorted(SEEDS.values())), mutated()),
       label=st.one_of(st.none(), mutated()), register=st.booleans())
def test_import_pair_imports_or_skips_and_leaves_nothing(fuzz_ws, wli: bytes, nbi: bytes | None,
                                                         label: bytes | None, register: bool) -> None:
    from training.imageio import TEMP_PREFIX

    ws, root = fuzz_ws
    src = root / "src"
    src.mkdir(exist_ok=True)
    for p in src.iterdir():
        p.unlink()
    (src / "x_wli.img").write_bytes(wli)
    nbi_p = label_p = None
    if nbi is not None:
        nbi_p = src / "x_nbi.img"
        nbi_p.write_bytes(nbi)
    if label is not None:
        label_p = src / "x_mask.img"
        label_p.write_bytes(label)
    before = ws.case_count()
    images_before = set(os.listdir(ws.root / "images"))
    cid, reason = ws.import_pair(src / "x_wli.img", nbi_p, label_p, register=register)
    assert (cid is None) != (reason is None)
    event("imported" if cid else f"skipped: {reason.split(':')[0]}")
    if cid is None:
        assert isinstance(reason, str) and reason
        assert ws.case_count() == before
        assert set(os.listdir(ws.root / "images")) == images_before  # nothing left behind
    else:
        case = ws.case(cid)
        img = ws.load_wli(cid)
        assert img.shape == (case.height, case.width, 3)
        if label_p is not None:
            assert ws.latest_mask(cid).shape == (case.height, case.width)
    leftovers = [n for _d, ds, fs in os.walk(ws.root) for n in ds + fs if n.startswith(TEMP_PREFIX)]
    assert leftovers == []


@settings(FUZZ, max_examples=40)
@given(st.lists(st.tuples(st.sampled_from(["x_wli", "x_nbi", "x_mask", "y_1", "y_2", "y_1_label", "z", "z.json",
                                           "WLI/a", "NBI/a", "masks/z"]), mutated()), min_size=1, max_size=5))
def test_folder_import_of_mutated_files_never_raises(fuzz_ws, files: list[tuple[str, bytes]]) -> None:
    """The CLI's import_sources over a folder of damaged files: every file imported or skipped."""
    import shutil

    from training.importer import import_sources

    ws, root = fuzz_ws
    src = root / "folder"
    shutil.rmtree(src, ignore_errors=True)
    for name, data in files:
        p = src / (name if name.endswith(".json") else name + ".png")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    summary = import_sources(ws, [src], register=False)
    assert summary["imported"] == len(summary["case_ids"])
    assert all(isinstance(s["reason"], str) and s["reason"] for s in summary["skipped"])
