"""Image and mask I/O at the file boundary: RGB in memory, safe decoding, atomic PNG writes.

Why this module exists: every image that enters the app comes from a user's folder and may be
truncated, mislabelled, enormous (decompression bomb), 16-bit, grey, RGBA or CMYK, and may have a
non-UTF-8 or very long name. Everything is read as bytes (``numpy.fromfile``) and decoded with
``cv2.imdecode`` so the path never goes through OpenCV's narrow-char file API, and the pixel count
is checked from the PNG/JPEG/BMP/TIFF/WebP header *before* the pixels are decoded. Only regular
files are read (a named pipe would block forever, a device never ends).

No torch, no Qt here (the viewer and the store use it without them).
"""
from __future__ import annotations

import hashlib
import os
import stat
import struct

import cv2
import numpy as np

from model.atomic import (
    HOST_TAG,
    TEMP_PREFIX,
    fsync_dir,
    fsync_fd,
    makedirs_durable,
    temp_name,
    write_bytes_atomic,
)

# Atomic writes live in model/atomic.py (model/card.py writes through them too, and model/ never
# imports training/); re-exported here, where the store, export and recovery have always found them.
from model.i18n_marks import QT_TRANSLATE_NOOP, Message

__all__ = [
    "MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "read_rgb",
    "read_mask",
    "decode_rgb",
    "decode_mask",
    "image_size",
    "read_file_bytes",
    "MAX_FILE_BYTES",
    "write_png_atomic",
    "encode_png",
    "sha256_file",
    "sha256_bytes",
    "fsync_dir",
    "fsync_fd",
    "makedirs_durable",
    "write_bytes_atomic",
    "TEMP_PREFIX",
    "HOST_TAG",
    "temp_name",
]

MAX_PIXELS: int = 50_000_000
"""Decompression-bomb limit (pixels), checked from the header before decoding."""

MAX_FILE_BYTES: int = 1 << 30
"""Files larger than this are refused before they are read into memory (no endoscopy frame is)."""

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class ImageReadError(ValueError):
    """An image or mask file that cannot be used; ``str()`` is ``"<path>: <reason>"``."""

    def __init__(self, path: os.PathLike | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


# --------------------------------------------------------------------------------------- headers
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", data[16:24])
    return w, h


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width, height from the first SOF marker; None when the header is damaged."""
    found = _jpeg_sof(data)
    return None if found is None else found[1]


def _jpeg_sof(data: bytes) -> tuple[int, tuple[int, int]] | None:
    """(offset of the main image's SOF, (width, height)), walking segments (skips EXIF thumbnails)."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # standalone markers
            i += 2
            continue
        if marker == 0xD9:  # EOI before SOF
            return None
        seglen = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if seglen < 2:
            return None
        if marker in _JPEG_SOF:
            if i + 9 > n:
                return None
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return i, (w, h)
        i += 2 + seglen
    return None


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 26:
        return None
    w, h = struct.unpack("<ii", data[18:26])
    return abs(w), abs(h)


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth / ImageLength of the first IFD (the page OpenCV decodes); None when damaged."""
    if len(data) < 8:
        return None
    end = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(end + "I", data[4:8])
    if ifd + 2 > len(data):
        return None
    (count,) = struct.unpack(end + "H", data[ifd : ifd + 2])
    size: dict[int, int] = {}
    for k in range(count):
        off = ifd + 2 + 12 * k
        if off + 12 > len(data):
            return None
        tag, typ = struct.unpack(end + "HH", data[off : off + 4])
        if tag in (256, 257):
            if typ == 3:  # SHORT
                (size[tag],) = struct.unpack(end + "H", data[off + 8 : off + 10])
            elif typ == 4:  # LONG
                (size[tag],) = struct.unpack(end + "I", data[off + 8 : off + 12])
            else:
                return None
    return (size[256], size[257]) if len(size) == 2 else None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """Canvas size from the VP8X, VP8L or VP8 chunk header; None when damaged."""
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def _format(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpeg"
    if data.startswith(b"BM"):
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG/JPEG/BMP/TIFF/WebP header without decoding; None when unknown or damaged."""
    fmt = _format(data)
    if fmt == "png":
        return _png_size(data)
    if fmt == "jpeg":
        return _jpeg_size(data)
    if fmt == "bmp":
        return _bmp_size(data)
    if fmt == "tiff":
        return _tiff_size(data)
    if fmt == "webp":
        return _webp_size(data)
    return None


# -------------------------------------------------------------------------------------- decoding
def read_file_bytes(path: os.PathLike | str) -> bytes:
    """The bytes of a regular file; ImageReadError for anything else (a FIFO would block forever,
    a device or a huge file would fill memory)."""
    try:
        st = os.stat(os.fspath(path))
        if not stat.S_ISREG(st.st_mode):
            if stat.S_ISDIR(st.st_mode):
                raise ImageReadError(path, Message(QT_TRANSLATE_NOOP("Errors", "is a directory")))
            raise ImageReadError(path, "not a regular file (pipe, device or socket)")
        if st.st_size > MAX_FILE_BYTES:
            raise ImageReadError(path, f"file too large ({st.st_size} bytes > {MAX_FILE_BYTES})")
        # numpy.fromfile uses Python's own open(): non-UTF-8 and long names work everywhere.
        return np.fromfile(os.fspath(path), dtype=np.uint8).tobytes()
    except FileNotFoundError:
        raise ImageReadError(path, Message(QT_TRANSLATE_NOOP("Errors", "file not found"))) from None
    except IsADirectoryError:
        raise ImageReadError(path, Message(QT_TRANSLATE_NOOP("Errors", "is a directory"))) from None
    except OSError as exc:
        raise ImageReadError(path, Message(QT_TRANSLATE_NOOP("Errors", "unreadable ({error})"), error=exc.strerror or exc)) from None


def _decode(data: bytes, path: os.PathLike | str, flags: int) -> np.ndarray:
    """Decode with the size checked first; returns OpenCV's array (BGR order, any depth)."""
    if len(data) == 0:
        raise ImageReadError(path, Message(QT_TRANSLATE_NOOP("Errors", "empty file (0 bytes)")))
    fmt = _format(data)
    if fmt is None:
        raise ImageReadError(path, Message(QT_TRANSLATE_NOOP("Errors", "not an image (unknown format)")))
    # Every format we accept has its size read from the header: a small compressed TIFF or WebP
    # can otherwise expand to gigabytes inside OpenCV before the size is known.
    size = image_size(data)
    if size is None:
        raise ImageReadError(path, Message(QT_TRANSLATE_NOOP("Errors", "damaged {format} header"), format=fmt.upper()))
    w, h = size
    if w <= 0 or h <= 0:
        raise ImageReadError(path, f"invalid image size {w}x{h}")
    if w * h > MAX_PIXELS:
        raise ImageReadError(path, f"image too large ({w}x{h} > {MAX_PIXELS} pixels)")
    if fmt == "png" and data.rfind(b"IEND\xaeB`\x82") < 0:
        # libpng may return a partly grey image for a truncated file: refuse instead.
        raise ImageReadError(path, Message(QT_TRANSLATE_NOOP("Errors", "truncated PNG (no IEND chunk)")))
    if fmt == "jpeg":
        # libjpeg pads a truncated JPEG with grey and only warns. Entropy-coded data never holds
        # FF D9, so the main image is complete iff an EOI follows its SOF (an EXIF thumbnail's EOI
        # comes before it; trailing vendor bytes after the EOI are fine).
        sof = _jpeg_sof(data)
        if sof is None or data.rfind(b"\xff\xd9") < sof[0]:
            raise ImageReadError(path, Message(QT_TRANSLATE_NOOP("Errors", "truncated JPEG (no end-of-image marker)")))
    try:
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error as exc:
        raise ImageReadError(path, f"cannot decode {fmt.upper()} ({str(exc).strip().splitlines()[-1]})") from None
    if img is None or img.size == 0:
        raise ImageReadError(path, Message(QT_TRANSLATE_NOOP("Errors", "cannot decode {format} (corrupt or unsupported)"), format=fmt.upper()))
    if img.shape[0] * img.shape[1] > MAX_PIXELS:
        raise ImageReadError(path, f"image too large ({img.shape[1]}x{img.shape[0]} > {MAX_PIXELS} pixels)")
    return img


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img >> 8).astype(np.uint8)
    if img.dtype in (np.float32, np.float64):
        finite = np.nan_to_num(img.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
        scale = 255.0 if finite.max(initial=0.0) <= 1.0 else 1.0
        return np.clip(finite * scale + 0.5, 0, 255).astype(np.uint8)
    info = np.iinfo(img.dtype)
    shift = max(info.bits - 8, 0)
    return (np.clip(img, 0, None) >> shift).astype(np.uint8) if shift else np.clip(img, 0, 255).astype(np.uint8)


def decode_rgb(data: bytes, path: os.PathLike | str = "<bytes>") -> np.ndarray:
    """Decode image bytes to (H, W, 3) uint8 RGB (grey, RGBA, 16-bit, CMYK normalised)."""
    img = _decode(data, path, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    img = _to_uint8(img)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 1:
        img = cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    else:
        raise ImageReadError(path, f"unsupported channel count {img.shape[2]}")
    return np.ascontiguousarray(img)


def decode_mask(data: bytes, path: os.PathLike | str = "<bytes>", label_value: int | None = None) -> np.ndarray:
    """Decode mask bytes to bool (H, W): any channel > 0 is tumour.

    ``label_value`` reads a class map instead (e.g. vocalfolds: tumour = label 4).
    An RGBA mask whose colour is all zero carries the mask in alpha; otherwise fully
    transparent pixels are background.
    """
    img = _decode(data, path, cv2.IMREAD_UNCHANGED)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if label_value is not None:
        grey = img if img.ndim == 2 else img[:, :, 0]
        return np.ascontiguousarray(grey == label_value)
    if img.ndim == 2:
        return np.ascontiguousarray(img > 0)
    colour = (img[:, :, :3] > 0).any(axis=2)
    if img.shape[2] == 4:
        alpha = img[:, :, 3] > 0
        if not colour.any():
            return np.ascontiguousarray(alpha)
        if not alpha.all():
            return np.ascontiguousarray(colour & alpha)
    return np.ascontiguousarray(colour)


def read_rgb(path: os.PathLike | str) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB; raises ImageReadError with a reason."""
    return decode_rgb(read_file_bytes(path), path)


def read_mask(path: os.PathLike | str, label_value: int | None = None) -> np.ndarray:
    """Read a mask image as bool (H, W): pixel > 0 in any channel (or == label_value)."""
    return decode_mask(read_file_bytes(path), path, label_value)


# --------------------------------------------------------------------------------------- writing
def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a bool mask (written 0/255), uint8 grey (H, W) or uint8 RGB (H, W, 3)."""
    arr = np.asarray(array)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        raise ValueError(f"encode_png wants bool or uint8, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    elif arr.ndim != 2:
        raise ValueError(f"encode_png wants (H, W) or (H, W, 3), got {arr.shape}")
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def write_png_atomic(path: os.PathLike | str, array: np.ndarray, exist_ok: bool = True) -> str:
    """Encode ``array`` as PNG and write it atomically (see write_bytes_atomic); returns its sha256."""
    data = encode_png(array)
    write_bytes_atomic(path, data, exist_ok=exist_ok)
    return sha256_bytes(data)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: os.PathLike | str) -> str:
    """Hex sha256 of a file, streamed (large images need not fit twice in memory)."""
    h = hashlib.sha256()
    with open(os.fspath(path), "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
