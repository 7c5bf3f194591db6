"""Import WLI/NBI pairs (+ masks) from folders or CSV files into a workspace.

``python -m training import SRC [SRC...] --workspace WS`` and the viewer's import dialog both
end here. Discovery rules (DESIGN.md):

- ``X_wli.*`` + ``X_nbi.*`` in one folder;
- ``WLI/`` + ``NBI/`` sub-folders whose files have equal stems;
- ``X_1.*`` (WLI) + ``X_2.*`` (NBI) + optional ``X_1_label.*`` (not when ``X_3`` exists too: that
  is a numbered sequence, not pairs);
- any other image: a WLI-only case;
- masks beside the image as ``X_mask.*`` / ``X_label.*`` (PNG etc. or labelme JSON), a labelme
  ``X.json``, or in a ``masks/`` or ``labels/`` folder with the WLI stem, found inside the image's
  folder or beside any of its ancestors with the same sub-path (``images/a/b/X.png`` ->
  ``labels/a/b/X.png``);
- a CSV with header ``wli_path,nbi_path[,label_path][,patient_id]``, paths relative to the CSV;
  a path escaping the CSV's folder (``..``, absolute elsewhere, a symlink out) is skipped.

A bad file never aborts the batch: the case is skipped with a reason and nothing of it stays in
the workspace. Importing the same files again imports nothing (sha256 of the pair).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.imageio import IMAGE_EXTENSIONS, ImageReadError, image_size, read_rgb
from training.paths import is_inside
from training.progress_bar import ProgressBar
from training.store import Workspace, WorkspaceError
from training.video import VideoSettings, is_video
from training.video_import import find_videos, import_videos

__all__ = ["PairSpec", "discover", "import_sources", "rasterise_labelme", "main", "ImportSourceError"]

_MASK_DIRS = ("masks", "labels", "mask", "label", "annotations", "gt", "groundtruth", "ground_truth")
_LABEL_WORDS = "mask|label|labels|gt|seg|annotation"
_RE_LABEL_12 = re.compile(rf"(?i)^(?P<key>.+)_1_(?:{_LABEL_WORDS})$")
_RE_LABEL_MOD = re.compile(rf"(?i)^(?P<key>.+)[_-](?:wli|nbi)[_-](?:{_LABEL_WORDS})$")
_RE_LABEL = re.compile(rf"(?i)^(?P<key>.+)[_-](?:{_LABEL_WORDS})$")
_RE_WLI = re.compile(r"(?i)^(?P<key>.+)[_-]wli$")
_RE_NBI = re.compile(r"(?i)^(?P<key>.+)[_-]nbi$")
_RE_ONE = re.compile(r"^(?P<key>.+)_1$")
_RE_TWO = re.compile(r"^(?P<key>.+)_2$")
_MASK_EXTS = (*IMAGE_EXTENSIONS, ".json")


class ImportSourceError(ValueError):
    """A source that cannot be imported at all (missing path): fatal for the CLI."""


@dataclass
class PairSpec:
    """One case to import, as found by discovery."""

    wli: Path
    nbi: Path | None = None
    label: Path | None = None
    patient_id: str | None = None
    name: str | None = None          # stem the case id is derived from
    mask: np.ndarray | None = None   # an in-memory mask (from a COCO file); ``label`` names its source


# -------------------------------------------------------------------------------- discovery
def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


def _prefer_image(paths: list[Path]) -> Path:
    """Of several mask files for one key prefer an image over a JSON, then the shortest name."""
    return sorted(paths, key=lambda p: (p.suffix.lower() == ".json", len(p.name), p.name))[0]


class _DirIndex:
    """Cached listing of folders: stem (lower case) -> mask-capable files."""

    def __init__(self) -> None:
        self._cache: dict[Path, dict[str, list[Path]]] = {}

    def stems(self, d: Path) -> dict[str, list[Path]]:
        if d not in self._cache:
            out: dict[str, list[Path]] = {}
            try:
                with os.scandir(d) as it:
                    for e in it:
                        p = Path(e.path)
                        if p.suffix.lower() in _MASK_EXTS and not e.name.startswith(".") and e.is_file():
                            out.setdefault(p.stem.lower(), []).append(p)
            except OSError:
                pass
            self._cache[d] = out
        return self._cache[d]

    def child_dir(self, d: Path, name: str) -> Path | None:
        """A sub-folder of ``d`` named ``name``, case-insensitively."""
        try:
            with os.scandir(d) as it:
                for e in it:
                    if e.name.lower() == name and e.is_dir():
                        return Path(e.path)
        except OSError:
            pass
        return None


def _mask_in_folders(idx: _DirIndex, image_dir: Path, stems: Sequence[str], top: Path) -> Path | None:
    """Look for ``masks/``/``labels/`` holding a mask with one of ``stems`` (see module doc)."""
    rel: list[str] = []
    cur = image_dir
    stop = top.parent
    while True:
        for holder in (cur, cur.parent):
            for md in _MASK_DIRS:
                mdir = idx.child_dir(holder, md)
                if mdir is None or (holder == cur.parent and mdir == cur):
                    continue
                listing = idx.stems(mdir.joinpath(*rel))
                for s in stems:
                    for cand in (s.lower(), f"{s.lower()}_mask", f"{s.lower()}_label"):
                        if cand in listing:
                            return _prefer_image(listing[cand])
        if cur in (stop, top) or cur == cur.parent:
            return None
        rel.insert(0, cur.name)
        cur = cur.parent


def _case_name(stem: str, folder: Path) -> str:
    """Numbered frames (``0041``) get their folder's name in front: ``seq1_0041``."""
    if re.fullmatch(r"[0-9]+(?:[_-][A-Za-z0-9]{1,2})?", stem) and folder.name:
        return f"{folder.name}_{stem}"
    return stem


def _scan_files(d: Path, files: list[Path], idx: _DirIndex, top: Path, nbi_dir: Path | None,
                specs: list[PairSpec], skipped: list[dict]) -> None:
    """Classify the files of one folder into cases (see module doc)."""
    images = [f for f in files if _is_image(f)]
    jsons = {f.stem.lower(): f for f in files if f.suffix.lower() == ".json" and not f.name.startswith(".")}
    labels: dict[str, list[Path]] = {}
    wli: dict[str, Path] = {}
    nbi: dict[str, Path] = {}
    ones: dict[str, Path] = {}
    twos: dict[str, Path] = {}
    plain: list[Path] = []
    for f in sorted(images + [j for j in jsons.values()]):
        stem = f.stem
        m = _RE_LABEL_12.match(stem) or _RE_LABEL_MOD.match(stem) or _RE_LABEL.match(stem)
        if m:
            labels.setdefault(m.group("key").lower(), []).append(f)
            continue
        if f.suffix.lower() == ".json":
            continue  # a same-stem labelme file is looked up per image below
        if (m := _RE_WLI.match(stem)) and nbi_dir is None:
            wli[m.group("key").lower()] = f
        elif (m := _RE_NBI.match(stem)) and nbi_dir is None:
            nbi[m.group("key").lower()] = f
        elif (m := _RE_ONE.match(stem)) and nbi_dir is None:
            ones[m.group("key")] = f
        elif (m := _RE_TWO.match(stem)) and nbi_dir is None:
            twos[m.group("key")] = f
        else:
            plain.append(f)
    # X_1 / X_2 only when they really are pairs, not a numbered sequence
    stems_here = {f.stem for f in images}
    for key in list(ones):
        if key in twos and f"{key}_3" not in stems_here:
            wli.setdefault(key.lower(), ones.pop(key))
            nbi.setdefault(key.lower(), twos.pop(key))
    plain += list(ones.values()) + list(twos.values())
    used_labels: set[str] = set()

    def find_label(key: str, image: Path) -> Path | None:
        if key.lower() in labels:
            used_labels.add(key.lower())
            return _prefer_image(labels[key.lower()])
        if image.stem.lower() in labels:
            used_labels.add(image.stem.lower())
            return _prefer_image(labels[image.stem.lower()])
        j = jsons.get(image.stem.lower())
        if j is not None and _looks_like_labelme(j):
            return j
        return _mask_in_folders(idx, d, [key, image.stem] if key != image.stem else [key], top)

    for key, w in sorted(wli.items()):
        n = nbi.pop(key, None)
        base = _RE_WLI.match(w.stem) or _RE_ONE.match(w.stem)
        name = base.group("key") if base else w.stem
        specs.append(PairSpec(w, n, find_label(name, w), name=_case_name(name, d)))
    for _key, n in sorted(nbi.items()):
        skipped.append({"path": str(n), "reason": "NBI without a matching WLI image"})
    for f in sorted(plain):
        n = None
        if nbi_dir is not None:
            cands = [p for p in idx.stems(nbi_dir).get(f.stem.lower(), []) if _is_image(p)]
            n = cands[0] if cands else None
        specs.append(PairSpec(f, n, find_label(f.stem, f), name=_case_name(f.stem, d)))
    if nbi_dir is not None:
        wli_stems = {f.stem.lower() for f in plain}
        for stem, paths in sorted(idx.stems(nbi_dir).items()):
            for p in paths:
                if _is_image(p) and stem not in wli_stems:
                    skipped.append({"path": str(p), "reason": "NBI without a matching WLI image"})
    for key, paths in sorted(labels.items()):
        if key not in used_labels:
            for p in paths:
                skipped.append({"path": str(p), "reason": "mask without a matching image"})


def _looks_like_labelme(path: Path) -> bool:
    try:
        if path.stat().st_size > 50 * 1024 * 1024:
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("shapes"), list)


def _scan_folder(src: Path) -> tuple[list[PairSpec], list[dict]]:
    specs: list[PairSpec] = []
    skipped: list[dict] = []
    idx = _DirIndex()
    top = src
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        d = Path(dirpath)
        dirnames.sort()
        lower = {n.lower(): n for n in dirnames}
        skip_dirs = {n for n in dirnames if n.startswith(".") or n.lower() in _MASK_DIRS}
        if "wli" in lower and "nbi" in lower:
            wdir, ndir = d / lower["wli"], d / lower["nbi"]
            wfiles = sorted(p for p in wdir.iterdir() if p.is_file())
            _scan_files(wdir, wfiles, idx, top, ndir, specs, skipped)
            skip_dirs |= {lower["wli"], lower["nbi"]}
        dirnames[:] = [n for n in dirnames if n not in skip_dirs]
        files = [d / f for f in sorted(filenames)]
        if files:
            _scan_files(d, files, idx, top, None, specs, skipped)
    _apply_coco(src, specs, skipped)
    return specs, skipped


def _apply_coco(src: Path, specs: list[PairSpec], skipped: list[dict]) -> None:
    """Give cases without a mask file their mask from any COCO file in the tree."""
    coco = _CocoMasks()
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        dirnames[:] = [n for n in dirnames if not n.startswith(".")]
        for f in filenames:
            if f.lower().endswith(".json") and not f.startswith("."):
                coco.add_file(Path(dirpath) / f)
    skipped += coco.errors
    if not coco.by_path:
        return
    for spec in specs:
        if spec.label is None:
            hit = coco.find(spec.wli)
            if hit is not None:
                spec.mask, spec.label = hit


def _scan_csv(src: Path) -> tuple[list[PairSpec], list[dict]]:
    specs: list[PairSpec] = []
    skipped: list[dict] = []
    base = src.parent
    try:
        with open(src, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
            header = [h.strip().lower() for h in (rows[0].keys() if rows else [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return [], [{"path": str(src), "reason": f"CSV unreadable ({exc})"}]
    if rows and "wli_path" not in header:
        return [], [{"path": str(src), "reason": "CSV has no wli_path column in its header"}]
    for i, row in enumerate(rows, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        where = f"{src}:{i}"

        def resolve(col: str, row=row, where=where) -> tuple[Path | None, str | None]:
            val = row.get(col, "")
            if not val:
                return None, None
            p = Path(val)
            p = p if p.is_absolute() else base / p
            if not is_inside(p, base):
                return None, f"{col} {val!r} escapes the CSV's folder"
            return p, None

        wli, err = resolve("wli_path")
        if err or wli is None:
            skipped.append({"path": where, "reason": err or "empty wli_path"})
            continue
        nbi, err = resolve("nbi_path")
        if err:
            skipped.append({"path": where, "reason": err})
            continue
        label, err = resolve("label_path")
        if err:
            skipped.append({"path": where, "reason": err})
            continue
        name = (_RE_WLI.match(wli.stem) or _RE_ONE.match(wli.stem))
        specs.append(PairSpec(wli, nbi, label, row.get("patient_id") or None,
                              name=name.group("key") if name else wli.stem))
    return specs, skipped


def discover(src: os.PathLike | str) -> tuple[list[PairSpec], list[dict]]:
    """The cases a folder, CSV or single image holds, and the files skipped while finding them."""
    p = Path(src)
    if not p.exists():
        raise ImportSourceError(f"source not found: {p}")
    if p.is_dir():
        return _scan_folder(p)
    if p.suffix.lower() == ".csv":
        return _scan_csv(p)
    if _is_image(p):
        return [PairSpec(p, None, None, name=p.stem)], []
    return [], [{"path": str(p), "reason": "not a folder, CSV or image"}]


# ---------------------------------------------------------------------------------- masks
def rasterise_labelme(path: os.PathLike | str, size: tuple[int, int] | None = None) -> np.ndarray:
    """A labelme JSON as a bool mask (union of its polygon / rectangle / circle / mask shapes).

    ``size`` = (width, height) of the image: used when the JSON lacks ``imageWidth`` /
    ``imageHeight`` and checked against them otherwise. Raises ImageReadError with the reason.
    """
    from training.annotations import AnnotationError, mask_from_labelme

    try:
        return mask_from_labelme(path, shape=None if size is None else (size[1], size[0]))
    except AnnotationError as exc:
        reason = str(exc)
        prefix = f"{path}: "
        raise ImageReadError(path, reason[len(prefix):] if reason.startswith(prefix) else reason) from None


class _CocoMasks:
    """Masks of the COCO files in a source tree, looked up by image path (or unique file name)."""

    def __init__(self) -> None:
        self.by_path: dict[Path, tuple[np.ndarray, Path]] = {}
        self.by_name: dict[str, tuple[np.ndarray, Path] | None] = {}
        self.errors: list[dict] = []

    def add_file(self, path: Path) -> None:
        from training.annotations import AnnotationError, masks_from_coco

        try:
            with open(path, "rb") as fh:
                head = fh.read(1 << 16)
            if b'"images"' not in head and b'"annotations"' not in head:
                return
            masks = masks_from_coco(path)
        except OSError:
            return
        except AnnotationError as exc:
            if b'"images"' in head:
                self.errors.append({"path": str(path), "reason": f"COCO file unusable: {exc}"})
            return
        for file_name, mask in masks.items():
            entry = (mask, path)
            self.by_path[_resolved(path.parent / file_name)] = entry
            base = Path(file_name).name.lower()
            self.by_name[base] = None if base in self.by_name else entry

    def find(self, image: Path) -> tuple[np.ndarray, Path] | None:
        hit = self.by_path.get(_resolved(image))
        return hit if hit is not None else self.by_name.get(image.name.lower())


def _resolved(p: Path) -> Path:
    try:
        return p.resolve()
    except (OSError, RuntimeError):
        return p.absolute()


def _wli_size(path: Path) -> tuple[int, int] | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(256 * 1024)
        size = image_size(head)
        if size is None:
            img = read_rgb(path)
            size = (img.shape[1], img.shape[0])
        return size
    except (OSError, ImageReadError):
        return None


# ---------------------------------------------------------------------------------- import
def import_sources(ws: Workspace, sources: Iterable[os.PathLike | str], patient_id: str | None = None,
                   register: bool = True, progress: Callable[[int, int], None] | None = None,
                   label_value: int | None = None, nbi_synthetic: bool = False, masks: bool = True,
                   video_settings: VideoSettings | None = None) -> dict:
    """Import every case the sources hold; returns ``{"imported", "skipped", "cases", "case_ids"}``.

    ``masks=False`` imports the pairs only (the demo workspace: the model's prediction is what a
    clinician should see first, not the public ground truth). Videos (given or inside a folder)
    go through ``training.video_import`` with ``video_settings``; the summary then has ``"video"``.

    Raises ImportSourceError for a missing source and WorkspaceError when the workspace cannot
    be written (both fatal); a bad file only adds an entry to ``skipped``.
    """
    specs: list[PairSpec] = []
    skipped: list[dict] = []
    sources = list(sources)
    videos = find_videos(sources)
    for src in sources:
        if is_video(src) and Path(src).is_file():
            continue
        s, k = discover(src)
        specs += s
        skipped += k
    if not masks:
        for spec in specs:
            spec.label, spec.mask = None, None
    imported: list[str] = []
    total = len(specs)
    if progress is not None:
        progress(0, total)
    for i, spec in enumerate(specs, start=1):
        try:
            cid, reason = _import_one(ws, spec, patient_id, register, label_value, nbi_synthetic)
        except WorkspaceError:
            raise
        except (ImageReadError, OSError, ValueError) as exc:
            cid, reason = None, getattr(exc, "reason", None) or str(exc)  # a Message stays one (translated in the UI)
        except Exception as exc:  # noqa: BLE001 - one odd file (cv2.error, MemoryError...) never aborts the batch
            cid, reason = None, f"{type(exc).__name__}: {exc}"
        if cid is not None:
            imported.append(cid)
        else:
            skipped.append({"path": str(spec.wli), "reason": reason or "skipped"})
        if progress is not None:
            progress(i, total)
    if videos:
        vs = import_videos(ws, videos, video_settings or VideoSettings(), patient_id,
                           progress=None if progress is None else lambda _s, d, t: progress(d, t))
        imported += vs["case_ids"]
        skipped += vs["skipped"]
        return {"imported": len(imported), "skipped": skipped, "cases": ws.case_count(), "case_ids": imported,
                "video": vs["video"]}
    return {"imported": len(imported), "skipped": skipped, "cases": ws.case_count(), "case_ids": imported}


def _import_one(ws: Workspace, spec: PairSpec, patient_id: str | None, register: bool,
                label_value: int | None, nbi_synthetic: bool) -> tuple[str | None, str | None]:
    mask = spec.mask
    if mask is None and spec.label is not None and spec.label.suffix.lower() == ".json":
        try:
            mask = rasterise_labelme(spec.label, _wli_size(spec.wli))
        except ImageReadError as exc:
            return None, f"mask: {exc.reason}"
    return ws.import_pair(spec.wli, spec.nbi, spec.label, spec.patient_id or patient_id,
                          nbi_synthetic=nbi_synthetic, register=register, case_name=spec.name,
                          label_value=label_value, mask=mask)


# ------------------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training import",
        description="Import WLI/NBI pairs (folders, CSV files) or endoscopy videos into a workspace; prints a "
                    "JSON summary last.")
    p.add_argument("sources", nargs="+", metavar="SRC", help="folder, CSV (wli_path,nbi_path[,label_path]"
                   "[,patient_id]), image or video")
    p.add_argument("--workspace", required=True, metavar="WS", help="workspace folder (created if missing)")
    p.add_argument("--patient-id", default=None, help="patient id for every case (a CSV column overrides)")
    p.add_argument("--no-register", action="store_true", help="do not register NBI to WLI (identity)")
    p.add_argument("--label-value", type=int, default=None,
                   help="masks are class maps: tumour = pixels equal to this value (vocalfolds: 4)")
    p.add_argument("--synthetic-nbi", action="store_true", help="mark the NBI images as synthetic (pseudo-NBI)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    v = p.add_argument_group("videos (mp4, avi, mov, mkv, mpg, ...)")
    v.add_argument("--wli-only", action="store_true",
                   help="also import WLI-only cases from scenes never seen in NBI")
    v.add_argument("--keep-text", action="store_true",
                   help="keep burned-in text (patient name, date) instead of blacking it out")
    v.add_argument("--max-gap", type=float, default=VideoSettings.max_gap_s, metavar="S",
                   help="an NBI frame and its WLI partner at most S seconds apart (default %(default)s)")
    v.add_argument("--pairs-per-segment", type=int, default=VideoSettings.per_segment, metavar="N",
                   help="pairs wanted per NBI segment (default %(default)s)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry; returns the exit code (0 when everything was imported or skipped cleanly)."""
    args = _parser().parse_args(argv)
    for s in args.sources:
        if not Path(s).exists():
            print(f"error: source not found: {s}", file=sys.stderr)
            return 2
    try:
        ws = Workspace.open(args.workspace, create=True)
    except WorkspaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:  # a workspace always has an active model (DESIGN.md): the bundled one when it has none
        active_model = ws.ensure_active_model()
    except WorkspaceError as exc:
        active_model = None
        print(f"warning: no model is active in {ws.root} and the bundled model could not be registered: {exc}",
              file=sys.stderr)
    try:
        with ProgressBar("import", quiet=args.quiet) as progress:
            summary = import_sources(ws, args.sources, patient_id=args.patient_id, register=not args.no_register,
                                     progress=progress, label_value=args.label_value,
                                     nbi_synthetic=args.synthetic_nbi,
                                     video_settings=VideoSettings(wli_only=args.wli_only, keep_text=args.keep_text,
                                                                  max_gap_s=args.max_gap,
                                                                  per_segment=args.pairs_per_segment))
    except (WorkspaceError, ImportSourceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        ws.close()
    out = {"imported": summary["imported"], "skipped": summary["skipped"], "cases": summary["cases"],
           "active_model": active_model}
    if "video" in summary:
        out["video"] = summary["video"]
    print(json.dumps(out))
    return 0
