"""training/imageio.py: safe decoding of awkward files, header size checks, atomic PNG writes."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import TEST_DATA
from training import imageio
from training.imageio import ImageReadError, read_mask, read_rgb, sha256_file, write_png_atomic


def _rgb() -> np.ndarray:
    return read_rgb(TEST_DATA / "vf_0041.png")


def test_png_round_trip_is_rgb_order(tmp_path: Path) -> None:
    img = np.zeros((8, 10, 3), np.uint8)
    img[..., 0] = 200  # red
    p = tmp_path / "red.png"
    cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    out = read_rgb(p)
    assert out.shape == (8, 10, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [200, 0, 0]


def test_grey_rgba_16bit_are_normalised(tmp_path: Path) -> None:
    rgb = _rgb()
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    g = read_rgb(tmp_path / "g.png")
    assert g.shape == rgb.shape and np.array_equal(g[..., 0], grey) and np.array_equal(g[..., 2], grey)

    rgba = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)
    rgba[..., 3] = 17
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    assert np.array_equal(read_rgb(tmp_path / "a.png"), rgb)

    sixteen = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "w.png"), sixteen)
    assert np.array_equal(read_rgb(tmp_path / "w.png"), rgb)


def test_cmyk_jpeg_decodes_to_plausible_rgb() -> None:
    out = read_rgb(TEST_DATA / "cmyk.jpg")
    ref = cv2.resize(_rgb(), (48, 48), interpolation=cv2.INTER_AREA)
    assert out.shape == (48, 48, 3)
    assert np.abs(out.astype(int) - ref).mean() < 12  # colours right, not inverted / swapped


@pytest.mark.parametrize("kind", ["empty", "text", "truncated_png", "truncated_jpeg", "missing", "directory",
                                  "garbage_after_png_magic"])
def test_bad_files_raise_clean_error(tmp_path: Path, kind: str) -> None:
    p = tmp_path / "bad.png"
    good_png = (TEST_DATA / "vf_0041.png").read_bytes()
    good_jpg = (TEST_DATA / "kv_cju0qkwl.jpg").read_bytes()
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "text":
        p.write_text("this is not an image\n")
    elif kind == "truncated_png":
        p.write_bytes(good_png[: len(good_png) // 2])
    elif kind == "truncated_jpeg":
        p = tmp_path / "bad.jpg"
        p.write_bytes(good_jpg[: len(good_jpg) // 2])
    elif kind == "directory":
        p.mkdir()
    elif kind == "garbage_after_png_magic":
        p.write_bytes(good_png[:8] + os.urandom(200))
    with pytest.raises(ImageReadError) as exc:
        read_rgb(p)
    assert str(exc.value).startswith(str(p) + ": ")
    assert exc.value.reason


def _png_header(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def test_decompression_bomb_refused_from_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a PNG header claiming 100000 x 100000 pixels: refused before any decoding
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header(100_000, 100_000) + b"\x00" * 64 + b"IEND\xaeB`\x82")
    called = []
    monkeypatch.setattr(imageio.cv2, "imdecode", lambda *a: called.append(1))
    with pytest.raises(ImageReadError, match="too large"):
        read_rgb(p)
    assert not called


def test_jpeg_size_limit_uses_sof_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = (TEST_DATA / "kv_cju0qkwl.jpg").read_bytes()
    assert imageio.image_size(data) == (96, 96)
    monkeypatch.setattr(imageio, "MAX_PIXELS", 96 * 96 - 1)
    p = tmp_path / "k.jpg"
    p.write_bytes(data)
    with pytest.raises(ImageReadError, match="too large"):
        read_rgb(p)


def test_non_utf8_and_long_names(tmp_path: Path) -> None:
    src = (TEST_DATA / "vf_0041.png").read_bytes()
    name = "ünïcødé-" + "x" * 150 + ".png"
    p = tmp_path / name
    p.write_bytes(src)
    assert read_rgb(p).shape == (128, 128, 3)
    if os.name == "posix" and os.uname().sysname == "Linux":
        raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9.png")  # latin-1 byte, not valid UTF-8
        with open(raw, "wb") as fh:
            fh.write(src)
        assert read_rgb(os.fsdecode(raw)).shape == (128, 128, 3)


def test_read_mask_variants(tmp_path: Path) -> None:
    m = np.zeros((6, 7), np.uint8)
    m[1:3, 2:5] = 255
    cv2.imwrite(str(tmp_path / "m.png"), m)
    assert np.array_equal(read_mask(tmp_path / "m.png"), m > 0)
    # colour mask: any channel > 0
    c = np.zeros((6, 7, 3), np.uint8)
    c[1:3, 2:5, 2] = 128
    cv2.imwrite(str(tmp_path / "c.png"), c)
    assert np.array_equal(read_mask(tmp_path / "c.png"), m > 0)
    # mask carried in alpha only
    a = np.zeros((6, 7, 4), np.uint8)
    a[..., 3] = m
    cv2.imwrite(str(tmp_path / "a.png"), a)
    assert np.array_equal(read_mask(tmp_path / "a.png"), m > 0)
    # class map: label 4 = tumour
    k = np.full((6, 7), 2, np.uint8)
    k[m > 0] = 4
    cv2.imwrite(str(tmp_path / "k.png"), k)
    assert np.array_equal(read_mask(tmp_path / "k.png", label_value=4), m > 0)


def test_write_png_atomic(tmp_path: Path) -> None:
    m = np.zeros((5, 9), bool)
    m[2, 3:7] = True
    p = tmp_path / "sub" / "1.png"
    sha = write_png_atomic(p, m)
    assert sha == sha256_file(p)
    raw = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint8 and set(np.unique(raw)) == {0, 255}
    assert np.array_equal(read_mask(p), m)
    assert [x.name for x in p.parent.iterdir()] == ["1.png"]  # no temp file left
    with pytest.raises(FileExistsError):
        write_png_atomic(p, ~m, exist_ok=False)
    assert np.array_equal(read_mask(p), m)
    assert [x.name for x in p.parent.iterdir()] == ["1.png"]


def test_write_png_atomic_failure_leaves_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "x.png"
    m = np.eye(4, dtype=bool)
    write_png_atomic(p, m)

    def boom(*a, **k):
        raise OSError("disk on fire")

    monkeypatch.setattr(imageio.os, "replace", boom)
    with pytest.raises(OSError):
        write_png_atomic(p, ~m)
    assert np.array_equal(read_mask(p), m)
    assert [x.name for x in tmp_path.iterdir()] == ["x.png"]
