"""training/export.py: the four layouts read back, patient-level split, de-identification,
path safety, DIR policy, zero cases, the CLI, and the round trip through the real importer."""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import ROOT, TEST_DATA, make_fixture_pairs
from training import importer
from training.annotations import dice, mask_from_labelme, masks_from_coco
from training.export import (
    MANIFEST_COLUMNS,
    MARKER_NAME,
    SECRET_NAME,
    ExportCancelled,
    ExportError,
    _Staging,
    export_dataset,
    split_by_patient,
)
from training.imageio import read_mask, read_rgb
from training.store import Workspace


# ------------------------------------------------------------------------------- helpers
def _manifest(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and tuple(rows[0].keys()) == MANIFEST_COLUMNS
    return rows


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _ws_mask_by_pixels(ws: Workspace) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(WLI pixels, latest mask, case id) of every case with a revision: matches exports by content."""
    out = []
    for c in ws.cases():
        m = ws.latest_mask(c.id)
        if m is not None:
            out.append((ws.load_wli(c.id), m, c.id))
    return out


def _match(table: list[tuple[np.ndarray, np.ndarray, str]], wli: np.ndarray) -> tuple[np.ndarray, str]:
    hits = [(m, cid) for w, m, cid in table if w.shape == wli.shape and np.array_equal(w, wli)]
    assert len(hits) == 1, "exported WLI must equal exactly one workspace WLI pixel for pixel"
    return hits[0]


def _png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i, kinds = 8, []
    while i < len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        kinds.append(data[i + 4:i + 8])
        i += 12 + n
    return kinds


def _import(ws: Workspace, d: Path, name: str, patient: str | None, mask: bool = True,
            nbi: bool = True) -> str:
    cid, reason = ws.import_pair(next(d.glob(f"{name}_wli.*")), d / f"{name}_nbi.png" if nbi else None,
                                 d / f"{name}_mask.png" if mask else None, patient_id=patient, register=False,
                                 nbi_synthetic=True)
    assert reason is None, reason
    return cid


@pytest.fixture
def ws3(workspace: Workspace, tmp_path: Path) -> Workspace:
    """3 fixture pairs with masks, imported without registration (fast); the first gets a known
    NBI->WLI homography (a shift and a slight scale) so the export must warp its NBI."""
    d = tmp_path / "three"
    for name in make_fixture_pairs(d, 3):
        _import(workspace, d, name, None)
    first = workspace.cases()[0].id
    workspace.set_homography(first, np.array([[1.02, 0.0, 3.0], [0.0, 0.98, -2.0], [0.0, 0.0, 1.0]]))
    return workspace


@pytest.fixture
def patient_workspace(workspace: Workspace, tmp_path: Path) -> Workspace:
    """6 cases: P1 x2, P2 x2, 2 without a patient (one WLI-only); the last gets a human correction."""
    d = tmp_path / "six"
    names = make_fixture_pairs(d, 6, seed=3)
    for name, pid in zip(names, ["P1", "P1", "P2", "P2", None, None], strict=True):
        _import(workspace, d, name, pid, nbi=name != names[4])
    c = workspace.cases()[-1]
    m = workspace.latest_mask(c.id).copy()
    m[:10, :10] = True
    workspace.add_revision(c.id, m, "human", "Dr. Jane Roe")
    return workspace


# ---------------------------------------------------------------------------- the formats
def test_folder_layout_reads_back(ws3: Workspace, tmp_path: Path) -> None:
    ws = ws3
    out = tmp_path / "out"
    s = export_dataset(ws, out, "folder", val_fraction=0.34)
    assert s["format"] == "folder" and s["cases"] == 3 and s["train"] + s["val"] == 3 and s["val"] >= 1
    assert s["out"] == str(out.resolve())
    rows = _manifest(out)
    table = _ws_mask_by_pixels(ws)
    for r in rows:
        n = r["id"]
        wli = read_rgb(out / "images" / f"{n}_wli.png")
        mask_ws, cid = _match(table, wli)
        assert np.array_equal(read_mask(out / "masks" / f"{n}.png"), mask_ws)
        raw = cv2.imread(str(out / "masks" / f"{n}.png"), cv2.IMREAD_UNCHANGED)
        assert set(np.unique(raw)) <= {0, 255}
        c = ws.case(cid)
        h, w = wli.shape[:2]
        expect_nbi = cv2.warpPerspective(ws.load_nbi(cid), c.homography, (w, h))
        assert np.array_equal(read_rgb(out / "images" / f"{n}_nbi.png"), expect_nbi)  # NBI in WLI space
        assert r["source"] == "import" and r["author_role"] == "import" and r["revision"] == "1"
        assert r["nbi"] == "synthetic" and r["split"] in ("train", "val")
        assert r["mask_sha256"] == hashlib.sha256((out / r["label_file"]).read_bytes()).hexdigest()
    assert sum(r["split"] == "val" for r in rows) == s["val"]


def test_coco_reads_back_through_own_rasterisation(ws3: Workspace, tmp_path: Path) -> None:
    ws = ws3
    out = tmp_path / "coco"
    s = export_dataset(ws, out, "coco")
    doc = json.loads((out / "annotations.json").read_text())
    assert doc["categories"] == [{"id": 1, "name": "tumor", "supercategory": "lesion"}]
    assert len(doc["images"]) == s["cases"] == 3
    assert all(a["iscrowd"] == 0 and a["category_id"] == 1 for a in doc["annotations"])
    masks = masks_from_coco(out / "annotations.json")
    table = _ws_mask_by_pixels(ws)
    for im in doc["images"]:
        wli = read_rgb(out / im["file_name"])  # file_name is relative to the JSON's folder
        assert (im["height"], im["width"]) == wli.shape[:2]
        truth, _ = _match(table, wli)
        got = masks[im["file_name"]]
        assert dice(got, truth) >= 0.99
        assert np.array_equal(got, truth)  # RLE is exact
        assert (out / im["nbi_file_name"]).is_file()
    assert not (out / "pairs.csv").exists() and not (out / "masks").exists()


def test_nnunet_layout_dataset_json_and_labels(patient_workspace: Workspace, tmp_path: Path) -> None:
    ws = patient_workspace
    out = tmp_path / "nn"
    s = export_dataset(ws, out, "nnunet", val_fraction=0.3, dataset_id=7)
    ds = out / "Dataset007_ADFViewer"
    meta = json.loads((ds / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "tumor": 1}
    assert meta["file_ending"] == ".png"
    assert meta["numTraining"] == s["train"] == len(list((ds / "labelsTr").glob("*.png")))
    # nnU-Net's PNG reader gives 3 channels per RGB file and checks them against channel_names
    assert len(meta["channel_names"]) == 6 and meta["channel_names"]["0"].startswith("WLI")
    assert meta["channel_names"]["3"].startswith("NBI")
    rows = _manifest(out)
    assert s["val"] >= 1
    for r in rows:
        n = r["id"]
        img_dir, lab_dir = ("imagesTr", "labelsTr") if r["split"] == "train" else ("imagesTs", "labelsTs")
        wli = cv2.imread(str(ds / img_dir / f"{n}_0000.png"), cv2.IMREAD_UNCHANGED)
        nbi = cv2.imread(str(ds / img_dir / f"{n}_0001.png"), cv2.IMREAD_UNCHANGED)
        lab = cv2.imread(str(ds / lab_dir / f"{n}.png"), cv2.IMREAD_UNCHANGED)
        assert wli.shape == nbi.shape and wli.shape[:2] == lab.shape and lab.ndim == 2
        assert set(np.unique(lab)) <= {0, 1} and lab.max() == 1
        if r["nbi"] == "none":
            assert not nbi.any()  # WLI-only: the NBI channel is zeros
    assert sum(r["nbi"] == "none" for r in rows) == 1
    assert any("zeros" in note for note in s["notes"])
    ids_tr = {p.name[:-9] for p in (ds / "imagesTr").glob("*_0000.png")}
    assert ids_tr == {r["id"] for r in rows if r["split"] == "train"}
    assert {p.stem for p in (ds / "labelsTs").glob("*.png")} == {r["id"] for r in rows if r["split"] == "val"}


def test_labelme_one_json_per_wli_image(ws3: Workspace, tmp_path: Path) -> None:
    ws = ws3
    out = tmp_path / "lm"
    export_dataset(ws, out, "labelme")
    table = _ws_mask_by_pixels(ws)
    jsons = sorted((out / "images").glob("*.json"))
    assert len(jsons) == 3
    for j in jsons:
        doc = json.loads(j.read_text())
        assert doc["imageData"] is None
        assert not Path(doc["imagePath"]).is_absolute() and (j.parent / doc["imagePath"]).is_file()
        assert doc["shapes"] and all(sh["shape_type"] == "polygon" for sh in doc["shapes"])
        truth, _ = _match(table, read_rgb(j.parent / doc["imagePath"]))
        assert dice(mask_from_labelme(j), truth) >= 0.99


# ------------------------------------------------------------------------------------ split
def test_split_is_by_patient_and_deterministic(patient_workspace: Workspace, tmp_path: Path) -> None:
    ws = patient_workspace
    splits = set()
    for seed in range(6):
        out = tmp_path / f"s{seed}"
        s = export_dataset(ws, out, "folder", val_fraction=0.4, seed=seed)
        rows = _manifest(out)
        by_patient: dict[str, set] = {}
        for r in rows:
            by_patient.setdefault(r["patient"], set()).add(r["split"])
        assert all(len(v) == 1 for v in by_patient.values()), by_patient   # no patient in two splits
        assert len(by_patient) == 4        # P1, P2 and two cases that are their own patient
        assert 1 <= s["val"] <= 4 and s["train"] >= 1
        splits.add(frozenset(r["id"] for r in rows if r["split"] == "val"))
        again = export_dataset(ws, tmp_path / f"t{seed}", "folder", val_fraction=0.4, seed=seed)
        assert again["val"] == s["val"]
        assert {r["id"] for r in _manifest(tmp_path / f"t{seed}") if r["split"] == "val"} == \
               {r["id"] for r in rows if r["split"] == "val"}
    assert len(splits) >= 2  # the seed matters


def test_split_by_patient_unit() -> None:
    groups = {f"p{i}": 1 + i % 3 for i in range(20)}   # 40 cases
    val = split_by_patient(groups, 0.25, seed=1)
    n_val = sum(groups[k] for k in val)
    assert 8 <= n_val <= 12
    assert split_by_patient(groups, 0.25, seed=1) == val
    assert split_by_patient(groups, 0.0) == set()
    assert split_by_patient({"a": 5}, 0.5) == set()                       # one patient: all train
    assert len(split_by_patient({"a": 5, "b": 5}, 0.1)) == 1              # at least one val patient
    assert len(split_by_patient({"a": 1, "b": 1}, 0.99)) == 1             # never all of them
    with pytest.raises(ValueError):
        split_by_patient(groups, 1.0)


# ------------------------------------------------------------------------- de-identification
SECRET_TEXT = b"PATIENT Jane Doe 1961-02-03"


def _png_with_text(src_png: bytes) -> bytes:
    body = b"Comment\x00" + SECRET_TEXT
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    end_ihdr = 8 + 12 + 13
    return src_png[:end_ihdr] + chunk + src_png[end_ihdr:]


def _jpeg_with_exif(src_jpg: bytes) -> bytes:
    desc = SECRET_TEXT + b"\x00"
    # TIFF (little endian): header, IFD0 with one ImageDescription entry, next-IFD 0, then the text
    ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x010E, 2, len(desc), 8 + 2 + 12 + 4) + struct.pack("<I", 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd + desc
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    assert src_jpg[:2] == b"\xff\xd8"
    return src_jpg[:2] + app1 + src_jpg[2:]


def test_no_metadata_survives(workspace: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "meta"
    src.mkdir()
    png = _png_with_text((TEST_DATA / "vf_0041.png").read_bytes())
    jpg = _jpeg_with_exif((TEST_DATA / "kv_cju0qkwl.jpg").read_bytes())
    assert b"tEXt" in png and b"Exif" in jpg and SECRET_TEXT in png and SECRET_TEXT in jpg
    (src / "smith_john_wli.png").write_bytes(png)
    (src / "smith_john_nbi.jpg").write_bytes(jpg)
    (src / "doe_jane_wli.jpg").write_bytes(jpg)
    a, _ = workspace.import_pair(src / "smith_john_wli.png", src / "smith_john_nbi.jpg",
                                 TEST_DATA / "vf_0041_mask.png", patient_id="MRN-123456", register=False)
    b, _ = workspace.import_pair(src / "doe_jane_wli.jpg", None, TEST_DATA / "kv_cju0qkwl_mask.png",
                                 patient_id="MRN-654321")
    assert a and b
    # the workspace keeps the original bytes (metadata included): the export must drop it
    assert SECRET_TEXT in workspace.case(a).wli_path.read_bytes()
    for fmt in ("folder", "coco", "nnunet", "labelme"):
        out = tmp_path / f"out_{fmt}"
        export_dataset(workspace, out, fmt)
        files = _files(out)
        assert files
        for rel, data in files.items():
            for needle in (SECRET_TEXT, b"Exif", b"smith", b"john", b"doe_jane", b"MRN-", b"Jane Roe"):
                assert needle not in data, f"{needle!r} in {fmt}:{rel}"
                assert needle.decode() not in rel
            assert a not in rel and b not in rel
            if rel.endswith(".png"):
                assert set(_png_chunks(data)) <= {b"IHDR", b"IDAT", b"IEND"}, rel
        assert sum(rel.endswith(".png") for rel in files) >= 3


def test_pseudonyms_are_stable_and_keep_ids_keeps_ids(ws3: Workspace, tmp_path: Path) -> None:
    ws = ws3
    export_dataset(ws, tmp_path / "a", "folder")
    secret = (ws.root / SECRET_NAME).read_text().strip()
    assert len(secret) == 64 and int(secret, 16) >= 0
    export_dataset(ws, tmp_path / "b", "nnunet")
    ids_a = {r["id"] for r in _manifest(tmp_path / "a")}
    assert ids_a == {r["id"] for r in _manifest(tmp_path / "b")}
    assert not ids_a & {c.id for c in ws.cases()}
    assert (ws.root / SECRET_NAME).read_text().strip() == secret    # created once, then reused
    export_dataset(ws, tmp_path / "k", "folder", keep_ids=True)
    assert {r["id"] for r in _manifest(tmp_path / "k")} == {c.id for c in ws.cases()}
    assert ws.events(kind="export")[-1]["detail"]["format"] == "folder"


# ------------------------------------------------------------------------------ path safety
def _snapshot(root: Path, skip: list[Path]) -> dict[str, float]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        dirnames[:] = [n for n in dirnames if d / n not in skip]
        for f in filenames + dirnames:
            out[str(d / f)] = (d / f).lstat().st_mtime
    return out


def test_path_traversal_in_ids_cannot_escape(workspace: Workspace, tmp_path: Path) -> None:
    d = tmp_path / "p"
    names = make_fixture_pairs(d, 3)
    ws = workspace
    evil = [("../../evil", "../x"), ("/tmp/abs_evil", "/etc/passwd"), ("..", "..\\..\\win")]
    for name, (case_name, pid) in zip(names, evil, strict=True):
        cid, reason = ws.import_pair(next(d.glob(f"{name}_wli.*")), d / f"{name}_nbi.png", d / f"{name}_mask.png",
                                     patient_id=pid, case_name=case_name, register=False)
        assert reason is None
    out = tmp_path / "deep" / "out"
    before = _snapshot(tmp_path.parent, [out, ws.root])
    for fmt, keep in (("folder", True), ("nnunet", True), ("labelme", False), ("coco", True)):
        target = out / fmt
        export_dataset(ws, target, fmt, keep_ids=keep)
        for p in target.rglob("*"):
            assert p.resolve().is_relative_to(target.resolve()), p
    after = _snapshot(tmp_path.parent, [out, ws.root])
    assert set(after) - set(before) == {str(tmp_path / "deep")}   # only DIR's parent was created
    assert not (tmp_path / "evil").exists() and not Path("/tmp/abs_evil").exists()


class _RawIdWorkspace:
    """A workspace whose case ids are hostile (the store never makes such ids; the exporter must cope)."""

    def __init__(self, ws: Workspace, ids: list[str]) -> None:
        self._ws, self.root, self.readonly = ws, ws.root, ws.readonly
        self._map = dict(zip(ids, [c.id for c in ws.cases()], strict=True))
        self._back = {v: k for k, v in self._map.items()}

    def cases(self, status=None):
        return [dataclasses.replace(c, id=self._back[c.id]) for c in self._ws.cases(status)]

    def latest_revision(self, cid, sources=None):
        return self._ws.latest_revision(self._map[cid], sources)

    def load_wli(self, cid):
        return self._ws.load_wli(self._map[cid])

    def load_nbi(self, cid):
        return self._ws.load_nbi(self._map[cid])

    def load_mask(self, rev):
        return self._ws.load_mask(rev)

    def log_event(self, *a, **k):
        return self._ws.log_event(*a, **k)


def test_hostile_raw_ids_and_names_are_refused_or_sanitised(ws3: Workspace, tmp_path: Path) -> None:
    raw = _RawIdWorkspace(ws3, ["../../../escape", "/abs/escape", "a/../../b"])
    out = tmp_path / "o"
    s = export_dataset(raw, out, "folder", keep_ids=True)
    assert s["cases"] == 3
    ids = [r["id"] for r in _manifest(out)]
    assert len(set(ids)) == 3 and all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", i) and ".." not in i
                                      for i in ids), ids
    assert all(p.resolve().is_relative_to(out.resolve()) for p in out.rglob("*"))
    assert not (tmp_path.parent / "escape").exists() and not Path("/abs").exists()
    st = _Staging(tmp_path / "st")
    for bad in (("..", "x"), ("/etc", "x"), ("a/b",), ("..\\x",), ("",), (".hidden",)):
        with pytest.raises(ExportError):
            st.path(*bad)


def test_tampered_marker_cannot_delete_outside(ws3: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "o"
    export_dataset(ws3, out, "folder")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    marker = json.loads((out / MARKER_NAME).read_text())
    marker["entries"] += ["../victim.txt", str(victim), ".."]
    (out / MARKER_NAME).write_text(json.dumps(marker))
    export_dataset(ws3, out, "coco")
    assert victim.read_text() == "keep me"


# ------------------------------------------------------------------------------- DIR policy
def test_out_dir_policy(ws3: Workspace, tmp_path: Path) -> None:
    ws = ws3
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty"):
        export_dataset(ws, busy, "folder")
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    export_dataset(ws, busy, "folder", force=True)          # beside the user's file, nothing replaced
    assert (busy / "notes.txt").read_text() == "mine" and (busy / "masks").is_dir()
    # a previous export is replaced (its stale entries go), the user's files stay
    export_dataset(ws, busy, "coco")
    names = sorted(p.name for p in busy.iterdir())
    assert names == sorted([MARKER_NAME, "annotations.json", "images", "manifest.csv", "notes.txt"])
    assert len(list((busy / "images").glob("*_wli.png"))) == 3
    # a clash with a file that is not ours is refused even with force
    clash = tmp_path / "clash"
    (clash / "images").mkdir(parents=True)
    with pytest.raises(ExportError, match="images"):
        export_dataset(ws, clash, "folder", force=True)
    # refusing to write into the workspace itself
    with pytest.raises(ExportError):
        export_dataset(ws, ws.root / "masks" / "x", "folder")


def test_cancel_leaves_nothing(ws3: Workspace, tmp_path: Path) -> None:
    seen = []

    def progress(done: int, total: int) -> bool:
        seen.append((done, total))
        return done < 2

    out = tmp_path / "new"
    with pytest.raises(ExportCancelled):
        export_dataset(ws3, out, "folder", progress=progress)
    assert seen[:3] == [(0, 3), (1, 3), (2, 3)]
    assert not out.exists()
    prev = tmp_path / "prev"
    export_dataset(ws3, prev, "labelme")
    before = _files(prev)
    with pytest.raises(ExportCancelled):
        export_dataset(ws3, prev, "folder", progress=progress)
    assert _files(prev) == before   # the previous export is untouched


# ------------------------------------------------------------------------ zero cases / CLI
def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "training", "export", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_zero_cases_says_so_and_fails(workspace: Workspace, tmp_path: Path) -> None:
    workspace.import_pair(TEST_DATA / "vf_0041.png")            # a case without any mask
    with pytest.raises(ExportError, match="nothing to export"):
        export_dataset(workspace, tmp_path / "x", "folder")
    out = tmp_path / "zero"
    r = _cli("--workspace", str(workspace.root), "--format", "coco", "--out", str(out))
    assert r.returncode != 0
    assert "nothing to export" in r.stderr and r.stdout.strip() == ""
    assert not out.exists()


def test_cli_prints_summary_json_last(ws3: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    r = _cli("--workspace", str(ws3.root), "--format", "nnunet", "--out", str(out),
             "--status", "corrected,approved", "--val-fraction", "0.34", "--seed", "3")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(summary) == {"format", "cases", "train", "val", "out"}
    assert summary["format"] == "nnunet" and summary["cases"] == 3 and summary["train"] + summary["val"] == 3
    assert "3/3" in r.stderr  # the tqdm bar went to stderr
    assert Path(summary["out"]) == out.resolve() and (out / "Dataset500_ADFViewer" / "dataset.json").is_file()
    bad = _cli("--workspace", str(ws3.root), "--format", "folder", "--out", str(tmp_path / "b"),
               "--status", "bogus")
    assert bad.returncode != 0 and "bogus" in bad.stderr


# ------------------------------------------------------------------------------ round trip
def test_round_trip_import_correct_export_import(patient_workspace: Workspace, tmp_path: Path) -> None:
    """import -> correct -> export -> import the export -> same masks, pixel for pixel."""
    ws = patient_workspace
    cases = ws.cases()
    ws.set_status(cases[0].id, "approved")
    m = ws.latest_mask(cases[1].id)
    ws.add_revision(cases[1].id, m, "model", "model", model_id="adf-tiny")   # approved model mask
    ws.set_status(cases[1].id, "approved")
    ws.set_status(cases[2].id, "in_progress")                                # not exported
    truth = {cid: msk for _, msk, cid in _ws_mask_by_pixels(ws) if cid != cases[2].id}
    for fmt in ("folder", "nnunet", "labelme", "coco"):
        out = tmp_path / f"rt_{fmt}"
        s = export_dataset(ws, out, fmt)
        assert s["cases"] == 5
        rows = {r["id"]: r for r in _manifest(out)}
        roles = sorted(r["author_role"] for r in rows.values())
        assert roles == ["clinician", "import", "import", "import", "model"]
        assert [r["model_id"] for r in rows.values() if r["author_role"] == "model"] == ["adf-tiny"]
        if fmt == "coco":  # the importer has no COCO reader yet: read it with ours
            got = masks_from_coco(out / "annotations.json")
            table = _ws_mask_by_pixels(ws)
            for name, mk in got.items():
                assert np.array_equal(mk, _match(table, read_rgb(out / name))[0])
            assert len(got) == 5
            continue
        ws2 = Workspace.open(tmp_path / f"ws2_{fmt}", create=True)
        try:
            summary = importer.import_sources(ws2, [out / "pairs.csv"], register=False)
            assert summary["imported"] == 5 and not summary["skipped"]
            table = _ws_mask_by_pixels(ws)
            for c in ws2.cases():
                back = ws2.latest_mask(c.id)
                orig, cid = _match(table, ws2.load_wli(c.id))
                assert cid in truth
                row = rows[c.id.removesuffix("_0000")]   # nnU-Net's WLI file is <id>_0000.png
                assert c.patient_id == row["patient"]          # pseudonyms carried
                if fmt == "labelme":
                    assert dice(back, orig) >= 0.99
                else:
                    assert np.array_equal(back, orig), f"{fmt}: mask of {cid} changed"
        finally:
            ws2.close()
