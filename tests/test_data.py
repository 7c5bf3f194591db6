"""training.data: paired augmentation keeps WLI/NBI/mask aligned, per-modality jitter, the
workspace/export/public datasets, the fixed split."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import ROOT, TEST_DATA
from training.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AugmentConfig,
    ExportFolderDataset,
    PairDataset,
    WorkspaceDataset,
    paired_geometric,
)

PUBLIC_MINI = ROOT / "tests" / "data" / "public_mini"  # the shared data folder in miniature (tests never read the real one)


def _scene(h: int = 90, w: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """A dark image with a bright off-centre rectangle and its mask."""
    img = np.full((h, w, 3), 30, np.uint8)
    mask = np.zeros((h, w), bool)
    mask[20:50, 60:100] = True
    img[mask] = (220, 180, 90)
    return img, mask


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


@pytest.mark.parametrize("seed", range(6))
def test_one_geometric_transform_for_wli_nbi_and_mask(seed):
    wli, mask = _scene()
    nbi = np.ascontiguousarray(wli[:, :, ::-1])  # other colours, same geometry
    rng = np.random.default_rng(seed)
    aug = AugmentConfig(hflip=0.5, vflip=0.5, rotate_deg=30)
    w2, n2, m2 = paired_geometric(wli, nbi, None, mask, 64, rng, aug)
    assert w2.shape == (64, 64, 3) and n2.shape == (64, 64, 3) and m2.shape == (64, 64)
    assert m2.any()
    assert _iou(w2.max(axis=2) > 120, m2) > 0.85
    assert _iou(n2.max(axis=2) > 120, m2) > 0.85


def test_nbi_is_brought_into_the_wli_frame_by_its_homography():
    wli, mask = _scene()
    shift = np.array([[1.0, 0, 7], [0, 1, -5], [0, 0, 1]])  # WLI -> NBI: the NBI camera moved
    nbi = cv2.warpPerspective(wli, shift, (wli.shape[1], wli.shape[0]))
    h_n2w = np.linalg.inv(shift)
    _, n_ok, m2 = paired_geometric(wli, nbi, h_n2w, mask, 60, None, AugmentConfig())
    _, n_raw, _ = paired_geometric(wli, nbi, None, mask, 60, None, AugmentConfig())
    assert _iou(n_ok.max(axis=2) > 120, m2) > 0.9
    assert _iou(n_raw.max(axis=2) > 120, m2) < 0.8  # without the homography it is off


class _Toy(PairDataset):
    """Two cases built in memory: one pair, one WLI-only."""

    def __len__(self) -> int:
        return 2

    def load(self, i, rng):
        wli, mask = _scene()
        return wli, (wli.copy() if i == 0 else None), None, mask, "toy"


def test_photometric_jitter_is_per_modality_and_randomness_per_epoch_and_index():
    ds = _Toy(size=48, train=True, seed=5)
    a = ds[0]
    assert a["wli"].shape == (3, 48, 48) and a["mask"].shape == (1, 48, 48)
    assert a["nbi_present"].item() is True
    # identical source images, independent jitter: different pixels, same geometry
    assert not torch.allclose(a["wli"], a["nbi"])
    m = a["mask"][0] > 0.5
    for key in ("wli", "nbi"):
        inside = a[key][:, m].mean()
        outside = a[key][:, ~m].mean()
        assert inside > outside + 0.5
    # the same (seed, epoch, index) gives the same sample; another epoch another one
    assert torch.equal(ds[0]["wli"], a["wli"])
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["wli"], a["wli"])
    b = ds[1]
    assert b["nbi_present"].item() is False and float(b["nbi"].abs().sum()) == 0.0


def test_validation_samples_are_fixed_and_normalised():
    ds = _Toy(size=32, train=False, seed=0)
    a, b = ds[0], ds[0]
    assert torch.equal(a["wli"], b["wli"])
    ds.set_epoch(3)
    assert torch.equal(ds[0]["wli"], a["wli"])
    # normalisation with the config's mean/std: the dark background (30) maps to (30/255-mean)/std
    bg = (30 / 255 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    assert abs(float(a["wli"][0, 0, 0]) - bg) < 1e-4


def test_split_by_patient_keeps_each_patient_on_one_side():
    from training.splits import split_cases_by_patient

    cases = [(f"case{i:03d}", f"p{i // 3}" if i < 30 else None) for i in range(40)]
    tr, va = split_cases_by_patient(cases, 0.25, seed=1)
    assert (tr, va) == split_cases_by_patient(cases, 0.25, seed=1)
    assert set(tr).isdisjoint(va) and set(tr) | set(va) == {c for c, _ in cases}
    assert 6 <= len(va) <= 14
    for pid in {p for _, p in cases if p}:
        sides = {c in va for c, p in cases if p == pid}
        assert len(sides) == 1, f"patient {pid} is on both sides"
    assert split_cases_by_patient(cases, 0.25, seed=2) != (tr, va)  # the seed matters
    assert split_cases_by_patient([("a", None), ("b", None)], 0.0) == (["a", "b"], [])
    assert len(split_cases_by_patient([("a", None), ("b", None)], 0.01)[1]) == 1


def test_workspace_dataset_uses_latest_human_or_import_revision(filled_workspace, tmp_path):
    ws = filled_workspace
    cases = ws.cases()
    assert len(cases) == 3 and {c.status for c in cases} == {"corrected"}
    # a WLI-only case and a case without any mask (status new)
    wli_only = next(TEST_DATA.glob("kv_cju17hw9.jpg"))
    cid_wo, why = ws.import_pair(wli_only, None, TEST_DATA / "kv_cju17hw9_mask.png")
    assert why is None
    cid_new, why = ws.import_pair(TEST_DATA / "kv_cju0s2a9.jpg")
    assert why is None and ws.case(cid_new).status == "new"
    # a human correction that empties one case's mask: the dataset must use it
    target = cases[0].id
    h, w = ws.case(target).height, ws.case(target).width
    ws.add_revision(target, np.zeros((h, w), bool), source="human", author="test")
    ds = WorkspaceDataset(ws, size=48, train=False)
    assert len(ds) == 4
    assert cid_new not in ds.case_ids
    items = {cid: ds[i] for i, cid in enumerate(ds.case_ids)}
    assert items[cid_wo]["nbi_present"].item() is False
    assert items[cases[1].id]["nbi_present"].item() is True
    assert float(items[target]["mask"].sum()) == 0.0
    assert float(items[cases[1].id]["mask"].sum()) > 0
    d = ds.describe()
    assert d["source"] == "workspace" and d["n_items"] == 4 and len(d["case_list_sha256"]) == 64
    # statuses are configurable; the path form opens and closes the workspace itself
    assert len(WorkspaceDataset(ws.root, statuses=("approved",), size=48)) == 0


def test_export_folder_dataset(tmp_path: Path):
    from tests.test_train import make_export

    root = make_export(tmp_path / "exp", 3)
    all_ = ExportFolderDataset(root, None, size=40)
    tr = ExportFolderDataset(root, "train", size=40)
    va = ExportFolderDataset(root, "val", size=40, train=False)
    assert (len(all_), len(tr), len(va)) == (3, 2, 1)
    s = tr[0]
    assert s["wli"].shape == (3, 40, 40) and s["nbi_present"].item() is True
    assert va.describe()["source"] == "export"
    with pytest.raises(FileNotFoundError):
        ExportFolderDataset(tmp_path, None)


def test_public_dataset_fixed_split(tmp_path):
    """The split and the readers on real frames in the real layout: tests/data/public_mini is
    the shared data folder in miniature (made by tests/data/make_fixtures.py; a user's fresh clone has
    no shared folder), vocalfolds labels still class maps, so tumour = label 4 is what is read."""
    from training.data import PublicDataset, kvasir_split, vocalfolds_split, write_public_eval_csvs

    kv_tr, kv_va = kvasir_split(PUBLIC_MINI / "kvasir-seg-256", "train"), kvasir_split(PUBLIC_MINI / "kvasir-seg-256", "val")
    assert (len(kv_tr), len(kv_va)) == (8, 2)  # names sorted, index % 5 == 0 held out
    assert not {i.name for i in kv_tr} & {i.name for i in kv_va}
    tum_tr, neg_tr = vocalfolds_split(PUBLIC_MINI / "vocalfolds", "train", "a")
    tum_va, neg_va = vocalfolds_split(PUBLIC_MINI / "vocalfolds", "val", "a")
    assert {i.name.split("/")[2] for i in tum_tr} == {"seq1"} and len(tum_tr) == 2   # fold a trains on seq1
    assert [i.name.rsplit("/", 2)[-2:] for i in tum_va] == [["seq2", "0089.png"], ["seq2", "0090.png"],
                                                              ["seq2", "0096.png"]]  # every seq2 frame
    assert len(neg_va) == 2 and all("patient2/seq6" in i.name for i in neg_va)
    assert not any("seq6" in i.name for i in neg_tr) and len(neg_tr) == 3
    # seq6 is tumour-free; seq2 keeps its tumour-free frame 0090 (part of the recording)
    ds = PublicDataset(PUBLIC_MINI, "val", which=("vocalfolds",), size=64, fold="a")
    groups = ds.groups()
    assert groups.count("vocal_tumour") == 3 and groups.count("vocal_neg") == 2
    positive = [float(ds[i]["mask"].sum()) > 0 for i in range(len(ds))]
    assert positive == [True, False, True, False, False]
    assert all(ds[i]["nbi_present"].item() is True for i in range(len(ds)))
    tr = PublicDataset(PUBLIC_MINI, "train", which=("vocalfolds",), tumour_repeat=3, size=64, fold="a")
    assert tr.groups().count("vocal_tumour") == 6
    csvs = write_public_eval_csvs(PUBLIC_MINI, tmp_path / "eval")
    from training.evaluate import read_cases

    assert len(read_cases(csvs["kvasir_val"])) == 2 and len(read_cases(csvs["vocal_seq2"])) == 3
    assert [r.label.exists() for r in read_cases(csvs["vocal_seq1"])] == [True, True]
    rows = read_cases(csvs["vocal_neg_val"])
    assert len(rows) == 2 and all(r.wli.exists() and r.label.exists() for r in rows)
