"""training.copy_paste and ``--copy-paste``: a training lesion pasted elsewhere is labelled exactly
where it lands, nothing outside its blend region changes, and the public training set (never its
validation) applies it to laryngeal frames only."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.copy_paste import CopyPasteConfig, decoy_region, paste_lesion

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MINI = ROOT / "tests" / "data" / "public_mini"


def _mucosa(h: int = 120, w: int = 160, seed: int = 0) -> np.ndarray:
    """Reddish textured mucosa, bright enough everywhere to take a paste."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 12, (h, w)).astype(np.float32), (0, 0), 2.0)
    base = np.float32([190, 110, 95]) + noise[..., None]
    return np.clip(base, 0, 255).astype(np.uint8)


def _lesion_frame() -> tuple[np.ndarray, np.ndarray]:
    """Mucosa with a whitish, spotted lesion (an ellipse) and its label."""
    img = _mucosa(seed=1)
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.ellipse(mask, (50, 60), (16, 11), 30, 0, 360, 1, -1)
    lesion = np.float32([235, 215, 205]) + np.random.default_rng(2).normal(0, 15, img.shape).astype(np.float32)
    img = np.where(mask[..., None] > 0, np.clip(lesion, 0, 255).astype(np.uint8), img)
    return img, mask > 0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_pasted_lesion_is_labelled_where_it_lands_and_nothing_else_changes(seed: int) -> None:
    src, src_mask = _lesion_frame()
    dst = _mucosa(seed=10 + seed)
    dst_mask = np.zeros(dst.shape[:2], bool)
    dst_mask[90:110, 120:150] = True  # a lesion already there: kept, never pasted over
    cfg = CopyPasteConfig()
    out, mask, pasted = paste_lesion(dst, dst_mask, src, src_mask, np.random.default_rng(seed), cfg)
    assert pasted
    assert mask[dst_mask].all()
    new = mask & ~dst_mask
    area = src_mask.sum()
    assert cfg.scale[0] ** 2 * area * 0.8 < new.sum() < cfg.scale[1] ** 2 * area * 1.2
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * cfg.ring_px + 1, 2 * cfg.ring_px + 1))
    assert not (cv2.dilate(dst_mask.astype(np.uint8), kernel).astype(bool) & new).any()
    changed = np.abs(out.astype(int) - dst.astype(int)).max(axis=2) > 0
    blend_region = cv2.dilate(new.astype(np.uint8), kernel) > 0
    assert changed[new].mean() > 0.95          # the lesion is where its label is
    assert not (changed & ~blend_region).any()  # and nothing outside its blend region moved
    # the lesion stays paler than the mucosa it lands on (at least a quarter of its own colour kept)
    grey_out = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).astype(float)
    ring = blend_region & ~new
    assert grey_out[new].mean() > grey_out[ring].mean() + 5
    assert dst.shape == out.shape and out.dtype == np.uint8


def test_no_paste_without_a_lesion_a_bright_spot_or_room() -> None:
    src, src_mask = _lesion_frame()
    dst = _mucosa(seed=3)
    empty = np.zeros(dst.shape[:2], bool)
    rng = np.random.default_rng(0)
    out, mask, pasted = paste_lesion(dst, empty, src, np.zeros_like(src_mask), rng)
    assert not pasted and out is dst and not mask.any()
    dark = (dst // 8).astype(np.uint8)  # all lumen: no spot as bright as the lesion's surroundings
    out, mask, pasted = paste_lesion(dark, empty, src, src_mask, rng)
    assert not pasted and np.array_equal(out, dark) and not mask.any()
    small = _mucosa(20, 20, seed=4)  # smaller than the smallest resized lesion
    out, mask, pasted = paste_lesion(small, np.zeros((20, 20), bool), src, src_mask, rng,
                                     CopyPasteConfig(scale=(1.0, 1.0)))
    assert not pasted and np.array_equal(out, small)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_decoy_is_normal_mucosa_in_a_lesion_s_shape_pasted_without_a_label(seed: int) -> None:
    """decoy_region cuts a lesion-shaped piece clear of the source's own lesion; pasted with
    label=False it changes the pixels of its blend region only and leaves the mask as it was."""
    src, src_mask = _lesion_frame()
    shape = np.zeros_like(src_mask)
    cv2.circle(shape.view(np.uint8), (30, 30), 9, 1, -1)
    cfg = CopyPasteConfig()
    rng = np.random.default_rng(seed)
    region = decoy_region(src, src_mask, shape, rng, cfg)
    assert region is not None and region.sum() == shape.sum()  # the shape, moved
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * cfg.ring_px + 5, 2 * cfg.ring_px + 5))
    assert not (cv2.dilate(src_mask.astype(np.uint8), kernel).astype(bool) & region).any()  # not the lesion
    dst = _mucosa(seed=20 + seed)
    dst_mask = np.zeros(dst.shape[:2], bool)
    dst_mask[90:110, 120:150] = True
    out, mask, pasted = paste_lesion(dst, dst_mask, src, region, rng, cfg, label=False)
    assert pasted and np.array_equal(mask, dst_mask)  # the label did not move
    changed = np.abs(out.astype(int) - dst.astype(int)).max(axis=2) > 0
    assert changed.sum() > 0.5 * region.sum() * cfg.scale[0] ** 2
    assert not changed[dst_mask].any()  # the frame's own lesion untouched
    # the same draws with label=True label exactly what changed (so the decoy is a real paste)
    out2, mask2, _ = paste_lesion(dst, dst_mask, src, region, np.random.default_rng(seed + 100), cfg, label=True)
    assert (mask2 & ~dst_mask).any()


def test_no_decoy_where_the_source_has_no_room_or_no_shape() -> None:
    src, src_mask = _lesion_frame()
    rng = np.random.default_rng(0)
    assert decoy_region(src, src_mask, np.zeros_like(src_mask), rng) is None
    everywhere = np.ones_like(src_mask)  # the source is all lesion: nowhere normal to cut
    shape = np.zeros_like(src_mask)
    shape[10:30, 10:30] = True
    assert decoy_region(src, everywhere, shape, rng) is None
    half_lumen = src.copy()
    half_lumen[:, :80] //= 8  # the left half is the dark lumen: a decoy is cut from the lit mucosa only
    regions = [decoy_region(half_lumen, src_mask, shape, np.random.default_rng(seed)) for seed in range(12)]
    assert all(r is not None and r[:, :80].sum() < 0.5 * r.sum() for r in regions)
    assert decoy_region(src, src_mask, np.ones_like(src_mask), rng) is None  # bigger than the frame


def test_the_training_set_pastes_its_lesions_onto_laryngeal_frames_only() -> None:
    """public_mini fold a: seq1's lesions land on the tumour-free training frames with
    --copy-paste 1 (their pseudo-NBI made from the pasted frame); never on Kvasir, never in validation."""
    from training.data import PublicDataset

    common = {"size": 64, "fold": "a", "seed": 3}
    pasting = PublicDataset(PUBLIC_MINI, "train", copy_paste=1.0, **common)
    plain = PublicDataset(PUBLIC_MINI, "train", **common)
    groups = pasting.groups()
    negatives = [i for i, g in enumerate(groups) if g == "vocal_neg"]
    kvasir = [i for i, g in enumerate(groups) if g == "kvasir"]
    assert negatives and kvasir and len(pasting._lesion_sources) == 2
    assert all(float(plain[i]["mask"].sum()) == 0 for i in negatives)
    pasted = [i for i in negatives if float(pasting[i]["mask"].sum()) > 0]
    assert len(pasted) >= len(negatives) - 1  # a paste may find no spot; on these frames almost always does
    i = pasted[0]
    inside = pasting[i]["mask"][0] > 0
    assert (pasting[i]["nbi"][:, inside] - plain[i]["nbi"][:, inside]).abs().mean() > 0.05
    for i in kvasir:  # Kvasir frames draw the same sample with or without --copy-paste
        assert np.array_equal(pasting[i]["wli"].numpy(), plain[i]["wli"].numpy())
    val = PublicDataset(PUBLIC_MINI, "val", which=("vocalfolds",), copy_paste=1.0, **common)
    assert [float(val[i]["mask"].sum()) > 0 for i in range(len(val))] == [True, False, True, False, False]
    assert pasting.describe()["copy_paste"] == 1.0 and val.describe()["copy_paste"] == 0.0
    # --copy-paste-onto tumour: the tumour-free recordings stay pure negatives, the tumour frames still paste
    onto_tumour = PublicDataset(PUBLIC_MINI, "train", copy_paste=1.0, copy_paste_onto="tumour", **common)
    assert all(float(onto_tumour[i]["mask"].sum()) == 0 for i in negatives)
    tumour = [i for i, g in enumerate(groups) if g == "vocal_tumour"]
    grown = [onto_tumour.load(i, np.random.default_rng(i))[3].sum() > plain.load(i, np.random.default_rng(i))[3].sum()
             for i in tumour]  # the frames as cached, before the geometric augmentation
    assert sum(grown) >= len(tumour) - 1
    assert onto_tumour.describe()["copy_paste_onto"] == "tumour"
    with pytest.raises(ValueError, match="share of frames"):
        PublicDataset(PUBLIC_MINI, "train", copy_paste=5, **common)


def test_decoys_change_laryngeal_frames_but_never_their_labels() -> None:
    """--copy-paste-decoys 1 on public_mini fold a: every tumour-free frame keeps an empty mask and
    the tumour frames their own mask, but the pixels (and the pseudo-NBI made from them) change;
    Kvasir and validation are untouched."""
    from training.data import PublicDataset

    common = {"size": 64, "fold": "a", "seed": 3}
    decoyed = PublicDataset(PUBLIC_MINI, "train", copy_paste_decoys=1.0, **common)
    plain = PublicDataset(PUBLIC_MINI, "train", **common)
    groups = decoyed.groups()
    laryngeal = [i for i, g in enumerate(groups) if g in ("vocal_neg", "vocal_tumour")]
    kvasir = [i for i, g in enumerate(groups) if g == "kvasir"]
    assert laryngeal and kvasir
    moved = 0
    for i in laryngeal:
        wli_d, nbi_d, _, mask_d, _ = decoyed.load(i, np.random.default_rng(i))
        wli_p, nbi_p, _, mask_p, _ = plain.load(i, np.random.default_rng(i))
        assert np.array_equal(mask_d, mask_p)
        if not np.array_equal(wli_d, wli_p):
            moved += 1
            assert not np.array_equal(nbi_d, nbi_p)
    assert moved >= len(laryngeal) - 1  # a decoy may find no spot; on these frames almost always does
    for i in kvasir:
        assert np.array_equal(decoyed.load(i, np.random.default_rng(i))[0], plain.load(i, np.random.default_rng(i))[0])
    val = PublicDataset(PUBLIC_MINI, "val", which=("vocalfolds",), copy_paste_decoys=1.0, **common)
    val_plain = PublicDataset(PUBLIC_MINI, "val", which=("vocalfolds",), **common)
    assert all(np.array_equal(val.load(i, np.random.default_rng(i))[0], val_plain.load(i, np.random.default_rng(i))[0])
               for i in range(len(val)))
    assert decoyed.describe()["copy_paste_decoys"] == 1.0 and val.describe()["copy_paste_decoys"] == 0.0
    with pytest.raises(ValueError, match="share of frames"):
        PublicDataset(PUBLIC_MINI, "train", copy_paste_decoys=-0.1, **common)


def test_the_paste_scale_sizes_lesions_and_decoys_alike() -> None:
    """--copy-paste-scale: a side factor of 0.3 pastes about a tenth of the area 1.0 pastes, for the
    labelled lesion and for the decoy's changed pixels alike (a size only lesions came in would be a
    shortcut); the default is the range release 6 was trained with."""
    from training.data import PublicDataset

    common = {"size": 64, "fold": "a", "seed": 3}
    plain = PublicDataset(PUBLIC_MINI, "train", **common)
    negatives = [i for i, g in enumerate(plain.groups()) if g == "vocal_neg"]

    def pasted_area(scale: float) -> float:
        ds = PublicDataset(PUBLIC_MINI, "train", copy_paste=1.0, copy_paste_scale=(scale, scale), **common)
        return float(np.mean([ds.load(i, np.random.default_rng(i))[3].sum() for i in negatives]))

    def decoy_area(scale: float) -> float:
        ds = PublicDataset(PUBLIC_MINI, "train", copy_paste_decoys=1.0, copy_paste_scale=(scale, scale), **common)
        changed = [(ds.load(i, np.random.default_rng(i))[0] != plain.load(i, np.random.default_rng(i))[0]).any(-1).sum()
                   for i in negatives]
        return float(np.mean(changed))

    small, large = pasted_area(0.3), pasted_area(1.0)
    assert small > 0 and 0.04 < small / large < 0.2
    assert 0.04 < decoy_area(0.3) / decoy_area(1.0) < 0.35  # the blend ring adds a fixed rim to both
    assert PublicDataset(PUBLIC_MINI, "train", **common).describe()["copy_paste_scale"] == [0.5, 1.4]
    with pytest.raises(ValueError, match="size factors"):
        PublicDataset(PUBLIC_MINI, "train", copy_paste_scale=(1.0, 0.5), **common)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_a_paste_across_the_edge_is_cut_by_the_frame_and_labelled_only_inside_it(seed: int) -> None:
    """--copy-paste-edge: the lesion lands across one frame edge; only its part inside the frame is
    labelled (a sliver at least, never the whole lesion), exactly where the image changed, and
    nothing beyond its blend region moves (the blend is solved on the frame mirrored outwards)."""
    src, src_mask = _lesion_frame()
    dst = _mucosa(seed=20 + seed)
    dst_mask = np.zeros(dst.shape[:2], bool)
    cfg = CopyPasteConfig(scale=(1.0, 1.0), edge_cut=1.0)
    out, mask, pasted = paste_lesion(dst, dst_mask, src, src_mask, np.random.default_rng(seed), cfg)
    assert pasted and out.shape == dst.shape and out.dtype == np.uint8 and mask.shape == dst_mask.shape
    on_edge = mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
    assert on_edge
    area = int(src_mask.sum())
    assert max(4, 0.1 * area) * 0.8 <= mask.sum() < area  # cut: part of the lesion is outside the frame
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * cfg.ring_px + 1, 2 * cfg.ring_px + 1))
    changed = np.abs(out.astype(int) - dst.astype(int)).max(axis=2) > 0
    assert changed[mask].mean() > 0.95
    # nothing moved beyond the blend ring of the lesion, whose part outside the frame may bring its
    # ring in along the edge it crosses
    edge_band = np.ones(mask.shape, bool)
    edge_band[cfg.ring_px:-cfg.ring_px, cfg.ring_px:-cfg.ring_px] = False
    assert not (changed & ~(cv2.dilate(mask.astype(np.uint8), kernel) > 0) & ~edge_band).any()
    # a decoy placed the same way changes the image at the edge and labels nothing
    out_d, mask_d, pasted_d = paste_lesion(dst, dst_mask, src, src_mask, np.random.default_rng(seed), cfg, label=False)
    assert pasted_d and not mask_d.any() and np.array_equal(out_d, out)


def test_without_the_edge_option_pastes_stay_inside_the_frame() -> None:
    """The default (edge_cut 0) places every paste clear of the frame's edges, as release 6 trained."""
    src, src_mask = _lesion_frame()
    for seed in range(20):
        dst = _mucosa(seed=40 + seed)
        _, mask, pasted = paste_lesion(dst, np.zeros(dst.shape[:2], bool), src, src_mask, np.random.default_rng(seed))
        assert pasted and not (mask[:2].any() or mask[-2:].any() or mask[:, :2].any() or mask[:, -2:].any())


def test_the_edge_option_cuts_lesions_and_decoys_alike_in_the_training_set() -> None:
    """In the public training set --copy-paste-edge 1 puts the pasted lesion on the frame's edge, and the
    decoys too (an edge only lesions touched would be a shortcut); the card's data record says so."""
    from training.data import PublicDataset

    common = {"size": 64, "fold": "a", "seed": 3}
    plain = PublicDataset(PUBLIC_MINI, "train", **common)
    negatives = [i for i, g in enumerate(plain.groups()) if g == "vocal_neg"]
    assert negatives

    def touches_edge(a: np.ndarray) -> bool:
        return bool(a[0].any() or a[-1].any() or a[:, 0].any() or a[:, -1].any())

    lesions = PublicDataset(PUBLIC_MINI, "train", copy_paste=1.0, copy_paste_edge=1.0, **common)
    labelled = [lesions.load(i, np.random.default_rng(i))[3] for i in negatives]
    assert all(m.any() and touches_edge(m) for m in labelled)
    decoys = PublicDataset(PUBLIC_MINI, "train", copy_paste_decoys=1.0, copy_paste_edge=1.0, **common)
    for i in negatives:
        changed = (decoys.load(i, np.random.default_rng(i))[0] != plain.load(i, np.random.default_rng(i))[0]).any(-1)
        assert changed.any() and touches_edge(changed)
        assert not decoys.load(i, np.random.default_rng(i))[3].any()
    assert lesions.describe()["copy_paste_edge"] == 1.0 and plain.describe()["copy_paste_edge"] == 0.0
    with pytest.raises(ValueError, match="share of pastes"):
        PublicDataset(PUBLIC_MINI, "train", copy_paste_edge=1.5, **common)


def test_copy_paste_is_a_trainer_option_recorded_in_the_card(tmp_path: Path) -> None:
    from training.train import main

    out = tmp_path / "run"
    rc = main(["--data", "public", "--shared-root", str(PUBLIC_MINI), "--fold", "a", "--epochs", "1",
               "--copy-paste", "0.5", "--copy-paste-onto", "tumour", "--copy-paste-decoys", "0.25",
               "--copy-paste-scale", "0.3,2", "--copy-paste-edge", "0.3", "--out", str(out), "--model-id", "cp-test",
               "--input-size", "64", "--batch-size", "4", "--no-tqdm", "--threads", "1", "--workers", "0"])
    assert rc == 0
    card = json.loads((out / "cp-test.json").read_text())
    assert card["training"]["copy_paste"] == 0.5
    assert card["training_data"]["train"]["copy_paste"] == 0.5
    assert card["training"]["copy_paste_onto"] == "tumour" == card["training_data"]["train"]["copy_paste_onto"]
    assert card["training"]["copy_paste_decoys"] == 0.25 == card["training_data"]["train"]["copy_paste_decoys"]
    assert card["training"]["copy_paste_scale"] == [0.3, 2.0] == card["training_data"]["train"]["copy_paste_scale"]
    assert card["training"]["copy_paste_edge"] == 0.3 == card["training_data"]["train"]["copy_paste_edge"]


@pytest.mark.parametrize("extra, message", [(["--data", "public", "--copy-paste", "1.5"], "0 to 1"),
                                            (["--copy-paste", "0.5"], "needs --data public"),
                                            (["--data", "public", "--copy-paste-decoys", "2"], "0 to 1"),
                                            (["--copy-paste-decoys", "0.5"], "needs --data public"),
                                            (["--data", "public", "--copy-paste-scale", "2,0.5"], "LOW <= HIGH"),
                                            (["--data", "public", "--copy-paste-scale", "0,1"], "LOW <= HIGH"),
                                            (["--data", "public", "--copy-paste", "0.5", "--copy-paste-edge", "2"],
                                             "cut by the frame's edge: 0 to 1"),
                                            (["--data", "public", "--copy-paste-edge", "0.5"], "needs --copy-paste")])
def test_copy_paste_out_of_range_or_off_the_public_set_is_refused(tmp_path: Path, capsys, extra, message) -> None:
    from training.train import main

    args = ["--data", str(tmp_path / "some-export"), "--epochs", "1", "--out", str(tmp_path / "run"), "--no-tqdm"]
    rc = main(args + extra)
    assert rc == 2
    last = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")][-1]
    assert message in last["message"]
