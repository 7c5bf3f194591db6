"""Export a workspace's corrected masks as a dataset: folder, COCO, nnU-Net v2 raw or labelme.

``python -m training export --workspace WS --format folder|coco|nnunet|labelme --out DIR
[--status corrected,approved] [--val-fraction F] [--seed S] [--keep-ids] [--force]`` and the
viewer's Export dialog (through ``export_dataset``) both end here. No Qt, no torch.

What is exported: for every case whose status is in ``statuses`` and that has a revision, its
latest revision (whatever its source: a clinician's correction, an imported mask, or a model mask
the clinician approved as it was), the WLI image, and the NBI image warped into WLI pixel space
with the case's homography (``cv2.warpPerspective(nbi, H, (w, h))``).

Layouts (``<id>`` is the exported case id, see de-identification below):

- ``folder``: ``images/<id>_wli.png``, ``images/<id>_nbi.png`` (absent for a WLI-only case),
  ``masks/<id>.png`` (0/255), ``manifest.csv``, ``pairs.csv``.
- ``coco``: ``annotations.json`` (images = the WLI frames, ``file_name`` relative to the JSON,
  one category "tumor", one annotation per 8-connected region as uncompressed RLE, which decodes
  to the exact mask), ``images/<id>_wli.png`` (+ ``images/<id>_nbi.png``, named by the image
  entry's extra ``nbi_file_name``), ``manifest.csv``.
- ``nnunet``: ``Dataset<NNN>_<Name>/imagesTr/<id>_0000.png`` (WLI, RGB), ``<id>_0001.png`` (NBI
  in WLI space, RGB; **all zeros for a WLI-only case**), ``labelsTr/<id>.png`` (0/1); the
  validation part in ``imagesTs/`` (+ its labels in ``labelsTs/``, so no correction is lost);
  ``dataset.json``. nnU-Net's PNG reader (NaturalImage2DIO) turns every RGB file into three
  input channels and checks that count against ``channel_names``, so ``channel_names`` lists six
  (``WLI_R .. NBI_B``), not two; ``channel_files`` says which file holds which.
- ``labelme``: ``images/<id>_wli.png`` + ``images/<id>_wli.json`` (labelme 5 JSON beside its
  image: the tumour polygons, ``imagePath`` relative, ``imageData`` null), ``images/<id>_nbi.png``,
  ``manifest.csv``, ``pairs.csv``.

``manifest.csv`` (every format): id, patient, split, revision, source, author_role
(clinician / model / import, never a name), model_id, mask_sha256 (sha256 of the exported mask
file; for COCO, which has none, of the mask as a 0/255 PNG), nbi (registered / synthetic /
none), wli_file, nbi_file, label_file. ``pairs.csv`` (folder, nnunet, labelme) is
``wli_path,nbi_path,label_path,patient_id`` relative to DIR, so ``python -m training import
DIR/pairs.csv`` brings the export back as the same masks.

Split: by patient (all cases of one patient in one split; a case without a patient id is its own
patient). Patients are ordered by sha256(seed, patient id) and taken into "val" until about
``val_fraction`` of the cases are there (at least one patient when the fraction is > 0 and there
are two or more patients; never all of them). Deterministic for a seed.

De-identification (default): images are decoded and re-encoded as PNG from their pixels only, so
no EXIF, text chunk, ICC profile or maker note survives (text burned into the pixels is not
removed); case and patient ids become stable pseudonyms ``c<16 hex>`` / ``p<16 hex>``:
HMAC-SHA256 of the id keyed by a per-workspace secret, ``<workspace>/.export_secret`` (32 random
bytes, hex; created atomically on the first de-identified export, never exported; it is not
patient data but whoever holds it can test a guessed id against a pseudonym, so keep it with the
workspace). The same case gets the same pseudonym in every export of that workspace.
``keep_ids`` keeps the original ids (made file-name safe). Nothing else of the workspace (file
names, author names, dates, source paths) is written.

Where files go: only inside DIR. Every path is built from sanitised names and checked (resolved)
to be inside DIR before it is written. The export is built in a staging folder inside DIR
(``.tmp-<pid>-<rand>-export``) and moved into place only when complete, so a failed or cancelled
export leaves DIR as it was. DIR must be missing, empty, or a previous export (it holds
``.adf-export.json``): the previous export's entries are then replaced; other files there are kept.
A non-empty folder that is not an export is refused unless ``force`` (then nothing in it is
replaced: a name clash is still refused). The only write outside DIR is the workspace's own
audit-log event (and the secret above).
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import hashlib
import hmac
import io
import json
import logging
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from training.annotations import mask_to_coco_annotations, mask_to_labelme
from training.imageio import TEMP_PREFIX, ImageReadError, encode_png, fsync_dir, sha256_bytes
from training.paths import is_inside
from training.progress_bar import ProgressBar
from training.sharing import pid_alive
from training.splits import patient_key, split_by_patient
from training.store import STATUSES, Case, Revision, Workspace, WorkspaceError, safe_id
from training.timestamps import utc_now

__all__ = [
    "FORMATS",
    "DEFAULT_STATUSES",
    "MARKER_NAME",
    "SECRET_NAME",
    "ExportError",
    "ExportCancelled",
    "export_dataset",
    "split_by_patient",
    "pseudonym",
    "workspace_secret",
    "main",
]

log = logging.getLogger(__name__)

FORMATS = ("folder", "coco", "nnunet", "labelme")
DEFAULT_STATUSES = ("corrected", "approved")
MARKER_NAME = ".adf-export.json"
SECRET_NAME = ".export_secret"
MANIFEST_COLUMNS = ("id", "patient", "split", "revision", "source", "author_role", "model_id", "mask_sha256",
                    "nbi", "wli_file", "nbi_file", "label_file")
PAIRS_COLUMNS = ("wli_path", "nbi_path", "label_path", "patient_id")
AUTHOR_ROLES = {"human": "clinician", "model": "model", "import": "import"}
NNUNET_CHANNELS = {"0": "WLI_R", "1": "WLI_G", "2": "WLI_B", "3": "NBI_R", "4": "NBI_G", "5": "NBI_B"}

_SAFE_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_IGNORABLE = {".DS_Store", "Thumbs.db", "desktop.ini", ".directory"}  # a file browser's, not the user's data
_STAGING_RE = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)-[0-9a-f]+-export")

Progress = Callable[[int, int], "bool | None"]


class ExportError(Exception):
    """An export that cannot be done, with a one-line message for the user."""


class ExportCancelled(ExportError):
    """The progress callback returned False; nothing was left in DIR."""


# ------------------------------------------------------------------------------- pseudonyms
def workspace_secret(ws: Workspace) -> bytes:
    """The workspace's pseudonym key (``<ws>/.export_secret``), created atomically on first use."""
    path = ws.root / SECRET_NAME
    for _ in range(2):
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            text = None
        except (OSError, UnicodeDecodeError) as exc:
            raise ExportError(f"cannot read the pseudonym secret {path}: {exc}") from None
        if text is not None:
            if not re.fullmatch(r"[0-9a-f]{64}", text):
                raise ExportError(f"{path} is damaged (expected 64 hex digits); restore it from a backup, or "
                                  "delete it to start a new pseudonym series")
            return bytes.fromhex(text)
        if ws.readonly:
            raise ExportError(f"workspace {ws.root} is read-only, so its pseudonym secret cannot be created; "
                              "export with --keep-ids or make the workspace writable")
        tmp = path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{SECRET_NAME}")
        try:
            with open(tmp, "x", encoding="ascii") as fh:
                fh.write(secrets.token_hex(32) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # atomic and never replaces a secret another process made first
            except FileExistsError:
                pass
            except OSError:  # no hard links on this filesystem
                if not path.exists():
                    os.replace(tmp, path)
            fsync_dir(ws.root)
        except OSError as exc:
            raise ExportError(f"cannot create the pseudonym secret {path}: {exc.strerror or exc}") from None
        finally:
            try:
                tmp.unlink()
            except OSError:
                pass
    raise ExportError(f"cannot create the pseudonym secret {path}")


def pseudonym(secret: bytes, kind: str, value: str) -> str:
    """Stable pseudonym of an id: ``c``/``p`` + 16 hex of HMAC-SHA256(secret, kind NUL value)."""
    digest = hmac.new(secret, f"{kind}\0{value}".encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return f"{kind[0]}{digest[:16]}"


# ------------------------------------------------------------------------------- safe paths
def _check_part(part: str) -> str:
    if not isinstance(part, str) or not _SAFE_PART.fullmatch(part) or part in (".", ".."):
        raise ExportError(f"refusing unsafe output name {part!r}")
    return part


class _Staging:
    """Files written under one staging folder; every path checked to stay inside it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.coco_images: list[dict] = []
        self.coco_anns: list[dict] = []

    def path(self, *parts: str) -> Path:
        p = self.root.joinpath(*(_check_part(x) for x in parts))
        if not is_inside(p, self.root):
            raise ExportError(f"refusing to write outside the export folder: {p}")
        return p

    def write(self, data: bytes, *parts: str) -> str:
        """Write a new file (never replaces one, never follows a link); returns its sha256."""
        p = self.path(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        if not is_inside(p.parent, self.root):
            raise ExportError(f"refusing to write outside the export folder: {p}")
        with open(p, "xb") as fh:
            fh.write(data)
        return sha256_bytes(data)


# ------------------------------------------------------------------------------- the items
@dataclass
class _Item:
    case: Case
    rev: Revision
    name: str          # exported id (pseudonym or sanitised original)
    patient: str       # exported patient (pseudonym, original, or "" with keep_ids and none)
    group: str         # split key
    split: str = "train"


def _author_role(source: str) -> str:
    return AUTHOR_ROLES.get(source, "unknown")


def _nbi_kind(case: Case) -> str:
    if case.nbi_path is None:
        return "none"
    return "synthetic" if case.nbi_synthetic else "registered"


def _load(ws: Workspace, item: _Item) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(WLI, NBI warped into WLI space or None, mask) of one case; raises on any problem."""
    wli = ws.load_wli(item.case.id)
    h, w = wli.shape[:2]
    mask = ws.load_mask(item.rev)
    if mask.shape != (h, w):
        raise ExportError(f"mask {mask.shape[1]}x{mask.shape[0]} != WLI {w}x{h}")
    nbi = ws.load_nbi(item.case.id)
    if nbi is not None:
        hm = np.asarray(item.case.homography, dtype=np.float64).reshape(3, 3)
        if not (nbi.shape[:2] == (h, w) and np.allclose(hm, np.eye(3), atol=1e-12)):
            nbi = cv2.warpPerspective(nbi, hm, (w, h), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return wli, nbi, mask


def _csv_bytes(columns: Sequence[str], rows: Iterable[dict]) -> bytes:
    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    wr.writeheader()
    for r in rows:
        wr.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return buf.getvalue().encode("utf-8")


def _entries(fmt: str, nnunet_dir: str) -> list[str]:
    """Top-level names an export of ``fmt`` creates in DIR (besides the marker)."""
    return {
        "folder": ["images", "masks", "manifest.csv", "pairs.csv"],
        "coco": ["images", "annotations.json", "manifest.csv"],
        "nnunet": [nnunet_dir, "manifest.csv", "pairs.csv"],
        "labelme": ["images", "manifest.csv", "pairs.csv"],
    }[fmt]


# ------------------------------------------------------------------------------- DIR policy
def _read_marker(out: Path) -> list[str] | None:
    """The entries a previous export recorded in DIR (safe names only), or None when there is none."""
    m = out / MARKER_NAME
    if not m.is_file() or m.is_symlink():
        return None
    try:
        data = json.loads(m.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ExportError(f"{m} is unreadable; remove it (and the old export) or choose another folder") from None
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ExportError(f"{m} is not an ADF Viewer export marker")
    # a tampered marker must never make us delete anything but a plain name directly inside DIR
    return [e for e in entries if isinstance(e, str) and _SAFE_PART.fullmatch(e) and e not in (".", "..")]


def _prepare_out(out: Path, new_entries: list[str], force: bool, ws_root: Path) -> list[str]:
    """Check DIR may be written; returns the previous export's entries to replace."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder")
    ws_root = ws_root.resolve()
    if out == ws_root or any(is_inside(out, ws_root / sub) for sub in ("images", "masks", "predictions", "models")):
        raise ExportError(f"refusing to export into the workspace's own data ({out})")
    if not out.exists():
        return []
    previous = _read_marker(out)
    others = []
    for e in os.scandir(out):
        m = _STAGING_RE.fullmatch(e.name)
        if m and not pid_alive(int(m.group(1))) and e.is_dir(follow_symlinks=False):
            shutil.rmtree(e.path, ignore_errors=True)  # leftover of a crashed export of ours
            continue
        if e.name in _IGNORABLE:
            continue
        if e.name != MARKER_NAME and (previous is None or e.name not in previous):
            others.append(e.name)
    if previous is None and others and not force:
        raise ExportError(f"{out} is not empty and holds no previous export; choose an empty folder "
                          "(or --force to add the export beside the files there)")
    clash = sorted(set(others) & set(new_entries))
    if clash:
        raise ExportError(f"{out} already holds {', '.join(clash)} (not from a previous export); "
                          "refusing to replace it")
    return previous or []


def _remove_entry(out: Path, name: str) -> None:
    p = out / name
    if not _SAFE_PART.fullmatch(name) or p.parent != out:
        return
    if p.is_symlink() or p.is_file():
        p.unlink()
    elif p.is_dir():
        shutil.rmtree(p)


def _write_marker(out: Path, data: dict) -> None:
    from training.imageio import write_bytes_atomic

    write_bytes_atomic(out / MARKER_NAME, (json.dumps(data, indent=1) + "\n").encode("utf-8"))


# ---------------------------------------------------------------------------------- export
def export_dataset(ws: Workspace, out_dir: os.PathLike | str, fmt: str,
                   statuses: Iterable[str] | str = DEFAULT_STATUSES, val_fraction: float = 0.2, seed: int = 0,
                   keep_ids: bool = False, progress: Progress | None = None, *, force: bool = False,
                   dataset_id: int = 500, dataset_name: str = "ADFViewer") -> dict:
    """Export the workspace's masks to ``out_dir`` (see the module doc for layouts and rules).

    Returns ``{"format", "cases", "train", "val", "out", "notes"}`` (``notes``: things the user
    should know, e.g. WLI-only cases or skipped unreadable cases). ``progress(done, total)`` is
    called as cases are written; returning False cancels (ExportCancelled, DIR left as it was).
    Raises ExportError (zero cases, DIR refused, ...) with a one-line message.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    wanted = [statuses] if isinstance(statuses, str) else list(statuses)
    bad = [s for s in wanted if s not in STATUSES]
    if bad or not wanted:
        raise ExportError(f"unknown status {bad[0] if bad else ''!r}; expected some of {', '.join(STATUSES)}")
    try:
        val_fraction = float(val_fraction)
    except (TypeError, ValueError):
        raise ExportError(f"val fraction must be a number, got {val_fraction!r}") from None
    if not 0.0 <= val_fraction < 1.0:
        raise ExportError(f"val fraction must be in [0, 1), got {val_fraction}")
    if not (isinstance(dataset_id, int) and 1 <= dataset_id <= 999):
        raise ExportError(f"nnU-Net dataset id must be 1..999, got {dataset_id!r}")
    dataset_name = safe_id(dataset_name, 40, "ADFViewer").replace(".", "_").replace("-", "_")
    nnunet_dir = f"Dataset{dataset_id:03d}_{dataset_name}"
    out = Path(out_dir).expanduser().resolve()

    # ---- what to export
    items: list[_Item] = []
    for case in ws.cases(status=wanted):
        rev = ws.latest_revision(case.id)
        if rev is not None:
            items.append(_Item(case, rev, "", "", patient_key(case.id, case.patient_id)))
    if not items:
        raise ExportError(f"nothing to export: no case with status {' or '.join(wanted)} has a mask "
                          f"in {ws.root}")

    # ---- names
    secret = None if keep_ids else workspace_secret(ws)
    used: set[str] = set()
    for it in items:
        if secret is None:
            base = safe_id(it.case.id)
            name, n = base, 1
            while name.lower() in used:
                n += 1
                name = f"{base}-{n}"
            it.name = name
            it.patient = it.case.patient_id or ""
        else:
            it.name = pseudonym(secret, "case", it.case.id)
            if it.name.lower() in used:  # 64-bit collision: astronomically unlikely, still never overwrite
                raise ExportError(f"pseudonym collision for case {it.case.id}; export with --keep-ids")
            it.patient = pseudonym(secret, "patient", it.group)
        used.add(it.name.lower())
    items.sort(key=lambda it: it.name)

    # ---- split
    counts: dict[str, int] = {}
    for it in items:
        counts[it.group] = counts.get(it.group, 0) + 1
    val_groups = split_by_patient(counts, val_fraction, seed)
    for it in items:
        it.split = "val" if it.group in val_groups else "train"

    # ---- DIR
    new_entries = _entries(fmt, nnunet_dir)
    previous = _prepare_out(out, new_entries, force, ws.root)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {out}: {exc.strerror or exc}") from None
    staging_dir = out / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-export"
    try:
        staging_dir.mkdir()
    except OSError as exc:
        raise ExportError(f"cannot write into {out}: {exc.strerror or exc}") from None
    st = _Staging(staging_dir)
    notes: list[str] = []
    try:
        written = _write_all(ws, st, items, fmt, nnunet_dir, progress, notes)
        if not written:
            raise ExportError("nothing to export: every selected case failed to load (see notes)"
                              + ("; " + "; ".join(notes[:3]) if notes else ""))
        _finish(st, written, fmt, nnunet_dir, dataset_name)
        summary = {"format": fmt, "cases": len(written), "train": sum(it.split == "train" for it in written),
                   "val": sum(it.split == "val" for it in written), "out": str(out)}
        _commit(out, staging_dir, new_entries, previous, {
            "tool": "ADF Viewer export", "version": 1, "complete": True, "entries": new_entries,
            "format": fmt, "keep_ids": bool(keep_ids), "statuses": wanted, "val_fraction": val_fraction,
            "seed": seed, "cases": summary["cases"], "train": summary["train"], "val": summary["val"],
            "created_at": utc_now("seconds")})
    except OSError as exc:
        raise ExportError(f"cannot write the export into {out}: {exc.strerror or exc}") from None
    finally:
        if staging_dir.exists():
            shutil.rmtree(staging_dir, ignore_errors=True)
        if created:  # a DIR we created and left empty (failure, cancel) goes again
            try:
                if not any(out.iterdir()):
                    out.rmdir()
            except OSError:
                pass
    if not ws.readonly:
        try:
            ws.log_event("export", None, {**summary, "keep_ids": bool(keep_ids), "statuses": wanted,
                                          "val_fraction": val_fraction, "seed": seed})
        except WorkspaceError as exc:  # the export itself is done; the log is best effort
            log.warning("export not logged in the workspace: %s", exc)
    return {**summary, "notes": notes}


def _write_all(ws: Workspace, st: _Staging, items: list[_Item], fmt: str, nnunet_dir: str,
               progress: Progress | None, notes: list[str]) -> list[_Item]:
    written: list[_Item] = []
    rows: list[dict] = []
    pairs: list[dict] = []
    coco_images, coco_anns = st.coco_images, st.coco_anns
    wli_only = 0
    total = len(items)
    if progress is not None and progress(0, total) is False:
        raise ExportCancelled("export cancelled")
    for i, it in enumerate(items, start=1):
        try:
            wli, nbi, mask = _load(ws, it)
        except (ImageReadError, WorkspaceError, ExportError, OSError, cv2.error) as exc:
            notes.append(f"case {it.case.id} skipped: {exc}")
            log.warning("export: case %s skipped: %s", it.case.id, exc)
        else:
            if nbi is None:
                wli_only += 1
            n = it.name
            wli_png = encode_png(wli)
            nbi_png = encode_png(nbi) if nbi is not None else None
            mask_png = encode_png(mask)
            wli_file = nbi_file = label_file = ""
            if fmt in ("folder", "coco", "labelme"):
                wli_file, nbi_file = f"images/{n}_wli.png", (f"images/{n}_nbi.png" if nbi is not None else "")
                st.write(wli_png, "images", f"{n}_wli.png")
                if nbi_png is not None:
                    st.write(nbi_png, "images", f"{n}_nbi.png")
            if fmt == "folder":
                label_file = f"masks/{n}.png"
                mask_sha = st.write(mask_png, "masks", f"{n}.png")
            elif fmt == "labelme":
                label_file = f"images/{n}_wli.json"
                doc = mask_to_labelme(mask, f"{n}_wli.png")
                mask_sha = st.write((json.dumps(doc, indent=1) + "\n").encode("utf-8"), "images", f"{n}_wli.json")
            elif fmt == "coco":
                label_file = "annotations.json"
                mask_sha = sha256_bytes(mask_png)
                image_id = len(coco_images) + 1
                coco_images.append({"id": image_id, "file_name": wli_file, "width": int(wli.shape[1]),
                                    "height": int(wli.shape[0]), "case_id": n, "split": it.split,
                                    "nbi_file_name": nbi_file or None})
                coco_anns += mask_to_coco_annotations(mask, image_id, len(coco_anns) + 1)
            else:  # nnunet
                img_dir, lab_dir = ("imagesTr", "labelsTr") if it.split == "train" else ("imagesTs", "labelsTs")
                wli_file = f"{nnunet_dir}/{img_dir}/{n}_0000.png"
                nbi_file = f"{nnunet_dir}/{img_dir}/{n}_0001.png"
                label_file = f"{nnunet_dir}/{lab_dir}/{n}.png"
                st.write(wli_png, nnunet_dir, img_dir, f"{n}_0000.png")
                st.write(nbi_png if nbi_png is not None else encode_png(np.zeros_like(wli)),
                         nnunet_dir, img_dir, f"{n}_0001.png")
                mask_sha = st.write(encode_png(mask.astype(np.uint8)), nnunet_dir, lab_dir, f"{n}.png")
            rows.append({"id": n, "patient": it.patient, "split": it.split, "revision": it.rev.rev,
                         "source": it.rev.source, "author_role": _author_role(it.rev.source),
                         "model_id": it.rev.model_id or "", "mask_sha256": mask_sha, "nbi": _nbi_kind(it.case),
                         "wli_file": wli_file, "nbi_file": nbi_file if nbi is not None else "",
                         "label_file": label_file})
            pairs.append({"wli_path": wli_file, "nbi_path": nbi_file if nbi is not None else "",
                          "label_path": label_file, "patient_id": it.patient})
            written.append(it)
        if progress is not None and progress(i, total) is False:
            raise ExportCancelled("export cancelled")
    if wli_only:
        notes.append(f"{wli_only} WLI-only case(s) (no NBI)"
                     + (": their NBI channel (_0001) is all zeros" if fmt == "nnunet" else ": no _nbi image"))
    st.write(_csv_bytes(MANIFEST_COLUMNS, rows), "manifest.csv")
    if fmt != "coco":
        st.write(_csv_bytes(PAIRS_COLUMNS, pairs), "pairs.csv")
    return written


def _finish(st: _Staging, written: list[_Item], fmt: str, nnunet_dir: str, dataset_name: str) -> None:
    """The per-dataset files: annotations.json (COCO) or dataset.json (nnU-Net)."""
    if fmt == "coco":
        images, anns = st.coco_images, st.coco_anns
        doc = {"info": {"description": "ADF Viewer export: tumour masks on WLI frames", "version": "1.0",
                        "date_created": _dt.date.today().isoformat()},
               "licenses": [], "images": images, "annotations": anns,
               "categories": [{"id": 1, "name": "tumor", "supercategory": "lesion"}]}
        st.write(json.dumps(doc, separators=(",", ":")).encode("utf-8"), "annotations.json")
    elif fmt == "nnunet":
        n_train = sum(it.split == "train" for it in written)
        doc = {"name": nnunet_dir, "description": f"ADF Viewer export ({dataset_name}): tumour segmentation on "
               "paired WLI / NBI endoscopy, NBI registered into WLI pixel space",
               "channel_names": dict(NNUNET_CHANNELS), "labels": {"background": 0, "tumor": 1},
               "numTraining": n_train, "numTest": len(written) - n_train, "file_ending": ".png",
               "overwrite_image_reader_writer": "NaturalImage2DIO",
               "channel_files": {"_0000": "WLI (RGB) -> channels 0-2",
                                 "_0001": "NBI registered into WLI space (RGB; zeros for a WLI-only case) -> "
                                          "channels 3-5"}}
        st.write((json.dumps(doc, indent=1) + "\n").encode("utf-8"), nnunet_dir, "dataset.json")
        # nnU-Net expects these folders even when a split is empty
        for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
            st.path(nnunet_dir, sub).mkdir(parents=True, exist_ok=True)


def _commit(out: Path, staging: Path, new_entries: list[str], previous: list[str], marker: dict) -> None:
    """Move the staged export into DIR, replacing the previous export's entries (and only them)."""
    pending = sorted(set(previous) | set(new_entries))
    _write_marker(out, {**marker, "complete": False, "entries": pending})
    for name in previous:
        _remove_entry(out, name)
    for name in new_entries:
        src = staging / _check_part(name)
        if src.exists():
            if os.path.lexists(out / name):  # raced in after the check: never replace it
                raise ExportError(f"{out / name} appeared while exporting; refusing to replace it")
            os.rename(src, out / name)
    fsync_dir(out)
    _write_marker(out, marker)


# ------------------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training export",
        description="Export a workspace's corrected masks as a dataset (folder, COCO, nnU-Net v2 raw, labelme); "
                    "prints a JSON summary as the last line.")
    p.add_argument("--workspace", required=True, metavar="WS", help="workspace folder")
    p.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: missing, empty or a previous export (its entries are replaced)")
    p.add_argument("--status", default=",".join(DEFAULT_STATUSES),
                   help="comma-separated statuses to export (default corrected,approved)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of cases in the validation split "
                   "(split by patient; default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    p.add_argument("--keep-ids", action="store_true", help="keep case/patient ids (default: pseudonyms)")
    p.add_argument("--force", action="store_true",
                   help="allow a non-empty DIR that is not an export (nothing there is replaced)")
    p.add_argument("--dataset-id", type=int, default=500, help="nnU-Net dataset number NNN (default 500)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry; returns the exit code (1 for an export that cannot be done, zero cases included)."""
    args = _parser().parse_args(argv)
    statuses = [s.strip() for s in args.status.split(",") if s.strip()]
    try:
        ws = Workspace.open(args.workspace)
    except WorkspaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        with ProgressBar(f"export {args.fmt}", quiet=args.quiet) as progress:
            summary = export_dataset(ws, args.out, args.fmt, statuses, args.val_fraction, args.seed,
                                     args.keep_ids, progress, force=args.force, dataset_id=args.dataset_id)
    except (ExportError, WorkspaceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        ws.close()
    for note in summary.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    print(json.dumps({k: summary[k] for k in ("format", "cases", "train", "val", "out")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
