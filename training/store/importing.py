"""New cases from image files: the original bytes are copied in (sha256 recorded), NBI is
registered to WLI, an optional mask becomes revision 1; all or nothing.

The files are written into temp folders first and renamed into ``images/<id>`` (and
``masks/<id>``) inside the write transaction that inserts the rows, so a failure at any point
leaves no half case behind. Identical files (the sha256 of both images) are a "duplicate" skip,
checked again under the write lock. The case id is the file stem made safe and unique.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np

from model.i18n_marks import QT_TRANSLATE_NOOP, Message
from model.names import safe_id
from training.imageio import (
    ImageReadError,
    decode_rgb,
    fsync_dir,
    read_file_bytes,
    read_mask,
    sha256_bytes,
    temp_name,
    write_bytes_atomic,
    write_png_atomic,
)
from training.store.cases import _finite, _h_to_json
from training.store.records import WorkspaceError
from training.timestamps import utc_now


class ImportMixin:
    """Workspace's import of pairs (uses its root, readonly, find_case_by_hash, _write, _event)."""

    def _unique_case_id(self, db: sqlite3.Connection, stem: str) -> str:
        base = safe_id(stem)
        cand, n = base, 1
        while (db.execute("SELECT 1 FROM cases WHERE id = ?", (cand,)).fetchone() is not None
               or (self.root / "images" / cand).exists() or (self.root / "masks" / cand).exists()):
            n += 1
            cand = f"{base}-{n}"
        return cand

    def import_pair(self, wli_path: os.PathLike | str, nbi_path: os.PathLike | str | None = None,
                    label_path: os.PathLike | str | None = None, patient_id: str | None = None,
                    nbi_synthetic: bool = False, register: bool = True, *, case_name: str | None = None,
                    label_value: int | None = None, mask: np.ndarray | None = None,
                    author: str = "import") -> tuple[str | None, str | None]:
        """Copy one pair (+ optional mask) into the workspace as a new case.

        Returns ``(case_id, None)`` or ``(None, reason)`` when skipped: identical files already
        imported ("duplicate"), unreadable/not an image/truncated, NBI unreadable, mask size not
        matching the WLI. Nothing is left behind on a skip or an error. Extras: ``case_name``
        (stem the id is derived from; default the WLI stem), ``label_value`` (class-map masks:
        tumour = pixels equal to it), ``mask`` (an in-memory bool mask instead of ``label_path``,
        e.g. a rasterised labelme JSON).
        """
        wli_path = Path(wli_path)
        try:
            wli_bytes, wli, wli_sha = _read_image(wli_path)
        except ImageReadError as exc:
            return None, f"WLI: {exc.reason}"
        nbi_bytes = nbi = None
        nbi_sha = ""
        if nbi_path is not None:
            nbi_path = Path(nbi_path)
            try:
                nbi_bytes, nbi, nbi_sha = _read_image(nbi_path)
            except ImageReadError as exc:
                return None, f"NBI unreadable: {exc.reason}"
        existing = self.find_case_by_hash(wli_sha, nbi_sha)
        if existing is not None:
            return None, "duplicate"
        h, w = wli.shape[:2]
        if label_path is not None and mask is None:
            try:
                mask = read_mask(label_path, label_value)
            except ImageReadError as exc:
                return None, f"mask: {exc.reason}"
        if mask is not None:
            mask = np.asarray(mask).astype(bool)
            if mask.shape != (h, w):
                return None, f"mask size {mask.shape[1]}x{mask.shape[0]} != WLI size {w}x{h}"
        reg = None
        if nbi is not None and register:
            from model.registration import register_pair  # lazy: cv2 feature code only when needed

            reg = register_pair(wli, nbi)
        hm = reg.homography if reg is not None else np.eye(3)
        del wli, nbi
        return self._commit_import(
            wli_path, wli_bytes, wli_sha, nbi_path, nbi_bytes, nbi_sha, (w, h), hm, reg, mask,
            patient_id, nbi_synthetic, case_name or _pair_stem(wli_path), label_path, author)

    def _commit_import(self, wli_path, wli_bytes, wli_sha, nbi_path, nbi_bytes, nbi_sha, size, hm, reg,
                       mask, patient_id, nbi_synthetic, stem, label_path, author,
                       video: dict | None = None) -> tuple[str | None, str | None]:
        if self.readonly:
            raise WorkspaceError(Message(QT_TRANSLATE_NOOP("Errors", "workspace {root} is read-only"), root=self.root))
        w, h = size
        images = self.root / "images"
        masks = self.root / "masks"
        tmp_img, tmp_mask = temp_name(images / "import"), temp_name(masks / "import")  # folders, renamed to the id
        wli_ext = _ext(wli_path, wli_bytes)
        nbi_ext = _ext(nbi_path, nbi_bytes) if nbi_bytes is not None else None
        placed: list[Path] = []
        try:
            try:
                images.mkdir(exist_ok=True)
                masks.mkdir(exist_ok=True)
                tmp_img.mkdir()
                write_bytes_atomic(tmp_img / f"wli{wli_ext}", wli_bytes)
                if nbi_bytes is not None:
                    write_bytes_atomic(tmp_img / f"nbi{nbi_ext}", nbi_bytes)
                mask_sha = None
                if mask is not None:
                    tmp_mask.mkdir()
                    mask_sha = write_png_atomic(tmp_mask / "1.png", mask, exist_ok=False)
            except OSError as exc:
                raise WorkspaceError(Message(QT_TRANSLATE_NOOP("Errors", "cannot write to workspace {root}: {error}"), root=self.root, error=exc.strerror or exc)) from None
            with self._write() as db:
                # re-check under the write lock: another process may have imported it meanwhile
                if db.execute("SELECT 1 FROM cases WHERE wli_sha256 = ? AND nbi_sha256 = ?",
                              (wli_sha, nbi_sha)).fetchone() is not None:
                    return None, "duplicate"
                cid = self._unique_case_id(db, stem)
                now = utc_now()
                final_img = images / cid
                os.rename(tmp_img, final_img)
                placed.append(final_img)
                if mask is not None:
                    os.rename(tmp_mask, masks / cid)
                    placed.append(masks / cid)
                fsync_dir(images)
                fsync_dir(masks)
                status = "corrected" if mask is not None else "new"
                db.execute(
                    """INSERT INTO cases (id, patient_id, status, wli_path, nbi_path, wli_sha256, nbi_sha256,
                       width, height, nbi_width, nbi_height, homography, reg_quality, reg_inliers, reg_error,
                       reg_method, nbi_synthetic, source_wli, source_nbi, created_at, updated_at,
                       latest_rev, latest_source)
                       VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                    (cid, patient_id, status, f"images/{cid}/wli{wli_ext}",
                     f"images/{cid}/nbi{nbi_ext}" if nbi_bytes is not None else None,
                     wli_sha, nbi_sha, w, h,
                     *(_nbi_size(nbi_bytes) if nbi_bytes is not None else (None, None)),
                     _h_to_json(hm),
                     reg.quality if reg is not None else (None if nbi_bytes is None else "unregistered"),
                     reg.inliers if reg is not None else None,
                     _finite(reg.reproj_error) if reg is not None else None,
                     reg.method if reg is not None else None,
                     int(bool(nbi_synthetic) and nbi_bytes is not None),
                     _source_str(wli_path), _source_str(nbi_path) if nbi_bytes is not None else None,
                     now, now, 1 if mask is not None else None, "import" if mask is not None else None))
                if mask is not None:
                    db.execute(
                        """INSERT INTO revisions (case_id, rev, source, author, model_id, parent_rev, mask_path,
                           sha256, area, created_at, note) VALUES (?,?,?,?,?,?,?,?,?,?,?)""",
                        (cid, 1, "import", author, None, None, f"masks/{cid}/1.png", mask_sha,
                         int(np.count_nonzero(mask)), now,
                         f"imported from {_source_str(label_path)}" if label_path is not None else "imported"))
                if video is not None:
                    db.execute(
                        """INSERT INTO case_video (case_id, video_sha256, video_path, wli_frame, nbi_frame, wli_time_s,
                           nbi_time_s, detail) VALUES (?,?,?,?,?,?,?,?)""",
                        (cid, video["sha256"], _source_str(video["path"]), int(video["wli_frame"]),
                         video.get("nbi_frame"), float(video["wli_time_s"]), video.get("nbi_time_s"),
                         json.dumps(video.get("detail") or {})))
                self._event(db, "import", cid, {
                    "video": {k: v for k, v in video.items() if k != "detail"} if video is not None else None,
                    "wli": _source_str(wli_path), "nbi": _source_str(nbi_path) if nbi_bytes is not None else None,
                    "label": _source_str(label_path) if label_path is not None else None,
                    "wli_sha256": wli_sha, "nbi_sha256": nbi_sha or None, "patient_id": patient_id,
                    "registration": reg.to_dict() if reg is not None else None,
                    "nbi_synthetic": bool(nbi_synthetic)})
            placed.clear()
            return cid, None
        finally:
            for p in placed:  # the transaction failed after the rename: take the files back out
                shutil.rmtree(p, ignore_errors=True)
            for p in (tmp_img, tmp_mask):
                if p.exists():
                    shutil.rmtree(p, ignore_errors=True)


def _read_image(path: Path) -> tuple[bytes, np.ndarray, str]:
    """The original bytes (copied on import), the decoded RGB image and the bytes' sha256."""
    data = read_file_bytes(path)
    return data, decode_rgb(data, path), sha256_bytes(data)


_PAIR_SUFFIX = re.compile(r"(?i)[_\-. ](wli|nbi|1|2)$")


def _pair_stem(path: Path) -> str:
    """The case name of a source file: its stem without a _wli/_nbi/_1/_2 suffix."""
    stem = Path(path).stem
    return _PAIR_SUFFIX.sub("", stem) or stem


_EXT_BY_FORMAT = {b"\x89PNG": ".png", b"\xff\xd8\xff": ".jpg", b"BM": ".bmp", b"II*\x00": ".tif",
                  b"MM\x00*": ".tif", b"RIFF": ".webp"}


def _ext(path: Path | None, data: bytes | None) -> str:
    """A safe extension for the copy: the real format's, not whatever the name claims."""
    if data is not None:
        for magic, ext in _EXT_BY_FORMAT.items():
            if data.startswith(magic):
                return ext
    suffix = Path(path).suffix.lower() if path is not None else ""
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ".img"


def _nbi_size(data: bytes) -> tuple[int | None, int | None]:
    from training.imageio import image_size

    size = image_size(data)
    if size is None:
        try:
            arr = decode_rgb(data)
            return arr.shape[1], arr.shape[0]
        except ImageReadError:
            return None, None
    return size


def _source_str(path: os.PathLike | str | None) -> str | None:
    if path is None:
        return None
    s = os.fspath(path)
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
