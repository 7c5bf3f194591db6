"""training/importer.py: every discovery rule, every kind of bad file, re-import, the CLI."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import ROOT, TEST_DATA, make_fixture_pairs
from training import store as store_mod
from training.imageio import read_mask, read_rgb
from training.importer import discover, import_sources, main, rasterise_labelme
from training.store import Workspace


def _ws_files(ws: Workspace) -> list[str]:
    return sorted(p.relative_to(ws.root).as_posix() for p in ws.root.rglob("*")
                  if p.is_file() and p.parent != ws.root)


def _copy(name: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TEST_DATA / name, dest)
    return dest


# ------------------------------------------------------------------------ rules
def test_rule_wli_nbi_suffix(workspace: Workspace, fixture_pair_dir: Path) -> None:
    s = import_sources(workspace, [fixture_pair_dir], patient_id="P7")
    assert (s["imported"], s["skipped"], s["cases"]) == (3, [], 3)
    for c in workspace.cases():
        assert c.nbi_path is not None and c.status == "corrected" and c.patient_id == "P7"
        assert c.reg_quality == "good"
        assert workspace.history(c.id)[0].source == "import"
    assert sorted(c.id for c in workspace.cases()) == ["vf_0041", "vf_0055", "vf_0070"]


def test_rule_wli_nbi_folders_with_masks_folder(workspace: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "study"
    _copy("vf_0041.png", src / "WLI" / "a.png")
    _copy("vf_0055.png", src / "WLI" / "b.png")
    _copy("vf_0041.png", src / "NBI" / "a.png")  # a real NBI would differ; identical is fine here
    _copy("vf_0041_mask.png", src / "masks" / "a.png")
    _copy("vf_0070.png", src / "NBI" / "orphan.png")
    s = import_sources(workspace, [src], register=False)
    assert s["imported"] == 2
    assert [(Path(k["path"]).name, k["reason"]) for k in s["skipped"]] == [
        ("orphan.png", "NBI without a matching WLI image")]
    a, b = workspace.case("a"), workspace.case("b")
    assert a.nbi_path is not None and b.nbi_path is None
    assert np.array_equal(workspace.latest_mask("a"), read_mask(TEST_DATA / "vf_0041_mask.png"))
    assert a.status == "corrected" and b.status == "new"


def test_rule_numbered_1_2_with_label(workspace: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "p"
    _copy("vf_0041.png", src / "case7_1.png")
    _copy("vf_0055.png", src / "case7_2.png")
    _copy("vf_0041_mask.png", src / "case7_1_label.png")
    # a numbered sequence is not a set of pairs
    for i, n in enumerate(["vf_0070.png", "kv_cju0qkwl.jpg", "kv_cju0s2a9.jpg"], start=1):
        _copy(n, src / f"frame_{i}{Path(n).suffix}")
    s = import_sources(workspace, [src], register=False)
    assert s["imported"] == 4 and s["skipped"] == []
    c = workspace.case("case7")
    assert c.nbi_path is not None and c.status == "corrected"
    assert np.array_equal(workspace.load_nbi("case7"), read_rgb(TEST_DATA / "vf_0055.png"))
    assert {"frame_1", "frame_2", "frame_3"} <= {x.id for x in workspace.cases()}
    assert workspace.case("frame_2").nbi_path is None


def test_rule_wli_only_images_masks_layout_and_class_maps(workspace: Workspace, tmp_path: Path) -> None:
    # kvasir-like: images/ + masks/ siblings
    kv = tmp_path / "kv"
    _copy("kv_cju0qkwl.jpg", kv / "images" / "polyp1.jpg")
    _copy("kv_cju0qkwl_mask.png", kv / "masks" / "polyp1.png")
    # vocalfolds-like: images/p/s/0041.png + labels/p/s/0041.png as a class map (4 = tumour)
    vf = tmp_path / "vf"
    _copy("vf_0041.png", vf / "images" / "patient1" / "seq1" / "0041.png")
    m = read_mask(TEST_DATA / "vf_0041_mask.png")
    classes = np.where(m, 4, 2).astype(np.uint8)
    classes[:5] = 1
    (vf / "labels" / "patient1" / "seq1").mkdir(parents=True)
    cv2.imwrite(str(vf / "labels" / "patient1" / "seq1" / "0041.png"), classes)
    s1 = import_sources(workspace, [kv])
    assert s1["imported"] == 1 and s1["skipped"] == []
    assert np.array_equal(workspace.latest_mask("polyp1"), read_mask(TEST_DATA / "kv_cju0qkwl_mask.png"))
    assert workspace.case("polyp1").nbi_path is None
    s2 = import_sources(workspace, [vf], label_value=4)
    assert s2["imported"] == 1
    assert np.array_equal(workspace.latest_mask("seq1_0041"), m)  # numbered frame -> folder prefix


def test_rule_labelme_json(workspace: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "lm"
    _copy("vf_0041.png", src / "x_wli.png")
    _copy("vf_0055.png", src / "y.png")
    poly = {"shapes": [{"label": "tumour", "points": [[10, 10], [60, 10], [60, 40], [10, 40]],
                        "shape_type": "polygon"}], "imageWidth": 128, "imageHeight": 128}
    (src / "x_mask.json").write_text(json.dumps(poly))
    rect = {"shapes": [{"label": "t", "points": [[0, 0], [9, 19]], "shape_type": "rectangle"}],
            "imageHeight": 128, "imageWidth": 128, "imagePath": "y.png"}
    (src / "y.json").write_text(json.dumps(rect))  # labelme's own naming: same stem
    (src / "notes.json").write_text('{"comment": "not an annotation"}')
    s = import_sources(workspace, [src])
    assert s["imported"] == 2 and s["skipped"] == []
    mx = workspace.latest_mask("x")
    assert mx.sum() == 51 * 31 and mx[10:41, 10:61].all()
    assert workspace.latest_mask("y").sum() == 10 * 20
    with pytest.raises(Exception, match="not a labelme"):
        rasterise_labelme(src / "notes.json", (128, 128))


def test_rule_csv(workspace: Workspace, tmp_path: Path) -> None:
    d = tmp_path / "csvroot"
    _copy("vf_0041.png", d / "img" / "a_wli.png")
    _copy("vf_0041.png", d / "img" / "a_nbi.png")
    _copy("vf_0041_mask.png", d / "img" / "a_mask.png")
    _copy("vf_0055.png", d / "img" / "b.png")
    outside = _copy("vf_0070.png", tmp_path / "outside.png")
    os.symlink(outside, d / "img" / "link.png")
    rows = ["wli_path,nbi_path,label_path,patient_id",
            "img/a_wli.png,img/a_nbi.png,img/a_mask.png,P1",
            "img/b.png,,,P2",
            "../outside.png,,,P3",
            f"{outside},,,P4",
            "img/link.png,,,P5",
            "img/missing.png,,,P6"]
    (d / "list.csv").write_text("\n".join(rows) + "\n")
    s = import_sources(workspace, [d / "list.csv"], register=False)
    assert s["imported"] == 2
    reasons = [k["reason"] for k in s["skipped"]]
    assert sum("escapes the CSV's folder" in r for r in reasons) == 3
    assert any("not found" in r for r in reasons)
    assert workspace.case("a").patient_id == "P1" and workspace.case("b").patient_id == "P2"
    assert workspace.case("a").status == "corrected"
    (d / "bad.csv").write_text("image,other\nimg/b.png,x\n")
    s2 = import_sources(workspace, [d / "bad.csv"])
    assert s2["imported"] == 0 and "no wli_path column" in s2["skipped"][0]["reason"]


# ------------------------------------------------------------------------ bad files
def test_each_bad_file_is_skipped_and_leaves_nothing(workspace: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "bad"
    good = make_fixture_pairs(src, 1)[0]
    png = (TEST_DATA / "vf_0055.png").read_bytes()
    (src / "truncated_wli.png").write_bytes(png[: len(png) // 3])
    (src / "truncated_nbi.png").write_bytes(png)
    (src / "text.png").write_text("hello, I am not an image")
    (src / "empty.jpg").write_bytes(b"")
    _copy("vf_0055.png", src / "sizemix_wli.png")
    _copy("kv_cju0qkwl_mask.png", src / "sizemix_mask.png")  # 96 px mask for a 128 px WLI
    _copy("vf_0070.png", src / "nbibad_wli.png")
    (src / "nbibad_nbi.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    _copy("vf_0070.png", src / "maskbad.png")
    (src / "maskbad_mask.png").write_bytes(b"not a png")
    os.symlink(src / "does-not-exist.png", src / "dangling.png")
    before = set(_ws_files(workspace))
    s = import_sources(workspace, [src])
    assert s["imported"] == 1 and workspace.case_count() == 1 and workspace.has_case(good)
    reasons = {Path(k["path"]).name: k["reason"] for k in s["skipped"]}
    assert "truncated" in reasons["truncated_wli.png"]
    assert "not an image" in reasons["text.png"]
    assert "empty" in reasons["empty.jpg"]
    assert "mask size" in reasons["sizemix_wli.png"]
    assert reasons["nbibad_wli.png"].startswith("NBI unreadable")
    assert reasons["maskbad.png"].startswith("mask:")
    assert "not found" in reasons["dangling.png"]
    files = _ws_files(workspace)
    assert not any(".tmp-" in f for f in files)
    assert {f.split("/")[1] for f in set(files) - before if f.startswith(("images/", "masks/"))} == {good}


def test_failure_inside_the_transaction_leaves_no_half_case(workspace: Workspace, fixture_pair_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    real = store_mod.Workspace._event

    def flaky(db, kind, case_id, detail):
        if kind == "import" and case_id == "vf_0055":
            raise RuntimeError("simulated crash before commit")
        return real(db, kind, case_id, detail)

    monkeypatch.setattr(store_mod.Workspace, "_event", staticmethod(flaky))
    s = import_sources(workspace, [fixture_pair_dir], register=False)
    assert s["imported"] == 2
    assert [Path(k["path"]).name for k in s["skipped"]] == ["vf_0055_wli.png"]
    assert "simulated crash" in s["skipped"][0]["reason"]
    assert not workspace.has_case("vf_0055")
    assert not (workspace.root / "images" / "vf_0055").exists()
    assert not (workspace.root / "masks" / "vf_0055").exists()
    assert not any(".tmp-" in f for f in _ws_files(workspace))
    monkeypatch.undo()
    s2 = import_sources(workspace, [fixture_pair_dir], register=False)  # retry imports only the missing one
    assert s2["imported"] == 1 and workspace.has_case("vf_0055")


def test_reimport_is_a_no_op(workspace: Workspace, fixture_pair_dir: Path) -> None:
    import_sources(workspace, [fixture_pair_dir])
    files = _ws_files(workspace)
    events = len(workspace.events())
    s = import_sources(workspace, [fixture_pair_dir])
    assert s["imported"] == 0 and s["cases"] == 3
    assert {k["reason"] for k in s["skipped"]} == {"duplicate"}
    assert _ws_files(workspace) == files and len(workspace.events()) == events


def test_discover_missing_source_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        discover(tmp_path / "nope")


# ------------------------------------------------------------------------ CLI
def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_cli_subprocess_prints_json_summary(tmp_path: Path, fixture_pair_dir: Path) -> None:
    (fixture_pair_dir / "junk.png").write_text("no image")
    ws = tmp_path / "new" / "ws"
    r = _run_cli("import", str(fixture_pair_dir), "--workspace", str(ws), "--synthetic-nbi")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["imported"] == 3 and summary["cases"] == 3
    assert summary["skipped"] == [{"path": str(fixture_pair_dir / "junk.png"),
                                   "reason": "WLI: not an image (unknown format)"}]
    assert "import" in r.stderr  # the progress bar
    with Workspace.open(ws) as w:
        assert all(c.nbi_synthetic for c in w.cases())
    r2 = _run_cli("import", str(fixture_pair_dir), "--workspace", str(ws), "--quiet")
    assert r2.returncode == 0 and json.loads(r2.stdout.strip().splitlines()[-1])["imported"] == 0


def test_cli_fatal_errors_are_one_line(tmp_path: Path) -> None:
    r = _run_cli("import", str(tmp_path / "missing"), "--workspace", str(tmp_path / "ws"))
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0 and "source not found" in r.stderr
    (tmp_path / "file").write_text("x")
    r = _run_cli("import", str(TEST_DATA / "vf_0041.png"), "--workspace", str(tmp_path / "file"))
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    r = _run_cli("frobnicate")
    assert r.returncode == 2 and "unknown command" in r.stderr


def test_main_in_process(tmp_path: Path, fixture_pair_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(fixture_pair_dir), "--workspace", str(tmp_path / "w"), "--no-register", "--quiet",
                 "--patient-id", "X1"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    bundled_id = json.loads((ROOT / "resources" / "models" / "adf-tiny.json").read_text())["id"]
    assert out == {"imported": 3, "skipped": [], "cases": 3, "active_model": bundled_id}
    with Workspace.open(tmp_path / "w") as ws:
        assert ws.active_model_id() == bundled_id  # a new workspace predicts with the bundled model
        assert {c.reg_quality for c in ws.cases()} == {"unregistered"}
        assert {c.patient_id for c in ws.cases()} == {"X1"}


def test_rule_coco_masks(workspace: Workspace, tmp_path: Path) -> None:
    from training.annotations import mask_to_coco_annotations

    src = tmp_path / "coco"
    _copy("vf_0041.png", src / "images" / "a_wli.png")
    _copy("vf_0041.png", src / "images" / "a_nbi.png")
    _copy("kv_cju0qkwl.jpg", src / "images" / "b.jpg")
    _copy("vf_0070.png", src / "images" / "c.png")       # listed with no annotation: a negative
    ma = read_mask(TEST_DATA / "vf_0041_mask.png")
    mb = read_mask(TEST_DATA / "kv_cju0qkwl_mask.png")
    images = [{"id": 1, "file_name": "images/a_wli.png", "height": 128, "width": 128},
              {"id": 2, "file_name": "b.jpg", "height": 96, "width": 96},  # bare name, as COCO often has
              {"id": 3, "file_name": "images/c.png", "height": 128, "width": 128}]
    anns = mask_to_coco_annotations(ma, 1, 1) + mask_to_coco_annotations(mb, 2, 100, as_polygons=True)
    doc = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "tumor"}]}
    (src / "annotations.json").write_text(json.dumps(doc))
    s = import_sources(workspace, [src], register=False)
    assert s["imported"] == 3 and s["skipped"] == []
    assert np.array_equal(workspace.latest_mask("a"), ma)
    assert workspace.case("a").nbi_path is not None
    assert (workspace.latest_mask("b") & mb).sum() / mb.sum() > 0.95
    assert workspace.latest_mask("c") is not None and not workspace.latest_mask("c").any()
    assert "annotations.json" in workspace.history("a")[0].note


def test_labelme_size_mismatch_is_skipped(workspace: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "lm2"
    _copy("vf_0041.png", src / "x.png")
    doc = {"shapes": [{"label": "t", "points": [[1, 1], [5, 1], [5, 5]], "shape_type": "polygon"}],
           "imageWidth": 64, "imageHeight": 64}
    (src / "x.json").write_text(json.dumps(doc))
    s = import_sources(workspace, [src])
    assert s["imported"] == 0 and "64x64" in s["skipped"][0]["reason"]


def test_missing_command_module_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from training import __main__ as cli

    monkeypatch.setitem(cli.COMMANDS, "ghost", ("training.no_such_module", "not written yet"))
    assert cli.main(["ghost"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not available" in err and "Traceback" not in err
