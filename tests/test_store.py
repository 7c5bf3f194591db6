"""training/store/: round trips, atomic revisions, schema versions, errors, status logic."""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TEST_DATA, modules_loaded_by
from training import imageio
from training.imageio import read_mask, read_rgb, sha256_file
from training.store import SCHEMA_VERSION, STATUSES, Case, Workspace, WorkspaceError, safe_id


def _one_case(ws: Workspace, label: bool = False) -> str:
    cid, reason = ws.import_pair(TEST_DATA / "vf_0041.png", None,
                                 TEST_DATA / "vf_0041_mask.png" if label else None, patient_id="P1")
    assert reason is None
    return cid


# ------------------------------------------------------------------------ the package
def test_the_store_imports_neither_torch_nor_qt() -> None:
    """The viewer lists and saves cases before torch has loaded, the importer never loads it."""
    assert modules_loaded_by("training.store", ("torch", "PySide6")) == []


def test_everything_imported_from_the_store_is_still_there() -> None:
    """training/store/ is a package of parts; ``from training.store import X`` is its interface."""
    from training import store

    for name in store.__all__:
        assert getattr(store, name) is not None, name
    assert {"pid_alive", "dice_iou", "local_time", "registered_model_id", "is_workspace", "DB_NAME",
            "SCHEMA_VERSION", "RevisionConflict", "ANY", "SOURCES"} <= set(store.__all__)
    assert store.Workspace.__module__ == "training.store.workspace"


# ------------------------------------------------------------------------ round trips
def test_import_round_trip(filled_workspace: Workspace, fixture_pair_dir: Path) -> None:
    ws = filled_workspace
    cases = ws.cases()
    assert [c.id for c in cases] == ["vf_0041", "vf_0055", "vf_0070"]
    c = ws.case("vf_0041")
    assert isinstance(c, Case) and c.status == "corrected" and c.nbi_synthetic
    assert (c.width, c.height) == (128, 128)
    assert c.wli_path == ws.root / "images" / "vf_0041" / "wli.png"
    assert c.nbi_path == ws.root / "images" / "vf_0041" / "nbi.png"
    # original bytes copied, hash recorded
    assert c.wli_path.read_bytes() == (fixture_pair_dir / "vf_0041_wli.png").read_bytes()
    assert c.wli_sha256 == sha256_file(fixture_pair_dir / "vf_0041_wli.png")
    assert np.array_equal(ws.load_wli("vf_0041"), read_rgb(TEST_DATA / "vf_0041.png"))
    assert ws.load_nbi("vf_0041").shape == (128, 128, 3)
    # registration ran and is stored
    assert c.reg_quality == "good" and not np.allclose(c.homography, np.eye(3))
    # the label became revision 1, source import
    hist = ws.history("vf_0041")
    assert [(r.rev, r.source) for r in hist] == [(1, "import")]
    assert np.array_equal(ws.latest_mask("vf_0041"), read_mask(TEST_DATA / "vf_0041_mask.png"))
    assert hist[0].area == int(read_mask(TEST_DATA / "vf_0041_mask.png").sum())
    assert c.latest_rev == 1 and c.latest_source == "import"


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "w", create=True) as ws:
        cid = _one_case(ws, label=True)
        m = np.zeros((128, 128), bool)
        m[10:20, 30:50] = True
        ws.add_revision(cid, m, "human", "dr.a", note="fixed edge")
        ws.set_status(cid, "approved", author="dr.a")
    with Workspace.open(tmp_path / "w") as ws:
        assert ws.integrity_check() == "ok"
        c = ws.case(cid)
        assert c.status == "approved" and c.patient_id == "P1"
        assert np.array_equal(ws.latest_mask(cid), m)
        assert [r.source for r in ws.history(cid)] == ["import", "human"]
        assert ws.history(cid)[1].note == "fixed edge"
        assert ws.db_journal_mode() == "wal"
        assert ws.schema_version() == SCHEMA_VERSION


def test_wli_only_case(workspace: Workspace) -> None:
    cid = _one_case(workspace)
    c = workspace.case(cid)
    assert c.nbi_path is None and c.status == "new" and np.array_equal(c.homography, np.eye(3))
    assert workspace.load_nbi(cid) is None
    assert workspace.latest_mask(cid) is None and workspace.history(cid) == []


def test_duplicate_by_hash_not_name(workspace: Workspace, tmp_path: Path) -> None:
    _one_case(workspace)
    copy = tmp_path / "renamed.png"
    copy.write_bytes((TEST_DATA / "vf_0041.png").read_bytes())
    assert workspace.import_pair(copy) == (None, "duplicate")
    # same WLI with an NBI is a different pair
    cid, reason = workspace.import_pair(copy, TEST_DATA / "vf_0055.png", register=False)
    assert reason is None and cid == "renamed"
    assert workspace.case(cid).reg_quality == "unregistered"
    assert len(workspace.cases()) == 2


def test_case_ids_are_safe_and_unique(workspace: Workspace, tmp_path: Path) -> None:
    srcs = []
    for i, name in enumerate(["../../evil name", "evil name", "CON", "ÄÖÜ", "a" * 200]):
        d = tmp_path / f"d{i}"
        d.mkdir()
        p = d / "x.png"
        img = np.full((8, 8, 3), i * 20, np.uint8)
        imageio.write_bytes_atomic(p, imageio.encode_png(img))
        srcs.append((p, name))
    ids = []
    for p, name in srcs:
        cid, reason = workspace.import_pair(p, case_name=name)
        assert reason is None
        ids.append(cid)
    assert ids[0] == "evil_name" and ids[1] == "evil_name-2"
    assert ids[2] == "_CON"
    assert len(ids[4]) <= 48
    for cid in ids:
        assert cid == safe_id(cid) and "/" not in cid and ".." not in cid
        assert (workspace.root / "images" / cid).parent == workspace.root / "images"
    assert safe_id("") == "case" and safe_id("...") == "case"


# ------------------------------------------------------------------------ revisions
def test_revisions_are_new_files_never_overwritten(workspace: Workspace) -> None:
    cid = _one_case(workspace)
    a = np.zeros((128, 128), bool)
    a[5:9, 5:9] = True
    r1 = workspace.add_revision(cid, a, "model", "adf", model_id="adf-tiny")
    r2 = workspace.add_revision(cid, ~a, "human", "dr.b", parent_rev=1)
    assert (r1.rev, r2.rev) == (1, 2) and r2.parent_rev == 1
    assert r1.mask_path != r2.mask_path and r1.mask_path.name == "1.png"
    assert np.array_equal(workspace.load_mask(r1), a)
    assert np.array_equal(workspace.load_mask(r2), ~a)
    assert r1.sha256 == sha256_file(r1.mask_path)
    with pytest.raises(ValueError):
        workspace.add_revision(cid, a[:10], "human", "dr.b")  # wrong size
    with pytest.raises(ValueError):
        workspace.add_revision(cid, a, "robot", "x")
    with pytest.raises(ValueError):
        workspace.add_revision(cid, a, "human", "dr.b", parent_rev=99)
    # the database refuses edits of revisions and events
    with pytest.raises(sqlite3.DatabaseError):
        workspace._db.execute("UPDATE revisions SET area = 0")
    with pytest.raises(sqlite3.DatabaseError):
        workspace._db.execute("DELETE FROM events")


def test_existing_revision_file_is_set_aside_never_overwritten(workspace: Workspace) -> None:
    """A file at the next revision's name has no row (it was there before the write lock was taken):
    it is kept byte for byte under another name and the save goes on (issue 18)."""
    cid = _one_case(workspace)
    stray = workspace.root / "masks" / cid / "1.png"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"someone's file")
    rev = workspace.add_revision(cid, np.ones((128, 128), bool), "human", "dr.c")
    assert rev.rev == 1 and np.array_equal(workspace.load_mask(rev), np.ones((128, 128), bool))
    kept = list(stray.parent.glob("1.orphan-*.png"))
    assert len(kept) == 1 and kept[0].read_bytes() == b"someone's file"
    assert workspace.events(kind="orphan_revision_files")[-1]["detail"]["set_aside"] == [
        f"masks/{cid}/{kept[0].name}"]


def test_a_revision_file_that_cannot_be_moved_is_skipped_not_replaced(workspace: Workspace,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from training.store import revisions

    cid = _one_case(workspace)
    stray = workspace.root / "masks" / cid / "1.png"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"stuck")
    monkeypatch.setattr(revisions, "_set_aside", lambda path: None)  # rename refused
    rev = workspace.add_revision(cid, np.ones((128, 128), bool), "human", "dr.c")
    assert rev.rev == 2 and stray.read_bytes() == b"stuck"


def test_no_clobber_write_never_replaces_a_file_that_appears_after_the_check(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer racing past the exists-check (no lock) gets FileExistsError, the other's bytes stay."""
    final = tmp_path / "m" / "3.png"
    real_open = open

    def open_then_race(path, mode="r", *a, **k):
        fh = real_open(path, mode, *a, **k)
        if "x" in mode:
            final.write_bytes(b"the other writer's revision")
        return fh

    monkeypatch.setattr("builtins.open", open_then_race)
    with pytest.raises(FileExistsError):
        imageio.write_bytes_atomic(final, b"mine", exist_ok=False)
    monkeypatch.undo()
    assert final.read_bytes() == b"the other writer's revision"
    assert [p.name for p in final.parent.iterdir()] == ["3.png"]  # no temp left


def test_interrupted_revision_write_keeps_previous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.open(tmp_path / "w", create=True)
    cid = _one_case(ws)
    first = np.zeros((128, 128), bool)
    first[:20] = True
    r1 = ws.add_revision(cid, first, "human", "dr.d")
    events_before = len(ws.events())

    def crash(*a, **k):
        raise OSError("power cut")

    monkeypatch.setattr(imageio.os, "replace", crash)
    monkeypatch.setattr(imageio.os, "link", crash)
    with pytest.raises((WorkspaceError, OSError)):
        ws.add_revision(cid, ~first, "human", "dr.d")
    monkeypatch.undo()
    assert [r.rev for r in ws.history(cid)] == [1]
    assert np.array_equal(ws.latest_mask(cid), first)
    assert sorted(p.name for p in (ws.root / "masks" / cid).iterdir()) == ["1.png"]
    assert ws.case(cid).latest_rev == 1
    assert len(ws.events()) == events_before
    assert ws.integrity_check() == "ok"
    # the next save works and takes rev 2
    assert ws.add_revision(cid, ~first, "human", "dr.d").rev == 2
    ws.close()
    assert r1.mask_path.is_file()


def test_leftover_temp_files_cleaned_on_open(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "w", create=True) as ws:
        cid = _one_case(ws)
        ws.add_revision(cid, np.ones((128, 128), bool), "human", "dr.e")
    dead_pid = 2 ** 22 + 12345  # above Linux pid_max default: no such process
    d = tmp_path / "w" / "masks" / cid
    leftover = d / f"{imageio.TEMP_PREFIX}{dead_pid}-abcd1234-2.png"
    leftover.write_bytes(b"half a png")
    tmp_import = tmp_path / "w" / "images" / f"{imageio.TEMP_PREFIX}{dead_pid}-beef-import"
    tmp_import.mkdir()
    (tmp_import / "wli.png").write_bytes(b"x")
    live = d / f"{imageio.TEMP_PREFIX}{os.getpid()}-00000000-3.png"  # a live writer's temp: kept
    live.write_bytes(b"in progress")
    # a revision file renamed into place whose row never committed (crash before COMMIT)
    orphan = d / "2.png"
    orphan.write_bytes(imageio.encode_png(np.zeros((128, 128), bool)))
    with Workspace.open(tmp_path / "w") as ws:
        assert not leftover.exists() and not tmp_import.exists()
        assert live.exists()
        assert not orphan.exists()
        assert len(list(d.glob("2.orphan-*.png"))) == 1  # kept aside, never deleted
        kinds = [e["kind"] for e in ws.events()]
        assert "cleanup_temp" in kinds and "orphan_revision_files" in kinds
        removed = [e for e in ws.events(kind="cleanup_temp")][0]["detail"]["removed"]
        assert f"masks/{cid}/{leftover.name}" in removed
        assert ws.add_revision(cid, np.zeros((128, 128), bool), "human", "dr.e").rev == 2
    live.unlink()


# ------------------------------------------------------------------------ status, dice
def test_status_transitions(workspace: Workspace) -> None:
    cid = _one_case(workspace)
    m = np.zeros((128, 128), bool)
    assert workspace.case(cid).status == "new"
    workspace.add_revision(cid, m, "model", "adf", model_id="m1")
    assert workspace.case(cid).status == "predicted"
    workspace.set_status(cid, "in_progress")
    workspace.add_revision(cid, m, "model", "adf", model_id="m1")
    assert workspace.case(cid).status == "in_progress"  # a model never moves a case back
    workspace.add_revision(cid, m, "human", "dr.f")
    assert workspace.case(cid).status == "corrected"
    workspace.set_status(cid, "excluded", reason="blurred", author="dr.f")
    c = workspace.case(cid)
    assert c.status == "excluded" and c.exclude_reason == "blurred"
    workspace.add_revision(cid, m, "human", "dr.f")
    assert workspace.case(cid).status == "excluded"
    workspace.set_status(cid, "approved")
    assert workspace.case(cid).exclude_reason is None
    with pytest.raises(ValueError):
        workspace.set_status(cid, "done")
    with pytest.raises(KeyError):
        workspace.set_status("nope", "new")
    status_events = workspace.events(case_id=cid, kind="status")
    assert [e["detail"]["to"] for e in status_events] == ["in_progress", "excluded", "approved"]
    assert set(workspace.status_counts()) == set(STATUSES)
    assert [c.id for c in workspace.cases(status="approved")] == [cid]
    assert workspace.cases(status=["new", "predicted"]) == []
    with pytest.raises(ValueError):
        workspace.cases(status="bogus")


def test_dice_vs_model_stored_and_mirrored(workspace: Workspace) -> None:
    cid = _one_case(workspace)
    model = np.zeros((128, 128), bool)
    model[0:40, 0:40] = True  # 1600 px
    workspace.add_revision(cid, model, "model", "adf", model_id="m1")
    human = np.zeros((128, 128), bool)
    human[0:40, 0:20] = True  # 800 px, all inside the model mask
    r = workspace.add_revision(cid, human, "human", "dr.g")
    assert r.dice_vs_model == pytest.approx(2 * 800 / 2400)
    assert r.iou_vs_model == pytest.approx(800 / 1600)
    c = workspace.case(cid)
    assert c.dice_vs_model == pytest.approx(r.dice_vs_model) and c.iou_vs_model == pytest.approx(0.5)
    # an explicit uint8 probability wins over the stored model revision
    prob = np.zeros((128, 128), np.uint8)
    prob[0:40, 0:20] = 200
    r2 = workspace.add_revision(cid, human, "human", "dr.g", reference_prob=prob)
    assert r2.dice_vs_model == pytest.approx(1.0)
    assert workspace.case(cid).dice_vs_model == pytest.approx(1.0)
    # a cached prediction of the named model is used when no probability is passed
    workspace.save_prediction(cid, "m2", np.zeros((128, 128), np.uint8))
    r3 = workspace.add_revision(cid, human, "human", "dr.g", model_id="m2")
    assert r3.dice_vs_model == pytest.approx(0.0)


def test_prediction_cache(workspace: Workspace) -> None:
    cid = _one_case(workspace)
    assert workspace.cached_prediction(cid, "adf/../tiny v1") is None
    prob = (np.arange(128 * 128) % 256).astype(np.uint8).reshape(128, 128)
    workspace.save_prediction(cid, "adf/../tiny v1", prob)
    p = workspace.prediction_path(cid, "adf/../tiny v1")
    assert p.parent == workspace.root / "predictions" / cid and ".." not in p.name
    assert np.array_equal(workspace.cached_prediction(cid, "adf/../tiny v1"), prob)
    workspace.save_prediction(cid, "adf/../tiny v1", 255 - prob)  # a cache may be replaced
    assert np.array_equal(workspace.cached_prediction(cid, "adf/../tiny v1"), 255 - prob)
    with pytest.raises(ValueError):
        workspace.save_prediction(cid, "m", prob.astype(np.float32))


def test_models_register_and_activate(workspace: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name, payload in (("a", b"weights-a"), ("b", b"weights-b")):
        (src / f"{name}.json").write_text(json.dumps({"model_id": f"adf-{name}", "preset": "tiny"}))
        (src / f"{name}.safetensors").write_bytes(payload)
    assert workspace.active_model_path() is None
    mid = workspace.register_model(src / "a.json", activate=True)
    assert mid == "adf-a"
    assert workspace.active_model_path() == workspace.root / "models" / "adf-a.json"
    assert (workspace.root / "models" / "adf-a.safetensors").read_bytes() == b"weights-a"
    assert workspace.register_model(src / "a.json") == "adf-a"  # again: no-op
    workspace.register_model(src / "b.json")
    assert [m["active"] for m in workspace.models()] == [True, False]
    workspace.set_active_model("adf-b")
    assert [m["id"] for m in workspace.models() if m["active"]] == ["adf-b"]
    assert workspace.models()[0]["card"]["preset"] == "tiny"
    (src / "a.safetensors").write_bytes(b"different")
    with pytest.raises(WorkspaceError, match="already registered"):
        workspace.register_model(src / "a.json")
    (src / "c.json").write_text("{}")
    with pytest.raises(WorkspaceError, match="not found"):
        workspace.register_model(src / "c.json")
    with pytest.raises(KeyError):
        workspace.set_active_model("nope")


# ------------------------------------------------------------------------ errors
def test_newer_schema_refused(tmp_path: Path) -> None:
    Workspace.open(tmp_path / "w", create=True).close()
    db = sqlite3.connect(tmp_path / "w" / "workspace.sqlite")
    db.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, 'future')", (SCHEMA_VERSION + 5,))
    db.commit()
    db.close()
    with pytest.raises(WorkspaceError, match=rf"newer ADF Viewer \(schema {SCHEMA_VERSION + 5} > {SCHEMA_VERSION}\)"):
        Workspace.open(tmp_path / "w")


def test_corrupt_and_missing_workspaces(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="no workspace"):
        Workspace.open(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WorkspaceError, match="not an ADF Viewer workspace"):
        Workspace.open(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "workspace.sqlite").write_bytes(b"this is not sqlite" * 300)
    with pytest.raises(WorkspaceError, match="corrupt"):
        Workspace.open(bad)
    other = tmp_path / "other"
    other.mkdir()
    db = sqlite3.connect(other / "workspace.sqlite")
    db.execute("CREATE TABLE foo (x)")
    db.commit()
    db.close()
    with pytest.raises(WorkspaceError, match="not an ADF Viewer workspace"):
        Workspace.open(other)
    full = tmp_path / "photos"
    full.mkdir()
    (full / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(WorkspaceError, match="not empty"):
        Workspace.open(full, create=True)
    assert sorted(p.name for p in full.iterdir()) == ["holiday.jpg"]
    with Workspace.open(tmp_path / "empty", create=True) as ws:  # an empty folder is fine
        assert ws.integrity_check() == "ok"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(WorkspaceError, match="not a workspace folder"):
        Workspace.open(tmp_path / "afile", create=True)


def test_read_only_workspace_reads_but_refuses_writes(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "w", create=True) as ws:
        cid = _one_case(ws, label=True)
    with Workspace.open(tmp_path / "w", readonly=True) as ro:
        assert ro.readonly and [c.id for c in ro.cases()] == [cid]
        assert ro.latest_mask(cid) is not None
        with pytest.raises(WorkspaceError, match="read-only"):
            ro.add_revision(cid, np.zeros((128, 128), bool), "human", "x")
        with pytest.raises(WorkspaceError, match="read-only"):
            ro.set_status(cid, "approved")
        with pytest.raises(WorkspaceError, match="read-only"):
            ro.import_pair(TEST_DATA / "vf_0055.png")
    assert len(list((tmp_path / "w" / "masks" / cid).iterdir())) == 1


def test_read_only_folder_opens_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Workspace.open(tmp_path / "w", create=True) as ws:
        _one_case(ws)
    root_user = os.name != "posix" or os.geteuid() == 0
    if root_user:  # root ignores folder permissions: make the folder look unwritable instead
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **k: False if mode == os.W_OK else real_access(p, mode))
    else:
        os.chmod(tmp_path / "w", 0o555)
    try:
        with Workspace.open(tmp_path / "w") as ro:
            assert ro.readonly
            assert len(ro.cases()) == 1
            with pytest.raises(WorkspaceError, match="read-only"):
                ro.set_status(ro.cases()[0].id, "approved")
    finally:
        if not root_user:
            os.chmod(tmp_path / "w", 0o755)


def test_two_connections_serialise_writes(tmp_path: Path) -> None:
    a = Workspace.open(tmp_path / "w", create=True)
    b = Workspace.open(tmp_path / "w")
    cid = _one_case(a)
    m = np.zeros((128, 128), bool)
    revs = []
    for i in range(4):
        revs.append((a if i % 2 else b).add_revision(cid, m, "human", f"u{i}").rev)
    assert revs == [1, 2, 3, 4]
    assert [r.author for r in b.history(cid)] == ["u0", "u1", "u2", "u3"]
    # each connection's cached Case objects follow the other's writes
    assert b.case(cid).status == a.case(cid).status == "corrected"
    a.set_status(cid, "approved")
    assert b.cases()[0].status == "approved" and b.case(cid).latest_rev == 4
    with pytest.raises(ValueError):
        b.case(cid).homography[0, 0] = 2.0  # shared, so read-only
    a.close()
    b.close()


def test_registered_model_loads_when_its_id_differs_from_its_file_name(workspace: Workspace, tmp_path: Path) -> None:
    """The copy in models/ is named after the id; its card must point at that copy."""
    import torch

    from model.adf import ADFNet
    from model.card import load_model, save_model
    from model.config import get_preset

    torch.manual_seed(0)
    cfg = get_preset("tiny")
    card = save_model(ADFNet(cfg).eval(), cfg, tmp_path / "src" / "weights-file-stem", {"id": "fine-tuned-7"})
    mid = workspace.register_model(card, activate=True)
    assert mid == "fine-tuned-7"
    net, loaded = load_model(workspace.active_model_path())
    assert loaded["id"] == "fine-tuned-7" and loaded["weights"] == "fine-tuned-7.safetensors"


def test_conditional_status_change_never_undoes_a_newer_status(filled_workspace: Workspace, tmp_path: Path) -> None:
    """A background 'new -> predicted' from a second connection loses against a clinician's 'excluded'."""
    ws = filled_workspace
    cid = ws.cases()[0].id
    ws.set_status(cid, "new")
    with Workspace.open(ws.root) as other:          # the inference worker's own connection
        ws.set_status(cid, "excluded", reason="blurred")
        assert other.set_status(cid, "predicted", only_from=("new",)) is False
    assert ws.case(cid).status == "excluded" and ws.case(cid).exclude_reason == "blurred"
    assert ws.set_status(cid, "new") is True
