"""training.copy_paste and ``--copy-paste``: a training lesion pasted elsewhere is labelled exactly
where it lands, nothing outside its blend region changes, and the public training set (never its
validation) applies it to laryngeal frames only."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.copy_paste import CopyPasteConfig, paste_lesion

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


def test_copy_paste_is_a_trainer_option_recorded_in_the_card(tmp_path: Path) -> None:
    from training.train import main

    out = tmp_path / "run"
    rc = main(["--data", "public", "--shared-root", str(PUBLIC_MINI), "--fold", "a", "--epochs", "1",
               "--copy-paste", "0.5", "--copy-paste-onto", "tumour", "--out", str(out), "--model-id", "cp-test", "--input-size", "64",
               "--batch-size", "4", "--no-tqdm", "--threads", "1", "--workers", "0"])
    assert rc == 0
    card = json.loads((out / "cp-test.json").read_text())
    assert card["training"]["copy_paste"] == 0.5
    assert card["training_data"]["train"]["copy_paste"] == 0.5
    assert card["training"]["copy_paste_onto"] == "tumour" == card["training_data"]["train"]["copy_paste_onto"]


@pytest.mark.parametrize("extra, message", [(["--data", "public", "--copy-paste", "1.5"], "0 to 1"),
                                            (["--copy-paste", "0.5"], "needs --data public")])
def test_copy_paste_out_of_range_or_off_the_public_set_is_refused(tmp_path: Path, capsys, extra, message) -> None:
    from training.train import main

    args = ["--data", str(tmp_path / "some-export"), "--epochs", "1", "--out", str(tmp_path / "run"), "--no-tqdm"]
    rc = main(args + extra)
    assert rc == 2
    last = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")][-1]
    assert message in last["message"]
